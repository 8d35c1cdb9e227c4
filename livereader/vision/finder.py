"""Finder location: the three finder patterns of every QR code in a grey frame, grouped into located codes.

A finder pattern (7x7 modules) is a ring inside a ring around a 3x3 core, dark-light-dark across its centre in
the ratio 1:1:3:1:1. After a local (adaptive) threshold, that nesting shows up in OpenCV's contour tree as a
contour whose child has a concentric child about a third of its area, for dark-on-light and light-on-dark codes
alike. Three finders of similar size at the corners of a right angle (in perspective) form a code; the
distance between them in module sizes gives the module count, so codes other than 21x21 are located but
reported as unsupported.

Conventions: points are (x, y) in pixels, OpenCV's convention (integer coordinates at pixel centres); module
coordinates are (x, y) = (column, row) in modules with the symbol's top-left corner at (0, 0); corners are
ordered tl, tr, br, bl of the symbol as its finder patterns define it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import cv2
import numpy as np

from livereader.symbol import SIZE


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
    max_fits: int = 64  # homography fits per search, and two more per finder: a pathological frame's budget


# Fit residual above which the fit is redone robustly (least median of squares): this many modules, and at least
# this many pixels (outline corners are traced to about a pixel whatever the module size: small codes' fits are
# that far off without any outlier, and a robust fit of them costs 8x as much for nothing)
ROBUST_ABOVE = 0.5
ROBUST_MIN_PX = 2.0


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


def noise_level(grey: np.ndarray) -> float:
    """Robust estimate of the pixel noise sigma (grey levels) from differences of horizontal neighbours."""
    sample = grey[::8, ::2]
    diff = cv2.absdiff(sample[:, 1:], sample[:, :-1]).ravel()
    if not len(diff):  # a frame one or two pixels wide
        return 0.0
    low, high = (len(diff) - 1) // 2, len(diff) // 2  # np.median by one partial sort: its wrapper costs 0.1 ms
    middle = np.partition(diff, (low, high))
    return (int(middle[low]) + int(middle[high])) / 2 * 1.4826 / math.sqrt(2)


def binarize(grey: np.ndarray, options: FinderOptions) -> np.ndarray:
    """uint8 image, 255 = darker than its local mean by more than the offset (raised with the frame's noise)."""
    noise = noise_level(grey)
    if noise > options.smooth_above:
        grey = cv2.GaussianBlur(grey, (5, 5), 1.2)
        noise *= 0.25  # white noise sigma after this Gaussian: 0.235 in theory
    offset = max(options.offset, options.noise_offset * noise)
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, options.block, offset)


def _to_full(x: float, y: float, scale: float, origin: tuple[int, int] = (0, 0)) -> tuple[float, float]:
    """A point in an image shrunk by ``scale`` (a crop of the full image at ``origin``, (x, y) in its pixels) -> in
    the full image (pixel centres at integers)."""
    return (x + 0.5) * scale - 0.5 + origin[0], (y + 0.5) * scale - 0.5 + origin[1]


def _quad(contour: np.ndarray, scale: float = 1.0,
          origin: tuple[int, int] = (0, 0)) -> tuple[tuple[float, float], ...] | None:
    """Four corners of a roughly quadrilateral contour, in order around it: the largest-area quad on its convex
    hull (in the pixels of the full image, see :func:`find_finders`).

    Written by hand because ``cv2.approxPolyN`` puts corners where the hull's edges meet, off blurred rounded
    outlines (it read fewer blurred codes), ``cv2.approxPolyDP`` returns 3, 5 or more vertices on blurred or
    noisy outlines and ``cv2.minAreaRect`` forces a rectangle on a perspective quad. Plain Python: hulls have
    about ten points, where each numpy call costs more than the arithmetic.
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
    return tuple(_to_full(x, y, scale, origin) for x, y in corners)


# Frames of more than TILED_ABOVE pixels are traced in tiles of TILE px a side (and TILE_OVERLAP px more to the right
# and below): OpenCV's tree of contours costs more than linear time in their number (the 265k contours of a 12 MP
# photo's sensitive threshold: 4.0 s in one call, 0.39 s in tiles of 1024 px), so a tile bounds each call's cost. A
# finder pattern of up to TILE_OVERLAP px lies wholly in some tile; larger ones show in shrunk frames.
TILE = 1024
TILE_OVERLAP = 256
TILED_ABOVE = 2 * TILE * TILE


def contour_tree(grey: np.ndarray, options: FinderOptions = FinderOptions()) -> tuple[tuple, np.ndarray | None]:
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


def find_finders(grey: np.ndarray, options: FinderOptions = FinderOptions(), scale: float = 1.0,
                 origin: tuple[int, int] = (0, 0)) -> list[Finder]:
    """All finder patterns in a grey uint8 frame, dark-on-light and light-on-dark; with ``scale``, ``grey`` is a
    frame shrunk by that factor, with ``origin``, a crop of the frame whose top-left pixel is ``origin`` (x, y);
    the finders are given in the full frame's pixels."""
    contours, hierarchy = contour_tree(grey, options)
    if hierarchy is None:
        return []
    tree = hierarchy[0]  # rows: next, previous, first child, parent
    # flat lists of ints, not a list per row: a noisy frame has 10^5 contours, and so many lists set off Python's
    # garbage collector (a 720p video ran 15% slower)
    following, _, first_child, parent = tree.T.tolist()
    places, scores = [], []  # (centre, size, outlines by depth) of each candidate, and how finder-like it is
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
    return [Finder(_to_full(*centre, scale, origin), size * scale,
                   tuple((depth, contours[i]) for depth, i in sorted(outlines.items())), scale, origin)
            for centre, size, outlines in _distinct(places, scores)]


