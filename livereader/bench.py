"""``livereader-bench``: read rate, wrong reads and time per frame on synthetic scenes, next to zxing-cpp and
OpenCV's QRCodeDetector measured in the same run on the same frames; and on a folder of real photos.

Everything runs on one thread (OpenCV, torch, and zxing-cpp, which is single-threaded). A read counts when
the reported text equals the truth of the code under the reported position; any other reported text is a
wrong read (reading a foreign code's own text is not wrong, but it is not one of our reads either).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from livereader.scene import CATEGORIES, Scene, scenes

_PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per category at 640x480 (default 100)")
    parser.add_argument("--hd-frames", type=int, default=30,
                        help="frames per category at 1280x720, for the time column (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--categories", nargs="+", choices=list(CATEGORIES), default=list(CATEGORIES),
                        metavar="NAME", help=f"scene categories (default all: {' '.join(CATEGORIES)})")
    parser.add_argument("--photos", metavar="DIR", help="also read every image under DIR (e.g. ../shared/realphotos)")
    parser.add_argument("--clips", type=int, default=0, metavar="N",
                        help="also track codes through N clips of 15-60 frames with 1-4 moving codes each")
    parser.add_argument("--fusion", type=int, default=0, metavar="N",
                        help="also read N 15-frame clips of each hard clip kind, with and without temporal fusion")
    parser.add_argument("--lens", type=int, default=0, metavar="FRAMES",
                        help="also calibrate the built-in wide-angle camera from rendered chessboard views and read "
                             "FRAMES frames through its lens, with and without undistortion")
    parser.add_argument("--model", action="append", metavar="FILE",
                        help="model file; repeat to try several in order (default: the shipped models)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return parser


def _owner(point: np.ndarray, scene: Scene):
    """The truth code whose outline (with a module of margin) holds ``point``, or None."""
    for code in scene.codes:
        outline = np.array(code.corners, np.float32)
        if cv2.pointPolygonTest(outline, tuple(map(float, point)), True) > -code.module_px:
            return code
    return None


def _score(reported: list[tuple[str, np.ndarray]], scene: Scene) -> tuple[int, int]:
    """(reads of supported codes, wrong reads) for (text, centre) pairs reported on a scene."""
    reads, wrong = set(), 0
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
        from livereader.grid import GridOptions
        from livereader.pipeline import ReaderOptions, read_frame
        from livereader.reader import load_models

        self.models = models = load_models(model_paths)
        soft = ReaderOptions(grid=GridOptions(soft=True))

        def ours(frame, options=ReaderOptions()):
            return [(r.text, np.mean(r.corners, 0)) for r in read_frame(frame, models, options) if r.text]

        self.readers = {"livereader": ours}
        self.untimed = {"livereader (soft grids)": lambda frame: ours(frame, soft)}
        try:
            import zxingcpp

            def zxing(frame):
                found = zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)
                return [(r.text, _centre(r.position)) for r in found if r.valid]

            self.readers["zxing-cpp"] = zxing
        except ImportError:
            print("livereader-bench: zxing-cpp not installed (pip install zxing-cpp): not compared", file=sys.stderr)
        detector = cv2.QRCodeDetector()

        def opencv(frame):
            ok, texts, points, _ = detector.detectAndDecodeMulti(frame)
            return [(t, p.mean(0)) for t, p in zip(texts, points) if t] if ok else []

        self.readers["opencv"] = opencv


def _centre(position) -> np.ndarray:
    corners = [position.top_left, position.top_right, position.bottom_right, position.bottom_left]
    return np.array([[p.x, p.y] for p in corners], np.float64).mean(0)


def run_scenes(readers: _Readers, categories: list[str], frames: int, hd_frames: int, seed: int) -> dict:
    """Per category and reader: codes, reads, wrong reads, median ms at 640x480 and 1280x720."""
    figures: dict = {}
    everyone = {**readers.readers, **readers.untimed}
    for category in categories:
        row: dict = defaultdict(lambda: {"reads": 0, "wrong": 0, "ms": [], "ms_hd": []})
        codes = 0
        for scene in scenes([category], frames, seed):
            codes += sum(c.supported for c in scene.codes)
            for name, reader in everyone.items():
                start = time.perf_counter()
                reported = reader(scene.image)
                row[name]["ms"].append(1000 * (time.perf_counter() - start))
                reads, wrong = _score(reported, scene)
                row[name]["reads"] += reads
                row[name]["wrong"] += wrong
        for scene in scenes([category], hd_frames, seed, size=(1280, 720)):
            for name, reader in readers.readers.items():
                start = time.perf_counter()
                reader(scene.image)
                row[name]["ms_hd"].append(1000 * (time.perf_counter() - start))
        figures[category] = {"codes": codes, "readers": {
            name: {"read": r["reads"] / max(codes, 1), "wrong": r["wrong"],
                   "ms": float(np.median(r["ms"])), "ms_hd": float(np.median(r["ms_hd"])) if r["ms_hd"] else None,
                   "all_ms": r["ms"], "all_ms_hd": r["ms_hd"]}
            for name, r in row.items()}}
    return figures


def _truth_texts(image: Path, folder: Path) -> set[str] | None:
    """Truth texts of a photo: its manifest.jsonl entry, or a text file beside it (zxing's blackbox style)."""
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            entry = json.loads(line)
            if folder / entry["path"] == image:
                return {entry["truth_text"], *(c["text"] for c in entry.get("codes", []))}
    beside = image.with_suffix(".txt")
    return {beside.read_text(errors="replace").strip()} if beside.is_file() else None


def run_photos(folder: Path, model) -> dict:
    """Located codes by status, reads, and wrong reads (a number that is not the photo's truth) on a folder."""
    from livereader.pipeline import read_frame

    counts: dict = defaultdict(int)
    wrong_files = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in _PHOTO_SUFFIXES):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            counts["unreadable"] += 1
            continue
        counts["photos"] += 1
        truth = _truth_texts(path, folder)
        results = read_frame(image, model)
        counts["with a located code"] += bool(results)
        for result in results:
            counts[result.status] += 1
            if result.text and (truth is None or result.text not in truth):
                counts["wrong"] += 1
                wrong_files.append(str(path))
    return {**counts, "wrong_files": wrong_files}


