"""``livereader-bench``: read rate, wrong reads and time per frame on synthetic scenes, next to zxing-cpp and
OpenCV's QRCodeDetector measured in the same run on the same frames; real footage (:mod:`livereader.bench.footage`).

``livereader`` reads each scene as a camera frame (:func:`livereader.pipeline.read_frame`'s defaults: codes
too small for the half-size search wait for a stream's whole-frame search); ``livereader (still image)``
searches the whole frame at full resolution, as ``livereader --image`` does.

Everything runs on one thread (OpenCV, torch, and zxing-cpp, which is single-threaded). A read counts when
the reported text equals the truth of the code under the reported position; any other reported text is a
wrong read (reading a foreign code's own text is not wrong, but it is not one of our reads either).

Each part of the benchmark is a :class:`Benchmark` of ``BENCHMARKS``: when the arguments ask for it, how it
measures its figures, the lines it prints of them; ``--json`` writes the figures by the parts' names.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from livereader.bench import footage
from livereader.geometry import holding
from livereader.live.capture import load_image
from livereader.synth.scene import CATEGORIES, Scene, TruthCode, scenes

if TYPE_CHECKING:
    from livereader.pipeline import Models, ReaderOptions
    from livereader.results import CodeResult

Reader = Callable[[np.ndarray], list[tuple[str, np.ndarray]]]  # a frame -> its reads as (text, centre (x, y))


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100,
                        help="frames per category at 640x480 (default 100; 0: no synthetic scenes)")
    parser.add_argument("--hd-frames", type=int, default=30,
                        help="frames per category at 1280x720, for the time column (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--categories", nargs="+", choices=list(CATEGORIES), default=list(CATEGORIES),
                        metavar="NAME", help=f"scene categories (default all: {' '.join(CATEGORIES)})")
    parser.add_argument("--photos", metavar="DIR",
                        help="also read every image under DIR as still images (with its manifest.jsonl, if any: "
                             "compared with it), and time them as camera frames next to zxing-cpp")
    parser.add_argument("--video", metavar="FILE", help="also read a video end to end, timed next to zxing-cpp")
    parser.add_argument("--cli-runs", type=int, default=0, metavar="N",
                        help="also run `livereader --video FILE --nodisplay --jsonl ...` N times, start-up included, "
                             "each right after zxing-cpp decoded and read the same video (needs --video)")
    parser.add_argument("--scaling-frames", type=int, default=10, metavar="N",
                        help="synthetic pages per row of the scaling rows (0, 1, 4, 16, 64 codes; default 10)")
    parser.add_argument("--clips", type=int, default=0, metavar="N",
                        help="also track codes through N clips of 15-60 frames with 1-4 moving codes each")
    parser.add_argument("--fusion", type=int, default=0, metavar="N",
                        help="also read N 15-frame clips of each hard clip kind, with and without temporal fusion")
    parser.add_argument("--recall", type=int, default=0, metavar="N",
                        help="also read N noisy 15-frame clips frame by frame and as streams (scheduled, paced to 30 "
                             "frames/s): the clips each reads, and those read frame by frame that a stream missed")
    parser.add_argument("--lens", type=int, default=0, metavar="FRAMES",
                        help="also calibrate the built-in wide-angle camera from rendered chessboard views and read "
                             "FRAMES frames through its lens, with and without undistortion")
    parser.add_argument("--serve-load", metavar="DIR",
                        help="also serve the HTTP API and post every photo under DIR (at 1280 px) from 8 clients at "
                             "once, 200 requests: answers against livereader.read's, requests/s, latency (needs "
                             "livereader[serve])")
    parser.add_argument("--model", action="append", metavar="FILE",
                        help="model file; repeat to try several in order (default: the shipped models)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return parser


def _owner(point: np.ndarray, scene: Scene) -> TruthCode | None:
    """The truth code whose outline (with a module of margin) holds ``point``, or None."""
    outlines, margins = [code.corners for code in scene.codes], [code.module_px for code in scene.codes]
    index = holding(tuple(point), outlines, margin=margins)
    return None if index is None else scene.codes[index]


def _score(reported: list[tuple[str, np.ndarray]], scene: Scene) -> tuple[int, int]:
    """(reads of supported codes, wrong reads) for (text, centre) pairs reported on a scene."""
    reads: set[str] = set()
    wrong = 0
    for text, centre in reported:
        owner = _owner(centre, scene)
        if owner is None or owner.text != text:
            wrong += 1
        elif owner.supported:
            reads.add(owner.text)
    return len(reads), wrong


class _Readers:
    """The readers compared, each as frame -> [(text, centre)]; zxing-cpp and OpenCV when available."""

    def __init__(self, model_paths: list[str] | None):
        from livereader import compiled
        from livereader.decode.reader import load_models
        from livereader.pipeline import ReaderOptions, read_frame
        from livereader.vision.grid import GridOptions

        self.models = models = load_models(model_paths)
        # every frame timed with the compiled kernels (after install: compiled first; a hung compile lock: its wait)
        compiled.wait(timeout=compiled.LOCK_WAIT + 60)
        if compiled.kernels() is None:
            print("livereader-bench: the compiled kernels did not load: the plain references are timed",
                  file=sys.stderr)
        soft, still = ReaderOptions(grid=GridOptions(soft=True)), ReaderOptions(scout=1)

        def ours(frame: np.ndarray, options: ReaderOptions = ReaderOptions()) -> list[tuple[str, np.ndarray]]:
            return [(r.text, np.mean(r.corners, 0)) for r in read_frame(frame, models, options) if r.text]

        self.readers: dict[str, Reader] = {"livereader": ours}
        self.untimed: dict[str, Reader] = {"livereader (soft grids)": lambda frame: ours(frame, soft),
                                           "livereader (still image)": lambda frame: ours(frame, still)}
        try:
            import zxingcpp

            def zxing(frame: np.ndarray) -> list[tuple[str, np.ndarray]]:
                found = zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
                return [(r.text, _centre(r.position)) for r in found if r.valid]

            self.readers["zxing-cpp"] = zxing
        except ImportError:
            print("livereader-bench: zxing-cpp not installed (pip install zxing-cpp): not compared", file=sys.stderr)
        detector = cv2.QRCodeDetector()

        def opencv(frame: np.ndarray) -> list[tuple[str, np.ndarray]]:
            ok, texts, points, _ = detector.detectAndDecodeMulti(frame)
            return [(t, p.mean(0)) for t, p in zip(texts, points) if t] if ok else []

        self.readers["opencv"] = opencv


def _centre(position: Any) -> np.ndarray:  # a zxingcpp.Position (zxing-cpp is optional)
    corners = [position.top_left, position.top_right, position.bottom_right, position.bottom_left]
    return np.array([[p.x, p.y] for p in corners], np.float64).mean(0)


def run_scenes(readers: _Readers, categories: list[str], frames: int, hd_frames: int, seed: int) -> dict:
    """Per category and reader: codes, reads, wrong reads, median ms at 640x480 and 1280x720."""
    figures: dict = {}
    everyone = {**readers.readers, **readers.untimed}
    for category in categories:
        row: dict = defaultdict(lambda: {"reads": 0, "wrong": 0, "ms": [], "ms_hd": []})
        codes = 0
        for index, scene in enumerate(scenes([category], frames, seed)):
            codes += sum(c.supported for c in scene.codes)
            # each reader first after the rendering as often as the others: the first pays for cold caches
            order = list(everyone.items())
            for name, reader in order[index % len(order):] + order[:index % len(order)]:
                start = time.perf_counter()
                reported = reader(scene.image)
                row[name]["ms"].append(1000 * (time.perf_counter() - start))
                reads, wrong = _score(reported, scene)
                row[name]["reads"] += reads
                row[name]["wrong"] += wrong
        for index, scene in enumerate(scenes([category], hd_frames, seed, size=(1280, 720))):
            order = list(readers.readers.items())
            for name, reader in order[index % len(order):] + order[:index % len(order)]:
                start = time.perf_counter()
                reader(scene.image)
                row[name]["ms_hd"].append(1000 * (time.perf_counter() - start))
        figures[category] = {"codes": codes, "readers": {
            name: {"read": r["reads"] / max(codes, 1), "wrong": r["wrong"],
                   "ms": float(np.median(r["ms"])), "ms_hd": float(np.median(r["ms_hd"])) if r["ms_hd"] else None,
                   "all_ms": r["ms"], "all_ms_hd": r["ms_hd"]}
            for name, r in row.items()}}
    return figures


def _inside(outline: Any, point: Any) -> bool:
    """Whether the outline ((N, 2) pixels, edge included) holds the point (x, y)."""
    return holding(point, [outline]) is not None


def compare_with_manifest(results: list[CodeResult], entry: dict) -> dict:
    """One photo's reads next to its manifest entry (version-1 codes that zxing-cpp decoded, hand-labelled
    outlines of every code): ``codes`` version-1 codes decoded by zxing-cpp, ``exact`` of those read by us
    with exactly its text, ``wrong`` reads of ours inside a decoded code's outline with another text,
    ``beyond`` reads inside a hand-labelled outline where zxing-cpp decoded nothing, ``elsewhere`` reads
    outside every known code."""
    counts = dict.fromkeys(("codes", "exact", "wrong", "beyond", "elsewhere"), 0)
    decoded = entry.get("codes", [])
    labelled = [np.float32(c).reshape(-1, 2) for c in entry.get("hand_labelled_corners") or []]
    reads = [(r.text, np.mean(r.corners, 0)) for r in results if r.text]
    for code in decoded:
        if code["version"] == 1:
            counts["codes"] += 1
            counts["exact"] += any(text == code["text"] and _inside(code["corners_tl_tr_br_bl"], centre)
                                   for text, centre in reads)
    for text, centre in reads:
        holders = [code for code in decoded if _inside(code["corners_tl_tr_br_bl"], centre)]
        if holders:
            counts["wrong"] += all(text != code["text"] for code in holders)
        elif any(_inside(outline, centre) for outline in labelled):
            counts["beyond"] += 1
        else:
            counts["elsewhere"] += 1
    return counts


def run_photos(folder: Path, models: Models) -> dict:
    """Every image under ``folder`` read as a still image (as ``livereader --image`` does): located codes by
    status, and wrong reads (a number that is not a text its manifest entry or a ``.txt`` beside it gives).
    With a manifest: its version-1 codes, and how many livereader located (a code of ours centred in its
    outline); and per folder the comparison of reads with ``--content any`` with the manifest's texts
    (:func:`compare_with_manifest`), and the numeric version-1 codes read with the default content."""
    from livereader.decode.verify import VerifyOptions
    from livereader.pipeline import ReaderOptions, read_frame

    entries = footage.manifest(folder)
    still = ReaderOptions(scout=1)
    any_content = ReaderOptions(scout=1, verify=VerifyOptions(content="any"))
    counts: dict = defaultdict(int)
    by_folder: dict = defaultdict(lambda: defaultdict(int))
    wrong_files: list[str] = []
    for path in footage.photo_paths(folder):
        image = load_image(path)
        if image is None:
            counts["unreadable"] += 1
            continue
        counts["photos"] += 1
        entry = entries.get(path, {})
        truth = {entry.get("truth_text"), *(c["text"] for c in entry.get("codes", []))} - {None}
        if not truth and path.with_suffix(".txt").is_file():
            truth = {path.with_suffix(".txt").read_text(errors="replace").strip()}
        results = read_frame(image, models, still)
        counts["with a located code"] += bool(results)
        for result in results:
            counts[result.status] += 1
            if result.text and result.text not in truth:
                counts["wrong"] += 1
                wrong_files.append(str(path))
        ours = [np.mean(r.corners, 0) for r in results if r.modules == 21]
        for code in entry.get("codes", []):
            if code["version"] == 1:
                counts["manifest version-1 codes"] += 1
                counts["of those located"] += any(_inside(code["corners_tl_tr_br_bl"], c) for c in ours)
                if code.get("numeric_only"):
                    counts["numeric version-1 codes"] += 1
                    counts["of those read"] += any(r.text == code["text"] and _inside(code["corners_tl_tr_br_bl"],
                                                                                       np.mean(r.corners, 0))
                                                   for r in results)
        if entry:
            compared = compare_with_manifest(read_frame(image, models, any_content), entry)
            for key, value in compared.items():
                by_folder[str(path.parent.relative_to(folder))][key] += value
            if compared["wrong"]:
                wrong_files.append(str(path))
    return {**counts, "wrong_files": wrong_files, "text": {k: dict(v) for k, v in sorted(by_folder.items())}}


def run_numbers_in_place(folder: Path, readers: _Readers, seed: int) -> dict:
    """Numbers in real scenes: each photo of the folder's manifest with version-1 codes, those codes replaced in
    place by numeric version-1 codes (:func:`livereader.bench.footage.numeric_in_place`), read as camera frames
    (:func:`livereader.pipeline.read_frame`'s defaults) as stored and scaled to a 1280 px long side; per reader
    and size: the new codes, those read with their text (a read centred in the code's outline), wrong texts."""
    rng = np.random.default_rng([seed, 23])
    compared = {name: reader for name, reader in readers.readers.items() if name in ("livereader", "zxing-cpp")}
    figures: dict = {}
    for path, entry in footage.manifest(folder).items():
        if not any(code["version"] == 1 for code in entry.get("codes", [])) or (image := load_image(path)) is None:
            continue
        replaced, truths = footage.numeric_in_place(image, entry, rng)
        for size, frame in (("as stored", replaced), ("1280 px", footage.scaled(replaced, 1280))):
            factor = frame.shape[1] / replaced.shape[1]
            for name, reader in compared.items():
                counts = figures.setdefault(size, {}).setdefault(name, {"codes": 0, "read": 0, "wrong": 0})
                reads = reader(frame)
                for text, corners in truths:
                    inside = [read for read, centre in reads if _inside(corners * factor, centre)]
                    counts["codes"] += 1
                    counts["read"] += text in inside
                    counts["wrong"] += sum(read != text for read in inside)
    return figures


def report_numbers_in_place(figures: dict) -> list[str]:
    lines = ["", "numbers in real scenes: the manifest's version-1 codes replaced in place by numeric version-1 codes, "
                 "read as camera frames (codes read with their text / codes, wrong texts)"]
    for size, by_reader in figures.items():
        cells = [f"{name} {c['read']}/{c['codes']} ({100 * c['read'] / max(c['codes'], 1):.1f}%), {c['wrong']} wrong"
                 for name, c in by_reader.items()]
        lines.append(f"  {size:10s} " + "   ".join(cells))
    return lines


def report_photos(photos: dict, folder: str) -> list[str]:
    lines = ["", f"photos in {folder}, read as still images: {photos.get('photos', 0)} read, "
                 f"{photos.get('with a located code', 0)} with a located code; located codes: "
                 f"{photos.get('unsupported', 0)} unsupported, {photos.get('rejected', 0)} rejected, "
                 f"{photos.get('read', 0)} read; wrong reads: {photos.get('wrong', 0)}"]
    if photos.get("manifest version-1 codes"):
        lines.append(f"  version-1 codes in the manifest: {photos['manifest version-1 codes']}, "
                     f"located by livereader: {photos['of those located']}; numeric ones: "
                     f"{photos.get('numeric version-1 codes', 0)}, read: {photos.get('of those read', 0)}")
    if photos.get("text"):
        lines += ["", "--content any against the manifest (version-1 codes zxing-cpp decodes; reads of ours with "
                      "exactly its text; wrong texts; reads where zxing-cpp decoded no code: inside a hand-labelled "
                      "outline, outside every known code)",
                  f"  {'folder':28} {'codes':>6} {'exact':>6} {'%':>6} {'wrong':>6} {'beyond':>7} {'elsewhere':>10}"]
        total: dict = defaultdict(int)
        for name, row in list(photos["text"].items()) + [("overall", None)]:
            row = row or total
            if name != "overall":
                for key, value in row.items():
                    total[key] += value
            rate = f"{100 * row['exact'] / row['codes']:.1f}" if row["codes"] else "-"
            lines.append(f"  {name:28} {row['codes']:6d} {row['exact']:6d} {rate:>6} {row['wrong']:6d} "
                         f"{row['beyond']:7d} {row['elsewhere']:10d}")
    return lines


def _count_reads(reads: list[int], texts: dict, frame: np.ndarray, outputs: dict) -> None:
    """Add to ``reads[0]`` the codes of ``frame`` (texts by frame id) that livereader read."""
    reads[0] += len({r.text for r in outputs["livereader"] if r.text} & texts[id(frame)])


def _footage_row(readers: _Readers, frames: Iterable[np.ndarray], ours: Callable[[np.ndarray], object],
                 inspect: Callable[[np.ndarray, dict], None] | None = None, first: ReaderOptions | None = None) -> dict:
    """A row of ``ours`` next to zxing-cpp; with ``first``, also :func:`footage.first_contours` of those options."""
    timed: dict[str, Callable[[np.ndarray], object]] = {"livereader": ours}
    timed.update((name, reader) for name, reader in readers.readers.items() if name == "zxing-cpp")
    if first is not None:
        timed[footage.FIRST_CONTOURS] = functools.partial(footage.first_contours, options=first)
    return footage.row(footage.interleaved(frames, timed, inspect))


def run_footage(readers: _Readers, photos: Path | None, video: Path | None, scaling_frames: int, seed: int) -> dict:
    """Time per frame next to zxing-cpp, interleaved frame by frame (see :mod:`livereader.bench.footage`), per group;
    and the share of livereader's time per stage in the photos read as camera frames and in the video."""
    groups: dict = {}
    shares: dict = {}
    if photos:
        _photo_groups(readers, photos, groups, shares)
    if video:
        _video_groups(readers, video, groups, shares)
    return {"groups": groups, "shares": shares, "scaling": _scaling_rows(readers, scaling_frames, seed)}


def _photo_groups(readers: _Readers, folder: Path, groups: dict, shares: dict) -> None:
    """:func:`run_footage`'s rows of the photos under ``folder`` (and the stage shares as camera frames)."""
    from livereader.pipeline import ReaderOptions, read_frame

    models = readers.models
    files, at_1280, small, lots = [], [], [], []  # each photo kept only as the groups need it
    for path in footage.photo_paths(folder):
        image = load_image(path)
        if image is None:
            continue
        files.append(path)
        at_1280.append(footage.scaled(image, 1280))
        if image.shape[:2] == (480, 640):
            small.append(image)
        if path.parent.name == "lots":
            lots.append(footage.scaled(image, 1920))
    camera_frame: footage.StageTimer[np.ndarray, list[CodeResult]] = footage.StageTimer(
        lambda image: read_frame(image, models))
    camera, still = ReaderOptions(), ReaderOptions(scout=1)
    groups["photos, 1280 px, as camera frames"] = _footage_row(readers, at_1280, camera_frame, first=camera)
    shares["photos, 1280 px, as camera frames"] = camera_frame.shares()
    groups["photos, 1280 px, as still images"] = _footage_row(
        readers, at_1280, lambda image: read_frame(image, models, still), first=still)
    zxing = readers.readers.get("zxing-cpp")
    if zxing is not None:  # each file decoded and read: what `livereader --image` does per file
        times = footage.interleaved(files, {"livereader": lambda path: read_frame(_decoded(path), models, still),
                                            "zxing-cpp": lambda path: zxing(_decoded(path))})
        groups["photos as stored, still images, decoding included"] = footage.row(times)
    groups["photos of 640x480, as stored, camera frames"] = _footage_row(
        readers, small, lambda image: read_frame(image, models), first=camera)
    groups["'lots' photos, 1920 px, camera frames"] = _footage_row(
        readers, lots, lambda image: read_frame(image, models), first=camera)
    crops = list(footage.code_free_crops(folder))
    groups["code-free 1280x720 crops, camera frames"] = _footage_row(
        readers, crops, lambda image: read_frame(image, models), first=camera)


def _decoded(path: Path) -> np.ndarray:
    """A photo that was readable before (:func:`load_image`); RunError if it no longer is."""
    image = load_image(path)
    if image is None:
        raise footage.RunError(f"cannot read {path} any more")
    return image


def _video_groups(readers: _Readers, video: Path, groups: dict, shares: dict) -> None:
    """:func:`run_footage`'s rows of the video read by a StreamReader paced and on its schedule, and their stage
    shares."""
    from livereader.live.stream import StreamOptions, StreamReader

    decode: list[float] = []

    def frames() -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(video))
        while True:
            start = time.perf_counter()
            ok, frame = capture.read()
            if not ok:
                return
            decode.append(1000 * (time.perf_counter() - start))
            yield frame

    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS) or 30.0
    # paced to the video's frame rate, as `livereader --video` reads it, and on the search schedule alone
    for way, paced in (("paced", StreamOptions(interval=1 / fps)), ("scheduled", StreamOptions())):
        decode.clear()
        stream, located = StreamReader(readers.models, stream=paced), [0]
        reader = footage.StageTimer(stream.read)

        def count(frame: np.ndarray, outputs: dict, located: list[int] = located) -> None:
            located[0] += any(code.result is not None and code.result.modules == 21 for code in outputs["livereader"])

        row = _footage_row(readers, frames(), reader, count)
        row["decode ms"] = float(np.sum(decode))
        row["frames with a 21x21 code located"] = located[0]
        groups[f"video {video.name}, StreamReader, {way}"] = row
        shares[f"video {video.name}, {way}"] = reader.shares()


