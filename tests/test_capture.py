"""The capture loop from real sources: an mp4 written by OpenCV, an MJPEG stream over HTTP, image folders, bad input."""

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from conftest import interruptible

from livereader.cli import main
from livereader.live import capture
from livereader.symbol import encode
from livereader.synth.scene import DemoStream


def _scenes(count: int):
    stream = DemoStream(seed=7)
    return [stream.next() for _ in range(count)]


def _write_video(path, scenes, fourcc: str) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (640, 480))
    assert writer.isOpened()
    for scene in scenes:
        writer.write(scene.image)
    writer.release()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _read_share(lines, scenes) -> float:
    """Share of the scenes' codes read in their own frame; fails on any wrong number."""
    truth = {(i, c.text) for i, s in enumerate(scenes) for c in s.codes}
    reads = {(d["frame"], d["text"]) for d in lines if d["status"] == "read"}
    assert reads <= truth
    return len(reads) / len(truth)


def test_video_mp4_gives_json_lines_and_annotated_video(tmp_path, capsys):
    scenes = _scenes(12)
    _write_video(tmp_path / "in.mp4", scenes, "mp4v")
    out, jsonl = tmp_path / "out.mp4", tmp_path / "reads.jsonl"
    assert main(["--video", str(tmp_path / "in.mp4"), "--jsonl", str(jsonl), "--output", str(out)]) == 0
    lines = _lines(jsonl)
    assert set(lines[0]) >= {"frame", "source", "text", "confidence", "corners", "status"}
    assert len(lines[0]["corners"]) == 4 and all(len(p) == 2 for p in lines[0]["corners"])
    assert _read_share(lines, scenes) >= 0.8
    annotated = cv2.VideoCapture(str(out))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 12
    ok, frame = annotated.read()
    assert ok and frame.shape == (480, 640, 3)
    assert "12 frames" in capsys.readouterr().err


