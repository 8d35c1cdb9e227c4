"""Many video files on every core: ``livereader --video A B DIR 'glob*' --jobs N``.

Each file is read as ``livereader --video FILE --nodisplay`` reads it alone (:func:`livereader.cli.run`): its
JSON lines are those of a serial run of that file (frames in order, ``source`` as the file was named), as long as
the machine keeps up with each video's frame rate (a stream is paced to it). Files are read in ``--jobs`` worker
processes (spawned, each loading the models once and reading on one thread; with one job, in this process), at
most one file a worker at a time. A file's JSON lines are passed on when the file is done: to one stream
(``--jsonl FILE`` or stdout) in the order the files finish, or to one file per source in a folder
(``--jsonl DIR``: an existing folder, or a path ending in ``/``). A file that cannot be read is reported and the
others go on; the exit code is 1 when any failed. On a terminal a progress bar shows files and frames done, frames/s
and time left (tqdm; none when stderr is not a terminal, or when the JSON lines go to the same terminal).

Ctrl-C or SIGTERM stops the workers at their next frame: each finalises the JSON lines of the file it was reading,
which are passed on, no further file starts, and the run ends with exit code 130 (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import io
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
PROGRESS_EVERY = 25  # frames a worker reads between its progress reports


class BatchError(Exception):
    """Sources or outputs that a batch cannot run with (a one-line message; exit code 2)."""


def video_files(names: list[str]) -> list[str]:
    """Files, folders (their video files, not recursive) and glob patterns -> the video files, named as given
    (a folder's and a pattern's sorted), each once; BatchError for a name that matches nothing."""
    files: list[str] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files.extend(os.path.join(name, p.name) for p in sorted(path.iterdir())
                         if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        elif path.exists() or not glob.has_magic(name):
            files.append(name)  # a missing file fails when it is read, like any other unreadable file
        else:
            matched = sorted(p for p in glob.glob(name) if Path(p).is_file())
            if not matched:
                raise BatchError(f"no file matches {name}")
            files.extend(matched)
    unique: dict[str, str] = {}  # each path once, as first named (links to one file are files of their own)
    for name in files:
        unique.setdefault(os.path.abspath(name), name)
    if not unique:
        raise BatchError(f"no video files in {' '.join(names)}")
    return list(unique.values())


@dataclass(frozen=True)
class Job:
    """One file to read: its place in the batch, the flags that change what its reading gives, where its JSON
    lines and its annotated video (or None) go."""

    index: int
    source: str  # a video file, or the images' first and last (for messages)
    flags: tuple[str, ...]
    jsonl: Path
    video: Path | None
    images: tuple[str, ...] = ()  # images: the names given to --image (the flags say which of them to read)

    def argv(self) -> list[str]:
        """The argument list for :func:`livereader.cli.run`: ``livereader --video SOURCE ...`` of this file alone,
        or ``livereader --image NAMES ... --frames START:STOP``."""
        reading = ["--image", *self.images] if self.images else ["--video", self.source]
        annotated = ["--output", str(self.video)] if self.video else []
        return [*reading, "--jsonl", str(self.jsonl), *self.flags, *annotated]


@dataclass(frozen=True)
class Done:
    """A file read (or not started: status None): its exit status, frames, reads, and what it said on stderr."""

    index: int
    status: int | None
    frames: int
    reads: int
    stderr: str


_worker: dict[str, Any] = {}  # a worker's models, progress reports and stop event (set by _start_worker)


def _start_worker(models: list[str] | None, reports: Any, stop: Any, one_thread: bool) -> None:
    """A worker process's start: Ctrl-C and SIGTERM left to the parent, which stops the workers (a file being
    read still finalises its lines at SIGTERM: :func:`livereader.cli.run` handles it), the models; with
    ``one_thread`` (a worker on every core), OpenCV and video decoding on one thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _start(models, reports, stop, one_thread=one_thread)


def _start(models: Any, reports: Any, stop: Any, *, one_thread: bool = False) -> None:
    """Load the models and keep them, the progress reports and the stop event for :func:`_read`, torch on one
    thread; with ``one_thread`` (a worker process in a pool with one on every core), OpenCV and video decoding on
    one thread too (:func:`livereader.live.capture.one_thread`)."""
    import torch

    from livereader.decode.reader import load_models
    from livereader.live import capture

    torch.set_num_threads(1)
    if one_thread:
        capture.one_thread()
    loaded = models if isinstance(models, tuple) else load_models(models)
    _worker.update(models=loaded, reports=reports, stop=stop)


