"""``livereader-train``: train a CNN on augmented qrcode grids, calibrate, export TorchScript and a model card.

``--kind six-digit`` (default) trains :class:`livereader.decode.model.GridReader` on the cached 10^6 six-digit level-H
grids; ``--kind codeword`` (``numeric`` is its older name) trains :class:`livereader.decode.model.CodewordReader` on
numeric codes of every length and level generated fresh for every batch. What differs between them (network,
data, loss, calibration, card text, evaluations) is their decoder's (:mod:`livereader.decode.decoders`).
``livereader-train --eval MODEL`` evaluates a model file instead (see :mod:`livereader.train.evaluate`).

Distributed: ``torchrun --nproc_per_node N -m livereader.train ...`` runs N processes with PyTorch's
DistributedDataParallel (gloo on CPU, nccl on CUDA). ``--batch`` is the global batch, split over the processes,
so the same command does the same optimization in less time; each process makes its own grids (seed + rank).
Rank 0 writes checkpoints, calibrates, exports and evaluates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from livereader.decode.decoders import DECODERS, SIX_DIGIT, Decoder, calibrate_any, decoder_for
from livereader.decode.reader import METADATA, ModelError
from livereader.train.augment import CALIBRATION_AUGMENT
from livereader.train.data import NUMBERS, cache_dir


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-train", description=__doc__.splitlines()[0])
    parser.add_argument("--eval", metavar="MODEL", nargs="+",
                        help="evaluate model files, tried in order as livereader does, and exit (no training)")
    parser.add_argument("--calibrate", metavar="MODEL",
                        help="fit a codeword model's confidence for --content any and write the model with it to "
                             "OUT_DIR (with its card and the general evaluation)")
    parser.add_argument("--kind", choices=[*DECODERS, "numeric"], default=SIX_DIGIT.kind,
                        help="six-digit level-H numbers (default) or codeword: numeric codes of any length and "
                             "level (numeric: its older name)")
    parser.add_argument("--name", help="model name: writes OUT_DIR/NAME.pt and NAME.json "
                                       "(default: default for six-digit, numeric for codeword)")
    parser.add_argument("--out-dir", default="models", help="where the model and its card go (default: models)")
    parser.add_argument("--steps", type=int, default=10000, help="training steps (default: 10000)")
    parser.add_argument("--batch", type=int, default=512,
                        help="grids per step over all processes (default: 512)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--numbers", type=int, default=NUMBERS,
                        help="six-digit: train on the first N training numbers only, made on the fly (smoke runs)")
    parser.add_argument("--chosen-share", type=float, default=0.15,
                        help="codeword: share of grids whose mask qrcode picks itself, ~10x slower to make "
                             "than a given mask (default: 0.15)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    parser.add_argument("--workers", type=int, default=None, help="processes for grid generation")
    parser.add_argument("--checkpoint", help="checkpoint file (default: in the cache folder)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (default: 1000)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    parser.add_argument("--eval-size", choices=["full", "quick"], default="full",
                        help="evaluation size for the card or --eval (quick: a smoke check)")
    parser.add_argument("--plot", help="with --eval: where to write the read-rate plot (PNG)")
    return parser


def export(model, path: Path, metadata: dict) -> None:
    """Script, freeze and save the eager model with its metadata as an extra file."""
    import torch

    model.eval()
    methods = ["read"] if hasattr(model, "read") else []  # GridReader's reader entry point
    frozen = torch.jit.freeze(torch.jit.script(model.cpu()), preserved_attrs=methods)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(frozen, str(path), _extra_files={METADATA: json.dumps(metadata)})


def library_versions() -> dict:
    import cv2
    import qrcode  # noqa: F401  (version from metadata below)
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "qrcode": version("qrcode"), "opencv": cv2.__version__}


def distributed(device_name: str) -> tuple[int, int, str]:
    """(rank, world size, device) of this process: under torchrun it joins the process group."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device_name
    cuda = device_name.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world, f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else device_name


def recalibrate(args: argparse.Namespace) -> int:
    """``--calibrate MODEL``: fit a codeword model's confidence for the content option ``any`` and write the
    model with it, and its card, to ``--out-dir`` (never over the input)."""
    import torch

    from livereader.decode.reader import load_model
    from livereader.train import evaluate

    source = Path(args.calibrate)
    model = load_model(source)
    if not model.decoder.reads_any:
        raise ValueError(f"{source} is a {model.kind} model: only codeword models read any content")
    out = Path(args.out_dir) / source.name
    if out.resolve() == source.resolve():
        raise ValueError(f"would overwrite the input {source}: choose another --out-dir")
    size = 20_000 if args.eval_size == "full" else 600
    calibration, seen = calibrate_any(model, size, args.seed)
    entry = {"weights": list(calibration.weights), "bias": calibration.bias, "features": list(model.decoder.features),
             "fitted_on": seen}
    metadata = {**model.metadata, "calibration_any": entry}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(model.module, str(out), _extra_files={METADATA: json.dumps(metadata)})
    loaded = load_model(out)
    card_path = source.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else dict(model.metadata)
    card.update(livereader_version=version("livereader"), calibration_any=entry,
                calibration_any_command=shlex.join(["livereader-train", *(sys.argv[1:] if args.argv is None
                                                                          else args.argv)]),
                evaluation_any=evaluate.run("any", (loaded,), args.eval_size, seed=args.seed + 2),
                sha256=hashlib.sha256(out.read_bytes()).hexdigest())
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    evaluate.print_report(card["evaluation_any"])
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def _command(args: argparse.Namespace, world: int) -> str:
    """The command line that trained the model, for its card."""
    given = sys.argv[1:] if args.argv is None else args.argv
    if world > 1:
        return shlex.join(["torchrun", "--nproc_per_node", str(world), "-m", "livereader.train", *given])
    return shlex.join(["livereader-train", *given])


