"""Reading one frame: locate codes (:mod:`livereader.finder`), sample their grids (:mod:`livereader.grid`, or
:mod:`livereader.deblur` for blurred codes), read them all with one CNN call per model (:mod:`livereader.reader`).
It holds no state; the capture loop (:mod:`livereader.cli`) calls :func:`read_frame` per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import cv2
import numpy as np

from livereader.deblur import DeblurOptions, deblur
from livereader.finder import FinderOptions, LocatedCode, locate, scout
from livereader.grid import GridOptions, SampledGrid, refine, sample_grid
from livereader.reader import Model, read_grids
from livereader.verify import VerifyOptions, foreign

READ, REJECTED, UNSUPPORTED = "read", "rejected", "unsupported"


@dataclass(frozen=True)
class ReaderOptions:
    finder: FinderOptions = field(default_factory=FinderOptions)
    grid: GridOptions = field(default_factory=GridOptions)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    deblur: DeblurOptions = field(default_factory=DeblurOptions)
    # A second, more sensitive search in frames with no read: lower threshold offsets, and no minimum timing
    # contrast (blur flattens the timing patterns; they still choose the orientation).
    retry_offset: float = 3.0
    retry_noise_offset: float = 1.5
    retry_timing_contrast: float = float("-inf")
    # The first search runs on the frame shrunk by this factor (4x fewer pixels); the full frame is searched
    # only where it leaves anything unread or unexplained (1: always the full frame).
    scout: int = 2


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
    fused: int = 0  # frames averaged for this read by :mod:`livereader.fuse` (0: read from this frame alone)


def to_grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


Sampler = Callable[[np.ndarray, LocatedCode], SampledGrid]
Models = Model | Sequence[Model]


def _read_located(grey: np.ndarray, codes: list[LocatedCode], model: Models, options: ReaderOptions,
                  sampler: Sampler | None = None) -> tuple[list[CodeResult], list[bool]]:
    """Read the supported codes with ``sampler`` (default: :func:`sample_grid`, soft or hard grids as the
    options say; any other sampler's hard grids). Also says which codes are worth another try: rejected ones
    that do not decode, as sampled, to something other than a number (:func:`livereader.verify.foreign`)."""
    soft = options.grid.soft and sampler is None
    sampler = sampler or (lambda image, code: sample_grid(image, code, options.grid))
    grids = [sampler(grey, c) for c in codes if c.supported]
    values = [g.soft if soft else g.hard.astype(np.float32) for g in grids]
    reads = iter(read_grids(np.stack(values), model, options.verify) if values else [])
    sampled_grids = iter(grids)
    results, retry = [], []
    for code in codes:
        corners = code.corners
        if code.supported:
            read, sampled = next(reads), next(sampled_grids)
            if sampled.mirrored:  # the symbol's own tr and bl are the other way round
                corners = corners[[0, 3, 2, 1]]
            status, text, confidence = (READ if read.text else REJECTED), read.text, read.confidence
            worth = status == REJECTED and not foreign(sampled.hard)
        else:
            status, text, confidence, worth = UNSUPPORTED, None, 0.0, False
        results.append(CodeResult(tuple(map(tuple, corners.round(1).tolist())), status, text, round(confidence, 4),
                                  code.modules))
        retry.append(worth)
    return results, retry


def holder(corners, results: Sequence[CodeResult]) -> int | None:
    """Index of the first result whose outline holds the centre of ``corners`` ((4, 2) pixels), or None."""
    centre = tuple(float(v) for v in np.mean(corners, axis=0))
    for index, result in enumerate(results):
        if cv2.pointPolygonTest(np.float32(result.corners), centre, False) >= 0:
            return index
    return None


def read_frame(frame: np.ndarray, model: Models, options: ReaderOptions = ReaderOptions()) -> list[CodeResult]:
    """Every code located in a BGR (or grey) uint8 frame, read or not, by ``model`` (one, or several tried in
    order as :func:`livereader.reader.read_grids` does).

    The first search looks for finder patterns in the frame shrunk by ``options.scout``; when it reads a code,
    leaves nothing worth another try and no finder pattern outside its codes, that is the answer. Otherwise the
    full frame is searched (the codes the first search read are kept, not read again), and a frame with no read
    at all is searched again with a more sensitive threshold (blurred finder rings). Codes that do not read,
    unless they decode to something other than a number, are tried again with a refined bottom-right corner, and
    then deblurred. Each retry costs time only where it runs.
    """
    grey = to_grey(frame)
    known: list[CodeResult] = []  # codes the first search read: the full search does not read them again
    if options.scout > 1:
        codes, complete = scout(grey, options.scout, options.finder)
        results, retry = _read_located(grey, codes, model, options)
        known = [r for r in results if r.status == READ]
        if complete and known and not any(retry):
            return results
    codes = [c for c in locate(grey, options.finder) if holder(c.corners, known) is None]
    results, retry = _read_located(grey, codes, model, options)
    results, retry = results + known, retry + [False] * len(known)  # codes[i] is still results[i]'s code
    if not any(r.status == READ for r in results) and options.retry_offset < options.finder.offset:
        sensitive = locate(grey, replace(options.finder, offset=options.retry_offset,
                                         noise_offset=options.retry_noise_offset,
                                         min_timing_contrast=options.retry_timing_contrast))
        again, again_retry = _read_located(grey, sensitive, model, options)
        if len(sensitive) > len(codes) or any(r.status == READ for r in again):
            codes, results, retry = sensitive, again, again_retry
    retries = ((lambda code: refine(grey, code), None),
               (lambda code: code, lambda image, code: deblur(image, code, options.deblur)))
    for adjust, sampler in retries:
        todo = [i for i, worth in enumerate(retry) if worth]
        if not todo:
            break
        again, _ = _read_located(grey, [adjust(codes[i]) for i in todo], model, options, sampler)
        for i, result in zip(todo, again):
            if result.status == READ:
                results[i], retry[i] = result, False
    return results