def _scaling_rows(readers: _Readers, scaling_frames: int, seed: int) -> dict:
    """:func:`run_footage`'s rows of synthetic pages of 0, 1, 4, 16 and 64 codes, with the share of codes read."""
    from livereader.pipeline import read_frame

    rng = np.random.default_rng([seed, 17])
    scaling = {}
    for codes in (0, 1, 4, 16, 64):
        pages = [footage.page(codes, rng) for _ in range(scaling_frames)]
        reads = [0]
        score = functools.partial(_count_reads, reads, {id(image): set(t) for image, t in pages})
        row = _footage_row(readers, [image for image, _ in pages], lambda image: read_frame(image, readers.models),
                           score)
        row["codes read"] = reads[0] / max(codes * scaling_frames, 1)
        scaling[codes] = row
    return scaling


def report_footage(figures: dict) -> list[str]:
    header = f"  {'frames (ms per frame: median / p90 / p99)':44s} {'n':>4s}   {'livereader':^27s}   " \
             f"{'zxing-cpp':^27s}   ratio"
    lines = ["", "real footage, one thread, livereader and zxing-cpp interleaved frame by frame",
             header + f"{'':18s}   first contours' ratio{'':6s}worst frame, total ratio"]
    for name, figures_row in figures["groups"].items():
        lines.append(footage.format_row(name, figures_row))
        if "decode ms" in figures_row:
            lines.append(f"  {'':44s} video decoding {figures_row['decode ms'] / 1000:.2f} s in all; frames with a "
                         f"21x21 code located: {figures_row['frames with a 21x21 code located']}")
    lines += ["", "scaling: synthetic 1280x960 pages of N codes (4 px modules)", header + "   codes read"]
    for codes, figures_row in figures["scaling"].items():
        lines.append(footage.format_row(f"{codes} codes", figures_row) + f"   {100 * figures_row['codes read']:5.1f}%")
    base = figures["scaling"][0]["livereader"]["p50"]
    one, many = (figures["scaling"][n]["livereader"]["p50"] - base for n in (1, 64))
    lines.append(f"  beyond an empty page's {base:.2f} ms: 1 code {one:.2f} ms, 64 codes {many:.2f} ms "
                 f"({many / max(one, 1e-9):.1f}x one code's)")
    for name, shares in figures["shares"].items():
        lines += ["", f"share of livereader's time per stage, {name} (stage timers; stages overlap where one calls "
                      "another):",
                  "  " + ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in shares.items())]
    return lines


