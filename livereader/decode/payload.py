"""What a version-1 symbol's data codewords hold: the segments of ISO/IEC 18004 (section 7.4) parsed into text.

Every mode that fits version 1 is read: numeric, alphanumeric, byte, kanji, ECI (extended channel
interpretation), FNC1 in the first or second position (GS1 and AIM application identifiers) and the
structured-append header. Character counts have the widths of versions 1-9 (numeric 10 bits, alphanumeric 9,
byte 8, kanji 8). Bytes are decoded with the character set the latest ECI names; without an ECI, as UTF-8 when
they are valid UTF-8, else as ISO-8859-1 (the standard's default). Kanji are Shift JIS double-byte characters.

Hand-written because neither ``qrcode`` (an encoder) nor ``reedsolo`` (error correction) parses segments.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
GS = "\x1d"  # FNC1 as a separator of GS1 element strings ('%' in alphanumeric segments after FNC1)
# ECI assignment number -> Python codec (AIM ECI specification); others are not read
ECI_CODECS = {0: "cp437", 1: "latin-1", 2: "cp437", 3: "latin-1", 4: "iso8859-2", 5: "iso8859-3",
              6: "iso8859-4", 7: "iso8859-5", 8: "iso8859-6", 9: "iso8859-7", 10: "iso8859-8", 11: "iso8859-9",
              12: "iso8859-10", 13: "iso8859-11", 15: "iso8859-13", 16: "iso8859-14", 17: "iso8859-15",
              18: "iso8859-16", 20: "shift_jis", 21: "cp1250", 22: "cp1251", 23: "cp1252", 24: "cp1256",
              25: "utf-16-be", 26: "utf-8", 27: "ascii", 28: "big5", 29: "gb18030", 30: "euc-kr"}
# mode indicator -> data mode and the bits of its character count
_COUNT_BITS = {0b0001: ("numeric", 10), 0b0010: ("alphanumeric", 9), 0b0100: ("byte", 8), 0b1000: ("kanji", 8)}
_ECI, _APPEND, _FNC1_FIRST, _FNC1_SECOND, _END = 0b0111, 0b0011, 0b0101, 0b1001, 0b0000


@dataclass(frozen=True)
class StructuredAppend:
    """A symbol's place in a structured-append sequence: ``index`` from 0 of ``total`` symbols, and the
    sequence's ``parity`` byte (the XOR of the whole message's bytes)."""

    index: int
    total: int
    parity: int


@dataclass(frozen=True)
class Payload:
    """The text of a symbol and how it was encoded.

    ``content``: ``numeric``, ``alphanumeric``, ``byte`` or ``kanji`` when every data segment has that mode,
    ``mixed`` otherwise. ``raw``: the segments' bytes as stored (digits and alphanumeric characters as ASCII,
    byte segments as they are, kanji as Shift JIS). What the symbol says besides its text: ``eci`` (the first
    ECI assignment number), ``fnc1`` (``"gs1"`` or ``"aim:<indicator>"``) and ``structured_append``.
    """

    text: str
    content: str
    raw: bytes = b""
    eci: int | None = None
    fnc1: str | None = None
    structured_append: StructuredAppend | None = None


class Bits:
    """A reader of a byte string's bits, most significant first."""

    def __init__(self, data: bytes):
        self.value, self.left = int.from_bytes(data, "big"), 8 * len(data)

    def take(self, count: int) -> int:
        if count > self.left:
            raise ValueError("segment runs past the data codewords")
        self.left -= count
        return (self.value >> self.left) & ((1 << count) - 1)


