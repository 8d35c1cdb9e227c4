"""Smoke training end to end, resuming, evaluation command, and one-line errors."""

import json

import pytest
import torch

from livereader.decode.reader import load_model
from livereader.train import augment as augmenting
from livereader.train.cli import main


def _args(tmp_path, *extra):
    return ["--numbers", "400", "--steps", "12", "--batch", "32", "--eval-size", "quick", "--workers", "1",
            "--out-dir", str(tmp_path), "--name", "smoke", "--checkpoint", str(tmp_path / "smoke.ckpt"), *extra]


@pytest.mark.slow
def test_smoke_training_exports_a_loadable_model_with_card(tmp_path):
    args = _args(tmp_path)
    assert main(args) == 0
    model = load_model(tmp_path / "smoke.pt")
    card = json.loads((tmp_path / "smoke.json").read_text())
    assert card["command"] == "livereader-train " + " ".join(args)
    assert card["seed"] == 0 and card["training"]["steps"] == 12
    assert {"clean", "flips", "foreign", "calibration", "speed"} <= set(card["evaluation"])
    assert 0 < card["parameters"] < 1_000_000 and model.metadata["config"]["digits"] == 6


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real_augment = augmenting.augment  # the decoder's loss looks it up at every step

    def interrupt_at_step_8(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real_augment(*args, **kwargs)

    monkeypatch.setattr(augmenting, "augment", interrupt_at_step_8)
    assert main(_args(tmp_path, "--checkpoint-every", "5")) == 1
    assert "resume with --resume" in capsys.readouterr().err
    assert torch.load(tmp_path / "smoke.ckpt", weights_only=False)["step"] == 5
    monkeypatch.setattr(augmenting, "augment", real_augment)
    assert main(_args(tmp_path, "--checkpoint-every", "5", "--resume")) == 0
    assert torch.load(tmp_path / "smoke.ckpt", weights_only=False)["step"] == 12
    assert load_model(tmp_path / "smoke.pt").metadata["config"]["digits"] == 6


def test_eval_of_a_missing_model_is_one_line_error(tmp_path, capsys):
    assert main(["--eval", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("livereader-train: error: model file not found") and err.count("\n") == 1


@pytest.mark.slow
def test_eval_prints_the_figures_and_writes_the_plot(tmp_path, capsys):
    import cv2

    from livereader.decode.reader import default_model_path

    plot = tmp_path / "flips.png"
    assert main(["--eval", str(default_model_path()), "--eval-size", "quick", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "clean held-out grids: 100.0000% exact" in out
    assert "foreign version-1 codes: 0 numbers reported" in out
    assert out.count("k=") == 7
    assert cv2.imread(str(plot)).shape == (440, 720, 3)