def _inner_area(area: float, outer: bool) -> float:
    """Pixels^2 inside a roughly square shape's edges from the area of its contour. ``cv2.findContours`` traces the
    centres of the foreground's boundary pixels: half a pixel inside the edges of an ``outer`` boundary, half a
    pixel outside those of a hole. Without this, a finder pattern's 3x3 : 5x5 : 7x7 areas look wrong when its
    modules are 2-3 pixels wide (light-on-dark ones looked more like their outer ring than like themselves)."""
    return (math.sqrt(area) + (1.0 if outer else -1.0)) ** 2 if area >= 1 else 0.0


def _largest_child(child: int, contours: list, following: list[int]) -> tuple[int, float]:
    """The largest of ``child`` and its following siblings, and its area."""
    best, best_area = -1, -1.0
    while child >= 0:
        area = cv2.contourArea(contours[child])
        if area > best_area:
            best, best_area = child, area
        child = following[child]
    return best, best_area


def _distinct(places: list[tuple], scores: list[float]) -> list[tuple]:
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
    kept, blocked = [], set()
    for index in sorted(range(len(scores)), key=scores.__getitem__):
        if index not in blocked:
            kept.append(places[index])
            blocked.update(conflicts.get(index, ()))
    return kept


def _pair_geometry(finders: list[Finder]) -> tuple[np.ndarray, ...]:
    """(n, n) arrays over every two finders i, j: the offset from i's centre to j's (dx, dy), their distance, that
    distance in module sizes (``span``: m - 7 between two corner finders of a code of m modules, 14 for version 1),
    and the smaller and the larger of their sizes."""
    centres = np.array([f.centre for f in finders])  # (n, 2)
    sizes = np.array([f.size for f in finders])
    dx, dy = centres[None, :, 0] - centres[:, None, 0], centres[None, :, 1] - centres[:, None, 1]  # i -> j
    distance = np.hypot(dx, dy)
    span = 7 * distance / ((sizes[:, None] + sizes[None, :]) / 2)
    small, large = np.minimum(sizes[:, None], sizes[None, :]), np.maximum(sizes[:, None], sizes[None, :])
    return dx, dy, distance, span, small, large