class _Counts:
    """A worker's :class:`livereader.cli.Progress`: frames and reads counted, frames reported to the parent; the
    reading stops (as at Ctrl-C) once the parent asks the workers to stop."""

    def __init__(self, reports: Any, stop: Any, every: int):
        self.reports, self.stop, self.every, self.frames, self.reads = reports, stop, every, 0, 0

    def frame(self, reads: int) -> None:
        self.frames += 1
        self.reads += reads
        if self.frames % self.every == 0:
            self.reports.put(self.every)
        if self.stop.is_set():
            raise KeyboardInterrupt

    def close(self) -> None:
        self.reports.put(self.frames % self.every)


def _read(job: Job) -> Done:
    """Read one file (in a worker, or in this process) as ``livereader --video FILE`` reads it alone."""
    from livereader.cli import make_parser, run

    if _worker["stop"].is_set():
        return Done(job.index, None, 0, 0, "")
    args = make_parser().parse_args(job.argv())
    if args.video:
        args.video = args.video[0]  # one file, as main passes it to run
    counts = _Counts(_worker["reports"], _worker["stop"], 1 if job.images else PROGRESS_EVERY)
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        status = run(args, _worker["models"], counts)
    return Done(job.index, status, counts.frames, counts.reads, said.getvalue())


def _header(path: str | Path, properties: tuple[int, ...]) -> tuple[float, ...] | None:
    """The ``properties`` (``cv2.CAP_PROP_*``) of a video file as its header gives them; None where it cannot be
    opened."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return tuple(capture.get(prop) for prop in properties) if capture.isOpened() else None
    finally:
        capture.release()


def video_header(path: str | Path) -> tuple[int, float]:
    """The frames a video file says it holds (0 where it cannot be opened) and its frame rate (30 where it says
    none), as its reading takes it for frame times."""
    import cv2

    values = _header(path, (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FPS))
    if values is None:
        return 0, 30.0
    return max(int(values[0]), 0), values[1] or 30.0


def video_extent(path: str | Path) -> tuple[int, int]:
    """The frames a video file says it holds and the pixels of each (width x height), each 0 where it cannot be
    opened or does not say."""
    import cv2

    values = _header(path, (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
    frames, width, height = (max(int(value), 0) for value in values or (0, 0, 0))
    return frames, width * height


def frame_count(path: str | Path) -> int:
    """The frames a video file says it holds (0 where it cannot be opened)."""
    return video_header(path)[0]


def progress_bar(total_frames: int, description: str, jsonl: str | None = None) -> Any:
    """A progress bar of frames on stderr (tqdm: frames done of the total, frames/s, time left); nothing where
    stderr is not a terminal, or where the JSON lines (``jsonl``: None or ``-`` for stdout) go to the same one."""
    from tqdm import tqdm

    on_screen = jsonl in (None, "-") and sys.stdout.isatty()
    return tqdm(total=total_frames or None, unit="frame", desc=description, disable=True if on_screen else None,
                file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _names(sources: list[str]) -> list[str]:
    """A name per source for its own output files: the file's name, or its folder's and its own where two share one
    (``NAME``, ``FOLDER_NAME``, else ``INDEX_NAME``)."""
    names = [Path(s).name for s in sources]
    if len(set(names)) < len(names):
        names = [f"{Path(s).resolve().parent.name}_{Path(s).name}" for s in sources]
    if len(set(names)) < len(names):
        names = [f"{i}_{Path(s).name}" for i, s in enumerate(sources)]
    return names


class _Sink:
    """Where the files' JSON lines go: one stream (a file or stdout) or a folder of one file per source."""

    def __init__(self, target: str | None, sources: list[str], scratch: Path):
        self.folder = Path(target) if target and (target.endswith(("/", os.sep)) or Path(target).is_dir()) else None
        self.merged = Path(target) if target and target != "-" and self.folder is None else None
        if self.folder is not None:
            self.places = [self.folder / f"{name}.jsonl" for name in _names(sources)]
        else:
            self.places = [scratch / f"{i}.jsonl" for i in range(len(sources))]
        self.stream: IO[str] | None = None

    def outputs(self) -> list[Path]:
        return (self.places if self.folder is not None else []) + ([self.merged] if self.merged else [])

    def open(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        elif self.merged is not None:
            self.stream = open(self.merged, "w")  # noqa: SIM115 (open for the run, closed by close())
        else:
            self.stream = sys.stdout

    def pass_on(self, place: Path) -> None:
        """A file's JSON lines, written to the stream (in a folder they are in place already); Ctrl-C waits."""
        from livereader.interrupts import deferred

        if self.stream is None or not place.exists():
            return
        with deferred(), open(place) as lines:
            for line in lines:
                self.stream.write(line)
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()


def _flags(args: argparse.Namespace, reporting: bool = True) -> list[str]:
    """The flags that change what a file's reading gives, as given (``reporting``: ``--once`` and ``--dedupe``
    too)."""
    shared: list[str] = ["--nodisplay", "--content", args.content]
    shared += ["--nofusion"] * args.nofusion + ["--soft"] * args.soft
    if reporting:
        shared += ["--once"] * args.once + (["--dedupe", str(args.dedupe)] if args.dedupe is not None else [])
    if args.calibration:
        shared += ["--calibration", args.calibration]
    for model in args.model or []:
        shared += ["--model", model]
    return shared


def _check_outputs(args: argparse.Namespace, sources: list[str], outputs: list[Path]) -> None:
    """BatchError where an output would be an input or two outputs one file."""
    from livereader.cli import output_clash

    clash = output_clash([Path(s) for s in [*sources, *([args.calibration] if args.calibration else [])]], outputs)
    if clash:
        raise BatchError(clash)


class _Plan:
    """A batch's jobs, and which JSON lines files are complete as the jobs are done; the counts of the jobs done.
    ``total``: the frames (images) the jobs read, for the progress bar; ``lead_frames``: of those, the frames read
    before segments and not reported."""

    def __init__(self, jobs: list[Job], total: int, lead_frames: int = 0):
        self.jobs, self.total, self.lead_frames = jobs, total, lead_frames
        self.passed: set[int] = set()
        self.reads = 0  # codes read, in the jobs done
        self.frames = 0  # frames reported, in the jobs done

    def done(self, result: Done) -> list[Path]:
        """The JSON lines files complete now that a job is done."""
        self.passed.add(result.index)
        self.reads += result.reads
        self.frames += result.frames
        return [self.jobs[result.index].jsonl]

    def files_done(self) -> int:
        return len(self.passed)

    def rest(self) -> list[Path]:
        """The JSON lines files of the jobs not done (a stopped run's: finalised where they were cut short)."""
        return [job.jsonl for job in self.jobs if job.index not in self.passed]


class _Files(_Plan):
    """A job a file, with the flags that change what a file's reading gives passed on as given: a file's JSON
    lines are complete when its job is done."""

    def __init__(self, args: argparse.Namespace, sources: list[str], sink: _Sink):
        names = _names(sources)
        stems = [Path(name).stem for name in names]
        unique = stems if len(set(stems)) == len(stems) else names  # a.mp4 and a.avi: a.mp4.mp4, a.avi.mp4
        videos = [Path(args.output) / f"{name}.mp4" for name in unique] if args.output else []
        _check_outputs(args, sources, sink.outputs() + videos)
        super().__init__([Job(index, source, tuple(_flags(args)), place, videos[index] if videos else None)
                          for index, (source, place) in enumerate(zip(sources, sink.places))],
                         sum(frame_count(source) for source in sources))


class _Segments(_Plan):
    """One file in segments, a job each (:mod:`livereader.segments`): its JSON lines, joined, are complete when
    every segment's job is done."""

    def __init__(self, args: argparse.Namespace, source: str, sink: _Sink, scratch: Path):
        from livereader.segments import split

        if args.output:
            raise BatchError("--output of one video read in segments: read it with --jobs 1")
        _check_outputs(args, [source], sink.outputs())
        frames, self.fps = video_header(source)
        self.args, self.target, self.segments, self.joined = args, sink.places[0], split(frames, args.jobs), False
        flags = tuple(_flags(args, reporting=False))
        lead = sum(segment.lead for segment in self.segments)
        super().__init__([Job(i, source, (*flags, "--frames", segment.frames), scratch / f"segment{i}.jsonl", None)
                          for i, segment in enumerate(self.segments)], frames + lead, lead)

    def done(self, result: Done) -> list[Path]:
        self.passed.add(result.index)
        self.frames += max(0, result.frames - self.segments[result.index].lead)
        return self.rest() if len(self.passed) == len(self.jobs) else []

    def files_done(self) -> int:
        return int(self.joined)

    def rest(self) -> list[Path]:
        from livereader.segments import write_joined

        if self.joined:
            return []
        self.joined = True
        self.reads = write_joined([job.jsonl for job in self.jobs], self.segments, self.target, self.args.once,
                                  self.args.dedupe, self.fps)
        return [self.target]


class _Chunks(_Plan):
    """Images in chunks of consecutive ones, a job each (more chunks than workers: images differ in cost): their
    JSON lines passed on in the images' order, ``--dedupe`` applied here across the chunks."""

    def __init__(self, args: argparse.Namespace, images: list[Path], sink: _Sink, workers: int, scratch: Path):
        from livereader.cli import Reported, image_targets

        if sink.folder is not None:
            raise BatchError("with --image --jsonl is one file, not a folder")
        targets = list(image_targets(images, Path(args.output)).values()) if args.output else []
        _check_outputs(args, [str(path) for path in images], sink.outputs() + targets)
        size = max(1, math.ceil(len(images) / (4 * workers)))
        flags = _flags(args, reporting=False) + ["--once"] * args.once + (["--output", args.output] * bool(args.output))
        super().__init__([Job(i, f"{images[start]} ... {images[min(start + size, len(images)) - 1]}",
                              (*flags, "--frames", f"{start}:{start + size}"), scratch / f"chunk{i}.jsonl",
                              None, tuple(args.image))
                          for i, start in enumerate(range(0, len(images), size))], len(images))
        self.released = 0  # chunks whose lines were passed on: the first ones, in order
        self.reported = Reported(False, args.dedupe)

    def done(self, result: Done) -> list[Path]:
        super().done(result)
        places = []
        while self.released < len(self.jobs) and self.released in self.passed:
            places.append(self._kept(self.jobs[self.released].jsonl))
            self.released += 1
        return places

    def files_done(self) -> int:
        return self.released

    def rest(self) -> list[Path]:
        places = [self._kept(job.jsonl) for job in self.jobs[self.released:] if job.jsonl.exists()]
        self.released = len(self.jobs)
        return places

    def _kept(self, place: Path) -> Path:
        """A chunk's lines, those that ``--dedupe`` drops (an image's time: its index / 30 s, as a serial run's)
        left out."""
        if self.reported.dedupe is not None and place.exists():
            kept = []
            for line in place.read_text().splitlines(keepends=True):
                code = json.loads(line)
                if self.reported.keep(True, code["text"], code["frame"] / 30.0):
                    kept.append(line)
            place.write_text("".join(kept))
        return place


def _in_this_process(jobs: list[Job], models: tuple, progress: Callable[[int], None]) -> Generator[Done, None, None]:
    """Each job read in this process, in order; Ctrl-C ends the file being read (its lines finalised) and the run."""

    class Reports:
        put = staticmethod(progress)

    from livereader.interrupts import Terminated

    _start(models, Reports(), threading.Event())
    for job in jobs:
        done = _read(job)
        yield done
        if done.status in (130, 143):
            raise Terminated() if done.status == 143 else KeyboardInterrupt()


def _outcome(future: Future[Done], job: Job, alone: bool) -> Done | None:
    """A finished job's Done; None where its worker died and it was not read alone yet (it is read again)."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        if not alone:
            return None
        return Done(job.index, 1, 0, 0, f"livereader: error: {job.source}: its worker died reading it (a crash, or "
                                        "out of memory)\n")
    except Exception as error:  # a worker that failed to start
        return failed(job, error)


def one_line(error: BaseException, last: bool = False) -> str:
    """An error's message in one line: its first (``last``: its last, where a traceback comes before it), or its
    type's name where it says nothing."""
    lines = str(error).strip().splitlines()
    return (lines[-1] if last else lines[0]) if lines else type(error).__name__


def failed(job: Job, error: BaseException, last: bool = False) -> Done:
    """A job that failed with ``error``: its one line on stderr (see :func:`one_line`)."""
    return Done(job.index, 1, 0, 0, f"livereader: error: {job.source}: {one_line(error, last)}\n")


def _in_workers(jobs: list[Job], workers: int, models: list[str] | None,
                progress: Callable[[int], None]) -> Generator[Done, None, None]:
    """Each job's result as it finishes, read by spawned worker processes, one file a worker at a time. However
    this ends (done, Ctrl-C, the caller stopping early), no file starts after it and every worker has ended.

    A worker that dies (a decoder's crash, the memory killer) takes the pool with it: the other workers stop at
    their next frame, and a new pool reads the files then in flight again, first as any other file; a file in
    flight at a second death is read alone, and one whose worker dies alone is the one at fault (reported as
    failed)."""
    import multiprocessing
    import queue
    from collections import deque

    context = multiprocessing.get_context("spawn")  # no fork of a process whose torch threads already run
    reports = context.Queue()

    every_core = workers >= (os.cpu_count() or 1)  # else the decoder's and OpenCV's threads use idle cores

    def new_pool() -> tuple[ProcessPoolExecutor, Any]:
        stop = context.Event()  # a pool's own: set, its workers end their files at the next frame
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(models, reports, stop, every_core)), stop

    (executor, stop), waiting, suspects = new_pool(), deque(jobs), deque[Job]()
    crashes: dict[int, int] = {}  # deaths of a pool while a file was in flight
    running: dict[Future[Done], Job] = {}

    def start_more() -> None:
        while True:
            if suspects:
                if running:
                    return
                job = suspects.popleft()
            elif waiting and len(running) < workers:
                job = waiting.popleft()
            else:
                return
            running[executor.submit(_read, job)] = job

    def relay() -> None:
        with contextlib.suppress(queue.Empty, OSError, ValueError, EOFError):
            while True:
                progress(reports.get(timeout=0.1))

    def settle(future: Future[Done]) -> Done | None:
        """A finished future's Done, or None where its worker died (the file is queued to be read again)."""
        job = running.pop(future)
        done = _outcome(future, job, crashes.get(job.index, 0) >= 2)
        if done is None:
            crashes[job.index] = crashes.get(job.index, 0) + 1
            (waiting.appendleft if crashes[job.index] == 1 else suspects.append)(job)
        return done

    finished = False
    try:
        start_more()
        while running:
            ready, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            relay()
            settled = [settle(future) for future in ready]
            yield from (done for done in settled if done is not None)
            if None in settled:  # a worker died: the pool's others stop (they ignore its SIGTERM), a new pool
                stop.set()
                executor.shutdown(wait=True, cancel_futures=True)
                settled = [settle(future) for future in list(running)]  # the pool's other files, all ended now
                yield from (done for done in settled if done is not None)
                executor, stop = new_pool()
            start_more()
        finished = True
    finally:
        if not finished:  # stopped: each worker ends its file at the next frame, no file starts
            stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        relay()