def digits(bits: Bits, count: int) -> str:
    """``count`` digits of a numeric segment: groups of three in 10 bits, the last one or two in 4 or 7."""
    out = []
    for size in [3] * (count // 3) + ([count % 3] if count % 3 else []):
        value = bits.take({3: 10, 2: 7, 1: 4}[size])
        if value >= 10**size:
            raise ValueError("numeric group out of range")
        out.append("%0*d" % (size, value))
    return "".join(out)


def _alphanumeric(bits: Bits, count: int, gs1: bool) -> str:
    out: list[str] = []
    for size in [2] * (count // 2) + ([1] if count % 2 else []):
        value = bits.take(11 if size == 2 else 6)
        pair = divmod(value, 45) if size == 2 else (value,)
        if any(v >= 45 for v in pair):
            raise ValueError("alphanumeric value out of range")
        out.extend(ALPHANUMERIC[v] for v in pair)
    text = "".join(out)
    return text.replace("%%", "\0").replace("%", GS).replace("\0", "%") if gs1 else text


def _kanji(bits: Bits, count: int) -> bytes:
    """``count`` kanji characters as their Shift JIS bytes."""
    raw = bytearray()
    for _ in range(count):
        value = bits.take(13)
        word = (value // 0xC0) << 8 | value % 0xC0
        word += 0x8140 if word < 0x1F00 else 0xC140
        raw += word.to_bytes(2, "big")
    return bytes(raw)


def _bytes_text(raw: bytes, eci: int | None) -> str:
    if eci is not None:
        return raw.decode(ECI_CODECS[eci])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _eci(bits: Bits) -> int:
    first = bits.take(8)
    if first < 0x80:
        return first
    if first < 0xC0:
        return (first & 0x3F) << 8 | bits.take(8)
    if first < 0xE0:
        return (first & 0x1F) << 16 | bits.take(16)
    raise ValueError("invalid ECI designator")


def read_payload(data: bytes) -> Payload | None:
    """The payload of a version-1 symbol's (error-corrected) data codewords, or None when they break the
    standard: an unknown mode, a segment running past the data, a value out of its range, characters that
    are not valid in their character set, an unknown ECI, or no text at all. What follows the terminator
    (padding) is not looked at, as in other readers; the caller verifies the codewords themselves."""
    bits = Bits(data)
    pieces: list[str] = []
    raw: list[bytes] = []
    modes: list[str] = []
    first_eci: int | None = None  # each header the first the symbol holds
    fnc1: str | None = None
    append: StructuredAppend | None = None
    eci: int | None = None  # the latest ECI: the character set of the byte segments that follow
    try:
        while bits.left >= 4:
            mode = bits.take(4)
            if mode == _END:
                break
            if mode in _COUNT_BITS:
                name, width = _COUNT_BITS[mode]
                text, stored = _segment(bits, name, bits.take(width), eci, fnc1 is not None)
                pieces.append(text)
                raw.append(stored)
                modes.append(name)
            elif mode == _ECI:
                eci = _eci(bits)
                if eci not in ECI_CODECS:
                    return None
                first_eci = eci if first_eci is None else first_eci
            elif mode == _APPEND:
                index, total, parity = bits.take(4), bits.take(4) + 1, bits.take(8)
                append = append or StructuredAppend(index, total, parity)
            elif mode in (_FNC1_FIRST, _FNC1_SECOND):
                indicator = "gs1" if mode == _FNC1_FIRST else f"aim:{bits.take(8)}"
                fnc1 = fnc1 or indicator
            else:
                return None
    except (ValueError, UnicodeDecodeError):  # UnicodeDecodeError is a ValueError; named for the reader
        return None
    text = "".join(pieces)
    if not text:
        return None
    content = modes[0] if len(set(modes)) == 1 else "mixed"
    return Payload(text, content, b"".join(raw), first_eci, fnc1, append)


def _segment(bits: Bits, mode: str, count: int, eci: int | None, gs1: bool) -> tuple[str, bytes]:
    """A segment of ``count`` characters of ``mode``: its text, and its bytes as stored."""
    if mode == "numeric":
        text = digits(bits, count)
        return text, text.encode("ascii")
    if mode == "alphanumeric":
        text = _alphanumeric(bits, count, gs1)
        return text, text.encode("ascii")
    if mode == "byte":
        stored = bytes(bits.take(8) for _ in range(count))
        return _bytes_text(stored, eci), stored
    stored = _kanji(bits, count)
    return stored.decode("shift_jis"), stored
