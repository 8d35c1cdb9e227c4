"""Where and at which sizes a frame is searched: finder patterns found in regions of a frame, or of the frame
shrunk, and grouped into codes fitted in the full frame (conventions: :mod:`livereader.vision.finder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np

from livereader.geometry import Points, held
from livereader.symbol import SIZE
from livereader.vision.finder import Finder, FinderOptions, find_finders
from livereader.vision.fit import LocatedCode
from livereader.vision.grouping import group_codes

Region = tuple[int, int, int, int]  # x0, y0, x1, y1: pixels x0 <= x < x1, y0 <= y < y1
SHRUNK_MIN_MODULE = 1.5  # px: the smallest modules that a search of a shrunk frame finds (in the shrunk frame)


def search(grey: np.ndarray, options: FinderOptions = FinderOptions(), regions: list[Region] | None = None,
           known: Sequence[Points] = (), factor: int = 1) -> tuple[list[LocatedCode], list[Finder]]:
    """Every code whose three finder patterns are visible in the grey uint8 frame, and the finder patterns left
    over: outside every code, each perhaps part of a code whose other finders did not show. Finders are searched
    only in ``regions`` (the whole frame where None) of the frame shrunk by ``factor`` (pixel areas averaged, the
    threshold window shrunk with it: codes with modules of ``SHRUNK_MIN_MODULE`` times ``factor`` px and up), and
    not inside codes already ``known`` (outlines, (4, 2) pixels); codes are fitted in the full frame. Nested squares
    inside a code look like finders too, and are not returned."""
    height, width = grey.shape[:2]
    regions = [(0, 0, width, height)] if regions is None else regions
    small, small_options = shrunk(grey, factor, options) if factor > 1 else (grey, options)
    finders = []
    for x0, y0, x1, y1 in regions:  # in the shrunk frame: the pixels that hold any of the region's
        x0, y0, x1, y1 = x0 // factor, y0 // factor, -(-x1 // factor), -(-y1 // factor)
        finders += find_finders(small[y0:y1, x0:x1], small_options, factor, (x0 * factor, y0 * factor))
    finders = _outside(finders, known)
    codes = group_codes(grey, finders, options)
    return codes, _left_over(finders, codes)


def _left_over(finders: list[Finder], codes: list[LocatedCode]) -> list[Finder]:
    """The finders that are no finder of ``codes`` and lie outside all of them (nested squares inside a code look
    like finders too)."""
    used = {id(f) for code in codes for f in code.finders}
    return _outside([f for f in finders if id(f) not in used], [code.corners for code in codes])


def _outside(finders: list[Finder], outlines: Sequence[Points]) -> list[Finder]:
    """The finders whose centres lie outside every one of ``outlines`` ((4, 2) pixels each)."""
    return [f for f, inside in zip(finders, held([f.centre for f in finders], outlines)) if not inside]


@lru_cache(maxsize=8)
def _shrunk(options: FinderOptions, factor: int) -> FinderOptions:
    """The options for a frame shrunk by ``factor``: the threshold window shrinks with it."""
    return replace(options, block=max(3, (options.block // factor) | 1))


def shrunk(grey: np.ndarray, factor: int, options: FinderOptions = FinderOptions()) -> tuple[np.ndarray, FinderOptions]:
    """The frame shrunk by ``factor`` (pixel areas averaged) and the finder options for it (a smaller threshold
    window)."""
    return cv2.resize(grey, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA), _shrunk(options, factor)


COARSE_MIN_SIDE = 4 * SIZE  # a shrunk frame searched for coarse codes keeps at least this shorter side, pixels


def coarse(grey: np.ndarray, factors: tuple[int, ...], options: FinderOptions = FinderOptions(),
           known: Sequence[Points] = ()) -> list[LocatedCode]:
    """Codes whose modules are too wide for the threshold window (``options.block``) in the frame as it is:
    finder patterns found in the frame shrunk by each of ``factors`` with the window kept (modules of about
    ``factor`` to ``block * factor / 1.2`` px), codes fitted in the full frame; not where codes are ``known``
    (outlines, (4, 2) pixels) or found at an earlier factor. A shrunk frame must keep a shorter side of
    ``COARSE_MIN_SIDE`` px. Factors are powers of 2, in increasing order: each shrunk frame is made from the last
    by halving (OpenCV's fast path: a quarter of the frame costs 0.01 ms from the half, 0.3 ms from the whole)."""
    codes: list[LocatedCode] = []
    small, shrunk = grey, 1
    for factor in factors:
        if min(grey.shape[:2]) < factor * COARSE_MIN_SIDE:
            break
        while shrunk < factor:
            small, shrunk = cv2.resize(small, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), 2 * shrunk
        finders = _outside(find_finders(small, options, factor), [*known, *(code.corners for code in codes)])
        codes += group_codes(grey, finders, options)
    return codes


def around(points: Points, margin: float) -> Region:
    """The box that holds ``points`` ((N, 2) pixels) and ``margin`` pixels more on every side."""
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    return int(min(xs) - margin), int(min(ys) - margin), int(max(xs) + margin) + 1, int(max(ys) + margin) + 1


def merged_regions(boxes: list[Region], shape: tuple[int, ...], whole: float = 0.5) -> list[Region]:
    """``boxes`` clipped to a frame of ``shape`` (height, width, ...), overlapping ones merged (as connected blobs
    of a mask at 1/8 resolution), so that no pixel is searched twice. The whole frame when they would cover more
    than the share ``whole`` of it: one search costs less than many."""
    height, width = shape[:2]
    cell = 8
    mask = np.zeros((-(-height // cell), -(-width // cell)), np.uint8)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(mask, (max(0, x0) // cell, max(0, y0) // cell), (max(0, x1 - 1) // cell, max(0, y1 - 1) // cell),
                      1, cv2.FILLED)
    if cv2.countNonZero(mask) > whole * mask.size:
        return [(0, 0, width, height)]
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return [(int(x) * cell, int(y) * cell, min(width, int(x + w) * cell), min(height, int(y + h) * cell))
            for x, y, w, h, _ in stats[1:count].tolist()]
