"""The codeword decoder's verification: where each codeword bit of a version-1 symbol sits, and decoding the
CNN's soft bits into a verified payload (numbers of any length and level; any content with the content option
``any``).

The codeword model (:class:`livereader.decode.model.CodewordReader`) reads the 208 codeword bits of a symbol,
unmasked, in the order of the codeword stream (``PLACEMENT``). This module turns those soft bits into evidence:

1. Reed-Solomon decoding of the 26 codewords at the level named by the format bits (:func:`error_corrected`),
   first as read, then with the least reliable codewords erased (the CNN's soft bits say which), up to the code's
   capacity ``2 * errors + erasures <= EC codewords``, as the classical readers allow (less the codewords
   the standard reserves against misdecoding, ``MISDECODE_PROTECTION``, with the content option ``any``).
2. The data codewords must hold exactly one numeric-mode segment and the padding the standard prescribes
   (terminator, zero bits, then 0xEC 0x11 ...): anything else (text, mixed modes) is another kind of code.
   With the content option ``any``, every mode is read instead (:mod:`livereader.decode.payload`).
3. The payload's symbol at the level and mask of the format bits (the corrected codewords, placed and masked:
   the strict parse admits only the encoding ``qrcode`` makes) is compared with the observed grid: the read
   stands only if that symbol explains the grid (``CodewordOptions``).

Version 1 has one Reed-Solomon block per level, so the codeword stream is the data codewords followed by the
EC codewords, and every bit's module is the same at every level (``PLACEMENT`` follows ISO/IEC 18004 7.7.3;
the tests check it against ``qrcode``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from livereader import compiled
from livereader.decode.evidence import Evidence
from livereader.decode.payload import Bits, Payload, digits, read_payload
from livereader.symbol import FUNCTION_REGION, SIZE, FormatInfo, mask_patterns, unmask

CODEWORDS = 26
FORMATS = 32  # (level, mask) pairs, row = 8 * level index + mask, levels in the order of ``symbol.LEVELS``
DATA_CODEWORDS = {"L": 19, "M": 16, "Q": 13, "H": 9}
MAX_DIGITS = {"L": 41, "M": 34, "Q": 27, "H": 17}
# EC codewords that ISO/IEC 18004 (table 9) reserves at version 1 against misdecoding: not spent on corrections
# when any content is read (a strict numeric parse with its padding check is the reserve of the numeric path)
MISDECODE_PROTECTION = {"L": 3, "M": 2, "Q": 1, "H": 1}
PADDING = (0xEC, 0x11)  # the pad codewords that fill the data codewords after the terminator, in turn
NUMERIC_MODE = 0b0001  # mode indicator of a numeric segment


def _placement() -> np.ndarray:
    """(208, 2) (row, col) of each codeword bit, most significant bit of codeword 0 first.

    Columns are filled in pairs from the right, right column first, upwards then downwards in turn; column 6
    (the vertical timing pattern) is skipped. Hand-written: ``qrcode`` places bits but exposes no map.
    """
    order: list[tuple[int, int]] = []
    col, upwards = SIZE - 1, True
    while col > 0:
        if col == 6:
            col -= 1
        rows = range(SIZE - 1, -1, -1) if upwards else range(SIZE)
        order.extend((r, c) for r in rows for c in (col, col - 1) if not FUNCTION_REGION[r, c])
        col, upwards = col - 2, not upwards
    return np.array(order, dtype=np.int64)


PLACEMENT = _placement()
MODE_PLACES = tuple((int(row), int(col)) for row, col in PLACEMENT[:4])  # (row, col) of the mode indicator's bits


def codeword_bits(grids: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, 21, 21) clean 0/1 grids and their (N,) masks -> (N, 208) uint8 codeword bits (the training target)."""
    return unmask(grids, masks)[:, PLACEMENT[:, 0], PLACEMENT[:, 1]].astype(np.uint8)


@dataclass(frozen=True)
class CodewordOptions:
    erasure_tries: tuple[int, ...] = (0, 4, 8, 12)  # codewords erased per Reed-Solomon try, least reliable first
    max_distance: float = 60.0  # data modules (of 208) the payload's symbol may disagree with

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def _codec(level: str) -> Any:  # a reedsolo.RSCodec (reedsolo ships no types)
    import reedsolo

    return reedsolo.RSCodec(CODEWORDS - DATA_CODEWORDS[level], nsize=CODEWORDS)  # QR: GF(256), 0x11d, fcr 0


def error_corrected(received: bytes, level: str, erasures: Sequence[int] = ()) -> bytes | None:
    """The 26 codewords ``received`` corrected by Reed-Solomon decoding at ``level`` with the ``erasures`` (positions
    in ``received``), or None where they do not decode. Compiled (:func:`livereader.kernels.rs_correct`, 5 us
    a decode) once this process has loaded the kernels (:func:`livereader.compiled.loaded`: a search starts
    their background process), until then ``reedsolo`` (0.12 ms): the same codewords wherever ``2 * errors +
    erasures`` is within the EC codewords, and without erasures (tests)."""
    kernels = compiled.loaded()
    if kernels is None:
        import reedsolo

        try:
            return bytes(_codec(level).decode(bytearray(received), erase_pos=list(erasures) or None)[1])
        except reedsolo.ReedSolomonError:
            return None
    decoded, word = kernels.rs_correct(np.frombuffer(received, np.uint8).copy(), CODEWORDS - DATA_CODEWORDS[level],
                                       np.array(erasures, np.int64))
    return word.tobytes() if decoded else None


