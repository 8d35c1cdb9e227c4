"""Compiled kernels of finder location (:mod:`livereader.vision.finder`), grouping (:mod:`livereader.vision.grouping`),
fitting (:mod:`livereader.vision.fit`), a grid's polarity and format bits (:mod:`livereader.decode.verify`,
:mod:`livereader.vision.grid`), Reed-Solomon decoding (:mod:`livereader.decode.codeword`), six-digit
verification (:mod:`livereader.decode.verify`) and the deconvolution of blurred codes
(:mod:`livereader.vision.deblur`), each tested
against the plain reference named in its docstring (conventions: :mod:`livereader.vision.finder`).

These stages are many small steps: finder location tests every nested contour of a frame (hundreds in a cluttered
frame), grouping weighs every two finder candidates and judges every trio that could be a code, and each code found
is fitted to all its outlines. In plain Python or numpy that is thousands of calls on a few numbers each (a third of
the time of a real 720p video, beside OpenCV's thresholding and contour tracing). Compiled by numba: one call per
search measures its noise and two test its contours (each numpy or OpenCV call costs microseconds of its own, as much
as the work on a 240x240 photo's contours), three per grouping weigh pairs and triples, one per outline finds its
quad, one per trio fits and judges its orders, one per code fits all its outlines. Reed-Solomon decoding in
``reedsolo`` (pure Python) costs 0.12 ms a decode that corrects errors, and a rejected code's grid is tried with up
to four sets of erasures (7.3 ms of a photo of 60 codes); compiled, 5 us (0.7 ms). A blurred code's deconvolution is
dozens of numpy calls on 25x25 arrays per step (2.4 ms for 60 steps); compiled, 0.4 ms. A six-digit grid's
verification is a dozen numpy calls on its candidates (0.18 ms a grid read with a confident CNN, the median of 300);
compiled, 0.03 ms. A sampled grid's soft values, orientation, polarity and format bits are about three dozen numpy and
OpenCV calls a code before the CNN; compiled, four calls a search's codes. One module for the compiled
stages, so that numba's set-up lives in one place.

numba compiles each kernel at its first call and caches it on disk (``cache=True``: in ``__pycache__`` beside this
module, or in the user's cache directory where that is not writable; ``NUMBA_CACHE_DIR`` moves it). When a process
uses the kernels, and how it avoids waiting for the compiler: :mod:`livereader.compiled`. Run as ``python -m
livereader.kernels``, this module compiles (or loads) every kernel (:func:`compile_all`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

from livereader.symbol import SIZE

_F = TypeVar("_F", bound=Callable[..., Any])


CACHED = True  # whether numba caches the kernels on disk here (False where no cache location is writable)


def _jit(function: _F) -> _F:
    """``function`` compiled by numba at its first call, without the GIL; a float division by zero gives inf or nan
    (numpy's rule), not an exception. Cached on disk where a cache location is writable; where none is (numba
    refuses to cache there), not cached, and ``CACHED`` says so."""
    global CACHED
    try:
        return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy")(function))
    except RuntimeError:  # "cannot cache function ...: no locator available"
        CACHED = False
        return cast(_F, numba.njit(nogil=True, error_model="numpy")(function))


@_jit
def hull_quad(hull: np.ndarray) -> tuple[bool, np.ndarray]:
    """The four corners of a roughly quadrilateral contour from its convex ``hull`` ((k, 1, 2) points, as
    ``cv2.convexHull`` gives them), in order around it, and whether it has four. Reference:
    :func:`livereader.vision.finder.reference_quad` (which explains the choice)."""
    points = hull[:, 0, :]
    count = len(points)
    corners = np.zeros((4, 2))
    if count < 4:
        return False, corners
    cx, cy = 0.0, 0.0
    for i in range(count):
        cx += points[i, 0]
        cy += points[i, 1]
    cx, cy = cx / count, cy / count
    first, third = 0, 0  # the point farthest from the centroid, and the point farthest from it (first of ties)
    best = -1.0
    for i in range(count):
        distance = (points[i, 0] - cx) ** 2 + (points[i, 1] - cy) ** 2
        if distance > best:
            first, best = i, distance
    best = -1.0
    for i in range(count):
        distance = float((points[i, 0] - points[first, 0]) ** 2 + (points[i, 1] - points[first, 1]) ** 2)
        if distance > best:
            third, best = i, distance
    ax, ay = points[third, 0] - points[first, 0], points[third, 1] - points[first, 1]
    right, left, right_at, left_at = 0, 0, -1, -1  # the farthest points either side of that diagonal
    for i in range(count):
        side = (points[i, 0] - points[first, 0]) * ay - (points[i, 1] - points[first, 1]) * ax
        if right_at < 0 or side > right:
            right, right_at = side, i
        if left_at < 0 or side < left:
            left, left_at = side, i
    if right <= 0 or left >= 0:
        return False, corners
    corners[0, 0], corners[0, 1] = points[first, 0], points[first, 1]
    corners[1, 0], corners[1, 1] = points[right_at, 0], points[right_at, 1]
    corners[2, 0], corners[2, 1] = points[third, 0], points[third, 1]
    corners[3, 0], corners[3, 1] = points[left_at, 0], points[left_at, 1]
    return True, corners


@_jit
def _ring(tree: np.ndarray, contour: int) -> bool:
    """Whether a contour of the ``tree`` (rows: next, previous, first child, parent) is a candidate ring: it has a
    parent and a child."""
    return tree[contour, 2] >= 0 and tree[contour, 3] >= 0


@_jit
def ring_contours(tree: np.ndarray) -> np.ndarray:
    """The contours that :func:`ring_candidates` looks at, sorted: each candidate ring (:func:`_ring`), its parent
    and its children."""
    needed = np.zeros(len(tree), np.bool_)
    for ring in range(len(tree)):
        if not _ring(tree, ring):
            continue
        needed[ring] = needed[tree[ring, 3]] = True
        child = tree[ring, 2]
        while child >= 0:
            needed[child] = True
            child = tree[child, 0]
    return np.flatnonzero(needed)


@_jit
def median_difference(sample: np.ndarray) -> float:
    """The median of the absolute differences of horizontal neighbours in a uint8 image of at least two columns
    (the mean of the two middle ones where their count is even), from their histogram. Reference:
    :func:`livereader.vision.finder.reference_median_difference`."""
    rows, columns = sample.shape
    counts = np.zeros(256, np.int64)
    for row in range(rows):
        for column in range(columns - 1):
            difference = np.int32(sample[row, column + 1]) - np.int32(sample[row, column])
            counts[abs(difference)] += 1
    size = rows * (columns - 1)
    below, low = 0, -1  # differences <= each level
    for level in range(256):
        below += counts[level]
        if low < 0 and below >= (size - 1) // 2 + 1:
            low = level
        if below >= size // 2 + 1:
            return (low + level) / 2
    return 255.0


@_jit
def _area_and_centre(points: np.ndarray, start: int, end: int) -> tuple[float, float, float]:
    """The signed area of the polygon ``points[start:end]``, as ``cv2.contourArea(contour, True)`` gives it, and
    its centroid, as ``cv2.moments`` gives it (m10 / m00, m01 / m00); the centroid (0, 0) where it has no area."""
    area = sx = sy = 0.0
    px, py = points[end - 1, 0], points[end - 1, 1]
    for i in range(start, end):
        x, y = points[i, 0], points[i, 1]
        cross = px * y - py * x
        area += cross
        sx += (px + x) * cross
        sy += (py + y) * cross
        px, py = x, y
    if area == 0:
        return 0.0, 0.0, 0.0
    return area / 2, sx / (3 * area), sy / (3 * area)


@_jit
def _inner_area(area: float, outer: bool) -> float:
    """Reference: :func:`livereader.vision.finder._inner_area`."""
    return (math.sqrt(area) + (1.0 if outer else -1.0)) ** 2 if area >= 1 else 0.0


@_jit
def ring_candidates(tree: np.ndarray, needed: np.ndarray, lengths: np.ndarray, contours: np.ndarray,
                    min_core_px: float, max_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """The finder candidates of a contour ``tree`` (rows: next, previous, first child, parent), one per place, the most
    finder-like first, at most ``max_candidates`` looked at (:func:`_distinct`): (k, 3) float centres x, y and sizes,
    and (k, 3) ring, core and outer contour indices (outer -1: not a finder's 7x7 outline). The contours ``needed``
    (:func:`ring_contours`) lie one after another in ``contours`` (int (P, 1, 2), as ``cv2.findContours`` gives
    each), contour k of them ``lengths[k]`` points long. Reference: :func:`livereader.vision.finder.reference_located`
    (:func:`livereader.vision.finder.reference_candidates` explains the tests)."""
    points = contours.reshape(-1, 2).astype(np.float64)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    offsets[1:] = np.cumsum(lengths)
    position = np.empty(len(tree), np.int64)  # of each contour needed, its place in ``needed``
    for k in range(len(needed)):
        position[needed[k]] = k
    count = len(needed)
    xs, ys, sizes, scores = np.empty(count), np.empty(count), np.empty(count), np.empty(count)
    ring_ids, cores, outers = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, np.int64)
    kept = 0
    for ring in needed:
        if not _ring(tree, ring):  # a parent or child of a ring, not a ring itself
            continue
        outer = tree[ring, 3]
        core, core_m00, core_x, core_y = -1, -1.0, 0.0, 0.0
        child = tree[ring, 2]
        while child >= 0:  # the largest child
            k = position[child]
            area, x, y = _area_and_centre(points, offsets[k], offsets[k + 1])
            if abs(area) > core_m00:
                core, core_m00, core_x, core_y = child, abs(area), x, y
            child = tree[child, 0]
        k = position[ring]
        oriented, ring_x, ring_y = _area_and_centre(points, offsets[k], offsets[k + 1])
        ring_is_hole, ring_m00 = oriented > 0, abs(oriented)  # dark-on-light: the ring is a hole
        if core_m00 <= 0 or ring_m00 <= 0:
            continue
        ring_area = _inner_area(ring_m00, not ring_is_hole)
        core_area = _inner_area(core_m00, ring_is_hole)
        if core_area < min_core_px or not 0.04 < core_area / max(ring_area, 1.0) < 0.7:
            continue
        if np.hypot(ring_x - core_x, ring_y - core_y) > 0.15 * math.sqrt(ring_area):
            continue
        k = position[outer]
        outer_area, _, _ = _area_and_centre(points, offsets[k], offsets[k + 1])
        outer_ratio = ring_area / max(_inner_area(abs(outer_area), ring_is_hole), 1.0)
        score = abs(math.log(core_area / ring_area / 0.36))
        if 0.3 < outer_ratio < 0.8:
            score += abs(math.log(outer_ratio / 0.51))
        else:
            score += 0.7
            outer = -1
        xs[kept], ys[kept], sizes[kept], scores[kept] = core_x, core_y, math.sqrt(ring_m00) * 7 / 5, score
        ring_ids[kept], cores[kept], outers[kept] = ring, core, outer
        kept += 1
    # the most finder-like first (a stable sort: equal scores keep the contours' order)
    order = np.argsort(scores[:kept], kind="mergesort")[:max_candidates]
    chosen = _distinct(xs, ys, sizes, order)
    places, outlines = np.empty((len(chosen), 3)), np.empty((len(chosen), 3), np.int64)
    for i, index in enumerate(chosen):
        places[i, 0], places[i, 1], places[i, 2] = xs[index], ys[index], sizes[index]
        outlines[i, 0], outlines[i, 1], outlines[i, 2] = ring_ids[index], cores[index], outers[index]
    return places, outlines


@_jit
def _distinct(xs: np.ndarray, ys: np.ndarray, sizes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The candidates kept of :func:`ring_candidates`' (centres ``xs``, ``ys``, ``sizes``), as indices in the order
    kept: of those in ``order`` (the most finder-like first), one per place, the most finder-like of concentric
    ones. Reference: ``livereader.vision.finder.reference_located``."""
    if len(order) < 2:
        return order
    kept = np.empty(len(order), np.int64)
    blocked = np.zeros(len(xs), np.bool_)
    count = 0
    for i in order:
        if blocked[i]:
            continue
        kept[count] = i
        count += 1
        for j in order:
            small, large = min(sizes[i], sizes[j]), max(sizes[i], sizes[j])
            if j != i and np.hypot(xs[i] - xs[j], ys[i] - ys[j]) <= 0.3 * small and large <= 2.5 * small:
                blocked[j] = True
    return kept[:count]


@_jit
def _plausible(distance: float, size_a: float, size_b: float, max_size_ratio: float, max_modules: int) -> bool:
    """Whether two finders of these sizes this far apart could be two corners of one code."""
    span = 7 * distance / ((size_a + size_b) / 2)
    small, large = min(size_a, size_b), max(size_a, size_b)
    return large < max_size_ratio * small and span > 9 and span < max_modules - 7


@_jit
def paired(centres: np.ndarray, sizes: np.ndarray, max_size_ratio: float, max_modules: int) -> np.ndarray:
    """(n,) bool: whether each finder has another that could share a code with it (similar size, a plausible
    span). Reference: ``np.any(plausible, axis=1)`` in :func:`livereader.vision.grouping.reference_sides`."""
    n = len(sizes)
    found = np.zeros(n, np.bool_)
    # along x, left to right: a finder's partner lies within its reach, (max_modules - 7) / 7 times the two finders'
    # mean size, the other's size being below max_size_ratio times its own
    order = np.argsort(centres[:, 0], kind="mergesort")
    for a in range(n):
        i = order[a]
        reach = (max_modules - 7) / 14 * (sizes[i] + max_size_ratio * sizes[i]) * (1 + 1e-9)
        for b in range(a + 1, n):
            j = order[b]
            if centres[j, 0] - centres[i, 0] >= reach:
                break
            distance = np.hypot(centres[j, 0] - centres[i, 0], centres[j, 1] - centres[i, 1])
            if _plausible(distance, sizes[i], sizes[j], max_size_ratio, max_modules):
                found[i] = found[j] = True
    return found


@_jit
def _half_axis(dx: float, dy: float, units: np.ndarray) -> tuple[int, float, float]:
    """The half-axis (0..3: axis 0 forward and backward, then axis 1) of a finder whose edge directions are the unit
    vectors ``units`` (2, 2) nearest the direction (dx, dy), and that direction's parts across and along it: its
    angle off the axis is atan2(across, along), <= pi/2 (no trigonometry: the angles are only compared)."""
    along_0, across_0 = dx * units[0, 0] + dy * units[0, 1], dx * units[0, 1] - dy * units[0, 0]
    along_1, across_1 = dx * units[1, 0] + dy * units[1, 1], dx * units[1, 1] - dy * units[1, 0]
    if abs(across_0) * abs(along_1) <= abs(across_1) * abs(along_0):
        return int(along_0 < 0), abs(across_0), abs(along_0)
    return 2 + int(along_1 < 0), abs(across_1), abs(along_1)


@_jit
def _tangent(limit: float) -> float:
    """tan(``limit``) for an angle limit in radians: ``across < _tangent(limit) * along`` where atan2(across, along)
    (both >= 0) is under it (a limit of pi/2 or more: under it wherever ``along`` > 0)."""
    return np.tan(limit) if limit < np.pi / 2 else np.inf


@_jit
def _insert(nearest: np.ndarray, best: np.ndarray, finder: int, direction: int, other: int, distance: float) -> None:
    """``other`` among ``finder``'s nearest partners along a half-axis (``best``: their distances), if near enough;
    a tie keeps the earlier one first."""
    partners = nearest.shape[2]
    slot = partners
    while slot > 0 and distance < best[finder, direction, slot - 1]:
        slot -= 1
    if slot < partners:
        for moved in range(partners - 1, slot, -1):
            best[finder, direction, moved] = best[finder, direction, moved - 1]
            nearest[finder, direction, moved] = nearest[finder, direction, moved - 1]
        best[finder, direction, slot] = distance
        nearest[finder, direction, slot] = other


@_jit
def side_partners(centres: np.ndarray, sizes: np.ndarray, axes: np.ndarray, candidates: np.ndarray, partners: int,
                  max_size_ratio: float, max_modules: int, max_misalignment: float,
                  max_other_misalignment: float) -> np.ndarray:
    """(n, 4, partners): for each finder and each of its four half-axes, the nearest ``partners`` finders that could
    share a side of one code with it, nearest first (-1: none). ``candidates``: the indices, ascending, of the
    finders that :func:`paired` accepts (no other finder has a partner); ``axes`` (n, 2) are the finders' edge
    directions (:attr:`Finder.axes`; any value for the others). Each pair is judged once, for both finders.
    Reference: :func:`livereader.vision.grouping.reference_sides` (which explains the geometry)."""
    n = len(sizes)
    nearest = np.full((n, 4, partners), -1, np.int64)
    best = np.full((n, 4, partners), np.inf)
    units = np.empty((n, 2, 2))
    for i in candidates:
        for axis in range(2):
            units[i, axis, 0], units[i, axis, 1] = np.cos(axes[i, axis]), np.sin(axes[i, axis])
    better, other = _tangent(max_misalignment), _tangent(max_other_misalignment)
    for a in range(len(candidates)):
        i = candidates[a]
        for b in range(a + 1, len(candidates)):
            j = candidates[b]
            dx, dy = centres[j, 0] - centres[i, 0], centres[j, 1] - centres[i, 1]
            distance = np.hypot(dx, dy)
            if not _plausible(distance, sizes[i], sizes[j], max_size_ratio, max_modules):
                continue
            towards_j, across_i, along_i = _half_axis(dx, dy, units[i])
            towards_i, across_j, along_j = _half_axis(-dx, -dy, units[j])
            # the better aligned of the two within max_misalignment, the other within max_other_misalignment
            if ((across_i < better * along_i or across_j < better * along_j)
                    and across_i < other * along_i and across_j < other * along_j):
                _insert(nearest, best, i, towards_j, j, distance)  # candidates ascend: each list in index order
                _insert(nearest, best, j, towards_i, i, distance)
    return nearest


@_jit
def candidate_triples(centres: np.ndarray, sizes: np.ndarray, nearest: np.ndarray, max_size_ratio: float,
                      max_side_ratio: float, max_side_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (tl, tr, bl) triples, (m, 3) indices, and how unlike a code's corners each looks, (m,) (lower is
    better), of finders with side partners ``nearest`` (:func:`side_partners`), in the order of the plain
    reference :func:`livereader.vision.grouping.reference_triple_scores` (which explains the geometry)."""
    n, partners = len(sizes), nearest.shape[2]
    triples = np.empty((4 * partners * partners * n, 3), np.int64)
    scores = np.empty(4 * partners * partners * n)
    count = 0
    for c in range(n):
        for axis_a, axis_b in ((0, 2), (0, 3), (1, 2), (1, 3)):  # half-axes along different axes
            for p0 in nearest[c, axis_a]:
                for q0 in nearest[c, axis_b]:
                    if p0 < 0 or q0 < 0:
                        continue
                    p, q = p0, q0
                    ax, ay = centres[p, 0] - centres[c, 0], centres[p, 1] - centres[c, 1]
                    bx, by = centres[q, 0] - centres[c, 0], centres[q, 1] - centres[c, 1]
                    if ax * by - ay * bx < 0:  # y down: tr -> tl -> bl turns so that cross(tr - tl, bl - tl) > 0
                        p, q = q0, p0
                        ax, ay, bx, by = bx, by, ax, ay
                    la, lb = np.hypot(ax, ay), np.hypot(bx, by)
                    size_ratio = max(sizes[c], sizes[p], sizes[q]) / min(sizes[c], sizes[p], sizes[q])
                    cos = abs(ax * bx + ay * by) / max(la * lb, 1e-9)
                    span_a, span_b = 7 * la / ((sizes[c] + sizes[p]) / 2), 7 * lb / ((sizes[c] + sizes[q]) / 2)
                    if not (max(la, lb) < max_side_ratio * min(la, lb) and size_ratio < max_size_ratio
                            and cos < max_side_cos):
                        continue
                    triples[count, 0], triples[count, 1], triples[count, 2] = c, p, q
                    scores[count] = cos + abs(np.log(la / lb)) + abs(np.log(span_a / span_b)) + np.log(size_ratio)
                    count += 1
    return triples[:count], scores[:count]


@_jit
def _transform(homography: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """A point through a homography as ``cv2.perspectiveTransform`` maps it (to (0, 0) at infinity)."""
    w = homography[2, 0] * x + homography[2, 1] * y + homography[2, 2]
    if abs(w) <= 1.1920929e-07:  # FLT_EPSILON
        return 0.0, 0.0
    return ((homography[0, 0] * x + homography[0, 1] * y + homography[0, 2]) / w,
            (homography[1, 0] * x + homography[1, 1] * y + homography[1, 2]) / w)


@_jit
def _bilinear(grey: np.ndarray, x: float, y: float) -> float:
    """The grey level at (x, y) as ``cv2.remap`` interpolates an 8-bit image (INTER_LINEAR, BORDER_REPLICATE) in
    OpenCV 4.11 and later: single precision, rounded to an integer (earlier versions round the place to 1/32
    pixel first)."""
    x32, y32 = np.float32(x), np.float32(y)
    x0, y0 = int(np.floor(x32)), int(np.floor(y32))
    fx, fy = x32 - np.float32(x0), y32 - np.float32(y0)
    one = np.float32(1)
    height, width = grey.shape
    left, right = min(max(x0, 0), width - 1), min(max(x0 + 1, 0), width - 1)
    top, bottom = min(max(y0, 0), height - 1), min(max(y0 + 1, 0), height - 1)
    value = ((one - fx) * (one - fy) * np.float32(grey[top, left]) + fx * (one - fy) * np.float32(grey[top, right])
             + (one - fx) * fy * np.float32(grey[bottom, left]) + fx * fy * np.float32(grey[bottom, right]))
    return float(min(max(np.rint(value), np.float32(0)), np.float32(255)))


@_jit
def _timing_contrast(grey: np.ndarray, homography: np.ndarray, modules: int) -> float:
    """How clearly a code's timing modules alternate in step with its finder cores' polarity. Reference:
    :func:`livereader.vision.fit.timing_contrast` (which defines it)."""
    count = modules - 16
    values = np.empty(2 * count)
    for k in range(count):
        along = 8 + k + 0.5
        x, y = _transform(homography, along, 6.5)
        values[k] = _bilinear(grey, x, y)
        x, y = _transform(homography, 6.5, along)
        values[count + k] = _bilinear(grey, x, y)
    x, y = _transform(homography, 3.5, 3.5)
    core = _bilinear(grey, x, y)
    x, y = _transform(homography, 1.5, 3.5)
    ring = _bilinear(grey, x, y)
    mean = 0.0
    for index in range(2 * count):
        mean += values[index]
    mean /= 2 * count
    spread = 0.0
    for index in range(2 * count):
        spread += (values[index] - mean) ** 2
    spread = math.sqrt(spread / (2 * count))
    dark, light, darks, lights = 0.0, 0.0, 0, 0
    for index in range(2 * count):
        if (index % count) % 2 == 0:
            dark += values[index]
            darks += 1
        else:
            light += values[index]
            lights += 1
    polarity = 1.0 if ring >= core else -1.0
    return polarity * (light / lights - dark / darks) / (spread + 1.0)


@_jit
def _least_squares(a: np.ndarray, b: np.ndarray) -> tuple[bool, np.ndarray]:
    """The 9 entries of a homography, the last 1, whose first 8 solve the over-determined ``a`` (m, 8) h = ``b``
    (m,) by least squares (Householder QR; ``a`` and ``b`` are overwritten), and whether ``a`` has full rank."""
    rows = len(b)
    reflector = np.empty(rows)
    for col in range(8):  # Householder reflections: a becomes R above its diagonal, b becomes Q^T b
        norm = 0.0
        for row in range(col, rows):
            norm += a[row, col] ** 2
        norm = math.sqrt(norm)
        if norm < 1e-12:
            return False, b[:0]
        alpha = -norm if a[col, col] > 0 else norm
        length = 0.0
        for row in range(col, rows):
            reflector[row] = a[row, col] - (alpha if row == col else 0.0)
            length += reflector[row] ** 2
        for other in range(col, 8):
            dot = 0.0
            for row in range(col, rows):
                dot += reflector[row] * a[row, other]
            for row in range(col, rows):
                a[row, other] -= reflector[row] * 2 * dot / length
        dot = 0.0
        for row in range(col, rows):
            dot += reflector[row] * b[row]
        for row in range(col, rows):
            b[row] -= reflector[row] * 2 * dot / length
    h = np.empty(9)
    h[8] = 1.0
    for row in range(7, -1, -1):
        total = b[row]
        for col in range(row + 1, 8):
            total -= a[row, col] * h[col]
        h[row] = total / a[row, row]
    return True, h


@_jit
def _algebraic_fit(source: np.ndarray, target: np.ndarray) -> tuple[bool, np.ndarray]:
    """The homography from ``source`` to ``target`` (k, 2) points of least algebraic error, and whether the points
    determine one. Reference: :func:`livereader.vision.fit._algebraic_fit` (the same direct linear transform;
    here solved by Householder QR: numba's matrix products need SciPy)."""
    k = len(source)
    cx = cy = scale = 0.0
    for i in range(k):
        cx += target[i, 0]
        cy += target[i, 1]
    cx, cy = cx / k, cy / k
    for i in range(k):
        scale += abs(target[i, 0] - cx) + abs(target[i, 1] - cy)
    scale = scale / k if scale > 0 else 1.0
    a = np.zeros((2 * k, 8))
    b = np.empty(2 * k)
    for i in range(k):
        x, y = source[i, 0], source[i, 1]
        u, v = (target[i, 0] - cx) / scale, (target[i, 1] - cy) / scale
        a[2 * i, 0], a[2 * i, 1], a[2 * i, 2], a[2 * i, 6], a[2 * i, 7] = x, y, 1.0, -u * x, -u * y
        a[2 * i + 1, 3], a[2 * i + 1, 4], a[2 * i + 1, 5], a[2 * i + 1, 6], a[2 * i + 1, 7] = x, y, 1.0, -v * x, -v * y
        b[2 * i], b[2 * i + 1] = u, v
    solved, h = _least_squares(a, b)
    if not solved:
        return False, np.zeros((3, 3))
    homography = h.reshape(3, 3).copy()  # the pixels uncentred, unscaled: [[s, 0, cx], [0, s, cy], [0, 0, 1]] @ h
    for col in range(3):
        homography[0, col] = scale * homography[0, col] + cx * homography[2, col]
        homography[1, col] = scale * homography[1, col] + cy * homography[2, col]
    return True, homography


@_jit
def _convex(corners: np.ndarray) -> bool:
    """Whether a quad is strictly convex, as ``cv2.isContourConvex`` judges its float32 corners."""
    n = len(corners)
    previous_x, previous_y = np.float32(corners[n - 1, 0]), np.float32(corners[n - 1, 1])
    dx0, dy0 = previous_x - np.float32(corners[n - 2, 0]), previous_y - np.float32(corners[n - 2, 1])
    orientation = 0
    for i in range(n):
        x, y = np.float32(corners[i, 0]), np.float32(corners[i, 1])
        dx, dy = x - previous_x, y - previous_y
        dxdy0, dydx0 = dx * dy0, dy * dx0
        orientation |= 1 if dydx0 > dxdy0 else (2 if dydx0 < dxdy0 else 3)
        if orientation == 3:
            return False
        dx0, dy0, previous_x, previous_y = dx, dy, x, y
    return True


@_jit
def _solve(matrix: np.ndarray, vector: np.ndarray) -> tuple[bool, np.ndarray]:
    """x with matrix @ x = vector for a small square matrix (Gaussian elimination, partial pivoting), and whether
    the matrix is regular."""
    n = len(vector)
    a, b = matrix.copy(), vector.copy()
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(a[row, col]) > abs(a[pivot, col]):
                pivot = row
        if abs(a[pivot, col]) < 1e-300:
            return False, b
        if pivot != col:
            for other in range(n):
                a[col, other], a[pivot, other] = a[pivot, other], a[col, other]
            b[col], b[pivot] = b[pivot], b[col]
        for row in range(col + 1, n):
            factor = a[row, col] / a[col, col]
            for other in range(col, n):
                a[row, other] -= factor * a[col, other]
            b[row] -= factor * b[col]
    x = np.empty(n)
    for row in range(n - 1, -1, -1):
        total = b[row]
        for col in range(row + 1, n):
            total -= a[row, col] * x[col]
        x[row] = total / a[row, row]
    return True, x


@_jit
def _squares(h: np.ndarray, source: np.ndarray, target: np.ndarray) -> float:
    """The sum of squared distances (pixels^2) of ``target`` from ``source`` mapped by the homography whose
    first eight entries are ``h`` (the ninth is 1)."""
    total = 0.0
    for i in range(len(source)):
        x, y = source[i, 0], source[i, 1]
        w = h[6] * x + h[7] * y + 1.0
        total += ((h[0] * x + h[1] * y + h[2]) / w - target[i, 0]) ** 2 + ((h[3] * x + h[4] * y + h[5]) / w
                                                                            - target[i, 1]) ** 2
    return total


@_jit
def _normal_equations(h: np.ndarray, source: np.ndarray, target: np.ndarray, normal: np.ndarray,
                      gradient: np.ndarray, jx: np.ndarray, jy: np.ndarray) -> None:
    """J^T J into ``normal`` (8, 8) and J^T r into ``gradient`` (8,) for the distances r of ``target`` from
    ``source`` mapped by the homography whose first eight entries are ``h``; ``jx`` and ``jy`` (8,) are room for
    one point's derivatives."""
    for row in range(8):
        gradient[row] = 0.0
        for col in range(8):
            normal[row, col] = 0.0
    for i in range(len(source)):
        x, y = source[i, 0], source[i, 1]
        w = h[6] * x + h[7] * y + 1.0
        px, py = (h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w
        jx[0], jx[1], jx[2], jx[6], jx[7] = x / w, y / w, 1 / w, -x * px / w, -y * px / w
        jy[3], jy[4], jy[5], jy[6], jy[7] = x / w, y / w, 1 / w, -x * py / w, -y * py / w
        rx, ry = px - target[i, 0], py - target[i, 1]
        for row in range(8):
            gradient[row] += jx[row] * rx + jy[row] * ry
            for col in range(8):
                normal[row, col] += jx[row] * jx[col] + jy[row] * jy[col]


@_jit
def _refined(homography: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The homography refined to the least squared distances of ``target`` from ``source`` mapped by it
    (Levenberg-Marquardt on its eight entries, the ninth kept 1), as ``cv2.findHomography`` refines its
    least-squares estimate. Reference: ``cv2.findHomography(source, target, 0)``."""
    h = np.empty(8)
    for k in range(8):
        h[k] = homography[k // 3, k % 3] / homography[2, 2]
    error = _squares(h, source, target)
    damping = 1e-3
    normal, gradient = np.zeros((8, 8)), np.zeros(8)
    jx, jy = np.zeros(8), np.zeros(8)  # d(mapped x)/dh and d(mapped y)/dh of one point
    damped, trial = np.empty((8, 8)), np.empty(8)
    for _ in range(30):
        _normal_equations(h, source, target, normal, gradient, jx, jy)
        improved = converged = False
        while damping < 1e6 and not converged:
            for row in range(8):
                for col in range(8):
                    damped[row, col] = normal[row, col] * (1.0 + damping if row == col else 1.0)
                trial[row] = -gradient[row]
            solved, step = _solve(damped, trial)
            if not solved:
                break
            # a step that moves no entry by more than 1e-12 of itself: rounding, not descent
            converged = True
            for k in range(8):
                converged = converged and abs(step[k]) <= 1e-12 * max(abs(h[k]), 1e-12)
                trial[k] = h[k] + step[k]
            trial_error = _squares(trial, source, target)
            if trial_error < error:
                h, trial, improved = trial, h, True
                damping = max(damping / 10, 1e-12)
                converged = converged or error - trial_error <= 1e-12 * error
                error = trial_error
                break
            damping *= 10
        if not improved or converged:
            break
    refined = np.ones((3, 3))
    for k in range(8):
        refined[k // 3, k % 3] = h[k]
    return refined


@_jit
def _fit(centres: np.ndarray, sizes: np.ndarray, quads: np.ndarray, depths: np.ndarray, tl: int, tr: int, bl: int,
         refine: bool) -> tuple[bool, int, np.ndarray, np.ndarray, float]:
    """One order of a trio fitted to its finders' outlines, ``quads`` (n, q, 4, 2) at ``depths`` (n, q; -1: none):
    whether it fits, the module count, the module-to-pixel homography, the symbol's corners and the residual
    (modules). The least algebraic error, as ``fit_trio(..., outermost=True)`` fits the outermost outlines; with
    ``refine``, the least squared distances, as ``fit_trio(...)`` fits all of them. Reference:
    :func:`livereader.vision.fit.fit_trio`."""
    spans = 0.0
    for f in (tr, bl):
        distance = np.hypot(centres[f, 0] - centres[tl, 0], centres[f, 1] - centres[tl, 1])
        spans += 7 * distance / ((sizes[tl] + sizes[f]) / 2)
    modules = 17 + 4 * max(1, int(round((spans / 2 + 7 - 17) / 4)))
    ax, ay = centres[tr, 0] - centres[tl, 0], centres[tr, 1] - centres[tl, 1]
    bx, by = centres[bl, 0] - centres[tl, 0], centres[bl, 1] - centres[tl, 1]
    det = ax * by - bx * ay
    none = (False, modules, np.zeros((3, 3)), np.zeros((4, 2)), 0.0)
    if abs(det) < 1e-9:
        return none
    ra, rb, da, db = by / det, -bx / det, -ay / det, ax / det
    outlines = depths.shape[1]
    source, target = np.empty((12 * outlines, 2)), np.empty((12 * outlines, 2))
    count = 0
    for finder, ox, oy in ((tl, 0, 0), (tr, modules - 7, 0), (bl, 0, modules - 7)):
        cx, cy = centres[finder, 0], centres[finder, 1]
        for outline in range(outlines):
            depth = depths[finder, outline]
            if depth < 0:
                continue
            seen = 0
            for corner in range(4):  # each corner by its quadrant around the finder's centre
                x, y = quads[finder, outline, corner, 0], quads[finder, outline, corner, 1]
                seen |= 1 << (2 * int((x - cx) * ra + (y - cy) * rb > 0) + int((x - cx) * da + (y - cy) * db > 0))
            if seen != 15:  # not one corner in each quadrant
                continue
            for corner in range(4):
                x, y = quads[finder, outline, corner, 0], quads[finder, outline, corner, 1]
                right, below = (x - cx) * ra + (y - cy) * rb > 0, (x - cx) * da + (y - cy) * db > 0
                source[count, 0] = ox + (7 - depth if right else depth)
                source[count, 1] = oy + (7 - depth if below else depth)
                target[count, 0], target[count, 1] = x, y
                count += 1
    if count < 8:  # fewer than two whole outlines
        return none
    solved, homography = _algebraic_fit(source[:count], target[:count])
    if not solved:
        return none
    if refine:
        homography = _refined(homography, source[:count], target[:count])
    squares = 0.0
    for i in range(count):
        px, py = _transform(homography, source[i, 0], source[i, 1])
        squares += (px - target[i, 0]) ** 2 + (py - target[i, 1]) ** 2
    residual = math.sqrt(squares / count) / ((sizes[tl] + sizes[tr] + sizes[bl]) / 21)
    corners = np.empty((4, 2))  # the symbol's tl, tr, br, bl corners
    corners[0, 0], corners[0, 1] = _transform(homography, 0.0, 0.0)
    corners[1, 0], corners[1, 1] = _transform(homography, float(modules), 0.0)
    corners[2, 0], corners[2, 1] = _transform(homography, float(modules), float(modules))
    corners[3, 0], corners[3, 1] = _transform(homography, 0.0, float(modules))
    if not _convex(corners):
        return none
    return True, modules, homography, corners, residual


@_jit
def full_fit(centres: np.ndarray, sizes: np.ndarray, quads: np.ndarray,
             depths: np.ndarray) -> tuple[bool, int, np.ndarray, np.ndarray, float]:
    """A code's tl, tr and bl finders (rows 0, 1, 2) fitted to all their outlines' corners, ``quads`` (3, q, 4, 2)
    at ``depths`` (3, q; -1: none), to the least squared distances: whether it fits, the module count, the
    homography, the symbol's corners and the residual (modules). Reference:
    ``livereader.vision.fit.fit_trio(triple)``."""
    return _fit(centres, sizes, quads, depths, 0, 1, 2, True)


@_jit
def judge_orders(grey: np.ndarray, centres: np.ndarray, sizes: np.ndarray, quads: np.ndarray, depths: np.ndarray,
                 orders: np.ndarray, fits: int, sure_contrast: float,
                 min_contrast: float) -> tuple[int, float, int, np.ndarray, np.ndarray, float, int]:
    """A trio's best order of ``orders`` (m, 3) (tl, tr, bl indices, best-looking first) fitted to its finders'
    outermost outlines and judged by its timing patterns, at most ``fits`` orders fitted. ``quads`` (n, 1, 4, 2)
    and ``depths`` (n, 1) are each finder's outermost four-cornered outline and its depth (-1: none). Returns the
    best order's index (-1: none fits), its timing contrast, module count, homography, corners and residual,
    and the fits spent. Reference: ``livereader.vision.grouping.reference_judge``."""
    best, best_contrast = -1, -np.inf
    best_modules, best_homography, best_corners, best_residual = 0, np.zeros((3, 3)), np.zeros((4, 2)), 0.0
    spent = 0
    for index in range(min(len(orders), fits)):
        spent += 1
        fitted, modules, homography, corners, residual = _fit(centres, sizes, quads, depths, orders[index, 0],
                                                              orders[index, 1], orders[index, 2], False)
        if not fitted:
            continue
        contrast = _timing_contrast(grey, homography, modules)
        if contrast > best_contrast:
            best, best_contrast = index, contrast
            best_modules, best_homography, best_corners, best_residual = modules, homography, corners, residual
        # a code that is not 21x21 (SIZE) is only outlined: any order whose timing alternates will do
        if contrast >= (sure_contrast if modules == SIZE else min_contrast):
            break
    return best, best_contrast, best_modules, best_homography, best_corners, best_residual, spent


@_jit
def _banded_rows(left: np.ndarray, band: int, image: np.ndarray, out: np.ndarray) -> None:
    """``out`` = (``left`` @ ``image``).T, (n, n) each, where ``left`` is zero more than ``band`` off its diagonal:
    each row of the product a sum of a few rows of ``image`` (contiguous, so they vectorize), then transposed."""
    n = image.shape[0]
    into = np.empty(n)
    for i in range(n):
        for column in range(n):
            into[column] = 0.0
        for j in range(max(0, i - band), min(n, i + band + 1)):
            weight, row = left[i, j], image[j]
            for column in range(n):
                into[column] += weight * row[column]
        for column in range(n):
            out[column, i] = into[column]


@_jit
def _banded_product(left: np.ndarray, right_t: np.ndarray, band: int, image: np.ndarray, scratch: np.ndarray,
                    out: np.ndarray) -> None:
    """``out`` = ``left`` @ ``image`` @ ``right_t``.T, (n, n) each, where ``left`` and ``right_t`` are zero more than
    ``band`` off their diagonals, as (``right_t`` @ (``left`` @ ``image``).T).T; ``scratch`` (n, n) is
    overwritten."""
    _banded_rows(left, band, image, scratch)
    _banded_rows(right_t, band, scratch, out)


@_jit
def _mean(image: np.ndarray) -> float:
    total = 0.0
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            total += image[i, j]
    return total / image.size


@_jit
def _levels(blurred: np.ndarray, samples: np.ndarray, mean_y: float) -> tuple[float, float]:
    """a, b by least squares in ``samples`` = a + b * ``blurred`` (``mean_y``: the samples' mean)."""
    mean_p = _mean(blurred)
    covariance, variance = 0.0, 0.0
    for i in range(blurred.shape[0]):
        for j in range(blurred.shape[1]):
            centred = blurred[i, j] - mean_p
            covariance += centred * (samples[i, j] - mean_y)
            variance += centred * centred
    b = covariance / max(variance, 1e-9)
    return mean_y - b * mean_p, b


@_jit
def _deconvolution_steps(kernel: np.ndarray, transposed: np.ndarray, band: int, samples: np.ndarray,
                         mean_y: float, known: np.ndarray, values: np.ndarray, lipschitz: float, x: np.ndarray,
                         ahead: np.ndarray, momentum: float, steps: int, scratch: np.ndarray, blurred: np.ndarray,
                         gradient: np.ndarray) -> float:
    """``steps`` projected gradient steps at one blur matrix ``kernel`` from ``x`` and its look-ahead ``ahead`` (both
    updated in place) and the step's ``momentum``; the momentum after them."""
    n = samples.shape[0]
    for _ in range(steps):
        _banded_product(kernel, kernel, band, ahead, scratch, blurred)
        a, b = _levels(blurred, samples, mean_y)
        for i in range(n):
            for j in range(n):
                blurred[i, j] = a + b * blurred[i, j] - samples[i, j]  # the residual
        _banded_product(transposed, transposed, band, blurred, scratch, gradient)
        rate = b / max(b * b * lipschitz, 1e-9)
        last = momentum
        momentum = (1 + math.sqrt(1 + 4 * momentum * momentum)) / 2
        for i in range(n):
            for j in range(n):
                previous = x[i, j]
                value = values[i, j] if known[i, j] else min(max(ahead[i, j] - rate * gradient[i, j], 0.0), 1.0)
                x[i, j] = value
                ahead[i, j] = value + (last - 1) / momentum * (value - previous)
    return momentum


@_jit
def _deconvolution_error(kernel: np.ndarray, band: int, samples: np.ndarray, mean_y: float, x: np.ndarray,
                         scratch: np.ndarray, blurred: np.ndarray) -> float:
    """The squared error per unit contrast of modules ``x`` blurred by ``kernel`` against ``samples``."""
    n = samples.shape[0]
    _banded_product(kernel, kernel, band, x, scratch, blurred)
    a, b = _levels(blurred, samples, mean_y)
    error = 0.0
    for i in range(n):
        for j in range(n):
            residual = a + b * blurred[i, j] - samples[i, j]
            error += residual * residual
    return error / (n * n) / max(b * b, 1e-9)


@_jit
def deconvolved(kernels: np.ndarray, transposed: np.ndarray, bands: np.ndarray, samples: np.ndarray,
                known: np.ndarray, values: np.ndarray, lipschitz: np.ndarray, steps: int, prune_after: int,
                prune_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The modules (S, n, n) solved at each of S one-axis blur matrices ``kernels`` (S, n, n; ``transposed`` the
    same transposed, ``bands`` how far off the diagonal each has non-zero entries), and each solution's squared
    error per unit contrast (S,), inf for a solution left after ``prune_after`` steps (where S > 1): the projected
    gradient steps of :func:`livereader.vision.deblur.deconvolve_reference`, whose arguments these are, one sigma
    after another."""
    count, n = kernels.shape[0], samples.shape[0]
    solutions, errors, momenta = np.empty((count, n, n)), np.empty(count), np.ones(count)
    aheads = np.empty((count, n, n))
    mean_y = _mean(samples)
    scratch, blurred, gradient = np.empty((n, n)), np.empty((n, n)), np.empty((n, n))
    first = steps if count == 1 else min(prune_after, steps)
    for s in range(count):
        x, ahead = solutions[s], aheads[s]
        for i in range(n):
            for j in range(n):
                x[i, j] = values[i, j] if known[i, j] else 0.5
                ahead[i, j] = x[i, j]
        momenta[s] = _deconvolution_steps(kernels[s], transposed[s], bands[s], samples, mean_y, known, values,
                                          lipschitz[s], x, ahead, 1.0, first, scratch, blurred, gradient)
        errors[s] = _deconvolution_error(kernels[s], bands[s], samples, mean_y, x, scratch, blurred)
    if first == steps:
        return solutions, errors
    best = errors.min()
    for s in range(count):
        if errors[s] > prune_ratio * best:
            errors[s] = np.inf
            continue
        _deconvolution_steps(kernels[s], transposed[s], bands[s], samples, mean_y, known, values, lipschitz[s],
                             solutions[s], aheads[s], momenta[s], steps - first, scratch, blurred, gradient)
        errors[s] = _deconvolution_error(kernels[s], bands[s], samples, mean_y, solutions[s], scratch, blurred)
    return solutions, errors


@_jit
def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest of ``values`` (1-D), smallest first, ties in index order: the first ``count``
    of a stable argsort, kept in a sorted list while scanning (most values lose against its last entry at once)."""
    count = min(count, len(values))
    kept = np.empty(count, np.int64)
    size = 0
    for index in range(len(values) if count else 0):
        value = values[index]
        if size == count and not value < values[kept[size - 1]]:
            continue
        place = min(size, count - 1)  # where it goes: after every entry it does not beat
        while place > 0 and value < values[kept[place - 1]]:
            kept[place] = kept[place - 1]
            place -= 1
        kept[place] = index
        size = min(size + 1, count)
    return kept


@_jit
def _changed(bits: np.ndarray, changes: np.ndarray, count: int, out: np.ndarray, found: int) -> int:
    """The numbers of the first ``count`` rows of ``bits`` ((N, 20): :func:`livereader.decode.verify.number_bits`)
    with each row of ``changes`` flipped ((P, 20), 1 = flip), where both 10-bit groups are at most 999, written to
    ``out`` from ``found`` on; returns how many are written in all."""
    for row in range(min(count, len(bits))):
        for change in range(len(changes)):
            high, low = 0, 0
            for bit in range(10):
                high |= (bits[row, bit] ^ changes[change, bit]) << bit
                low |= (bits[row, 10 + bit] ^ changes[change, 10 + bit]) << bit
            if high < 1000 and low < 1000:
                out[found] = high * 1000 + low
                found += 1
    return found


@_jit
def _distances(numbers: np.ndarray, tables: np.ndarray, zeros: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Each number's data modules (tables[0][high] ^ tables[1][low] ^ zeros) against ``observed``: the sums of the
    absolute differences, in float64."""
    out = np.empty(len(numbers), np.float64)
    for index in range(len(numbers)):
        high, low = numbers[index] // 1000, numbers[index] % 1000
        total = 0.0
        for module in range(len(observed)):
            total += abs(float(tables[0, high, module] ^ tables[1, low, module] ^ zeros[module]) - observed[module])
        out[index] = total
    return out


@_jit
def six_digit_best(group_log_probs: np.ndarray, observed: np.ndarray, tables: np.ndarray, zeros: np.ndarray,
                   singles: np.ndarray, pairs: np.ndarray, triples: np.ndarray, candidates: int, expand: int,
                   expand_pairs: int, expand_triples: int, max_distance: float) -> tuple[int, float, float, float]:
    """The six-digit number that best explains a grid's ``observed`` data modules ((208,) float32, upright and
    normalized), and its distance, gap and log probability, from the CNN's (2, 1000) float32 group log
    probabilities: the ``candidates`` most probable numbers, then while none is within ``max_distance``, the
    numbers one bit (``singles``, for the first ``expand`` of them) or two bits (``pairs``, the first
    ``expand_pairs``) from them, then three bits (``triples``, the first ``expand_triples``); each change is a row
    of 20 bits, 1 = flip. ``tables`` (2, 1024, 208) and ``zeros`` (208,) encode a number's data
    modules; the gap is infinite where there is one candidate. Reference:
    :func:`livereader.decode.verify.reference_best` (which gives the order of ties)."""
    count = candidates
    high_order = _smallest(-group_log_probs[0], count)
    low_order = _smallest(-group_log_probs[1], count)
    totals = np.empty(count * count, np.float32)
    for i in range(count):
        for j in range(count):
            totals[i * count + j] = -(group_log_probs[0, high_order[i]] + group_log_probs[1, low_order[j]])
    chosen = _smallest(totals, count)
    pool = np.empty(count, np.int64)
    for k in range(count):
        pool[k] = high_order[chosen[k] // count] * 1000 + low_order[chosen[k] % count]
    distances = _distances(pool, tables, zeros, observed)
    bits = np.empty((count, 20), np.int64)
    for k in range(count):
        for bit in range(10):
            bits[k, bit] = (pool[k] // 1000 >> bit) & 1
            bits[k, 10 + bit] = (pool[k] % 1000 >> bit) & 1
    tier = 0
    while distances.min() > max_distance and tier < 2:
        if tier == 0:
            found = np.empty(min(expand, count) * len(singles) + min(expand_pairs, count) * len(pairs), np.int64)
            written = _changed(bits, singles, expand, found, 0)
            written = _changed(bits, pairs, expand_pairs, found, written)
        else:
            found = np.empty(min(expand_triples, count) * len(triples), np.int64)
            written = _changed(bits, triples, expand_triples, found, 0)
        tier += 1
        known = np.sort(pool)
        fresh = np.unique(found[:written])
        keep = np.empty(len(fresh), np.bool_)
        for index in range(len(fresh)):
            place = np.searchsorted(known, fresh[index])
            keep[index] = place == len(known) or known[place] != fresh[index]
        fresh = fresh[keep]
        more = _distances(fresh, tables, zeros, observed)
        pool, distances = np.concatenate((pool, fresh)), np.concatenate((distances, more))
    best = 0
    for index in range(1, len(pool)):
        if distances[index] < distances[best]:
            best = index
    second = np.inf  # the gap is infinite where no other candidate is left
    for index in range(len(pool)):
        if index != best and distances[index] < second:
            second = distances[index]
    gap = second - distances[best]
    number = pool[best]
    log_prob = group_log_probs[0, number // 1000] + group_log_probs[1, number % 1000]
    return number, distances[best], gap, float(log_prob)


@_jit
def _reflected(index: int, length: int) -> int:
    """``index`` reflected into ``range(length)`` as OpenCV's ``BORDER_REFLECT`` does (fedcba|abcdef|fedcba)."""
    while index < 0 or index >= length:
        index = -index - 1 if index < 0 else 2 * length - index - 1
    return index


@_jit
def _box_mean(grid: np.ndarray, size: int, out: np.ndarray) -> None:
    """The mean of each value's ``size`` x ``size`` window (odd, centred) of a (21, 21) float32 ``grid``, edges
    reflected, into ``out``: ``cv2.blur`` with ``BORDER_REFLECT``, bit for bit with the OpenCV tested (its sums in
    float64 in its order: each row's windows of 3 or 5 summed afresh, wider ones as running sums, then running sums
    down the columns)."""
    half = size // 2
    rows = np.empty((SIZE + size - 1, SIZE), np.float64)
    for y in range(SIZE + size - 1):
        source = _reflected(y - half, SIZE)
        if size <= 5:  # OpenCV sums windows of 3 and 5 afresh at each place
            for x in range(SIZE):
                total = 0.0
                for i in range(size):
                    total += np.float64(grid[source, _reflected(x + i - half, SIZE)])
                rows[y, x] = total
            continue
        total = 0.0
        for i in range(size):
            total += np.float64(grid[source, _reflected(i - half, SIZE)])
        rows[y, 0] = total
        for x in range(SIZE - 1):
            total += (np.float64(grid[source, _reflected(x + size - half, SIZE)])
                      - np.float64(grid[source, _reflected(x - half, SIZE)]))
            rows[y, x + 1] = total
    scale = 1.0 / (size * size)
    for x in range(SIZE):
        total = 0.0
        for y in range(size - 1):
            total += rows[y, x]
        for y in range(SIZE):
            newest = total + rows[y + size - 1, x]
            out[y, x] = np.float32(newest * scale)
            total = newest - rows[y, x]


@_jit
def soft_grids(samples: np.ndarray, count: int, window: int, gain: float) -> np.ndarray:
    """(count, 21, 21) float32 soft grids from ``count`` codes' sub-samples ((count * 63, 63) uint8, 3x3 a module,
    row-major): each module's mean (``cv2.resize`` by ``INTER_AREA``), its local mean and spread over ``window`` x
    ``window`` modules (``cv2.blur``) and ``0.5 + gain * (mean - value) / (spread + 1)`` clipped to [0, 1], in
    float32 as numpy computes it. Reference: :func:`livereader.vision.grid.reference_softs` (the same, bit for
    bit)."""
    out = np.empty((count, SIZE, SIZE), np.float32)
    values = np.empty((SIZE, SIZE), np.float32)
    mean = np.empty((SIZE, SIZE), np.float32)
    squares = np.empty((SIZE, SIZE), np.float32)
    spread = np.empty((SIZE, SIZE), np.float32)
    ninth = np.float32(1.0) / np.float32(9.0)
    half, one, low, high = np.float32(0.5), np.float32(1.0), np.float32(0.0), np.float32(1.0)
    factor = np.float32(gain)
    for code in range(count):
        for row in range(SIZE):
            for col in range(SIZE):
                total = np.float32(0.0)
                for dy in range(3):
                    for dx in range(3):
                        total += np.float32(samples[63 * code + 3 * row + dy, 3 * col + dx])
                values[row, col] = total * ninth
        _box_mean(values, window, mean)
        for row in range(SIZE):
            for col in range(SIZE):
                difference = values[row, col] - mean[row, col]
                squares[row, col] = difference * difference
        _box_mean(squares, window, spread)
        for row in range(SIZE):
            for col in range(SIZE):
                soft = half + factor * (mean[row, col] - values[row, col]) / (np.sqrt(spread[row, col]) + one)
                out[code, row, col] = min(max(soft, low), high)
    return out


@_jit
def _upper_median(grid: np.ndarray, positions: np.ndarray, scratch: np.ndarray) -> float:
    """The upper middle of the values of ``grid`` (21, 21) at ``positions`` ((k, 2) rows and columns): a partition at
    ``k // 2``."""
    for index in range(len(positions)):
        scratch[index] = float(grid[positions[index, 0], positions[index, 1]])
    return np.sort(scratch[:len(positions)])[len(positions) // 2]


@_jit
def _nearest_format(grid: np.ndarray, positions: np.ndarray, codewords: np.ndarray, flip: bool,
                    transpose: bool) -> tuple[int, float]:
    """The row of ``codewords`` ((32, 15) 0/1) nearest to both copies of the format modules of ``grid`` (21, 21) at
    ``positions`` ((2, 15, 2) rows and columns), the first of equally near ones, and its distance (the sum of the
    absolute differences, in float64); of ``1 -`` each value with ``flip``, of the grid transposed with
    ``transpose``."""
    best, best_distance = 0, np.inf
    for word in range(len(codewords)):
        total = 0.0
        for copy in range(2):
            for bit in range(15):
                row, col = positions[copy, bit, 0], positions[copy, bit, 1]
                value = float(grid[col, row] if transpose else grid[row, col])
                total += abs(float(codewords[word, bit]) - (1.0 - value if flip else value))
        if total < best_distance:
            best, best_distance = word, total
    return best, best_distance


@_jit
def upright_formats(grids: np.ndarray, dark: np.ndarray, light: np.ndarray, positions: np.ndarray,
                    codewords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For (N, 21, 21) grids: whether each holds only 0 and 1, whether it is light-on-dark (the upper middle of its
    ``dark`` modules' values below that of its ``light`` ones: (k, 2) rows and columns of the modules dark, and
    light, in every symbol), and the format read from it turned upright (``1 -`` each value where light-on-dark): the
    row of ``codewords`` ((32, 15) 0/1, row = 8 x level index + mask) nearest to both copies of its format modules
    (``positions``: (2, 15, 2) rows and columns), the first of equally near ones, and its distance. Reference:
    :func:`livereader.decode.verify.reference_upright_formats`."""
    count = len(grids)
    binary = np.ones(count, np.bool_)
    flipped = np.zeros(count, np.bool_)
    words = np.zeros(count, np.int64)
    distances = np.zeros(count, np.float64)
    scratch = np.empty(max(len(dark), len(light)), np.float64)
    for index in range(count):
        grid = grids[index]
        for row in range(SIZE):
            for col in range(SIZE):
                if grid[row, col] != 0 and grid[row, col] != 1:
                    binary[index] = False
        flip = _upper_median(grid, dark, scratch) < _upper_median(grid, light, scratch)
        flipped[index] = flip
        words[index], distances[index] = _nearest_format(grid, positions, codewords, flip, False)
    return binary, flipped, words, distances


@_jit
def mirrored(hard: np.ndarray, positions: np.ndarray, codewords: np.ndarray) -> np.ndarray:
    """For (N, 21, 21) 0/1 grids as seen: whether the format modules of each transposed come nearer to a row of
    ``codewords`` ((32, 15) 0/1) in either polarity than those of it as it is (a grid d from a codeword is
    30 - d from it in the other polarity; ``positions``: (2, 15, 2) rows and columns). Reference:
    :func:`livereader.vision.grid.reference_mirrored`."""
    out = np.zeros(len(hard), np.bool_)
    for index in range(len(hard)):
        _, near = _nearest_format(hard[index], positions, codewords, False, False)
        _, far = _nearest_format(hard[index], positions, codewords, True, False)
        _, near_transposed = _nearest_format(hard[index], positions, codewords, False, True)
        _, far_transposed = _nearest_format(hard[index], positions, codewords, True, True)
        out[index] = min(near_transposed, far_transposed) < min(near, far)
    return out


# Reed-Solomon decoding of a version-1 QR code's codewords: GF(256) of the polynomial 0x11d, generator 2, first
# consecutive root 1 (alpha^0), as ``reedsolo.RSCodec(nsym, nsize=26)`` (the reference of :func:`rs_correct`).
def _gf_tables() -> tuple[np.ndarray, np.ndarray]:
    """alpha^i for i < 510 (twice round, so that a sum of two logarithms needs no modulo) and log_alpha."""
    exp, log = np.zeros(512, np.int64), np.zeros(256, np.int64)
    value = 1
    for power in range(255):
        exp[power], log[value] = value, power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    exp[255:510] = exp[:255]
    return exp, log


_GF_EXP, _GF_LOG = _gf_tables()


@_jit
def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _GF_EXP[_GF_LOG[a] + _GF_LOG[b]]


@_jit
def _gf_inverse(a: int) -> int:
    return _GF_EXP[255 - _GF_LOG[a]]


@_jit
def _gf_eval(poly: np.ndarray, length: int, x: int) -> int:
    """A polynomial of ``length`` coefficients, lowest degree first, at ``x``."""
    value = 0
    for index in range(length - 1, -1, -1):
        value = _gf_mul(value, x) ^ poly[index]
    return value


@_jit
def _syndromes(word: np.ndarray, nsym: int) -> np.ndarray:
    """S_j = word(alpha^j), j < nsym; word[0] is the coefficient of the highest degree."""
    lowest_first = word[::-1]
    syndromes = np.zeros(nsym, np.int64)
    for j in range(nsym):
        syndromes[j] = _gf_eval(lowest_first, len(word), _GF_EXP[j])
    return syndromes


@_jit
def _erasure_locator(erasures: np.ndarray, n: int, nsym: int) -> np.ndarray:
    """Gamma(x) = prod (1 - X x) over the erased positions, X = alpha^(n - 1 - position); lowest degree first."""
    locator = np.zeros(nsym + 2, np.int64)
    locator[0] = 1
    for index in range(len(erasures)):
        x = _GF_EXP[n - 1 - erasures[index]]
        for degree in range(index + 1, 0, -1):
            locator[degree] ^= _gf_mul(locator[degree - 1], x)
    return locator


@_jit
def _berlekamp_massey(syndromes: np.ndarray, count: int, size: int) -> tuple[np.ndarray, int]:
    """The shortest LFSR C(x) (``size`` coefficients, lowest degree first) that generates the first ``count``
    ``syndromes``, and its length."""
    locator = np.zeros(size, np.int64)
    previous = np.zeros(size, np.int64)
    locator[0], previous[0] = 1, 1
    length, shift, last = 0, 1, 1
    for step in range(count):
        discrepancy = syndromes[step]
        for i in range(1, length + 1):
            discrepancy ^= _gf_mul(locator[i], syndromes[step - i])
        if discrepancy == 0:
            shift += 1
            continue
        factor = _gf_mul(discrepancy, _gf_inverse(last))
        saved = locator.copy()
        for i in range(size - shift):
            locator[i + shift] ^= _gf_mul(factor, previous[i])
        if 2 * length <= step:
            length, previous, last, shift = step + 1 - length, saved, discrepancy, 1
        else:
            shift += 1
    return locator, length


@_jit
def _roots(psi: np.ndarray, n: int) -> tuple[bool, np.ndarray]:
    """The positions whose X is the inverse of a root of ``psi`` (degree len(psi) - 1); False unless there are as
    many as its degree."""
    degree = len(psi) - 1
    positions = np.empty(degree, np.int64)
    found = 0
    for position in range(n):
        if _gf_eval(psi, degree + 1, _GF_EXP[255 - (n - 1 - position)]) == 0:
            if found == degree:
                return False, positions
            positions[found] = position
            found += 1
    return found == degree, positions


@_jit
def rs_correct(received: np.ndarray, nsym: int, erasures: np.ndarray) -> tuple[bool, np.ndarray]:
    """Reed-Solomon decoding of ``received`` (uint8 codewords, data first) with ``nsym`` EC codewords and the given
    erased positions (indices into ``received``): whether it decoded, and the corrected codewords. Errors and
    erasures by the Forney syndromes, Berlekamp-Massey, a search of every position for the locator's roots, and
    Forney's error values; a word is returned only when its syndromes are all zero. Within the capacity
    (2 * errors + erasures <= nsym) it gives what ``reedsolo`` gives; beyond it either may fail or find another
    codeword (the caller bounds the capacity spent). Reference: ``reedsolo.RSCodec.decode`` (tests)."""
    n, erased = len(received), len(erasures)
    corrected = received.copy()
    syndromes = _syndromes(received.astype(np.int64), nsym)
    if not syndromes.any():
        return True, corrected
    if erased > nsym:
        return False, corrected
    gamma = _erasure_locator(erasures, n, nsym)
    # the Forney syndromes: coefficients erased..nsym-1 of Gamma(x) S(x), the syndromes of the errors alone
    forney = np.zeros(nsym, np.int64)
    for j in range(erased, nsym):
        for i in range(erased + 1):
            forney[j - erased] ^= _gf_mul(gamma[i], syndromes[j - i])
    errors, length = _berlekamp_massey(forney, nsym - erased, nsym + 2)
    if 2 * length + erased > nsym:
        return False, corrected
    # Psi(x) = C(x) Gamma(x): its roots are the inverses of the wrong and erased positions' X
    degree = length + erased
    psi = np.zeros(degree + 1, np.int64)
    for i in range(length + 1):
        for k in range(erased + 1):
            psi[i + k] ^= _gf_mul(errors[i], gamma[k])
    found, positions = _roots(psi, n)
    if not found:
        return False, corrected
    # Omega(x) = S(x) Psi(x) mod x^nsym; a value e = X Omega(1/X) / Psi'(1/X)
    omega = np.zeros(nsym, np.int64)
    for i in range(nsym):
        for k in range(min(degree, i) + 1):
            omega[i] ^= _gf_mul(syndromes[i - k], psi[k])
    for position in positions:
        power = n - 1 - position
        derivative = 0
        for i in range(1, degree + 1, 2):  # the formal derivative keeps the odd powers
            derivative ^= _gf_mul(psi[i], _GF_EXP[((255 - power) * (i - 1)) % 255])
        if derivative == 0:
            return False, corrected
        value = _gf_mul(_gf_mul(_GF_EXP[power], _gf_eval(omega, nsym, _GF_EXP[255 - power])), _gf_inverse(derivative))
        corrected[position] ^= value
    return not _syndromes(corrected.astype(np.int64), nsym).any(), corrected


def compile_all() -> None:
    """Compile every kernel (or load it from the cache) for the argument types the reader passes, by searching a
    drawn code with the kernels in use on this thread (:mod:`livereader.compiled`); raises RuntimeError
    where that search does not find the code (some kernel would then compile later, inside a frame)."""
    from livereader import compiled
    from livereader.decode.codeword import error_corrected
    from livereader.decode.verify import VerifyOptions, evaluate, upright_formats
    from livereader.symbol import encode
    from livereader.vision.deblur import deblur
    from livereader.vision.finder import find_finders
    from livereader.vision.grid import sample_grids
    from livereader.vision.grouping import group_codes, side_partnered

    if compiled.kernels() is None:
        raise RuntimeError("the kernels are not in use on this thread: nothing would compile")
    frame = np.full((240, 320), 230, np.uint8)
    symbol = encode("000000", "H")
    frame[20:194, 40:214] = 230 - 200 * np.kron(np.pad(symbol, 4), np.ones((6, 6), np.uint8))
    finders = find_finders(frame)
    side_partnered(finders)
    codes = group_codes(frame, finders)
    if len(codes) != 1 or not codes[0].supported:
        raise RuntimeError("the kernels' drawn code was not found: not every kernel is compiled")
    if not np.array_equal(sample_grids(frame, codes)[0].hard, symbol):
        raise RuntimeError("the sampling kernels did not sample the drawn code")
    if error_corrected(bytes([9] + [0] * 25), "M", [5]) != bytes(26):  # a codeword of zeros, one error, one erasure
        raise RuntimeError("the Reed-Solomon kernel did not correct its codeword")
    deblur(frame, codes[0])  # the deconvolution's kernel
    for grids in (symbol[None], 1 - symbol[None].astype(np.float32)):  # a hard grid as sampled, and one light-on-dark
        binary, flipped, (fmt,) = upright_formats(grids)
        if not binary[0] or flipped[0] != (grids.dtype == np.float32) or (fmt.level, fmt.distance) != ("H", 0.0):
            raise RuntimeError("the format kernel did not read its grid's format")
    flat = np.full((2, 1000), -math.log(1000), np.float32)  # every number as likely: 000000 is the first
    if evaluate(symbol.astype(np.float32), flat, VerifyOptions()).text != "000000":
        raise RuntimeError("the six-digit verification's kernel did not verify its grid")


if __name__ == "__main__":  # the background process of livereader.compiled
    from livereader import compiled

    if not CACHED:  # compiling would be lost with this process
        sys.exit(compiled.NOT_CACHED)
    if hasattr(os, "nice"):  # a background job: the reading process keeps its core
        os.nice(10)
    with compiled.one_compiler():
        compiled.use_kernels()
        compile_all()
    compiled.mark_cached()  # a short run loads them at its start from now on (compiled.defer); never raises
