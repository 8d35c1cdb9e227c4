"""Reading one frame: locate codes (:mod:`livereader.vision.finder`), sample their grids
(:mod:`livereader.vision.grid`, or :mod:`livereader.vision.deblur` for blurred codes), read them all with one
CNN call per model (:mod:`livereader.decode.reader`; reading numbers, all but those that decode as sampled to
other content). A frame is read by a list of passes (``PASSES``), each taking and returning the frame's state
(:class:`FrameState`), cheapest first, within the frame's time budget (``ReaderOptions.budget``). It holds no
state between frames; the capture loop (:mod:`livereader.cli`) calls :func:`read_frame` per frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import cv2
import numpy as np

from livereader import compiled
from livereader.decode.reader import FOREIGN, Model, read_grids
from livereader.decode.verify import VerifyOptions, foreign_grids
from livereader.geometry import Points, centre_of, holding, scaled_point
from livereader.results import READ, REJECTED, UNSUPPORTED, CodeResult, Hints
from livereader.symbol import SIZE
from livereader.vision.deblur import DeblurOptions, deblur
from livereader.vision.finder import Finder, FinderOptions
from livereader.vision.fit import LocatedCode
from livereader.vision.grid import GridOptions, SampledGrid, refine, sample_grids
from livereader.vision.grouping import group_codes, side_partnered
from livereader.vision.motion import MotionOptions, estimate, restore
from livereader.vision.pairs import paired_codes
from livereader.vision.search import (
    COARSE_MIN_SIDE,
    SHRUNK_MIN_MODULE,
    Region,
    around,
    coarse,
    merged_regions,
    search,
    shrunk,
)


@dataclass(frozen=True)
class ReaderOptions:
    """How a frame is read: one documented line (or comment) per field; the stages' own options nest."""

    finder: FinderOptions = field(default_factory=FinderOptions)  # finding and grouping finder patterns
    grid: GridOptions = field(default_factory=GridOptions)  # warping and sampling the 21x21 grid
    verify: VerifyOptions = field(default_factory=VerifyOptions)  # verification bounds and ``content``
    deblur: DeblurOptions = field(default_factory=DeblurOptions)  # deconvolution of blurred codes
    motion: MotionOptions = field(default_factory=MotionOptions)  # restoring a frame smeared by a straight motion
    # A second, more sensitive search where no code is explained (none read, foreign or of another module count),
    # and elsewhere around finder patterns outside every code (see sensitive_search): lower threshold offsets, and
    # no minimum timing contrast (blur flattens the timing patterns; they still choose the orientation).
    retry_offset: float = 3.0
    retry_noise_offset: float = 1.5
    retry_timing_contrast: float = float("-inf")
    # ... where no code is explained, also of the frame shrunk by this factor, where a blur spans fewer pixels
    retry_scout: int = 2
    # ... where codes are explained, it groups finder patterns only into codes of up to this many modules: its low
    # threshold makes many finder-like shapes, and only version 1 (and 2, to tell the two apart) is worth fits
    retry_max_modules: int = 25
    # ... and traces at most this many pixels a search: larger regions are searched in the frame shrunk by at least
    # the smallest power of 2 that fits (its low threshold marks every speck: 265k in a 12 MP photo)
    retry_max_pixels: int = 3_200_000
    # Where the searches explain no code, the finder patterns the full-resolution search left outside every code are
    # grouped again with the worse aligned of a side's two finders allowed this many radians off the side's line
    # (motion blur shears a finder pattern's outline; FinderOptions.max_other_misalignment elsewhere)
    regroup_misalignment: float = 0.5
    # The first search runs on the frame shrunk by this factor (4x fewer pixels); the full frame is searched
    # only where it leaves anything unexplained. 1: the whole frame at full resolution, which also finds codes
    # whose modules are too small for the shrunk frame (still images; streams every few frames).
    scout: int = 2
    # ... in frames whose shorter side has at least this many pixels (smaller: 1; the sensitive search takes a
    # smaller frame that explains nothing whole at full size, a larger one only around its evidence)
    scout_min_side: int = 600
    # ... and at least by the power of 2 that brings the frame within this many pixels, also where scout is 1 (a
    # 12 MP photo is searched at half size first, and at full resolution where that leaves evidence unexplained)
    max_full_pixels: int = 4_000_000
    # a code found with modules under this many pixels of the shrunk frame sends the full-resolution search to the
    # whole frame (see _at_limit)
    scout_limit: float = 1.5
    # the full-resolution search looks this many finder sizes around a finder pattern outside every code (0: not
    # at all; a stream leaves them to its whole-frame searches)
    reach: float = 4.0
    max_retries: int = 8  # rejected codes refined per frame: a cluttered frame's work budget
    max_deblurs: int = 2  # ... and deblurred (each 3-20 ms); a stream's later frames take the others
    # Where a frame still explains nothing, the codes of which only two finder patterns show (see _read_paired): at
    # most this many are tried, as sampled and deblurred within max_deblurs (a stream that is not paced leaves them
    # to later frames: 0)
    paired_reads: int = 2
    # The first search at half size, and a search of the whole frame at full resolution that explains no code, are
    # followed by searches of the frame shrunk by these factors (powers of 2) with the same threshold window, for
    # codes whose modules are too wide for it (close-ups: modules of 14 px and more)
    coarse: tuple[int, ...] = (4, 8)
    # Seconds a frame may take: passes after the first two searches start only within this time from the frame's
    # start (generous for still images; a paced stream's frames also keep within its frame interval, through
    # Hints.deadline). Each pass is bounded on its own (pixels searched, fits, codes tried), so a frame ends at most
    # one pass's cost after its budget.
    budget: float = 1.0