CLIP_CATEGORIES = ("clean", "noise", "perspective", "small")


def run_clips(clips: int, model, seed: int) -> dict:
    """Track ids and once-reporting on ``clips`` clips (cycling through ``CLIP_CATEGORIES``).

    A detection is a located code within half a code size of a truth code's centre; a pair of consecutive
    detections of the same code keeps its id when both carry the same track id. Reports: first reads
    (``TrackedCode.first_read``) per code that was read at all; exactly one each is right.
    """
    from livereader.pipeline import read_frame
    from livereader.scene import clip
    from livereader.track import Tracker

    rng = np.random.default_rng([seed, 11])
    figures = {"clips": clips, "frames": 0, "detections": 0, "pairs": 0, "kept": 0, "codes read": 0,
               "reported once": 0, "reports": 0, "wrong": 0}
    for index in range(clips):
        category = CLIP_CATEGORIES[index % len(CLIP_CATEGORIES)]
        scenes_of_clip = clip(CATEGORIES[category], int(rng.integers(15, 61)), int(rng.integers(1, 5)), rng)
        tracker = Tracker()
        last: dict[int, tuple[int, int]] = {}  # code -> (frame, track) of its latest detection
        reports: dict[str, int] = defaultdict(int)
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


def print_clips(clips: dict) -> None:
    kept = 100 * clips["kept"] / max(clips["pairs"], 1)
    print(f"\ntracking: {clips['clips']} clips, {clips['frames']} frames, {clips['detections']} detections; track id "
          f"kept in {clips['kept']} of {clips['pairs']} consecutive pairs ({kept:.2f}%); --once: "
          f"{clips['reports']} reports for {clips['codes read']} codes read, {clips['reported once']} reported "
          f"exactly once; wrong reports: {clips['wrong']}")


FUSION_VARIANTS = ("single frames", "fused")


def run_fusion(clips: int, models, seed: int) -> dict:
    """Per kind of ``scene.HARD_CLIPS``: ``clips`` clips of 15 frames with 1-2 moving codes, read frame by frame
    and with temporal fusion (:func:`livereader.fuse.read_fused`), each tracked.
    Figures: the share of (frame, code) pairs that single frames read; per way, the codes read within the clip,
    the mean frames to a code's first read, and wrong reads (a number that is not the code's under it)."""
    from livereader.fuse import FrameStack, read_fused
    from livereader.pipeline import READ, read_frame
    from livereader.scene import HARD_CLIPS, clip
    from livereader.track import Tracker

    figures = {}
    for index, (kind, config) in enumerate(HARD_CLIPS.items()):
        rng = np.random.default_rng([seed, 13, index])
        entry = {"clips": clips, "codes": 0, "code frames": 0, "single reads": 0,
                 **{v: {"codes read": 0, "frames to read": [], "wrong": 0} for v in FUSION_VARIANTS}}
        for _ in range(clips):
            frames = clip(config, 15, int(rng.integers(1, 3)), rng).frames
            entry["codes"] += len(frames[0].codes)
            for variant in FUSION_VARIANTS:
                tracker, stack, first, fused = Tracker(), FrameStack(), {}, variant == "fused"
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


def print_fusion(fusion: dict) -> None:
    print("\ntemporal fusion, 15-frame clips: codes read within the clip (mean frames to the first read), wrong reads")
    for kind, e in fusion.items():
        single = 100 * e["single reads"] / max(e["code frames"], 1)
        print(f"  {kind}: {e['clips']} clips, {e['codes']} codes; single frames read {single:.1f}% of code frames")
        for variant in FUSION_VARIANTS:
            v = e[variant]
            print(f"    {variant:14s} {v['codes read']:4d} ({100 * v['codes read'] / max(e['codes'], 1):5.1f}%, "
                  f"{v['frames to read']:.1f} frames)  {v['wrong']} wrong")