def parse(data: bytes, level: str) -> str | None:
    """The digits of data codewords that hold exactly one numeric-mode segment and standard padding, else None."""
    bits = Bits(data)
    try:
        if bits.take(4) != NUMERIC_MODE:
            return None
        count = bits.take(10)
        if not 1 <= count <= MAX_DIGITS[level]:
            return None
        text = digits(bits, count)
        # Terminator (up to 4 zero bits), zero bits to the byte boundary, then alternating pad codewords.
        at = 8 * len(data) - bits.left
        end = min(8 * len(data), -(-min(8 * len(data), at + 4) // 8) * 8)
        if bits.take(end - at):
            return None
    except ValueError:
        return None
    pads = data[end // 8 :]
    return None if any(b != PADDING[i % 2] for i, b in enumerate(pads)) else text


def numeric_payload(data: bytes, level: str) -> Payload | None:
    """:func:`parse` as a :class:`Payload`: one numeric segment and standard padding, else None."""
    text = parse(data, level)
    return None if text is None else Payload(text, "numeric", text.encode("ascii"))


def any_payload(data: bytes, level: str) -> Payload | None:
    """Whatever the data codewords hold (:func:`livereader.decode.payload.read_payload`), else None."""
    return read_payload(data)


PARSERS = {"numeric": numeric_payload, "any": any_payload}  # content option -> parse of the data codewords


def _reliable_last(bit_logits: np.ndarray) -> np.ndarray:
    """Codeword indices, least reliable first: a codeword is as reliable as its least certain bit."""
    return np.argsort(np.abs(bit_logits).reshape(CODEWORDS, 8).min(1), kind="stable")


def _evidence(payload: Payload | None, distance: float, corrected: int, ec: int, margin: float,
              fmt: FormatInfo, foreign: bool = False) -> Evidence:
    """The evidence of a decoded ``payload`` (None: none); its calibration features: distance, share of the
    correcting capacity used, margin (mean |logit| of the CNN's codeword bits), format distance."""
    used = corrected / max(ec // 2, 1)
    features = (distance, used, min(margin, 20.0), float(fmt.distance))
    return Evidence(payload.text if payload else None, distance, fmt, features, payload=payload, foreign=foreign)


def decode(grid: np.ndarray, fmt: FormatInfo, bit_logits: np.ndarray, options: CodewordOptions,
           content: str = "numeric") -> Evidence:
    """Decode one upright, normalized soft grid from the CNN's (208,) codeword bit logits (see the module doc);
    ``content``: ``numeric`` (one numeric segment, standard padding) or ``any`` (every mode, :mod:`payload`)."""
    ec = CODEWORDS - DATA_CODEWORDS[fmt.level]
    budget = ec - (MISDECODE_PROTECTION[fmt.level] if content == "any" else 0)
    margin = float(np.abs(bit_logits).mean())
    none = _evidence(None, float(PLACEMENT.shape[0]), 0, ec, margin, fmt)
    received = np.packbits(bit_logits > 0).tobytes()
    order = _reliable_last(bit_logits)
    for erased in options.erasure_tries:
        if erased > budget:
            break
        erasures = set(order[:erased].tolist())
        word = error_corrected(received, fmt.level, sorted(erasures))
        if word is None:
            continue
        data = word[: DATA_CODEWORDS[fmt.level]]
        changed = {i for i, (a, b) in enumerate(zip(received, word)) if a != b}
        spent = 2 * len(changed - erasures) + len(erasures)  # of the EC codewords
        if spent > budget:  # beyond the capacity: a wrong word may come back
            continue
        errors = len(changed)
        payload = PARSERS[content](data, fmt.level)
        if payload is None:
            reserved = spent <= ec - MISDECODE_PROTECTION[fmt.level]
            foreign = reserved and read_payload(data) is not None
            return _evidence(None, none.distance, 0, ec, margin, fmt, foreign)
        # The symbol of ``text`` at this level and mask: the corrected codewords, placed and masked. That is what
        # qrcode makes of it, as the strict parse admits only the standard encoding (the tests check both), and
        # it costs no re-encoding (qrcode takes longer than the whole Reed-Solomon decoding).
        rows, cols = PLACEMENT[:, 0], PLACEMENT[:, 1]
        expected = np.unpackbits(np.frombuffer(word, np.uint8)) ^ mask_patterns()[fmt.mask, rows, cols]
        distance = float(np.abs(expected - grid[rows, cols]).sum())
        return _evidence(payload, distance, errors, ec, margin, fmt)
    return none


def foreign_data(grid: np.ndarray, fmt: FormatInfo) -> bool:
    """True when a hard upright grid's codewords, unmasked with ``fmt``, decode but hold no numeric payload.
    Codewords that begin with the numeric mode indicator are not decoded (this keeps the check cheap for the
    codes that are read): they are not called foreign."""
    flips = mask_patterns()[fmt.mask]
    mode = 0
    for row, col in MODE_PLACES:  # the mode indicator, most significant bit first: four modules
        mode = mode << 1 | (int(grid[row, col]) ^ int(flips[row, col]))
    if mode == NUMERIC_MODE:
        return False
    bits = codeword_bits(grid[None].astype(np.uint8), np.array([fmt.mask]))[0]
    word = error_corrected(np.packbits(bits).tobytes(), fmt.level)
    return word is not None and parse(word[: DATA_CODEWORDS[fmt.level]], fmt.level) is None
