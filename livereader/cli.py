"""``livereader``: read version-1 QR codes (numbers, or any content with ``--content any``) in camera streams,
videos, images and grids.

One capture loop serves every frame source (:mod:`livereader.live.capture`): each frame of a stream goes through
a :class:`livereader.live.stream.StreamReader` (search schedule, tracking, fusion), each still image through
:func:`livereader.pipeline.read_frame` at full resolution as a scene of its own; its codes are written as JSON
lines (with their track ids; with ``--once`` only each track's first read), drawn (:mod:`livereader.live.overlay`)
into a live window and/or an annotated video or image folder. ``--grid FILE...`` reads text grids (one 21x21
grid per file, one line per row, ``1``/``#`` dark and ``0``/``.`` light) without the vision pipeline.
Each JSON line is ``frame`` and ``source`` followed by the code's :meth:`livereader.results.Code.to_dict`.
Exit codes (as zbarcam's): 0 ran, 1 error (one line on stderr), 2 usage, 130 after Ctrl-C, 143 after SIGTERM
(both close every output first).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import livereader
from livereader.interrupts import deferred, exit_code, terminate

if TYPE_CHECKING:
    import numpy as np

    from livereader.live.capture import Frame
    from livereader.live.stream import StreamReader
    from livereader.live.track import TrackedCode
    from livereader.pipeline import ReaderOptions
    from livereader.serve import Live

# Only the standard library at import (livereader.interrupts uses nothing else): everything else is imported inside
# main's guard, so that Ctrl-C while the program starts ends it with exit code 130 and no traceback (see main).

_DARK, _LIGHT = "1#", "0."
_WINDOW = "livereader"
_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc
# A video file of at most this many pixels in all its frames is read before a first compile of the kernels would end
# (about 30 s of a core; the 720p video of docs/benchmarks.md, 0.8 G pixels, reads in 6-9 s with the references): where
# they are not cached yet, they compile once it is read (livereader.compiled.defer), for the runs after it, and not
# beside its reading, which that slows by about 30% on two cores. A longer file, or a live source, starts their
# compile at once: it ends while they are read.
SHORT_VIDEO_PIXELS = 3_000_000_000


def make_parser() -> argparse.ArgumentParser:
    from livereader.live.capture import DEMO_FRAMES

    parser = argparse.ArgumentParser(prog="livereader",
                                     description="Read version-1 QR codes: numbers, or any content with --content any.")
    parser.add_argument("--version", action="version", version=f"livereader {livereader.__version__}")
    source = parser.add_mutually_exclusive_group()  # one is required, but for --serve (main checks)
    source.add_argument("--camera", action="append", metavar="N|URL",
                        help="camera device index (0, 1, ...) or stream URL; repeat to read several at once "
                             "(one window tiling their views)")
    source.add_argument("--video", nargs="+", metavar="PATH",
                        help="video files, folders of them or glob patterns (batch: no window); several are read "
                             "--jobs at a time")
    source.add_argument("--image", nargs="+", metavar="PATH", help="image files or folders (batch: no window)")
    source.add_argument("--demo", action="store_true",
                        help="built-in synthetic scene stream: moving, tilting codes whose payloads change "
                             f"(endless in a window; {DEMO_FRAMES} frames without one)")
    source.add_argument("--grid", nargs="+", metavar="FILE",
                        help="text files with one 21x21 grid each (1 or # dark, 0 or . light)")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="worker processes: several video files N at a time (default: the machine's cores), one "
                             "video in N segments, images N at a time (default: 1)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="read the video files as tasks on a Ray cluster (ADDRESS: 'auto', HOST:PORT or "
                             "ray://HOST:PORT; none: a local Ray instance for the run); needs livereader[ray]")
    parser.add_argument("--frames", type=_frame_range, metavar="START:STOP",
                        help="read only the frames START to STOP-1 of a video, or the images START to STOP-1 in sorted "
                             "order (either may be left out: 100:, :500); lines keep their indices")
    parser.add_argument("--serve", nargs="?", const="127.0.0.1:8080", metavar="[HOST:]PORT",
                        help="serve the page (live view and reads) and the HTTP API (POST /read, GET /events, "
                             "GET /healthz) on HOST:PORT (default 127.0.0.1:8080); with no source, the API alone; "
                             "needs livereader[serve]")
    parser.add_argument("--token", help="the token every request to --serve must carry (default: the "
                                        "LIVEREADER_TOKEN variable); needed to serve beyond 127.0.0.1")
    parser.add_argument("--nodisplay", action="store_true", help="no live window (camera and demo show one)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="a camera or stream that gives no frame for this long has stalled: error (default 10)")
    parser.add_argument("--reconnect", action="store_true",
                        help="connect again (after 1, 2, 4 ... 30 s) when a camera or stream ends, stalls or will "
                             "not open, saying so on stderr")
    parser.add_argument("--jsonl", metavar="PATH",
                        help="write one JSON line per located code per frame to PATH, '-' for stdout "
                             "(default: stdout when no window shows)")
    parser.add_argument("--output", metavar="PATH",
                        help="annotated video (.mp4 or .avi), or for --image a folder of annotated images")
    parser.add_argument("--once", action="store_true",
                        help="write each read once per track: one JSON line when a track first reads its text")
    parser.add_argument("--dedupe", type=float, metavar="SECONDS",
                        help="write only reads, and a text already written again only after it was out of sight "
                             "for SECONDS (-1: each text once per run)")
    parser.add_argument("--display", action="store_true", help="show a video or images in the window too")
    parser.add_argument("--nofusion", action="store_true",
                        help="read each frame alone (camera, video and demo frames are fused by default)")
    parser.add_argument("--content", choices=("numeric", "any"), default="numeric",
                        help="what to report: numbers only (default), or whatever a code holds: text, bytes, kanji "
                             "(every read verified alike)")
    parser.add_argument("--soft", action="store_true", help="give the CNN soft (grey) grids instead of binarized ones")
    parser.add_argument("--calibration", metavar="PROFILE",
                        help="camera calibration profile (livereader-calibrate): undistort every frame first")
    parser.add_argument("--model", action="append", metavar="FILE",
                        help="model file; repeat to try several in order (default: the shipped models/default.pt, "
                             "then models/numeric.pt)")
    return parser


def _frame_range(text: str) -> tuple[int, int | None]:
    """``START:STOP`` (either may be empty) -> (start, stop or None); argparse's error for anything else."""
    start, colon, stop = text.partition(":")
    try:
        span = (int(start or 0), int(stop) if stop else None)
    except ValueError:
        span = (-1, None)
    if not colon or span[0] < 0 or (span[1] is not None and span[1] <= span[0]):
        raise argparse.ArgumentTypeError(f"not a frame range START:STOP with 0 <= START < STOP: {text}")
    return span


