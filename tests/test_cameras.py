"""Several live sources at once: each read on its own, a stalled one reported while the other goes on, one window
tiling their views."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import interruptible

from livereader.cameras import tiled
from livereader.cli import main
from livereader.symbol import encode


def _frames(text: str, count: int, size=(480, 640)) -> list[np.ndarray]:
    """A code drifting right on a light page."""
    page = np.full(size, 230, np.uint8)
    page[60:234, 100:274] = 230 - 200 * np.kron(np.pad(encode(text, "H"), 4), np.ones((6, 6), np.uint8))[:174, :174]
    return [np.dstack([np.roll(page, 2 * i, axis=1)] * 3) for i in range(count)]


def test_tiles_scale_each_view_to_one_height_in_rows():
    views = [np.zeros((480, 640, 3), np.uint8), np.zeros((240, 320, 3), np.uint8), None]
    assert tiled(views, 240).shape == (480, 640, 3)  # 2 columns: 320 + 320 wide, 2 rows
    assert tiled(views[:2], 240).shape == (240, 640, 3)
    assert tiled(views[2:], 240).shape == (240, 320, 3)  # not seen yet: a grey view


def test_the_cameras_are_one_source_each_with_its_own_tracks(serve_mjpeg, tmp_path, capsys):
    one = serve_mjpeg(_frames("123456", 15), interval=0.05)
    two = serve_mjpeg(_frames("654321", 15), interval=0.05)
    out = tmp_path / "reads.jsonl"
    assert main(["--camera", one, "--camera", two, "--nodisplay", "--jsonl", str(out)]) == 1  # both streams end
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    texts = {source: {d["text"] for d in lines if d["source"] == source} for source in (one, two)}
    assert texts == {one: {"123456"}, two: {"654321"}}
    assert {d["track"] for d in lines} == {0}  # each source's own tracker
    err = capsys.readouterr().err.splitlines()
    assert sum("ended" in line for line in err) == 2 and "2 sources" in err[-1]


@pytest.mark.slow
def test_a_stalled_source_is_reported_within_the_timeout_while_the_other_keeps_reading(serve_mjpeg):
    stalled = serve_mjpeg(_frames("111111", 3), stall=60.0)
    flowing = serve_mjpeg(_frames("222222", 100), interval=0.1)  # 10 s of frames
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--camera", stalled, "--camera", flowing,
                                "--nodisplay", "--timeout", "2", "--jsonl", "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    seen: dict[str, list] = {"out": [], "err": []}

    def collect(stream, name):
        for line in stream:
            seen[name].append((time.monotonic(), line))

    readers = [threading.Thread(target=collect, args=(process.stdout, "out")),
               threading.Thread(target=collect, args=(process.stderr, "err"))]
    for reader in readers:
        reader.start()
    process.wait(timeout=120)
    for reader in readers:
        reader.join()
    assert process.returncode == 1  # both failed in the end: one stalled, one ended
    stall = [t for t, line in seen["err"] if stalled in line and "stalled" in line]
    assert len(stall) == 1, seen["err"]
    lines = [(t, json.loads(line)) for t, line in seen["out"]]
    first_stalled = min(t for t, d in lines if d["source"] == stalled)
    assert stall[0] - first_stalled < 2 + 3  # reported within the timeout (a second's margin each side)
    after = [d for t, d in lines if t > stall[0]]
    assert len(after) >= 20 and {d["source"] for d in after} == {flowing}  # the other went on reading
    assert {d["text"] for t, d in lines if d["source"] == flowing} == {"222222"}
