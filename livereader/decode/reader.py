"""Reading grids: the loaded TorchScript CNNs propose numbers, verification accepts or rejects them.

A model file is a TorchScript module (see :mod:`livereader.decode.model`) saved with an extra file
``livereader.json`` that holds its kind, configuration and confidence calibration. Two kinds exist:

* ``six-digit``: :class:`livereader.decode.model.GridReader`, verified by :mod:`livereader.decode.verify`; it
  reads grids unmasked with the mask that their format bits name (metadata ``"input": "unmasked"``);
* ``numeric``: :class:`livereader.decode.model.CodewordReader`, decoded and verified by
  :mod:`livereader.decode.numeric`.

Several models are tried in order, each on the grids that the earlier ones did not read. The shipped default is
the six-digit model (most robust on its codes), then the numeric model (every numeric version-1 code).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from livereader.decode import numeric
from livereader.decode.verify import (
    LEVEL,
    Calibration,
    Evidence,
    VerifyOptions,
    evaluate,
    no_candidate,
    prepare,
    verified,
)
from livereader.symbol import SIZE, FormatInfo, unmask

METADATA = "livereader.json"
SIX_DIGIT, NUMERIC = "six-digit", "numeric"
UNMASKED = "unmasked"  # a six-digit model's input: upright grids with their data mask removed
DEFAULT_MODELS = ("default.pt", "numeric.pt")  # the shipped models, tried in this order
SMALL_BATCH = 4  # up to this many grids, the module as saved runs faster than the oneDNN-optimized one


class ModelError(Exception):
    """A model file that is missing or is not a livereader model (the message is one line)."""


@dataclass(frozen=True)
class GridRead:
    """The result of reading one grid.

    ``text`` is the number as a string of digits (any text with the content option ``any``), or None for no
    read; ``confidence`` in [0, 1] is the calibrated probability that the best candidate is right (a read
    needs a verified candidate and a confidence of at least ``VerifyOptions.min_confidence``). ``content`` is
    the mode of the read's data segments (``numeric``, ``alphanumeric``, ``byte``, ``kanji`` or ``mixed``),
    ``ec_level`` its error-correction level and ``headers`` what else it holds (see
    :class:`livereader.decode.payload.Payload`); all three are None or empty for no read. ``foreign``: no read,
    and the codewords decode to something of another content than the one asked for.
    """

    text: str | None
    confidence: float
    content: str | None = None
    ec_level: str | None = None
    headers: tuple[tuple[str, object], ...] = ()
    foreign: bool = False


@dataclass(frozen=True)
class Model:
    """A loaded model: the TorchScript module and its metadata (no state changes after loading)."""

    module: object  # torch.jit.ScriptModule, frozen as saved: fastest for a frame's few grids
    batched: object  # the same, converted to oneDNN's layout by optimize_for_inference: fastest for batches
    path: Path
    kind: str  # SIX_DIGIT or NUMERIC
    digits: int  # digits of a six-digit model's numbers (0 for a numeric model: any length)
    calibration: Calibration
    metadata: dict
    calibration_any: Calibration | None = None  # a numeric model's confidence with the content option ``any``

    def __call__(self, grids: np.ndarray, method: str = "forward"):
        """(N, 21, 21) grids -> the output tensor of the network's ``method`` (see :mod:`livereader.decode.model`),
        without gradients."""
        import torch

        module = self.module if len(grids) <= SMALL_BATCH else self.batched
        with torch.inference_mode():
            return getattr(module, method)(torch.from_numpy(np.ascontiguousarray(grids, dtype=np.float32)).unsqueeze(1))

    def codeword_logits(self, grids: np.ndarray) -> np.ndarray:
        """(N, 21, 21) grids -> (N, 240): a numeric model's 32 format logits, then its 208 codeword bit logits."""
        return self(grids).numpy()

    def group_log_probs(self, grids: np.ndarray) -> np.ndarray:
        """(N, 21, 21) unmasked grids -> (N, digits // 3, 1000) log probabilities of each 3-digit group's value."""
        return self(grids, "read").numpy()


def default_model_path(name: str = DEFAULT_MODELS[0]) -> Path:
    """A shipped model: inside the installed package, or ``models/`` beside it in a source checkout."""
    package = Path(__file__).parent.parent  # livereader/
    installed = package / "models" / name
    return installed if installed.exists() else package.parent / "models" / name


