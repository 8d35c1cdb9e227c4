"""Smoke training end to end, resuming, evaluation command, and one-line errors."""

import json

import torch

from livereader.reader import load_model
from livereader.train import main


def test_smoke_training_exports_a_loadable_model_with_card(tmp_path):
    args = ["--numbers", "400", "--steps", "12", "--batch", "32", "--eval-size", "quick", "--workers", "1",
            "--out-dir", str(tmp_path), "--name", "smoke", "--checkpoint", str(tmp_path / "smoke.ckpt")]
    assert main(args) == 0
    model = load_model(tmp_path / "smoke.pt")
    card = json.loads((tmp_path / "smoke.json").read_text())
    assert card["command"] == "livereader-train " + " ".join(args)
    assert card["seed"] == 0 and card["training"]["steps"] == 12
    assert {"clean", "flips", "foreign", "calibration", "speed"} <= set(card["evaluation"])
    assert 0 < card["parameters"] < 1_000_000 and model.digits == 6
    # Resuming from the finished checkpoint with more steps continues from step 12 to 14.
    assert main(args[:2] + ["--steps", "14", "--resume"] + args[4:]) == 0
    assert torch.load(tmp_path / "smoke.ckpt", weights_only=False)["step"] == 14


def test_eval_of_a_missing_model_is_one_line_error(tmp_path, capsys):
    assert main(["--eval", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("livereader-train: error: model file not found") and err.count("\n") == 1