def test_corrupt_frame_is_skipped_and_truncated_video_is_an_error(tmp_path, capsys):
    scenes = _scenes(12)
    _write_video(tmp_path / "in.avi", scenes, "MJPG")
    data = bytearray((tmp_path / "in.avi").read_bytes())
    starts = [i for i in range(len(data) - 3) if data[i:i + 3] == b"\xff\xd8\xff"]  # one JPEG per frame
    assert len(starts) == 12
    corrupt = data.copy()
    corrupt[starts[5]:starts[5] + 1000] = bytes(1000)
    (tmp_path / "corrupt.avi").write_bytes(bytes(corrupt))
    jsonl = tmp_path / "reads.jsonl"
    assert main(["--video", str(tmp_path / "corrupt.avi"), "--jsonl", str(jsonl)]) == 0
    frames = {d["frame"] for d in _lines(jsonl)}
    assert 5 not in frames and {4, 6, 11} <= frames
    assert "frame 5 of" in capsys.readouterr().err
    (tmp_path / "truncated.avi").write_bytes(bytes(data[: starts[7]]))
    (tmp_path / "truncated.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    for name in ("truncated.avi", "truncated.mp4"):
        assert main(["--video", str(tmp_path / name), "--jsonl", str(jsonl)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("livereader: error:"), err


def test_images_and_folders_in_sorted_order(tmp_path):
    scenes = _scenes(3)
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, scene in zip((2, 0, 1), scenes):
        cv2.imwrite(str(folder / f"shot{i}.png"), scene.image)
    jsonl, out = tmp_path / "reads.jsonl", tmp_path / "annotated"
    assert main(["--image", str(folder), "--jsonl", str(jsonl), "--output", str(out)]) == 0
    lines = _lines(jsonl)
    by_frame = {d["frame"]: d["source"] for d in lines}
    assert by_frame == {i: str(folder / f"shot{i}.png") for i in range(3)}
    assert sorted(p.name for p in out.iterdir()) == ["shot0.png", "shot1.png", "shot2.png"]


@pytest.mark.parametrize("argv", [["--image", "MISSING"], ["--video", "MISSING.mp4"], ["--camera", "9"],
                                  ["--camera", "http://127.0.0.1:9/none.mjpg"], ["--image", "NOTANIMAGE"]])
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, argv):
    if argv[1] == "NOTANIMAGE":
        (tmp_path / "junk.png").write_bytes(b"not an image")
        argv = ["--image", str(tmp_path / "junk.png")]
    assert main(argv + ["--nodisplay", "--jsonl", str(tmp_path / "out.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("livereader:") and "Traceback" not in err[0], err


@pytest.mark.slow
def test_camera_url_reads_an_mjpeg_stream_and_says_when_it_ends(tmp_path, capsys, serve_mjpeg):
    scenes = _scenes(10)
    url = serve_mjpeg([s.image for s in scenes])
    jsonl = tmp_path / "reads.jsonl"
    assert main(["--camera", url, "--nodisplay", "--jsonl", str(jsonl)]) == 1
    lines = _lines(jsonl)
    assert {d["source"] for d in lines} == {url}
    assert _read_share(lines, scenes) >= 0.7
    assert np.ptp([d["frame"] for d in lines]) >= 8  # the whole stream came through
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ended" in err[0]


@pytest.mark.slow
def test_a_stalled_stream_is_an_error_within_the_timeout(tmp_path, capsys, serve_mjpeg):
    url = serve_mjpeg([s.image for s in _scenes(3)], stall=30.0)
    started = time.monotonic()
    assert main(["--camera", url, "--nodisplay", "--timeout", "2", "--jsonl", str(tmp_path / "r.jsonl")]) == 1
    assert time.monotonic() - started < 2 + 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stalled" in err[0]


@pytest.mark.slow
def test_a_fast_stream_is_read_at_its_newest_frame(serve_mjpeg):
    """Frames served faster than they are read (120 frames/s, each stamped with its number by a code): each
    result belongs to a frame at most 2 frames behind the newest frame served when the result comes out."""
    frames = []
    for index in range(600):
        frame = np.full((480, 640, 3), 230, np.uint8)
        modules = np.pad(encode("%06d" % index, "H"), 4)
        frame[100:274, 200:374] = (230 - 200 * np.kron(modules, np.ones((6, 6), np.uint8)))[:, :, None]
        frames.append(frame)
    sent: list[float] = []
    url = serve_mjpeg(frames, interval=1 / 120, sent=sent)
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--camera", url, "--nodisplay", "--nofusion",
                                "--jsonl", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    lags = []
    for line in process.stdout:
        now = time.monotonic()
        entry = json.loads(line)
        if entry["text"]:
            assert int(entry["text"]) == entry["frame"]  # the index is the source's
            lags.append(sum(t <= now for t in sent) - 1 - entry["frame"])
        if len(lags) == 200:
            process.send_signal(signal.SIGINT)
            break
    _, err = process.communicate(timeout=30)
    assert len(lags) == 200 and max(lags) <= 2, lags
    assert process.returncode == 130 and "dropped" in err


@pytest.mark.slow
def test_reconnect_connects_again_and_says_so(serve_mjpeg):
    frames = [np.full((480, 640, 3), 200, np.uint8)] * 5
    url = serve_mjpeg(frames, interval=0.05)  # each connection: 5 frames, then the server closes it
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--camera", url, "--nodisplay", "--reconnect",
                                "--jsonl", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    time.sleep(8)  # start-up, then at least two connections
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert err.count("reconnecting") >= 1 and "Traceback" not in err
    summary = [line for line in err.splitlines() if "frames," in line]
    assert summary and int(summary[0].split()[1]) > 5  # frames from more than one connection


@pytest.mark.slow
def test_an_undecodable_frame_in_a_stream_is_skipped(tmp_path, capsys, serve_mjpeg):
    scenes = _scenes(8)
    frames = [s.image for s in scenes]
    frames[3] = b"\xff\xd8\xff" + bytes(500)  # served as it is: a JPEG that does not decode
    url = serve_mjpeg(frames)
    jsonl = tmp_path / "reads.jsonl"
    assert main(["--camera", url, "--nodisplay", "--nofusion", "--jsonl", str(jsonl)]) == 1  # ends with the stream
    read = {d["frame"] for d in _lines(jsonl) if d["text"]}
    assert 3 not in read and {4, 5, 6, 7} & read  # reading went on after it
    assert "ended after 8 frames" in capsys.readouterr().err


@pytest.mark.slow
def test_one_thread_decodes_every_video_frame_as_the_default_does_on_one_thread(tmp_path):
    scenes = _scenes(6)
    _write_video(tmp_path / "in.mp4", scenes, "mp4v")
    _write_video(tmp_path / "in.avi", scenes, "MJPG")
    script = (
        "import sys, cv2, numpy as np\n"
        "from livereader.live import capture\n"
        "threads, real = [], cv2.VideoCapture\n"
        "def recording(*args):\n"
        "    opened = real(*args)\n"
        "    threads.append(opened.get(cv2.CAP_PROP_N_THREADS))  # before any read (a thread may read it)\n"
        "    return opened\n"
        "cv2.VideoCapture = recording\n"
        "def decoded(path):\n"
        "    frames = capture.video(path)\n"
        "    return threads[-1], [f.image for f in frames]\n"
        "paths = sys.argv[1:]\n"
        "before = [decoded(p) for p in paths]\n"
        "capture.one_thread()\n"
        "after = [decoded(p) for p in paths]\n"
        "assert cv2.getNumThreads() == 1, cv2.getNumThreads()\n"
        "assert [count for count, _ in after] == [1, 1], after\n"
        "assert [len(f) for _, f in before] == [len(f) for _, f in after] == [6, 6]\n"
        "assert all(np.array_equal(a, b) for (_, x), (_, y) in zip(before, after) for a, b in zip(x, y))\n"
    )  # in a process of its own: the setting is process-wide
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.mp4"), str(tmp_path / "in.avi")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _source(count: int, log: list, problem: Exception | None = None) -> Iterator[capture.Frame]:
    """Frames 0..count-1 of a made-up file source that notes the thread that decodes each and whether it was
    closed, then raises ``problem``."""
    try:
        for index in range(count):
            log.append(threading.current_thread())
            yield capture.Frame(index, "made-up", np.full((2, 2, 3), index, np.uint8), 30.0)
        if problem is not None:
            raise problem
    finally:
        log.append("closed")


def test_read_ahead_gives_every_frame_in_order_then_what_the_source_raised():
    log: list = []
    frames = capture.read_ahead(_source(7, log, capture.SourceError("video ended early")), depth=2)
    seen = []
    with pytest.raises(capture.SourceError, match="ended early"):
        for frame in frames:
            seen.append((frame.index, int(frame.image[0, 0, 0])))
    assert seen == [(i, i) for i in range(7)]
    assert log[-1] == "closed" and threading.current_thread() not in log[:-1]  # decoded on a thread of its own


def test_read_ahead_stops_and_closes_its_source_when_the_reader_stops_early():
    log: list = []
    before = set(threading.enumerate())
    frames = capture.read_ahead(_source(1000, log), depth=3)
    assert [next(frames).index for _ in range(2)] == [0, 1]
    (decoder,) = set(threading.enumerate()) - before
    frames.close()
    assert log[-1] == "closed"  # closed before close() returned: a video's capture is released
    assert set(log[:-1]) == {decoder}  # decoded on that thread
    assert len(log) - 1 <= 2 + 3 + 1  # decoded at most the depth ahead of what was taken (and one in hand)
    assert not decoder.is_alive()


def test_read_ahead_decodes_on_the_calling_thread_after_one_thread(monkeypatch):
    monkeypatch.setattr(capture, "_decode_threads", 1)  # as one_thread() sets it, without its process-wide setting
    log: list = []
    assert [f.index for f in capture.read_ahead(_source(3, log))] == [0, 1, 2]
    assert log == [threading.current_thread()] * 3 + ["closed"]


def test_a_video_read_ahead_and_left_early_releases_its_capture(tmp_path, monkeypatch):
    _write_video(tmp_path / "in.avi", _scenes(8), "MJPG")
    opened: list = []
    real = cv2.VideoCapture

    def recording(*args):
        opened.append(real(*args))
        return opened[-1]

    monkeypatch.setattr(cv2, "VideoCapture", recording)
    frames = capture.video(str(tmp_path / "in.avi"))
    assert [next(frames).index for _ in range(2)] == [0, 1]
    assert opened[-1].isOpened()
    frames.close()  # the reader stops (q, --frames): the decoding thread ends and releases the capture
    assert not opened[-1].isOpened()