def load_model(path: str | Path | None = None) -> Model:
    """Load a livereader model file (the shipped default when ``path`` is None); raises :class:`ModelError`."""
    import torch

    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    extra = {METADATA: ""}
    try:
        stored = path.read_bytes()  # read once; deserialized twice below
        module = torch.jit.load(io.BytesIO(stored), map_location="cpu", _extra_files=extra)
        metadata = json.loads(extra[METADATA])
        calibration = Calibration(tuple(metadata["calibration"]["weights"]), metadata["calibration"]["bias"])
        general = metadata.get("calibration_any")
        calibration_any = Calibration(tuple(general["weights"]), general["bias"]) if general else None
        kind = metadata.get("kind", SIX_DIGIT)
        if kind not in (SIX_DIGIT, NUMERIC):
            raise ValueError(f"unknown model kind {kind!r}")
        digits = int(metadata["config"]["digits"]) if kind == SIX_DIGIT else 0
        if kind == SIX_DIGIT and (not hasattr(module, "read") or metadata.get("input") != UNMASKED):
            raise ValueError("reads masked grids: exported by an older livereader, train it again")
        # what the reader will ask of it, on one blank grid: a wrong output shape fails here, not at a frame
        with torch.inference_mode():
            probe = torch.zeros(1, 1, SIZE, SIZE)
            shape = tuple((module.read(probe) if kind == SIX_DIGIT else module(probe)).shape)
        expected = (1, digits // 3, 1000) if kind == SIX_DIGIT else (1, numeric.FORMATS + 8 * numeric.CODEWORDS)
        if shape != expected:
            raise ValueError(f"its output has the shape {shape}, not {expected}")
    except Exception as error:  # torch raises many kinds for a corrupt or foreign file
        reason = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"not a livereader model file: {path} ({reason[:120]})") from None
    module.eval()
    # oneDNN's own layout: 2-3x faster batches on CPU, but its conversions make one grid 1.8x slower (measured,
    # 168 against 310 us for the six-digit model), so both are kept.
    methods = ["read"] if kind == SIX_DIGIT else None
    # A copy of its own: optimize_for_inference on a deep copy alters the original's graph (its outputs change,
    # and it can no longer be saved), so the copy is deserialized from the same bytes.
    batched = torch.jit.optimize_for_inference(torch.jit.load(io.BytesIO(stored), map_location="cpu").eval(), methods)
    return Model(module, batched, path, kind, digits, calibration, metadata, calibration_any)


def load_models(paths: Sequence[str | Path] | None = None) -> tuple[Model, ...]:
    """Load model files to be tried in order (the shipped ones when ``paths`` is None or empty)."""
    return tuple(load_model(p) for p in (paths or [default_model_path(name) for name in DEFAULT_MODELS]))


@lru_cache(maxsize=1)
def _default_models() -> tuple[Model, ...]:
    return load_models()


def check_grids(grids) -> np.ndarray:
    """(N, 21, 21) float32 grids with values in [0, 1] (1 = dark), or ValueError."""
    try:
        grids = np.asarray(grids, dtype=np.float32)
    except ValueError:  # grids of different shapes
        raise ValueError(f"a grid must be {SIZE}x{SIZE}") from None
    if grids.ndim != 3 or grids.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"a grid must be {SIZE}x{SIZE}, not {'x'.join(map(str, grids.shape[1:]))}")
    if len(grids) and not (grids.min() >= 0 and grids.max() <= 1):  # NaN fails both comparisons
        raise ValueError("grid values must lie in [0, 1] (1 = dark)")
    return grids


def judge(evidence: Evidence | numeric.NumericEvidence, model: Model, options: VerifyOptions) -> GridRead:
    """Turn verification evidence into a read or a no-read; a numeric model's confidence with the content
    option ``any`` comes from its general calibration (fitted on codes of every mode) where it has one."""
    calibration = model.calibration
    if model.kind == NUMERIC and options.content == "any" and model.calibration_any is not None:
        calibration = model.calibration_any
    confidence = calibration.confidence(evidence)
    if model.kind == NUMERIC:
        if numeric.verified(evidence, options.numeric) and confidence >= options.numeric.min_confidence:
            payload = evidence.payload
            return GridRead(evidence.text, confidence, payload.content, evidence.format.level, payload.headers)
    elif verified(evidence, options) and confidence >= options.min_confidence:
        return GridRead("%0*d" % (model.digits, evidence.number), confidence, "numeric", LEVEL)
    return GridRead(None, confidence, foreign=model.kind == NUMERIC and evidence.foreign)