def read_grid_file(path: Path) -> np.ndarray:
    """A text grid -> (21, 21) uint8 grid, 1 = dark; ValueError with a one-line reason."""
    import numpy as np

    from livereader.symbol import SIZE

    try:
        rows = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text grid") from None
    if len(rows) != SIZE or any(len(row) != SIZE for row in rows):
        raise ValueError(f"{path}: expected {SIZE} rows of {SIZE} modules")
    if any(ch not in _DARK + _LIGHT for row in rows for ch in row):
        raise ValueError(f"{path}: modules must be 1/# (dark) or 0/. (light)")
    return np.array([[ch in _DARK for ch in row] for row in rows], dtype=np.uint8)


def _error(message: str) -> None:
    print(f"livereader: error: {message}", file=sys.stderr, flush=True)


def _read_grid_files(args: argparse.Namespace, model: Any) -> int:
    import numpy as np

    from livereader.decode.reader import read_grids
    from livereader.decode.verify import VerifyOptions
    from livereader.results import READ, REJECTED, Code, CodeResult
    from livereader.symbol import SIZE

    try:
        grids = [read_grid_file(Path(name)) for name in args.grid]
    except (OSError, ValueError) as error:
        _error(str(error))
        return 1
    for name, read in zip(args.grid, read_grids(np.stack(grids), model, VerifyOptions(content=args.content))):
        status = READ if read.text else REJECTED
        result = CodeResult((), status, read.text, round(read.confidence, 4), SIZE, read=read, error=read.error)
        print(json.dumps({"source": name, **Code.of(result).to_dict()}), flush=True)
    return 0


