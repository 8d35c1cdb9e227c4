"""Many video files: every file's JSON lines as a serial run gives them, failures reported, progress, Ctrl-C."""

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import interruptible

from livereader.batch import video_files
from livereader.cli import main
from livereader.symbol import encode


def _video(path, text: str, frames: int = 30) -> None:
    """A code drifting right, 640x480 at 10 frames/s: every frame searched whole within its interval (100 ms),
    also on a machine busy with the other workers, so a run's lines are those of a serial run."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    frame = np.full((480, 640), 230, np.uint8)
    frame[100:274, 200:374] = 230 - 200 * np.kron(np.pad(encode(text, "H"), 4), np.ones((6, 6), np.uint8))[:174, :174]
    for i in range(frames):
        writer.write(cv2.cvtColor(np.roll(frame, 2 * i, axis=1), cv2.COLOR_GRAY2BGR))
    writer.release()


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, text in (("a", "123456"), ("b", "654321"), ("c", "777000")):
        _video(folder / f"{name}.avi", text)
    return folder


def _serial(path, tmp_path) -> str:
    out = tmp_path / f"{path.name}.serial.jsonl"
    assert main(["--video", str(path), "--jsonl", str(out)]) == 0
    return out.read_text()


def test_folders_globs_and_names_give_the_video_files(videos):
    (videos / "notes.txt").write_text("not a video")
    named = [str(videos / n) for n in ("a.avi", "b.avi", "c.avi")]
    assert video_files([str(videos)]) == named
    assert video_files([str(videos / "[ab].avi"), str(videos / "c.avi"), named[0]]) == named  # each file once
    relative = os.path.relpath(named[0])
    assert video_files([relative]) == [relative]  # named as given: the JSON lines' source


def test_one_process_writes_each_file_as_a_serial_run_merged_or_per_source(videos, tmp_path, capsys):
    merged, folder = tmp_path / "all.jsonl", tmp_path / "out"
    assert main(["--video", str(videos), "--jobs", "1", "--jsonl", str(merged)]) == 0
    assert main(["--video", str(videos / "*.avi"), "--jobs", "1", "--jsonl", f"{folder}{os.sep}"]) == 0
    text = merged.read_text()
    for path in sorted(videos.glob("*.avi")):
        serial = _serial(path, tmp_path)
        assert serial and serial in text  # each file's lines together, in frame order
        assert (folder / f"{path.name}.jsonl").read_text() == serial
    assert "3 files, 90 frames, 90 reads" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_give_each_file_its_serial_lines_and_report_a_corrupt_one(videos, tmp_path):
    (videos / "broken.avi").write_bytes(b"no video here" * 100)
    folder = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "livereader.cli", "--video", str(videos), "--jobs", "2",
                           "--jsonl", f"{folder}{os.sep}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1  # a source failed; the others were read
    assert f"cannot open video: {videos / 'broken.avi'}" in done.stderr
    assert f"failed: {videos / 'broken.avi'}" in done.stderr.splitlines()[-1]
    for path in sorted(videos.glob("[abc].avi")):
        assert (folder / f"{path.name}.jsonl").read_text() == _serial(path, tmp_path)


def _on_terminal(command: list[str]) -> bytes:
    """What a command writes to stderr on a terminal of 100 columns."""
    main_end, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(main_end, 4096)
        except OSError:  # the terminal's other end closed: the run ended
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=300)
    return seen


@pytest.mark.slow
def test_a_terminal_sees_the_progress_bar_and_a_pipe_does_not(videos):
    command = [sys.executable, "-m", "livereader.cli", "--video", str(videos), "--jobs", "1", "--jsonl", os.devnull]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and "frame/s" not in piped.stderr and "files" in piped.stderr
    seen = _on_terminal(command)
    assert b"3/3 files" in seen and b"frame/s" in seen and b"100%" in seen
    one = _on_terminal(command[:4] + [str(videos / "a.avi"), "--jsonl", os.devnull])  # one video: its frames
    assert b"a.avi: 100%" in one and b"30/30" in one
    assert one.rstrip().endswith(b"frames/s")  # the summary line after the bar
    image = videos / "page.png"
    cv2.imwrite(str(image), np.pad(255 - 255 * encode("9", "H"), 4, constant_values=255).repeat(6, 0).repeat(6, 1))
    assert b"images: 100%" in _on_terminal(command[:3] + ["--image", str(image), "--jsonl", os.devnull])


@pytest.mark.slow
@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_every_worker_promptly_and_finalises_the_lines(tmp_path, sent, code):
    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    for name in "abcd":
        _video(folder / f"{name}.avi", "424242", frames=3000)  # runs that cannot end before the signal
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--video", str(folder), "--jobs", "2",
                                "--jsonl", f"{out}{os.sep}"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size for p in out.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)  # until the workers read
    if sent == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    else:
        process.send_signal(signal.SIGTERM)  # as a service manager stops the run
    stopped = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert time.monotonic() - stopped < 20 and "Traceback" not in stderr
    written = [p.read_text() for p in sorted(out.glob("*.jsonl")) if p.stat().st_size]
    assert 1 <= len(written) <= 2  # the two files being read; no file started after the signal
    assert all(text.endswith("}\n") and text.count("\n") < 3000 for text in written)  # whole lines, cut short
    deadline = time.monotonic() + 10
    with pytest.raises(ProcessLookupError):  # no worker left running (each gone within seconds)
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)
            time.sleep(0.2)


@pytest.mark.slow
def test_one_video_in_two_segments_gives_the_serial_lines_with_the_track_joined_across_the_seam(tmp_path, capsys):
    path = tmp_path / "long.avi"
    _video(path, "123456", frames=150)  # one code in every frame: it crosses the seam at frame 75
    for once in ([], ["--once"]):
        serial, split = tmp_path / "serial.jsonl", tmp_path / "split.jsonl"
        assert main(["--video", str(path), "--jsonl", str(serial), *once]) == 0
        assert main(["--video", str(path), "--jobs", "2", "--jsonl", str(split), *once]) == 0
        assert "1 files, 150 frames, 150 reads" in capsys.readouterr().err.splitlines()[-1]
        assert split.read_text() == serial.read_text()
        assert len(split.read_text().splitlines()) == (1 if once else 150)  # one track, reported once


def test_frames_reads_a_range_of_a_video_with_the_frames_indices(tmp_path, capsys):
    path = tmp_path / "a.avi"
    _video(path, "123456", frames=40)
    assert main(["--video", str(path), "--frames", "30:", "--jsonl", "-"]) == 0
    assert [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()] == list(range(30, 40))
    assert main(["--video", str(path), "--frames", "5:8", "--jsonl", "-"]) == 0
    assert [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()] == [5, 6, 7]
    with pytest.raises(SystemExit):
        main(["--video", str(path), "--frames", "8:5"])
    assert main(["--demo", "--frames", "1:2"]) == 2


@pytest.mark.slow
def test_images_on_two_workers_give_the_serial_lines_in_order_and_the_same_annotated_images(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(9):  # codes of three numbers, some repeated (--dedupe), one image in a subfolder
        page = np.pad(255 - 255 * encode(["123456", "222222", "987654"][i % 3], "H"), 4, constant_values=255)
        page = cv2.resize(page.astype(np.uint8), None, fx=4 + i % 3, fy=4 + i % 3, interpolation=cv2.INTER_NEAREST)
        noisy = np.clip(np.pad(page, 40, constant_values=255) + rng.normal(0, 8, (page.shape[0] + 80,) * 2), 0, 255)
        cv2.imwrite(str(folder / f"{i}.png"), noisy.astype(np.uint8))
    cv2.imwrite(str(folder / "sub" / "x.png"), np.full((50, 50), 255, np.uint8))
    (folder / "broken.png").write_bytes(b"not an image")
    names = [str(folder), str(folder / "sub" / "x.png")]
    for extra in ([], ["--dedupe", "-1"]):
        runs = {}
        for jobs in ("1", "2"):
            out, annotated = tmp_path / f"{jobs}{len(extra)}.jsonl", tmp_path / f"annotated{jobs}{len(extra)}"
            done = subprocess.run([sys.executable, "-m", "livereader.cli", "--image", *names, "--jobs", jobs,
                                   "--jsonl", str(out), "--output", str(annotated), *extra],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 1 and f"{folder / 'broken.png'} could not be decoded" in done.stderr
            runs[jobs] = out.read_text(), sorted(p.relative_to(annotated) for p in annotated.rglob("*.png"))
        assert runs["2"] == runs["1"]  # the serial lines, in the images' order; the same annotated images
        assert len(runs["1"][1]) == 10 and ("sub/x.png" in {str(p) for p in runs["1"][1]})
        lines = runs["1"][0].splitlines()
        assert len(lines) == (3 if extra else 9)  # a read a code image; with --dedupe -1 each number once


def _workers(parent: int) -> list[int]:
    """The spawned worker processes of a run (its children running multiprocessing's spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent_of = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent_of == parent and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):  # not a process, or one that ended meanwhile
            pass
    return found


@pytest.mark.slow
def test_a_worker_that_dies_costs_no_file(tmp_path):
    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    for name, text in (("a", "123456"), ("b", "654321"), ("c", "777000")):
        _video(folder / f"{name}.avi", text, frames=300)
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--video", str(folder), "--jobs", "2",
                                "--jsonl", f"{out}{os.sep}"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size for p in out.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the workers read
    workers = _workers(process.pid)
    assert workers, "no worker seen"
    os.kill(workers[0], signal.SIGKILL)  # as the memory killer would
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    for path in sorted(folder.glob("*.avi")):  # every file read whole, the ones in flight again
        assert (out / f"{path.name}.jsonl").read_text() == _serial(path, tmp_path)
