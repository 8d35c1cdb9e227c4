"""``livereader-train``: train the CNN on augmented qrcode grids, calibrate, export TorchScript and a model card.

``livereader-train --eval MODEL`` evaluates a model file instead (see :mod:`livereader.evaluate`).
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
from pathlib import Path

import numpy as np

from livereader.augment import CALIBRATION_AUGMENT, AugmentConfig, augment
from livereader.data import (NUMBERS, GridSet, cache_dir, encode_numbers, foreign_codes, is_held_out,
                             six_digit_grids, unpack)
from livereader.model import ModelConfig
from livereader.reader import METADATA, ModelError

def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-train", description=__doc__.splitlines()[0])
    parser.add_argument("--eval", metavar="MODEL", help="evaluate a model file and exit (no training)")
    parser.add_argument("--name", default="default", help="model name: writes OUT_DIR/NAME.pt and NAME.json")
    parser.add_argument("--out-dir", default="models", help="where the model and its card go (default: models)")
    parser.add_argument("--steps", type=int, default=10000, help="training steps (default: 10000)")
    parser.add_argument("--batch", type=int, default=512, help="grids per step (default: 512)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--numbers", type=int, default=NUMBERS,
                        help="train on the first N training numbers only, made on the fly (smoke runs)")
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
    frozen = torch.jit.freeze(torch.jit.script(model.cpu()))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(frozen, str(path), _extra_files={METADATA: json.dumps(metadata)})


def library_versions() -> dict:
    import cv2
    import qrcode  # noqa: F401  (version from metadata below)
    import torch
    from importlib.metadata import version

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "qrcode": version("qrcode"), "opencv": cv2.__version__}


def train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from livereader import evaluate
    from livereader.model import GridReader, group_log_probs, split_logits
    from livereader.reader import collect_evidence, load_model
    from livereader.verify import VerifyOptions, fit_calibration

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    started = time.perf_counter()
    sets = training_data(args.numbers, args.workers)
    config, augment_config = ModelConfig(), AugmentConfig()
    model = GridReader(config).to(device)
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
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
    progress = tqdm(total=args.steps, initial=step, desc="training", disable=None)
    while step < args.steps:
        grids, numbers, masks = sample_batch(sets, args.batch, rng)
        groups = torch.from_numpy(np.stack([numbers // 1000, numbers % 1000], axis=1)).to(device)  # (B, 2)
        x = augment(torch.from_numpy(grids), augment_config, gen).to(device)
        _, mask_logits, bit_logits = split_logits(model(x), config.digits)
        # Negative log likelihood of each group's value under the bits' probabilities (see model.py).
        loss = torch.nn.functional.nll_loss(group_log_probs(bit_logits, model.value_bits).reshape(-1, 1000),
                                            groups.reshape(-1))
        loss = loss + 0.2 * torch.nn.functional.cross_entropy(mask_logits, torch.from_numpy(masks).long().to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        progress.update(1)
        if step % 50 == 0:
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.checkpoint_every == 0 or step == args.steps:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step, "config": config.to_dict(),
                        "rng": rng.bit_generator.state, "gen": gen.get_state()}, checkpoint)
    progress.close()
    trained = time.perf_counter() - started

    # Calibrate the confidence on augmented training numbers and foreign codes (never held-out numbers).
    model.eval().cpu()
    options = VerifyOptions()
    size = 20_000 if args.eval_size == "full" else 600
    grids, truth, _ = sample_batch(sets, size, rng)
    soft = augment(torch.from_numpy(grids), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
    _, foreign = foreign_codes(size // 10, seed=args.seed + 1)

    def eager_group_log_probs(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            bit_logits = split_logits(model(torch.from_numpy(batch.astype(np.float32))[:, None]), config.digits)[2]
            return group_log_probs(bit_logits, model.value_bits).numpy()

    evidence = collect_evidence(eager_group_log_probs, np.concatenate([soft, foreign]), options)
    correct = np.array([e.number for e in evidence]) == np.concatenate([truth, np.full(len(foreign), -2)])
    calibration = fit_calibration(np.stack([e.features() for e in evidence]), correct)

    out = Path(args.out_dir) / f"{args.name}.pt"
    command = shlex.join(["livereader-train", *(sys.argv[1:] if args.argv is None else args.argv)])
    metadata = {
        "name": args.name, "config": config.to_dict(),
        "calibration": {"weights": list(calibration.weights), "bias": calibration.bias,
                        "features": ["distance", "gap", "log_prob", "format_distance"]},
        "payload": "six decimal digits, version 1, error correction H",
    }
    export(model, out, metadata)
    loaded = load_model(out)
    figures = evaluate.run(loaded, args.eval_size, seed=args.seed + 2)
    card = {
        **metadata,
        "command": command, "seed": args.seed, "device": args.device,
        "data": {"source": "qrcode grids of '%06d' % n, version 1, level H",
                 "training_numbers": int(len(sets[0].numbers)),
                 "held_out": "sha256(payload)[0] < 13, never trained on",
                 "masks": "60% qrcode's own choice, 40% a random given mask per number"},
        "augment": augment_config.to_dict(), "calibration_augment": CALIBRATION_AUGMENT.to_dict(),
        "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr, "optimizer": "AdamW + one-cycle",
                     "seconds": round(trained, 1), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "evaluation": figures,
        "libraries": library_versions(),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')} ({trained:.0f} s training)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.argv = argv
    try:
        if args.eval:
            from livereader import evaluate
            from livereader.reader import load_model

            figures = evaluate.run(load_model(args.eval), args.eval_size, seed=1, plot=args.plot)
            evaluate.print_report(figures)
            return 0
        return train(args)
    except (ModelError, OSError, ValueError) as error:
        print(f"livereader-train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("livereader-train: interrupted (resume with --resume)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
