"""Temporal fusion: read codes from the evidence of several frames when no single frame reads them.

A camera sees each code in many consecutive frames, each with its own noise. :class:`FrameStack` keeps the
mean of the latest grey frames: averaging n frames divides independent noise by sqrt(n), so the finder
patterns and modules that single noisy or motion-blurred frames hide show up in the mean, while a code moves
little between consecutive frames and stays sharp enough to read. Where a frame locates nothing, or leaves a
21x21 code unread that is not known to hold something other than a number, :func:`read_fused` reads the mean
as one more frame and adds its reads. Each fused read goes through the same location, models and
verification as a single frame, so it is never a guess.

Why pixels and not each track's module values: a code that a single frame locates is almost always read in
that frame, so pooling the grids of located codes read nothing more (measured: docs/reading.md, Temporal
fusion). What single frames miss is the location itself, which only the pooled pixels give back.

A fused read must also fit the frame it is reported for: sampled through the fused code's outline, the current
frame and the mean may disagree on at most ``FuseOptions.max_disagreement`` of the data modules. This keeps a
number that the older frames of the stack show from being reported where a new code has just appeared (two
codes disagree on about half their data modules; noise alone, measured on the hard clips, on a median of 5-16%).
The stack restarts when the frame size changes; after a camera move its mean is a blend that reads nothing
(verification rejects it) until the stack has refilled.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from livereader.decode.reader import Model
from livereader.pipeline import READ, REJECTED, CodeResult, Hints, ReaderOptions, holder, read_frame, to_grey
from livereader.vision.grid import corner_homography, data_modules


@dataclass(frozen=True)
class FuseOptions:
    frames: int = 4  # latest frames averaged
    max_disagreement: float = 0.35  # share of data modules on which the current frame may differ from the mean


@dataclass
class FrameStack:
    """The mean of the latest ``options.frames`` grey frames (summed when it is asked for: in a stream that
    is rare, and a running sum would cost every frame)."""

    options: FuseOptions = field(default_factory=FuseOptions)
    _grey: deque = field(default_factory=deque)

    def add(self, grey: np.ndarray) -> None:
        if self._grey and self._grey[0].shape != grey.shape:
            self._grey.clear()
        self._grey.append(grey.copy())  # the caller may reuse its buffer
        while len(self._grey) > self.options.frames:
            self._grey.popleft()

    @property
    def count(self) -> int:
        return len(self._grey)

    def mean(self) -> np.ndarray | None:
        """The mean frame as uint8, or None until two frames are in."""
        if len(self._grey) < 2:
            return None
        total = np.zeros(self._grey[0].shape, np.float32)
        for grey in self._grey:
            cv2.accumulate(grey, total)
        return cv2.convertScaleAbs(total, alpha=1 / len(self._grey))

    def disagreement(self, mean: np.ndarray, corners: tuple) -> float:
        """Share of data modules that the latest frame and ``mean`` see differently through a code's outline."""
        homography = corner_homography(corners)
        return float((data_modules(self._grey[-1], homography) != data_modules(mean, homography)).mean())


def read_fused(image: np.ndarray, stack: FrameStack, models: Model | Sequence[Model],
               options: ReaderOptions = ReaderOptions(), hints: Hints = Hints()) -> list[CodeResult]:
    """Read a frame, added to the frame stack, and the stack's mean where :func:`with_fused` says."""
    grey = to_grey(image)
    stack.add(grey)
    return with_fused(read_frame(grey, models, options, hints), stack, models, options, hints)


def with_fused(results: list[CodeResult], stack: FrameStack, models: Model | Sequence[Model],
               options: ReaderOptions = ReaderOptions(), hints: Hints = Hints()) -> list[CodeResult]:
    """``results``, the stack's latest frame's, and where a search of the whole frame located nothing or left a code
    worth another try (a 21x21 code not read, not known to hold something other than a number:
    :attr:`CodeResult.worth_retry`), the reads of the stack's mean: added, replacing an unread code in the same
    place. Not once ``hints.deadline`` has passed; the mean does not read codes known to hold something else."""
    if (results or not hints.whole) and not any(r.worth_retry for r in results):  # (or only focus regions seen)
        return results
    if hints.deadline is not None and time.perf_counter() >= hints.deadline:  # a paced frame's time is up
        return results
    mean = stack.mean()
    if mean is None:
        return results
    results = list(results)
    for fused in read_frame(mean, models, options, replace(hints, reread=False)):  # codes known to hold no number
        if fused.status != READ or stack.disagreement(mean, fused.corners) > stack.options.max_disagreement:
            continue
        fused = replace(fused, fused=stack.count)
        index = holder(fused.corners, results)
        if index is None:
            results.append(fused)
        elif results[index].status == REJECTED:
            results[index] = fused
    return results
