"""Several live sources at once: ``livereader --camera 0 --camera rtsp://... [--nodisplay]``.

Each source is captured and read on a thread of its own (:func:`livereader.live.capture.camera` and a
:class:`livereader.live.stream.StreamReader` paced to the source's frame interval, with its own tracker; the network
and OpenCV release the interpreter while they work). The main thread writes every source's JSON lines as they come
(``source`` tells them apart; ``frame`` is each source's own count, ``track`` each source's own id) and shows one
window tiling the sources' latest views, in the order given. A source that stalls (no frame for ``--timeout``
seconds) or ends is reported on stderr and the others go on; with ``--reconnect`` it is connected again instead.
The run ends when every source has ended, at q or Esc in the window, or at Ctrl-C (exit code 130) or SIGTERM (143);
its exit code is 1 when a source failed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

TILE_HEIGHT = 480  # pixels of each source's view in the tiled window
REDRAW = 0.03  # seconds at least between two redraws of the window (each shows every source's newest view)


@dataclass(frozen=True)
class _View:
    """A source's frame as read: its tracked codes, and the frame drawn (None without a window)."""

    source: int
    frame: Any  # livereader.live.capture.Frame
    tracked: list[Any]  # livereader.live.track.TrackedCode
    annotated: np.ndarray | None
    now: float


@dataclass(frozen=True)
class _Ended:
    """A source that ended: its error (a stall, the stream's end, a camera that would not open), or None when the run
    stopped it."""

    source: int
    error: str | None


class _Source(threading.Thread):
    """One source: captured, read and drawn on this thread; each frame's view put on ``views``."""

    def __init__(self, index: int, spec: str, args: argparse.Namespace, model: Any, options: Any, show: bool,
                 views: queue.Queue[_View | _Ended], stop: threading.Event):
        super().__init__(name=f"livereader-source-{index}", daemon=True)
        self.index, self.spec, self.args, self.model, self.options = index, spec, args, model, options
        self.show, self.views, self.stop = show, views, stop

    def run(self) -> None:
        from livereader.live.capture import SourceError, camera

        error = None
        try:
            self._read(camera(self.spec, self.args.timeout, reconnect=self.args.reconnect))
        except SourceError as problem:
            error = str(problem)
        except Exception as problem:  # a failure of one source ends it, not the others
            error = f"{self.spec}: {type(problem).__name__}: {problem}"
        self._put(_Ended(self.index, error))

    def _put(self, item: _View | _Ended) -> None:
        """``item`` on the queue, waiting while it is full, unless the run stops meanwhile."""
        while not self.stop.is_set():
            try:
                self.views.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _read(self, frames: Any) -> None:
        from livereader.cli import _FrameRate, _paced_stream, _undecodable
        from livereader.live.overlay import draw

        stream, rate = None, _FrameRate()
        try:
            for frame in frames:
                if self.stop.is_set():
                    return
                if frame is None:
                    continue
                if frame.image is None:
                    _undecodable(frame)
                    continue
                if stream is None:
                    stream = _paced_stream(frame, self.model, self.options, not self.args.nofusion)
                tracked = stream.read(frame.image)
                now = time.perf_counter()
                fps = rate.tick(now)
                annotated = draw(frame.image, [code.shown for code in tracked], fps) if self.show else None
                self._put(_View(self.index, frame, tracked, annotated, now))
        finally:
            frames.close()


def tiled(views: list[np.ndarray | None], height: int = TILE_HEIGHT) -> np.ndarray:
    """The views side by side, each scaled to ``height`` (a source not seen yet: grey), in rows of at most
    ceil(sqrt(n)) views, the rows padded to one width."""
    columns = math.ceil(math.sqrt(len(views)))
    tiles = [np.full((height, height * 4 // 3, 3), 64, np.uint8) if view is None else
             _scaled(view, height) for view in views]
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    width = max(row.shape[1] for row in rows)
    return np.vstack([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows])


def _scaled(view: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = max(1, round(view.shape[1] * height / view.shape[0]))
    return cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA)


def _check(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot read several sources (None: they can)."""
    if args.output or args.calibration:
        return "--output and --calibration take one camera"
    return None


def read_cameras(args: argparse.Namespace, model: Any) -> int:
    """Read every ``--camera`` source at once until all have ended (or q, Ctrl-C, SIGTERM); the exit code."""
    import cv2
    import torch

    from livereader.cli import _WINDOW, _error, _Outputs, _quit_asked, _reader_options, _window
    from livereader.interrupts import exit_code, terminate
    from livereader.live import capture
    from livereader.live.stream import warm_up
    from livereader.pipeline import READ

    problem = _check(args)
    if problem:
        _error(problem)
        return 2
    torch.set_num_threads(1)
    capture.quiet_backends()
    options = _reader_options(args)
    show = _window(not args.nodisplay)
    warm_up(model, options)
    # bounded: a reading thread waits while the lines and the window fall behind (no frames pile up in memory)
    views: queue.Queue[_View | _Ended] = queue.Queue(maxsize=4 * len(args.camera))
    stop = threading.Event()
    sources = [_Source(i, spec, args, model, options, show, views, stop) for i, spec in enumerate(args.camera)]
    outputs = _Outputs(args, show, [])
    latest: list[np.ndarray | None] = [None] * len(sources)
    status, failed, frames, reads, started, drawn = 0, 0, 0, 0, time.perf_counter(), 0.0
    previous_term = signal.signal(signal.SIGTERM, terminate)
    try:
        outputs.open()
        for source in sources:
            source.start()
        running = len(sources)
        while running:
            with contextlib.suppress(queue.Empty):
                item = views.get(timeout=0.05)
                if isinstance(item, _Ended):
                    running -= 1
                    if item.error:
                        failed += 1
                        _error(item.error)
                else:
                    outputs.write(item.frame, item.tracked, None, item.now)
                    frames += 1
                    reads += sum(c.result is not None and c.result.status == READ for c in item.tracked)
                    latest[item.source] = item.annotated
                    if show and time.perf_counter() - drawn >= REDRAW:
                        if not drawn:
                            cv2.namedWindow(_WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
                        cv2.imshow(_WINDOW, tiled(latest))
                        drawn = time.perf_counter()
            if show and frames and _quit_asked():
                break
    except KeyboardInterrupt as interrupt:
        status = exit_code(interrupt)
    except OSError as error:
        _error(str(error))
        status = 1
    finally:
        stop.set()
        for source in sources:
            source.join(timeout=5)
        signal.signal(signal.SIGTERM, previous_term)
        with contextlib.suppress(BrokenPipeError):
            outputs.close()
        if show:
            cv2.destroyAllWindows()
    rate = frames / max(time.perf_counter() - started, 1e-9)
    print(f"livereader: {len(sources)} sources, {frames} frames, {reads} reads, {rate:.1f} frames/s"
          + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return status or (1 if failed else 0)

