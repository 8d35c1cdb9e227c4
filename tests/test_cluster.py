"""Video files on a local Ray instance (--ray): each file's serial lines, a killed task run again, Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import interruptible
from test_batch import _serial, _video

pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytestmark = pytest.mark.slow  # each test starts a Ray instance (seconds)

_TASK = "ray::_read_file"  # a Ray worker's process title while it runs a file's task


def _processes(title: str) -> list[int]:
    """Processes whose command line starts with ``title`` (a Ray worker's title names the task it runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title.encode()):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile
            pass
    return found


def _ray_processes() -> set[int]:
    return set(_processes("ray::")) | {pid for name in ("raylet", "gcs_server") for pid in _by_name(name)}


def _by_name(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == name:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_ray_gives_each_file_its_serial_lines_though_a_task_is_killed(tmp_path):
    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    for name, text in (("a", "123456"), ("b", "654321"), ("c", "777000")):
        _video(folder / f"{name}.avi", text, frames=400)
    before = _ray_processes()
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--video", str(folder), "--ray",
                                "--jsonl", f"{out}{os.sep}", "--output", str(tmp_path / "annotated")],
                               stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    killed, deadline = None, time.monotonic() + 120
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        running = _processes(_TASK)
        if running:
            time.sleep(0.3)  # mid-file
            os.kill(running[0], signal.SIGKILL)
            killed = running[0]
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=300)
    assert killed is not None, "no task was seen running"
    assert process.returncode == 0, stderr
    assert "3 files, " in stderr.splitlines()[-1] and "--ray local" in stderr.splitlines()[-1]
    for path in sorted(folder.glob("*.avi")):  # the killed file's lines once, as a serial run gives them
        assert (out / f"{path.name}.jsonl").read_text() == _serial(path, tmp_path)
        assert (tmp_path / "annotated" / f"{path.stem}.mp4").stat().st_size > 10_000
    time.sleep(1)
    assert _ray_processes() <= before  # the local instance and its workers ended with the run


def test_ctrl_c_stops_a_ray_run_with_its_lines_finalised_and_no_worker_left(tmp_path):
    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    for name in "abcd":
        _video(folder / f"{name}.avi", "424242", frames=3000)  # runs that cannot end before the signal
    before = _ray_processes()
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", "--video", str(folder), "--ray",
                                "--jsonl", f"{out}{os.sep}"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_processes(_TASK)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(4)  # the tasks have loaded the models and read
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
    stopped = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert time.monotonic() - stopped < 20 and "Traceback" not in stderr
    written = [p.read_text() for p in sorted(out.glob("*.jsonl")) if p.stat().st_size]
    assert len(written) == 2  # the two files being read; no task started after the signal
    assert all(text.endswith("}\n") and 0 < text.count("\n") < 3000 for text in written)  # whole lines, cut short
    time.sleep(1)
    assert _ray_processes() <= before