def _check(args: argparse.Namespace) -> None:
    """BatchError for flags that have no meaning with several videos."""
    if args.display or args.reconnect or args.frames:
        raise BatchError("--display, --reconnect and --frames read one video file in one job (--jobs 1)")
    if args.output and Path(args.output).suffix.lower() in (".mp4", ".avi"):
        raise BatchError(f"with several videos or --ray --output is a folder (one video read in segments takes none), "
                         f"not {args.output}")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        raise BatchError("--ray needs Ray: pip install 'livereader[ray]'")


def _results(args: argparse.Namespace, jobs: list[Job], workers: int, models: tuple,
             progress: Callable[[int], None]) -> Generator[Done, None, None]:
    """The jobs' results as they finish: on Ray (``--ray``), in worker processes, or in this process."""
    if args.ray is not None:
        from livereader.cluster import on_ray

        return on_ray(jobs, args.ray, args.model, progress)
    if workers == 1:
        return _in_this_process(jobs, models, progress)
    return _in_workers(jobs, workers, args.model, progress)


def _plan(args: argparse.Namespace, sources: list[str], sink: _Sink, workers: int, scratch: Path,
          segmented: bool) -> _Plan:
    """The jobs: a video file each, one video's segments, or chunks of images."""
    if args.image:
        return _Chunks(args, [Path(s) for s in sources], sink, workers, scratch)
    if segmented:
        return _Segments(args, sources[0], sink, scratch)
    return _Files(args, sources, sink)


