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


def polygons(outlines: Iterable[Points]) -> list[np.ndarray]:
    """Outlines as OpenCV's polygons ((N, 2) float32): for :func:`holding` on many points, converted once."""
    return [np.asarray(outline, np.float32).reshape(-1, 2) for outline in outlines]


def holding(point: Points | Sequence[float], outlines: Iterable[Points],
            margin: float | Sequence[float] = 0.0) -> int | None:
    """Index of the first of ``outlines`` ((N, 2) pixels each) that holds ``point`` (x, y), or None.

    ``margin``: pixels outside an outline that still count as in it (one for all, or one per outline); with a
    margin, a point must lie closer than that to the outline's edge (OpenCV's signed distance). Outlines given as
    float32 arrays (:func:`polygons`) are not copied."""
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
