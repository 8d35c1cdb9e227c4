"""Points and outlines in a frame: the one place that tests whether a point lies in a code's outline.

Conventions: points are (x, y) pixels of the frame (origin top-left); an outline is a polygon of such points,
a code's corners ordered tl, tr, br, bl of the symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

Point = tuple[float, float]
Points = np.ndarray | Sequence[Sequence[float]]  # (N, 2) pixels (x, y): an outline, the corners of a code


def centre_of(points: Points | Iterable[Sequence[float]]) -> Point:
    """The mean of a few (x, y) points (plain Python: numpy's mean costs more for four points)."""
    pairs = [(float(x), float(y)) for x, y in points]
    return sum(x for x, _ in pairs) / len(pairs), sum(y for _, y in pairs) / len(pairs)


def centre_and_size(points: Points) -> tuple[Point, float]:
    """An outline's centre (x, y) and size: the square root of its area, at least 1 pixel."""
    return centre_of(points), max(float(np.sqrt(cv2.contourArea(np.asarray(points, np.float32)))), 1.0)


def scaled_point(x: float, y: float, scale: float, origin: tuple[int, int] = (0, 0)) -> Point:
    """A point of an image shrunk by ``scale`` (a crop of the full image at ``origin``, (x, y) in its pixels) -> in
    the full image, pixel centres kept (the centre of pixel 0 of an image shrunk by 2 lies between pixels 0 and 1 of
    the full one); a ``scale`` under 1 maps the other way."""
    return (x + 0.5) * scale - 0.5 + origin[0], (y + 0.5) * scale - 0.5 + origin[1]


def held(points: Sequence[Point], outlines: Sequence[Points]) -> list[bool]:
    """Whether each of ``points`` (x, y) lies in any of ``outlines`` (edge included, as :func:`holding` without a
    margin). Where every outline is a convex quadrilateral of some area, as codes' corners are, and there are more
    than 64 point-outline pairs, all points and outlines at once: a point lies in a convex outline where it is on no
    edge's outer side (a sheet of 60 codes tests hundreds of finder patterns against each). Otherwise one by one
    (:func:`holding`), where numpy's calls would cost more than OpenCV's tests."""
    if not points or not outlines:
        return [False] * len(points)
    quads = [np.asarray(outline, np.float32).reshape(-1, 2) for outline in outlines]
    if len(points) * len(quads) <= 64 or any(len(quad) != 4 for quad in quads):
        return [holding(point, quads) is not None for point in points]
    corners = np.stack(quads).astype(np.float64)  # (K, 4, 2), as OpenCV's float32 polygons
    edges = corners[:, [1, 2, 3, 0]] - corners
    following = edges[:, [1, 2, 3, 0]]
    turns = edges[:, :, 0] * following[:, :, 1] - edges[:, :, 1] * following[:, :, 0]
    convex = (np.all(turns >= 0, axis=1) | np.all(turns <= 0, axis=1)) & np.any(turns != 0, axis=1)
    if not np.all(convex):  # a concave outline, or one of no area: one by one
        return [holding(point, quads) is not None for point in points]
    xy = np.asarray(points, np.float32).astype(np.float64)  # as OpenCV takes a point
    inside: list[bool] = []
    for start in range(0, len(xy), 1024):  # (1024, K, 4) at a time: bounded memory for a frame of many finders
        offsets = xy[start:start + 1024, None, None, :] - corners[None]
        sides = edges[None, :, :, 0] * offsets[..., 1] - edges[None, :, :, 1] * offsets[..., 0]
        inside += np.any(np.all(sides >= 0, axis=2) | np.all(sides <= 0, axis=2), axis=1).tolist()
    return inside


def holding(point: Points | Sequence[float], outlines: Iterable[Points],
            margin: float | Sequence[float] = 0.0) -> int | None:
    """Index of the first of ``outlines`` ((N, 2) pixels each) that holds ``point`` (x, y), or None.

    ``margin``: pixels outside an outline that still count as in it (one for all, or one per outline); with a
    margin, a point must lie closer than that to the outline's edge (OpenCV's signed distance). Outlines given as
    (N, 2) float32 arrays are not copied."""
    xy = (float(point[0]), float(point[1]))  # type: ignore[arg-type]  # a point: two numbers
    for index, outline in enumerate(outlines):
        edge = margin if isinstance(margin, (int, float)) else margin[index]
        polygon = np.asarray(outline, np.float32).reshape(-1, 2)
        if edge:
            if cv2.pointPolygonTest(polygon, xy, True) > -edge:
                return index
        elif cv2.pointPolygonTest(polygon, xy, False) >= 0:
            return index
    return None
