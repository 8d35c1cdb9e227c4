"""Training and evaluation grids made with ``qrcode``, the held-out split, and foreign codes.

The cache of all 10^6 six-digit level-H grids lives outside the repository (``$LIVEREADER_CACHE`` or
``~/.cache/livereader``) as packed bits: one file with the mask that ``qrcode`` chooses itself (as real encoders
do) and one seeded random given mask per number (masks that other encoders choose), ~56 MB each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livereader.decode.codeword import MAX_DIGITS
from livereader.decode.payload import ALPHANUMERIC
from livereader.symbol import LEVELS, SIZE, encode, read_format

NUMBERS = 10**6
_CHUNK = 10_000
CACHE_VERSION = 2


def is_held_out(payload: str) -> bool:
    """True for the ~5.1% of payloads that no training set may contain: the first byte of the payload's
    SHA-256 is below 13."""
    return hashlib.sha256(payload.encode()).digest()[0] < 13


def held_out_numbers() -> np.ndarray:
    """The sorted six-digit numbers (as ints) whose payload ``"%06d" % n`` is held out."""
    return np.array([n for n in range(NUMBERS) if is_held_out("%06d" % n)], dtype=np.int64)


def pack(grids: np.ndarray) -> np.ndarray:
    """(N, 21, 21) 0/1 grids -> (N, 56) uint8 packed bits."""
    return np.packbits(grids.reshape(len(grids), SIZE * SIZE).astype(np.uint8), axis=1)


def unpack(packed: np.ndarray) -> np.ndarray:
    """(N, 56) uint8 packed bits -> (N, 21, 21) uint8 grids."""
    return np.unpackbits(packed, axis=1, count=SIZE * SIZE).reshape(len(packed), SIZE, SIZE)


@dataclass(frozen=True)
class GridSet:
    """Six-digit level-H grids for ``numbers``: ``packed[i]`` is the grid of ``"%06d" % numbers[i]``."""

    numbers: np.ndarray  # (N,) int64
    packed: np.ndarray  # (N, 56) uint8
    masks: np.ndarray  # (N,) uint8


_MASK_SEED = 12345  # seeds the given masks: one random mask per number, the same in every cache


def _encode_chunk(args: tuple[np.ndarray, bool]) -> tuple[np.ndarray, np.ndarray]:
    numbers, given_masks = args
    grids = np.empty((len(numbers), SIZE, SIZE), dtype=np.uint8)
    masks = np.empty(len(numbers), dtype=np.uint8)
    for i, n in enumerate(numbers):
        mask = int(np.random.default_rng([_MASK_SEED, int(n)]).integers(8)) if given_masks else None
        grids[i] = encode("%06d" % n, "H", mask)
        masks[i] = read_format(grids[i]).mask
    return pack(grids), masks


def encode_numbers(numbers: np.ndarray, given_masks: bool, workers: int | None = None, progress: bool = False,
                   desc: str = "grids") -> GridSet:
    """Six-digit level-H grids of ``numbers`` made by qrcode in ``workers`` processes.

    ``given_masks=False``: the mask that qrcode picks; ``True``: a random mask per number, fixed by its value.
    """
    from tqdm import tqdm

    jobs = [(numbers[i : i + _CHUNK], given_masks) for i in range(0, len(numbers), _CHUNK)]
    packed, masks = [], []
    with ProcessPoolExecutor(max_workers=min(workers or os.cpu_count() or 1, len(jobs) or 1)) as pool:
        for chunk_packed, chunk_masks in tqdm(pool.map(_encode_chunk, jobs), total=len(jobs), desc=desc,
                                              disable=not progress):
            packed.append(chunk_packed)
            masks.append(chunk_masks)
    empty = np.zeros((0, 56), np.uint8)
    return GridSet(np.asarray(numbers, dtype=np.int64), np.concatenate(packed or [empty]),
                   np.concatenate(masks or [np.zeros(0, np.uint8)]))


def cache_dir() -> Path:
    """Where generated grids are cached: ``$LIVEREADER_CACHE``, else ``~/.cache/livereader``."""
    if os.environ.get("LIVEREADER_CACHE"):
        return Path(os.environ["LIVEREADER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livereader"


def cache_path(given_masks: bool) -> Path:
    """The cache file of all six-digit level-H grids with given masks or with qrcode's own choice."""
    return cache_dir() / f"grids6H-{'given' if given_masks else 'chosen'}-v{CACHE_VERSION}.npz"