class UsageError(Exception):
    """A command line that cannot run as given (exit code 2, one line)."""


def output_clash(inputs: list[Path], outputs: list[Path]) -> str | None:
    """Why these outputs cannot be written (one would overwrite an input, two would be one file), or None."""
    taken = {path.resolve() for path in inputs}
    overwriting = [str(path) for path in outputs if path.resolve() in taken]
    if overwriting:
        return "an output would overwrite an input: " + " ".join(overwriting)
    resolved = [path.resolve() for path in outputs]
    shared = [str(path) for path, place in zip(outputs, resolved) if resolved.count(place) > 1]
    return "two outputs would share a path: " + " ".join(shared) if shared else None


def image_targets(images: list[Path], folder: Path) -> dict[str, Path]:
    """Each image's annotated image in ``folder``: the images' paths below their common folder (distinct names)."""
    common = Path(os.path.commonpath([path.resolve().parent for path in images]))
    return {str(path): folder / path.resolve().relative_to(common) for path in images}


class Reported:
    """Which located codes get a JSON line: all, or with ``once`` only a track's first read, or with ``dedupe``
    (seconds) only reads, a text again only after it was out of sight that long (< 0: never again)."""

    def __init__(self, once: bool, dedupe: float | None):
        self.once, self.dedupe = once, dedupe
        self.last_read: dict[str, float] = {}  # text -> when it was last read (dedupe)

    def keep(self, first_read: bool, text: str | None, now: float) -> bool:
        """Whether a code gets its line: ``first_read``, its track's first read; ``now``, the frame's time (s)."""
        if (self.once and not first_read) or (self.dedupe is not None and not text):
            return False
        if self.dedupe is not None and text:
            last, self.last_read[text] = self.last_read.get(text), now
            return last is None or (self.dedupe >= 0 and now - last >= self.dedupe)
        return True


class _Outputs:
    """Where results go: JSON lines, an annotated video or image folder, a window. Checked and opened before the
    first frame is read (no output path may be an input), closed once."""

    def __init__(self, args: argparse.Namespace, show: bool, inputs: list[Path]):
        self.show = show
        self.jsonl_path = args.jsonl or (None if show else "-")
        self.output = Path(args.output) if args.output else None
        self.images = bool(args.image)
        self.reported = Reported(args.once, args.dedupe)
        self.inputs = inputs
        self.jsonl: IO | None = None
        self.writer: Any = None  # a cv2.VideoWriter, made at the first frame
        self.targets: dict[str, Path] = {}  # annotated image per input image

    def open(self) -> None:
        if self.output and self.images:
            self.targets = image_targets(self.inputs, self.output)
            outputs = list(self.targets.values())
        elif self.output:
            if self.output.suffix.lower() not in (".mp4", ".avi"):
                raise UsageError(f"--output must end in .mp4 or .avi: {self.output}")
            if not self.output.resolve().parent.is_dir():
                raise OSError(f"no such folder for --output: {self.output.parent}")
            outputs = [self.output]
        else:
            outputs = []
        if self.jsonl_path and self.jsonl_path != "-":
            outputs.append(Path(self.jsonl_path))
        clash = output_clash(self.inputs, outputs)
        if clash:
            raise UsageError(clash)
        if self.jsonl_path and self.jsonl_path != "-":
            self.jsonl = open(self.jsonl_path, "w")  # noqa: SIM115 (open for the run, closed by close())
        elif self.jsonl_path == "-":
            self.jsonl = sys.stdout

    def write(self, frame: Any, tracked: list, annotated: np.ndarray | None, now: float) -> None:
        """Write a frame's results; ``now``: the frame's time in seconds (for ``--dedupe``)."""
        import cv2


        if self.jsonl:
            for code in tracked:
                r = code.result
                if r is None or not self.reported.keep(code.first_read, r.text, now):
                    continue
                self.jsonl.write(json.dumps(_line(frame, code)) + "\n")
            self.jsonl.flush()
        if annotated is None:  # drawn only where an output or the window shows it
            return
        if self.output and self.images:
            target = self.targets[frame.source]
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), annotated):
                raise OSError(f"cannot write {target}")
        elif self.output:
            if self.writer is None:
                fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self.output.suffix.lower() == ".mp4" else "MJPG"))
                height, width = annotated.shape[:2]
                self.writer = cv2.VideoWriter(str(self.output), fourcc, frame.fps or 30.0, (width, height))
                if not self.writer.isOpened():
                    raise OSError(f"cannot write video {self.output}")
            self.writer.write(annotated)

    def close(self) -> None:
        if self.jsonl and self.jsonl is not sys.stdout:
            self.jsonl.close()
        if self.writer is not None:
            self.writer.release()


