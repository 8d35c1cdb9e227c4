"""Evaluation of model files on held-out payloads only (``livereader-train --eval MODEL``), in three suites,
each measured by one code path (:func:`run`) and printed by one report (:func:`print_report`):

* ``six-digit``: held-out six-digit level-H numbers, the six-digit decoder's own (its model card's evaluation);
* ``numeric``: held-out numeric payloads of every length and level (the codeword decoder's card);
* ``any``: held-out payloads of every mode, read with the content option ``any`` (the codeword card's
  ``any_content``).

Figures: read rate and wrong reads on clean grids (per level and mode where a suite has several), with k random
wrong modules anywhere in the symbol next to zxing-cpp on the same flipped grids (when it is installed; the
six-digit suite falls back to its figures measured with k wrong data modules, ``ZXING_FACTS``), reported
payloads on codes of other content, expected calibration error, and for the six-digit suite the CNN's own
candidates without expansion, CNN grids per second and ``decode_grid`` latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from livereader.decode.decoders import Decoder
from livereader.decode.reader import Model, decode_grid, read_grids
from livereader.decode.verify import VerifyOptions
from livereader.symbol import LEVELS
from livereader.train.data import (
    GENERAL_MODES,
    cache_path,
    encode_numbers,
    foreign_codes,
    general_codes,
    held_out_numbers,
    numeric_codes,
    text_codes,
    unpack,
)

# zxing-cpp 3.1.1's read rates measured on perfectly sampled six-digit grids, for when it is not installed. Those
# grids had their k wrong modules in the data modules only, which is easier than here (anywhere, finder and
# format modules included).
ZXING_FACTS = {0: 1.0, 4: 1.0, 8: 1.0, 12: 0.48, 16: 0.04, 20: 0.0, 24: 0.0}


@dataclass(frozen=True)
class Codes:
    """Held-out codes of a suite: ``grids[i]`` (uint8, 1 = dark) holds ``payloads[i]`` at ``levels[i]`` (index
    into ``symbol.LEVELS``) in ``modes[i]``."""

    payloads: list[str]
    grids: np.ndarray
    levels: np.ndarray
    modes: list[str]


def _six_digit_codes(count: int | None, rng: np.random.Generator, seed: int) -> Codes:
    """Held-out numbers (all of them when ``count`` is None) with the mask qrcode chooses."""
    numbers = held_out_numbers()
    if count is not None:
        numbers = np.sort(np.random.default_rng(seed).choice(numbers, count, replace=False))
    cached = cache_path(given_masks=False)
    if cached.exists():
        with np.load(cached) as stored:
            packed = stored["packed"][numbers]
    else:
        packed = encode_numbers(numbers, given_masks=False, progress=count is None, desc="held-out grids").packed
    return Codes(["%06d" % n for n in numbers], unpack(packed), np.full(len(numbers), LEVELS.index("H")),
                 ["numeric"] * len(numbers))


def _numeric_codes(count: int | None, rng: np.random.Generator, seed: int) -> Codes:
    codes = numeric_codes(count or 0, rng, held_out=True, chosen_share=1.0)
    return Codes(codes.payloads, codes.grids, codes.levels, ["numeric"] * len(codes.payloads))


def _general_codes(count: int | None, rng: np.random.Generator, seed: int) -> Codes:
    codes = general_codes(count or 0, rng, held_out=True)
    return Codes(codes.payloads, codes.grids, codes.levels, codes.modes)


@dataclass(frozen=True)
class Suite:
    """One evaluation: its held-out codes, sizes (``full`` and ``quick``: codes per figure; a suite without
    ``foreign`` or ``calibration`` has no such figure), flips and what else it measures."""

    title: str  # the report's words for its clean codes
    content: str  # the content option it reads with
    codes: Callable[[int | None, np.random.Generator, int], Codes]
    sizes: dict[str, dict[str, int | None]]
    flips: tuple[int, ...]
    card_key: str  # where a model card that holds it after another suite keeps it
    foreign: Callable[[int, int], tuple[list[str], np.ndarray]] | None = None  # codes of other content
    foreign_title: str = ""
    by: tuple[str, ...] = ()  # the clean read rate also by "mode" and/or "level"
    by_digits: int = 2  # ... printed with this many decimals of a percent
    own: bool = False  # the CNN-only candidates, best-candidate calibration and speed of the decoder's model


SUITES = {
    "six-digit": Suite("clean held-out grids", "numeric", _six_digit_codes,
                       {"full": {"clean": None, "flips": 2000, "foreign": 5000, "calibration": 10000},
                        "quick": {"clean": 300, "flips": 100, "foreign": 200, "calibration": 300}},
                       (0, 4, 8, 12, 16, 20, 24), "evaluation", foreign_codes, "foreign version-1 codes", own=True),
    "numeric": Suite("clean held-out numeric codes", "numeric", _numeric_codes,
                     {"full": {"clean": 20000, "flips": 2000, "foreign": 2000},
                      "quick": {"clean": 300, "flips": 100, "foreign": 200}},
                     (0, 2, 4, 8, 12, 16), "evaluation", text_codes, "codes holding text", by=("level",),
                     by_digits=4),
    "any": Suite("clean held-out payloads of every mode (--content any)", "any", _general_codes,
                 {"full": {"clean": 21000, "flips": 2100, "calibration": 10000},
                  "quick": {"clean": 350, "flips": 140, "calibration": 350}},
                 (0, 4, 8, 12), "any_content", by=("mode", "level")),
}


def _rates(texts: Sequence[str | None], truth: Sequence[str]) -> dict:
    """Share of reads that are right, and the count of wrong ones (never wanted)."""
    right = sum(t == w for t, w in zip(texts, truth))
    wrong = sum(t is not None and t != w for t, w in zip(texts, truth))
    return {"grids": len(texts), "read": right / max(len(texts), 1), "wrong": wrong}


def text_rates(models: Model | Sequence[Model], grids: np.ndarray, truth: Sequence[str],
               options: VerifyOptions) -> dict:
    """Share of grids read right and wrong reads, for any models (truth as strings)."""
    return _rates([r.text for r in read_grids(grids, models, options)], truth)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error with equal-width confidence bins."""
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def zxing_rates(grids: np.ndarray, truth) -> dict | None:
    """zxing-cpp's read rate on the same grids, None if it is not installed.

    Its best of two tries: pure mode on the grid at 1 px per module (its strongest setting for exactly sampled
    symbols), then normal detection at 4 px per module with a 4-module quiet zone.
    """
    try:
        import zxingcpp
    except ImportError:
        return None

    def text(image: np.ndarray, pure: bool) -> str | None:
        qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        found = zxingcpp.read_barcodes(image, formats=qr, is_pure=pure)
        valid = [r.text for r in found if r.valid]  # pure mode also returns failed attempts
        return valid[0] if valid else None

    read = wrong = 0
    for grid, wanted in zip(grids, truth):
        wanted = wanted if isinstance(wanted, str) else "%06d" % wanted
        light_is_255 = (1 - grid).astype(np.uint8) * 255
        result = text(np.pad(light_is_255, 1, constant_values=255), pure=True)
        if result is None:
            result = text(np.kron(np.pad(light_is_255, 4, constant_values=255), np.ones((4, 4), np.uint8)), False)
        read += result == wanted
        wrong += result is not None and result != wanted
    return {"grids": len(grids), "read": read / len(grids), "wrong": wrong}