def train(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist
    from tqdm import tqdm

    from livereader.decode.reader import load_model
    from livereader.train import evaluate

    decoder: Decoder = args.decoder
    rank, world, device_name = distributed(args.device)
    if args.batch % world:
        raise ValueError(f"--batch {args.batch} does not split over {world} processes")
    torch.manual_seed(args.seed)  # the same initial weights in every process
    # Rank 0 draws exactly as a single process does, so one process reproduces the shipped models' cards.
    rng = np.random.default_rng(args.seed if rank == 0 else [args.seed, rank])
    gen = torch.Generator().manual_seed(args.seed + 1000 * rank)
    device = torch.device(device_name)
    started = time.perf_counter()
    data = decoder.training_data(args)
    model: Any = decoder.network().to(device)
    config = model.config
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps, pct_start=0.05)
    checkpoint = Path(args.checkpoint or cache_dir() / "checkpoints" / f"{args.name}.ckpt")
    step = 0
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        if rank == 0:
            rng.bit_generator.state = state["rng"]
            gen.set_state(state["gen"])
        else:  # only rank 0's generators are saved: the others start a fresh stream of grids
            rng = np.random.default_rng([args.seed, rank, step])
    local_batch = args.batch // world
    progress = tqdm(total=args.steps, initial=step, desc="training", disable=None if rank == 0 else True)
    while step < args.steps:
        loss = decoder.loss(net, decoder.batch(data, local_batch, rng, args), gen, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        progress.update(1)
        if step % 50 == 0:
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if rank == 0 and (step % args.checkpoint_every == 0 or step == args.steps):
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step, "config": config.to_dict(),
                        "rng": rng.bit_generator.state, "gen": gen.get_state()}, checkpoint)
    progress.close()
    trained = time.perf_counter() - started
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
        if rank > 0:
            return 0

    model.eval().cpu()
    size = 20_000 if args.eval_size == "full" else 600
    calibrations = decoder.calibrate(model, data, size, args.seed, rng, gen, args)
    out = Path(args.out_dir) / f"{args.name}.pt"
    metadata = {"name": args.name, "kind": decoder.kind, "config": config.to_dict(), **decoder.metadata(),
                **calibrations, "payload": decoder.payload}
    export(model, out, metadata)
    figures = evaluate.card_figures(decoder, load_model(out), args.eval_size, seed=args.seed + 2)
    card = {
        **metadata,
        "command": _command(args, world), "seed": args.seed, "device": args.device,
        "data": decoder.card_data(args, data),
        "augment": decoder.augment().to_dict(), "calibration_augment": CALIBRATION_AUGMENT.to_dict(),
        "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr, "optimizer": "AdamW + one-cycle",
                     "processes": world, "seconds": round(trained, 1), "threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "evaluation": figures,
        "libraries": library_versions(),
        "livereader_version": version("livereader"),
        "intended_use": decoder.intended_use,
        "limits": decoder.limits,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')} ({trained:.0f} s training)")
    return 0


def evaluate_models(args: argparse.Namespace) -> int:
    """``--eval``: the evaluations of every decoder among the models (:attr:`Decoder.suites`), each decoder's
    first model measured alone where a figure is one model's own; the read rates always come from all the
    models together, tried in order."""
    from livereader.decode.reader import load_models
    from livereader.train import evaluate

    models = load_models(args.eval)
    for decoder in DECODERS.values():
        own = next((m for m in models if m.decoder is decoder), None)
        for suite in decoder.suites if own else ():
            evaluate.print_report(evaluate.run(suite, models, args.eval_size, seed=1, own=own, plot=args.plot))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.argv = argv
    try:
        args.decoder = decoder_for(args.kind)
        args.name = args.name or args.decoder.name
        if args.eval:
            return evaluate_models(args)
        if args.calibrate:
            return recalibrate(args)
        return train(args)
    except (ModelError, OSError, ValueError) as error:
        print(f"livereader-train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("livereader-train: interrupted (resume with --resume)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