def _sides(finders: list[Finder], options: FinderOptions) -> list[list[list[int]]]:
    """For each finder and each of its four half-axes (directions along its edges, see :attr:`Finder.axes`), the
    indices of the nearest ``options.side_partners`` finders that could share a side of one code with it:
    similar sizes, a plausible span, and the line between both centres along an edge of each.

    A code's tl finder and its tr (or bl) finder lie on a line parallel to both finders' edges, even in
    perspective (to within ``options.max_misalignment``), and nothing finder-like lies between them but by
    chance: keeping the nearest few per direction bounds the triples per finder, so grouping costs about
    linear time in the finders of a cluttered frame, where all pairs would cost their cube.
    """
    dx, dy, distance, span, small, large = _pair_geometry(finders)
    # a near finder that looks large under strong tilt makes a span look 30% shorter: 9, not 14
    plausible = (large < options.max_size_ratio * small) & (span > 9) & (span < options.max_modules - 7)
    # the edge directions only of finders with a plausible partner: most candidates of a cluttered frame have none
    paired = plausible.any(1).tolist()
    axes = np.array([f.axes if any_partner else (0.0, 0.0) for f, any_partner in zip(finders, paired)])  # (n, 2)
    # each pair's angle from both of i's axes, in (-pi, pi]; the nearer axis and which way along it
    turn = (np.arctan2(dy, dx)[:, :, None] - axes[:, None, :] + np.pi) % (2 * np.pi) - np.pi  # (n, n, 2)
    off = np.minimum(np.abs(turn), np.pi - np.abs(turn))  # misalignment with each axis
    axis = off.argmin(2)
    misaligned = off.min(2)
    backwards = np.abs(np.take_along_axis(turn, axis[:, :, None], 2)[:, :, 0]) > np.pi / 2
    direction = 2 * axis + backwards  # half-axis 0..3 of i that points at j
    # i's side line must run along j's edges too (angles mod pi: the same for j -> i)
    better, worse = np.minimum(misaligned, misaligned.T), np.maximum(misaligned, misaligned.T)
    aligned = (better < options.max_misalignment) & (worse < options.max_other_misalignment)
    ranked = np.where(plausible & aligned, distance, np.inf)
    sides = [[[] for _ in range(4)] for _ in finders]
    for half_axis in range(4):
        along = np.where(direction == half_axis, ranked, np.inf)
        nearest = np.argsort(along, axis=1, kind="stable")[:, :options.side_partners]
        for i, js in enumerate(nearest.tolist()):
            sides[i][half_axis] = [j for j in js if along[i, j] < np.inf]
    return sides


def side_partnered(finders: list[Finder], options: FinderOptions = FinderOptions()) -> list[bool]:
    """For each finder, whether another of ``finders`` could share a side of one code with it (:func:`_sides`)."""
    if len(finders) < 2:
        return [False] * len(finders)
    return [any(sides) for sides in _sides(finders, options)]


def _triple_scores(finders: list[Finder], options: FinderOptions) -> tuple[list[tuple[int, int, int]], list[float]]:
    """Candidate (tl, tr, bl) index triples and how unlike a code's three corners each looks (lower is better):
    a corner finder with one side partner along each of two of its perpendicular half-axes (:func:`_sides`),
    the two sides of similar length, the three finders of similar size, the angle between the sides right as
    seen in perspective."""
    corner, first, second = [], [], []
    for c, sides in enumerate(_sides(finders, options)):
        for a, b in ((0, 2), (0, 3), (1, 2), (1, 3)):  # half-axes along different axes
            for p, q in itertools.product(sides[a], sides[b]):
                corner.append(c), first.append(p), second.append(q)
    if not corner:
        return [], []
    centres = np.array([f.centre for f in finders])
    sizes = np.array([f.size for f in finders])
    c, p, q = np.array(corner), np.array(first), np.array(second)
    a, b = centres[p] - centres[c], centres[q] - centres[c]
    # with y pointing down, tr -> tl -> bl turns so that cross(tr - tl, bl - tl) > 0
    swap = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] < 0
    p, q = np.where(swap, q, p), np.where(swap, p, q)
    a, b = centres[p] - centres[c], centres[q] - centres[c]
    la, lb = np.hypot(*a.T), np.hypot(*b.T)
    trio_sizes = sizes[np.stack([c, p, q])]
    size_ratio = trio_sizes.max(0) / trio_sizes.min(0)
    cos = np.abs((a * b).sum(1)) / np.maximum(la * lb, 1e-9)
    span_a, span_b = 7 * la / ((sizes[c] + sizes[p]) / 2), 7 * lb / ((sizes[c] + sizes[q]) / 2)
    ok = (np.maximum(la, lb) < options.max_side_ratio * np.minimum(la, lb)) & (size_ratio < options.max_size_ratio) \
        & (cos < options.max_side_cos)  # the right angle seen in perspective
    with np.errstate(divide="ignore"):
        scores = cos + np.abs(np.log(la / lb)) + np.abs(np.log(span_a / span_b)) + np.log(size_ratio)
    return list(zip(c[ok].tolist(), p[ok].tolist(), q[ok].tolist())), scores[ok].tolist()


