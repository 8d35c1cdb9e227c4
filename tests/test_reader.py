"""The shipped model: round trips, foreign codes, wrong modules, bad input, TorchScript export."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from livereader import GridRead, ModelError, decode_grid, load_model, read_grids
from livereader.decode.decoders import UNMASKED
from livereader.decode.model import GridReader, ModelConfig
from livereader.symbol import mask_patterns
from livereader.train.cli import export
from livereader.train.data import foreign_codes, text_codes


@pytest.mark.slow
def test_import_loads_no_model_and_no_torch():
    code = ("import sys, livereader; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'numba' not in sys.modules, 'numba imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_held_out_round_trip(model, held_out):
    numbers, grids = held_out
    reads = read_grids(grids, model)
    assert [r.text for r in reads] == ["%06d" % n for n in numbers]
    assert all(0.5 <= r.confidence <= 1 for r in reads)


def test_decode_grid_api(model, held_out):
    numbers, grids = held_out
    read = decode_grid(grids[0])  # the shipped default model
    assert isinstance(read, GridRead) and read.text == "%06d" % numbers[0]


def test_inverted_grids_are_read(model, held_out):
    numbers, grids = held_out
    reads = read_grids(1 - grids[:50], model)
    assert [r.text for r in reads] == ["%06d" % n for n in numbers[:50]]


def test_foreign_codes_are_rejected(model):
    payloads, grids = foreign_codes(300, seed=5)
    reads = read_grids(grids, model)
    reported = [(p, r.text) for p, r in zip(payloads, reads) if r.text is not None]
    assert reported == []


def test_text_codes_are_known_as_foreign(held_out):
    """The shipped models reject text codes and say they hold something else (a stream then leaves them be);
    numbers with damage beyond repair are not foreign."""
    _, texts = text_codes(100, seed=6)
    reads = read_grids(texts)
    assert all(r.text is None for r in reads) and sum(r.foreign for r in reads) >= 95
    numbers, grids = held_out
    damaged = grids[:50].copy()
    damaged[:, 9:, 9:] = 1 - damaged[:, 9:, 9:]  # far beyond what Reed-Solomon corrects
    assert not any(r.foreign for r in read_grids(np.concatenate([grids[:50], damaged])))


def test_wrong_modules_never_give_a_wrong_number(model, held_out):
    numbers, grids = held_out
    rng = np.random.default_rng(3)
    damaged = grids.copy()
    for grid in damaged:
        rows, cols = np.unravel_index(rng.choice(441, 12, replace=False), (21, 21))
        grid[rows, cols] ^= 1
    texts = [r.text for r in read_grids(damaged, model)]
    truth = ["%06d" % n for n in numbers]
    assert sum(t == w for t, w in zip(texts, truth)) >= 0.95 * len(truth)
    assert all(t is None or t == w for t, w in zip(texts, truth))


def test_random_and_blank_grids_give_no_read(model):
    rng = np.random.default_rng(4)
    grids = np.concatenate([rng.random((50, 21, 21)), np.zeros((1, 21, 21)), np.ones((1, 21, 21))])
    assert all(r.text is None for r in read_grids(grids, model))


def test_bad_grids_raise_value_error(model):
    with pytest.raises(ValueError, match="21x21"):
        decode_grid(np.zeros((20, 21)), model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decode_grid(np.full((21, 21), 2.0), model)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(ModelError) as error:
        load_model(corrupt)
    assert "not a livereader model file" in str(error.value) and "\n" not in str(error.value)


CARD = {"config": ModelConfig().to_dict(), "calibration": {"weights": [0, 0, 0, 0], "bias": 0}, "input": UNMASKED}


def test_torchscript_equals_eager(tmp_path):
    torch.manual_seed(0)
    eager = GridReader(ModelConfig()).eval()
    path = tmp_path / "m.pt"
    export(eager, path, CARD)
    x = torch.rand(64, 1, 21, 21)
    loaded = load_model(path)
    with torch.inference_mode():
        assert torch.allclose(loaded.module(x), eager(x), atol=1e-5)
        assert torch.allclose(loaded.batched(x), eager(x), atol=1e-5)  # the oneDNN copy for batches
        assert torch.allclose(loaded.module.read(x), eager.read(x), atol=1e-5)  # the reader's entry point
        assert torch.allclose(loaded.batched.read(x), eager.read(x), atol=1e-5)
    assert np.allclose(loaded(x[:2, 0].numpy()), eager.read(x[:2]).detach().numpy(), atol=1e-5)  # its decoder's


def test_a_six_digit_model_that_reads_masked_grids_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    export(GridReader(ModelConfig()).eval(), path, {key: value for key, value in CARD.items() if key != "input"})
    with pytest.raises(ModelError, match="train it again") as error:
        load_model(path)
    assert "\n" not in str(error.value)


def test_a_model_with_the_wrong_output_shape_is_refused_at_load(tmp_path):
    path = tmp_path / "five.pt"
    export(GridReader(ModelConfig()).eval(), path, {**CARD, "config": {**CARD["config"], "digits": 9}})
    with pytest.raises(ModelError, match="shape") as error:
        load_model(path)
    assert "\n" not in str(error.value)


def test_the_six_digit_cnn_runs_only_on_level_h_grids_unmasked():
    from livereader.decode.decoders import SIX_DIGIT
    from livereader.decode.verify import VerifyOptions
    from livereader.symbol import encode, read_format

    batches, seen = [], []

    def network(grids: np.ndarray) -> np.ndarray:  # a CNN sure of 654321
        batches.append(len(grids))
        seen.extend(grids)
        log_probs = np.full((len(grids), 2, 1000), np.log(1e-6))
        log_probs[:, 0, 654], log_probs[:, 1, 321] = 0.0, 0.0
        return log_probs

    grids = np.stack([encode("654321", level) for level in "HMHQ"]).astype(np.float32)
    evidence = SIX_DIGIT.evidence(network, grids, VerifyOptions())
    assert batches == [2]  # one call, for the two level-H grids
    mask = read_format(grids[0]).mask
    assert np.array_equal(seen[0], np.abs(grids[0] - mask_patterns()[mask]))  # unmasked by the format's mask
    assert np.array_equal(seen[0], seen[1])
    assert [e.text for e in evidence] == ["654321", None, "654321", None]
    assert [e.format.level for e in evidence] == list("HMHQ")


@pytest.mark.parametrize("name", ["default.pt", "numeric.pt"])
def test_a_loaded_model_runs_and_saves_as_its_file(name, tmp_path):
    """Both copies that loading keeps (small batches, oneDNN batches) give the file's outputs, and the small-batch
    module is the file's own: it saves and loads again (livereader-train --calibrate writes it)."""
    import io

    from livereader.decode.reader import default_model_path

    loaded, stored = load_model(default_model_path(name)), torch.jit.load(str(default_model_path(name))).eval()
    grids = torch.rand(6, 1, 21, 21)

    def run(module):  # the method that the model's decoder reads
        return getattr(module, loaded.decoder.method)(grids)

    with torch.inference_mode():
        assert torch.equal(run(loaded.module), run(stored))
        assert torch.allclose(run(loaded.batched), run(stored), atol=1e-4)
    buffer = io.BytesIO()
    torch.jit.save(loaded.module, buffer)
    buffer.seek(0)
    with torch.inference_mode():
        assert torch.equal(run(torch.jit.load(buffer)), run(stored))


def test_a_grid_that_holds_text_says_so_whichever_model_was_surer():
    from livereader.decode.reader import FOREIGN
    from livereader.decode.verify import VerifyOptions
    from livereader.symbol import encode

    for text, level in (("AB12", "H"), ("HELLO", "H"), ("hello", "M")):
        read = decode_grid(encode(text, level).astype(np.float32))
        assert (read.text, read.foreign, read.error) == (None, True, FOREIGN)
    read = decode_grid(encode("HELLO", "H").astype(np.float32), options=VerifyOptions(content="any"))
    assert (read.text, read.error, read.payload.content) == ("HELLO", None, "alphanumeric")
