"""Reading one frame: locate codes (:mod:`livereader.vision.finder`), sample their grids
(:mod:`livereader.vision.grid`, or :mod:`livereader.vision.deblur` for blurred codes), read them all with one
CNN call per model (:mod:`livereader.decode.reader`). It holds no state; the capture loop
(:mod:`livereader.cli`) calls :func:`read_frame` per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import cv2
import numpy as np

from livereader.decode.reader import Model, read_grids
from livereader.decode.verify import VerifyOptions, foreign
from livereader.results import READ, REJECTED, UNSUPPORTED, CodeResult, Hints, centre_of
from livereader.symbol import SIZE
from livereader.vision.deblur import DeblurOptions, deblur
from livereader.vision.finder import (
    COARSE_MIN_SIDE,
    Finder,
    FinderOptions,
    LocatedCode,
    Region,
    around,
    coarse,
    group_codes,
    locate,
    merged_regions,
    paired_codes,
    scout,
    search,
    side_partnered,
)
from livereader.vision.grid import GridOptions, SampledGrid, refine, sample_grid


@dataclass(frozen=True)
class ReaderOptions:
    """How a frame is read: one documented line (or comment) per field; the stages' own options nest."""

    finder: FinderOptions = field(default_factory=FinderOptions)  # finding and grouping finder patterns
    grid: GridOptions = field(default_factory=GridOptions)  # warping and sampling the 21x21 grid
    verify: VerifyOptions = field(default_factory=VerifyOptions)  # verification bounds and ``content``
    deblur: DeblurOptions = field(default_factory=DeblurOptions)  # deconvolution of blurred codes
    # A second, more sensitive search where no code is explained (none read, foreign or of another module count),
    # and elsewhere around finder patterns outside every code (see _search_blurred): lower threshold offsets, and
    # no minimum timing contrast (blur flattens the timing patterns; they still choose the orientation).
    retry_offset: float = 3.0
    retry_noise_offset: float = 1.5
    retry_timing_contrast: float = float("-inf")
    # ... where no code is explained, also of the frame shrunk by this factor, where a blur spans fewer pixels
    retry_scout: int = 2
    # ... where codes are explained, it groups finder patterns only into codes of up to this many modules: its low
    # threshold makes many finder-like shapes, and only version 1 (and 2, to tell the two apart) is worth fits
    retry_max_modules: int = 25
    # Where the searches explain no code, the finder patterns the full-resolution search left outside every code are
    # grouped again with the worse aligned of a side's two finders allowed this many radians off the side's line
    # (motion blur shears a finder pattern's outline; FinderOptions.max_other_misalignment elsewhere)
    regroup_misalignment: float = 0.5
    # The first search runs on the frame shrunk by this factor (4x fewer pixels); the full frame is searched
    # only where it leaves anything unexplained. 1: the whole frame at full resolution, which also finds codes
    # whose modules are too small for the shrunk frame (still images; streams every few frames).
    scout: int = 2
    scout_min_side: int = 600  # ... in frames whose shorter side has at least this many pixels (smaller: 1)
    # a code found with modules under this many pixels of the shrunk frame sends the full-resolution search to the
    # whole frame (see _at_limit)
    scout_limit: float = 1.5
    # the full-resolution search looks this many finder sizes around a finder pattern outside every code (0: not
    # at all; a stream leaves them to its whole-frame searches)
    reach: float = 4.0
    max_retries: int = 8  # rejected codes refined per frame: a cluttered frame's work budget
    max_deblurs: int = 2  # ... and deblurred (each costs about 8 ms); a stream's later frames take the others
    # Where a frame still explains nothing, the codes of which only two finder patterns show (see _read_paired): at
    # most this many are tried, as sampled and deblurred within max_deblurs (a stream leaves them to later frames: 0)
    paired_reads: int = 2
    # The first search at half size, and a search of the whole frame at full resolution that explains no code, are
    # followed by searches of the frame shrunk by these factors (powers of 2) with the same threshold window, for
    # codes whose modules are too wide for it (close-ups: modules of 14 px and more)
    coarse: tuple[int, ...] = (4, 8)


def to_grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


Sampler = Callable[[np.ndarray, LocatedCode], SampledGrid]
Models = Model | Sequence[Model]