def _speed(model: Model, grids: np.ndarray) -> dict:
    import torch

    batch = torch.from_numpy(np.resize(grids, (4096, 21, 21)).astype(np.float32))[:, None]
    with torch.inference_mode():
        model.batched(batch)
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < 3:
            model.batched(batch)
            count += len(batch)
        rate = count / (time.perf_counter() - started)
    latencies = []
    for grid in grids[:500]:
        started = time.perf_counter()
        decode_grid(grid, model)
        latencies.append(time.perf_counter() - started)
    return {"cnn_grids_per_s": round(rate), "decode_grid_median_ms": round(1e3 * float(np.median(latencies)), 3),
            "threads": torch.get_num_threads()}


def _by(name: str, texts: list[str | None], codes: Codes) -> dict:
    """The clean read rate per mode or per level."""
    keys, values = (GENERAL_MODES, codes.modes) if name == "mode" else (LEVELS, [LEVELS[i] for i in codes.levels])
    return {key: _rates([t for t, v in zip(texts, values) if v == key],
                        [p for p, v in zip(codes.payloads, values) if v == key]) for key in keys}


def _calibration(models: Sequence[Model], own: Model | None, soft: np.ndarray, truth: list[str],
                 options: VerifyOptions) -> dict:
    """Expected calibration error of the reads on augmented grids; with ``own``, its own reads and also its
    best candidates', read or not."""
    from livereader.decode.reader import judge, model_evidence

    if own is None:
        reads = read_grids(soft, models, options)
        read = np.array([r.text is not None for r in reads])
        correct = np.array([r.text == t for r, t in zip(reads, truth)])
        confidence = np.array([r.confidence for r in reads])
        return {"grids": len(soft), "reads": int(read.sum()), "wrong": int((read & ~correct).sum()),
                "ece_reads": round(calibration_error(confidence[read], correct[read]), 4) if read.any() else None}
    evidence = model_evidence(own, soft, options)
    confidence = np.array([own.calibration_for(options.content).confidence(e) for e in evidence])
    correct = np.array([e.text == t for e, t in zip(evidence, truth)])
    read = np.array([judge(e, own, options).text is not None for e in evidence])
    return {"grids": len(soft), "ece_best_candidate": round(calibration_error(confidence, correct), 4),
            "ece_reads": round(calibration_error(confidence[read], correct[read]), 4) if read.any() else None,
            "read": float(read.mean()), "wrong": int((read & ~correct).sum())}


