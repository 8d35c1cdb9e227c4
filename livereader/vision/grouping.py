"""Grouping finder patterns into codes: three finders of similar size at the corners of a right angle (in
perspective) whose timing patterns alternate form a code; the distance between them in module sizes gives the
module count, so codes other than 21x21 are located but reported as unsupported (conventions:
:mod:`livereader.vision.finder`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

import cv2
import numpy as np

from livereader import compiled
from livereader.timing import timed
from livereader.vision.finder import Finder, FinderOptions
from livereader.vision.fit import LocatedCode, fit_all_outlines, fit_trio, robust_bound, timing_contrast


def pair_geometry(finders: list[Finder]) -> tuple[np.ndarray, ...]:
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


def plausible_pairs(span: np.ndarray, small: np.ndarray, large: np.ndarray, options: FinderOptions) -> np.ndarray:
    """(n, n) bool: which two finders (:func:`pair_geometry`'s ``span``, ``small`` and ``large``) could be two
    corners of one code: similar sizes and a plausible span (a near finder that looks large under strong tilt
    makes a span look 30% shorter: over 9, not 14)."""
    return (large < options.max_size_ratio * small) & (span > 9) & (span < options.max_modules - 7)


def reference_sides(finders: list[Finder], options: FinderOptions) -> list[list[list[int]]]:
    """The plain reference of :func:`_side_partners`: for each finder and each of its four half-axes (directions
    along its edges, see :attr:`Finder.axes`), the indices of the nearest ``options.side_partners`` finders that
    could share a side of one code with it: similar sizes, a plausible span, and the line between both centres
    along an edge of each.

    A code's tl finder and its tr (or bl) finder lie on a line parallel to both finders' edges, even in
    perspective (to within ``options.max_misalignment``), and nothing finder-like lies between them but by
    chance: keeping the nearest few per direction bounds the triples per finder, so grouping costs about
    linear time in the finders of a cluttered frame, where all pairs would cost their cube.
    """
    dx, dy, distance, span, small, large = pair_geometry(finders)
    plausible = plausible_pairs(span, small, large, options)
    # the edge directions only of finders with a plausible partner: most candidates of a cluttered frame have none
    paired: list[bool] = np.any(plausible, axis=1).tolist()
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
    sides: list[list[list[int]]] = [[[] for _ in range(4)] for _ in finders]
    for half_axis in range(4):
        along = np.where(direction == half_axis, ranked, np.inf)
        nearest = np.argsort(along, axis=1, kind="stable")[:, :options.side_partners]
        for i, js in enumerate(nearest.tolist()):
            sides[i][half_axis] = [j for j in js if along[i, j] < np.inf]
    return sides


def side_partnered(finders: list[Finder], options: FinderOptions = FinderOptions()) -> list[bool]:
    """For each finder, whether another of ``finders`` could share a side of one code with it
    (:func:`reference_sides`, compiled once the kernels are ready: :mod:`livereader.compiled`)."""
    if len(finders) < 2:
        return [False] * len(finders)
    kernels = compiled.kernels()
    if kernels is None:
        return [any(sides) for sides in reference_sides(finders, options)]
    _, _, nearest = _side_partners(kernels, finders, options)
    partnered: list[bool] = np.any(nearest >= 0, axis=(1, 2)).tolist()
    return partnered


def _side_partners(kernels: ModuleType, finders: list[Finder],
                   options: FinderOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The finders' centres (n, 2), sizes (n,) and side partners (n, 4, ``options.side_partners``; -1: none) by
    the ``kernels`` (:func:`livereader.kernels.side_partners`): the same as :func:`reference_sides`. The edge
    directions only of finders with a plausible partner: most candidates of a cluttered frame have none."""
    centres = np.array([f.centre for f in finders], np.float64)
    sizes = np.array([f.size for f in finders], np.float64)
    candidates = np.flatnonzero(kernels.paired(centres, sizes, float(options.max_size_ratio),
                                               int(options.max_modules)))
    axes = np.zeros((len(finders), 2))
    for i in candidates.tolist():
        axes[i] = finders[i].axes
    return centres, sizes, kernels.side_partners(
        centres, sizes, axes, candidates, int(options.side_partners), float(options.max_size_ratio),
        int(options.max_modules), float(options.max_misalignment), float(options.max_other_misalignment))


def _candidate_triples(kernels: ModuleType, centres: np.ndarray, sizes: np.ndarray, nearest: np.ndarray,
                       options: FinderOptions) -> tuple[list[tuple[int, int, int]], list[float]]:
    """Candidate (tl, tr, bl) index triples and how unlike a code's three corners each looks (lower is better), by
    the ``kernels`` (:func:`livereader.kernels.candidate_triples`) from :func:`_side_partners`' centres, sizes and
    partners: the same as :func:`reference_triple_scores`, which explains the geometry."""
    triples, scores = kernels.candidate_triples(centres, sizes, nearest, float(options.max_size_ratio),
                                                float(options.max_side_ratio), float(options.max_side_cos))
    return [(c, p, q) for c, p, q in triples.tolist()], scores.tolist()


def reference_triple_scores(finders: list[Finder],
                            options: FinderOptions) -> tuple[list[tuple[int, int, int]], list[float]]:
    """The plain reference of :func:`_candidate_triples`: candidate (tl, tr, bl) index triples and how unlike a code's
    three corners each looks (lower is better):
    a corner finder with one side partner along each of two of its perpendicular half-axes (:func:`reference_sides`),
    the two sides of similar length, the three finders of similar size, the angle between the sides right as
    seen in perspective."""
    corner: list[int] = []
    first: list[int] = []
    second: list[int] = []
    for i, sides in enumerate(reference_sides(finders, options)):
        for axis_a, axis_b in ((0, 2), (0, 3), (1, 2), (1, 3)):  # half-axes along different axes
            for j, k in itertools.product(sides[axis_a], sides[axis_b]):
                corner.append(i)
                first.append(j)
                second.append(k)
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


@timed("grouping and fit")
def group_codes(grey: np.ndarray, finders: list[Finder], options: FinderOptions = FinderOptions()) -> list[LocatedCode]:
    """Group finders into codes, best-looking triples first, each finder used once.

    Each order of a trio is fitted algebraically to its finders' outermost outlines and judged by its timing
    patterns (:func:`_judge`); only the order kept, if 21x21, is fitted to every outline, and again robustly where
    their corners disagree (:func:`_refit`). At most ``options.max_fits`` fits and two per finder: a pathological
    frame loses codes, not seconds. Compiled once the kernels are ready (:mod:`livereader.compiled`).
    """
    if len(finders) < 3:
        return []
    kernels = compiled.kernels()
    if kernels is None:
        trios, outlines = _trios(*reference_triple_scores(finders, options)), None
    else:  # the finders' centres and sizes once, for the triples and the judging
        centres, sizes, nearest = _side_partners(kernels, finders, options)
        trios = _trios(*_candidate_triples(kernels, centres, sizes, nearest, options))
        outlines = _Outlines.of(grey, finders, trios, centres, sizes)
    budget = _Budget(options.max_fits + 2 * len(finders))
    judged: dict[tuple[int, ...], tuple[LocatedCode | None, float]] = {}
    used: set[int] = set()
    codes: list[LocatedCode] = []
    # Codes side by side (a sheet of labels, quiet zones of 4 modules) put finders of neighbouring codes 15
    # modules apart, as a code's own are 14: a trio across two codes can look as right as a real one, and its
    # "timing" modules alternate now and then by chance. So trios whose timing alternates clearly are taken
    # first, and the others only from the finders left over.
    for clearly in (True, False):
        for trio, orders in trios.items():  # best-looking trio first
            if used.intersection(trio):
                continue
            if trio not in judged:
                judged[trio] = _judge(kernels, grey, finders, orders, budget, options, outlines)
            best, contrast = judged[trio]
            if best is None or contrast < (options.sure_timing_contrast if clearly else -math.inf):
                continue
            best, contrast = _refit(grey, best, contrast, budget)
            if contrast > options.min_timing_contrast:  # three finders of one code, not of several
                used.update(trio)
                codes.append(best)
    return codes


@dataclass
class _Budget:
    """The homography fits left to one call of :func:`group_codes`."""

    left: int

    def spend(self) -> bool:
        """Whether a fit is left; if so, it is spent."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _trios(triples: list[tuple[int, int, int]],
           scores: list[float]) -> dict[tuple[int, ...], list[tuple[int, int, int]]]:
    """The candidate (tl, tr, bl) ``triples`` by their three finders in any order (sorted indices), best-looking
    trio first, and each trio's orders best first (lowest ``scores``, :func:`_candidate_triples`)."""
    trios: dict[tuple[int, ...], list[tuple[int, int, int]]] = {}
    for row in sorted(range(len(scores)), key=scores.__getitem__):
        trios.setdefault(tuple(sorted(triples[row])), []).append(triples[row])
    return trios


def _judge(kernels: ModuleType | None, grey: np.ndarray, finders: list[Finder], orders: list[tuple[int, int, int]],
           budget: _Budget, options: FinderOptions, outlines: _Outlines | None) -> tuple[LocatedCode | None, float]:
    """A trio's best order, fitted to the outermost outlines, and its timing contrast, by the ``kernels``
    (:func:`livereader.kernels.judge_orders`, on the frame's ``outlines``) or, where None, by
    :func:`reference_judge`, which gives the same. One fit of the ``budget`` per order fitted."""
    if kernels is None or outlines is None:
        return reference_judge(grey, finders, orders, budget, options)
    best, contrast, modules, homography, corners, residual, spent = kernels.judge_orders(
        outlines.grey, outlines.centres, outlines.sizes, outlines.quads, outlines.depths,
        np.array(orders, np.int64), int(budget.left), float(options.sure_timing_contrast),
        float(options.min_timing_contrast))
    budget.left -= spent
    if best < 0:
        return None, -math.inf
    tl, tr, bl = orders[best]
    return LocatedCode(corners, modules, homography, (finders[tl], finders[tr], finders[bl]), residual), contrast


def reference_judge(grey: np.ndarray, finders: list[Finder], orders: list[tuple[int, int, int]], budget: _Budget,
                    options: FinderOptions) -> tuple[LocatedCode | None, float]:
    """The plain reference of :func:`_judge`. Strong perspective can make another corner look most like the right
    angle: of the trio's possible ``orders`` (best-looking first), the one whose timing patterns (row and column
    6) alternate best; an order is kept at once when its timing patterns alternate clearly."""
    best, best_contrast = None, -math.inf
    for tl, tr, bl in orders[:budget.left]:
        budget.left -= 1
        code = fit_trio((finders[tl], finders[tr], finders[bl]), outermost=True)
        if code is not None:
            contrast = timing_contrast(grey, code.homography, code.modules)
            if contrast > best_contrast:
                best, best_contrast = code, contrast
            # a code that is not 21x21 is only outlined: any order whose timing alternates will do
            if contrast >= (options.sure_timing_contrast if code.supported else options.min_timing_contrast):
                break
    return best, best_contrast


@dataclass(frozen=True)
class _Outlines:
    """A frame and its finders as :func:`livereader.kernels.judge_orders` takes them: the grey frame
    (contiguous uint8), centres (n, 2), sizes (n,), and of each finder in a candidate trio its outermost
    four-cornered outline (n, 1, 4, 2) and that outline's depth (n, 1; -1: none, or in no trio)."""

    grey: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    quads: np.ndarray
    depths: np.ndarray

    @classmethod
    def of(cls, grey: np.ndarray, finders: list[Finder], trios: Iterable[tuple[int, ...]], centres: np.ndarray,
           sizes: np.ndarray) -> _Outlines:
        """``centres`` and ``sizes``: the finders' (:func:`_side_partners` gives them)."""
        quads, depths = np.zeros((len(finders), 1, 4, 2)), np.full((len(finders), 1), -1, np.int64)
        for i in set(itertools.chain.from_iterable(trios)):
            for depth, quad in finders[i].outer:
                quads[i, 0], depths[i, 0] = quad, depth
        return cls(np.ascontiguousarray(grey, np.uint8), centres, sizes, quads, depths)


def _refit(grey: np.ndarray, code: LocatedCode, contrast: float, budget: _Budget) -> tuple[LocatedCode, float]:
    """A judged code and its timing ``contrast`` -> as its grid will be sampled. A 21x21 code's grid is sampled
    through its fit: fitted again to all its outlines' corners, and where they disagree (an outline cut by a
    shadow's edge or glare) robustly, ignoring the outliers (8x the cost). Other codes are only outlined, and a
    code stays as it is when the ``budget`` has no fit left or the fit fails."""
    if not (code.supported and budget.spend()):
        return code, contrast
    full = fit_all_outlines(code.finders)
    if full is not None and full.residual > robust_bound(full.finders) and budget.spend():
        full = fit_trio(code.finders, cv2.LMEDS) or full
    if full is None:
        return code, contrast
    return full, timing_contrast(grey, full.homography, full.modules)
