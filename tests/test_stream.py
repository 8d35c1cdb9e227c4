"""Streams: what the overlay draws is what the current frame supports."""

import json

import cv2
import numpy as np
import pytest

from livereader.cli import main
from livereader.symbol import encode


def _swap_frames(count: int = 60, swap: int = 30) -> list[np.ndarray]:
    """A numeric code that a text code replaces in place at frame ``swap``, 6 px modules, a little noise."""
    rng = np.random.default_rng(0)
    frames = []
    for index in range(count):
        grid = encode("482916" if index < swap else "HELLO", "H")
        frame = np.full((480, 640), 230, np.uint8)
        frame[150 : 150 + 29 * 6, 230 : 230 + 29 * 6] = 230 - 200 * np.kron(np.pad(grid, 4), np.ones((6, 6), np.uint8))
        noisy = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
        frames.append(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR))
    return frames


def test_a_code_replaced_in_place_never_shows_the_old_number(model):
    from livereader.live.stream import StreamReader

    stream = StreamReader(model)
    shown = [[c.shown.text for c in stream.read(frame)] for frame in _swap_frames()]
    assert all(texts == ["482916"] for texts in shown[:30])
    assert all("482916" not in texts for texts in shown[30:])


def test_the_annotated_swap_video_draws_no_read_over_the_text_code(tmp_path, capsys):
    video, annotated = tmp_path / "swap.avi", tmp_path / "annotated.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for frame in _swap_frames():
        writer.write(frame)
    writer.release()
    assert main(["--video", str(video), "--output", str(annotated), "--jsonl", "-"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["text"] for line in lines if line["frame"] >= 30} == {None}
    capture, green = cv2.VideoCapture(str(annotated)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        b, g, r = frame.astype(int).transpose(2, 0, 1)
        green.append(int((g - np.maximum(r, b) > 60).sum()))  # outline, corner dot and label of a read
    assert len(green) == 60
    assert min(green[:30]) > 200 and max(green[30:]) < 20


def test_a_new_code_that_shows_at_half_size_is_found_within_the_half_size_schedule(model):
    """A code with 8 px modules appears in the frame after a whole-frame search: the frames between whole-frame
    searches look only where tracked codes are, so the next half-size search finds it, ``scout_every`` frames
    after the first search and within ``scout_every`` frames of its first; then it is followed in every frame."""
    from livereader.live.stream import StreamOptions, StreamReader

    schedule = StreamOptions(full_every=8, scout_every=4)  # half-size searches between the full-resolution ones
    every = schedule.scout_every
    empty = np.full((720, 1280), 235, np.uint8)
    shown = empty.copy()
    shown[40 : 40 + 29 * 8, 60 : 60 + 29 * 8] = 255 - 220 * np.kron(np.pad(encode("123456", "H"), 4), np.ones((8, 8)))
    stream = StreamReader(model, stream=schedule)
    found = [any(c.result is not None and c.result.text == "123456" for c in stream.read(frame))
             for frame in [empty] + [shown] * (2 * every)]
    assert found.index(True) == every  # shown from frame 1 on: found by the next half-size search
    assert all(found[every:])


def _motion_blurred(frame: np.ndarray, length: int, degrees: float) -> np.ndarray:
    """``frame`` blurred by a linear motion of ``length`` pixels at ``degrees`` from the x axis."""
    kernel, middle = np.zeros((length, length), np.float32), length // 2
    dx, dy = np.cos(np.radians(degrees)) * middle, np.sin(np.radians(degrees)) * middle
    cv2.line(kernel, (int(middle - dx), int(middle - dy)), (int(middle + dx), int(middle + dy)), 1.0, 1)
    return cv2.filter2D(frame, -1, kernel / kernel.sum())


def test_a_stream_that_tracked_a_text_code_reads_a_motion_blurred_code_after_it():
    """A text code is tracked (known to hold no number), then a number blurred by a motion of 15 px shows elsewhere,
    whose sheared finders only the sensitive searches group: the stream locates it there (through the public API),
    and reports no number it did not read."""
    import livereader

    text = np.full((480, 640), 230, np.uint8)
    text[20:165, 20:165] = 230 - 200 * np.kron(np.pad(encode("HELLO", "H"), 4), np.ones((5, 5), np.uint8))
    number = np.full((480, 640), 230, np.uint8)
    number[200:432, 330:562] = 230 - 200 * np.kron(np.pad(encode("123456", "H"), 4), np.ones((8, 8), np.uint8))
    reader = livereader.Reader()
    for _ in range(4):
        assert [c.text for c in reader.read(text, return_errors=True)] == [None]
    codes = [c for _ in range(8) for c in reader.read(_motion_blurred(number, 15, 60), return_errors=True)]
    assert codes and all(cv2.pointPolygonTest(np.float32(c.corners), (446, 316), False) > 0 for c in codes)
    assert {c.text for c in codes} <= {"123456", None}


@pytest.mark.slow
def test_a_paced_stream_reads_every_noisy_clip_that_its_frames_read_alone(model):
    """Noisy clips (a code that some frames alone read, :func:`livereader.synth.scene.noisy_clip`): a stream paced
    to a frame interval its whole-frame searches fit (1 s) reads every clip that reading each frame alone reads,
    with no wrong read (``livereader-bench --recall`` measures the share of clips read)."""
    from livereader.live.stream import StreamOptions, StreamReader
    from livereader.pipeline import read_frame
    from livereader.synth.scene import noisy_clip

    rng = np.random.default_rng(5)
    alone, paced, texts = [], [], set()
    for text, frames in (noisy_clip(rng) for _ in range(8)):
        alone.append(any(r.text == text for frame in frames for r in read_frame(frame, model)))
        stream = StreamReader(model, stream=StreamOptions(interval=1.0))
        read = {c.result.text for frame in frames for c in stream.read(frame) if c.result and c.result.text}
        paced.append(text in read)
        texts |= read - {text}
    assert sum(alone) >= 4 and all(p for a, p in zip(alone, paced) if a) and not texts


def test_a_stream_whose_whole_frame_searches_outlast_its_interval_keeps_to_its_schedule(model, monkeypatch):
    """Paced to an interval no search fits, a stream searches the whole frame only on its schedule once it has
    measured a search (its first frame pays for first calls and is not measured: the second is searched whole)."""
    import livereader.live.stream as stream_module
    from livereader.live.stream import StreamOptions, StreamReader

    wholes, read_passes = [], stream_module.read_passes

    def logged(grey, model, options, hints):
        wholes.append(hints.whole)
        return read_passes(grey, model, options, hints)

    monkeypatch.setattr(stream_module, "read_passes", logged)
    options = StreamOptions(interval=1e-9)
    stream = StreamReader(model, stream=options)
    for frame in _swap_frames(12, 12):
        stream.read(frame)
    assert wholes == [i % options.scout_every == 0 or i == 1 for i in range(12)]
    wholes.clear()
    stream = StreamReader(model, stream=StreamOptions(interval=1.0))
    for frame in _swap_frames(12, 12):
        stream.read(frame)
    assert wholes == [True] * 12


def test_a_paced_stream_finds_a_new_close_up_on_its_schedule_and_follows_it_in_every_frame(model):
    """A blurred close-up (30 px modules, blur of a third of a module) that only the close-up levels find: frames
    searched whole only for the pacing leave close-ups to the schedule, so it is read from the next scheduled
    frame on, and then in every frame while it is tracked."""
    from livereader.live.stream import StreamOptions, StreamReader

    empty = np.full((960, 1280), 230, np.uint8)
    close = empty.copy()
    grid = np.kron(np.pad(encode("123456", "H"), 1), np.ones((30, 30), np.uint8))
    close[: grid.shape[0], 300 : 300 + grid.shape[1]] = 230 - 200 * grid
    close = cv2.GaussianBlur(close, (0, 0), 10)
    options = StreamOptions(interval=1.0)
    stream = StreamReader(model, stream=options)
    read = [any(c.result is not None and c.result.text == "123456" for c in stream.read(frame))
            for frame in [empty] + [close] * 10]
    assert read == [i >= options.scout_every for i in range(11)]