def group_codes(grey: np.ndarray, finders: list[Finder], options: FinderOptions = FinderOptions()) -> list[LocatedCode]:
    """Group finders into codes, best-looking triples first, each finder used once.

    Each order of a trio is fitted algebraically to its finders' outermost outlines (:func:`_fit`) and judged
    by its timing patterns; only the order kept, if 21x21, is fitted to every outline, and again robustly where
    their corners disagree. At most ``options.max_fits`` fits and two per finder: a pathological frame loses
    codes, not seconds.
    """
    if len(finders) < 3:
        return []
    triples, scores = _triple_scores(finders, options)
    orders: dict[tuple[int, ...], list[int]] = {}  # the same three finders in any order: rows, best first
    for row in sorted(range(len(scores)), key=scores.__getitem__):
        orders.setdefault(tuple(sorted(triples[row])), []).append(row)
    budget = options.max_fits + 2 * len(finders)  # fits left
    judged: dict[tuple[int, ...], tuple[LocatedCode | None, float]] = {}

    def judge(rows: list[int]) -> tuple[LocatedCode | None, float]:
        """A trio's best order, fitted to the outermost outlines, and its timing contrast. Strong perspective
        can make another corner look most like the right angle: of the trio's possible orders, the one whose
        timing patterns (row and column 6) alternate best; the best-scoring order is fitted first and kept at
        once when its timing patterns alternate clearly."""
        nonlocal budget
        best, best_contrast = None, -math.inf
        for row in rows[:budget]:
            budget -= 1
            code = _fit(tuple(finders[i] for i in triples[row]), outermost=True)
            if code is not None:
                contrast = timing_contrast(grey, code.homography, code.modules)
                if contrast > best_contrast:
                    best, best_contrast = code, contrast
                # a code that is not 21x21 is only outlined: any order whose timing alternates will do
                if contrast >= (options.sure_timing_contrast if code.supported else options.min_timing_contrast):
                    break
        return best, best_contrast

    used: set[int] = set()
    codes = []
    # Codes side by side (a sheet of labels, quiet zones of 4 modules) put finders of neighbouring codes 15
    # modules apart, as a code's own are 14: a trio across two codes can look as right as a real one, and its
    # "timing" modules alternate now and then by chance. So trios whose timing alternates clearly are taken
    # first, and the others only from the finders left over.
    for clearly in (True, False):
        for trio, rows in orders.items():  # best-looking trio first
            if used.intersection(trio):
                continue
            if trio not in judged:
                judged[trio] = judge(rows)
            best, contrast = judged[trio]
            if best is None or contrast < (options.sure_timing_contrast if clearly else -math.inf):
                continue
            # A 21x21 code's grid is sampled through its fit: fitted again to all its outlines' corners, and
            # where they disagree (an outline cut by a shadow's edge or glare) robustly, ignoring the outliers
            # (8x the cost). Other codes are only outlined.
            if best.supported and budget > 0:
                budget -= 1
                full = _fit(best.finders)
                if full is not None and full.residual > _robust_bound(full.finders) and budget > 0:
                    budget -= 1
                    full = _fit(best.finders, cv2.LMEDS) or full
                if full is not None:
                    best, contrast = full, timing_contrast(grey, full.homography, full.modules)
            if contrast > options.min_timing_contrast:  # three finders of one code, not of several
                used.update(trio)
                codes.append(best)
    return codes


def paired_codes(grey: np.ndarray, finders: list[Finder],
                 options: FinderOptions = FinderOptions()) -> list[LocatedCode]:
    """21x21 codes of which only two finder patterns show (blur merging the third with the data modules, glare,
    damage), most likely first: for any two of ``finders`` of similar size whose centres lie a version-1 side (14
    modules) or diagonal (20 modules) apart, each place of the third finder pattern that makes them a code's
    corners, fitted to the two finders' outlines and ranked by timing contrast. At most ``options.max_fits``
    places are fitted. None is sure to be a code: only a verified read makes one.
    """
    if len(finders) < 2:
        return []
    *_, span, small, large = _pair_geometry(finders)
    off = np.minimum(np.abs(span / 14 - 1), np.abs(span / (14 * math.sqrt(2)) - 1))  # from a side, a diagonal
    side = np.abs(span - 14) < np.abs(span - 14 * math.sqrt(2))  # else a diagonal
    first, second = np.nonzero(np.triu((large < options.max_size_ratio * small) & (off < 0.25), 1))  # pairs, once
    nearest = np.argsort(off[first, second], kind="stable").tolist()  # nearest a version-1 span first
    places = (triple for pair in nearest
              for triple in _completed(finders[first[pair]], finders[second[pair]], side[first[pair], second[pair]]))
    codes = []
    for triple in itertools.islice(places, options.max_fits):
        code = _fit(triple)
        if code is not None and code.supported:
            codes.append((timing_contrast(grey, code.homography, code.modules), code))
    return [code for _, code in sorted(codes, key=lambda scored: -scored[0])]


