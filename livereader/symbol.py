"""The version-1 QR symbol: its layout, format information and encoding with the ``qrcode`` package.

Conventions used everywhere in livereader:

* A **grid** is a ``(21, 21)`` numpy array indexed ``grid[row, col]`` with **1 = dark module**, 0 = light.
  Soft grids hold values in ``[0, 1]`` (the darkness of each module).
* Error-correction levels are the letters ``"L"``, ``"M"``, ``"Q"``, ``"H"``; masks are the integers 0-7 of the
  QR specification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

SIZE = 21
LEVELS = ("L", "M", "Q", "H")
# The two bits that the format information uses for each level (ISO/IEC 18004, table 12); qrcode uses the same
# numbers for its ERROR_CORRECT_* constants.
LEVEL_BITS = {"L": 1, "M": 0, "Q": 3, "H": 2}


def _format_positions() -> np.ndarray:
    """(2, 15, 2) array: for each of the two copies of the format information, the (row, col) of bit i (LSB 0)."""
    beside_left = [(r, 8) for r in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in range(14, 21)]
    beside_top = [(8, c) for c in range(20, 12, -1)] + [(8, c) for c in (7, 5, 4, 3, 2, 1, 0)]
    return np.array([beside_left, beside_top], dtype=np.int64)


FORMAT_POSITIONS = _format_positions()


def _function_region() -> np.ndarray:
    """Boolean (21, 21) map of the modules that carry no data: finders, separators, timing and format."""
    region = np.zeros((SIZE, SIZE), dtype=bool)
    region[:9, :9] = True  # top-left finder, separator and format
    region[:9, 13:] = True  # top-right finder, separator and format
    region[13:, :9] = True  # bottom-left finder, separator, format and the dark module
    region[6, :] = True  # timing patterns
    region[:, 6] = True
    return region


FUNCTION_REGION = _function_region()
DATA_REGION = ~FUNCTION_REGION  # 208 modules = 26 codewords x 8 bits
FIXED_REGION = FUNCTION_REGION.copy()  # modules whose value no payload, level or mask changes
FIXED_REGION[FORMAT_POSITIONS[..., 0], FORMAT_POSITIONS[..., 1]] = False


@cache
def fixed_modules() -> np.ndarray:
    """(N,) uint8 values of the ``FIXED_REGION`` modules (finders, separators, timing, the dark module)."""
    return encode("0")[FIXED_REGION]


@cache
def fixed_positions() -> tuple[np.ndarray, np.ndarray]:
    """(k, 2) rows and columns of the ``FIXED_REGION`` modules dark in every symbol, and (m, 2) of those light."""
    places = np.argwhere(FIXED_REGION)  # row-major: the order of grid[FIXED_REGION]
    return places[fixed_modules() == 1], places[fixed_modules() == 0]


@dataclass(frozen=True)
class FormatInfo:
    """The error-correction level and mask read from a grid's format bits.

    ``distance`` is the number of format modules (of 30, both copies) that disagree with the chosen codeword.
    """

    level: str
    mask: int
    distance: float


@cache
def format_codewords() -> np.ndarray:
    """(32, 15) float32 0/1: the 15 format bits (LSB first) of every (level, mask) pair, row = 8 * level index +
    mask (float: grids are compared with them as they are, soft or hard)."""
    from qrcode.util import BCH_type_info

    rows = []
    for level in LEVELS:
        for mask in range(8):
            value = BCH_type_info((LEVEL_BITS[level] << 3) | mask)
            rows.append([(value >> i) & 1 for i in range(15)])
    return np.array(rows, dtype=np.float32)


def format_distances(grid: np.ndarray) -> np.ndarray:
    """(32,) distances of both copies of a (soft) grid's format modules from each valid format codeword; (N, 32)
    for (N, 21, 21) grids (the same as one grid at a time for 0/1 grids, whose sums are exact; a soft grid's may
    differ in the last bit)."""
    observed = grid[..., FORMAT_POSITIONS[..., 0], FORMAT_POSITIONS[..., 1]]  # (..., 2, 15)
    return np.abs(format_codewords()[:, None, :] - observed[..., None, :, :]).sum(axis=(-2, -1))


def read_format(grid: np.ndarray) -> FormatInfo:
    """The nearest valid format codeword to both copies of a (soft) grid's format modules."""
    return nearest_format(format_distances(grid))


def nearest_format(distances: np.ndarray) -> FormatInfo:
    """The format of the nearest of the 32 valid format codewords, from a grid's (32,) distances to them (a row of
    :func:`format_distances`)."""
    best = int(np.argmin(distances))
    return format_info(best, float(distances[best]))


def format_info(word: int, distance: float) -> FormatInfo:
    """The format of row ``word`` of :func:`format_codewords`, read ``distance`` modules from a grid's."""
    return FormatInfo(level=LEVELS[word // 8], mask=word % 8, distance=distance)


@cache
def mask_patterns() -> np.ndarray:
    """(8, 21, 21) uint8: where each of the 8 data masks flips a module (1) over the whole symbol."""
    from qrcode.util import mask_func

    rows, cols = np.mgrid[:SIZE, :SIZE]
    return np.stack([np.vectorize(mask_func(m))(rows, cols).astype(np.uint8) for m in range(8)])


def unmask(grids: npt.ArrayLike, masks: npt.ArrayLike) -> np.ndarray:
    """(N, 21, 21) grids in [0, 1] (soft or hard) with their (N,) masks -> the grids XOR their mask patterns
    (float32): where a mask flips a module, its value v becomes 1 - v. The mask patterns cover the whole symbol,
    so function patterns are flipped too; the six-digit network is trained on grids unmasked the same way."""
    return np.abs(np.asarray(grids, np.float32) - mask_patterns()[np.asarray(masks, dtype=np.intp)])


def encode(text: str | Sequence[object], level: str = "H", mask: int | None = None) -> np.ndarray:
    """The version-1 grid of ``text`` made by ``qrcode`` (mask chosen by qrcode when ``mask`` is None); ``text``
    may also be a sequence of segments (``qrcode.util.QRData``) to encode in that order.

    Raises ``ValueError`` when the text does not fit version 1 at that level.
    """
    import qrcode
    from qrcode.exceptions import DataOverflowError

    code = qrcode.QRCode(version=1, error_correction=LEVEL_BITS[level], border=0, mask_pattern=mask)
    for segment in [text] if isinstance(text, str) else text:
        code.add_data(segment)
    try:
        code.make(fit=False)
    except DataOverflowError as error:
        raise ValueError(f"{text!r} does not fit a version-1 code at level {level}") from error
    return np.array(code.modules, dtype=np.uint8)
