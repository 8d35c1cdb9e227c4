"""The live window under a virtual X server: it opens, draws the demo stream, and closes on q."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.x11,
              pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                 reason="needs Xvfb and xdotool (Debian: apt-get install xvfb xdotool)")]


@pytest.fixture
def display():
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    assert server.poll() is None, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(5)


def _xdotool(display, *args) -> str:
    result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                            text=True, timeout=30)
    return result.stdout.strip()


def _reader_window(display, *args) -> tuple[subprocess.Popen, str]:
    """``livereader *args`` on the display, and its window once it shows."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    reader = subprocess.Popen([sys.executable, "-m", "livereader.cli", *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    window = _xdotool(display, "search", "--sync", "--onlyvisible", "--name", "^livereader$")
    if not window:
        reader.kill()
    assert window, "no livereader window appeared"
    return reader, window


def _quit(display, reader: subprocess.Popen, window: str) -> str:
    """Press q in the reader's window; its stderr once it has ended (exit code 0 checked)."""
    try:
        _xdotool(display, "windowactivate", "--sync", window.split()[0])
        _xdotool(display, "key", "q")
        _, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    return err


def test_window_opens_draws_and_closes_on_q(display, tmp_path):
    jsonl = tmp_path / "reads.jsonl"
    reader, window = _reader_window(display, "--demo", "--jsonl", str(jsonl))
    geometry = _xdotool(display, "getwindowgeometry", window.split()[0])
    assert "640x480" in geometry  # the window shows whole demo frames
    deadline = time.time() + 60
    while time.time() < deadline and len(jsonl.read_text().splitlines()) < 20:
        time.sleep(0.2)
    err = _quit(display, reader, window)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert any(d["status"] == "read" for d in lines)
    frames = max(d["frame"] for d in lines) + 1
    assert f"livereader: {frames} frames" in err or f"livereader: {frames + 1} frames" in err  # ran until q


def test_the_window_closes_on_q_while_the_stream_stalls(display, serve_mjpeg):
    import numpy as np

    frames = [np.full((480, 640, 3), 200, np.uint8)] * 3
    url = serve_mjpeg(frames, stall=60.0)
    reader, window = _reader_window(display, "--camera", url, "--timeout", "50", "--jsonl", os.devnull)
    time.sleep(2.0)  # the three frames are shown; the stream now stalls
    started = time.monotonic()
    _quit(display, reader, window)
    assert time.monotonic() - started < 10  # closed by q, not by the 50 s timeout


def test_display_shows_a_video_in_the_window(display, tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "grey.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(3000):
        writer.write(np.full((240, 320, 3), 128, np.uint8))
    writer.release()
    reader, window = _reader_window(display, "--video", str(video), "--display", "--jsonl", os.devnull)
    assert "320x240" in _xdotool(display, "getwindowgeometry", window.split()[0])
    _quit(display, reader, window)


def test_two_cameras_share_one_window_that_tiles_their_views(display, serve_mjpeg):
    import numpy as np

    one = serve_mjpeg([np.full((480, 640, 3), 200, np.uint8)] * 3, stall=60.0)
    two = serve_mjpeg([np.full((240, 320, 3), 100, np.uint8)] * 3, stall=60.0)
    reader, window = _reader_window(display, "--camera", one, "--camera", two, "--timeout", "50",
                                    "--jsonl", os.devnull)
    time.sleep(2.0)  # both streams' frames are shown
    assert "1280x480" in _xdotool(display, "getwindowgeometry", window.split()[0])  # two views 480 high
    err = _quit(display, reader, window)
    assert "2 sources" in err