def _outputs(network: Callable[[np.ndarray], np.ndarray], grids: np.ndarray, batch: int):
    """The network's outputs for (N, 21, 21) grids, run on ``batch`` grids at a time."""
    for start in range(0, len(grids), batch):
        yield from network(grids[start : start + batch])


def _prepared(grids: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, FormatInfo]]]:
    """(N, 21, 21) grids -> the upright grids (the network's input), and each one normalized with its format."""
    prepared = [prepare(g) for g in grids.astype(np.float32)]
    uprights = np.stack([p[0] for p in prepared]) if prepared else grids.astype(np.float32)
    return uprights, [p[1:] for p in prepared]


def collect_evidence(group_log_probs: Callable[[np.ndarray], np.ndarray], grids: np.ndarray,
                     options: VerifyOptions, batch: int = 4096) -> list[Evidence]:
    """Verification evidence for (N, 21, 21) grids: each turned upright, the CNN run in batches on those whose
    format bits name level H (no other can verify), unmasked with the mask that they name, then verified."""
    uprights, prepared = _prepared(grids)
    evidence = [no_candidate(fmt) for _, fmt in prepared]
    chosen = [i for i, (_, fmt) in enumerate(prepared) if fmt.level == LEVEL]
    unmasked = unmask(uprights[chosen], [prepared[i][1].mask for i in chosen])
    for i, log_probs in zip(chosen, _outputs(group_log_probs, unmasked, batch)):
        grid, fmt = prepared[i]
        evidence[i] = evaluate(grid, log_probs, options, fmt)
    return evidence


def collect_numeric_evidence(codeword_logits: Callable[[np.ndarray], np.ndarray], grids: np.ndarray,
                             options: VerifyOptions, batch: int = 4096) -> list[numeric.NumericEvidence]:
    """Decoding evidence for (N, 21, 21) grids: each turned upright, the numeric CNN run in batches, decoded."""
    uprights, prepared = _prepared(grids)
    return [numeric.decode(grid, fmt, logits[numeric.FORMATS:], options.numeric, options.content)
            for (grid, fmt), logits in zip(prepared, _outputs(codeword_logits, uprights, batch))]


def model_evidence(model: Model, grids: np.ndarray, options: VerifyOptions) -> list:
    """The evidence of one model for (N, 21, 21) checked grids."""
    if model.kind == NUMERIC:
        return collect_numeric_evidence(model.codeword_logits, grids, options)
    return collect_evidence(model.group_log_probs, grids, options)


def read_grids(grids: np.ndarray, model: Model | Sequence[Model] | None = None,
               options: VerifyOptions = VerifyOptions()) -> list[GridRead]:
    """Read a batch of grids (N, 21, 21), one CNN call per model; see :func:`decode_grid`."""
    models = _default_models() if model is None else (model,) if isinstance(model, Model) else tuple(model)
    grids = check_grids(grids) if len(grids) else np.zeros((0, SIZE, SIZE), np.float32)
    reads = [GridRead(None, 0.0)] * len(grids)
    for current in models:
        todo = [i for i, r in enumerate(reads) if r.text is None]
        if not todo:
            break
        for i, evidence in zip(todo, model_evidence(current, grids[todo], options)):
            read = judge(evidence, current, options)
            if read.text is None:  # the more confident no-read, foreign when any model found it so
                foreign = read.foreign or reads[i].foreign
                read = replace(max(read, reads[i], key=lambda r: r.confidence), foreign=foreign)
            reads[i] = read
    return reads


def decode_grid(grid: np.ndarray, model: Model | Sequence[Model] | None = None,
                options: VerifyOptions = VerifyOptions()) -> GridRead:
    """Read the number in one 21x21 grid (1 = dark, values in [0, 1]); the shipped models when ``model`` is None."""
    return read_grids(np.asarray(grid)[None], model, options)[0]