def read_many(args: argparse.Namespace) -> int:
    """Read the video files that ``args.video`` names, ``args.jobs`` at a time (one file given with ``--jobs``
    N > 1: in N segments), or the images of ``args.image`` in chunks on ``args.jobs`` workers; returns the exit
    code."""
    from livereader.decode.reader import ModelError, load_models
    from livereader.interrupts import exit_code, terminate
    from livereader.live.capture import SourceError, image_files, quiet_backends

    _check(args)
    quiet_backends()
    try:  # images that are not there, a model that does not load: one error here, as in one process
        sources = [str(path) for path in image_files(args.image)] if args.image else video_files(args.video)
        models = load_models(args.model)
    except (SourceError, ModelError) as error:
        print(f"livereader: error: {error}", file=sys.stderr)
        return 1
    segmented = not args.image and len(sources) == 1 and (args.jobs or 1) > 1 and args.ray is None
    workers = args.jobs if segmented else max(1, min(args.jobs or os.cpu_count() or 1, len(sources)))
    status, failures, frames, started = 0, [], [0], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="livereader-") as scratch:
        sink = _Sink(args.jsonl, ["images"] if args.image else sources, Path(scratch))
        plan = _plan(args, sources, sink, workers, Path(scratch), segmented)
        bar = progress_bar(plan.total, "images" if args.image else f"0/{len(sources)} files", args.jsonl)

        def progressed(count: int) -> None:
            frames[0] += count
            bar.update(count)

        results = _results(args, plan.jobs, workers, models, progressed)
        previous_term = signal.signal(signal.SIGTERM, terminate)
        try:
            if args.output:
                Path(args.output).mkdir(parents=True, exist_ok=True)
            sink.open()
            for done in results:
                for line in done.stderr.splitlines():  # warnings and errors; each file's summary is in the total
                    if not line.startswith("livereader: ") or " frames, " not in line:
                        bar.write(line, file=sys.stderr)
                for place in plan.done(done):
                    sink.pass_on(place)
                if not args.image:
                    bar.set_description(f"{plan.files_done()}/{len(sources)} files")
                if done.status not in (0, None, 130, 143) and plan.jobs[done.index].source not in failures:
                    failures.append(plan.jobs[done.index].source)
        except KeyboardInterrupt as interrupt:
            status = exit_code(interrupt)
        except BrokenPipeError:  # whoever read the JSON lines has stopped: end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError as error:
            print(f"livereader: error: {error}", file=sys.stderr)
            status = 1
        finally:
            results.close()  # stops the workers where the run ended early; every file's lines are final
            if status in (130, 143):
                with contextlib.suppress(OSError):
                    for place in plan.rest():  # the lines that the stopped files finalised
                        sink.pass_on(place)
            bar.close()
            sink.close()
            signal.signal(signal.SIGTERM, previous_term)
    # the frames of the runs that ended (a stopped run's: the frames each had reported, lead frames aside)
    complete = status == 0 and len(plan.passed) == len(plan.jobs)
    frames[0] = plan.frames if complete else max(0, frames[0] - plan.lead_frames)
    rate = frames[0] / max(time.perf_counter() - started, 1e-9)
    what = "images" if args.image else "files"
    print(f"livereader: {len(sources)} {what}, {frames[0]} frames, {plan.reads} reads, {rate:.1f} frames/s, "
          + (f"--ray {args.ray or 'local'}" if args.ray is not None else f"--jobs {workers}")
          + (f" ({len(plan.jobs)} segments)" if isinstance(plan, _Segments) else "")
          + (f"; failed: {', '.join(failures)}" if failures and not args.image else ""), file=sys.stderr)
    return status or (1 if failures else 0)