def _read_located(grey: np.ndarray, codes: list[LocatedCode], model: Models, options: ReaderOptions, *,
                  sampler: Sampler | None = None, foreign_places: Sequence = (),
                  unread: Sequence = ()) -> list[CodeResult]:
    """Read the supported codes with ``sampler`` (default: :func:`sample_grid`, soft or hard grids as the
    options say; any other sampler's hard grids). Rejected codes are marked ``foreign`` when they decode, as
    sampled, to something other than a number (:func:`livereader.decode.verify.foreign`), or lie where
    ``foreign_places`` (outlines) hold such a code. Reading numbers, a code that lies where one of ``unread``
    (outlines) holds such a code is not read at all, only reported as foreign."""
    numeric = options.verify.content == "numeric"
    skipped = [numeric and code.supported and _holding(code.corners, unread) is not None for code in codes]
    soft = options.grid.soft and sampler is None
    sampler = sampler or (lambda image, code: sample_grid(image, code, options.grid))
    grids = [sampler(grey, c) for c, skip in zip(codes, skipped) if c.supported and not skip]
    values = [g.soft if soft else g.hard.astype(np.float32) for g in grids]
    reads = iter(read_grids(np.stack(values), model, options.verify) if values else [])
    sampled_grids = iter(grids)
    results = []
    for code, skip in zip(codes, skipped):
        corners = code.corners
        if skip:
            read, status, text, confidence, known = None, REJECTED, None, 0.0, True
        elif code.supported:
            read, sampled = next(reads), next(sampled_grids)
            if sampled.mirrored:  # the symbol's own tr and bl are the other way round
                corners = corners[[0, 3, 2, 1]]
            status, text, confidence = (READ if read.text else REJECTED), read.text, read.confidence
            known = (status == REJECTED and numeric
                     and (read.foreign or _holding(code.corners, foreign_places) is not None or foreign(sampled.hard)))
        else:
            read, status, text, confidence, known = None, UNSUPPORTED, None, 0.0, False
        results.append(CodeResult(tuple(map(tuple, corners.round(1).tolist())), status, text, round(confidence, 4),
                                  code.modules, foreign=known, content=read and read.content,
                                  ec_level=read and read.ec_level, headers=read.headers if read else ()))
    return results


def _search_blurred(grey: np.ndarray, codes: list[LocatedCode], results: list[CodeResult], known: list[CodeResult],
                    regions: list[Region] | None, left_over: list[Finder], model: Models, options: ReaderOptions,
                    hints: Hints) -> tuple[list[LocatedCode], list[CodeResult], list[Finder]]:
    """The codes and results of a frame after searches with the more sensitive threshold (blurred finder rings).
    Where no code is explained: the searched ``regions`` (kept if it locates more codes or reads one) and, where
    the frame is searched whole, the frame shrunk by ``options.retry_scout``, where a blur spans fewer pixels of
    the threshold window. Elsewhere only around the finder patterns ``left_over`` outside every code and in the
    ``hints.focus`` regions where no code was found (a tracked code lost to motion blur), for codes of up to
    ``options.retry_max_modules`` modules. Also returns the finder patterns the searches where no code is explained
    left outside every code."""
    finder = replace(options.finder, offset=options.retry_offset, noise_offset=options.retry_noise_offset,
                     min_timing_contrast=options.retry_timing_contrast)
    settled = [r.corners for r in known]
    if not _explained(results + known):
        found, loose = search(grey, finder, regions, settled)
        again = _read_located(grey, found, model, options, foreign_places=hints.foreign)
        if len(found) > len(codes) or any(r.status == READ for r in again):
            codes, results = found, again
        if hints.whole and options.retry_scout > 1 and min(grey.shape) >= options.retry_scout * COARSE_MIN_SIDE:
            found, shrunk_loose = scout(grey, options.retry_scout, finder)
            found = [code for code in found if holder(code.corners, results + known) is None]
            again = _read_located(grey, found, model, options, foreign_places=hints.foreign)
            codes, results = codes + found, results + again
            loose += [f for f in shrunk_loose if all(math.dist(f.centre, g.centre) > g.size / 2 for g in loose)]
        return codes, results, loose
    lost = [box for box in hints.focus if holder([box[:2], box[2:]], results + known) is None]
    lost += [around([f.centre], options.reach * f.size) for f in left_over
             if options.reach > 0 and _holding([f.centre], hints.foreign) is None]
    if not lost:
        return codes, results, []
    found = locate(grey, replace(finder, max_modules=options.retry_max_modules), merged_regions(lost, grey.shape),
                   settled + [r.corners for r in results])
    return codes + found, results + _read_located(grey, found, model, options, foreign_places=hints.foreign), []


def _at_limit(codes: list[LocatedCode], options: ReaderOptions) -> bool:
    """Whether any of ``codes`` has modules under ``options.scout_limit`` px in the frame shrunk by
    ``options.scout``: such codes suggest others too small for the shrunk frame (a sheet of small codes), so the
    full-resolution search takes the whole frame (where it looks around finder patterns at all, ``reach`` > 0)."""
    return options.reach > 0 and any(min(f.size for f in code.finders) / 7 < options.scout * options.scout_limit
                                     for code in codes)