def report_cli(runs: list[dict], video: str) -> list[str]:
    lines = ["", f"livereader --video {video} --nodisplay --jsonl FILE, start-up included, each run right after "
                 "zxing-cpp decoded and read the same video (one thread):"]
    lines += ["  " + footage.format_cli_run(run) for run in runs]
    ratios = [run["livereader s"] / run["zxing-cpp s"] for run in runs]
    rates = [run["frames"] / run["livereader s"] for run in runs]
    lines.append(f"  {len(runs)} runs: {min(ratios):.2f}-{max(ratios):.2f}x (median {np.median(ratios):.2f}x), "
                 f"{min(rates):.0f}-{max(rates):.0f} frames/s")
    return lines


CLIP_CATEGORIES = ("clean", "noise", "perspective", "small")


def run_clips(clips: int, model: Models, seed: int) -> dict:
    """Track ids and once-reporting on ``clips`` clips (cycling through ``CLIP_CATEGORIES``).

    A detection is a located code within half a code size of a truth code's centre; a pair of consecutive
    detections of the same code keeps its id when both carry the same track id. Reports: first reads
    (``TrackedCode.first_read``) per code that was read at all; exactly one each is right.
    """
    from livereader.live.track import Tracker
    from livereader.pipeline import read_frame
    from livereader.synth.scene import clip

    rng = np.random.default_rng([seed, 11])
    figures = {"clips": clips, "frames": 0, "detections": 0, "pairs": 0, "kept": 0, "codes read": 0,
               "reported once": 0, "reports": 0, "wrong": 0}
    for index in range(clips):
        category = CLIP_CATEGORIES[index % len(CLIP_CATEGORIES)]
        scenes_of_clip = clip(CATEGORIES[category], int(rng.integers(15, 61)), int(rng.integers(1, 5)), rng)
        tracker = Tracker()
        last: dict[int, tuple[int, int]] = {}  # code -> (frame, track) of its latest detection
        reports: dict[str | None, int] = defaultdict(int)  # a first read always has a text
        for t, scene in enumerate(scenes_of_clip.frames):
            figures["frames"] += 1
            for code in tracker.update(read_frame(scene.image, model)):
                if code.result is None:
                    continue
                centre = np.mean(code.result.corners, 0)
                truths = [np.hypot(*(centre - np.mean(c.corners, 0))) / (c.module_px * 21) for c in scene.codes]
                which = int(np.argmin(truths))
                if truths[which] > 0.5:
                    continue
                figures["detections"] += 1
                if which in last and last[which][0] == t - 1:
                    figures["pairs"] += 1
                    figures["kept"] += last[which][1] == code.track
                last[which] = (t, code.track)
                if code.first_read:
                    reports[code.result.text] += 1
                    figures["wrong"] += code.result.text != scene.codes[which].text
        figures["codes read"] += len(reports)
        figures["reported once"] += sum(n == 1 for n in reports.values())
        figures["reports"] += sum(reports.values())
    return figures


