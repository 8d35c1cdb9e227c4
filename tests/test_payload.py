"""Every mode of a version-1 symbol decoded (livereader.decode.payload) and verified like numbers (codeword.decode)."""

import numpy as np
import pytest
import qrcode
from qrcode.util import MODE_8BIT_BYTE, QRData

from livereader.decode.codeword import (
    CODEWORDS,
    DATA_CODEWORDS,
    MISDECODE_PROTECTION,
    PLACEMENT,
    CodewordOptions,
    decode,
)
from livereader.decode.payload import GS, Payload, StructuredAppend, read_payload
from livereader.symbol import LEVEL_BITS, mask_patterns, read_format
from livereader.train.data import grid_from_bits


def _qrcode_grid(*segments, level="L", mask=2) -> np.ndarray:
    code = qrcode.QRCode(version=1, error_correction=LEVEL_BITS[level], border=0, mask_pattern=mask)
    for segment in segments:
        code.add_data(segment, optimize=0)
    code.make(fit=False)
    return np.array(code.modules, np.uint8)


def _grid_from_bits(bits: str, level="L", mask=2) -> np.ndarray:
    return grid_from_bits(bits, level, mask)


def _decode(grid: np.ndarray, flip=()):
    """Decode a grid as the general path does, from confident bit logits, with the codeword bits ``flip``
    (indices into ``PLACEMENT``) made wrong."""
    seen = grid.copy()
    rows, cols = PLACEMENT[:, 0], PLACEMENT[:, 1]
    seen[rows[list(flip)], cols[list(flip)]] ^= 1
    fmt = read_format(seen.astype(np.float32))
    bits = seen[rows, cols] ^ mask_patterns()[fmt.mask, rows, cols]
    return decode(seen.astype(np.float32), fmt, np.where(bits == 1, 8.0, -8.0), CodewordOptions(), "any")


@pytest.mark.parametrize("text, content", [("31415926", "numeric"), ("HELLO WORLD $%*+-./:", "alphanumeric"),
                                           ("hello, world!", "byte"), ("grüße aus köln", "byte")])
def test_each_mode_made_by_qrcode_reads_with_its_text(text, content):
    grid = _qrcode_grid(text.encode("utf-8") if not text.isascii() else text)
    evidence = _decode(grid)
    assert evidence.text == text and evidence.payload.content == content and evidence.distance == 0


def test_kanji_and_mixed_segments():
    # ISO/IEC 18004's example: Shift JIS 0x935F and 0xE4AA are the 13-bit values 0x0D9F and 0x1AAA
    kanji = "1000" + f"{2:08b}" + f"{0x0D9F:013b}" + f"{0x1AAA:013b}"
    stored = bytes.fromhex("935fe4aa")  # Shift JIS, as stored
    assert _decode(_grid_from_bits(kanji)).payload == Payload("点茗", "kanji", stored)
    mixed = _decode(_qrcode_grid(QRData(b"ab", MODE_8BIT_BYTE), "12345678", level="M")).payload
    assert mixed == Payload("ab12345678", "mixed", b"ab12345678")


def test_latin1_bytes_that_are_not_utf8_read_as_latin1():
    assert _decode(_qrcode_grid(QRData("café".encode("latin-1"), MODE_8BIT_BYTE))).text == "café"


def test_eci_structured_append_and_fnc1_headers():
    text = "Ωμέγα"  # Greek: ECI 9 is ISO-8859-7
    raw = text.encode("iso8859-7")
    eci = "0111" + f"{9:08b}" + "0100" + f"{len(raw):08b}" + "".join(f"{b:08b}" for b in raw)
    assert _decode(_grid_from_bits(eci)).payload == Payload(text, "byte", raw, eci=9)
    append = "0011" + "0001" + "0010" + f"{0x5A:08b}" + "0001" + f"{3:010b}" + f"{123:010b}"
    assert _decode(_grid_from_bits(append)).payload == Payload(
        "123", "numeric", b"123", structured_append=StructuredAppend(1, 3, 0x5A))
    # GS1: FNC1 in the first position; '%' in an alphanumeric segment is the GS separator
    gs1 = "0101" + "0010" + f"{3:09b}" + f"{45 * 1 + 38:011b}" + f"{2:06b}"  # "1%2"
    assert _decode(_grid_from_bits(gs1)).payload == Payload("1" + GS + "2", "alphanumeric",
                                                             ("1" + GS + "2").encode(), fnc1="gs1")


@pytest.mark.parametrize("bits", ["0110" + "0" * 60,  # no such mode
                                  "0100" + f"{200:08b}",  # runs past the data
                                  "0001" + f"{3:010b}" + f"{1000:010b}",  # a numeric group over 999
                                  "0111" + f"{99:08b}" + "0100" + f"{1:08b}" + "01000001",  # unknown ECI
                                  "0000"])  # no text
def test_data_that_breaks_the_standard_is_no_payload(bits):
    assert _decode(_grid_from_bits(bits)).text is None


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_text_reads_within_the_capacity_and_no_further(level):
    grid = _qrcode_grid("ABC", level=level)
    capacity = (CODEWORDS - DATA_CODEWORDS[level] - MISDECODE_PROTECTION[level]) // 2
    for wrong, reads in ((capacity, True), (capacity + 1, False)):
        evidence = _decode(grid, 8 * (CODEWORDS - 1 - np.arange(wrong)))  # a bit in each of the last codewords
        assert (evidence.text == "ABC") == reads and (evidence.text in (None, "ABC"))


def test_read_payload_of_raw_codewords():
    assert read_payload(bytes([0b0001_0000, 0b0000_1100, 0b0111_1011, 0, 0])) == Payload("123", "numeric", b"123")
