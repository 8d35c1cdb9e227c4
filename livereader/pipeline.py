"""Reading one frame: locate codes (:mod:`livereader.finder`), sample their grids (:mod:`livereader.grid`), read
them all with one CNN call (:mod:`livereader.reader`). It holds no state; the capture loop
(:mod:`livereader.cli`) calls :func:`read_frame` per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from livereader.finder import FinderOptions, LocatedCode, locate
from livereader.grid import GridOptions, refine, sample_grid
from livereader.reader import Model, read_grids
from livereader.verify import VerifyOptions

READ, REJECTED, UNSUPPORTED = "read", "rejected", "unsupported"


@dataclass(frozen=True)
class ReaderOptions:
    finder: FinderOptions = field(default_factory=FinderOptions)
    grid: GridOptions = field(default_factory=GridOptions)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    retry_offset: float = 3.0  # threshold offset of a second, more sensitive search in frames with no read


@dataclass(frozen=True)
class CodeResult:
    """One located code in a frame.

    ``status``: ``read`` (``text`` holds the verified number), ``rejected`` (a 21x21 code that did not read or
    verify) or ``unsupported`` (not 21x21). ``corners``: tl, tr, br, bl of the symbol in pixels (x, y).
    """

    corners: tuple[tuple[float, float], ...]
    status: str
    text: str | None
    confidence: float
    modules: int


def _to_grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def _read_located(grey: np.ndarray, codes: list[LocatedCode], model: Model, options: ReaderOptions) -> list[CodeResult]:
    supported = [c for c in codes if c.supported]
    grids = [sample_grid(grey, c, options.grid) for c in supported]
    values = [g.soft if options.grid.soft else g.hard.astype(np.float32) for g in grids]
    reads = iter(read_grids(np.stack(values), model, options.verify) if values else [])
    sampled_grids = iter(grids)
    results = []
    for code in codes:
        corners = code.corners
        if code.supported:
            read, sampled = next(reads), next(sampled_grids)
            if sampled.mirrored:  # the symbol's own tr and bl are the other way round
                corners = corners[[0, 3, 2, 1]]
            status, text, confidence = (READ if read.text else REJECTED), read.text, read.confidence
        else:
            status, text, confidence = UNSUPPORTED, None, 0.0
        results.append(CodeResult(tuple(map(tuple, corners.round(1).tolist())), status, text, round(confidence, 4),
                                  code.modules))
    return results


def read_frame(frame: np.ndarray, model: Model, options: ReaderOptions = ReaderOptions()) -> list[CodeResult]:
    """Every code located in a BGR (or grey) uint8 frame, read or not.

    Codes that do not read are tried again with a refined bottom-right corner; a frame with no read at all is
    searched again with a more sensitive threshold (blurred finder rings). Both cost time only where they run.
    """
    grey = _to_grey(frame)
    codes = locate(grey, options.finder)
    results = _read_located(grey, codes, model, options)
    if not any(r.status == READ for r in results) and options.retry_offset < options.finder.offset:
        sensitive = locate(grey, replace(options.finder, offset=options.retry_offset))
        retry = _read_located(grey, sensitive, model, options)
        if len(sensitive) > len(codes) or any(r.status == READ for r in retry):
            codes, results = sensitive, retry
    rejected = [i for i, r in enumerate(results) if r.status == REJECTED]
    if rejected:
        refined = _read_located(grey, [refine(grey, codes[i]) for i in rejected], model, options)
        for i, result in zip(rejected, refined):
            if result.status == READ:
                results[i] = result
    return results