FUSION_VARIANTS = ("single frames", "fused")


def run_fusion(clips: int, models: Models, seed: int) -> dict:
    """Per kind of ``scene.HARD_CLIPS``: ``clips`` clips of 15 frames with 1-2 moving codes, read frame by frame
    and with temporal fusion (:func:`livereader.live.fuse.read_fused`), each tracked.
    Figures: the share of (frame, code) pairs that single frames read; per way, the codes read within the clip,
    the mean frames to a code's first read, and wrong reads (a number that is not the code's under it)."""
    from livereader.live.fuse import FrameStack, read_fused
    from livereader.live.track import Tracker
    from livereader.pipeline import READ, read_frame
    from livereader.synth.scene import HARD_CLIPS, clip

    figures = {}
    for index, (kind, config) in enumerate(HARD_CLIPS.items()):
        rng = np.random.default_rng([seed, 13, index])
        entry: dict[str, Any] = {"clips": clips, "codes": 0, "code frames": 0, "single reads": 0,
                 **{v: {"codes read": 0, "frames to read": [], "wrong": 0} for v in FUSION_VARIANTS}}
        for _ in range(clips):
            frames = clip(config, 15, int(rng.integers(1, 3)), rng).frames
            entry["codes"] += len(frames[0].codes)
            for variant in FUSION_VARIANTS:
                tracker, stack, fused = Tracker(), FrameStack(), variant == "fused"
                first: dict[str, int] = {}  # code -> the frame (1-based) of its first read
                for t, scene in enumerate(frames):
                    results = read_fused(scene.image, stack, models) if fused else read_frame(scene.image, models)
                    for code in tracker.update(results):
                        if code.result is None or code.result.status != READ:
                            continue
                        owner = _owner(np.mean(code.result.corners, 0), scene)
                        if owner is None or owner.text != code.result.text:
                            entry[variant]["wrong"] += 1
                        else:
                            first.setdefault(owner.text, t + 1)
                            if variant == "single frames":
                                entry["single reads"] += 1
                    if variant == "single frames":
                        entry["code frames"] += len(scene.codes)
                entry[variant]["codes read"] += len(first)
                entry[variant]["frames to read"] += list(first.values())
        for variant in FUSION_VARIANTS:
            entry[variant]["frames to read"] = float(np.mean(entry[variant]["frames to read"] or [0]))
        figures[kind] = entry
    return figures


