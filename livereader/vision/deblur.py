"""Deblur: a located code's 21x21 grid recovered from a blurred frame by deconvolving its module samples.

Defocus blurs each module into its neighbours: at a Gaussian sigma of 0.7 module an isolated module keeps
about a quarter of its contrast, so no threshold separates it from its neighbours (:mod:`livereader.vision.grid`
reads none of such codes, nor does zxing-cpp). But the blur is linear and the symbol is a known lattice: the
samples at the module centres of a square of ``SIZE + 2 * quiet`` modules (the symbol and part of its quiet
zone) are

    samples = a + b * K X K^T,    K[i, j] = Phi((i - j + 1/2) / sigma) - Phi((i - j - 1/2) / sigma)

where X holds the modules (1 = dark), K is the share of a module that a Gaussian of ``sigma`` modules spreads
onto a module ``|i - j|`` away along one axis, and a, b are the light level and contrast (b < 0 for dark on
light). The quiet zone (light), the finder patterns, separators and timing patterns are known; the other
modules are solved by projected gradient descent in [0, 1], with a and b refitted by least squares at each step
and sigma chosen as the one whose solution explains the samples best (the sigmas that explain them far worse than
the best after a quarter of the steps stop there: about half the steps). Under blur the located geometry is off
by a few tenths of a module, so the first solution is rendered, blurred by its sigma and aligned to the frame
by OpenCV's ECC (a homography maximizing the correlation over the whole symbol), and the samples taken again
through the aligned homography are solved once more, at the chosen sigma only. The result is thresholded at 0.5
and read like any other grid, so verification judges it as usual.

Hand-written: neither OpenCV nor numpy has a deconvolution with fixed pixels, box constraints and an unknown
gain; here it is a few 25x25 matrix products per step. In numpy (:func:`deconvolve_reference`) a step's dozens
of calls on 25x25 arrays cost more than their arithmetic, so the steps are compiled
(:func:`livereader.kernels.deconvolved`), skipping the blur matrices' zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from math import erf, sqrt

import cv2
import numpy as np

from livereader import compiled
from livereader.symbol import FIXED_REGION, SIZE, fixed_modules
from livereader.timing import timed
from livereader.vision.fit import LocatedCode
from livereader.vision.grid import SampledGrid, oriented


@dataclass(frozen=True)
class DeblurOptions:
    sigmas: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # blur sigmas tried, in modules
    quiet: int = 2  # modules of quiet zone sampled around the symbol and held light
    steps: int = 60  # projected gradient steps of each solution: the first at each sigma, the second at the chosen one
    # ... but in the first, the sigmas whose error after this many steps is more than prune_ratio (>= 1) times the
    # best's stop there: the sigma chosen after all steps was within 1.04 times the best after 15 (909 blurred codes,
    # real and synthetic), and within 1.3 times after 10
    prune_after: int = 15
    prune_ratio: float = 2.0
    align_px: int = 4  # pixels per module of the rendered symbol aligned to the frame
    align_steps: int = 15  # ECC iterations
    max_align_px: int = 16  # ... on the frame around the code shrunk to at most this many pixels per module

    def __post_init__(self) -> None:
        if self.prune_after < 0 or not self.prune_ratio >= 1:
            raise ValueError("prune_after must be >= 0 and prune_ratio >= 1 (the best sigma is never pruned)")


@lru_cache(maxsize=16)
def _kernels(sigmas: tuple[float, ...], side: int) -> np.ndarray:
    """(S, side, side) one-axis blur matrices at module centres, one per sigma."""
    distance = np.arange(side)[:, None] - np.arange(side)[None, :]
    cdf = np.vectorize(lambda z: 0.5 * (1 + erf(z / sqrt(2))))
    kernels = np.stack([cdf((distance + 0.5) / s) - cdf((distance - 0.5) / s) for s in sigmas])
    kernels[kernels < 1e-12] = 0.0  # banded: at most 6 modules off the diagonal at a sigma of 0.9
    return kernels


@lru_cache(maxsize=16)
def _transposed(sigmas: tuple[float, ...], side: int) -> np.ndarray:
    """The blur matrices of :func:`_kernels` transposed, C-contiguous."""
    return np.ascontiguousarray(_kernels(sigmas, side).transpose(0, 2, 1))


@lru_cache(maxsize=16)
def _bands(sigmas: tuple[float, ...], side: int) -> np.ndarray:
    """(S,) how far off the diagonal each blur matrix of :func:`_kernels` has non-zero entries."""
    distance = np.abs(np.arange(side)[:, None] - np.arange(side)[None, :])
    return np.array([distance[kernel != 0].max() for kernel in _kernels(sigmas, side)], np.int64)


@lru_cache(maxsize=16)
def _lipschitz(sigmas: tuple[float, ...], side: int) -> np.ndarray:
    """(S,) Lipschitz constants of the gradient of the blur's squared error at unit contrast, one per sigma."""
    return np.linalg.norm(_kernels(sigmas, side), 2, axis=(1, 2)) ** 4


