"""Real footage for ``livereader-bench``: time per frame next to zxing-cpp, interleaved frame by frame.

Each group of frames is read by zxing-cpp and by livereader in turn, frame by frame, on one thread (each
first in every other frame), so both see the same machine state; a row gives the median, 90th and 99th
percentile time per frame of each and their ratios (livereader / zxing-cpp at the same percentile). Groups:

- **photos**: every image under a folder, scaled down to a 1280 px long side (smaller ones as stored), read
  as a camera frame (:func:`livereader.pipeline.read_frame`'s defaults) and as a still image (the whole frame
  at full resolution, as ``livereader --image`` reads); and the folder's 640x480 images as stored.
- **lots**: images whose folder is named ``lots`` (many codes each), at a 1920 px long side.
- **code-free**: 1280x720 crops of the folder's images that hold no code (every code of its manifest, and the
  BoofCV hand-labelled corners, kept a margin away).
- **video**: a video file read end to end by :class:`livereader.live.stream.StreamReader` (schedule, tracking,
  fusion), decoding timed apart.
- **scaling**: synthetic 1280x960 pages with 0, 1, 4, 16 and 64 codes (4 px modules, a mild perspective).
- **the command line** (:func:`cli_runs`): ``livereader --video FILE`` end to end, start-up included, in a process of
  its own, each run right after zxing-cpp decoded and read the same video.

The photo and crop groups also time :func:`first_contours` in the same interleaving: the grey conversion, threshold and
contour tracing of a read's first search alone, the part of every read that no faster grouping or reading removes;
its ratio to zxing-cpp says how much of livereader's ratio the finder search's pixel work takes by itself.

A folder with a ``manifest.jsonl`` (see :func:`manifest`) stores each image's codes; its corners are given
in the stored pixel layout (:func:`livereader.live.capture.load_image`, which reads the images, ignores EXIF
orientation, as the manifest does).

The share of livereader's time per stage (:class:`StageTimer`) comes from the stage timers of
:mod:`livereader.timing`: the wall time of the calls of each function marked with a stage, over the time of the
calls read; stages overlap where one calls another.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np

from livereader import timing
from livereader.live.capture import load_image
from livereader.pipeline import ReaderOptions, scout_factor, to_grey
from livereader.symbol import encode
from livereader.vision.finder import contour_tree
from livereader.vision.search import shrunk

FIRST_CONTOURS = "first search's contours alone"  # the name of :func:`first_contours`' times in a row
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
PERCENTILES = (50, 90, 99)
# the stages that :func:`livereader.timing.timed` marks, in the order the shares are given (any other after them)
STAGES = ("finder patterns", "grouping and fit", "grid sampling", "CNN and verification", "refine (retry)",
          "deblur (retry)", "two-finder codes (retry)", "optical flow (streams)")

T = TypeVar("T")
R = TypeVar("R")


def manifest(folder: Path) -> dict[Path, dict]:
    """The folder's ``manifest.jsonl`` entries by image path: ``codes`` (each with ``text``, ``version`` and
    ``corners_tl_tr_br_bl`` in stored pixels) and, where given, ``hand_labelled_corners``; empty without one."""
    path = folder / "manifest.jsonl"
    if not path.is_file():
        return {}
    entries = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {folder / entry["path"]: entry for entry in entries}


def scaled(image: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk to a ``side`` px long side (as it is when already smaller)."""
    factor = side / max(image.shape[:2])
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else image


def photo_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def code_outlines(entry: dict) -> list[np.ndarray]:
    """Every code's outline ((4, 2) stored pixels) that a manifest entry knows of."""
    outlines = [np.array(code["corners_tl_tr_br_bl"], np.float32) for code in entry.get("codes", [])]
    for corners in entry.get("hand_labelled_corners") or []:
        outlines.append(np.array(corners, np.float32).reshape(-1, 2))
    return outlines


def code_free_crops(folder: Path, size: tuple[int, int] = (1280, 720), per_image: int = 2) -> Iterator[np.ndarray]:
    """Crops of ``size`` (width, height) from the folder's images (stored pixels) that hold no code: no known
    outline comes within a tenth of the crop's width. Only images with a manifest entry count (elsewhere the
    codes are unknown); at most ``per_image`` crops each, from the corners of the image inwards."""
    width, height = size
    for path, entry in manifest(folder).items():
        image = load_image(path)
        if image is None or image.shape[0] < height or image.shape[1] < width:
            continue
        margin = width // 10
        boxes = [(*(o.min(0) - margin), *(o.max(0) + margin)) for o in code_outlines(entry)]
        found = 0
        for y in np.linspace(0, image.shape[0] - height, 4).astype(int):
            for x in np.linspace(0, image.shape[1] - width, 4).astype(int):
                if found < per_image and all(x1 < x or x0 > x + width or y1 < y or y0 > y + height
                                             for x0, y0, x1, y1 in boxes):
                    found += 1
                    yield image[y : y + height, x : x + width]


