"""Numeric codes of any length and level: codeword placement, decoding, the shipped numeric model, torchrun."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import qrcode

from livereader import load_model, read_grids
from livereader.decode.codeword import (
    DATA_CODEWORDS,
    MAX_DIGITS,
    PLACEMENT,
    CodewordOptions,
    codeword_bits,
    decode,
    foreign_data,
    parse,
)
from livereader.decode.decoders import CODEWORD_FEATURES
from livereader.decode.reader import default_model_path
from livereader.symbol import LEVEL_BITS, LEVELS, read_format
from livereader.train.data import numeric_codes, text_codes


def _made(payload: str, level: str, mask: int | None = None):
    code = qrcode.QRCode(version=1, error_correction=LEVEL_BITS[level], border=0, mask_pattern=mask)
    code.add_data(payload)
    code.make(fit=False)
    return np.array(code.modules, np.uint8), np.array(code.data_cache, np.uint8)


@pytest.fixture(scope="module")
def numeric_model():
    return load_model(default_model_path("numeric.pt"))


@pytest.mark.parametrize("level", LEVELS)
def test_placement_gives_qrcodes_own_codewords(level):
    assert len({tuple(p) for p in PLACEMENT.tolist()}) == 208
    for mask in range(8):
        grid, codewords = _made("0123456789"[: 1 + mask], level, mask)
        assert (codeword_bits(grid[None], np.array([mask]))[0] == np.unpackbits(codewords)).all()


@pytest.mark.parametrize("level", LEVELS)
def test_parse_reads_every_length_and_rejects_other_data(level):
    for length in (1, 2, 3, 4, MAX_DIGITS[level]):
        payload = "0" + "7" * (length - 1)
        _, codewords = _made(payload, level)
        assert parse(bytes(codewords[: DATA_CODEWORDS[level]]), level) == payload
    _, text = _made("AB12", level)
    assert parse(bytes(text[: DATA_CODEWORDS[level]]), level) is None
    _, number = _made("123", level)
    bad_padding = bytearray(number[: DATA_CODEWORDS[level]])
    bad_padding[-1] ^= 0x01
    assert parse(bytes(bad_padding), level) is None


@pytest.mark.parametrize("level", LEVELS)
def test_decoding_corrects_up_to_the_capacity_and_no_further(level):
    rng = np.random.default_rng(1)
    payload = "".join(map(str, rng.integers(10, size=MAX_DIGITS[level])))
    grid, _ = _made(payload, level)
    fmt = read_format(grid)
    bits = codeword_bits(grid[None], np.array([fmt.mask]))[0]
    capacity = (26 - DATA_CODEWORDS[level]) // 2
    for errors, readable in ((capacity, True), (capacity + 1, False)):
        damaged = bits.copy()
        for codeword in rng.choice(26, errors, replace=False):
            damaged[8 * codeword + rng.integers(8)] ^= 1
        evidence = decode(grid.astype(np.float32), fmt, (2.0 * damaged - 1) * 4, CodewordOptions(erasure_tries=(0,)))
        assert (evidence.text == payload) if readable else evidence.text is None
        used = dict(zip(CODEWORD_FEATURES, evidence.features))["capacity_used"]  # corrected / capacity
        assert used == (errors / capacity if readable else 0)
        if readable:  # the payload's own symbol, as qrcode makes it, is the clean grid
            assert evidence.distance == 0


def test_foreign_data_tells_text_from_numbers():
    _, grids = text_codes(40, seed=2)
    assert all(foreign_data(g, read_format(g)) for g in grids)
    codes = numeric_codes(40, np.random.default_rng(2), held_out=True, chosen_share=1.0)
    assert not any(foreign_data(g, read_format(g)) for g in codes.grids)


def test_shipped_numeric_model_reads_every_length_and_level(numeric_model):
    codes = numeric_codes(300, np.random.default_rng(3), held_out=True, chosen_share=0.5)
    reads = read_grids(codes.grids, numeric_model)
    assert [r.text for r in reads] == codes.payloads
    assert all(r.confidence >= 0.5 for r in reads)
    assert set(codes.levels.tolist()) == {0, 1, 2, 3}


def test_numeric_model_never_reports_text_codes_or_noise(numeric_model):
    _, grids = text_codes(200, seed=4)
    noise = np.random.default_rng(4).random((50, 21, 21))
    assert all(r.text is None for r in read_grids(np.concatenate([grids, noise]), numeric_model))


def test_wrong_modules_give_no_wrong_number(numeric_model):
    codes = numeric_codes(150, np.random.default_rng(5), held_out=True, chosen_share=0.5)
    rng = np.random.default_rng(5)
    damaged = codes.grids.copy()
    for grid in damaged:
        rows, cols = np.unravel_index(rng.choice(441, 16, replace=False), (21, 21))
        grid[rows, cols] ^= 1
    texts = [r.text for r in read_grids(damaged, numeric_model)]
    assert all(t is None or t == p for t, p in zip(texts, codes.payloads))
    assert sum(t == p for t, p in zip(texts, codes.payloads)) > 0


def test_default_models_read_six_digit_and_numeric_codes(held_out):
    numbers, grids = held_out
    codes = numeric_codes(60, np.random.default_rng(6), held_out=True, chosen_share=1.0)
    reads = read_grids(np.concatenate([grids[:60], codes.grids]))  # the shipped pair
    assert [r.text for r in reads] == ["%06d" % n for n in numbers[:60]] + codes.payloads


@pytest.mark.slow
def test_torchrun_trains_with_two_cpu_processes(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "livereader.train",
               "--kind", "numeric", "--steps", "6", "--batch", "32", "--eval-size", "quick",
               "--out-dir", str(tmp_path), "--name", "ddp",
               "--checkpoint", str(tmp_path / "ddp.ckpt")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((tmp_path / "ddp.json").read_text())
    assert card["training"]["processes"] == 2 and card["kind"] == "codeword"  # the older name, given, is stored anew
    assert card["command"].startswith("torchrun --nproc_per_node 2 -m livereader.train --kind numeric")
    assert load_model(tmp_path / "ddp.pt").kind == "codeword"


def test_codeword_reader_torchscript_equals_eager(tmp_path):
    import torch

    from livereader.decode.model import CodewordConfig, CodewordReader
    from livereader.train.cli import export

    torch.manual_seed(0)
    eager = CodewordReader(CodewordConfig()).eval()
    path = tmp_path / "c.pt"
    export(eager, path, {"kind": "numeric", "config": CodewordConfig().to_dict(),
                         "calibration": {"weights": [0, 0, 0, 0], "bias": 0}})
    x = torch.rand(16, 1, 21, 21)
    loaded = load_model(path)
    with torch.inference_mode():
        assert loaded.kind == "codeword"  # a model file of the older kind "numeric" loads as a codeword model
        assert torch.allclose(loaded.module(x), eager(x), atol=1e-5)
        assert torch.allclose(loaded.batched(x), eager(x), atol=1e-5)


def test_the_mode_indicator_places_are_the_first_codeword_bits():
    """foreign_data reads a grid's mode indicator from four modules (MODE_PLACES): the first four codeword bits."""
    from livereader.decode.codeword import MODE_PLACES, NUMERIC_MODE
    from livereader.symbol import encode, mask_patterns

    modes = set()
    for text, level in (("004217", "H"), ("HELLO", "M"), ("https://x.org", "L"), ("12345678", "Q"), ("Aa", "H")):
        for mask in range(8):
            grid = encode(text, level, mask)
            bits = codeword_bits(grid[None], np.array([mask]))[0]
            mode = [int(grid[r, c]) ^ int(mask_patterns()[mask][r, c]) for r, c in MODE_PLACES]
            assert mode == bits[:4].tolist()
            modes.add(int("".join(map(str, mode)), 2))
            assert foreign_data(grid, read_format(grid)) == (int("".join(map(str, mode)), 2) != NUMERIC_MODE)
    assert modes == {0b0001, 0b0010, 0b0100}  # numeric, alphanumeric and byte segments first