def six_digit_grids(given_masks: bool, workers: int | None = None, progress: bool = True) -> GridSet:
    """All 10^6 six-digit level-H grids (``numbers[i] == i``), from the cache or generated once and cached."""
    path = cache_path(given_masks)
    if path.exists():
        with np.load(path) as stored:
            return GridSet(np.arange(NUMBERS, dtype=np.int64), stored["packed"], stored["masks"])
    result = encode_numbers(np.arange(NUMBERS), given_masks, workers, progress, desc=path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, packed=result.packed, masks=result.masks)
    partial.replace(path)
    return result


def foreign_codes(count: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``count`` version-1 codes a six-digit level-H reader must reject, and their payloads.

    A mix of text, numbers of 1-5 and 7-17 digits at level H, and numbers of any length (6 digits included) and
    text at levels L, M and Q; the mask is qrcode's choice.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 :/.-"))

    def draw() -> tuple[str, str]:
        kind = rng.integers(3)
        level = "H" if kind < 2 else str(rng.choice(["L", "M", "Q"]))
        if kind == 0:
            length = int(rng.choice([*range(1, 6), *range(7, 18)]))
            return "".join(rng.choice(list("0123456789"), length)), level
        if kind == 1 or rng.random() < 0.5:
            return "".join(rng.choice(alphabet, int(rng.integers(1, 8)))), level
        return "".join(rng.choice(list("0123456789"), int(rng.integers(1, 35)))), level

    return _encoded(draw, count)


def _encoded(draw: Callable[[], tuple[str, str] | None], count: int) -> tuple[list[str], np.ndarray]:
    """``count`` payloads that ``draw`` gives with their levels (None: draw again), each that fits version 1
    encoded by qrcode with its own mask choice: the payloads and their grids."""
    payloads: list[str] = []
    grids: list[np.ndarray] = []
    while len(grids) < count:
        drawn = draw()
        if drawn is None:
            continue
        try:
            grids.append(encode(*drawn))
        except ValueError:
            continue
        payloads.append(drawn[0])
    return payloads, np.stack(grids)


@dataclass(frozen=True)
class NumericSet:
    """Numeric codes of any length and level: ``grids[i]`` encodes ``payloads[i]`` at ``levels[i]``, ``masks[i]``."""

    payloads: list[str]
    levels: np.ndarray  # (N,) int64: index into ``symbol.LEVELS``
    masks: np.ndarray  # (N,) int64
    grids: np.ndarray  # (N, 21, 21) uint8


def numeric_payloads(count: int, rng: np.random.Generator, held_out: bool) -> tuple[list[str], np.ndarray]:
    """``count`` random numeric payloads and level indices: the level uniform, then the length uniform over all
    that fit version 1 at that level (leading zeros kept); only held-out payloads, or only training ones."""
    payloads: list[str] = []
    levels: list[int] = []
    while len(payloads) < count:
        level = int(rng.integers(len(LEVELS)))
        length = int(rng.integers(1, MAX_DIGITS[LEVELS[level]] + 1))
        payload = "".join(map(str, rng.integers(10, size=length)))
        if is_held_out(payload) == held_out:
            payloads.append(payload)
            levels.append(level)
    return payloads, np.array(levels, dtype=np.int64)


def numeric_codes(count: int, rng: np.random.Generator, held_out: bool, chosen_share: float) -> NumericSet:
    """Fresh numeric codes made by qrcode: a share ``chosen_share`` with the mask qrcode picks (as real encoders
    do, ~1.2 ms each), the others with a random given mask (~0.12 ms each)."""
    payloads, levels = numeric_payloads(count, rng, held_out)
    chosen = rng.random(count) < chosen_share
    given = rng.integers(8, size=count)
    grids = np.stack([encode(p, LEVELS[lv], None if c else int(m))
                      for p, lv, c, m in zip(payloads, levels, chosen, given)])
    masks = np.array([read_format(g).mask for g in grids], dtype=np.int64)
    return NumericSet(payloads, levels, masks, grids)


def text_codes(count: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``count`` version-1 codes at every level that hold text (at least one non-digit), and their payloads: a
    numeric reader must reject every one. Upper-case text with digits (alphanumeric mode, or mixed segments
    where qrcode splits it) and lower-case text (byte mode); the mask is qrcode's choice."""
    rng = np.random.default_rng(seed)
    upper = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 $%*+-./:"))
    lower = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789 -./"))

    def draw() -> tuple[str, str] | None:
        alphabet = upper if rng.random() < 0.5 else lower
        payload = "".join(rng.choice(alphabet, int(rng.integers(1, 30))))
        return None if payload.isdigit() else (payload, LEVELS[int(rng.integers(len(LEVELS)))])

    return _encoded(draw, count)


# Characters of the general payloads: each mode's own alphabet; byte payloads ASCII, or with letters beyond it
# (UTF-8, or ISO-8859-1 bytes that are not valid UTF-8); kanji from the Shift JIS double-byte range.
_ALPHANUMERIC = np.array(list(ALPHANUMERIC))
_ASCII = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"#&'()+,-./:;=?@_~"))
_ACCENTED = np.array(list("äöüßéèêçñåøæ"))
_KANJI = np.array(list("日本語漢字点茗東京大阪山川田中花見学生先時間"))
GENERAL_MODES = ("numeric", "alphanumeric", "byte", "utf-8", "iso-8859-1", "kanji", "mixed")
_CAPACITY = {  # characters (bytes for byte mode) that fit version 1 at each level
    "numeric": MAX_DIGITS, "alphanumeric": {"L": 25, "M": 20, "Q": 16, "H": 10},
    "byte": {"L": 17, "M": 14, "Q": 11, "H": 7}, "kanji": {"L": 10, "M": 8, "Q": 7, "H": 4}}


