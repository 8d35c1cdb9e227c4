"""Warp and binarize: a located version-1 code -> its 21x21 grid (1 = dark, row-major: grid[row, col]).

Each module is sampled at 3x3 points around its centre through the located code's homography (63x63 points a
code, the codes of a search in one ``cv2.remap``, up to ``BATCH`` of them), and compared with a local threshold:
the mean of the samples in a window of ``GridOptions.window`` modules around it. The soft grid maps each module's
darkness relative to that threshold and the local contrast into [0, 1]; the hard grid is the soft one thresholded
at 0.5, and is what the decoder gets by default. Light-on-dark codes are passed as they are (the decoder turns them
upright); mirrored codes are transposed here, chosen by the format bits, which read far worse in the wrong
orientation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from livereader import compiled
from livereader.symbol import DATA_REGION, FORMAT_POSITIONS, SIZE, format_codewords, format_distances
from livereader.timing import timed
from livereader.vision.fit import LocatedCode

SUBSAMPLES = 3  # samples per module along each axis
BATCH = 256  # codes sampled in one cv2.remap at most (its maps hold fewer than 32767 rows)


@dataclass(frozen=True)
class GridOptions:
    window: int = 7  # local threshold window, modules (odd)
    spread: float = 0.25  # sub-samples lie this far from the module centre, in modules
    gain: float = 1.0  # soft value = 0.5 + gain * (local mean - sample) / local standard deviation, clipped
    # hand the decoder the soft grid instead of the hard one (hard grids read more: docs/benchmarks.md)
    soft: bool = False


@dataclass(frozen=True)
class SampledGrid:
    """``soft``: (21, 21) float32 in [0, 1]; ``hard``: (21, 21) uint8 0/1; both 1 = dark, in the symbol's own
    orientation. ``mirrored``: the code was seen mirrored (the grid was transposed)."""

    soft: np.ndarray
    hard: np.ndarray
    mirrored: bool


@lru_cache(maxsize=4)
def _sample_points(spread: float) -> np.ndarray:
    """(1, 63*63, 2) module coordinates (x, y) of the sub-samples, row-major by module."""
    offsets = (np.arange(SUBSAMPLES) - (SUBSAMPLES - 1) / 2) * spread
    centres = np.arange(SIZE) + 0.5
    axis = (centres[:, None] + offsets[None, :]).ravel()  # (63,)
    xs, ys = np.meshgrid(axis, axis)
    return np.stack([xs, ys], -1).reshape(1, -1, 2)


def _mirrored(hard: np.ndarray) -> list[bool]:
    """For (N, 21, 21) 0/1 grids as seen: whether each was seen mirrored, its format bits reading better transposed,
    compiled (:func:`livereader.kernels.mirrored`) once the kernels are ready (:mod:`livereader.compiled`), and
    until then by :func:`reference_mirrored`, which gives the same."""
    kernels = compiled.kernels()
    if kernels is None:
        return reference_mirrored(hard)
    return kernels.mirrored(np.ascontiguousarray(hard, np.uint8), FORMAT_POSITIONS, format_codewords()).tolist()


def reference_mirrored(hard: np.ndarray) -> list[bool]:
    """The plain reference of :func:`_mirrored`: the format modules of the grids transposed and as they are."""
    return (_format_distances(hard.transpose(0, 2, 1)) < _format_distances(hard)).tolist()


def _format_distances(hard: np.ndarray) -> np.ndarray:
    """(N,) format modules (of 30) of (N, 21, 21) 0/1 grids that disagree with the nearest valid format word, for
    either polarity (a 0/1 grid's complement is 30 - d from a codeword that the grid is d from)."""
    distances = format_distances(hard)  # (N, 32)
    return np.minimum(distances.min(axis=1), 30 - distances.max(axis=1))


@lru_cache(maxsize=1)
def _module_centres() -> np.ndarray:
    """(1, 441, 2) float32 module coordinates (x, y) of the 21x21 module centres, row-major."""
    centres = np.arange(SIZE) + 0.5
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs, ys], -1).reshape(1, -1, 2).astype(np.float32)


def _contrasts(grey: np.ndarray, homographies: list[np.ndarray]) -> np.ndarray:
    """For each module-to-pixel homography, the mean absolute difference of the 21x21 module-centre samples from
    their 3x3-module local mean (edges reflected): highest when the samples sit on module centres rather than on
    module edges. All homographies' samples in one ``cv2.remap``."""
    points = np.concatenate([cv2.perspectiveTransform(_module_centres(), h)[0] for h in homographies])
    values = cv2.remap(grey, points[:, :1], points[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    values = values.reshape(len(homographies), SIZE, SIZE).astype(np.float32)
    padded = np.pad(values, ((0, 0), (1, 1), (1, 1)), mode="symmetric")  # cv2.BORDER_REFLECT
    local = sum(padded[:, dy:dy + SIZE, dx:dx + SIZE] for dy in range(3) for dx in range(3)) / 9
    return np.abs(values - local).mean(axis=(1, 2))


@timed("refine (retry)")
def refine(grey: np.ndarray, code: LocatedCode, steps: tuple[float, ...] = (0.5, 0.25)) -> LocatedCode:
    """Move the bottom-right corner, the one extrapolated farthest from the finder patterns, to where the
    module samples show the most contrast (:func:`_contrasts`): a coarse-to-fine search of +-2 steps per axis, in
    modules, each step's 25 places judged at once (the first of the best where they tie)."""
    best, best_score = code.corners.astype(np.float32), float(_contrasts(grey, [code.homography])[0])
    moves = np.array([[[SIZE + dx, SIZE + dy] for dx, dy in itertools.product((-2, -1, 0, 1, 2), repeat=2)]],
                     np.float32)
    located = code.corners[2].astype(np.float32)
    for step in steps:
        places = cv2.perspectiveTransform(SIZE + (moves - SIZE) * step, code.homography)[0]
        candidates = np.repeat(best[None], len(places), axis=0)  # each place moves the best corner so far
        candidates[:, 2] = best[2] + places - located
        scores = _contrasts(grey, [corner_homography(corners) for corners in candidates])
        chosen = int(np.argmax(scores))
        if scores[chosen] > best_score:
            best, best_score = candidates[chosen], float(scores[chosen])
    return replace(code, corners=best.astype(np.float64), homography=corner_homography(best))


def corner_homography(corners: npt.ArrayLike) -> np.ndarray:
    """The module-to-pixel homography of a 21x21 symbol whose corners tl, tr, br, bl are ``corners`` (pixels)."""
    square = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], np.float32)
    return cv2.getPerspectiveTransform(square, np.asarray(corners, np.float32))


