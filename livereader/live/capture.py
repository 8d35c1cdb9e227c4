"""Frame sources: camera (device index or stream URL), video file, image files or folders, the demo stream.

Every source yields :class:`Frame` values; ``image`` is None for a frame that could not be decoded (a corrupt
frame in a video, an unreadable image file), which the capture loop skips with a warning. Problems that stop a
source raise :class:`SourceError` with a one-line message.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
DEMO_FRAMES = 300  # frames of the demo stream when no window shows it (10 s at 30 frames/s)
_MAX_BAD_FRAMES = 25  # consecutive undecodable frames after which a video or stream counts as ended
READ_AHEAD = 3  # frames of a video decoded ahead of the reader by a thread of their own (see read_ahead)


class SourceError(Exception):
    """A source that cannot be opened or ended wrongly (the message is one line)."""


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based; for images, the index in the sorted list of files
    source: str  # file name, camera index or URL, or "demo"
    image: np.ndarray | None  # (H, W, 3) uint8 BGR, None when the frame could not be decoded
    fps: float  # the source's nominal frame rate (30 when it does not say)


def image_files(paths: list[str]) -> list[Path]:
    """Files and folders (their image files, not recursive) -> one sorted list; SourceError for a missing path."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"no such file or folder: {name}")
    if not files:
        raise SourceError(f"no image files in {' '.join(paths)}")
    return sorted(files)


def images(files: list[Path], start: int = 0) -> Iterator[Frame]:
    """The image files (see :func:`image_files`) as frames, in the order given, indexed from ``start``, decoded
    one ahead of the reader (:func:`read_ahead`: three images held at once, about 110 MB of 12 MP photos)."""
    return read_ahead((Frame(index, str(path), load_image(path), 0.0) for index, path in enumerate(files, start)), 1)


