"""Motion deblur: a frame smeared by a straight motion during the exposure, restored before it is searched again.

A hand-held camera that moves ``L`` px in a straight line while the shutter is open averages each point of the
frame along that segment (a code waved past a still camera is smeared alone: the estimate reads it where the
code holds the frame's busiest edges, below). Over 2 modules or more the finder patterns' light ring
(1 module wide) is smeared shut along the motion, so no threshold finds the rings; across the motion the
profile is intact. The blur is one convolution with a line segment (the point spread function), estimated from
the frame itself:

- where: the square of ``MotionOptions.window`` px where the gradient energy is densest (a code's many edges
  rather than a few long ones of the background).
- direction: a sharp code's edges run along both of its axes, equally often, so its gradients have no
  preferred direction; motion weakens the gradient along itself. The weakest direction of the square's
  structure tensor (the gradients' second moments) is the motion's. A square whose gradients are
  nearly isotropic (``MotionOptions.max_isotropy``) is taken as not smeared.
- length: the derivative along the motion of a frame blurred by a segment of ``L`` px is the difference of two
  copies of the sharp frame ``L`` px apart, so its autocorrelation is most negative at a lag of ``L`` along the
  motion (Yitzhaky and Kopeika's method); the lag is searched within ``max_off_axis`` of the estimated direction,
  which also refines it.

The frame is then restored by a Wiener filter (OpenCV's DFT) with that segment and a noise-to-signal ratio of
``noise``. Hand-written: OpenCV's main module has no blind estimate of a motion's point spread function nor a
deconvolution; the estimate is a few structure-tensor sums and one autocorrelation, the restoration two DFTs.
What a wrong estimate costs is time only: the restored frame is searched and read like any other, and every
read is verified.

Conventions: a motion is a vector (dx, dy) in pixels, x right, y down; it and its opposite are the same blur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionOptions:
    min_length: float = 4.0  # px: shorter motions are left to the other passes
    max_length: int = 32  # px: the longest motion estimated
    max_isotropy: float = 0.45  # the square's weakest gradient energy over its strongest above this: not smeared
    window: int = 128  # px: the motion is estimated in the busiest square of this side
    max_off_axis: float = 25.0  # degrees between the structure tensor's weakest direction and the motion found
    # the autocorrelation's dip at the motion, as a share of its value at lag 0, at least this deep: a smear's is
    # about half (the derivative is the difference of two copies of the sharp frame), a sharp frame's mostly less
    min_dip: float = 0.25
    noise: float = 0.01  # the Wiener filter's noise-to-signal ratio (higher: less ringing, less sharpening)
    max_pixels: int = 400_000  # estimated and restored in the frame shrunk by the power of 2 that fits this (0: off)

    def __post_init__(self) -> None:
        if self.min_length < 1 or self.max_length <= self.min_length or self.window < 16:
            raise ValueError(f"motions of {self.min_length}-{self.max_length} px in a square of {self.window} px: "
                             "at least 1 px, a longest above the shortest, a square of 16 px or more")


@dataclass(frozen=True)
class Motion:
    """A straight motion's blur: ``vector`` (dx, dy) px and ``isotropy``, the weakest gradient energy of the square
    it was estimated in over its strongest (1: no preferred direction)."""

    vector: tuple[float, float]
    isotropy: float

    @property
    def length(self) -> float:
        """The motion's length, px."""
        return math.hypot(*self.vector)


def _gradients(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = grey.astype(np.float32)
    return cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)