RECALL_WAYS = ("frame by frame", "stream, scheduled", "stream, paced")


def run_recall(clips: int, models: Models, seed: int) -> dict:
    """``clips`` noisy clips (:func:`livereader.synth.scene.noisy_clip`: 15 frames, a code that only some frames
    read alone), each read frame by frame (:func:`livereader.pipeline.read_frame`, as camera frames) and by a
    :class:`livereader.live.stream.StreamReader` on its schedule and paced to 30 frames/s (``StreamOptions.interval``),
    both with fusion. Figures per way: clips whose code it read, wrong reads, milliseconds per frame, and clips
    read frame by frame that it missed."""
    from livereader.live.stream import StreamOptions, StreamReader
    from livereader.pipeline import read_frame
    from livereader.synth.scene import noisy_clip

    rng = np.random.default_rng([seed, 17])
    made = [noisy_clip(rng) for _ in range(clips)]
    streams = {"stream, scheduled": StreamOptions(), "stream, paced": StreamOptions(interval=1 / 30)}
    figures: dict = {"clips": clips}
    read_by: dict[str, list[bool]] = {}
    for way in RECALL_WAYS:
        read, wrong, started = [], 0, time.perf_counter()
        for text, frames in made:
            if way in streams:
                stream = StreamReader(models, stream=streams[way])
                results = [code.result for frame in frames for code in stream.read(frame) if code.result is not None]
            else:
                results = [result for frame in frames for result in read_frame(frame, models)]
            texts = {result.text for result in results if result.text}
            read.append(text in texts)
            wrong += len(texts - {text})
        read_by[way] = read
        figures[way] = {"read": sum(read), "wrong": wrong,
                        "ms per frame": 1000 * (time.perf_counter() - started) / (15 * max(clips, 1)),
                        "missed": sum(alone and not got for alone, got in zip(read_by[RECALL_WAYS[0]], read))}
    return figures