def _quit_asked() -> bool:
    """q or Esc pressed in the window, or the window closed (this also lets the window redraw)."""
    import cv2

    return cv2.waitKey(1) & 0xFF in _QUIT_KEYS or cv2.getWindowProperty(_WINDOW, cv2.WND_PROP_VISIBLE) < 1


def _frames(args: argparse.Namespace, show: bool, images: list[Path]) -> Iterator:
    """The frames of the source the arguments name (``images``: the image files of ``--image``)."""
    from livereader.live import capture

    if args.camera is not None:
        return capture.camera(args.camera, args.timeout, reconnect=args.reconnect)
    if args.video:
        return capture.video(args.video, *(args.frames or (0, None)))
    if args.image:
        start, stop = args.frames or (0, None)
        return capture.images(images[start:stop], start)
    return capture.demo(None if show or args.serve else capture.DEMO_FRAMES)


class Progress(Protocol):
    """What :func:`run` tells of its progress (a progress bar, a batch's worker)."""

    def frame(self, reads: int) -> None:
        """A frame was read, with ``reads`` codes read in it."""

    def close(self) -> None:
        """The run ended (before its summary line)."""


class _Bar:
    """A progress bar (tqdm) as :class:`Progress`."""

    def __init__(self, bar: Any):
        self.bar = bar

    def frame(self, reads: int) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _Loop:
    """The capture loop's frames: each read (a stream's through a :class:`StreamReader` made at its first frame and
    paced to its frame rate, each still image as a scene of its own), drawn, written and shown; counted."""

    def __init__(self, args: argparse.Namespace, show: bool, model: Any, options: Any,
                 progress: Progress | None = None, live: Live | None = None):
        self.args, self.show, self.model, self.options, self.progress = args, show, model, options, progress
        self.live = live  # what the page shows (--serve), or None
        self.stream: Any = None
        self.frames, self.reads, self.newest, self.rate = 0, 0, -1, _FrameRate()

    def read(self, frame: Any, image: np.ndarray) -> list:
        """A frame's tracked codes."""
        from livereader.live.track import Tracker
        from livereader.pipeline import read_frame

        if self.args.image:  # a still image: its own scene, searched whole (coarse to fine over max_full_pixels)
            return Tracker().update(read_frame(image, self.model, replace(self.options, scout=1)))
        if self.stream is None:  # a file's frames are read as a camera would deliver them, at its frame rate
            self.stream = _paced_stream(frame, self.model, self.options, not self.args.nofusion)
        return self.stream.read(image)

    def run(self, frames: Iterator, outputs: _Outputs, undistort: Any) -> int:
        """Read every frame; returns the exit status (1: an image that could not be decoded)."""
        import cv2

        from livereader.live.overlay import draw
        from livereader.pipeline import READ

        status = 0
        for frame in frames:
            if frame is None:  # a live source with no new frame yet: keep the window responsive
                if self.show and self.frames and _quit_asked():
                    break
                continue
            self.newest = frame.index
            if frame.image is None:
                _undecodable(frame)
                status = 1 if self.args.image else status
                continue
            image = undistort(frame.image) if undistort else frame.image
            tracked = self.read(frame, image)
            now = time.perf_counter()
            fps = self.rate.tick(now)
            self.frames += 1
            reads = sum(code.result is not None and code.result.status == READ for code in tracked)
            self.reads += reads
            if self.progress is not None:
                self.progress.frame(reads)
            annotated = None
            if self.show or outputs.output or self.live is not None:
                annotated = draw(image, [code.shown for code in tracked], None if self.args.image else fps)
            if self.live is not None:
                self.live.publish(annotated, _read_lines(frame, tracked))
            # a frame's time: the clock for a live source, the frame's place in a file (reading may be faster)
            outputs.write(frame, tracked, annotated, now if self.args.camera else frame.index / (frame.fps or 30.0))
            if self.show and annotated is not None:
                if self.frames == 1:  # a plain video window: no Qt toolbar or status bar
                    cv2.namedWindow(_WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
                cv2.imshow(_WINDOW, annotated)
                if _quit_asked():
                    break
        return status


def _line(frame: Frame, code: TrackedCode) -> dict[str, Any]:
    """A located code's JSON line: its frame, its source, then :meth:`livereader.results.Code.to_dict`."""
    from livereader.results import Code

    assert code.result is not None  # a located code (a held track has no line)
    return {"frame": frame.index, "source": frame.source, **Code.of(code.result, code.track).to_dict()}


def _read_lines(frame: Frame, tracked: list[TrackedCode]) -> list[dict[str, Any]]:
    """The JSON lines of a frame's reads."""
    from livereader.results import READ

    return [_line(frame, code) for code in tracked if code.result is not None and code.result.status == READ]


def _paced_stream(frame: Frame, model: Any, options: ReaderOptions, fusion: bool) -> StreamReader:
    """A stream reader for a source's frames as a camera delivers them, from ``frame`` on: paced to its frame
    rate (30 frames/s where it says none, or an impossible one: some say 0 or 90,000), its search schedule counted
    from the frame's index in the source."""
    from livereader.live.stream import StreamOptions, StreamReader

    rate = frame.fps if 1 <= frame.fps <= 240 else 30.0
    return StreamReader(model, options, StreamOptions(fusion=fusion, interval=1 / rate), first=frame.index)


class _FrameRate:
    """Frames per second as the overlay shows them: a moving average over the times between frames."""

    def __init__(self) -> None:
        self.fps, self.last = 0.0, time.perf_counter()

    def tick(self, now: float) -> float:
        """A frame came at ``now`` (``time.perf_counter``); the rate so far."""
        rate = 1 / max(now - self.last, 1e-6)
        self.fps, self.last = (0.9 * self.fps + 0.1 * rate if self.fps else rate), now
        return self.fps


def _undecodable(frame: Frame) -> None:
    print(f"livereader: warning: frame {frame.index} of {frame.source} could not be decoded: skipped",
          file=sys.stderr)


def _reader_options(args: argparse.Namespace) -> ReaderOptions:
    """The reader's options that the command line sets: soft grids, the content reported."""
    from livereader.decode.verify import VerifyOptions
    from livereader.pipeline import ReaderOptions
    from livereader.vision.grid import GridOptions

    return ReaderOptions(grid=GridOptions(soft=args.soft), verify=VerifyOptions(content=args.content))


def _window(wanted: bool) -> bool:
    """Whether a window shows: where one is wanted and a display is there (else a line says so)."""
    from livereader.live.capture import display_available

    if wanted and not display_available():
        print("livereader: no display: running without a window (--nodisplay)", file=sys.stderr)
        return False
    return wanted


def run(args: argparse.Namespace, model: Any, progress: Progress | None = None, live: Live | None = None) -> int:
    """The capture loop: frames -> read_frame -> JSON lines, annotated output, window. Returns the exit code.
    ``progress``: told of each frame read, and closed before the summary line; ``live``: a
    :class:`livereader.serve.Live` given each annotated frame and its reads."""
    import cv2
    import torch

    from livereader.live import capture
    from livereader.live.calibrate import CalibrationError, Undistorter, load_profile
    from livereader.live.capture import SourceError
    from livereader.live.stream import warm_up

    torch.set_num_threads(1)  # one frame's few grids: threads only add overhead and contention (docs/training.md)
    capture.quiet_backends()
    # The objects made so far (torch's, the models') live as long as the run: keep them out of the garbage
    # collector's full passes, which otherwise stall a frame by tens of milliseconds every few hundred frames.
    gc.freeze()
    options = _reader_options(args)
    show = _window(bool(args.camera is not None or args.demo or args.display) and not args.nodisplay)
    if args.video:  # a file's frames read the same before the kernels are loaded: no wait for them
        warm_up(model, options, kernels_wait=0.0)
    elif not args.image:  # a stream's first frame does not pay for the first calls of the network
        warm_up(model, options)
    started = time.perf_counter()
    status: int | None = 0
    loop = _Loop(args, show, model, options, progress, live)
    outputs = None
    previous_term = signal.signal(signal.SIGTERM, terminate)
    try:
        images = capture.image_files(args.image) if args.image else []
        if images and progress is None:  # a progress bar of the images on a terminal
            from livereader.batch import progress_bar

            start, stop = args.frames or (0, None)
            progress = loop.progress = _Bar(progress_bar(len(images[start:stop]), "images", args.jsonl))
        inputs = images + [Path(name) for name in (args.video, args.calibration) if name]
        outputs = _Outputs(args, show, inputs)
        undistort = Undistorter(load_profile(args.calibration)) if args.calibration else None
        outputs.open()
        status = loop.run(_frames(args, show, images), outputs, undistort)
    except UsageError as error:
        _error(str(error))
        status = 2
    except BrokenPipeError:  # whoever read the JSON lines has stopped: end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error when Python flushes at exit
        status = None
    except (SourceError, CalibrationError, OSError) as error:
        _error(str(error))
        status = 1
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (livereader.interrupts): outputs are finalised below
        status = exit_code(interrupt)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if outputs is not None:
            with contextlib.suppress(BrokenPipeError):
                outputs.close()
        if show:
            cv2.destroyAllWindows()
        if progress is not None:
            progress.close()
    if status is None:
        return 0
    elapsed = time.perf_counter() - started
    if status in (0, 130, 143):
        rate = loop.frames / max(elapsed, 1e-9)
        dropped = f", {loop.newest + 1 - loop.frames} dropped (not read: newer ones came first)" if args.camera else ""
        print(f"livereader: {loop.frames} frames, {loop.reads} reads, {rate:.1f} frames/s{dropped}", file=sys.stderr)
    return status


def _read_video(args: argparse.Namespace, model: Any, live: Live | None = None) -> int:
    """One video file, with a progress bar of its frames on a terminal."""
    from livereader.batch import progress_bar

    total, _ = _video_frames(args)
    return run(args, model, _Bar(progress_bar(total, Path(args.video).name, args.jsonl)), live)


def _video_frames(args: argparse.Namespace) -> tuple[int, int]:
    """The frames of ``args.video`` that the run reads (``args.frames``) and the pixels of each, as the file's header
    says (0 where it does not)."""
    from livereader.batch import video_extent
    from livereader.live.capture import quiet_backends

    quiet_backends()  # before the header's probe opens the file: no decoder's own lines on stderr
    count, pixels = video_extent(args.video)
    start, stop = args.frames or (0, None)
    return max(0, min(count, stop if stop is not None else count) - start), pixels


def _short_video(args: argparse.Namespace) -> bool:
    """Whether the frames of ``args.video`` that the run reads hold at most ``SHORT_VIDEO_PIXELS`` pixels in all."""
    frames, pixels = _video_frames(args)
    return 0 < frames * pixels <= SHORT_VIDEO_PIXELS


def _several(names: list[str]) -> bool:
    """More than one video file: several names, a folder or a glob pattern (read by :mod:`livereader.batch`)."""
    import glob

    return len(names) > 1 or Path(names[0]).is_dir() or (not Path(names[0]).exists() and glob.has_magic(names[0]))


def _read_many(args: argparse.Namespace) -> int:
    from livereader.batch import BatchError, read_many

    try:
        return read_many(args)
    except BatchError as error:
        _error(str(error))
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting (imports, models)
        return 130


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Why a command line cannot run as given (None: it can)."""
    if args.jobs is not None and args.jobs < 1:
        return f"--jobs must be at least 1, not {args.jobs}"
    if args.ray is not None and not args.video:
        return "--ray reads video files: give --video"
    if args.frames and not (args.video or args.image):
        return "--frames reads a video or images: give --video or --image"
    if args.token and args.serve is None:
        return "--token is for --serve"
    if args.serve is not None and (args.image or args.grid or len(args.camera or ()) > 1
                                   or len(args.video or ()) > 1 or args.ray is not None or (args.jobs or 1) > 1):
        return "--serve shows one live source (--camera, --video or --demo) or none"
    return None


def _missing_extra(args: argparse.Namespace) -> str | None:
    """What ``--serve`` needs that is not installed (None: nothing, or no ``--serve``)."""
    import importlib.util

    needed = ("starlette", "uvicorn", "multipart", "PIL") if args.serve is not None else ()
    if any(importlib.util.find_spec(name) is None for name in needed):
        return "--serve needs livereader[serve]: pip install 'livereader[serve]'"
    return None


def _serve(args: argparse.Namespace, model: Any) -> int:
    """The page and the HTTP API (:mod:`livereader.serve`) while the source is read (with none: until Ctrl-C)."""
    from livereader.serve import TOKEN_VARIABLE, Live, ServeError, ServeOptions, Server, address

    try:
        host, port = address(args.serve)
        token = args.token or os.environ.get(TOKEN_VARIABLE) or None
        options = ServeOptions(host=host, port=port, token=token).checked()
    except ServeError as error:
        _error(str(error))
        return 2
    live = Live()
    server = Server(model, options, live)
    try:
        server.start()
    except ServeError as error:
        _error(str(error))
        return 1
    shown = f"[{host}]" if ":" in host else host
    print(f"livereader: serving http://{shown}:{server.port}/" + ("?token=..." if token else ""), file=sys.stderr,
          flush=True)
    try:
        if args.camera or args.video or args.demo:
            return _read_video(args, model, live) if args.video else run(args, model, live=live)
        previous_term = signal.signal(signal.SIGTERM, terminate)
        try:
            while server.thread.is_alive():
                time.sleep(0.2)
            return 1
        except KeyboardInterrupt as interrupt:
            return exit_code(interrupt)
        finally:
            signal.signal(signal.SIGTERM, previous_term)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        if argv[:1] == ["serve"]:  # livereader serve [HOST:]PORT: the API alone
            argv = ["--serve", *argv[1:]]
        parser = make_parser()
        args = parser.parse_args(argv)
        if not (args.camera or args.video or args.image or args.demo or args.grid) and args.serve is None:
            parser.error("one of the arguments --camera --video --image --demo --grid --serve is required")
        problem = _usage_problem(args) or _missing_extra(args)
        if problem:
            _error(problem)
            return 2
        if (args.video and (_several(args.video) or args.ray is not None or (args.jobs or 1) > 1)) or \
                (args.image and (args.jobs or 1) > 1):
            return _read_many(args)
        args.video = args.video[0] if args.video else None
        cameras, args.camera = args.camera, args.camera[0] if args.camera else None
        if not args.grid:  # frames to search: the compiled kernels load in the background meanwhile
            from livereader import compiled

            if args.video and _short_video(args):
                compiled.defer()  # where they are not cached yet, they compile after the file, not beside it
            else:
                compiled.start(now=True)
        with deferred():
            from livereader.decode.reader import ModelError, load_models

            try:
                model = load_models(args.model)
            except ModelError as error:
                _error(str(error))
                return 1
        if args.serve is not None:
            return _serve(args, model)
        if args.grid:
            return _read_grid_files(args, model)
        if cameras and len(cameras) > 1:
            from livereader.cameras import read_cameras

            args.camera = cameras
            return read_cameras(args, model)
        if args.video:
            return _read_video(args, model)
        return run(args, model)
    except KeyboardInterrupt:  # Ctrl-C while starting (imports, models): no traceback; run handles its loop's
        return 130


if __name__ == "__main__":
    sys.exit(main())