@dataclass(frozen=True)
class GeneralSet:
    """Version-1 codes of every mode: ``grids[i]`` holds ``payloads[i]`` in ``modes[i]`` (of ``GENERAL_MODES``)
    at ``levels[i]`` (index into ``symbol.LEVELS``)."""

    payloads: list[str]
    modes: list[str]
    levels: np.ndarray  # (N,) int64
    grids: np.ndarray  # (N, 21, 21) uint8


def grid_from_bits(bits: str, level: str, mask: int) -> np.ndarray:
    """A version-1 grid whose data bit stream is ``bits`` (mode indicators, counts and data, as '0'/'1'):
    terminator, zero bits and padding added, Reed-Solomon encoded (``reedsolo``), placed and masked.
    Hand-written for what ``qrcode`` does not encode (kanji, ECI, FNC1, structured append); ValueError when the
    bits do not fit."""
    import reedsolo

    from livereader.decode.codeword import CODEWORDS, DATA_CODEWORDS, PADDING, PLACEMENT
    from livereader.symbol import mask_patterns

    capacity = 8 * DATA_CODEWORDS[level]
    if len(bits) > capacity:
        raise ValueError("the bits do not fit")
    bits += "0" * min(4, capacity - len(bits))
    bits += "0" * (-len(bits) % 8)
    data = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    data += bytes(PADDING * 10)[: DATA_CODEWORDS[level] - len(data)]
    stream = reedsolo.RSCodec(CODEWORDS - DATA_CODEWORDS[level], nsize=CODEWORDS).encode(data)
    grid = encode("0", level, mask)
    rows, cols = PLACEMENT[:, 0], PLACEMENT[:, 1]
    grid[rows, cols] = np.unpackbits(np.frombuffer(bytes(stream), np.uint8)) ^ mask_patterns()[mask, rows, cols]
    return grid