def to_grey(frame: np.ndarray) -> np.ndarray:
    """A BGR(A) or grey frame as a grey one, C-contiguous and writable (the compiled kernels take one layout)."""
    if frame.ndim == 2:
        return np.require(frame, requirements=("C", "W"))
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


Sampler = Callable[[np.ndarray, LocatedCode], SampledGrid]
FOREIGN_KNOWN = FOREIGN + " (known from earlier frames: not read again)"
Models = Model | Sequence[Model]


def _read_located(grey: np.ndarray, codes: list[LocatedCode], model: Models, options: ReaderOptions, *,
                  sampler: Sampler | None = None, foreign_places: Sequence = (),
                  unread: Sequence = ()) -> list[CodeResult]:
    """Read the supported codes with ``sampler`` (default: :func:`sample_grids`, all at once, soft or hard grids as the
    options say; any other sampler's hard grids). Reading numbers, a code that decodes as sampled to something
    other than a number (:func:`livereader.decode.verify.foreign_grids`: its Reed-Solomon decoding and content) is
    rejected as ``foreign`` without a CNN call (a sheet of 60 text codes spares a CNN call of 9 ms), and
    rejected codes are marked ``foreign`` too where ``foreign_places`` (outlines) hold such a code or the CNN's
    evidence says so. A code that lies where one of ``unread`` (outlines) holds such a code is not read at all,
    only reported as foreign."""
    numeric = options.verify.content == "numeric"
    skipped = [numeric and code.supported and _holding(code.corners, unread) is not None for code in codes]
    soft = options.grid.soft and sampler is None
    chosen = [c for c, skip in zip(codes, skipped) if c.supported and not skip]
    if not chosen:
        grids = []
    else:
        grids = sample_grids(grey, chosen, options.grid) if sampler is None else [sampler(grey, c) for c in chosen]
    settled = foreign_grids(np.stack([g.hard for g in grids])) if numeric and grids else [False] * len(grids)
    values = [g.soft if soft else g.hard.astype(np.float32) for g, done in zip(grids, settled) if not done]
    reads = iter(read_grids(np.stack(values), model, options.verify) if values else [])
    sampled_grids, foreign_ones = iter(grids), iter(settled)
    results = []
    for code, skip in zip(codes, skipped):
        corners = code.corners
        read, mirrored = None, False
        error: str | None = None
        if skip:
            status, text, confidence, known, error = REJECTED, None, 0.0, True, FOREIGN_KNOWN
        elif code.supported:
            sampled = next(sampled_grids)
            mirrored = sampled.mirrored
            if mirrored:  # the symbol's own tr and bl are the other way round
                corners = corners[[0, 3, 2, 1]]
            if next(foreign_ones):
                status, text, confidence, known, error = REJECTED, None, 0.0, True, FOREIGN
            else:
                read = next(reads)
                status, text, confidence = (READ if read.text else REJECTED), read.text, read.confidence
                known = (status == REJECTED and numeric
                         and (read.foreign or _holding(code.corners, foreign_places) is not None))
                error = None if status == READ else FOREIGN if known else read.error
        else:
            status, text, confidence, known = UNSUPPORTED, None, 0.0, False
            error = f"not version 1: {code.modules}x{code.modules} modules"
        results.append(CodeResult(tuple(map(tuple, corners.round(1).tolist())), status, text, round(confidence, 4),
                                  code.modules, foreign=known, read=read, mirrored=mirrored, error=error))
    return results