def _explained(results: list[CodeResult]) -> bool:
    """Whether any of ``results`` was read, is known to hold something else or has another module count: its
    finder rings resolve, so a search with other settings is unlikely to pay."""
    return any(r.status != REJECTED or r.foreign for r in results)


def _holding(corners, outlines: Sequence) -> int | None:
    """Index of the first of ``outlines`` ((4, 2) pixels each) that holds the centre of ``corners``, or None."""
    centre = centre_of(corners)
    for index, outline in enumerate(outlines):
        if cv2.pointPolygonTest(np.float32(outline), centre, False) >= 0:
            return index
    return None


def holder(corners, results: Sequence[CodeResult]) -> int | None:
    """Index of the first result whose outline holds the centre of ``corners`` ((4, 2) pixels), or None."""
    return _holding(corners, [result.corners for result in results])


def scouted(shape: tuple[int, ...], options: ReaderOptions) -> bool:
    """Whether :func:`read_frame`'s first search of a frame of ``shape`` (height, width, ...) runs on the frame shrunk
    by ``options.scout`` (else at full resolution)."""
    return options.scout > 1 and min(shape[:2]) >= options.scout_min_side


def read_frame(frame: np.ndarray, model: Models, options: ReaderOptions = ReaderOptions(),
               hints: Hints = Hints()) -> list[CodeResult]:
    """Every code located in a BGR (or grey) uint8 frame, read or not, by ``model`` (one, or several tried in
    order as :func:`livereader.decode.reader.read_grids` does).

    The first search looks for finder patterns in the frame shrunk by ``options.scout``, and by
    ``options.coarse`` for close-ups (the same threshold window over wider modules). What it settles (codes
    read, codes not 21x21, codes that hold something other than a number) is not looked at again. Only what it
    leaves unexplained is searched at full resolution: finder patterns outside every code and codes worth
    another try, each in a region ``options.reach`` finder sizes around it, and the ``hints.focus`` regions (only
    those, without a first search, where ``hints.whole`` is False); a frame with no such evidence is done after
    the first search. Where either search locates a code with modules near the shrunk frame's limit
    (:func:`_at_limit`), the whole frame is searched at full resolution: a sheet of small codes holds more of
    them. Small codes whose finders do not show at half size are found by a search of the whole frame at full
    resolution (``options.scout=1``, also used for frames smaller than ``options.scout_min_side``), which
    streams run every few frames and still images always. Where such a search explains no code (none read,
    known to hold something other than a number or located with another module count: finder rings that
    resolve), the frame shrunk by ``options.coarse`` is searched with the same threshold window (close-ups).
    Where still no code is explained, the searched regions and the frame shrunk by ``options.retry_scout`` are
    searched again with a more sensitive threshold (blurred finder rings); elsewhere the regions around the
    finder patterns left outside every code and the ``hints.focus`` regions where no code was found are. Where
    nothing is explained still, the finder patterns left outside every code are grouped again with a side's worse
    aligned finder allowed ``options.regroup_misalignment`` off its line (motion blur shears outlines). Codes
    worth another try are tried again with a refined bottom-right corner (at most ``options.max_retries`` of
    them per frame), and then deblurred (at most ``options.max_deblurs``). Where the frame still explains
    nothing, codes of which only two finder patterns show are tried (``options.paired_reads``, see
    :func:`_read_paired`). Each step costs time only where it runs.
    """
    grey = to_grey(frame)
    if min(grey.shape[:2]) < SIZE:  # smaller than a code of one-pixel modules: nothing to find
        return []
    known: list[CodeResult] = []  # settled: not searched or read again
    codes: list[LocatedCode] = []  # the codes still open, and their results
    results: list[CodeResult] = []
    regions: list[Region] | None = None  # where the full-resolution search looks (None: everywhere)
    if not hints.whole:
        if not hints.focus:
            return []
        regions = merged_regions(list(hints.focus), grey.shape)
    elif scouted(grey.shape, options):
        found, left_over = scout(grey, options.scout, options.finder)
        first = _read_located(grey, found, model, options, foreign_places=hints.foreign)
        # close-ups, also where the half-size search located one it could not read (its window is too small)
        wide = coarse(grey, options.coarse, options.finder, [r.corners for r in first if not r.worth_retry])
        if wide:
            again = _read_located(grey, wide, model, options, foreign_places=hints.foreign)
            kept = [i for i, r in enumerate(first) if not r.worth_retry or holder(r.corners, again) is None]
            found, first = [found[i] for i in kept] + wide, [first[i] for i in kept] + again
        known = [r for r in first if not r.worth_retry]
        codes = [c for c, r in zip(found, first) if r.worth_retry]
        results = [r for r in first if r.worth_retry]
        # Finder patterns outside every code, codes worth another try, and focus regions where nothing settled.
        # A finder pattern is evidence of a code the first search missed where that code's other finders may be
        # too small for it (modules under 1.5 px when shrunk, at most max_size_ratio times smaller than this
        # one), or where it has a partner along one of its sides (two finders of a code whose third is lost).
        small = 7 * 1.5 * options.scout * options.finder.max_size_ratio
        evidence = left_over if options.reach > 0 else []
        paired = side_partnered(evidence, options.finder)
        boxes = [around([f.centre], options.reach * f.size) for f, partnered in zip(evidence, paired)
                 if (f.size < small or partnered) and _holding([f.centre], hints.foreign) is None]
        boxes += [around(code.corners, max(f.size for f in code.finders)) for code in codes]
        boxes += [box for box in hints.focus if holder([box[:2], box[2:]], known) is None]
        if _at_limit(found, options):
            regions = None
        elif not boxes:
            return known
        else:
            regions = merged_regions(boxes, grey.shape)
    settled = [r.corners for r in known]
    located, left_over = search(grey, options.finder, regions, settled)
    if regions is not None and hints.whole and _at_limit(located, options):  # and the rest of the frame
        more, left_over = search(grey, options.finder, None, settled + [code.corners for code in located])
        located += more
    # a frame searched only in focus regions does not read codes known to hold something else: the whole-frame
    # searches of a stream read them again
    again = _read_located(grey, located, model, options, foreign_places=hints.foreign,
                          unread=() if hints.whole else hints.foreign)
    if regions is None and not _explained(again):  # the whole frame at full resolution: close-ups, perhaps
        wide = coarse(grey, options.coarse, options.finder, [code.corners for code in located])
        located, again = located + wide, again + _read_located(grey, wide, model, options, foreign_places=hints.foreign)
    stay = [i for i, r in enumerate(results) if holder(r.corners, again) is None]  # not found again: kept
    codes, results = located + [codes[i] for i in stay], again + [results[i] for i in stay]
    loose: list[Finder] = []  # finder patterns the sensitive search left outside every code
    if options.retry_offset < options.finder.offset:
        codes, results, loose = _search_blurred(grey, codes, results, known, regions, left_over, model, options, hints)
    if not _explained(results + known) and options.regroup_misalignment > options.finder.max_other_misalignment:
        # motion blur shears finder outlines: the finders left outside every code, grouped with one of a side's two
        # finders allowed further off the side's line
        sheared = group_codes(grey, [f for f in left_over if holder([f.centre], results) is None],
                              replace(options.finder, max_other_misalignment=options.regroup_misalignment))
        again = _read_located(grey, sheared, model, options, foreign_places=hints.foreign)
        codes, results = codes + sheared, results + again
    deblurred = partial(deblur, options=options.deblur)  # a sampler
    retries = ((lambda code: refine(grey, code), None, options.max_retries),
               (lambda code: code, deblurred, options.max_deblurs))
    deblurs = options.max_deblurs  # left in this frame
    for adjust, sampler, budget in retries:
        todo = [i for i, r in enumerate(results) if r.worth_retry][:budget]
        if not todo:
            break
        deblurs -= len(todo) if sampler is not None else 0
        again = _read_located(grey, [adjust(codes[i]) for i in todo], model, options, sampler=sampler)
        for i, result in zip(todo, again):
            if result.status == READ or result.foreign:
                results[i] = result
    if options.paired_reads > 0 and not _explained(results + known):
        lone = loose + [f for code, r in zip(codes, results) if r.worth_retry for f in code.finders]
        paired = _read_paired(grey, lone, model, options, deblurred, deblurs)
        results = [r for r in results if holder(r.corners, paired) is None] + paired
    return results + known


def _read_paired(grey: np.ndarray, finders: list[Finder], model: Models, options: ReaderOptions,
                 deblurred: Sampler, deblurs: int) -> list[CodeResult]:
    """The verified reads of codes of which only two of ``finders`` show
    (:func:`livereader.vision.finder.paired_codes`): the ``options.paired_reads`` most likely places, each read as
    sampled and, where that does not read, sampled by ``deblurred`` (the first ``deblurs`` of them: what is left
    of the frame's ``options.max_deblurs``). A place that does not read is no code, and is not reported."""
    guesses = paired_codes(grey, finders, options.finder)[:options.paired_reads]
    if not guesses:
        return []
    reads = _read_located(grey, guesses, model, options)
    todo = [i for i, r in enumerate(reads) if r.status != READ][:max(0, deblurs)]
    if todo:
        again = _read_located(grey, [guesses[i] for i in todo], model, options, sampler=deblurred)
        for i, result in zip(todo, again):
            reads[i] = result
    return [r for r in reads if r.status == READ]
