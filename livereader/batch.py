"""Many video files on every core: ``livereader --video A B DIR/ 'glob*' --jobs N``.

Each file is read exactly as ``livereader --video FILE --nodisplay`` reads it alone (:func:`livereader.cli.run`):
its JSON lines are those of a serial run of that file, frames in order, each line naming its ``source``. Files
are read in ``--jobs`` worker processes (spawned, each loading the models once and reading on one thread); the
JSON lines of a file are passed on when the file is done: all to one stream (``--jsonl FILE`` or stdout, file
after file as they finish) or one file per source (``--jsonl DIR/``). A file that cannot be read is reported on
one line and the others go on; the exit code is 1 when any failed. On a terminal a progress bar shows files and
frames done, frames/s and time left (tqdm; none when stderr is not a terminal).

Ctrl-C stops the workers: each finalises the JSON lines of the file it was reading, which are passed on, and the
run ends with exit code 130.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
PROGRESS_EVERY = 25  # frames a worker reads between its progress reports


class BatchError(Exception):
    """Sources or outputs that a batch cannot run with (a one-line message)."""


def video_files(names: list[str]) -> list[Path]:
    """Files, folders (their video files, not recursive) and glob patterns -> the video files, in the order given
    (a folder's and a pattern's sorted); BatchError for a name that matches nothing."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()))
        elif path.exists() or not glob.has_magic(name):
            files.append(path)  # a missing file fails when it is read, like any other unreadable file
        else:
            matched = sorted(Path(p) for p in glob.glob(name) if Path(p).is_file())
            if not matched:
                raise BatchError(f"no file matches {name}")
            files.extend(matched)
    if not files:
        raise BatchError(f"no video files in {' '.join(names)}")
    return files


@dataclass(frozen=True)
class Job:
    """One file to read: its argument list for :func:`livereader.cli.run`, where its JSON lines go."""

    source: Path
    argv: tuple[str, ...]
    jsonl: Path


@dataclass(frozen=True)
class Done:
    """A file read: its exit status, frames, reads, and what it said on stderr."""

    source: Path
    status: int
    frames: int
    reads: int
    stderr: str


_worker: dict[str, Any] = {}  # a worker process's models and progress queue (set by _start_worker)


def _start_worker(models: list[str] | None, progress: Any) -> None:
    """A worker's start: SIGINT left to the parent (which stops the workers), one thread, the models loaded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    from livereader.decode.reader import load_models

    torch.set_num_threads(1)
    _worker.update(models=load_models(models), progress=progress)


def _read(job: Job) -> Done:
    """Read one file in a worker (or in this process) as ``livereader --video FILE`` reads it alone."""
    from livereader.cli import make_parser, run

    args = make_parser().parse_args(list(job.argv))
    args.video = args.video[0]  # one file, as main passes it to run
    counts = _Counts(_worker["progress"])
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        status = run(args, _worker["models"], counts)
    return Done(job.source, status, counts.frames, counts.reads, said.getvalue())


class _Counts:
    """A worker's :class:`livereader.cli.Progress`: frames and reads counted, frames reported to the parent."""

    def __init__(self, reports: Any):
        self.reports, self.frames, self.reads = reports, 0, 0

    def frame(self, reads: int) -> None:
        self.frames += 1
        self.reads += reads
        if self.frames % PROGRESS_EVERY == 0:
            self.reports.put(PROGRESS_EVERY)

    def close(self) -> None:
        self.reports.put(self.frames % PROGRESS_EVERY)