@dataclass(frozen=True)
class FrameState:
    """What the passes of one frame know so far (:func:`read_passes`): each pass takes one and returns a new one.

    ``known``: settled results (read, not 21x21, or known to hold something other than a number), not searched or
    read again. ``codes`` and ``results``: the codes still open and what became of each, index by index.
    ``factor``: how much the first search shrank the frame (1: it searched at full resolution). ``regions``: where
    the full-resolution search looks (None: the whole frame); ``evidence``: the boxes that make them up, each with
    how far the frame can be shrunk and still show the codes its evidence points to (:func:`_partner_factor`).
    ``left_over``: the finder patterns the full-resolution search left outside every code; ``loose``: those the
    sensitive search left so where it found no code explained. ``deblurs``: deblurs left in this frame. ``done``:
    nothing is left to search. ``spent``: (pass, seconds) of each pass run.
    """

    grey: np.ndarray
    hints: Hints
    deadline: float  # time.perf_counter() after which no pass but the essential ones starts
    known: list[CodeResult] = field(default_factory=list)
    codes: list[LocatedCode] = field(default_factory=list)
    results: list[CodeResult] = field(default_factory=list)
    factor: int = 1
    regions: list[Region] | None = None
    evidence: tuple[tuple[Region, int], ...] = ()
    left_over: list[Finder] = field(default_factory=list)
    loose: list[Finder] = field(default_factory=list)
    deblurs: int = 0
    done: bool = False
    spent: tuple[tuple[str, float], ...] = ()

    @property
    def explained(self) -> bool:
        """Whether any code is explained (:func:`_explained`)."""
        return _explained(self.results + self.known)

    def worth_retry(self, limit: int) -> list[int]:
        """Indices of the first ``limit`` open codes worth another try."""
        return [i for i, result in enumerate(self.results) if result.worth_retry][:max(0, limit)]


def _read_found(state: FrameState, codes: list[LocatedCode], model: Models, options: ReaderOptions) -> list[CodeResult]:
    """:func:`_read_located` for codes a search of the frame located: those where ``hints.foreign`` holds a code are
    known foreign, and those where ``hints.unread`` holds one are not read."""
    return _read_located(state.grey, codes, model, options, foreign_places=state.hints.foreign,
                         unread=state.hints.unread)