def load_image(path: Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 BGR (:func:`normalized`), or None when it cannot be decoded."""
    image: np.ndarray | None = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if image is None else normalized(image)


def decode_image(data: bytes) -> np.ndarray | None:
    """The bytes of an encoded image file as (H, W, 3) uint8 BGR (:func:`normalized`), or None when they cannot
    be decoded."""
    image: np.ndarray | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    return None if image is None else normalized(image)


def normalized(image: np.ndarray) -> np.ndarray:
    """A decoded image (grey, BGR or BGRA; 8 or 16 bits, or float in [0, 1]) as (H, W, 3) uint8 BGR.
    Transparent pixels are shown on white, as a viewer shows them (a code whose light modules are transparent is
    read as printed)."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255 / max(float(np.iinfo(image.dtype).max), 1.0)) \
            if np.issubdtype(image.dtype, np.integer) else cv2.convertScaleAbs(image, alpha=255)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255
        return (image[:, :, :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return image


def quiet_backends() -> None:
    """Keep OpenCV's and FFmpeg's own log lines (device probing, decode errors) off stderr: the capture loop
    reports what matters in one line of its own. Process-wide, so the commands call it once at start; the
    library's sources leave the settings as they find them."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


# threads that decode a video opened by video() (0: the backend's choice), and with 1 no read-ahead thread either
# (read_ahead); see one_thread
_decode_threads = 0


def one_thread() -> None:
    """OpenCV's functions, and the decoding of videos and images opened from now on, on the calling thread alone
    (no FFmpeg threads, no :func:`read_ahead` thread): for a worker process of a batch that runs one worker on every
    core, where threads of its own only contend with the other workers (on 2 cores, FFmpeg's own decoding threads
    cost a third more CPU time than one). Where a video's backend takes no thread count, it decodes as it would.
    Process-wide, as ``cv2.setNumThreads`` is."""
    global _decode_threads
    cv2.setNumThreads(1)
    _decode_threads = 1


def video(path: str, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
    """Every frame of a video file, in order, or those from index ``start`` up to ``stop`` (not included; None: to
    the end), each with its index in the file, decoded ahead of the reader (:func:`read_ahead`); ``image`` is None
    for an undecodable one."""
    if not Path(path).exists():
        raise SourceError(f"no such file: {path}")
    if not Path(path).is_file():
        raise SourceError(f"not a file: {path}")
    capture = cv2.VideoCapture(path, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, _decode_threads] if _decode_threads else [])
    if _decode_threads and not capture.isOpened():  # a backend that takes no thread count (OpenCV's MJPEG reader)
        capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise SourceError(f"cannot open video: {path}")
    if start and not capture.set(cv2.CAP_PROP_POS_FRAMES, start):
        capture.release()
        raise SourceError(f"cannot seek to frame {start}: {path}")
    return read_ahead(_frames_of(capture, path, start, stop))


def _frames_of(capture: cv2.VideoCapture, name: str, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if stop is not None:
        count = min(count, stop)
    index, pending = start, 0  # pending: undecodable frames not yet known to be followed by a decodable one
    try:
        while stop is None or index < stop:
            ok, image = capture.read()
            if ok and image is not None:
                for skipped in range(index - pending, index):
                    yield Frame(skipped, name, None, fps)
                pending = 0
                yield Frame(index, name, image, fps)
            elif index >= count or pending >= _MAX_BAD_FRAMES:
                break
            else:
                pending += 1
            index += 1
    finally:
        capture.release()
    decoded = index - pending
    if decoded == start:
        raise SourceError(f"no frame could be read from the video: {name}")
    if decoded < count - max(1, count // 50):  # the frame count of some containers is approximate
        raise SourceError(f"video ended early, at frame {decoded} of {count} (truncated?): {name}")


def read_ahead(frames: Iterator[Frame], depth: int = READ_AHEAD) -> Generator[Frame, None, None]:
    """The frames of a file source, decoded by a thread of their own ahead of the reader: decoding (OpenCV
    releases the GIL) runs beside reading, on another core. At most ``depth`` decoded frames wait, so ``depth`` + 2
    are held at once (one more being handed over, and the reader's). The same frames in the same order, and what
    the source raises is raised here, after the frames before it. Where the reader stops early, the thread stops at
    its next frame and closes the source (a video's capture is released; a backend that blocks is left to end with
    the process). The reader waits in steps of 0.1 s, so that Ctrl-C reaches it on every platform. After
    :func:`one_thread` the frames are decoded on the calling thread, as they come."""
    if _decode_threads:
        yield from frames
        return
    ahead: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def hand(item: Frame | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for frame in frames:
                if not hand(frame):
                    return
            hand(None)
        except BaseException as problem:  # handed to the reader, which raises it
            hand(problem)
        finally:
            if isinstance(frames, Generator):
                frames.close()

    thread = threading.Thread(target=decode, daemon=True, name="livereader-decode")
    thread.start()
    try:
        while True:
            try:
                item = ahead.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)


def camera(spec: str, timeout: float = 10.0, tick: float = 0.1, reconnect: bool = False) -> Iterator[Frame | None]:
    """A device index ("0") or a stream URL ("http://host:8080/video.mjpg", "rtsp://...").

    A thread reads the source as fast as it delivers and keeps only its newest frame, so the reader always gets
    the newest one and OpenCV's buffered frames never queue up: ``Frame.index`` counts the source's frames,
    and a gap between two indices is the frames dropped meanwhile. While no new frame has come, ``None`` is
    yielded every ``tick`` seconds (a window stays responsive); after ``timeout`` seconds without one, or when
    the source ends, :class:`SourceError`, or with ``reconnect`` a warning on stderr and a new connection,
    tried after 1, 2, 4, ... (at most 30) seconds until one opens. An undecodable frame is skipped, as in a
    file."""
    target = int(spec) if spec.isdigit() else spec
    delivered, delay = 0, 1.0  # frames of the earlier connections; the next wait before reconnecting
    while True:
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            if not reconnect:
                raise SourceError(f"cannot open camera: {spec}")
            print(f"livereader: warning: cannot open {spec}: trying again in {delay:g} s", file=sys.stderr)
            yield from _idle(delay, tick)
            delay = min(2 * delay, 30.0)
            continue
        delay = 1.0
        newest = _Newest()
        problem = yield from _newest_frames(capture, newest, spec, delivered, timeout, tick)
        delivered += newest.count
        if not reconnect:
            raise SourceError(f"{problem}: {spec}")
        print(f"livereader: warning: {problem}: reconnecting to {spec}", file=sys.stderr)


def _idle(seconds: float, tick: float) -> Iterator[None]:
    """``None`` every ``tick`` seconds for ``seconds`` (the reader's window stays responsive meanwhile)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(tick, max(end - time.monotonic(), 0.0)))
        yield None


def _newest_frames(capture: cv2.VideoCapture, newest: _Newest, spec: str, first: int, timeout: float,
                   tick: float) -> Generator[Frame | None, None, str]:
    """The frames of one connection as :func:`camera` hands them out (``newest`` filled by a thread), numbered
    from ``first``; returns what ended the connection."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    thread = threading.Thread(target=newest.fill, args=(capture,), daemon=True, name="livereader-capture")
    thread.start()
    try:
        waited = 0.0
        while True:
            frame = newest.take(tick)
            if frame is not None:
                waited = 0.0
                yield Frame(first + frame[0], spec, frame[1], fps)
                continue
            if newest.ended:
                return f"the stream ended after {first + newest.count} frames"
            waited += tick
            if waited >= timeout:
                return f"no frame for {timeout:g} s (the stream stalled)"
            yield None
    finally:
        newest.stop = True
        thread.join(timeout=1.0)  # a read that blocks in the backend is left to end with the process
        if not thread.is_alive():
            capture.release()


class _Newest:
    """The newest frame of a source that a thread keeps filling (see :func:`camera`)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.frame: tuple[int, np.ndarray] | None = None
        self.count = 0  # frames the source has delivered
        self.ended = False
        self.stop = False

    def fill(self, capture: cv2.VideoCapture) -> None:
        failed = 0  # reads in a row that gave no frame: one undecodable frame is skipped, many end the source
        while not self.stop:
            ok, image = capture.read()
            with self.condition:
                if not ok or image is None:
                    failed += 1
                    if failed >= _MAX_BAD_FRAMES:
                        self.ended = True
                        self.condition.notify()
                        return
                    continue
                self.count += failed  # the undecodable frames keep their numbers
                failed = 0
                self.frame = (self.count, image)
                self.count += 1
                self.condition.notify()

    def take(self, wait: float) -> tuple[int, np.ndarray] | None:
        """The newest frame not taken yet, waiting up to ``wait`` seconds for one; None if none came."""
        with self.condition:
            if self.frame is None and not self.ended:
                self.condition.wait(wait)
            frame, self.frame = self.frame, None
            return frame


def demo(frames: int | None) -> Iterator[Frame]:
    """The built-in synthetic scene stream (:class:`livereader.synth.scene.DemoStream`); endless when ``frames``
    is None."""
    from livereader.synth.scene import DemoStream

    stream = DemoStream()
    index = 0
    while frames is None or index < frames:
        yield Frame(index, "demo", stream.next().image, 30.0)
        index += 1


def display_available() -> bool:
    """Whether a window can open: on Linux, an X11 or Wayland display must be set."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
