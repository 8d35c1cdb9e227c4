"""Finder patterns: every finder pattern in a grey frame, dark-on-light and light-on-dark, with its outlines.

A finder pattern (7x7 modules) is a ring inside a ring around a 3x3 core, dark-light-dark across its centre in
the ratio 1:1:3:1:1. After a local (adaptive) threshold, that nesting shows up in OpenCV's contour tree as a
contour whose child has a concentric child about a third of its area, for dark-on-light and light-on-dark codes
alike. The later stages of locating a code: :mod:`livereader.vision.grouping` (three finders into a code),
:mod:`livereader.vision.fit` (its homography and timing), :mod:`livereader.vision.pairs` (codes of which two
finders show) and :mod:`livereader.vision.search` (where and at which sizes a frame is searched).

Conventions, for every module of :mod:`livereader.vision`: points are (x, y) in pixels, OpenCV's convention
(integer coordinates at pixel centres); module coordinates are (x, y) = (column, row) in modules with the
symbol's top-left corner at (0, 0); corners are ordered tl, tr, br, bl of the symbol as its finder patterns
define it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from livereader import compiled
from livereader.geometry import scaled_point
from livereader.timing import timed


@dataclass(frozen=True)
class FinderOptions:
    block: int = 15  # adaptive threshold window, pixels (odd): a small window keeps blurred rings apart
    offset: float = 8.0  # a pixel is dark when it is this much darker than the mean of its window, at least
    noise_offset: float = 2.5  # ... and at least this many times the frame's noise sigma
    smooth_above: float = 6.0  # noise sigma above which the frame is smoothed before thresholding
    min_core_px: float = 4.0  # smallest core area (3x3 modules) in pixels^2: modules of ~1.2 px and up
    max_side_ratio: float = 2.2  # largest ratio of a code's two finder-to-finder distances (tilt foreshortens)
    max_size_ratio: float = 2.2  # largest ratio of two finder sizes within one code
    max_modules: int = 177  # largest module count located (version 40)
    min_timing_contrast: float = 0.5  # timing modules must alternate at least this clearly (see timing_contrast)
    sure_timing_contrast: float = 1.5  # ... and an orientation whose timing alternates this clearly is kept at once
    max_misalignment: float = 0.3  # radians between a side's line and the edges of the better aligned of its finders
    max_other_misalignment: float = 0.3  # ... and of the other (motion blur shears a finder's outline)
    # largest |cos| of the angle between a code's two sides as seen: a tilt of up to 55 degrees narrows the right
    # angle to 50 degrees (|cos| 0.64) and less
    max_side_cos: float = 0.7
    side_partners: int = 1  # nearest side partners kept per finder and direction along its edges
    max_candidates: int = 2000  # finder candidates kept per image searched, most finder-like first
    max_fits: int = 64  # homography fits per search, and two more per finder: a pathological frame's budget
    # dark specks of one or two pixels are dropped before tracing (see pruned) where the offset's noise term
    # (noise_offset x the noise sigma) reaches this share of offset: the noise's tail then marks them by the thousand
    # (0: always, as the sensitive search's low threshold does in any frame)
    prune_noise: float = 0.5


@dataclass(frozen=True, eq=False)
class Finder:
    """One finder pattern: its centre, its size (about 7 modules, pixels) and its outlines.

    ``outlines`` holds up to three contours, outermost first, each with its distance from the pattern's outer
    edge in modules: 0 (the 7x7 outline), 1 (5x5) and 2 (3x3 core), in the pixels of the image searched, which
    is the frame shrunk by ``scale`` or cropped at ``origin`` (x, y). ``quads`` are their four corners in the
    frame's pixels, in order around each; ``axes`` the directions of the outermost quad's two pairs of opposite
    edges, radians in [0, pi) (y pointing down). Both are computed when first asked for: most candidates in a
    cluttered frame never are.
    """

    centre: tuple[float, float]
    size: float
    outlines: tuple[tuple[int, np.ndarray], ...]
    scale: float = 1.0
    origin: tuple[int, int] = (0, 0)

    @cached_property
    def outer(self) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
        """The outermost outline that has four corners, as ``((depth, quad),)``, or ``()``."""
        quads = ((depth, _quad(contour, self.scale, self.origin)) for depth, contour in self.outlines)
        return next((((depth, quad),) for depth, quad in quads if quad is not None), ())

    @cached_property
    def quads(self) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
        inner = [(depth, _quad(contour, self.scale, self.origin)) for depth, contour in self.outlines
                 if self.outer and depth > self.outer[0][0]]
        return self.outer + tuple((depth, quad) for depth, quad in inner if quad is not None)

    @cached_property
    def axes(self) -> tuple[float, float]:
        if not self.outer:  # no outline with four corners: no direction is preferred
            return 0.0, math.pi / 2
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.outer[0][1]
        # each pair of opposite edges runs the other way round the quad: their difference is twice their mean
        return (math.atan2((y1 - y0) - (y3 - y2), (x1 - x0) - (x3 - x2)) % math.pi,
                math.atan2((y2 - y1) - (y0 - y3), (x2 - x1) - (x0 - x3)) % math.pi)


def noise_level(grey: np.ndarray) -> float:
    """Robust estimate of the pixel noise sigma (grey levels) from differences of horizontal neighbours, their median
    compiled (:func:`livereader.kernels.median_difference`) once the kernels are ready (:mod:`livereader.compiled`),
    and until then by :func:`reference_median_difference`, which gives the same."""
    sample = grey[::8, ::2]
    if sample.shape[0] == 0 or sample.shape[1] < 2:  # a crop of one or two columns: no difference
        return 0.0
    kernels = compiled.kernels()
    median = reference_median_difference(sample) if kernels is None else kernels.median_difference(sample)
    return median * 1.4826 / math.sqrt(2)


def reference_median_difference(sample: np.ndarray) -> float:
    """The plain reference of :func:`livereader.kernels.median_difference`: the median of the absolute differences of
    horizontal neighbours in a uint8 image of at least two columns, from OpenCV's histogram of them."""
    diff = cv2.absdiff(sample[:, 1:], sample[:, :-1])
    # the median from the differences' histogram (256 levels): a third of a partial sort's time
    below = cv2.calcHist([diff], [0], None, [256], [0, 256]).ravel().cumsum()  # differences <= each level
    low, high = np.searchsorted(below, [(diff.size - 1) // 2 + 1, diff.size // 2 + 1]).tolist()
    return (low + high) / 2


def binarize(grey: np.ndarray, options: FinderOptions) -> np.ndarray:
    """uint8 image, 255 = darker than its local mean by more than the offset (raised with the frame's noise); in a
    noisy frame (``FinderOptions.prune_noise``) without its dark specks of one or two pixels (:func:`pruned`)."""
    noise = noise_level(grey)
    if noise > options.smooth_above:
        grey = cv2.GaussianBlur(grey, (5, 5), 1.2)
        noise *= 0.25  # white noise sigma after this Gaussian: 0.235 in theory
    offset = max(options.offset, options.noise_offset * noise)
    binary = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, options.block, offset)
    if options.noise_offset * noise >= options.prune_noise * options.offset:
        return pruned(binary)
    return binary


def pruned(binary: np.ndarray) -> np.ndarray:
    """A binary image (255 = dark) without the dark pixels that have at most one dark 8-neighbour: specks of one or
    two pixels vanish, and lines lose their end pixels. Nothing else changes nesting: such a pixel in a larger
    shape ends a line, which stays joined, and the light pixels around it were joined already (outside the image
    counts as light, as for ``cv2.findContours``); no finder's core is so small (``FinderOptions.min_core_px``).
    Where the noise comes near the threshold's offset, its tail marks such specks by the thousand (4,000 in a
    640x480 frame), and each costs ``cv2.findContours`` about a microsecond; this costs about 0.1 ms a 640x480
    frame (:func:`reference_pruned` is the plain reference)."""
    window = cv2.blur(binary, (3, 3), borderType=cv2.BORDER_CONSTANT)  # 255 x the dark share of each 3x3 window
    return cv2.threshold(cv2.min(binary, window), 70, 255, cv2.THRESH_BINARY)[1]  # 3 of 9 dark: 85; 2 of 9: 57


def reference_pruned(binary: np.ndarray) -> np.ndarray:
    """The plain reference of :func:`pruned`: each dark pixel's dark 8-neighbours counted by shifts of the image."""
    dark = np.pad(binary > 0, 1)
    height, width = binary.shape
    neighbours = sum(dark[1 + dy:1 + dy + height, 1 + dx:1 + dx + width].astype(np.int32)
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    return np.where(dark[1:-1, 1:-1] & (neighbours >= 2), 255, 0).astype(np.uint8)


def _quad(contour: np.ndarray, scale: float = 1.0,
          origin: tuple[int, int] = (0, 0)) -> tuple[tuple[float, float], ...] | None:
    """Four corners of a roughly quadrilateral contour, in order around it (in the pixels of the full image, see
    :func:`find_finders`), compiled (:func:`livereader.kernels.hull_quad`) once the kernels are ready
    (:mod:`livereader.compiled`), and until then by :func:`reference_quad`, which gives the same."""
    kernels = compiled.kernels()
    if kernels is None:
        return reference_quad(contour, scale, origin)
    found, corners = kernels.hull_quad(cv2.convexHull(contour))
    return tuple(scaled_point(x, y, scale, origin) for x, y in corners.tolist()) if found else None


def reference_quad(contour: np.ndarray, scale: float = 1.0,
                   origin: tuple[int, int] = (0, 0)) -> tuple[tuple[float, float], ...] | None:
    """The plain reference of :func:`_quad`: the largest-area quad on the contour's convex hull.

    Written by hand because ``cv2.approxPolyN`` puts corners where the hull's edges meet, off blurred rounded
    outlines (it read fewer blurred codes), ``cv2.approxPolyDP`` returns 3, 5 or more vertices on blurred or
    noisy outlines and ``cv2.minAreaRect`` forces a rectangle on a perspective quad.
    """
    hull = cv2.convexHull(contour).reshape(-1, 2).tolist()
    if len(hull) < 4:
        return None
    cx, cy = sum(p[0] for p in hull) / len(hull), sum(p[1] for p in hull) / len(hull)
    first = max(hull, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)
    third = max(hull, key=lambda p: (p[0] - first[0]) ** 2 + (p[1] - first[1]) ** 2)
    ax, ay = third[0] - first[0], third[1] - first[1]
    side = [(p[0] - first[0]) * ay - (p[1] - first[1]) * ax for p in hull]
    right, left = max(side), min(side)
    if right <= 0 or left >= 0:
        return None
    corners = (first, hull[side.index(right)], third, hull[side.index(left)])
    return tuple(scaled_point(x, y, scale, origin) for x, y in corners)


# Frames of more than TILED_ABOVE pixels are traced in tiles of TILE px a side (and TILE_OVERLAP px more to the right
# and below): OpenCV's tree of contours costs more than linear time in their number (a 12 MP photo's 265k contours at
# the sensitive threshold, specks of every size kept: 4.0 s in one call, 0.39 s in tiles of 1024 px), so a tile bounds
# each call's cost. A finder pattern of up to TILE_OVERLAP px lies wholly in some tile; larger ones show in shrunk
# frames.
TILE = 1024
TILE_OVERLAP = 256
TILED_ABOVE = 2 * TILE * TILE


def contour_tree(grey: np.ndarray,
                 options: FinderOptions = FinderOptions()) -> tuple[Sequence[np.ndarray], np.ndarray | None]:
    """The contours of the thresholded frame (:func:`binarize`) and their nesting, as ``cv2.findContours`` gives them
    with ``cv2.RETR_TREE``: the pixel work of every search, before any candidate is looked at. Frames of more than
    ``TILED_ABOVE`` pixels are traced in overlapping tiles (see ``TILE``), their contours and trees joined: a
    shape in two tiles shows twice, and one cut by a tile's edge loses its holes there (finder candidates are
    merged by place in :func:`find_finders`)."""
    binary = binarize(grey, options)
    height, width = binary.shape
    if height * width <= TILED_ABOVE:
        return cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    contours: list[np.ndarray] = []
    trees = []
    for y in range(0, max(1, height - TILE_OVERLAP), TILE):
        for x in range(0, max(1, width - TILE_OVERLAP), TILE):
            tile = binary[y:y + TILE + TILE_OVERLAP, x:x + TILE + TILE_OVERLAP]
            found, tree = cv2.findContours(tile, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
            if tree is not None:
                tree = tree[0]
                trees.append(np.where(tree >= 0, tree + len(contours), tree))  # indices into the joined list
                contours += found
    return tuple(contours), (np.concatenate(trees)[None] if trees else None)


# A finder candidate: its centre and size in the pixels of the image searched, and the index of its outline
# contour at each depth (see Finder.outlines).
_Candidate = tuple[tuple[float, float], float, dict[int, int]]


@timed("finder patterns")
def find_finders(grey: np.ndarray, options: FinderOptions = FinderOptions(), scale: float = 1.0,
                 origin: tuple[int, int] = (0, 0)) -> list[Finder]:
    """All finder patterns in a grey uint8 frame, dark-on-light and light-on-dark; with ``scale``, ``grey`` is a
    frame shrunk by that factor, with ``origin``, a crop of the frame whose top-left pixel is ``origin`` (x, y);
    the finders are given in the full frame's pixels."""
    contours, hierarchy = contour_tree(grey, options)
    if hierarchy is None:
        return []
    return [Finder(scaled_point(*centre, scale, origin), size * scale,
                   tuple((depth, contours[i]) for depth, i in sorted(outlines.items())), scale, origin)
            for centre, size, outlines in _located(contours, hierarchy[0], options)]


def _located(contours: Sequence[np.ndarray], tree: np.ndarray, options: FinderOptions) -> list[_Candidate]:
    """The finder candidates of a contour tree (rows: next, previous, first child, parent), one per place, most
    finder-like first, compiled (:func:`livereader.kernels.ring_contours` and
    :func:`livereader.kernels.ring_candidates`) once the kernels are ready (:mod:`livereader.compiled`),
    and until then by :func:`reference_located`, which gives the same and explains the tests. Only the contours
    that the tests look at are gathered for the kernels: a ring's, its parent's and its children's."""
    kernels = compiled.kernels()
    if kernels is None:
        return reference_located(contours, tree, options)
    needed = kernels.ring_contours(tree)
    if not len(needed):
        return []
    parts = [contours[i] for i in needed.tolist()]
    places, outlines = kernels.ring_candidates(tree, needed, np.array([len(part) for part in parts], np.int64),
                                               np.concatenate(parts), float(options.min_core_px),
                                               int(options.max_candidates))
    return [((x, y), size, {1: ring, 2: core} if outer < 0 else {0: outer, 1: ring, 2: core})
            for (x, y, size), (ring, core, outer) in zip(places.tolist(), outlines.tolist())]


def reference_located(contours: Sequence[np.ndarray], tree: np.ndarray, options: FinderOptions) -> list[_Candidate]:
    """The plain reference of :func:`_located`: the candidates (:func:`reference_candidates`), at most
    ``options.max_candidates`` of them, the most finder-like (a frame of rings costs bounded time), and of those
    one per place (:func:`_distinct`)."""
    places, scores = reference_candidates(contours, tree, options)
    if len(places) > options.max_candidates:
        kept = sorted(range(len(scores)), key=scores.__getitem__)[:options.max_candidates]
        places, scores = [places[i] for i in kept], [scores[i] for i in kept]
    return _distinct(places, scores)


def reference_candidates(contours: Sequence[np.ndarray], tree: np.ndarray,
                         options: FinderOptions) -> tuple[list[_Candidate], list[float]]:
    """Each contour with a parent and a child is a candidate 5x5 outline, its parent the 7x7 outline and its largest
    child the 3x3 core; the candidates and how unlike a finder each looks (lower is better)."""
    # flat lists of ints, not a list per row: a noisy frame has 10^5 contours, and so many lists set off Python's
    # garbage collector (a 720p video ran 15% slower)
    following, _, first_child, parent = tree.T.tolist()
    places: list[_Candidate] = []
    scores: list[float] = []  # how finder-like each candidate is
    for ring in np.flatnonzero((tree[:, 2] >= 0) & (tree[:, 3] >= 0)).tolist():  # the 5x5 outline, in the outer
        outer = parent[ring]
        core, core_m00 = _largest_child(first_child[ring], contours, following)
        oriented = cv2.contourArea(contours[ring], True)
        ring_is_hole, ring_m00 = oriented > 0, abs(oriented)  # dark-on-light: the ring is a hole
        if core_m00 <= 0 or ring_m00 <= 0:
            continue
        ring_area = _inner_area(ring_m00, not ring_is_hole)
        core_area = _inner_area(core_m00, ring_is_hole)
        if core_area < options.min_core_px or not 0.04 < core_area / max(ring_area, 1) < 0.7:
            continue
        ring_moments, core_moments = cv2.moments(contours[ring]), cv2.moments(contours[core])  # only where needed
        core_centre = (core_moments["m10"] / core_m00, core_moments["m01"] / core_m00)
        ring_centre = (ring_moments["m10"] / ring_m00, ring_moments["m01"] / ring_m00)
        if math.dist(ring_centre, core_centre) > 0.15 * math.sqrt(ring_area):
            continue
        outlines = {1: ring, 2: core}
        outer_ratio = ring_area / max(_inner_area(cv2.contourArea(contours[outer]), ring_is_hole), 1)
        # How far the areas are from 3x3 : 5x5 : 7x7; an outer ring merged with its surroundings costs 0.7.
        score = abs(math.log(core_area / ring_area / 0.36))
        if 0.3 < outer_ratio < 0.8:
            outlines[0] = outer
            score += abs(math.log(outer_ratio / 0.51))
        else:
            score += 0.7
        # The size from the contour's own area, as traced: under strong perspective it is the better estimate of
        # the module count (it read 2 more of 100 codes tilted by up to 55 degrees than the edge-corrected area).
        places.append((core_centre, math.sqrt(ring_m00) * 7 / 5, outlines))
        scores.append(score)
    return places, scores


def _inner_area(area: float, outer: bool) -> float:
    """Pixels^2 inside a roughly square shape's edges from the area of its contour. ``cv2.findContours`` traces the
    centres of the foreground's boundary pixels: half a pixel inside the edges of an ``outer`` boundary, half a
    pixel outside those of a hole. Without this, a finder pattern's 3x3 : 5x5 : 7x7 areas look wrong when its
    modules are 2-3 pixels wide (light-on-dark ones looked more like their outer ring than like themselves)."""
    return (math.sqrt(area) + (1.0 if outer else -1.0)) ** 2 if area >= 1 else 0.0


def _largest_child(child: int, contours: Sequence[np.ndarray], following: list[int]) -> tuple[int, float]:
    """The largest of ``child`` and its following siblings, and its area."""
    best, best_area = -1, -1.0
    while child >= 0:
        area = cv2.contourArea(contours[child])
        if area > best_area:
            best, best_area = child, area
        child = following[child]
    return best, best_area


def _distinct(places: list[_Candidate], scores: list[float]) -> list[_Candidate]:
    """One candidate (centre, size, ...) per place: of concentric ones (the 7x7 and 5x5 outlines, a hollow
    core), the one whose nested areas match a finder pattern best. The conflicting pairs are found at once
    (numpy); a cluttered frame has hundreds of candidates and few conflicts."""
    if len(places) < 2:
        return places
    centres = np.array([place[0] for place in places])
    sizes = np.array([place[1] for place in places])
    small, large = np.minimum(sizes[:, None], sizes[None, :]), np.maximum(sizes[:, None], sizes[None, :])
    distance = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    conflicts: dict[int, list[int]] = {}
    for i, j in np.argwhere((distance <= 0.3 * small) & (large <= 2.5 * small)).tolist():
        if i != j:
            conflicts.setdefault(i, []).append(j)
    kept: list[_Candidate] = []
    blocked: set[int] = set()
    for index in sorted(range(len(scores)), key=scores.__getitem__):
        if index not in blocked:
            kept.append(places[index])
            blocked.update(conflicts.get(index, ()))
    return kept