def first_search(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """The first search of the whole frame, in the frame shrunk by :func:`scout_factor` (where that is 1, it leaves
    the whole frame to :func:`full_search`) and by ``options.coarse`` for close-ups (the same threshold window
    over wider modules). What it settles (codes read, codes not 21x21, codes that hold something other than a
    number) is not looked at again. Sets the regions of the full-resolution search (and their boxes of evidence,
    each with how far it can be shrunk: :func:`_evidence_boxes`): around finder patterns outside
    every code (``options.reach`` finder sizes around each) where the code's other finders may be too small for
    this search or it has a partner along a side, around codes worth another try and the ``hints.focus`` regions
    where nothing settled; the whole frame where a code's modules are near the shrunk frame's limit
    (:func:`_at_limit`: a sheet of small codes holds more of them). A frame with no such evidence is done, but for
    a still image (``options.scout`` 1) shrunk for its size: none of it is searched at full resolution, and the
    passes after that search go on. Where ``hints.whole`` is False, only the focus regions are searched, at full
    resolution."""
    grey, hints = state.grey, state.hints
    if not hints.whole:
        if not hints.focus:
            return replace(state, done=True)
        return replace(state, regions=merged_regions(list(hints.focus), grey.shape),
                       evidence=tuple((box, 1) for box in hints.focus))
    factor = scout_factor(grey.shape, options)
    if factor == 1:
        return state
    found, left_over = search(grey, options.finder, factor=factor)
    first = _read_found(state, found, model, options)
    # close-ups, also where the half-size search located one it could not read (its window is too small)
    wide = coarse(grey, options.coarse, options.finder, [r.corners for r in first if not r.worth_retry])
    if wide:
        again = _read_found(state, wide, model, options)
        kept = [i for i, r in enumerate(first) if not r.worth_retry or holder(r.corners, again) is None]
        found, first = [found[i] for i in kept] + wide, [first[i] for i in kept] + again
    known = [r for r in first if not r.worth_retry]
    codes = [c for c, r in zip(found, first) if r.worth_retry]
    results = [r for r in first if r.worth_retry]
    # A finder pattern is evidence of a code this search missed where that code's other finders may be too small
    # for it (:func:`_partner_factor`), or where it has a partner along one of its sides (two finders of a code
    # whose third is lost).
    evidence = left_over if options.reach > 0 else []
    paired = side_partnered(evidence, options.finder)
    evidence = [f for f, partnered in zip(evidence, paired)
                if (_partner_factor(f, options) < factor or partnered) and _holding([f.centre], hints.foreign) is None]
    boxes = _evidence_boxes(evidence, codes, options)
    boxes += [(box, 1) for box in hints.focus if holder([box[:2], box[2:]], known) is None]
    state = replace(state, known=known, codes=codes, results=results, factor=factor)
    if _at_limit(found, options, factor):
        return state
    if not boxes:  # a still image (shrunk only for its size) goes on to the passes after the full search
        return replace(state, regions=[], done=options.scout > 1)
    return replace(state, regions=merged_regions([box for box, _ in boxes], grey.shape), evidence=tuple(boxes))


def _evidence_boxes(finders: list[Finder], codes: list[LocatedCode],
                    options: ReaderOptions) -> list[tuple[Region, int]]:
    """Boxes of evidence, each with how far the frame can be shrunk and still show the codes it points to
    (:func:`_partner_factor`): ``options.reach`` finder sizes around each of ``finders``, and a finder size around
    each of ``codes``."""
    boxes = [(around([f.centre], options.reach * f.size), _partner_factor(f, options)) for f in finders]
    return boxes + [(around(code.corners, max(f.size for f in code.finders)),
                     min(_partner_factor(f, options) for f in code.finders)) for code in codes]


def full_search(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """The search at full resolution of ``state.regions`` (the whole frame where None), and of the rest of the frame
    where it locates a code with modules near the first search's limit. Codes known to hold something else are not
    read where ``hints.unread`` says (a stream's frames off its schedule; its scheduled searches read them again).
    Where the whole frame at full resolution explains no code, the frame shrunk by ``options.coarse`` is searched
    too (close-ups). The open codes that it does not find again are kept."""
    grey, hints = state.grey, state.hints
    settled = [r.corners for r in state.known]
    located, left_over = search(grey, options.finder, state.regions, settled)
    if state.regions is not None and hints.whole and _at_limit(located, options, state.factor):
        more, left_over = search(grey, options.finder, None, settled + [code.corners for code in located])
        located += more
    again = _read_found(state, located, model, options)
    if state.regions is None and not _explained(again + state.known):
        wide = coarse(grey, options.coarse, options.finder, settled + [code.corners for code in located])
        close_ups = _read_found(state, wide, model, options)
        located, again = located + wide, again + close_ups
    stay = [i for i, r in enumerate(state.results) if holder(r.corners, again) is None]
    return replace(state, codes=located + [state.codes[i] for i in stay],
                   results=again + [state.results[i] for i in stay], left_over=left_over)


def sensitive_search(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """Searches with the more sensitive threshold (blurred finder rings), each box of evidence in the frame shrunk as
    far as the codes it points to allow (:func:`_partner_factor`). Where no code is explained: the regions of the
    full-resolution search; where that search took a whole frame with a shorter side of ``options.scout_min_side``
    px or more, around the finder patterns and open codes it left (and the whole frame where it must be shrunk to
    fit the pixels below); the whole frame where it took a smaller one (cheap, and noise can hide finders that leave
    no evidence) or none of it. What these searches locate replaces the open codes if it is more codes or reads
    one. Then, where the frame is searched whole, the frame shrunk by ``options.retry_scout`` more than the whole
    frame within the pixels below, where a blur spans fewer pixels of the threshold window (the boxes that allow as
    much are left to it).
    Elsewhere only around the finder patterns left outside every code and in the ``hints.focus`` regions where no
    code was found (a tracked code lost to motion blur), for codes of up to ``options.retry_max_modules`` modules.
    Each search traces at most ``options.retry_max_pixels`` pixels: larger regions are searched in the frame shrunk
    to fit."""
    if options.retry_offset >= options.finder.offset:
        return state
    grey, hints = state.grey, state.hints
    finder = replace(options.finder, offset=options.retry_offset, noise_offset=options.retry_noise_offset,
                     min_timing_contrast=options.retry_timing_contrast,
                     prune_noise=0.0)  # its low threshold marks specks in any frame
    settled = [r.corners for r in state.known]
    codes, results = state.codes, state.results
    height, width = grey.shape[:2]
    if not state.explained:
        fit = fitting(height * width, options.retry_max_pixels)
        factor = options.retry_scout * fit
        whole_shrunk = hints.whole and options.retry_scout > 1 and min(grey.shape) >= factor * COARSE_MIN_SIDE
        if state.regions is None and min(height, width) >= options.scout_min_side:
            # a large frame searched whole at full resolution: around what that search left (and whole where it
            # must be shrunk to fit)
            evidence = _evidence_boxes(state.left_over if options.reach > 0 else [], state.codes, options)
            evidence += [((0, 0, width, height), fit)] if fit > 1 else []
        elif state.regions or not hints.whole:  # the regions searched at full resolution
            evidence = list(state.evidence)
        else:  # a small frame (or none of it searched at full resolution): the whole frame
            evidence = [((0, 0, width, height), 1)]
        if whole_shrunk:  # the frame shrunk by factor is searched whole below: it covers the boxes that allow as much
            evidence = [(box, allowed) for box, allowed in evidence if allowed < factor]
        found, loose = _search_evidence(grey, finder, evidence, settled, options.retry_max_pixels)
        again = _read_found(state, found, model, options)
        if len(found) > len(codes) or any(r.status == READ for r in again):
            codes, results = found, again
        if whole_shrunk:
            found, shrunk_loose = search(grey, finder, factor=factor)
            found = [code for code in found if holder(code.corners, results + state.known) is None]
            again = _read_found(state, found, model, options)
            codes, results = codes + found, results + again
            loose += _unseen(shrunk_loose, loose)
        return replace(state, codes=codes, results=results, loose=loose)
    lost = [(box, 1) for box in hints.focus if holder([box[:2], box[2:]], results + state.known) is None]
    lone = [f for f in state.left_over if options.reach > 0 and _holding([f.centre], hints.foreign) is None]
    lost += _evidence_boxes(lone, [], options)
    if not lost:
        return state
    more, _ = _search_evidence(grey, replace(finder, max_modules=options.retry_max_modules), lost,
                               settled + [r.corners for r in results], options.retry_max_pixels)
    again = _read_found(state, more, model, options)
    return replace(state, codes=codes + more, results=results + again)


def _search_evidence(grey: np.ndarray, finder: FinderOptions, evidence: Sequence[tuple[Region, int]],
                     known: Sequence[Points], max_pixels: int) -> tuple[list[LocatedCode], list[Finder]]:
    """:func:`livereader.vision.search.search` of the boxes of ``evidence``, each in the frame shrunk by the factor
    it allows, and at least by the power of 2 that keeps a search within ``max_pixels`` (:func:`fitting`): the boxes
    of each factor merged and searched together, the largest factor first, where no code is ``known`` or found
    already. The codes, and the finder patterns left outside all of them (each once)."""
    by_factor: dict[int, list[Region]] = {}
    for box, factor in evidence:
        by_factor.setdefault(factor, []).append(box)
    codes: list[LocatedCode] = []
    left_over: list[Finder] = []
    for allowed in sorted(by_factor, reverse=True):
        regions = merged_regions(by_factor[allowed], grey.shape)
        factor = max(allowed, fitting(_area(regions, grey.shape), max_pixels))
        found, left = search(grey, finder, regions, [*known, *(code.corners for code in codes)], factor)
        codes += found
        left_over += _unseen(left, left_over)
    outlines = [code.corners for code in codes]
    return codes, [f for f in left_over if _holding([f.centre], outlines) is None]


def _unseen(finders: list[Finder], seen: list[Finder]) -> list[Finder]:
    """The ``finders`` that lie farther from every finder ``seen`` than half that one's size: a finder found again by
    another search of the same place is not new."""
    return [f for f in finders if all(math.dist(f.centre, g.centre) > g.size / 2 for g in seen)]


def sheared_regroup(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """Where no code is explained, the finder patterns the full-resolution search left outside every code, grouped
    again with the worse aligned of a side's two finders allowed ``options.regroup_misalignment`` off the side's
    line: motion blur shears finder outlines."""
    if state.explained or options.regroup_misalignment <= options.finder.max_other_misalignment:
        return state
    grey = state.grey
    sheared = group_codes(grey, [f for f in state.left_over if holder([f.centre], state.results) is None],
                          replace(options.finder, max_other_misalignment=options.regroup_misalignment))
    again = _read_found(state, sheared, model, options)
    return replace(state, codes=state.codes + sheared, results=state.results + again)


def refined(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """The codes worth another try (at most ``options.max_retries``) sampled again with a refined bottom-right
    corner (:func:`livereader.vision.grid.refine`); a read or a code found foreign replaces the old result."""
    todo = state.worth_retry(options.max_retries)
    if not todo:
        return state
    again = _read_located(state.grey, [refine(state.grey, state.codes[i]) for i in todo], model, options)
    results = list(state.results)
    for i, result in zip(todo, again):
        if result.status == READ or result.foreign:
            results[i] = result
    return replace(state, results=results)


def deblurred(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """The codes still worth another try, deblurred (:func:`livereader.vision.deblur.deblur`, 3-20 ms each) one
    by one within the frame's deblurs and its deadline."""
    todo = state.worth_retry(state.deblurs)
    if not todo:
        return state
    results, tried = list(state.results), 0
    for i in todo:
        if time.perf_counter() >= state.deadline:
            break
        tried += 1
        result = _read_located(state.grey, [state.codes[i]], model, options, sampler=_deblurring(options))[0]
        if result.status == READ or result.foreign:
            results[i] = result
    return replace(state, results=results, deblurs=state.deblurs - tried)


def paired(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """Where the frame still explains no code, the verified reads of codes of which only two finder patterns show
    (:func:`_read_paired`) among the finders the sensitive search left loose and those of codes worth another try;
    they replace the open codes whose outlines hold them."""
    if options.paired_reads <= 0 or state.explained:
        return state
    lone = state.loose + [f for code, r in zip(state.codes, state.results) if r.worth_retry for f in code.finders]
    found = _read_paired(state.grey, lone, model, options, state.deblurs)
    reads = [result for _, result in found]
    kept = [i for i, r in enumerate(state.results) if holder(r.corners, reads) is None]
    return replace(state, codes=[state.codes[i] for i in kept] + [code for code, _ in found],
                   results=[state.results[i] for i in kept] + reads)


def unsmeared(state: FrameState, model: Models, options: ReaderOptions) -> FrameState:
    """Where a frame searched whole still explains no code and its gradients show a straight motion's smear
    (:mod:`livereader.vision.motion`), the frame restored (both in the frame shrunk to fit
    ``options.motion.max_pixels``) and, if the frame's deadline has not passed, read at that size by
    ``RESTORED_PASSES``, each only before the deadline; its reads, their corners in the frame, replace the open
    codes whose outlines hold them. A frame that explains nothing has no settled codes, so the restored frame starts
    afresh."""
    if state.explained or not state.hints.whole or options.motion.max_pixels <= 0:
        return state
    height, width = state.grey.shape[:2]
    factor = fitting(height * width, options.motion.max_pixels)
    small = shrunk(state.grey, factor)[0] if factor > 1 else state.grey
    motion = estimate(small, options.motion) if min(small.shape[:2]) >= SIZE else None
    if motion is None:
        return state
    restored = restore(small, motion, options.motion)
    if time.perf_counter() >= state.deadline:
        return state
    hints = replace(state.hints, focus=(), foreign=tuple(_rescaled(o, 1 / factor) for o in state.hints.foreign))
    # within options.motion.max_pixels: searched whole at its size (scout 1), refining as many codes as a frame
    again = _run(FrameState(restored, hints, state.deadline), RESTORED_PASSES, model, replace(options, scout=1))
    reads = [replace(r, corners=_rescaled(r.corners, factor)) for r in again.known + again.results if r.status == READ]
    kept = [i for i, r in enumerate(state.results) if holder(r.corners, reads) is None]
    return replace(state, codes=[state.codes[i] for i in kept], results=[state.results[i] for i in kept],
                   known=state.known + reads)


def _rescaled(points: Sequence[tuple[float, float]], scale: float) -> tuple[tuple[float, float], ...]:
    """Pixel points (x, y) of a frame in the frame scaled by ``scale`` (:func:`livereader.geometry.scaled_point`),
    to 0.1 px as results give corners."""
    return tuple((round(x, 1), round(y, 1)) for x, y in (scaled_point(x, y, scale) for x, y in points))


@dataclass(frozen=True)
class Pass:
    """One pass of :func:`read_passes`: ``run`` takes the frame's state and returns the next; an ``essential``
    pass runs whatever the frame's budget, the others only while it lasts."""

    name: str
    run: Callable[[FrameState, Models, ReaderOptions], FrameState]
    essential: bool = False


# cheapest and most productive first: each later pass runs only where the earlier ones leave something unexplained
PASSES = (Pass("first search", first_search, essential=True), Pass("full search", full_search, essential=True),
          Pass("sensitive search", sensitive_search), Pass("sheared regroup", sheared_regroup),
          Pass("refine", refined), Pass("deblur", deblurred), Pass("paired reads", paired),
          Pass("motion deblur", unsmeared))
# the passes that read a frame restored from a straight motion's blur (:func:`unsmeared`), none of them essential
RESTORED_PASSES = tuple(replace(step, essential=False) for step in PASSES
                        if step.run in (first_search, full_search, sensitive_search, refined))


def _at_limit(codes: list[LocatedCode], options: ReaderOptions, factor: int) -> bool:
    """Whether any of ``codes`` has modules under ``options.scout_limit`` px in the frame shrunk by ``factor`` (the
    first search's): such codes suggest others too small for the shrunk frame (a sheet of small codes), so the
    full-resolution search takes the whole frame (where it looks around finder patterns at all, ``reach`` > 0)."""
    return options.reach > 0 and any(min(f.size for f in code.finders) / 7 < factor * options.scout_limit
                                     for code in codes)


def _partner_factor(finder: Finder, options: ReaderOptions) -> int:
    """The largest power of 2 that a frame can be shrunk by and still show the other finders of a code that
    ``finder`` may belong to: they are at most ``options.finder.max_size_ratio`` times smaller than it, so their
    modules keep ``SHRUNK_MIN_MODULE`` px or more when shrunk."""
    modules = finder.size / 7 / options.finder.max_size_ratio
    factor = 1
    while modules >= 2 * factor * SHRUNK_MIN_MODULE:
        factor *= 2
    return factor


def _explained(results: list[CodeResult]) -> bool:
    """Whether any of ``results`` was read, is known to hold something else or has another module count: its
    finder rings resolve, so a search with other settings is unlikely to pay."""
    return any(r.status != REJECTED or r.foreign for r in results)


def _holding(corners: Points, outlines: Sequence[Points]) -> int | None:
    """Index of the first of ``outlines`` ((4, 2) pixels each) that holds the centre of ``corners``, or None."""
    return holding(centre_of(corners), outlines)


def holder(corners: Points, results: Sequence[CodeResult]) -> int | None:
    """Index of the first result whose outline holds the centre of ``corners`` ((4, 2) pixels), or None."""
    return _holding(corners, [result.corners for result in results])


def fitting(pixels: int, max_pixels: int) -> int:
    """The smallest power of 2 that shrinks an image of ``pixels`` pixels to at most ``max_pixels``."""
    factor = 1
    while pixels > max_pixels * factor * factor:
        factor *= 2
    return factor


def _area(regions: list[Region] | None, shape: tuple[int, ...]) -> int:
    """Pixels in ``regions`` (the whole frame of ``shape`` where None)."""
    if regions is None:
        return shape[0] * shape[1]
    return sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)


def scout_factor(shape: tuple[int, ...], options: ReaderOptions) -> int:
    """How much :func:`first_search` shrinks a frame of ``shape`` (height, width, ...): ``options.scout`` where the
    frame's shorter side has ``options.scout_min_side`` pixels or more, and at least the power of 2 that brings it
    within ``options.max_full_pixels`` (still images too); 1: no shrunk search, the whole frame at full resolution."""
    factor = options.scout if min(shape[:2]) >= options.scout_min_side else 1
    return max(factor, fitting(shape[0] * shape[1], options.max_full_pixels))


def read_passes(frame: np.ndarray, model: Models, options: ReaderOptions = ReaderOptions(),
                hints: Hints = Hints()) -> FrameState:
    """A BGR (or grey) uint8 frame read by ``PASSES`` in order: the essential ones always, each other one only if
    the frame's budget (``options.budget`` seconds from the start, or ``hints.deadline`` if sooner) is not spent
    when it would start, until a pass leaves nothing to search (``FrameState.done``: the first search of a camera
    frame without evidence). Each pass costs time only where it runs, and is bounded on its own (pixels
    searched, fits, codes tried): a pathological frame loses passes, not seconds."""
    if hints.deadline is None:  # before the frame's clock starts (a paced stream loads before its own clock)
        compiled.load_if_ready()
    grey = to_grey(frame)
    deadline = time.perf_counter() + options.budget
    if hints.deadline is not None:
        deadline = min(deadline, hints.deadline)
    state = FrameState(grey, hints, deadline, deblurs=options.max_deblurs)
    if min(grey.shape[:2]) < SIZE:  # smaller than a code of one-pixel modules: nothing to find
        return replace(state, done=True)
    return _run(state, PASSES, model, options)


def _run(state: FrameState, passes: Sequence[Pass], model: Models, options: ReaderOptions) -> FrameState:
    """``passes`` run in order on ``state``: the essential ones always, each other one only before the state's
    deadline, until one leaves nothing to search (``FrameState.done``); each one's time is added to ``spent``."""
    spent: list[tuple[str, float]] = []
    for step in passes:
        if state.done or not (step.essential or time.perf_counter() < state.deadline):
            break
        started = time.perf_counter()
        state = step.run(state, model, options)
        spent.append((step.name, time.perf_counter() - started))
    return replace(state, spent=state.spent + tuple(spent))


def read_frame(frame: np.ndarray, model: Models, options: ReaderOptions = ReaderOptions(),
               hints: Hints = Hints()) -> list[CodeResult]:
    """Every code located in a BGR (or grey) uint8 frame, read or not, by ``model`` (one, or several tried in
    order as :func:`livereader.decode.reader.read_grids` does): :func:`read_passes`' results."""
    state = read_passes(frame, model, options, hints)
    return state.results + state.known


def _deblurring(options: ReaderOptions) -> Sampler:
    """The sampler that deblurs a code's grid (:func:`livereader.vision.deblur.deblur`)."""
    return partial(deblur, options=options.deblur)


def _read_paired(grey: np.ndarray, finders: list[Finder], model: Models, options: ReaderOptions,
                 deblurs: int) -> list[tuple[LocatedCode, CodeResult]]:
    """The verified reads of codes of which only two of ``finders`` show
    (:func:`livereader.vision.pairs.paired_codes`), with their codes: the ``options.paired_reads`` most likely
    places, each read as sampled and, where that does not read, deblurred (the first ``deblurs`` of them: what is
    left of the frame's ``options.max_deblurs``). A place that does not read is no code, and is not reported."""
    guesses = paired_codes(grey, finders, options.finder)[:options.paired_reads]
    if not guesses:
        return []
    reads = _read_located(grey, guesses, model, options)
    todo = [i for i, r in enumerate(reads) if r.status != READ][:max(0, deblurs)]
    if todo:
        again = _read_located(grey, [guesses[i] for i in todo], model, options, sampler=_deblurring(options))
        for i, result in zip(todo, again):
            reads[i] = result
    return [(code, r) for code, r in zip(guesses, reads) if r.status == READ]
