"""Fitting a code to three finder patterns: the homography from module coordinates to pixels, the module count,
the symbol's corners, and how clearly its timing patterns alternate (conventions: :mod:`livereader.vision.finder`).

Version 1 has no alignment pattern: the three finder centres fix only an affine map, so the homography is fitted
to the corners of the finders' outlines, whose edges carry the perspective that fixes the fourth corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from livereader import compiled
from livereader.symbol import SIZE
from livereader.vision.finder import Finder

# Fit residual above which the fit is redone robustly (least median of squares): this many modules, and at least
# this many pixels (outline corners are traced to about a pixel whatever the module size: small codes' fits are
# that far off without any outlier, and a robust fit of them costs 8x as much for nothing)
ROBUST_ABOVE = 0.5
ROBUST_MIN_PX = 2.0


@dataclass(frozen=True, eq=False)
class LocatedCode:
    """A code found in a frame: ``modules`` is its estimated module count (21 for version 1).

    ``homography`` maps module coordinates to pixels; ``corners`` are the symbol's tl, tr, br, bl corners in
    pixels (module coordinates (0, 0), (m, 0), (m, m), (0, m)).
    """

    corners: np.ndarray  # (4, 2) float
    modules: int
    homography: np.ndarray  # (3, 3)
    finders: tuple[Finder, Finder, Finder]  # tl, tr, bl
    residual: float  # RMS distance of the finder outline corners from the fitted homography, modules

    @property
    def supported(self) -> bool:
        return self.modules == SIZE


def timing_contrast(grey: np.ndarray, homography: np.ndarray, modules: int) -> float:
    """How clearly the timing modules between the finders of a code with ``modules`` modules, seen through the
    module-to-pixel ``homography``, alternate in step with the finder cores' polarity: (light-module mean -
    dark-module mean) / spread of the samples; high for a correctly oriented code."""
    points, dark = _timing_points(modules)
    pixels = cv2.perspectiveTransform(points, homography).astype(np.float32)
    values = cv2.remap(grey, pixels, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel().tolist()
    *timing, core, ring = values  # a few dozen values: plain Python costs less than numpy calls
    dark_values = [v for v, is_dark in zip(timing, dark) if is_dark]
    light_values = [v for v, is_dark in zip(timing, dark) if not is_dark]
    mean = sum(timing) / len(timing)
    spread = math.sqrt(sum((v - mean) ** 2 for v in timing) / len(timing))
    polarity = 1.0 if ring >= core else -1.0
    return polarity * (sum(light_values) / len(light_values) - sum(dark_values) / len(dark_values)) / (spread + 1.0)


@lru_cache(maxsize=8)
def _timing_points(modules: int) -> tuple[np.ndarray, tuple[bool, ...]]:
    """(1, P, 2) module coordinates of the timing modules (row 6, then column 6), then a finder core and a light
    ring module; and which timing modules are dark (those at even module indices)."""
    inner = np.arange(8, modules - 8) + 0.5
    points = np.concatenate([np.c_[inner, np.full_like(inner, 6.5)], np.c_[np.full_like(inner, 6.5), inner],
                             [[3.5, 3.5], [1.5, 3.5]]])
    return points[None], tuple(i % 2 == 0 for i in range(len(inner))) * 2


def _module_px(triple: tuple[Finder, Finder, Finder]) -> float:
    """The mean module size of three finder patterns, pixels."""
    return sum(finder.size for finder in triple) / 21


def robust_bound(triple: tuple[Finder, Finder, Finder]) -> float:
    """The fit residual (modules) above which a code's fit is redone robustly."""
    return max(ROBUST_ABOVE, ROBUST_MIN_PX / _module_px(triple))


def _module_count(tl: Finder, tr: Finder, bl: Finder) -> int:
    """Estimated module count 17 + 4 v from the finder distances in module sizes."""
    spans = [7 * math.dist(f.centre, tl.centre) / ((tl.size + f.size) / 2) for f in (tr, bl)]
    return 17 + 4 * max(1, round(((spans[0] + spans[1]) / 2 + 7 - 17) / 4))


