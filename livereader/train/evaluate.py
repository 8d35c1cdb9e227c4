"""Evaluation of a model file on held-out numbers only (``livereader-train --eval MODEL``).

Figures: whole-number accuracy on clean grids; read rate and wrong reads with k random wrong modules anywhere
in the symbol (also with the CNN's own candidates alone, without expansion); reported numbers on foreign
version-1 codes; expected calibration error; CNN grids per second and ``decode_grid`` latency; zxing-cpp on
the same flipped grids when it is installed (else its figures measured with k wrong data modules, ``ZXING_FACTS``).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from livereader.decode.reader import Model, collect_evidence, decode_grid, judge
from livereader.decode.verify import VerifyOptions
from livereader.train.data import GridSet, cache_path, encode_numbers, foreign_codes, held_out_numbers, unpack

FLIPS = (0, 4, 8, 12, 16, 20, 24)
# zxing-cpp 3.1.1's read rates measured on perfectly sampled grids, for when it is not installed. Those grids
# had their k wrong modules in the data modules only, which is easier than here (anywhere, finder and format
# modules included).
ZXING_FACTS = {0: 1.0, 4: 1.0, 8: 1.0, 12: 0.48, 16: 0.04, 20: 0.0, 24: 0.0}
SIZES = {"full": {"clean": None, "flips": 2000, "foreign": 5000, "calibration": 10000},
         "quick": {"clean": 300, "flips": 100, "foreign": 200, "calibration": 300}}


def held_out_grids(count: int | None, seed: int) -> GridSet:
    """Held-out numbers (all of them when ``count`` is None) with the mask qrcode chooses."""
    numbers = held_out_numbers()
    if count is not None:
        numbers = np.sort(np.random.default_rng(seed).choice(numbers, count, replace=False))
    cached = cache_path(given_masks=False)
    if cached.exists():
        with np.load(cached) as stored:
            return GridSet(numbers, stored["packed"][numbers], stored["masks"][numbers])
    return encode_numbers(numbers, given_masks=False, progress=count is None, desc="held-out grids")


def _rates(texts: list[str | None], truth: list[str]) -> dict:
    """Share of reads that are right, and the count of wrong ones (never wanted)."""
    right = sum(t == w for t, w in zip(texts, truth))
    wrong = sum(t is not None and t != w for t, w in zip(texts, truth))
    return {"grids": len(texts), "read": right / max(len(texts), 1), "wrong": wrong}


def read_rates(model: Model, grids: np.ndarray, truth: np.ndarray, options: VerifyOptions) -> dict:
    """A six-digit model's own read rate and wrong reads (``text_rates`` tries several models)."""
    reads = [judge(e, model, options) for e in collect_evidence(model.group_log_probs, grids, options)]
    return _rates([r.text for r in reads], ["%06d" % n for n in truth])


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
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode, is_pure=pure)
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