@timed("grid sampling")
def sample_grids(grey: np.ndarray, codes: Sequence[LocatedCode],
                 options: GridOptions = GridOptions()) -> list[SampledGrid]:
    """Sample located 21x21 codes from the grey uint8 frame, all at once (:func:`sample_softs`)."""
    return oriented_grids(sample_softs(grey, [code.homography for code in codes], options))


def sample_grid(grey: np.ndarray, code: LocatedCode, options: GridOptions = GridOptions()) -> SampledGrid:
    """Sample one located 21x21 code from the grey uint8 frame."""
    return sample_grids(grey, [code], options)[0]


def sample_soft(grey: np.ndarray, homography: np.ndarray, options: GridOptions = GridOptions()) -> np.ndarray:
    """The (21, 21) soft grid under a module-to-pixel homography, as seen in the frame (not yet oriented)."""
    return sample_softs(grey, [homography], options)[0]


def sample_softs(grey: np.ndarray, homographies: Sequence[np.ndarray],
                 options: GridOptions = GridOptions()) -> np.ndarray:
    """(N, 21, 21) soft grids under module-to-pixel homographies, as seen in the frame (not yet oriented): the
    sub-samples of up to ``BATCH`` codes in one ``cv2.remap``, then their soft values in one compiled call
    (:func:`livereader.kernels.soft_grids`) once the kernels are ready, and until then by :func:`reference_softs`,
    which gives the same: each code's grid depends on its own samples alone, so codes sampled together give the same
    grids, bit for bit, as codes sampled one by one."""
    if len(homographies) > BATCH:
        return np.concatenate([sample_softs(grey, homographies[start:start + BATCH], options)
                               for start in range(0, len(homographies), BATCH)])
    count, side = len(homographies), SIZE * SUBSAMPLES
    if not count:
        return np.zeros((0, SIZE, SIZE), np.float32)
    points = np.concatenate([cv2.perspectiveTransform(_sample_points(options.spread), h) for h in homographies])
    samples = cv2.remap(grey, points.astype(np.float32).reshape(count * side, side, 2), None, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    kernels = compiled.kernels()
    if kernels is None or samples.dtype != np.uint8:
        return reference_softs(samples, count, options)
    return kernels.soft_grids(samples, count, int(options.window), float(options.gain))


def reference_softs(samples: np.ndarray, count: int, options: GridOptions = GridOptions()) -> np.ndarray:
    """The soft grids of ``count`` codes from their sub-samples ((count * 63, 63), as :func:`sample_softs` remaps
    them): each module's mean of its samples, and its darkness relative to the mean and spread of its window. The
    plain reference of :func:`livereader.kernels.soft_grids`, which gives the same, bit for bit, in one call for
    the dozen numpy and OpenCV calls here (once the kernels are ready: :mod:`livereader.compiled`)."""
    # each module's mean of its SUBSAMPLES x SUBSAMPLES samples (an exact block mean for an integer factor)
    values = cv2.resize(samples.astype(np.float32), (SIZE, count * SIZE),
                        interpolation=cv2.INTER_AREA).reshape(count, SIZE, SIZE)
    window = (options.window, options.window)
    mean = np.stack([cv2.blur(grid, window, borderType=cv2.BORDER_REFLECT) for grid in values])
    squares = (values - mean) ** 2
    spread = np.sqrt(np.stack([cv2.blur(grid, window, borderType=cv2.BORDER_REFLECT) for grid in squares])) + 1.0
    return np.clip(0.5 + options.gain * (mean - values) / spread, 0, 1).astype(np.float32)


def data_modules(grey: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """(208,) bool: the data modules seen dark under a 21x21 code's module-to-pixel homography (the symbol as
    seen, not yet oriented): for comparing what two frames show through one outline."""
    return (sample_soft(grey, homography) > 0.5)[DATA_REGION]


def oriented(soft: np.ndarray) -> SampledGrid:
    """A (21, 21) soft grid as seen in the frame -> the sampled grid in the symbol's own orientation."""
    return oriented_grids(soft[None])[0]


def oriented_grids(softs: np.ndarray) -> list[SampledGrid]:
    """(N, 21, 21) soft grids as seen in the frame -> the sampled grids in the symbols' own orientations: a grid
    whose format bits read better transposed was seen mirrored."""
    hard = (softs > 0.5).astype(np.uint8)
    mirrored = _mirrored(hard)
    return [SampledGrid(np.ascontiguousarray(soft.T), np.ascontiguousarray(grid.T), True) if flip
            else SampledGrid(soft, grid, False) for soft, grid, flip in zip(softs, hard, mirrored)]