def _completed(first: Finder, second: Finder, side: bool) -> list[tuple[Finder, Finder, Finder]]:
    """The (tl, tr, bl) triples that ``first`` and ``second`` make with a third finder pattern put where it would
    be (no outlines: its place only orients the fit): as a ``side``, either being the corner and the third on
    either side of it, or else as the diagonal, the corner on either side of it."""
    (ax, ay), (bx, by) = first.centre, second.centre
    size = (first.size + second.size) / 2
    triples = []
    if side:  # the third at a right angle from either end
        for corner, other in ((first, second), (second, first)):
            (cx, cy), (ox, oy) = corner.centre, other.centre
            for sign in (1, -1):
                third = Finder((cx - sign * (oy - cy), cy + sign * (ox - cx)), size, ())
                triples.append(_oriented(corner, other, third))
    else:  # a diagonal: the corner on either side of its middle
        for sign in (1, -1):
            corner = Finder(((ax + bx) / 2 - sign * (by - ay) / 2, (ay + by) / 2 + sign * (bx - ax) / 2), size, ())
            triples.append(_oriented(corner, first, second))
    return triples


def _oriented(corner: Finder, one: Finder, other: Finder) -> tuple[Finder, Finder, Finder]:
    """(tl, tr, bl): with y pointing down, tr -> tl -> bl turns so that cross(tr - tl, bl - tl) > 0."""
    (cx, cy), (px, py), (qx, qy) = corner.centre, one.centre, other.centre
    return (corner, one, other) if (px - cx) * (qy - cy) - (py - cy) * (qx - cx) > 0 else (corner, other, one)


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


def _robust_bound(triple: tuple[Finder, Finder, Finder]) -> float:
    """The fit residual (modules) above which a code's fit is redone robustly."""
    return max(ROBUST_ABOVE, ROBUST_MIN_PX / _module_px(triple))


def _module_count(tl: Finder, tr: Finder, bl: Finder) -> int:
    """Estimated module count 17 + 4 v from the finder distances in module sizes."""
    spans = [7 * math.dist(f.centre, tl.centre) / ((tl.size + f.size) / 2) for f in (tr, bl)]
    return 17 + 4 * max(1, round(((spans[0] + spans[1]) / 2 + 7 - 17) / 4))


def _fit(triple: tuple[Finder, Finder, Finder], method: int = 0, outermost: bool = False) -> LocatedCode | None:
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
    source, target = [], []  # module coordinates and pixels of the outline corners
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
    target = np.array(target)
    pixels = cv2.perspectiveTransform(points, homography)[0]
    residual = math.sqrt(((pixels[:-4] - target) ** 2).sum(1).mean()) / _module_px(triple)  # RMS, modules
    corners = pixels[-4:]
    if not cv2.isContourConvex(corners.astype(np.float32)):
        return None
    return LocatedCode(corners, modules, homography, triple, residual)


def _algebraic_fit(source: list[tuple[float, float]], target: list[tuple[float, float]]) -> np.ndarray | None:
    """The homography from ``source`` to ``target`` points of least algebraic error (the direct linear transform
    with h33 = 1, pixels centred and scaled for conditioning), or None where the points do not determine one.

    Written by hand because ``cv2.findHomography`` always refines its least-squares fit by Levenberg-Marquardt
    iterations (0.1 ms for 12 corners, 0.02 ms here): a trio is judged by its timing modules' places, which this
    fit puts within half a pixel of the refined one, and a cluttered frame judges hundreds of trios that are no
    code. Plain Python up to the solver, as in :func:`_fit`.
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


Region = tuple[int, int, int, int]  # x0, y0, x1, y1: pixels x0 <= x < x1, y0 <= y < y1


def search(grey: np.ndarray, options: FinderOptions = FinderOptions(), regions: list[Region] | None = None,
           known: list[np.ndarray] = (), factor: int = 1) -> tuple[list[LocatedCode], list[Finder]]:
    """Every code whose three finder patterns are visible in the grey uint8 frame, and the finder patterns left
    over: outside every code, each perhaps part of a code whose other finders did not show. Finders are searched
    only in ``regions`` (the whole frame where None) of the frame shrunk by ``factor`` (pixel areas averaged, the
    threshold window shrunk with it: codes with modules of about 1.5 ``factor`` px and up), and not inside codes
    already ``known`` (outlines, (4, 2) pixels); codes are fitted in the full frame. Nested squares inside a code
    look like finders too, and are not returned."""
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


def _outside(finders: list[Finder], outlines) -> list[Finder]:
    """The finders whose centres lie outside every one of ``outlines`` ((4, 2) pixels each)."""
    outlines = [np.float32(outline) for outline in outlines]
    return [f for f in finders if all(cv2.pointPolygonTest(outline, f.centre, False) < 0 for outline in outlines)]


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
           known: list[np.ndarray] = ()) -> list[LocatedCode]:
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


def around(points, margin: float) -> Region:
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