def run_lens(frames: int, model: Models, seed: int) -> dict:
    """Calibrate ``scene.DEMO_CAMERA`` from 20 rendered 9x6 chessboard views, then read ``frames`` distorted
    scenes as they are and undistorted by the profile: reads and wrong reads of both, and the fit's errors."""
    from livereader.live.calibrate import Undistorter, calibrate
    from livereader.pipeline import read_frame
    from livereader.synth.scene import DEMO_CAMERA, chessboard_views, lens_scenes

    profile = calibrate(chessboard_views((9, 6), DEMO_CAMERA, 20, seed), (9, 6))
    true = DEMO_CAMERA.camera_matrix
    figures: dict[str, Any] = {"k1": float(DEMO_CAMERA.distortion[0]), "views": profile.views, "rms_px": profile.rms,
                               "fx_error": float(profile.camera_matrix[0, 0] / true[0, 0] - 1),
                               "fy_error": float(profile.camera_matrix[1, 1] / true[1, 1] - 1),
                               "k1_error": float(profile.distortion[0] - DEMO_CAMERA.distortion[0]), "codes": 0,
                               "without profile": {"reads": 0, "wrong": 0}, "with profile": {"reads": 0, "wrong": 0}}
    undistort = Undistorter(profile)
    for scene in lens_scenes(frames, seed):
        truth = {code.text for code in scene.codes if code.supported}
        figures["codes"] += len(truth)
        for name, image in (("without profile", scene.image), ("with profile", undistort(scene.image))):
            texts = {r.text for r in read_frame(image, model) if r.text}
            figures[name]["reads"] += len(texts & truth)
            figures[name]["wrong"] += len(texts - truth)
    return figures