def fit_trio(triple: tuple[Finder, Finder, Finder], method: int = 0, outermost: bool = False) -> LocatedCode | None:
    """Homography from module coordinates to pixels, fitted to every outline corner of the three finders by
    ``method`` (``cv2.findHomography``'s: 0 least squares, ``cv2.LMEDS`` least median of squares); with
    ``outermost``, only to the corners of each finder's outermost outline, by :func:`_algebraic_fit` (enough to
    judge the timing patterns, and the inner outlines' corners of the many trios that are no code are never
    computed).

    Plain Python up to the OpenCV calls: a frame has at most 36 corners, where each numpy call costs more than
    the arithmetic (and far more when another program has just run: 0.1 ms less per frame in the benchmark).
    """
    tl, tr, bl = triple
    modules = _module_count(tl, tr, bl)
    (ax, ay), (bx, by) = ((f.centre[0] - tl.centre[0], f.centre[1] - tl.centre[1]) for f in (tr, bl))
    det = ax * by - bx * ay
    if abs(det) < 1e-9:
        return None
    # a point's coordinates along the finder axes a (right) and b (down): the inverse of the matrix [a b]
    ra, rb, da, db = by / det, -bx / det, -ay / det, ax / det
    source: list[tuple[float, float]] = []  # module coordinates of the outline corners
    target: list[tuple[float, float]] = []  # ... and their pixels
    for finder, (ox, oy) in zip(triple, ((0, 0), (modules - 7, 0), (0, modules - 7))):
        cx, cy = finder.centre
        for depth, quad in finder.outer if outermost else finder.quads:
            # each corner by its quadrant around the finder's centre: (right of it, below it)
            corners = {((x - cx) * ra + (y - cy) * rb > 0, (x - cx) * da + (y - cy) * db > 0): (x, y) for x, y in quad}
            if len(corners) == 4:  # one corner in each quadrant
                source += [(ox + (7 - depth if right else depth), oy + (7 - depth if below else depth))
                           for right, below in corners]
                target += corners.values()
    if len(source) < 8:  # fewer than two whole outlines
        return None
    # The outline corners, then the symbol's corners (module coordinates), mapped in one call.
    points = np.array([source + [(0, 0), (modules, 0), (modules, modules), (0, modules)]], np.float64)
    if outermost:
        homography = _algebraic_fit(source, target)
    else:
        homography, _ = cv2.findHomography(points[0, :-4], np.array(target), method)
    if homography is None:
        return None
    pixels = cv2.perspectiveTransform(points, homography)[0]
    residual = math.sqrt(((pixels[:-4] - np.array(target)) ** 2).sum(1).mean()) / _module_px(triple)  # RMS, modules
    corners = pixels[-4:]
    if not cv2.isContourConvex(corners.astype(np.float32)):
        return None
    return LocatedCode(corners, modules, homography, triple, residual)


def fit_all_outlines(triple: tuple[Finder, Finder, Finder]) -> LocatedCode | None:
    """:func:`fit_trio` of ``triple`` (least squares, every outline corner), compiled
    (:func:`livereader.kernels.full_fit`) once the kernels are ready (:mod:`livereader.compiled`),
    and until then by :func:`fit_trio` itself: the same fit, to within 0.005 px."""
    kernels = compiled.kernels()
    if kernels is None:
        return fit_trio(triple)
    quads, depths = np.zeros((3, 3, 4, 2)), np.full((3, 3), -1, np.int64)
    for row, finder in enumerate(triple):
        for column, (depth, quad) in enumerate(finder.quads):
            quads[row, column], depths[row, column] = quad, depth
    fitted, modules, homography, corners, residual = kernels.full_fit(
        np.array([f.centre for f in triple]), np.array([f.size for f in triple]), quads, depths)
    return LocatedCode(corners, modules, homography, triple, residual) if fitted else None


def _algebraic_fit(source: list[tuple[float, float]], target: list[tuple[float, float]]) -> np.ndarray | None:
    """The homography from ``source`` to ``target`` points of least algebraic error (the direct linear transform
    with h33 = 1, pixels centred and scaled for conditioning), or None where the points do not determine one.

    Written by hand because ``cv2.findHomography`` always refines its least-squares fit by Levenberg-Marquardt
    iterations (0.1 ms for 12 corners, 0.02 ms here): a trio is judged by its timing modules' places, which this
    fit puts within half a pixel of the refined one, and a cluttered frame judges hundreds of trios that are no
    code. Plain Python up to the solver, as in :func:`fit_trio`.
    """
    cx, cy = sum(u for u, _ in target) / len(target), sum(v for _, v in target) / len(target)
    scale = sum(abs(u - cx) + abs(v - cy) for u, v in target) / len(target) or 1.0
    rows, values = [], []
    for (x, y), (u, v) in zip(source, target):
        u, v = (u - cx) / scale, (v - cy) / scale
        rows += [(x, y, 1, 0, 0, 0, -u * x, -u * y), (0, 0, 0, x, y, 1, -v * x, -v * y)]
        values += [u, v]
    solved, h = cv2.solve(np.array(rows, np.float64), np.array(values, np.float64)[:, None], flags=cv2.DECOMP_QR)
    if not solved:
        return None
    return np.array([[scale, 0, cx], [0, scale, cy], [0, 0, 1]]) @ np.append(h, 1.0).reshape(3, 3)
