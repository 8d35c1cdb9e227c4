"""``livereader-train``: train a CNN on augmented qrcode grids, calibrate, export TorchScript and a model card.

``--kind six-digit`` (default) trains :class:`livereader.decode.model.GridReader` on the cached 10^6 six-digit level-H
grids; ``--kind numeric`` trains :class:`livereader.decode.model.CodewordReader` on numeric codes of every length and
level generated fresh for every batch. ``livereader-train --eval MODEL`` evaluates a model file instead (see
:mod:`livereader.train.evaluate`).

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

import numpy as np

from livereader.decode.model import CodewordConfig, ModelConfig
from livereader.decode.reader import METADATA, NUMERIC, SIX_DIGIT, UNMASKED, ModelError
from livereader.symbol import unmask
from livereader.train.augment import CALIBRATION_AUGMENT, AugmentConfig, augment, flip_modules
from livereader.train.data import (
    NUMBERS,
    GridSet,
    cache_dir,
    encode_numbers,
    foreign_codes,
    is_held_out,
    numeric_codes,
    six_digit_grids,
    unpack,
)

# Numeric codes: fewer wrong modules than for the six-digit model, which learns to see through them; the
# codeword reader cannot (an isolated wrong module looks right), and Reed-Solomon decoding corrects them.
NUMERIC_AUGMENT = AugmentConfig(flipped=0.3, max_flips=10)

def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-train", description=__doc__.splitlines()[0])
    parser.add_argument("--eval", metavar="MODEL", nargs="+",
                        help="evaluate model files, tried in order as livereader does, and exit (no training)")
    parser.add_argument("--calibrate", metavar="MODEL",
                        help="fit a numeric model's confidence for --content any and write the model with it to "
                             "OUT_DIR (with its card and the general evaluation)")
    parser.add_argument("--kind", choices=[SIX_DIGIT, NUMERIC], default=SIX_DIGIT,
                        help="six-digit level-H numbers (default) or numeric codes of any length and level")
    parser.add_argument("--name", help="model name: writes OUT_DIR/NAME.pt and NAME.json "
                                       "(default: default for six-digit, numeric for numeric)")
    parser.add_argument("--out-dir", default="models", help="where the model and its card go (default: models)")
    parser.add_argument("--steps", type=int, default=10000, help="training steps (default: 10000)")
    parser.add_argument("--batch", type=int, default=512,
                        help="grids per step over all processes (default: 512)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--numbers", type=int, default=NUMBERS,
                        help="six-digit: train on the first N training numbers only, made on the fly (smoke runs)")
    parser.add_argument("--chosen-share", type=float, default=0.15,
                        help="numeric: share of grids whose mask qrcode picks itself, ~10x slower to make "
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


def training_data(numbers: int, workers: int | None) -> tuple[GridSet, GridSet]:
    """(qrcode's own masks, given masks) for the training numbers: never a held-out one."""
    if numbers >= NUMBERS:
        chosen, given = six_digit_grids(False, workers), six_digit_grids(True, workers)
        keep = np.array([not is_held_out("%06d" % n) for n in range(NUMBERS)])
        return (GridSet(chosen.numbers[keep], chosen.packed[keep], chosen.masks[keep]),
                GridSet(given.numbers[keep], given.packed[keep], given.masks[keep]))
    train = np.array([n for n in range(NUMBERS * 2 // 100) if not is_held_out("%06d" % n)][:numbers])
    if len(train) < numbers:  # the first 2% hold ~19k training numbers, plenty for smoke runs
        train = np.array([n for n in range(NUMBERS) if not is_held_out("%06d" % n)][:numbers])
    return encode_numbers(train, False, workers), encode_numbers(train, True, workers)


def sample_batch(sets: tuple[GridSet, GridSet], batch: int, rng: np.random.Generator):
    """A batch of clean grids with their numbers and masks; 60% qrcode's masks, 40% given masks."""
    from_given = rng.random(batch) < 0.4
    rows = rng.integers(len(sets[0].numbers), size=batch)
    packed = np.where(from_given[:, None], sets[1].packed[rows], sets[0].packed[rows])
    masks = np.where(from_given, sets[1].masks[rows], sets[0].masks[rows])
    return unpack(packed), sets[0].numbers[rows], masks


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


def six_digit_loss(net, batch: tuple, gen, device):
    """Negative log likelihood of each group's value under the bits' probabilities (see model.py), for augmented
    grids unmasked with their own masks (the reader unmasks with the mask that the format bits name: the same one
    wherever a read can verify)."""
    import torch
    import torch.nn.functional as F

    from livereader.decode.model import GROUP_BITS, group_log_probs

    grids, numbers, masks = batch
    value_bits = getattr(net, "module", net).value_bits  # the model's buffer, under DistributedDataParallel too
    groups = torch.from_numpy(np.stack([numbers // 1000, numbers % 1000], axis=1)).to(device)  # (B, 2)
    seen = augment(torch.from_numpy(grids), AugmentConfig(), gen)[:, 0].numpy()
    x = torch.from_numpy(unmask(seen, masks))[:, None].to(device)
    bit_logits = net(x).reshape(len(x), -1, GROUP_BITS)
    return F.nll_loss(group_log_probs(bit_logits, value_bits).reshape(-1, 1000), groups.reshape(-1))


def numeric_loss(net, codes, gen, device):
    """Cross-entropy of the codeword bits and of the (level, mask) pair."""
    import torch
    import torch.nn.functional as F

    from livereader.decode.numeric import FORMATS, codeword_bits

    x = augment(torch.from_numpy(codes.grids), NUMERIC_AUGMENT, gen).to(device)
    bits = torch.from_numpy(codeword_bits(codes.grids, codes.masks)).float().to(device)  # (B, 208)
    formats = torch.from_numpy(codes.levels * 8 + codes.masks).to(device)  # (B,)
    output = net(x)
    bit_loss = F.binary_cross_entropy_with_logits(output[:, FORMATS:], bits)
    return bit_loss + 0.2 * F.cross_entropy(output[:, :FORMATS], formats)


def eager(method):
    """A network's ``method`` (an eager module's) as a function of (N, 21, 21) numpy grids, without gradients."""
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return method(torch.from_numpy(batch.astype(np.float32))[:, None]).numpy()

    return run


def calibrate_six_digit(model, sets, size: int, seed: int, rng, gen):
    """Fit the confidence on augmented training numbers and foreign codes (never held-out numbers)."""
    import torch

    from livereader.decode.reader import collect_evidence
    from livereader.decode.verify import VerifyOptions, fit_calibration

    grids, truth, _ = sample_batch(sets, size, rng)
    soft = augment(torch.from_numpy(grids), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
    _, foreign = foreign_codes(size // 10, seed=seed + 1)

    evidence = collect_evidence(eager(model.read), np.concatenate([soft, foreign]), VerifyOptions())
    correct = np.array([e.number for e in evidence]) == np.concatenate([truth, np.full(len(foreign), -2)])
    return fit_calibration(np.stack([e.features() for e in evidence]), correct)


def calibrate_numeric(model, size: int, seed: int, rng, gen, chosen_share: float):
    """Fit the confidence on augmented training payloads and codes that hold text (never held-out payloads)."""
    import torch

    from livereader.decode.reader import collect_numeric_evidence
    from livereader.decode.verify import VerifyOptions, fit_calibration
    from livereader.train.data import text_codes

    codes = numeric_codes(size, rng, held_out=False, chosen_share=chosen_share)
    soft = augment(torch.from_numpy(codes.grids), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
    _, foreign = text_codes(size // 10, seed=seed + 1)

    evidence = collect_numeric_evidence(eager(model), np.concatenate([soft, foreign]), VerifyOptions())
    correct = np.array([e.text == t for e, t in zip(evidence, codes.payloads + [None] * len(foreign))])
    found = np.array([e.found for e in evidence])
    found = found if found.any() else ~found  # a smoke run may decode nothing: fit on what there is
    return fit_calibration(np.stack([e.features() for e in evidence])[found], correct[found])


INTENDED_USE = {  # the model cards' words on what a model is for and where it stops
    SIX_DIGIT: "Reading six-digit numbers from version-1 level-H QR codes sampled by livereader's vision pipeline "
               "(21x21 grids, 1 = dark); every read is verified by re-encoding.",
    NUMERIC: "Reading the codeword bits of any version-1 QR code sampled by livereader's vision pipeline; numeric "
             "payloads of every length and level by default, any content with --content any; every read is "
             "verified by Reed-Solomon decoding and re-encoding.",
}
LIMITS = {
    SIX_DIGIT: "Only six-digit numbers at level H; other codes are rejected, never read as a number. Trained on "
               "synthetic grids (qrcode, augmented), measured on held-out payloads only; real-camera accuracy "
               "depends on the vision pipeline's sampling.",
    NUMERIC: "Version 1 only. Trained on numeric payloads; other content reads because the network reads bits, "
             "verified the same way. The general confidence is close to 1 for every verified read: its damaged "
             "calibration grids held no wrongly decoded payload.",
}
GENERAL_FEATURES = ["distance", "capacity_used", "margin", "format_distance"]


def calibrate_general(codeword_logits, size: int, seed: int):
    """Fit a numeric model's confidence with the content option ``any``: on training payloads of every mode
    (never held-out ones), half augmented as for calibration (``CALIBRATION_AUGMENT``), half with 0-50 wrong
    modules (up to far beyond what Reed-Solomon corrects), on every grid that decodes (right or wrong).
    Returns the calibration and how many grids decoded, and wrongly."""
    import torch

    from livereader.decode.reader import collect_numeric_evidence
    from livereader.decode.verify import VerifyOptions, fit_calibration
    from livereader.train.data import general_codes

    codes = general_codes(size, np.random.default_rng(seed), held_out=False)
    gen = torch.Generator().manual_seed(seed)
    grids = torch.from_numpy(codes.grids)
    damaged = np.concatenate([augment(grids, CALIBRATION_AUGMENT, gen)[:, 0].numpy(),
                              flip_modules(grids, torch.randint(0, 51, (len(grids),), generator=gen), gen).numpy()])
    evidence = collect_numeric_evidence(codeword_logits, damaged.astype(np.float32), VerifyOptions(content="any"))
    correct = np.array([e.text == t for e, t in zip(evidence, codes.payloads * 2)])
    found = np.array([e.found for e in evidence])
    found = found if found.any() else ~found  # a smoke run may decode nothing: fit on what there is
    calibration = fit_calibration(np.stack([e.features() for e in evidence])[found], correct[found])
    return calibration, {"grids": len(evidence), "decoded": int(found.sum()),
                         "decoded_wrong": int((found & ~correct).sum())}


def recalibrate(args: argparse.Namespace) -> int:
    """``--calibrate MODEL``: fit a numeric model's confidence for the content option ``any`` and write the
    model with it, and its card, to ``--out-dir`` (never over the input)."""
    import torch

    from livereader.decode.reader import load_model
    from livereader.train import evaluate

    source = Path(args.calibrate)
    model = load_model(source)
    if model.kind != NUMERIC:
        raise ValueError(f"{source} is a {model.kind} model: only numeric models read any content")
    out = Path(args.out_dir) / source.name
    if out.resolve() == source.resolve():
        raise ValueError(f"would overwrite the input {source}: choose another --out-dir")
    size = 20_000 if args.eval_size == "full" else 600
    calibration, seen = calibrate_general(model.codeword_logits, size, args.seed)
    metadata = {**model.metadata, "calibration_any": {"weights": list(calibration.weights), "bias": calibration.bias,
                                                      "features": GENERAL_FEATURES, "fitted_on": seen}}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(model.module, str(out), _extra_files={METADATA: json.dumps(metadata)})
    loaded = load_model(out)
    card_path = source.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else dict(model.metadata)
    card.update(livereader_version=version("livereader"), calibration_any=metadata["calibration_any"],
                calibration_any_command=shlex.join(["livereader-train", *(sys.argv[1:] if args.argv is None
                                                                          else args.argv)]),
                evaluation_any=evaluate.run_general((loaded,), args.eval_size, seed=args.seed + 2),
                sha256=hashlib.sha256(out.read_bytes()).hexdigest())
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    evaluate.print_general_report(card["evaluation_any"])
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def train(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist
    from tqdm import tqdm

    from livereader.decode.model import CodewordReader, GridReader
    from livereader.decode.reader import load_model
    from livereader.train import evaluate

    rank, world, device_name = distributed(args.device)
    if args.batch % world:
        raise ValueError(f"--batch {args.batch} does not split over {world} processes")
    torch.manual_seed(args.seed)  # the same initial weights in every process
    # Rank 0 draws exactly as a single process does, so one process reproduces the shipped models' cards.
    rng = np.random.default_rng(args.seed if rank == 0 else [args.seed, rank])
    gen = torch.Generator().manual_seed(args.seed + 1000 * rank)
    device = torch.device(device_name)
    started = time.perf_counter()
    numeric = args.kind == NUMERIC
    if numeric:
        config = CodewordConfig()
        model = CodewordReader(config).to(device)
    else:
        sets = training_data(args.numbers, args.workers)
        config = ModelConfig()
        model = GridReader(config).to(device)
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
        if numeric:
            loss = numeric_loss(net, numeric_codes(local_batch, rng, False, args.chosen_share), gen, device)
        else:
            loss = six_digit_loss(net, sample_batch(sets, local_batch, rng), gen, device)
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
    if numeric:
        calibration = calibrate_numeric(model, size, args.seed, rng, gen, args.chosen_share)
        features = ["distance", "capacity_used", "margin", "format_distance"]
        payload = "numeric, 1-41 digits at L, 1-34 at M, 1-27 at Q, 1-17 at H, version 1"
    else:
        calibration = calibrate_six_digit(model, sets, size, args.seed, rng, gen)
        features = ["distance", "gap", "log_prob", "format_distance"]
        payload = "six decimal digits, version 1, error correction H"

    out = Path(args.out_dir) / f"{args.name}.pt"
    command = shlex.join(["livereader-train", *(sys.argv[1:] if args.argv is None else args.argv)])
    if world > 1:
        command = shlex.join(["torchrun", "--nproc_per_node", str(world), "-m", "livereader.train",
                              *(sys.argv[1:] if args.argv is None else args.argv)])
    metadata = {
        "name": args.name, "kind": args.kind, "config": config.to_dict(), **({} if numeric else {"input": UNMASKED}),
        "calibration": {"weights": list(calibration.weights), "bias": calibration.bias, "features": features},
        "payload": payload,
    }
    if numeric:
        general, seen = calibrate_general(eager(model), size, args.seed + 3)
        metadata["calibration_any"] = {"weights": list(general.weights), "bias": general.bias,
                                       "features": GENERAL_FEATURES, "fitted_on": seen}
    export(model, out, metadata)
    loaded = load_model(out)
    if numeric:
        figures = evaluate.run_numeric((loaded,), args.eval_size, seed=args.seed + 2)
        figures["any_content"] = evaluate.run_general((loaded,), args.eval_size, seed=args.seed + 2)
        data = {"source": "fresh qrcode grids for every batch: level uniform, then length uniform over all that "
                          "fit, random digits",
                "held_out": "sha256(payload)[0] < 13, never trained on",
                "masks": f"{args.chosen_share:.0%} qrcode's own choice, the rest a random given mask",
                "grids_seen": args.steps * args.batch}
        augment_config = NUMERIC_AUGMENT
    else:
        figures = evaluate.run(loaded, args.eval_size, seed=args.seed + 2)
        data = {"source": "qrcode grids of '%06d' % n, version 1, level H",
                "training_numbers": int(len(sets[0].numbers)),
                "held_out": "sha256(payload)[0] < 13, never trained on",
                "masks": "60% qrcode's own choice, 40% a random given mask per number"}
        augment_config = AugmentConfig()
    card = {
        **metadata,
        "command": command, "seed": args.seed, "device": args.device, "data": data,
        "augment": augment_config.to_dict(), "calibration_augment": CALIBRATION_AUGMENT.to_dict(),
        "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr, "optimizer": "AdamW + one-cycle",
                     "processes": world, "seconds": round(trained, 1), "threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "evaluation": figures,
        "libraries": library_versions(),
        "livereader_version": version("livereader"),
        "intended_use": INTENDED_USE[args.kind],
        "limits": LIMITS[args.kind],
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')} ({trained:.0f} s training)")
    return 0


def evaluate_models(args: argparse.Namespace) -> int:
    """``--eval``: six-digit figures when a six-digit model is among them, numeric figures when a numeric one is;
    the read rates always come from all the models together, tried in order."""
    from livereader.decode.reader import load_models
    from livereader.train import evaluate

    models = load_models(args.eval)
    six = [m for m in models if m.kind == SIX_DIGIT]
    if six:
        evaluate.print_report(evaluate.run(six[0], args.eval_size, seed=1, plot=args.plot, readers=models))
    if any(m.kind == NUMERIC for m in models):
        evaluate.print_numeric_report(evaluate.run_numeric(models, args.eval_size, seed=1))
        evaluate.print_general_report(evaluate.run_general(models, args.eval_size, seed=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.argv = argv
    args.name = args.name or ("numeric" if args.kind == NUMERIC else "default")
    try:
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
