"""Video files read on a Ray cluster: ``livereader --video DIR --ray [ADDRESS]`` (the ``[ray]`` extra).

The same per-file jobs as ``--jobs`` (:mod:`livereader.batch`), each a Ray task that needs one CPU: the task reads
its file as ``livereader --video FILE`` reads it alone, into scratch files on its worker, and returns the JSON
lines (and the annotated video's bytes, with ``--output``) to this process, which writes them to the run's
outputs. A task whose worker dies (killed, out of memory, its node lost) is run again from the start by Ray, up to
:data:`RETRIES` times; its lines come back once, from the run that finished, so none is lost or doubled.

Where the tasks run: with no address a local Ray instance is started for the run and shut down after it (its CPUs
are the machine's); with one (``auto``, ``HOST:6379`` or ``ray://HOST:10001``) the run joins that cluster and
leaves it running. Every worker reads the files and model files by the paths given, from the directory this
command runs in, so on a cluster they must lie on a file system that every node mounts at the same path, and
every node needs livereader installed (``pip install "livereader[ray]"``: the default models ship in the package).

Ctrl-C or SIGTERM stops the tasks within half a second (they ask at every frame, the run's answer is kept that long):
each finalises the lines of its file, and the tasks that start after it read nothing, as with ``--jobs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from livereader.batch import Done, Job, failed, one_line

RETRIES = 3  # runs of a task again after its worker died
_STOP_POLL = 0.5  # seconds between a task's looks at whether the run was stopped
_loaded: dict[tuple[str, ...] | None, Any] = {}  # a worker's models, by the model files that gave them


class _Board:
    """A Ray actor between the run and its tasks: frames read (for the progress bar), and whether to stop."""

    def __init__(self) -> None:
        self.frames, self.stopped = 0, False

    def report(self, frames: int) -> None:
        self.frames += frames

    def take(self) -> int:
        """The frames reported since the last call."""
        frames, self.frames = self.frames, 0
        return frames

    def stop(self) -> None:
        self.stopped = True

    def is_stopped(self) -> bool:
        return self.stopped


class _Reports:
    """A task's progress reports, sent to the board without waiting."""

    def __init__(self, board: Any):
        self.board = board

    def put(self, frames: int) -> None:
        self.board.report.remote(frames)


class _Stop:
    """Whether the run was stopped, asked of the board at most every :data:`_STOP_POLL` seconds."""

    def __init__(self, board: Any):
        self.board, self.asked, self.stopped = board, 0.0, False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now - self.asked >= _STOP_POLL:
            # waited on as a future, not with ray.get: a task blocked in ray.get lends its CPU to the next task,
            # which would start a third file on 2 CPUs
            self.asked, self.stopped = now, bool(self.board.is_stopped.remote().future().result(timeout=60))
        return self.stopped


@contextlib.contextmanager
def _in_directory(directory: str) -> Iterator[None]:
    """The block run in ``directory`` (relative paths as the command was given them), the worker's own after."""
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


def _read_file(job: Job, models: list[str] | None, board: Any, directory: str) -> tuple[Done, str, bytes | None]:
    """A Ray task: one file read on a worker (models loaded once a worker) into scratch files; its Done, JSON lines
    and annotated video (None without ``--output``)."""
    from livereader import batch
    from livereader.decode.reader import load_models

    key = tuple(models) if models else None
    if key not in _loaded:
        _loaded[key] = load_models(models)
    batch._start(_loaded[key], _Reports(board), _Stop(board), one_thread=True)
    with tempfile.TemporaryDirectory(prefix="livereader-") as scratch, _in_directory(directory):
        local = replace(job, jsonl=Path(scratch) / "lines.jsonl",
                        video=Path(scratch) / f"annotated{job.video.suffix}" if job.video else None)
        done = batch._read(local)
        lines = local.jsonl.read_text() if local.jsonl.exists() else ""
        video = local.video.read_bytes() if local.video is not None and local.video.exists() else None
    return done, lines, video


def _keep(job: Job, lines: str, video: bytes | None) -> None:
    """A task's outputs written where the run's outputs for its file go."""
    job.jsonl.write_text(lines)
    if job.video is not None and video is not None:
        job.video.write_bytes(video)


def on_ray(jobs: list[Job], address: str, models: list[str] | None,
           progress: Callable[[int], None]) -> Generator[Done, None, None]:
    """Each job's result as it finishes, read by Ray tasks (``address``: a cluster's, or "" for a local instance
    started for the run). However this ends, no task starts after it and every task of the run has ended."""
    import ray

    handler = signal.getsignal(signal.SIGTERM)
    started_here = not ray.is_initialized()
    if started_here:
        _answers(address)
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
        except Exception as error:  # an address that is not one, a cluster that does not answer
            raise OSError(f"cannot {'join Ray at ' + address if address else 'start Ray'}: {one_line(error)}") from None
        finally:
            signal.signal(signal.SIGTERM, handler)  # ray.init puts its own in place: the run's stays
    board: Any = ray.remote(_Board).options(num_cpus=0).remote()
    task = ray.remote(_read_file).options(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)
    paths = [os.path.abspath(model) for model in models] if models else None
    running = {task.remote(job, paths, board, os.getcwd()): job for job in jobs}
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            progress(ray.get(board.take.remote()))
            for ref in ready:
                yield _result(running.pop(ref), ref)
        progress(ray.get(board.take.remote()))  # the reports that came after the last look
    finally:
        if running:  # stopped: each task ends its file at its next report, no task starts
            board.stop.remote()
            finished, _ = ray.wait(list(running), num_returns=len(running), timeout=60)
            for ref in finished:
                _result(running.pop(ref), ref)
            for ref in running:
                ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def _answers(address: str, timeout: float = 5.0) -> None:
    """OSError where a cluster's address (``HOST:PORT`` or ``ray://HOST:PORT``) takes no connection within
    ``timeout`` seconds: Ray itself would keep trying for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # "", "auto" (the local machine's running cluster): left to Ray
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise OSError(f"cannot join Ray at {address}: {error.strerror or error}") from None


def _result(job: Job, ref: Any) -> Done:
    """A finished task's Done, its outputs kept; a task that failed (its worker died more than RETRIES times, or an
    error) as a failed file."""
    import ray

    try:
        done, lines, video = ray.get(ref)
    except Exception as error:
        return failed(job, error, last=True)  # a task's error ends a Ray traceback
    _keep(job, lines, video)
    return done
