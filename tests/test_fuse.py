"""Temporal fusion: the frame stack reads codes that single frames miss, and never reports a code that has gone."""

import numpy as np
import pytest

from livereader.live.fuse import FrameStack, FuseOptions, read_fused
from livereader.pipeline import READ, read_frame
from livereader.symbol import encode
from livereader.synth.scene import HARD_CLIPS, clip


@pytest.fixture(scope="module")
def models():
    from livereader import load_models

    return load_models()


@pytest.mark.slow
def test_fusion_reads_noisy_clips_that_single_frames_miss(models):
    rng = np.random.default_rng(21)
    single, fused, truth = set(), set(), set()
    for _ in range(4):
        frames = clip(HARD_CLIPS["noise130"], 15, 1, rng).frames
        truth |= {c.text for c in frames[0].codes}
        stack = FrameStack()
        for scene in frames:
            single |= {r.text for r in read_frame(scene.image, models) if r.status == READ}
            fused |= {r.text for r in read_fused(scene.image, stack, models) if r.status == READ}
    assert fused <= truth and single <= truth  # no wrong number either way
    assert len(fused) > len(single) and single <= fused


def _frame(text: str, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A 400x400 grey frame with one code at 8 px per module in the same place, plus Gaussian noise."""
    modules = np.pad(encode(text, "H"), 4)
    image = 255.0 - 200.0 * np.kron(modules, np.ones((8, 8)))
    frame = np.full((400, 400), 255.0)
    frame[50 : 50 + image.shape[0], 50 : 50 + image.shape[1]] = image
    return np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("check, reported", [(0.35, False), (1.0, True)])
def test_a_code_replaced_in_place_is_not_reported_from_older_frames(models, check, reported):
    rng = np.random.default_rng(22)
    stack = FrameStack(FuseOptions(max_disagreement=check))
    for _ in range(3):
        assert [r.text for r in read_fused(_frame("123456", 3, rng), stack, models)] == ["123456"]
    replaced = _frame("654321", 160, rng)  # too noisy to read alone; the mean still shows the old code
    assert all(r.status != READ for r in read_frame(replaced, models))
    texts = [r.text for r in read_fused(replaced, stack, models) if r.status == READ]
    assert ("123456" in texts) == reported  # the check keeps it out; without it, the old number comes back
    assert "654321" not in texts


def test_the_capture_loop_fuses_video_frames_unless_told_not_to(tmp_path, capsys):
    import json

    import cv2

    from livereader.cli import main

    frames = clip(HARD_CLIPS["noise130"], 15, 1, np.random.default_rng(23)).frames
    path = tmp_path / "noisy.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for scene in frames:
        writer.write(scene.image)
    writer.release()
    runs = {}
    for flags in ([], ["--nofusion"]):
        assert main(["--video", str(path), "--jsonl", "-", *flags]) == 0
        runs[bool(flags)] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fused, alone = runs[False], runs[True]
    truth = frames[0].codes[0].text
    assert {d["text"] for d in fused + alone if d["text"]} <= {truth}
    assert all(d["fused"] == 0 for d in alone)
    assert any(d["fused"] > 0 and d["text"] == truth for d in fused)
    assert sum(d["status"] == "read" for d in fused) > sum(d["status"] == "read" for d in alone)