def report_clips(clips: dict) -> list[str]:
    kept = 100 * clips["kept"] / max(clips["pairs"], 1)
    return ["", f"tracking: {clips['clips']} clips, {clips['frames']} frames, {clips['detections']} detections; track "
                f"id kept in {clips['kept']} of {clips['pairs']} consecutive pairs ({kept:.2f}%); --once: "
                f"{clips['reports']} reports for {clips['codes read']} codes read, {clips['reported once']} reported "
                f"exactly once; wrong reports: {clips['wrong']}"]


def report_fusion(fusion: dict) -> list[str]:
    lines = ["", "temporal fusion, 15-frame clips: codes read within the clip (mean frames to the first read), wrong "
                 "reads"]
    for kind, e in fusion.items():
        single = 100 * e["single reads"] / max(e["code frames"], 1)
        lines.append(f"  {kind}: {e['clips']} clips, {e['codes']} codes; single frames read {single:.1f}% of code "
                     "frames")
        for variant in FUSION_VARIANTS:
            v = e[variant]
            lines.append(f"    {variant:14s} {v['codes read']:4d} ({100 * v['codes read'] / max(e['codes'], 1):5.1f}%, "
                         f"{v['frames to read']:.1f} frames)  {v['wrong']} wrong")
    return lines


def report_recall(recall: dict) -> list[str]:
    n = recall["clips"]
    lines = ["", f"stream recall, {n} noisy 15-frame clips (a code some frames read alone): clips read, wrong reads, "
                 "ms per frame, clips read frame by frame that this way missed"]
    for way in RECALL_WAYS:
        e = recall[way]
        lines.append(f"  {way:18s} {e['read']:4d} ({100 * e['read'] / max(n, 1):5.1f}%)  {e['wrong']} wrong  "
                     f"{e['ms per frame']:5.2f} ms  missed {e['missed']}")
    return lines


def report_lens(lens: dict, frames: int) -> list[str]:
    lines = ["", f"lens (scene.DEMO_CAMERA, k1 {lens['k1']:.2f}): calibrated from {lens['views']} chessboard views, "
                 f"RMS {lens['rms_px']:.3f} px; errors fx {100 * lens['fx_error']:+.2f}%, "
                 f"fy {100 * lens['fy_error']:+.2f}%, k1 {lens['k1_error']:+.4f}"]
    for name in ("without profile", "with profile"):
        reads, wrong = lens[name]["reads"], lens[name]["wrong"]
        rate = 100 * reads / max(lens["codes"], 1)
        lines.append(f"  {lens['codes']} codes in {frames} distorted frames, {name}: {rate:.1f}% read, {wrong} wrong")
    return lines


def report_scenes(figures: dict) -> list[str]:
    names = list(next(iter(figures.values()))["readers"])
    lines = ["read rate % / wrong reads per category (median ms per frame at 640x480, one thread)",
             f"{'category':12s} {'codes':>5s}  " + "  ".join(f"{n:>26s}" for n in names)]
    totals: dict[str, list] = defaultdict(lambda: [0.0, 0, []])  # reader -> [reads, wrong reads, all ms]
    codes = 0
    for category, entry in figures.items():
        cells = []
        codes += entry["codes"]
        for name in names:
            r = entry["readers"][name]
            totals[name][0] += r["read"] * entry["codes"]
            totals[name][1] += r["wrong"]
            totals[name][2] += r["all_ms"]
            cells.append(f"{100 * r['read']:6.1f}% {r['wrong']:3d} wrong {r['ms']:6.2f} ms")
        lines.append(f"{category:12s} {entry['codes']:5d}  " + "  ".join(f"{c:>26s}" for c in cells))
    cells = [f"{100 * t[0] / max(codes, 1):6.1f}% {t[1]:3d} wrong {np.median(t[2]):6.2f} ms" for t in totals.values()]
    lines += [f"{'overall':12s} {codes:5d}  " + "  ".join(f"{c:>26s}" for c in cells),
              "", "speed, median over all frames, one thread:"]
    for name in names:
        all_ms = [m for e in figures.values() for m in e["readers"][name]["all_ms"]]
        all_hd = [m for e in figures.values() for m in e["readers"][name]["all_ms_hd"]]
        line = f"  {name:24s} 640x480: {np.median(all_ms):6.2f} ms ({1000 / np.median(all_ms):6.0f} frames/s)"
        if all_hd:
            line += f"   1280x720: {np.median(all_hd):6.2f} ms ({1000 / np.median(all_hd):6.0f} frames/s)"
        lines.append(line)
    if "zxing-cpp" in names:
        ours = np.median([m for e in figures.values() for m in e["readers"]["livereader"]["all_ms"]])
        theirs = np.median([m for e in figures.values() for m in e["readers"]["zxing-cpp"]["all_ms"]])
        lines.append(f"  livereader / zxing-cpp time at 640x480: {ours / theirs:.2f}x")
    return lines


