"""Reading grids: the loaded TorchScript CNNs propose payloads, their decoders verify them.

A model file is a TorchScript module (see :mod:`livereader.decode.model`) saved with an extra file
``livereader.json`` that holds its kind (its decoder, :mod:`livereader.decode.decoders`), configuration and
confidence calibration.

Several models are tried in order, each on the grids that the earlier ones did not read. The shipped default is
the six-digit model (most robust on its codes), then the codeword model (every numeric version-1 code; any
content with the content option ``any``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from livereader.decode.decoders import SIX_DIGIT, Decoder, decoder_for
from livereader.decode.evidence import Calibration, Evidence, verified
from livereader.decode.payload import Payload
from livereader.decode.verify import VerifyOptions
from livereader.symbol import SIZE
from livereader.timing import timed

METADATA = "livereader.json"
DEFAULT_MODELS = ("default.pt", "numeric.pt")  # the shipped models, tried in this order
FOREIGN = "holds other content than a number"  # the error of a no-read whose codewords hold another content
SMALL_BATCH = 4  # up to this many grids, the module as saved runs faster than the oneDNN-optimized one


class ModelError(Exception):
    """A model file that is missing or is not a livereader model (the message is one line)."""


@dataclass(frozen=True)
class GridRead:
    """The result of reading one grid.

    ``text`` is the number as a string of digits (any text with the content option ``any``), or None for no
    read; ``confidence`` in [0, 1] is the calibrated probability that the best candidate is right (a read
    needs a verified candidate and a confidence of at least ``VerifyOptions.min_confidence``). ``payload``:
    how the read is encoded (:class:`livereader.decode.payload.Payload`: its mode, bytes, ECI, FNC1,
    structured append); ``ec_level`` and ``mask``: its format. All three are None for no read. ``foreign``:
    no read, and the codewords decode to something of another content than the one asked for. ``error``: why
    there is no read, in words.
    """

    text: str | None
    confidence: float
    payload: Payload | None = None
    ec_level: str | None = None
    mask: int | None = None
    foreign: bool = False
    error: str | None = None  # why no read: see :func:`judge`

    @property
    def content(self) -> str | None:
        """The mode of the read's data segments (``numeric``, ``alphanumeric``, ``byte``, ``kanji`` or
        ``mixed``), None for no read."""
        return self.payload.content if self.payload else None


@dataclass(frozen=True)
class Model:
    """A loaded model: the TorchScript module and its metadata (no state changes after loading but the cache of its
    methods)."""

    module: Any  # torch.jit.ScriptModule, frozen as saved: fastest for a frame's few grids
    batched: Any  # the same, converted to oneDNN's layout by optimize_for_inference: fastest for batches
    path: Path
    decoder: Decoder
    calibration: Calibration
    metadata: dict
    calibration_any: Calibration | None = None  # the confidence with the content option ``any``, where fitted

    @property
    def kind(self) -> str:
        return self.decoder.kind

    def __call__(self, grids: np.ndarray) -> np.ndarray:
        """(N, 21, 21) grids -> the outputs of the network's method that its decoder reads (see
        :mod:`livereader.decode.model`), without gradients."""
        import torch

        method = self._methods[len(grids) > SMALL_BATCH]
        tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(grids)[:, None], dtype=np.float32))
        with torch.inference_mode():
            return method(tensor).numpy()

    @cached_property
    def _methods(self) -> tuple[Any, Any]:
        """The decoder's method of ``module`` and of ``batched``, looked up once. With this and the input shaped in
        numpy (:meth:`__call__`), a frame's single call of the six-digit model costs 0.35 against 0.39 ms where it
        follows other work (medians of 400 calls on one grid each way, alternating, each after 10 ms of a busy
        loop)."""
        return getattr(self.module, self.decoder.method), getattr(self.batched, self.decoder.method)

    def calibration_for(self, content: str) -> Calibration:
        """The confidence of reads of ``content``: with ``any``, the general calibration where it has one."""
        return self.calibration_any if content == "any" and self.calibration_any is not None else self.calibration


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
        decoder = decoder_for(metadata.get("kind", SIX_DIGIT.kind))
        decoder.check(module, metadata)
        # what the reader will ask of it, on one blank grid: a wrong output shape fails here, not at a frame
        with torch.inference_mode():
            shape = tuple(getattr(module, decoder.method)(torch.zeros(1, 1, SIZE, SIZE)).shape)
        expected = (1, *decoder.output_shape(metadata))
        if shape != expected:
            raise ValueError(f"its output has the shape {shape}, not {expected}")
    except Exception as error:  # torch raises many kinds for a corrupt or foreign file
        reason = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"not a livereader model file: {path} ({reason[:120]})") from None
    module.eval()
    # oneDNN's own layout: 2-3x faster batches on CPU, but its conversions make one grid 1.8x slower (measured,
    # 168 against 310 us for the six-digit model), so both are kept.
    methods = None if decoder.method == "forward" else [decoder.method]
    # A copy of its own: optimize_for_inference on a deep copy alters the original's graph (its outputs change,
    # and it can no longer be saved), so the copy is deserialized from the same bytes.
    batched = torch.jit.optimize_for_inference(torch.jit.load(io.BytesIO(stored), map_location="cpu").eval(), methods)
    return Model(module, batched, path, decoder, calibration, metadata, calibration_any)


def load_models(paths: Sequence[str | Path] | None = None) -> tuple[Model, ...]:
    """Load model files to be tried in order (the shipped ones when ``paths`` is None or empty)."""
    return tuple(load_model(p) for p in (paths or [default_model_path(name) for name in DEFAULT_MODELS]))


@lru_cache(maxsize=1)
def _default_models() -> tuple[Model, ...]:
    return load_models()


def check_grids(grids: Any) -> np.ndarray:
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


def judge(evidence: Evidence, model: Model, options: VerifyOptions) -> GridRead:
    """Turn a model's evidence into a read or a no-read: its decoder's bounds, and its calibrated confidence
    for the content asked for (:meth:`Model.calibration_for`)."""
    confidence = model.calibration_for(options.content).confidence(evidence)
    max_distance, min_gap = model.decoder.bounds(options)
    if (verified(evidence, max_distance, min_gap, options.max_format_distance)
            and confidence >= options.min_confidence and evidence.payload is not None):
        return GridRead(evidence.text, confidence, evidence.payload, evidence.format.level, evidence.format.mask)
    return GridRead(None, confidence, foreign=evidence.foreign, error=_why(evidence, max_distance, min_gap, options))


def _why(evidence: Evidence, max_distance: float, min_gap: float, options: VerifyOptions) -> str:
    """Why evidence is no read: the first bound it fails."""
    if evidence.text is None:
        return FOREIGN if evidence.foreign else "no payload decoded"
    if evidence.format.distance > options.max_format_distance:
        return "format bits unreadable"
    if evidence.distance > max_distance:
        return "the payload's symbol does not match the grid"
    if evidence.gap < min_gap:
        return "two payloads match the grid alike"
    return "confidence below the minimum"


def model_evidence(model: Model, grids: np.ndarray, options: VerifyOptions) -> list[Evidence]:
    """The evidence of one model for (N, 21, 21) checked grids."""
    return model.decoder.evidence(model, grids, options)


@timed("CNN and verification")
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
                read = max(read, reads[i], key=lambda r: r.confidence)
                read = replace(read, foreign=foreign, error=FOREIGN if foreign else read.error)
            reads[i] = read
    return reads


def decode_grid(grid: np.ndarray, model: Model | Sequence[Model] | None = None,
                options: VerifyOptions = VerifyOptions()) -> GridRead:
    """Read the number in one 21x21 grid (1 = dark, values in [0, 1]); the shipped models when ``model`` is None."""
    return read_grids(np.asarray(grid)[None], model, options)[0]
