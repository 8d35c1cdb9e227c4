"""Six-digit verification: re-encode the CNN's candidate numbers and accept only one that clearly explains the grid.

For a fixed level and mask, the QR encoding of a six-digit number is affine over GF(2): the number is two
10-bit groups (``n // 1000`` and ``n % 1000``), Reed-Solomon encoding is linear over GF(2^8) and therefore over
GF(2), placement is a permutation and the mask an XOR. So

    grid(n) = grid_mask(000000) XOR  sum over the set bits i of n:  basis_i

with the 20 basis grids taken from ``qrcode`` itself (``encode(single-bit number) XOR encode("000000")``).
This re-encodes hundreds of candidates in well under a millisecond, where ``qrcode`` needs ~0.12 ms for each
one; the tests check it against ``qrcode`` for every mask. Any two six-digit level-H grids differ in at least
``MIN_DISTANCE`` = 50 of the 208 data modules, so a candidate within ``max_distance`` of the observed grid can be
wrong only if at least ``50 - max_distance`` data modules were misread.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from itertools import combinations

import numpy as np

from livereader import compiled
from livereader.decode.codeword import CodewordOptions, foreign_data
from livereader.decode.evidence import Evidence
from livereader.decode.payload import Payload
from livereader.symbol import (
    DATA_REGION,
    FIXED_REGION,
    FORMAT_POSITIONS,
    FormatInfo,
    encode,
    fixed_modules,
    fixed_positions,
    format_codewords,
    format_distances,
    format_info,
    nearest_format,
    read_format,
)

BITS = 20
LEVEL = "H"  # the error-correction level of the codes read
CONTENTS = ("numeric", "any")  # what a reader reports: numbers only, or whatever a code holds
MIN_DISTANCE = 50  # measured over all 2^20 bit patterns (tests/test_verify.py re-measures it)


@dataclass(frozen=True)
class VerifyOptions:
    """How grids are verified: the bounds every read must meet, then each decoder's own (the six-digit
    decoder's here, the codeword decoder's in ``codeword``)."""

    content: str = "numeric"  # what is reported: "numeric" (numbers only) or "any" (every mode, text included)
    max_format_distance: float = 6.0  # format modules (of 30) that may disagree with the format read
    min_confidence: float = 0.5  # calibrated confidence a read needs
    candidates: int = 32  # best numbers under the CNN's two group distributions
    expand: int = 3  # of those, how many are expanded by every single-bit change of their 20 data bits
    expand_pairs: int = 1  # of those, how many are expanded by every two-bit change too
    expand_triples: int = 1  # of those, how many are expanded by every three-bit change too
    max_distance: float = 18.0  # data modules (of 208) the accepted candidate may disagree with
    min_gap: float = 10.0  # how much closer than every other candidate the accepted one must be
    codeword: CodewordOptions = field(default_factory=CodewordOptions)  # the codeword decoder's

    def __post_init__(self) -> None:
        if self.content not in CONTENTS:
            raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {self.content!r}")
        if not 1 <= self.candidates <= 1000:  # a group has 1000 values
            raise ValueError(f"candidates must be 1-1000, not {self.candidates}")
        if min(self.expand, self.expand_pairs, self.expand_triples) < 0:
            raise ValueError("expand, expand_pairs and expand_triples must be 0 or more")

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def codebook() -> tuple[np.ndarray, np.ndarray]:
    """(8, 208) data modules of ``000000`` for each mask and (20, 208) basis, both uint8, made by qrcode."""
    zeros = np.stack([encode("000000", LEVEL, mask) for mask in range(8)])
    singles = ["%03d000" % (1 << i) for i in range(10)] + ["000%03d" % (1 << i) for i in range(10)]
    basis = np.stack([encode(s, LEVEL, 0) ^ zeros[0] for s in singles])
    return zeros[:, DATA_REGION], basis[:, DATA_REGION]


@cache
def _group_tables() -> np.ndarray:
    """(2, 1024, 208) uint8: the data-module contribution of each 10-bit value of the high and the low group.

    Encoding a candidate is then two table look-ups and XORs, with no matrix product: BLAS threads spin for
    milliseconds on such small products when the cores are busy. Values 1000-1023 are no digit groups; they
    complete the span of the basis (the tests measure ``MIN_DISTANCE`` over it).
    """
    _, basis = codebook()
    bits = ((np.arange(1024)[:, None] >> np.arange(10)) & 1).astype(bool)  # (1024, 10)
    tables = np.zeros((2, 1024, basis.shape[1]), dtype=np.uint8)
    for group in range(2):
        for i in range(10):
            tables[group][bits[:, i]] ^= basis[10 * group + i]
    return tables


def number_bits(numbers: np.ndarray) -> np.ndarray:
    """(N,) numbers in [0, 10^6) -> (N, 20) uint8 bits: 10 bits of n // 1000, then of n % 1000, LSB first."""
    groups = np.stack([numbers // 1000, numbers % 1000], axis=1)  # (N, 2)
    return ((groups[:, :, None] >> np.arange(10)) & 1).reshape(-1, BITS).astype(np.uint8)


def bits_number(bits: np.ndarray) -> np.ndarray:
    """(N, 20) bits -> (N,) numbers; -1 where a 10-bit group exceeds 999."""
    groups = (bits.reshape(-1, 2, 10).astype(np.int64) << np.arange(10)).sum(2)  # (N, 2)
    return np.where((groups < 1000).all(1), groups[:, 0] * 1000 + groups[:, 1], -1)


def encode_data(numbers: np.ndarray, mask: int) -> np.ndarray:
    """(N,) numbers -> (N, 208) uint8 data modules of their level-H grids with ``mask``."""
    tables = _group_tables()
    return tables[0][numbers // 1000] ^ tables[1][numbers % 1000] ^ codebook()[0][mask]


def _medians(values: np.ndarray) -> np.ndarray:
    """Each row's median of (N, k) values, by partial sort (np.median's wrapper costs more than the work on ~100
    values); the upper middle value where k is even."""
    middle = values.shape[1] // 2
    return np.partition(values, middle, axis=1)[:, middle]


def _stack_levels(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 21) grids' (dark, light) levels, (N,) each: medians of the modules that are dark, and light, in every
    symbol."""
    known, values = fixed_modules(), grids[:, FIXED_REGION]
    return _medians(values[:, known == 1]), _medians(values[:, known == 0])


def _levels(grid: np.ndarray) -> tuple[float, float]:
    """One grid's (dark, light) levels (:func:`_stack_levels`)."""
    dark, light = _stack_levels(grid[None])
    return float(dark[0]), float(light[0])


def normalize(grid: np.ndarray, levels: tuple[float, float] | None = None) -> np.ndarray:
    """Stretch an upright soft grid so that its function patterns' dark and light modules read 1 and 0.

    The finder, separator and timing modules have known values, so they measure the grid's own contrast
    (``levels``: the grid's :func:`_levels`, when already measured).
    """
    dark, light = levels or _levels(grid)
    if dark - light < 0.2:
        return grid
    return np.clip((grid - light) / (dark - light), 0.0, 1.0)


def _top_numbers(group_log_probs: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` most probable numbers under the (2, 1000) group log probabilities, best first. Each group's values
    are ranked by probability (of equal ones, the lower value first), and of equally probable numbers the one whose
    high group ranks first comes first, then the one whose low group does (stable sorts: the compiled kernel's
    order)."""
    top_high, top_low = np.argsort(-group_log_probs, axis=1, kind="stable")[:, :count]
    high, low = group_log_probs
    total = -(high[top_high][:, None] + low[top_low][None, :]).ravel()
    best = np.argsort(total, kind="stable")[:count]
    return top_high[best // count] * 1000 + top_low[best % count]


@cache
def _bit_changes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(20, 20) single-, (190, 20) two- and (1140, 20) three-bit change patterns."""
    singles = np.eye(BITS, dtype=np.uint8)
    pairs = np.array(list(combinations(range(BITS), 2)))
    triples = np.array(list(combinations(range(BITS), 3)))
    return singles, singles[pairs].sum(1, dtype=np.uint8), singles[triples].sum(1, dtype=np.uint8)


def candidate_tiers(group_log_probs: np.ndarray, options: VerifyOptions) -> Iterator[np.ndarray]:
    """The CNN's best numbers, then their one- and two-bit neighbours, then their three-bit neighbours (lazily)."""
    best = _top_numbers(group_log_probs, options.candidates)
    yield best
    bits = number_bits(best)
    singles, pairs, triples = _bit_changes()

    def near(patterns: np.ndarray, count: int) -> np.ndarray:
        numbers = bits_number((bits[:count, None] ^ patterns[None]).reshape(-1, BITS))
        return numbers[numbers >= 0]

    yield np.concatenate([near(singles, options.expand), near(pairs, options.expand_pairs)])
    yield near(triples, options.expand_triples)


def six_digit_evidence(number: int, distance: float, gap: float, log_prob: float, fmt: FormatInfo) -> Evidence:
    """The evidence of a best candidate ``number`` (-1: none); its calibration features: distance, gap, log
    probability, format distance."""
    text = None if number < 0 else "%06d" % number
    features = (distance, min(gap, 40.0), max(log_prob, -30.0), float(fmt.distance))
    payload = None if text is None else Payload(text, "numeric", text.encode("ascii"))
    return Evidence(text, distance, fmt, features, gap, payload)


def no_candidate(fmt: FormatInfo) -> Evidence:
    """The evidence of a grid that no six-digit candidate can explain: its format bits name another level."""
    return six_digit_evidence(-1, float(DATA_REGION.sum()), 0.0, -30.0, fmt)


def prepare(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, FormatInfo]:
    """The grid turned upright (``1 - grid`` where its levels say light-on-dark), that grid normalized
    (:func:`normalize`), and its format bits read from the normalized grid; the levels are measured once for an
    upright grid."""
    levels = _levels(grid)
    if levels[0] < levels[1]:
        grid = 1 - grid
        levels = _levels(grid)
    normalized = normalize(grid, levels)
    return grid, normalized, read_format(normalized)


def evaluate(grid: np.ndarray, group_log_probs: np.ndarray, options: VerifyOptions,
             fmt: FormatInfo | None = None) -> Evidence:
    """Measure how well the best of the CNN's expanded candidates explains the upright grid (see the module
    docstring); with ``fmt``, the grid is already normalized and its format read (see :func:`prepare`).

    ``group_log_probs``: (2, 1000), the CNN's log probabilities of the high and low 3-digit group. Tiers of
    candidates are tried in order until one comes within ``max_distance``: any other code is then at least
    ``MIN_DISTANCE - max_distance`` away, so later tiers cannot hold a closer one. Compiled
    (:func:`livereader.kernels.six_digit_best`) once this process has loaded the kernels
    (:func:`livereader.compiled.loaded`), until then by :func:`reference_best`, which gives the same.
    """
    if fmt is None:
        _, grid, fmt = prepare(grid)
    if fmt.level != LEVEL:
        return no_candidate(fmt)
    observed = np.ascontiguousarray(grid[DATA_REGION], dtype=np.float32)
    group_log_probs = np.ascontiguousarray(group_log_probs, dtype=np.float32)  # the network's type, either way
    kernels = compiled.loaded()
    if kernels is None:
        best, distance, gap, log_prob = reference_best(group_log_probs, observed, fmt.mask, options)
    else:
        singles, pairs, triples = _bit_changes()
        best, distance, gap, log_prob = kernels.six_digit_best(
            group_log_probs, observed, _group_tables(), codebook()[0][fmt.mask],
            singles, pairs, triples, int(options.candidates), int(options.expand), int(options.expand_pairs),
            int(options.expand_triples), float(options.max_distance))
    return six_digit_evidence(best, distance, float(MIN_DISTANCE) if math.isinf(gap) else gap, log_prob, fmt)


def reference_best(group_log_probs: np.ndarray, observed: np.ndarray, mask: int,
                   options: VerifyOptions) -> tuple[int, float, float, float]:
    """The plain reference of :func:`livereader.kernels.six_digit_best` (the same for finite inputs, distances to
    rounding): the candidate that comes closest to the ``observed`` data modules ((208,) float32), its distance, its
    gap to the next closest (infinite where it is the only one) and its log probability. Tiers of candidates are
    tried in order until one comes within ``max_distance``; each tier's new numbers follow in ascending order, and
    of equally close candidates the earliest wins (stable sorts)."""
    observed = observed.astype(np.float64)
    tiers = candidate_tiers(group_log_probs, options)
    pool = next(tiers)  # the first tier's numbers are distinct
    distances = np.abs(encode_data(pool, mask) - observed).sum(1)
    while distances.min() > options.max_distance:
        tier = next(tiers, None)
        if tier is None:
            break
        tier = np.setdiff1d(tier, pool)
        found = np.abs(encode_data(tier, mask) - observed).sum(1)
        pool, distances = np.concatenate([pool, tier]), np.concatenate([distances, found])
    order = np.argsort(distances, kind="stable")
    best = int(pool[order[0]])
    gap = float(distances[order[1]] - distances[order[0]]) if len(pool) > 1 else math.inf
    log_prob = float(group_log_probs[0, best // 1000] + group_log_probs[1, best % 1000])
    return best, float(distances[order[0]]), gap, log_prob


def foreign(grid: np.ndarray) -> bool:
    """True when a hard grid decodes, as read, to a code that is not numeric: its format bits read exactly or
    with one wrong module, its codewords pass Reed-Solomon decoding and hold something other than one numeric
    segment. No better sampling would make such a code readable."""
    return foreign_grids(grid[None])[0]


def foreign_grids(grids: np.ndarray) -> list[bool]:
    """:func:`foreign` of (N, 21, 21) hard grids: their polarity and format bits measured all at once
    (:func:`upright_formats`), then the codewords decoded of each whose format bits read."""
    _, flipped, formats = upright_formats(grids)
    return [fmt.distance <= 1 and foreign_data(1 - grid if flip else grid, fmt)
            for grid, flip, fmt in zip(grids, flipped.tolist(), formats)]


def upright_formats(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[FormatInfo]]:
    """For (N, 21, 21) grids: (N,) whether each holds only 0 and 1, (N,) whether it is light-on-dark (its dark level
    below its light one: :func:`_stack_levels`), and the format read from it turned upright (``1 - grid`` where
    light-on-dark: :func:`livereader.symbol.read_format`). For a 0/1 grid that is what :func:`prepare` reads (its
    normalized grid is the upright one). Compiled (:func:`livereader.kernels.upright_formats`) once this process has
    loaded the kernels (:func:`livereader.compiled.loaded`), until then by :func:`reference_upright_formats`,
    which gives the same for 0/1 grids (a soft grid's format distance may differ in the last bit)."""
    kernels = compiled.loaded()
    if kernels is None:
        return reference_upright_formats(grids)
    dark, light = fixed_positions()
    binary, flipped, words, distances = kernels.upright_formats(np.ascontiguousarray(grids, np.float32), dark, light,
                                                                FORMAT_POSITIONS, format_codewords())
    return binary, flipped, [format_info(w, d) for w, d in zip(words.tolist(), distances.tolist())]


def reference_upright_formats(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[FormatInfo]]:
    """The plain reference of :func:`upright_formats`: levels and format distances of all grids at once."""
    binary = ((grids == 0) | (grids == 1)).all(axis=(1, 2))
    dark, light = _stack_levels(grids)
    flipped = dark < light
    uprights = np.where(flipped[:, None, None], 1 - grids, grids)
    return binary, flipped, [nearest_format(distances) for distances in format_distances(uprights)]