def run(model: Model, size: str, seed: int, plot: str | None = None, readers=None) -> dict:
    """Measure every figure of the module docstring for a six-digit ``model``; ``size`` is "full" or "quick".

    ``readers``: the models tried in order for the read rates (default: ``model`` alone), e.g. the shipped pair;
    the CNN-only candidates, calibration and speed are always ``model``'s own.
    """
    import torch

    from livereader.train.augment import CALIBRATION_AUGMENT, augment, flip_modules

    sizes, options = SIZES[size], VerifyOptions()
    cnn_only = replace(options, expand=0, expand_pairs=0, expand_triples=0)
    figures: dict = {"verify_options": options.to_dict()}
    held_out = held_out_grids(sizes["clean"], seed)
    clean = unpack(held_out.packed)
    readers = readers or (model,)
    figures["clean"] = text_rates(readers, clean, ["%06d" % n for n in held_out.numbers], options)

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    figures["flips"] = {}
    for k in FLIPS:
        rows = rng.choice(len(held_out.numbers), sizes["flips"], replace=len(held_out.numbers) < sizes["flips"])
        counts = torch.full((len(rows),), k)
        grids = flip_modules(torch.from_numpy(clean[rows]), counts, gen).numpy()
        truth = held_out.numbers[rows]
        entry = text_rates(readers, grids, ["%06d" % n for n in truth], options)
        entry["cnn_only"] = read_rates(model, grids, truth, cnn_only)
        facts = {"read": ZXING_FACTS[k], "source": "zxing-cpp 3.1.1 measured apart (data modules only)"}
        entry["zxing"] = zxing_rates(grids, truth) or facts
        figures["flips"][str(k)] = entry

    payloads, foreign = foreign_codes(sizes["foreign"], seed=seed + 7)
    # A reported number is wrong unless it is the foreign code's own payload (a numeric model reads those).
    reported = text_rates(readers, foreign, payloads, options)
    figures["foreign"] = {"codes": len(payloads), "reported_numbers": reported["wrong"],
                          "own_payload_read": round(reported["read"] * len(payloads))}

    rows = rng.choice(len(held_out.numbers), sizes["calibration"],
                      replace=len(held_out.numbers) < sizes["calibration"])
    soft = augment(torch.from_numpy(clean[rows]), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
    evidence = collect_evidence(model.group_log_probs, soft, options)
    confidence = np.array([model.calibration.confidence(e) for e in evidence])
    correct = np.array([e.number for e in evidence]) == held_out.numbers[rows]
    reads = np.array([judge(e, model, options).text is not None for e in evidence])
    figures["calibration"] = {
        "grids": len(rows), "ece_best_candidate": round(calibration_error(confidence, correct), 4),
        "ece_reads": round(calibration_error(confidence[reads], correct[reads]), 4) if reads.any() else None,
        "read": float(reads.mean()), "wrong": int((reads & ~correct).sum()),
    }
    figures["speed"] = _speed(model, clean)
    if plot:
        write_plot(figures, plot)
    return figures


def print_report(figures: dict) -> None:
    clean = figures["clean"]
    print(f"clean held-out grids: {clean['read']:.4%} exact ({clean['grids']} grids, {clean['wrong']} wrong reads)")
    print("k wrong modules   read     wrong  cnn-only read  zxing-cpp read")
    for k, entry in figures["flips"].items():
        zx = entry["zxing"]
        source = "" if "source" in zx else f" ({zx['wrong']} wrong)"
        print(f"k={k:>2} ({entry['grids']} grids) {entry['read']:8.2%} {entry['wrong']:6d} "
              f"{entry['cnn_only']['read']:12.2%}   {zx['read']:7.2%}{source or ' (measured apart)'}")
    foreign = figures["foreign"]
    print(f"foreign version-1 codes: {foreign['reported_numbers']} numbers reported of {foreign['codes']} "
          f"(their own numeric payload read: {foreign['own_payload_read']})")
    cal = figures["calibration"]
    print(f"calibration ({cal['grids']} augmented held-out grids): ECE {cal['ece_best_candidate']:.2%} "
          f"(best candidate), {cal['ece_reads'] if cal['ece_reads'] is None else format(cal['ece_reads'], '.2%')} "
          f"(reads); read {cal['read']:.2%}, {cal['wrong']} wrong")
    speed = figures["speed"]
    print(f"speed: CNN {speed['cnn_grids_per_s']} grids/s batched ({speed['threads']} threads); "
          f"decode_grid median {speed['decode_grid_median_ms']:.3f} ms")


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


NUMERIC_FLIPS = (0, 2, 4, 8, 12, 16)
NUMERIC_SIZES = {"full": {"clean": 20000, "flips": 2000, "foreign": 2000},
                 "quick": {"clean": 300, "flips": 100, "foreign": 200}}


def text_rates(models, grids: np.ndarray, truth: list[str], options: VerifyOptions) -> dict:
    """Share of grids read right and wrong reads, for any models (truth as strings)."""
    from livereader.decode.reader import read_grids

    return _rates([r.text for r in read_grids(grids, models, options)], truth)


def _payload_figures(models, texts: list, codes, options: VerifyOptions, flips: tuple[int, ...], per_k: int,
                     rng: np.random.Generator, gen) -> dict:
    """Clean read rate overall and per level (``texts``: the reads of ``codes.grids``), and read rate with k
    random wrong modules anywhere in the symbol next to zxing-cpp on the same grids, for each k of ``flips``."""
    import torch

    from livereader.symbol import LEVELS
    from livereader.train.augment import flip_modules

    figures: dict = {"clean": _rates(texts, codes.payloads)}
    figures["clean_by_level"] = {
        level: _rates([t for t, lv in zip(texts, codes.levels) if lv == i],
                      [p for p, lv in zip(codes.payloads, codes.levels) if lv == i])
        for i, level in enumerate(LEVELS)}
    figures["flips"] = {}
    for k in flips:
        rows = rng.choice(len(codes.payloads), min(per_k, len(codes.payloads)), replace=False)
        grids = flip_modules(torch.from_numpy(codes.grids[rows]), torch.full((len(rows),), k), gen).numpy()
        truth = [codes.payloads[i] for i in rows]
        entry = text_rates(models, grids, truth, options)
        entry["zxing"] = zxing_rates(grids, truth)
        figures["flips"][str(k)] = entry
    return figures


def _print_flips(figures: dict) -> None:
    print("k wrong modules   read     wrong  zxing-cpp read")
    for k, entry in figures["flips"].items():
        zx = entry["zxing"]
        zx_text = "not installed" if zx is None else f"{zx['read']:7.2%} ({zx['wrong']} wrong)"
        print(f"k={k:>2} ({entry['grids']} grids) {entry['read']:8.2%} {entry['wrong']:6d}   {zx_text}")


def run_numeric(models, size: str, seed: int) -> dict:
    """Held-out numeric payloads of every length and level (qrcode's own masks): clean read rate, read rate
    with k random wrong modules anywhere in the symbol next to zxing-cpp on the same grids, per level, and
    reported numbers on codes that hold text."""
    import torch

    from livereader.decode.reader import read_grids
    from livereader.train.data import numeric_codes, text_codes

    sizes, options = NUMERIC_SIZES[size], VerifyOptions()
    rng = np.random.default_rng(seed)
    codes = numeric_codes(sizes["clean"], rng, held_out=True, chosen_share=1.0)
    figures: dict = {"verify_options": options.to_dict(), "payloads": len(codes.payloads)}
    texts = [r.text for r in read_grids(codes.grids, models, options)]
    gen = torch.Generator().manual_seed(seed)
    figures.update(_payload_figures(models, texts, codes, options, NUMERIC_FLIPS, sizes["flips"], rng, gen))
    payloads, foreign = text_codes(sizes["foreign"], seed=seed + 7)
    figures["foreign"] = {"codes": len(payloads),
                          "reported_numbers": text_rates(models, foreign, [""] * len(payloads), options)["wrong"]}
    return figures


def print_numeric_report(figures: dict) -> None:
    clean = figures["clean"]
    print(f"clean held-out numeric codes: {clean['read']:.4%} exact ({clean['grids']} grids, "
          f"{clean['wrong']} wrong reads)")
    print("  by level: " + ", ".join(f"{level} {entry['read']:.4%} ({entry['grids']}, {entry['wrong']} wrong)"
                                     for level, entry in figures["clean_by_level"].items()))
    _print_flips(figures)
    foreign = figures["foreign"]
    print(f"codes holding text: {foreign['reported_numbers']} numbers reported of {foreign['codes']}")


GENERAL_FLIPS = (0, 4, 8, 12)
GENERAL_SIZES = {"full": {"clean": 21000, "flips": 2100, "calibration": 10000},
                 "quick": {"clean": 350, "flips": 140, "calibration": 350}}


def run_general(models, size: str, seed: int) -> dict:
    """Held-out payloads of every mode and length that fit each level, read with the content option ``any``:
    clean read rate per mode and level, read rate with k random wrong modules next to zxing-cpp on the same
    grids, and the expected calibration error of the reads on augmented grids (``CALIBRATION_AUGMENT``)."""
    import torch

    from livereader.decode.reader import read_grids
    from livereader.train.augment import CALIBRATION_AUGMENT, augment
    from livereader.train.data import GENERAL_MODES, general_codes

    sizes, options = GENERAL_SIZES[size], VerifyOptions(content="any")
    rng = np.random.default_rng(seed)
    codes = general_codes(sizes["clean"], rng, held_out=True)
    texts = [r.text for r in read_grids(codes.grids, models, options)]
    figures: dict = {"verify_options": options.to_dict(), "payloads": len(codes.payloads)}
    figures["clean_by_mode"] = {mode: _rates([t for t, m in zip(texts, codes.modes) if m == mode],
                                             [p for p, m in zip(codes.payloads, codes.modes) if m == mode])
                                for mode in GENERAL_MODES}
    gen = torch.Generator().manual_seed(seed)
    figures.update(_payload_figures(models, texts, codes, options, GENERAL_FLIPS, sizes["flips"], rng, gen))
    rows = rng.choice(len(codes.payloads), min(sizes["calibration"], len(codes.payloads)), replace=False)
    soft = augment(torch.from_numpy(codes.grids[rows]), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
    reads = read_grids(soft, models, options)
    read = np.array([r.text is not None for r in reads])
    correct = np.array([r.text == codes.payloads[i] for r, i in zip(reads, rows)])
    confidence = np.array([r.confidence for r in reads])
    figures["calibration"] = {"grids": len(rows), "reads": int(read.sum()), "wrong": int((read & ~correct).sum()),
                              "ece_reads": round(calibration_error(confidence[read], correct[read]), 4)
                              if read.any() else None}
    return figures


def print_general_report(figures: dict) -> None:
    clean = figures["clean"]
    print(f"clean held-out payloads of every mode (--content any): {clean['read']:.4%} exact "
          f"({clean['grids']} grids, {clean['wrong']} wrong reads)")
    for name in ("clean_by_mode", "clean_by_level"):
        print("  by " + name.split("_")[-1] + ": " + ", ".join(
            f"{key} {entry['read']:.2%} ({entry['grids']}, {entry['wrong']} wrong)"
            for key, entry in figures[name].items()))
    _print_flips(figures)
    cal = figures["calibration"]
    ece = "-" if cal["ece_reads"] is None else f"{cal['ece_reads']:.2%}"
    print(f"calibration ({cal['grids']} augmented grids): {cal['reads']} reads, {cal['wrong']} wrong, "
          f"expected calibration error of the reads {ece}")