@lru_cache(maxsize=4)
def _known(quiet: int) -> tuple[np.ndarray, np.ndarray]:
    """(side, side) bool mask of the modules held fixed, and their values. The dark module is left free: in
    a mirrored code it lies elsewhere."""
    side = SIZE + 2 * quiet
    known = np.ones((side, side), bool)
    values = np.zeros((side, side))
    inner = FIXED_REGION.copy()
    values[quiet:-quiet, quiet:-quiet][FIXED_REGION] = fixed_modules()
    inner[SIZE - 8, 8] = False  # the dark module
    known[quiet:-quiet, quiet:-quiet] = inner
    return known, values


def _samples(grey: np.ndarray, homography: np.ndarray, quiet: int) -> np.ndarray:
    """(side, side) grey values at the module centres of the symbol and ``quiet`` modules around it;
    ``homography`` maps module coordinates to pixels."""
    axis = np.arange(-quiet, SIZE + quiet) + 0.5
    xs, ys = np.meshgrid(axis, axis)
    points = cv2.perspectiveTransform(np.stack([xs, ys], -1).reshape(1, -1, 2), homography)[0]
    points = points.astype(np.float32)
    values = cv2.remap(grey, points[:, :1], points[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values.reshape(len(axis), len(axis)).astype(np.float64) / 255.0


def _fit_levels(blurred: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares a, b per sigma in samples = a + b * blurred; blurred (S, n, n)."""
    mean_p = blurred.mean((1, 2))
    mean_y = samples.mean()
    centred = blurred - mean_p[:, None, None]
    b = (centred * (samples - mean_y)).sum((1, 2)) / np.maximum((centred**2).sum((1, 2)), 1e-9)
    return mean_y - b * mean_p, b


def deconvolve(samples: np.ndarray, options: DeblurOptions = DeblurOptions()) -> tuple[np.ndarray, float]:
    """(side, side) module-centre samples -> the symbol's (21, 21) modules in [0, 1] and the chosen sigma, in
    ``options.steps`` steps at each of ``options.sigmas`` not pruned (see :func:`deconvolve_reference`): compiled
    (:func:`livereader.kernels.deconvolved`) once the kernels are ready (:mod:`livereader.compiled`), and until then
    by :func:`deconvolve_reference`."""
    kernels = compiled.kernels()
    if kernels is None:
        solutions, errors = deconvolve_reference(samples, options)
    else:
        side = len(samples)
        blur = _kernels(options.sigmas, side)
        solutions, errors = kernels.deconvolved(
            blur, _transposed(options.sigmas, side), _bands(options.sigmas, side),
            np.ascontiguousarray(samples, np.float64), *_known(options.quiet), _lipschitz(options.sigmas, side),
            options.steps, options.prune_after, options.prune_ratio)
    best = int(np.argmin(errors))
    q = options.quiet
    return solutions[best, q:-q, q:-q].astype(np.float32), options.sigmas[best]


def deconvolve_reference(samples: np.ndarray,
                         options: DeblurOptions = DeblurOptions()) -> tuple[np.ndarray, np.ndarray]:
    """The modules (S, side, side) solved from (side, side) module-centre samples at each of the S
    ``options.sigmas``, and each solution's squared error per unit contrast (S,): numpy, batched over the sigmas.
    Where there are several, all take ``options.prune_after`` steps; those whose error is then at most
    ``options.prune_ratio`` times the best's go on to ``options.steps``, the others keep their solution and get an
    infinite error."""
    kernels = _kernels(options.sigmas, len(samples))
    known, values = _known(options.quiet)
    start = np.where(known, values, 0.5)[None].repeat(len(kernels), 0)
    lipschitz = _lipschitz(options.sigmas, len(samples))
    first = options.steps if len(kernels) == 1 else min(options.prune_after, options.steps)
    x, ahead, momentum = _steps(kernels, lipschitz, samples, start, start, 1.0, first, known, values)
    errors = _errors(kernels, x, samples)
    if first == options.steps:
        return x, errors
    kept = ~(errors > options.prune_ratio * errors.min())
    solved, _, _ = _steps(kernels[kept], lipschitz[kept], samples, x[kept], ahead[kept], momentum,
                          options.steps - first, known, values)
    x = x.copy()
    x[kept] = solved
    errors[kept] = _errors(kernels[kept], solved, samples)
    errors[~kept] = np.inf
    return x, errors


def _steps(kernels: np.ndarray, lipschitz: np.ndarray, samples: np.ndarray, x: np.ndarray, ahead: np.ndarray,
           momentum: float, steps: int, known: np.ndarray,
           values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``steps`` projected gradient steps at each of the blur matrices ``kernels`` from the solutions ``x`` (S, side,
    side) and their look-ahead ``ahead`` at ``momentum`` (Nesterov's acceleration, FISTA: the blur is
    ill-conditioned): the solutions, look-ahead and momentum after them."""
    transposed = kernels.transpose(0, 2, 1)
    for _ in range(steps):
        blurred = kernels @ ahead @ transposed
        a, b = _fit_levels(blurred, samples)
        residual = a[:, None, None] + b[:, None, None] * blurred - samples
        gradient = b[:, None, None] * (transposed @ residual @ kernels)
        step = 1.0 / np.maximum(b**2 * lipschitz, 1e-9)
        previous, x = x, np.where(known, values, np.clip(ahead - step[:, None, None] * gradient, 0.0, 1.0))
        momentum, last = (1 + sqrt(1 + 4 * momentum**2)) / 2, momentum
        ahead = x + (last - 1) / momentum * (x - previous)
    return x, ahead, momentum


def _errors(kernels: np.ndarray, x: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """(S,) squared error per unit contrast of the solutions ``x`` (S, side, side) blurred by ``kernels``."""
    blurred = kernels @ x @ kernels.transpose(0, 2, 1)
    a, b = _fit_levels(blurred, samples)
    return ((a[:, None, None] + b[:, None, None] * blurred - samples) ** 2).mean((1, 2)) / np.maximum(b**2, 1e-9)


def align(grey: np.ndarray, homography: np.ndarray, modules: np.ndarray, sigma: float,
          options: DeblurOptions = DeblurOptions()) -> np.ndarray:
    """``homography`` (module coordinates -> pixels) aligned to the frame: ``modules`` (21, 21) rendered with
    the quiet zone at ``align_px`` pixels per module, blurred by ``sigma`` modules and matched to the frame
    around the code by ``cv2.findTransformECC``. The homography as it was when ECC does not converge."""
    px, quiet = options.align_px, options.quiet
    symbol = cv2.resize(np.pad(modules.astype(np.float32), quiet), None, fx=px, fy=px, interpolation=cv2.INTER_NEAREST)
    template = 255 * (1 - cv2.GaussianBlur(symbol, (0, 0), max(sigma * px, 0.5)))
    to_modules = np.array([[1 / px, 0, -quiet], [0, 1 / px, -quiet], [0, 0, 1]])  # template pixels -> modules
    margin = quiet + 1
    outline = np.array([[[-margin, -margin], [SIZE + margin, -margin], [SIZE + margin, SIZE + margin],
                         [-margin, SIZE + margin]]], np.float64)
    x, y, w, h = cv2.boundingRect(cv2.perspectiveTransform(outline, homography).astype(np.float32))
    x, y = max(x, 0), max(y, 0)
    crop = grey[y : y + h, x : x + w]
    # ECC's cost grows with the crop's pixels: a close-up's crop is shrunk to at most max_align_px per module
    shrink = max(1.0, max(w, h) / ((SIZE + 2 * margin) * options.max_align_px))
    if shrink > 1:
        crop = cv2.resize(crop, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
    centres = 0.5 / shrink - 0.5  # pixel centres at integers in both the crop and the shrunk crop
    to_crop = np.array([[1 / shrink, 0, centres - x / shrink], [0, 1 / shrink, centres - y / shrink], [0, 0, 1]])
    warp = to_crop @ homography @ to_modules
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, options.align_steps, 1e-4)
    try:
        # OpenCV takes the mask None as no mask; its stubs allow None only where gaussFiltSize is left at 5
        _, warp = cv2.findTransformECC(  # type: ignore[call-overload]
            template, crop.astype(np.float32), (warp / warp[2, 2]).astype(np.float32), cv2.MOTION_HOMOGRAPHY,
            criteria, None, 1)
    except cv2.error:  # did not converge, or the code lies at the frame's edge
        return homography
    return np.linalg.inv(to_crop) @ warp.astype(np.float64) @ np.linalg.inv(to_modules)


@timed("deblur (retry)")
def deblur(grey: np.ndarray, code: LocatedCode, options: DeblurOptions = DeblurOptions()) -> SampledGrid:
    """The grid of a located 21x21 code in a blurred grey uint8 frame (see the module docstring)."""
    modules, sigma = deconvolve(_samples(grey, code.homography, options.quiet), options)
    aligned = align(grey, code.homography, (modules > 0.5).astype(np.float32), sigma, options)
    modules, _ = deconvolve(_samples(grey, aligned, options.quiet), replace(options, sigmas=(sigma,)))
    return oriented(modules)
