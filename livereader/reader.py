"""Reading grids: the loaded TorchScript CNN proposes numbers, :mod:`livereader.verify` accepts or rejects them.

A model file is a TorchScript module (see :mod:`livereader.model`) saved with an extra file
``livereader.json`` that holds its configuration and confidence calibration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from livereader.symbol import SIZE
from livereader.verify import Calibration, Evidence, VerifyOptions, evaluate, upright, verified

METADATA = "livereader.json"


class ModelError(Exception):
    """A model file that is missing or is not a livereader model (the message is one line)."""


@dataclass(frozen=True)
class GridRead:
    """The result of reading one grid.

    ``text`` is the number as a string of digits, or None for no read; ``confidence`` in [0, 1] is the
    calibrated probability that the best candidate number is right (a read needs a verified candidate and
    a confidence of at least ``VerifyOptions.min_confidence``).
    """

    text: str | None
    confidence: float


@dataclass(frozen=True)
class Model:
    """A loaded model: the TorchScript module and its metadata (no state changes after loading)."""

    module: object  # torch.jit.ScriptModule
    path: Path
    digits: int
    calibration: Calibration
    metadata: dict

    def group_log_probs(self, grids: np.ndarray) -> np.ndarray:
        """(N, 21, 21) grids -> (N, digits // 3, 1000) log probabilities of each 3-digit group's value."""
        import torch

        from livereader.model import group_log_probs, split_logits, value_bits

        with torch.inference_mode():
            output = self.module(torch.from_numpy(np.ascontiguousarray(grids, dtype=np.float32))[:, None])
            return group_log_probs(split_logits(output, self.digits)[2], value_bits()).numpy()


def default_model_path() -> Path:
    """The shipped model: inside the installed package, or ``models/`` beside it in a source checkout."""
    installed = Path(__file__).parent / "models" / "default.pt"
    return installed if installed.exists() else Path(__file__).parent.parent / "models" / "default.pt"


def load_model(path: str | Path | None = None) -> Model:
    """Load a livereader model file (the shipped default when ``path`` is None); raises :class:`ModelError`."""
    import torch

    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    extra = {METADATA: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        metadata = json.loads(extra[METADATA])
        calibration = Calibration(tuple(metadata["calibration"]["weights"]), metadata["calibration"]["bias"])
        digits = int(metadata["config"]["digits"])
    except Exception as error:  # torch raises many kinds for a corrupt or foreign file
        reason = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"not a livereader model file: {path} ({reason[:120]})") from None
    module.eval()
    # Converts the convolutions to oneDNN's own layout: 2-3x faster batches on CPU (measured, 2 cores).
    module = torch.jit.optimize_for_inference(module)
    return Model(module, path, digits, calibration, metadata)


@lru_cache(maxsize=1)
def _default_model() -> Model:
    return load_model()


def check_grid(grid: np.ndarray) -> np.ndarray:
    """A (21, 21) float32 grid with values in [0, 1] (1 = dark), or ValueError."""
    grid = np.asarray(grid, dtype=np.float32)
    if grid.shape != (SIZE, SIZE):
        raise ValueError(f"a grid must be {SIZE}x{SIZE}, not {'x'.join(map(str, grid.shape))}")
    if not np.isfinite(grid).all() or grid.min() < 0 or grid.max() > 1:
        raise ValueError("grid values must lie in [0, 1] (1 = dark)")
    return grid


def judge(evidence: Evidence, model: Model, options: VerifyOptions) -> GridRead:
    """Turn verification evidence into a read or a no-read."""
    confidence = model.calibration.confidence(evidence)
    if verified(evidence, options) and confidence >= options.min_confidence:
        return GridRead("%0*d" % (model.digits, evidence.number), confidence)
    return GridRead(None, confidence)


def collect_evidence(group_log_probs: Callable[[np.ndarray], np.ndarray], grids: np.ndarray,
                     options: VerifyOptions, batch: int = 4096) -> list[Evidence]:
    """Verification evidence for (N, 21, 21) grids: each turned upright, the CNN run in batches, then verified."""
    evidence = []
    for start in range(0, len(grids), batch):
        chunk = np.stack([upright(g) for g in grids[start : start + batch].astype(np.float32)])
        evidence.extend(evaluate(g, lp, options) for g, lp in zip(chunk, group_log_probs(chunk)))
    return evidence


def read_grids(grids: np.ndarray, model: Model | None = None,
               options: VerifyOptions = VerifyOptions()) -> list[GridRead]:
    """Read a batch of grids (N, 21, 21) with one CNN call; see :func:`decode_grid`."""
    model = model or _default_model()
    grids = np.stack([check_grid(g) for g in grids]) if len(grids) else np.zeros((0, SIZE, SIZE), np.float32)
    return [judge(e, model, options) for e in collect_evidence(model.group_log_probs, grids, options)]


def decode_grid(grid: np.ndarray, model: Model | None = None, options: VerifyOptions = VerifyOptions()) -> GridRead:
    """Read the number in one 21x21 grid (1 = dark, values in [0, 1]); the shipped model when ``model`` is None."""
    return read_grids(np.asarray(grid)[None], model, options)[0]