def _without_frame_times(figures: dict) -> dict:
    """The scenes' figures as ``--json`` keeps them: without each frame's time (``all_ms``, ``all_ms_hd``)."""
    return {category: {**entry, "readers": {name: {key: value for key, value in r.items()
                                                   if key not in ("all_ms", "all_ms_hd")}
                                            for name, r in entry["readers"].items()}}
            for category, entry in figures.items()}


Figures = Any  # a benchmark's figures, as --json writes them: a dict (the command-line runs: a list of dicts)


@dataclass(frozen=True)
class Benchmark:
    """One part of ``livereader-bench``; ``--json`` holds its figures under its name."""

    name: str
    asked: Callable[[argparse.Namespace, _Readers], bool]  # whether the parsed arguments ask for it
    run: Callable[[argparse.Namespace, _Readers], Figures]  # measures: its figures
    report: Callable[[Figures, argparse.Namespace], list[str]]  # the lines printed of its figures
    stored: Callable[[Figures], Figures] = lambda figures: figures  # what --json keeps of its figures


BENCHMARKS = (  # in the order they run, each printed as soon as it ran
    Benchmark("scenes", lambda args, readers: args.frames > 0,
              lambda args, readers: run_scenes(readers, args.categories, args.frames, args.hd_frames, args.seed),
              lambda figures, args: report_scenes(figures), _without_frame_times),
    Benchmark("photos", lambda args, readers: bool(args.photos),
              lambda args, readers: run_photos(Path(args.photos), readers.models),
              lambda figures, args: report_photos(figures, args.photos)),
    Benchmark("numbers in place", lambda args, readers: bool(args.photos),
              lambda args, readers: run_numbers_in_place(Path(args.photos), readers, args.seed),
              lambda figures, args: report_numbers_in_place(figures)),
    Benchmark("footage", lambda args, readers: "zxing-cpp" in readers.readers and args.scaling_frames > 0,
              lambda args, readers: run_footage(readers, Path(args.photos) if args.photos else None,
                                                Path(args.video) if args.video else None, args.scaling_frames,
                                                args.seed),
              lambda figures, args: report_footage(figures)),
    Benchmark("cli", lambda args, readers: bool(args.cli_runs) and "zxing-cpp" in readers.readers,
              lambda args, readers: footage.cli_runs(Path(args.video), args.cli_runs, readers.readers["zxing-cpp"],
                                                     args.model),
              lambda figures, args: report_cli(figures, args.video)),
    Benchmark("clips", lambda args, readers: bool(args.clips),
              lambda args, readers: run_clips(args.clips, readers.models, args.seed),
              lambda figures, args: report_clips(figures)),
    Benchmark("fusion", lambda args, readers: bool(args.fusion),
              lambda args, readers: run_fusion(args.fusion, readers.models, args.seed),
              lambda figures, args: report_fusion(figures)),
    Benchmark("recall", lambda args, readers: bool(args.recall),
              lambda args, readers: run_recall(args.recall, readers.models, args.seed),
              lambda figures, args: report_recall(figures)),
    Benchmark("lens", lambda args, readers: bool(args.lens),
              lambda args, readers: run_lens(args.lens, readers.models, args.seed),
              lambda figures, args: report_lens(figures, args.lens)),
    Benchmark("serve load", lambda args, readers: bool(args.serve_load),
              lambda args, readers: _serve_load(Path(args.serve_load), readers.models),
              lambda figures, args: _report_serve_load(figures, args.serve_load)),
)


def _serve_load(folder: Path, models: Models) -> dict:
    from livereader.bench.serve_load import run_serve_load

    return run_serve_load(folder, models)


def _report_serve_load(figures: dict, folder: str) -> list[str]:
    from livereader.bench.serve_load import report_serve_load

    return report_serve_load(figures, folder)


def _argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the parsed arguments, in one line, or None."""
    if args.photos and not Path(args.photos).is_dir():
        return f"not a folder: {args.photos}"
    if args.video and not Path(args.video).is_file():
        return f"no such file: {args.video}"
    if args.cli_runs and not args.video:
        return "--cli-runs needs --video"
    if args.serve_load and not Path(args.serve_load).is_dir():
        return f"not a folder: {args.serve_load}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    import torch

    from livereader.decode.reader import ModelError

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    problem = _argument_problem(args)
    if problem:
        print(f"livereader-bench: error: {problem}", file=sys.stderr)
        return 1
    figures: dict[str, Figures] = {}
    try:
        readers = _Readers(args.model)
        for benchmark in BENCHMARKS:
            if benchmark.asked(args, readers):
                figures[benchmark.name] = benchmark.run(args, readers)
                for line in benchmark.report(figures[benchmark.name], args):
                    print(line)
    except (ModelError, footage.RunError) as error:
        print(f"livereader-bench: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        stored = {benchmark.name: benchmark.stored(figures[benchmark.name]) for benchmark in BENCHMARKS
                  if benchmark.name in figures}
        Path(args.json).write_text(json.dumps(stored, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
