"""Codes of which only two finder patterns show (blur merging the third with the data modules, glare, damage):
the third put where it would be (conventions: :mod:`livereader.vision.finder`). None is sure to be a code: only
a verified read makes one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from livereader.timing import timed
from livereader.vision.finder import Finder, FinderOptions
from livereader.vision.fit import LocatedCode, fit_trio, timing_contrast
from livereader.vision.grouping import pair_geometry


@timed("two-finder codes (retry)")
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
    *_, span, small, large = pair_geometry(finders)
    off = np.minimum(np.abs(span / 14 - 1), np.abs(span / (14 * math.sqrt(2)) - 1))  # from a side, a diagonal
    side = np.abs(span - 14) < np.abs(span - 14 * math.sqrt(2))  # else a diagonal
    first, second = np.nonzero(np.triu((large < options.max_size_ratio * small) & (off < 0.25), 1))  # pairs, once
    nearest = np.argsort(off[first, second], kind="stable").tolist()  # nearest a version-1 span first
    places = (triple for pair in nearest
              for triple in _completed(finders[first[pair]], finders[second[pair]], side[first[pair], second[pair]]))
    codes = []
    for triple in itertools.islice(places, options.max_fits):
        code = fit_trio(triple)
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