def run_lens(frames: int, model, seed: int) -> dict:
    """Calibrate ``scene.DEMO_CAMERA`` from 20 rendered 9x6 chessboard views, then read ``frames`` distorted
    scenes as they are and undistorted by the profile: reads and wrong reads of both, and the fit's errors."""
    from livereader.calibrate import Undistorter, calibrate
    from livereader.pipeline import read_frame
    from livereader.scene import DEMO_CAMERA, chessboard_views, lens_scenes

    profile = calibrate(chessboard_views((9, 6), DEMO_CAMERA, 20, seed), (9, 6))
    true = DEMO_CAMERA.camera_matrix
    figures = {"k1": float(DEMO_CAMERA.distortion[0]), "views": profile.views, "rms_px": profile.rms,
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


def print_lens(lens: dict, frames: int) -> None:
    print(f"\nlens (scene.DEMO_CAMERA, k1 {lens['k1']:.2f}): calibrated from {lens['views']} chessboard views, "
          f"RMS {lens['rms_px']:.3f} px; errors fx {100 * lens['fx_error']:+.2f}%, fy {100 * lens['fy_error']:+.2f}%, "
          f"k1 {lens['k1_error']:+.4f}")
    for name in ("without profile", "with profile"):
        reads, wrong = lens[name]["reads"], lens[name]["wrong"]
        rate = 100 * reads / max(lens["codes"], 1)
        print(f"  {lens['codes']} codes in {frames} distorted frames, {name}: {rate:.1f}% read, {wrong} wrong")


def print_scenes(figures: dict) -> None:
    names = list(next(iter(figures.values()))["readers"])
    print("read rate % / wrong reads per category (median ms per frame at 640x480, one thread)")
    print(f"{'category':12s} {'codes':>5s}  " + "  ".join(f"{n:>26s}" for n in names))
    totals = defaultdict(lambda: [0.0, 0, []])
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
        print(f"{category:12s} {entry['codes']:5d}  " + "  ".join(f"{c:>26s}" for c in cells))
    cells = [f"{100 * t[0] / max(codes, 1):6.1f}% {t[1]:3d} wrong {np.median(t[2]):6.2f} ms" for t in totals.values()]
    print(f"{'overall':12s} {codes:5d}  " + "  ".join(f"{c:>26s}" for c in cells))
    print("\nspeed, median over all frames, one thread:")
    for name in names:
        all_ms = [m for e in figures.values() for m in e["readers"][name]["all_ms"]]
        all_hd = [m for e in figures.values() for m in e["readers"][name]["all_ms_hd"]]
        line = f"  {name:24s} 640x480: {np.median(all_ms):6.2f} ms ({1000 / np.median(all_ms):6.0f} frames/s)"
        if all_hd:
            line += f"   1280x720: {np.median(all_hd):6.2f} ms ({1000 / np.median(all_hd):6.0f} frames/s)"
        print(line)
    if "zxing-cpp" in names:
        ours = np.median([m for e in figures.values() for m in e["readers"]["livereader"]["all_ms"]])
        theirs = np.median([m for e in figures.values() for m in e["readers"]["zxing-cpp"]["all_ms"]])
        print(f"  livereader / zxing-cpp time at 640x480: {ours / theirs:.2f}x")


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    import torch

    from livereader.reader import ModelError

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    if args.photos and not Path(args.photos).is_dir():
        print(f"livereader-bench: error: not a folder: {args.photos}", file=sys.stderr)
        return 1
    try:
        readers = _Readers(args.model)
        figures = {"scenes": run_scenes(readers, args.categories, args.frames, args.hd_frames, args.seed)}
        print_scenes(figures["scenes"])
        if args.photos:
            figures["photos"] = run_photos(Path(args.photos), readers.models)
            photos = figures["photos"]
            print(f"\nphotos in {args.photos}: {photos.get('photos', 0)} read, "
                  f"{photos.get('with a located code', 0)} with a located code; located codes: "
                  f"{photos.get('unsupported', 0)} unsupported, {photos.get('rejected', 0)} rejected, "
                  f"{photos.get('read', 0)} read; wrong reads: {photos.get('wrong', 0)}")
        if args.clips:
            figures["clips"] = run_clips(args.clips, readers.models, args.seed)
            print_clips(figures["clips"])
        if args.fusion:
            figures["fusion"] = run_fusion(args.fusion, readers.models, args.seed)
            print_fusion(figures["fusion"])
        if args.lens:
            lens = figures["lens"] = run_lens(args.lens, readers.models, args.seed)
            print_lens(lens, args.lens)
    except ModelError as error:
        print(f"livereader-bench: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        for entry in figures["scenes"].values():
            for r in entry["readers"].values():
                r.pop("all_ms"), r.pop("all_ms_hd")
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