def kanji_bits(text: str) -> str:
    """The 13-bit kanji-mode values of Shift JIS double-byte characters (ISO/IEC 18004 7.4.6)."""
    bits = []
    for pair in (text.encode("shift_jis")[i : i + 2] for i in range(0, 2 * len(text), 2)):
        word = int.from_bytes(pair, "big")
        word -= 0x8140 if word < 0xE000 else 0xC140
        bits.append(f"{(word >> 8) * 0xC0 + (word & 0xFF):013b}")
    return "".join(bits)


def _general_text(mode: str, level: str, rng: np.random.Generator) -> str:
    """One random payload of ``mode`` for ``level``, its length uniform over all that fit (it may not fit: more
    than one letter beyond ASCII, mixed segments)."""
    if mode == "kanji":
        return "".join(rng.choice(_KANJI, int(rng.integers(1, _CAPACITY["kanji"][level] + 1))))
    if mode == "mixed":  # letters then digits: an alphanumeric and a numeric segment
        letters = "".join(rng.choice(_ALPHANUMERIC[10:], int(rng.integers(1, 8))))
        return letters + "".join(map(str, rng.integers(10, size=int(rng.integers(6, 14)))))
    if mode in ("numeric", "alphanumeric"):
        alphabet = _ALPHANUMERIC[:10] if mode == "numeric" else _ALPHANUMERIC
        return "".join(rng.choice(alphabet, int(rng.integers(1, _CAPACITY[mode][level] + 1))))
    length = int(rng.integers(1, _CAPACITY["byte"][level] + 1))
    text = "".join(rng.choice(_ASCII, length))
    if mode != "byte":  # one to three letters beyond ASCII, as the chosen encoding holds them
        places = rng.choice(length, min(length, int(rng.integers(1, 4))), replace=False)
        text = "".join(rng.choice(_ACCENTED) if i in places else c for i, c in enumerate(text))
    return text


def _general_grid(mode: str, text: str, level: str, rng: np.random.Generator) -> np.ndarray:
    """The grid of ``text`` in ``mode`` at ``level``: the mask qrcode picks, a random mask for kanji;
    ValueError when it does not fit or its ISO-8859-1 bytes would read as UTF-8."""
    from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM, MODE_NUMBER, QRData

    if mode == "kanji":
        return grid_from_bits("1000" + f"{len(text):08b}" + kanji_bits(text), level, int(rng.integers(8)))
    if mode == "mixed":
        letters = len(text) - len(text.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"))
        data = [QRData(text[:letters], MODE_ALPHA_NUM), QRData(text[letters:], MODE_NUMBER)]
    elif mode in ("numeric", "alphanumeric"):
        data = [QRData(text, MODE_NUMBER if mode == "numeric" else MODE_ALPHA_NUM)]
    else:
        raw = text.encode("ascii" if mode == "byte" else mode)
        if mode == "iso-8859-1":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise ValueError("these ISO-8859-1 bytes are valid UTF-8: they read as UTF-8")
        data = [QRData(raw, MODE_8BIT_BYTE)]
    return encode(data, level)


def general_codes(count: int, rng: np.random.Generator, held_out: bool) -> GeneralSet:
    """``count`` codes of every mode (``GENERAL_MODES`` in turn) at every level (uniform); only held-out
    payloads, or only training ones."""
    payloads: list[str] = []
    modes: list[str] = []
    levels: list[int] = []
    grids: list[np.ndarray] = []
    while len(payloads) < count:
        mode, level = GENERAL_MODES[len(payloads) % len(GENERAL_MODES)], int(rng.integers(len(LEVELS)))
        text = _general_text(mode, LEVELS[level], rng)
        if is_held_out(text) != held_out:
            continue
        try:
            grids.append(_general_grid(mode, text, LEVELS[level], rng))
        except ValueError:
            continue
        payloads.append(text)
        modes.append(mode)
        levels.append(level)
    return GeneralSet(payloads, modes, np.array(levels, dtype=np.int64), np.stack(grids))