def _busiest(grey: np.ndarray, side: int) -> tuple[slice, slice]:
    """The square of ``side`` px (clipped to the image) centred where the gradient energy, averaged over such a
    square, is largest: a code's dense edges rather than a few long ones of the background. Found in the image
    shrunk by 2 (a smeared code's modules keep their edges there)."""
    gx, gy = _gradients(cv2.resize(grey, None, fx=1 / 2, fy=1 / 2, interpolation=cv2.INTER_AREA))
    energy = cv2.blur(gx * gx + gy * gy, (side // 2, side // 2))
    row, column = np.unravel_index(np.argmax(energy), energy.shape)
    height, width = grey.shape
    # cv2.blur's even window at (row, column) spans rows row - side // 4 ... row + side // 4 - 1 of the half frame
    top = int(np.clip(row * 2 - side // 2, 0, max(0, height - side)))
    left = int(np.clip(column * 2 - side // 2, 0, max(0, width - side)))
    return slice(top, top + side), slice(left, left + side)


def estimate(grey: np.ndarray, options: MotionOptions = MotionOptions()) -> Motion | None:
    """The straight motion that smeared the grey uint8 image, estimated in its busiest square of
    ``options.window`` px (:func:`_busiest`), or None where its gradients there show no preferred direction
    (``options.max_isotropy``), the autocorrelation no dip along it (``options.min_dip``), or the motion found is
    shorter than ``options.min_length`` px."""
    if min(grey.shape) > options.window:
        grey = grey[_busiest(grey, options.window)]
    gx, gy = _gradients(grey)
    xx, yy, xy = float(np.vdot(gx, gx)), float(np.vdot(gy, gy)), float(np.vdot(gx, gy))
    half_trace, root = (xx + yy) / 2, math.hypot((xx - yy) / 2, xy)
    if half_trace <= 0:
        return None
    isotropy = (half_trace - root) / (half_trace + root)
    if isotropy > options.max_isotropy:
        return None
    weakest = 0.5 * math.atan2(2 * xy, xx - yy) + math.pi / 2
    along = gx * math.cos(weakest) + gy * math.sin(weakest)
    along -= along.mean()
    lag = options.max_length
    height, width = along.shape
    padded = np.zeros((cv2.getOptimalDFTSize(height + lag), cv2.getOptimalDFTSize(width + lag)), np.float32)
    padded[:height, :width] = along
    spectrum = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    power = cv2.mulSpectrums(spectrum, spectrum, 0, conjB=True)
    correlation = cv2.dft(power, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_INVERSE | cv2.DFT_SCALE)
    # lags (dx, dy) with dy >= 0 (the autocorrelation is symmetric): rows 0..lag, columns -lag..lag
    window = np.concatenate([correlation[:lag + 1, -lag:], correlation[:lag + 1, :lag + 1]], axis=1)
    dy, dx = np.mgrid[0:lag + 1, -lag:lag + 1]
    distance = np.hypot(dx, dy)
    cosine = np.abs(dx * math.cos(weakest) + dy * math.sin(weakest)) / np.maximum(distance, 1e-9)
    on_axis = cosine >= math.cos(math.radians(options.max_off_axis))
    allowed = (distance >= options.min_length) & (distance <= lag) & on_axis
    if not allowed.any():
        return None
    row, column = np.unravel_index(np.argmin(np.where(allowed, window, np.inf)), window.shape)
    if window[row, column] > -options.min_dip * correlation[0, 0]:
        return None
    sub_x = _vertex(window[row, column - 1:column + 2]) if 0 < column < 2 * lag else 0.0
    sub_y = _vertex(window[row - 1:row + 2, column]) if 0 < row < lag else 0.0
    vector = (float(dx[row, column] + sub_x), float(dy[row, column] + sub_y))
    return Motion(vector, isotropy) if math.hypot(*vector) >= options.min_length else None


def _vertex(values: np.ndarray) -> float:
    """Offset in (-0.5, 0.5) of the extremum of the parabola through three equally spaced ``values``."""
    curvature = values[0] - 2 * values[1] + values[2]
    return float(np.clip(0.5 * (values[0] - values[2]) / curvature, -0.5, 0.5)) if curvature != 0 else 0.0


def kernel(vector: tuple[float, float]) -> np.ndarray:
    """The point spread function of a straight motion of ``vector`` px (at least 1 px long): a bar ``vector`` long
    and 1 px wide centred in an odd square, summing to 1; filled by OpenCV 8 times larger and shrunk (pixel areas
    averaged), so that its ends fall between pixels."""
    length = math.hypot(*vector)
    if length < 1:
        raise ValueError(f"a motion of {length:.2f} px: at least 1 px")
    side = 2 * math.ceil(length / 2) + 3
    fine = 8
    along = np.array(vector) * fine / 2
    across = np.array([-vector[1], vector[0]]) / max(length, 1e-9) * fine / 2
    centre = side * fine / 2 - 0.5  # OpenCV puts pixel k's centre at k
    bar = [centre + along + across, centre + along - across, centre - along - across, centre - along + across]
    canvas = np.zeros((side * fine, side * fine), np.uint8)
    cv2.fillConvexPoly(canvas, np.round(np.array(bar) * 16).astype(np.int32), 255, cv2.LINE_8, 4)  # in 1/16 px
    psf = cv2.resize(canvas.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    return psf / psf.sum()


def restore(grey: np.ndarray, motion: Motion, options: MotionOptions = MotionOptions()) -> np.ndarray:
    """The grey uint8 image deconvolved by ``motion``'s point spread function (a Wiener filter with
    ``options.noise``), uint8; a margin of 3 kernel sides is mirrored around it, so that the DFT's wrap-around and
    the filter's ringing from the border stay out of the image."""
    psf = kernel(motion.vector)
    margin = 3 * len(psf)
    height, width = grey.shape
    image = cv2.copyMakeBorder(grey.astype(np.float32), margin, margin, margin, margin, cv2.BORDER_REFLECT)
    rows, columns = cv2.getOptimalDFTSize(image.shape[0]), cv2.getOptimalDFTSize(image.shape[1])
    image = cv2.copyMakeBorder(image, 0, rows - image.shape[0], 0, columns - image.shape[1], cv2.BORDER_REFLECT)
    centred = np.zeros((rows, columns), np.float32)
    centred[:len(psf), :len(psf)] = psf
    centred = np.roll(centred, (-(len(psf) // 2), -(len(psf) // 2)), (0, 1))
    blur = cv2.dft(centred, flags=cv2.DFT_COMPLEX_OUTPUT)
    gain = 1.0 / (blur[..., 0] ** 2 + blur[..., 1] ** 2 + options.noise)
    spectrum = cv2.mulSpectrums(cv2.dft(image, flags=cv2.DFT_COMPLEX_OUTPUT), blur, 0, conjB=True)
    restored = cv2.dft(spectrum * gain[..., None], flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_INVERSE | cv2.DFT_SCALE)
    return np.clip(restored[margin:margin + height, margin:margin + width], 0, 255).astype(np.uint8)