def numeric_in_place(image: np.ndarray, entry: dict, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """The image with each version-1 code of its manifest entry replaced in place by a numeric version-1 code
    (1-17 random digits, the code's own level): drawn through the code's corners with the photo's own dark and
    light levels around each module (its local minimum and maximum over 1.5 modules), so that the photo's
    geometry, light, blur and noise stay; and the new codes as (text, (4, 2) corners)."""
    out = image.astype(np.float32)
    truths = []
    for code in entry.get("codes", []):
        if code["version"] != 1:
            continue
        corners = np.float32(code["corners_tl_tr_br_bl"])
        text = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 18))))
        light = np.kron(1 - encode(text, code.get("ec_level") or "M"), np.ones((8, 8), np.float32))  # 8 px a module
        x0, y0 = np.maximum(corners.min(0).astype(int) - 16, 0)
        x1, y1 = np.minimum(corners.max(0).astype(int) + 16, image.shape[1::-1])
        square = np.array([[0, 0], [168, 0], [168, 168], [0, 168]], np.float32)
        warp = cv2.getPerspectiveTransform(square, corners - np.array([x0, y0], np.float32))
        light = cv2.warpPerspective(light, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_AREA)
        inside = cv2.warpPerspective(np.ones((168, 168), np.float32), warp, (x1 - x0, y1 - y0), flags=cv2.INTER_AREA)
        patch = out[y0:y1, x0:x1]
        grey = patch.mean(2)
        window = max(3, int(1.5 * np.sqrt(cv2.contourArea(corners)) / 21) | 1)
        kernel = np.ones((window, window), np.uint8)
        low = cv2.blur(cv2.erode(grey, kernel), (window, window))
        high = cv2.blur(cv2.dilate(grey, kernel), (window, window))
        wide = (4 * window + 1,) * 2
        tint = cv2.blur(patch, wide) / np.maximum(cv2.blur(grey, wide), 1)[..., None]  # the paper's colour
        drawn = (low + (high - low) * light)[..., None] * tint
        patch[:] = inside[..., None] * drawn + (1 - inside[..., None]) * patch
        truths.append((text, corners))
    return np.clip(out, 0, 255).astype(np.uint8), truths