def run(suite_name: str, models: Sequence[Model], size: str, seed: int, own: Model | None = None,
        plot: str | None = None) -> dict:
    """Measure a suite's figures (see the module doc) for ``models`` tried in order; ``size`` is "full" or
    "quick". ``own``: the decoder's model whose own figures the suite measures (default: the first model)."""
    import torch

    from livereader.train.augment import CALIBRATION_AUGMENT, augment, flip_modules

    suite = SUITES[suite_name]
    sizes, options = suite.sizes[size], VerifyOptions(content=suite.content)
    own = own or models[0]
    rng = np.random.default_rng(seed)
    codes = suite.codes(sizes["clean"], rng, seed)
    texts = [r.text for r in read_grids(codes.grids, models, options)]
    figures: dict = {"suite": suite_name, "verify_options": options.to_dict(), "payloads": len(codes.payloads),
                     "clean": _rates(texts, codes.payloads)}
    for name in suite.by:
        figures[f"clean_by_{name}"] = _by(name, texts, codes)
    gen = torch.Generator().manual_seed(seed)
    figures["flips"] = {}
    for k in suite.flips:
        rows = rng.choice(len(codes.payloads), min(int(sizes["flips"] or 0), len(codes.payloads)), replace=False)
        grids = flip_modules(torch.from_numpy(codes.grids[rows]), torch.full((len(rows),), k), gen).numpy()
        truth = [codes.payloads[i] for i in rows]
        entry = text_rates(models, grids, truth, options)
        if suite.own:
            cnn_only = replace(options, expand=0, expand_pairs=0, expand_triples=0)
            entry["cnn_only"] = text_rates(own, grids, truth, cnn_only)
        entry["zxing"] = zxing_rates(grids, truth) or (
            {"read": ZXING_FACTS[k], "source": "zxing-cpp 3.1.1 measured apart (data modules only)"}
            if k in ZXING_FACTS and suite.own else None)
        figures["flips"][str(k)] = entry
    if suite.foreign is not None:
        payloads, foreign = suite.foreign(int(sizes["foreign"] or 0), seed + 7)
        # A reported payload is wrong unless it is the code's own (a codeword model reads those).
        reported = text_rates(models, foreign, payloads, options)
        figures["foreign"] = {"title": suite.foreign_title, "codes": len(payloads),
                              "reported_numbers": reported["wrong"],
                              "own_payload_read": round(reported["read"] * len(payloads))}
    if "calibration" in sizes:
        rows = rng.choice(len(codes.payloads), min(int(sizes["calibration"] or 0), len(codes.payloads)),
                          replace=False)
        soft = augment(torch.from_numpy(codes.grids[rows]), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
        truth = [codes.payloads[i] for i in rows]
        figures["calibration"] = _calibration(models, own if suite.own else None, soft, truth, options)
    if suite.own:
        figures["speed"] = _speed(own, codes.grids)
    if plot and suite.own:
        write_plot(figures, plot)
    return figures


def card_figures(decoder: Decoder, model: Model, size: str, seed: int) -> dict:
    """A model card's evaluation: the decoder's first suite, and each later one under its ``card_key``."""
    first, *rest = decoder.suites
    figures = run(first, (model,), size, seed)
    for name in rest:
        figures[SUITES[name].card_key] = run(name, (model,), size, seed)
    return figures


def _print_flips(figures: dict) -> None:
    own = any("cnn_only" in e for e in figures["flips"].values())
    print("k wrong modules   read     wrong" + ("  cnn-only read" if own else "") + "  zxing-cpp read")
    for k, entry in figures["flips"].items():
        zx = entry["zxing"]
        if zx is None:
            zx_text = "not installed"
        elif "source" in zx:
            zx_text = f"{zx['read']:7.2%} (measured apart)"
        else:
            zx_text = f"{zx['read']:7.2%} ({zx['wrong']} wrong)"
        cnn = f" {entry['cnn_only']['read']:12.2%}" if own else ""
        print(f"k={k:>2} ({entry['grids']} grids) {entry['read']:8.2%} {entry['wrong']:6d}{cnn}   {zx_text}")


def print_report(figures: dict) -> None:
    """A suite's figures (:func:`run`) as lines of text."""
    clean = figures["clean"]
    print(f"{SUITES[figures['suite']].title}: {clean['read']:.4%} exact ({clean['grids']} grids, "
          f"{clean['wrong']} wrong reads)")
    digits = SUITES[figures["suite"]].by_digits
    for name in ("clean_by_mode", "clean_by_level"):
        if name in figures:
            print("  by " + name.split("_")[-1] + ": " + ", ".join(
                f"{key} {entry['read']:.{digits}%} ({entry['grids']}, {entry['wrong']} wrong)"
                for key, entry in figures[name].items()))
    _print_flips(figures)
    for name, line in _LINES.items():
        if name in figures:
            print(line(figures[name]))


def _calibration_line(cal: dict) -> str:
    ece = "-" if cal["ece_reads"] is None else f"{cal['ece_reads']:.2%}"
    best = "ece_best_candidate" in cal  # the decoder's own model: its best candidates' calibration too
    read = f"read {cal['read']:.2%}" if best else f"{cal['reads']} reads"
    errors = f"ECE {cal['ece_best_candidate']:.2%} (best candidate), {ece} (reads)" if best else f"ECE {ece}"
    return f"calibration ({cal['grids']} augmented held-out grids): {errors}; {read}, {cal['wrong']} wrong"


_LINES: dict[str, Callable[[dict], str]] = {  # the figures after the flips, each a line of the report
    "foreign": lambda f: (f"{f['title']}: {f['reported_numbers']} numbers reported of {f['codes']} "
                          f"(their own payload read: {f['own_payload_read']})"),
    "calibration": _calibration_line,
    "speed": lambda f: (f"speed: CNN {f['cnn_grids_per_s']} grids/s batched ({f['threads']} threads); "
                        f"decode_grid median {f['decode_grid_median_ms']:.3f} ms"),
}


def write_plot(figures: dict, path: str) -> None:
    """Read rate against k wrong modules for livereader, its CNN alone and zxing-cpp, drawn with OpenCV."""
    import cv2

    width, height, left, top, right, bottom = 720, 440, 70, 40, 30, 60
    image = np.full((height, width, 3), 255, np.uint8)
    ks = [int(k) for k in figures["flips"]]

    def point(k: float, rate: float) -> tuple[int, int]:
        x = left + (width - left - right) * k / max(ks)
        return int(x), int(top + (height - top - bottom) * (1 - rate))

    for rate in np.linspace(0, 1, 6):
        cv2.line(image, point(0, rate), point(max(ks), rate), (225, 225, 225), 1)
        cv2.putText(image, f"{rate:.0%}", (8, point(0, rate)[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    for k in ks:
        cv2.putText(image, str(k), (point(k, 0)[0] - 8, height - bottom + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1)
    cv2.putText(image, "wrong modules k (of 441)", (width // 2 - 90, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1)
    series = [("livereader", (200, 80, 0), [e["read"] for e in figures["flips"].values()]),
              ("CNN candidates only", (0, 160, 0), [e["cnn_only"]["read"] for e in figures["flips"].values()]),
              ("zxing-cpp", (0, 0, 200), [e["zxing"]["read"] for e in figures["flips"].values()])]
    for row, (name, colour, rates) in enumerate(series):
        points = np.array([point(k, r) for k, r in zip(ks, rates)], np.int32)
        cv2.polylines(image, [points], False, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, tuple(int(v) for v in p), 4, colour, -1, cv2.LINE_AA)
        legend = (left + 10, point(0, 0.25)[1] + 20 * row)  # lower left, below every curve at small k
        cv2.putText(image, name, legend, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    cv2.putText(image, "read rate of 6-digit version-1-H grids (held-out numbers)", (left, 25),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    if not cv2.imwrite(path, image):
        raise OSError(f"cannot write plot: {path}")