def frame_count(path: Path) -> int:
    """The frames a video file says it holds (0 where it cannot be opened)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if capture.isOpened() else 0
    finally:
        capture.release()


def _per_source_names(sources: list[Path]) -> list[str]:
    """A JSON-lines file name per source (``NAME.jsonl``; the folder's name joined on where two share a name)."""
    names = [f"{s.name}.jsonl" for s in sources]
    if len(set(names)) < len(names):
        names = ["_".join(s.resolve().parts[-2:]) + ".jsonl" for s in sources]
    if len(set(names)) < len(names):
        raise BatchError("two sources would write the same JSON-lines file: give them distinct names")
    return names


class _Sink:
    """Where the files' JSON lines go: one stream (a file or stdout) or a folder of one file per source."""

    def __init__(self, target: str | None, sources: list[Path], scratch: Path):
        self.folder = Path(target) if target and (target.endswith(os.sep) or Path(target).is_dir()) else None
        self.stream: IO[str] | None = None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.places = [self.folder / name for name in _per_source_names(sources)]
        else:
            self.places = [scratch / f"{i}.jsonl" for i in range(len(sources))]
        taken = {s.resolve() for s in sources}
        merged = [Path(target)] if target and target != "-" and self.folder is None else []
        if any(p.resolve() in taken for p in self.places + merged):
            raise BatchError("an output would overwrite an input")
        if merged:
            self.stream = open(merged[0], "w")  # noqa: SIM115 (open for the run, closed by close())
        elif self.folder is None:
            self.stream = sys.stdout

    def passed_on(self, place: Path) -> None:
        """A file's JSON lines, written (to a folder: already in place)."""
        if self.stream is not None and place.exists():
            with open(place) as lines:
                shutil.copyfileobj(lines, self.stream)
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()


def _jobs(args: argparse.Namespace, sources: list[Path], places: list[Path]) -> list[Job]:
    """One job a file: the flags that change what a file's reading gives, passed on as given."""
    shared: list[str] = ["--nodisplay", "--content", args.content, "--timeout", str(args.timeout)]
    shared += ["--once"] * args.once + ["--nofusion"] * args.nofusion + ["--soft"] * args.soft
    if args.dedupe is not None:
        shared += ["--dedupe", str(args.dedupe)]
    if args.calibration:
        shared += ["--calibration", args.calibration]
    output = Path(args.output) if args.output else None
    # an annotated video per source, named as its JSON lines are (NAME.jsonl -> NAME's stem .mp4)
    names = [name.removesuffix(".jsonl") for name in _per_source_names(sources)]
    videos = [output / f"{Path(name).stem}.mp4" for name in names] if output else []
    if len(set(videos)) < len(videos):
        raise BatchError("two sources would write the same annotated video: give them distinct names")
    jobs = []
    for index, (source, place) in enumerate(zip(sources, places)):
        argv = ["--video", str(source), "--jsonl", str(place), *shared]
        if output is not None:
            argv += ["--output", str(videos[index])]
        jobs.append(Job(source, tuple(argv), place))
    return jobs


def progress_bar(total_frames: int, description: str) -> Any:
    """A progress bar of frames on stderr (tqdm: frames done of the total, frames/s, time left); nothing where
    stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total_frames or None, unit="frame", desc=description, disable=None, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def _results(jobs: list[Job], workers: int, models: list[str] | None,
             progress: Callable[[int], None]) -> Iterator[Done]:
    """Each job's result as it finishes: in this process for one worker, else in a pool of spawned processes."""
    if workers == 1:
        _start_worker_here(models, _Calls(progress))
        for job in jobs:
            yield _read(job)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process whose torch threads already run
    manager = context.Manager()
    updates_shared = manager.Queue()
    stop = threading.Event()

    def relay() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                progress(updates_shared.get(timeout=0.2))

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(models, updates_shared))
    try:
        futures: dict[Future[Done], Job] = {executor.submit(_read, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as error:  # a worker that died (killed, out of memory) or failed to start
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                yield Done(futures[future].source, 1, 0, 0, f"livereader: error: {reason}\n")
    except KeyboardInterrupt:
        for process in list(getattr(executor, "_processes", {}).values()):  # each finalises its file's lines
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        stop.set()
        relaying.join()
        manager.shutdown()


class _Calls:
    """A progress queue in this process: each report is a call."""

    def __init__(self, call: Callable[[int], None]):
        self.put = call


def _start_worker_here(models: list[str] | None, progress: Any) -> None:
    """:func:`_start_worker` in this process: Ctrl-C stays this process's own."""
    import torch

    from livereader.decode.reader import load_models

    torch.set_num_threads(1)
    _worker.update(models=load_models(models), progress=progress)


def read_many(args: argparse.Namespace, names: list[str]) -> int:
    """Read every video file that ``names`` give, ``args.jobs`` at a time; returns the exit code."""
    sources = video_files(names)
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(sources)))
    if args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="livereader-"))
    sink = _Sink(args.jsonl, sources, scratch)
    jobs = _jobs(args, sources, sink.places)
    bar = progress_bar(sum(frame_count(s) for s in sources), f"0/{len(sources)} files")
    status, failed, reads, started = 0, [], 0, time.perf_counter()
    frames = [0]  # every frame read, of finished and stopped files alike (the workers' progress reports)

    def progressed(count: int) -> None:
        frames[0] += count
        bar.update(count)

    passed: set[Path] = set()
    try:
        for done in _results(jobs, workers, args.model, progressed):
            reads += done.reads
            bar.set_description(f"{len(passed) + 1}/{len(sources)} files")
            for line in done.stderr.splitlines():  # warnings and errors; each file's summary is in the total
                if not line.startswith("livereader: ") or " frames, " not in line:
                    bar.write(line, file=sys.stderr)
            job = next(job for job in jobs if job.source == done.source and job.jsonl not in passed)
            sink.passed_on(job.jsonl)
            passed.add(job.jsonl)
            if done.status in (130, 143):  # Ctrl-C reached the file read in this process
                raise KeyboardInterrupt
            if done.status != 0:
                failed.append(str(done.source))
    except KeyboardInterrupt:
        status = 130
        for job in jobs:  # the lines that the stopped workers finalised
            if job.jsonl not in passed:
                sink.passed_on(job.jsonl)
    finally:
        bar.close()
        sink.close()
        shutil.rmtree(scratch, ignore_errors=True)
    rate = frames[0] / max(time.perf_counter() - started, 1e-9)
    print(f"livereader: {len(sources)} files, {frames[0]} frames, {reads} reads, {rate:.1f} frames/s, --jobs {workers}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return status or (1 if failed else 0)