def page(codes: int, rng: np.random.Generator, size: tuple[int, int] = (1280, 960), module_px: int = 4,
         texts: Iterable[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """A synthetic page of ``codes`` six-digit level-H codes in a grid (``module_px`` px modules, quiet zones
    included), seen with a mild perspective and a little noise; and the codes' texts."""
    width, height = size
    texts = list(texts) if texts is not None else ["%06d" % n for n in rng.integers(0, 10**6, codes)]
    canvas = np.full((height, width), 230, np.uint8)
    cell = 29 * module_px
    columns = max(1, int(np.ceil(np.sqrt(codes))))
    left = (width - columns * cell) // 2
    top = (height - int(np.ceil(codes / columns)) * cell) // 2
    for index, text in enumerate(texts):
        row, column = divmod(index, columns)
        modules = np.pad(encode(text, "H"), 4)
        y, x = top + row * cell, left + column * cell
        canvas[y : y + cell, x : x + cell] = 230 - 200 * np.kron(modules, np.ones((module_px, module_px), np.uint8))
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    jitter = rng.uniform(-0.03, 0.03, (4, 2)).astype(np.float32) * np.array([width, height], np.float32)
    warp = cv2.getPerspectiveTransform(corners, corners + jitter)
    frame = cv2.warpPerspective(canvas, warp, size, flags=cv2.INTER_AREA, borderValue=230)
    noisy = frame.astype(np.float32) + rng.normal(0, 3, (height, width)).astype(np.float32)
    return cv2.cvtColor(np.clip(noisy, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR), texts


def first_contours(frame: np.ndarray, options: ReaderOptions = ReaderOptions()) -> int:
    """The pixel work of :func:`livereader.pipeline.read_frame`'s first search of ``frame`` and nothing else: grey
    conversion, (shrinking where it searches the shrunk frame first,) threshold and contour tracing
    (:func:`livereader.vision.finder.contour_tree`); returns the number of contours."""
    grey, finder = to_grey(frame), options.finder
    factor = scout_factor(grey.shape, options)
    if factor > 1:
        grey, finder = shrunk(grey, factor, finder)
    return len(contour_tree(grey, finder)[0])


def interleaved(frames: Iterable[T], readers: dict[str, Callable[[T], object]],
                inspect: Callable[[T, dict], None] | None = None) -> dict[str, list[float]]:
    """Time each reader on each frame in turn (ms), each first as often as the others (the first after loading a
    frame pays for cold caches); ``inspect(frame, outputs)`` sees each frame's outputs. A frame is what the readers
    take: an image, or a file that each reads itself. The objects the benchmark holds so far are frozen first
    (``gc.freeze``, as ``livereader`` freezes its models after loading them): the collector's full passes over them
    (a pass over 3 million objects took 0.4 s here) would otherwise fall inside timed frames."""
    gc.collect()
    gc.freeze()
    times: dict[str, list[float]] = {name: [] for name in readers}
    order = list(readers.items())
    for index, frame in enumerate(frames):
        outputs = {}
        for name, reader in order[index % len(order):] + order[:index % len(order)]:
            start = time.perf_counter()
            outputs[name] = reader(frame)
            times[name].append(1000 * (time.perf_counter() - start))
        if inspect:
            inspect(frame, outputs)
    return times


def row(times: dict[str, list[float]], ours: str = "livereader", theirs: str = "zxing-cpp") -> dict:
    """Percentiles of each reader's times and livereader's ratio to zxing-cpp at each; the largest ratio of one
    frame's times (``worst frame ratio``) and the ratio of the total times (``total ratio``)."""
    figures: dict = {"frames": len(times[ours])}
    for name, values in times.items():
        figures[name] = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES} if values else {}
    for name, key in ((ours, "ratio"), (FIRST_CONTOURS, "first contours ratio")):
        if times.get(theirs) and times.get(name):
            figures[key] = {f"p{p}": figures[name][f"p{p}"] / max(figures[theirs][f"p{p}"], 1e-9) for p in PERCENTILES}
    if times.get(theirs) and times.get(ours):
        mine, other = np.array(times[ours]), np.maximum(np.array(times[theirs]), 1e-9)
        figures["worst frame ratio"] = float((mine / other).max())
        figures["total ratio"] = float(mine.sum() / other.sum())
    return figures


def format_row(name: str, figures: dict, ours: str = "livereader", theirs: str = "zxing-cpp") -> str:
    if not figures["frames"]:
        return f"  {name:44s} no frames"
    cells = [f"{name:44s} {figures['frames']:4d}"]
    for reader in (ours, theirs):
        if figures.get(reader):
            cells.append(" / ".join(f"{figures[reader][f'p{p}']:7.2f}" for p in PERCENTILES))
    for key in ("ratio", "first contours ratio"):
        if key in figures:
            cells.append(" / ".join(f"{figures[key][f'p{p}']:5.1f}x" for p in PERCENTILES))
    if "worst frame ratio" in figures:
        cells.append(f"{figures['worst frame ratio']:5.1f}x {figures['total ratio']:5.1f}x")
    return "  " + "   ".join(cells)


class StageTimer(Generic[T, R]):
    """``function`` (a reader) with the stage timers (:func:`livereader.timing.measuring`) on during each of its
    calls, and only then: the other readers of a row stay out. ``stages``: seconds per stage; ``seconds``: the
    calls' own time."""

    def __init__(self, function: Callable[[T], R]) -> None:
        self.function = function
        self.stages: dict[str, float] = {}
        self.seconds = 0.0

    def __call__(self, frame: T) -> R:
        start = time.perf_counter()
        try:
            with timing.measuring(self.stages):
                return self.function(frame)
        finally:
            self.seconds += time.perf_counter() - start

    def shares(self) -> dict[str, float]:
        """The share of the calls' time spent in each stage that ran (in the order of ``STAGES``)."""
        order = [stage for stage in STAGES if stage in self.stages]
        order += [stage for stage in self.stages if stage not in STAGES]
        return {stage: self.stages[stage] / self.seconds for stage in order} if self.seconds > 0 else {}


class RunError(Exception):
    """A command the benchmark runs failed (the message is one line)."""


def cli_runs(video: Path, runs: int, zxing: Callable[[np.ndarray], object],
             models: list[str] | None = None) -> list[dict]:
    """``livereader --video VIDEO --nodisplay --jsonl FILE`` end to end (start-up, decoding, fusion and JSON lines
    included) in a process of its own, with ``--model`` for each of ``models`` if given, ``runs`` times, each right
    after ``zxing`` decoded and read the same video in this one (``cv2.VideoCapture``): per run the frames, the
    seconds of each, and the frames whose JSON lines hold a 21x21 code (read or rejected). Raises
    :class:`RunError` where the command fails."""
    from livereader.results import READ, REJECTED

    figures: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        lines = Path(folder) / "out.jsonl"
        command = [sys.executable, "-m", "livereader", "--video", str(video), "--nodisplay", "--jsonl", str(lines)]
        command += [argument for path in models or () for argument in ("--model", path)]
        for _ in range(runs):
            start, frames = time.perf_counter(), 0
            capture = cv2.VideoCapture(str(video))
            while (frame := capture.read()[1]) is not None:
                zxing(frame)
                frames += 1
            theirs = time.perf_counter() - start
            start = time.perf_counter()
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  errors="replace")
            ours = time.perf_counter() - start
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise RunError(f"livereader --video exited with {done.returncode}: {last}")
            entries = [json.loads(line) for line in lines.read_text().splitlines()]
            located = {entry["frame"] for entry in entries if entry["status"] in (READ, REJECTED)}
            figures.append({"frames": frames, "livereader s": ours, "zxing-cpp s": theirs,
                            "frames with a 21x21 code located": len(located)})
    return figures


def format_cli_run(run: dict) -> str:
    """One line of :func:`cli_runs`' figures."""
    return (f"livereader {run['livereader s']:6.2f} s ({run['frames'] / run['livereader s']:5.0f} frames/s), "
            f"zxing-cpp {run['zxing-cpp s']:5.2f} s: {run['livereader s'] / run['zxing-cpp s']:.2f}x; "
            f"21x21 code located in {run['frames with a 21x21 code located']} of {run['frames']} frames")
