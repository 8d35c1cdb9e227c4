"""The command line's outputs and its ends: no input is ever overwritten, odd images are read, signals and a
closed pipe end a run cleanly."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import interruptible

from livereader.cli import main
from livereader.symbol import encode


def _code_image(text: str = "123456", module_px: int = 6) -> np.ndarray:
    return 255 - 220 * np.kron(np.pad(encode(text, "H"), 4), np.ones((module_px, module_px), np.uint8))


def _video(path, frames: int = 60) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    frame = np.full((480, 640), 230, np.uint8)
    frame[100:274, 200:374] = _code_image()
    for _ in range(frames):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def test_no_output_overwrites_an_input(tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), _code_image())
    video = tmp_path / "v.avi"
    _video(video, 3)
    before = {path: path.read_bytes() for path in (image, video)}
    assert main(["--image", str(image), "--output", str(tmp_path)]) == 2  # the annotated copy would be a.png
    assert main(["--image", str(image), "--jsonl", str(image)]) == 2
    assert main(["--video", str(video), "--output", str(video)]) == 2
    assert main(["--video", str(video), "--jsonl", str(video)]) == 2
    assert {path: path.read_bytes() for path in before} == before
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all("would overwrite an input" in line for line in err)


def test_annotated_images_keep_distinct_names(tmp_path):
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), _code_image())
    out = tmp_path / "out"
    assert main(["--image", str(tmp_path / "d1" / "x.png"), str(tmp_path / "d2" / "x.png"), "--output", str(out),
                 "--jsonl", str(tmp_path / "lines.jsonl")]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["d1/x.png", "d2/x.png"]


def test_a_bad_output_is_found_before_the_first_frame(tmp_path, capsys):
    video = tmp_path / "v.avi"
    _video(video, 3)
    assert main(["--video", str(video), "--output", str(tmp_path / "missing" / "out.mp4")]) == 1
    assert main(["--video", str(video), "--output", str(tmp_path / "out.gif")]) == 2
    assert capsys.readouterr().out == ""  # no frame was read


def test_each_still_image_is_a_scene_of_its_own(tmp_path, monkeypatch):
    import livereader.live.overlay as overlay

    cv2.imwrite(str(tmp_path / "a.png"), _code_image("123456"))
    text = _code_image("HELLO")  # a code that reads as no number, in the same place in the next file
    cv2.imwrite(str(tmp_path / "b.png"), text)
    drawn, draw = [], overlay.draw

    def logged(image, shown, fps=None):
        drawn.append((shown, fps))
        return draw(image, shown, fps)

    monkeypatch.setattr(overlay, "draw", logged)
    assert main(["--image", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--output", str(tmp_path / "out"),
                 "--jsonl", str(tmp_path / "lines.jsonl")]) == 0
    assert [[r.text for r in shown] for shown, _ in drawn] == [["123456"], [None]]  # no label leaks into b.png
    assert [fps for _, fps in drawn] == [None, None]  # and no frame rate on still images


def test_tiny_and_transparent_images_are_read_beside_good_ones(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a_1x1.png"), np.zeros((1, 1), np.uint8))
    cv2.imwrite(str(tmp_path / "b_2px.png"), np.zeros((50, 2), np.uint8))
    code = _code_image("654321")
    rgba = np.zeros(code.shape + (4,), np.uint8)  # black modules; light ones fully transparent (and black)
    rgba[..., 3] = np.where(code < 128, 255, 0)
    cv2.imwrite(str(tmp_path / "c_rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "d_good.png"), _code_image())
    assert main(["--image", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["text"] for line in lines) == ["123456", "654321"]


def test_bad_sources_say_what_is_wrong(tmp_path, capsys):
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64)).release()
    png = tmp_path / "x.png"
    cv2.imwrite(str(png), _code_image())
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    assert main(["--video", str(nothing)]) == 2  # a folder of videos (livereader.batch) that holds none
    assert main(["--video", str(empty)]) == 1
    assert main(["--grid", str(png)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"no video files in {nothing}" in err[0] and str(empty) in err[1] and str(png) in err[2]


def _wait_for_library(pid: int, name: str, timeout: float = 60) -> None:
    """Wait until the process has mapped a shared library whose path holds ``name`` (Linux: its /proc maps),
    so that a signal lands while it starts up, however busy the machine; elsewhere wait 0.3 s."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    while name not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)


def _run(args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "livereader.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_run_with_its_outputs_finalised(tmp_path, sent, code):
    video, out = tmp_path / "long.avi", tmp_path / "annotated.mp4"
    _video(video, 3000)
    process = _run(["--video", str(video), "--output", str(out), "--jsonl", "-"])
    first = process.stdout.readline()  # reading has begun: a frame's line is out (however busy the machine)
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in (first + stdout).splitlines()]  # every line whole
    assert 0 < len(lines) < 3000
    capture = cv2.VideoCapture(str(out))
    played = 0
    while capture.read()[0]:
        played += 1
    assert played >= len({line["frame"] for line in lines}) - 1  # the mp4 was finalised: it plays


@pytest.mark.slow
def test_a_closed_pipe_ends_the_run_quietly(tmp_path):
    video = tmp_path / "v.avi"
    _video(video, 300)
    process = subprocess.run(f"{sys.executable} -m livereader.cli --video {video} --jsonl - | head -1",
                             shell=True, capture_output=True, text=True, timeout=120)
    assert len(process.stdout.splitlines()) == 1
    assert process.stderr == ""


@pytest.mark.slow
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path):
    video = tmp_path / "v.avi"
    _video(video, 3000)  # a run that cannot end before the signal comes
    process = _run(["--video", str(video), "--jsonl", "-"])
    _wait_for_library(process.pid, "libtorch")  # importing torch (then loading the models)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
