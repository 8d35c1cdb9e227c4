"""The values that pass between the stages of a frame and a stream: what became of a located code (``Status``),
a code's result (``CodeResult``) and what a stream knows of a frame before reading it (``Hints``).

Conventions: points are (x, y) pixels of the frame; corners are ordered tl, tr, br, bl of the symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from livereader.vision.search import Region


class Status(str, Enum):
    """What became of a located code; compares equal to its value (``Status.READ == "read"``)."""

    READ = "read"  # a verified read: ``text`` holds it
    REJECTED = "rejected"  # a 21x21 code that did not read or verify
    UNSUPPORTED = "unsupported"  # located, but not 21x21

    def __str__(self) -> str:
        return self.value


READ, REJECTED, UNSUPPORTED = Status.READ, Status.REJECTED, Status.UNSUPPORTED


@dataclass(frozen=True)
class CodeResult:
    """One located code in a frame.

    ``status``: ``read`` (``text`` holds the verified number, or text with the content option ``any``),
    ``rejected`` (a 21x21 code that did not read or verify) or ``unsupported`` (not 21x21). ``corners``: tl,
    tr, br, bl of the symbol in pixels (x, y). ``foreign``: a rejected code known to hold something other than
    a number (it decodes so as sampled, or a stream saw it do so): no other sampling can make it read, so it is
    not tried again (with the content option ``any`` no code is foreign). ``content``, ``ec_level`` and
    ``headers``: of a read, as :class:`livereader.decode.reader.GridRead` gives them.
    """

    corners: tuple[tuple[float, float], ...]
    status: Status
    text: str | None
    confidence: float
    modules: int
    fused: int = 0  # frames averaged for this read by :mod:`livereader.live.fuse` (0: read from this frame alone)
    foreign: bool = False
    content: str | None = None
    ec_level: str | None = None
    headers: tuple[tuple[str, object], ...] = ()

    @property
    def worth_retry(self) -> bool:
        """A 21x21 code that did not read and may read with other sampling or more frames."""
        return self.status == REJECTED and not self.foreign


@dataclass(frozen=True)
class Hints:
    """What a stream knows of a frame before reading it (:mod:`livereader.live.stream`).

    ``focus``: regions searched at full resolution where the first search settles no code, e.g. where tracked
    codes are predicted to be. ``foreign``: outlines (tl, tr, br, bl pixels) of codes known to hold something
    other than a number; a code located there that does not read is not tried again. ``whole``: False to
    search only the focus regions (no first search of the whole frame). ``reread``: False not to read codes at
    ``foreign`` places again in a frame searched whole either (a paced stream's frames between its scheduled
    searches; frames searched only in focus regions never read them). ``deadline``: a ``time.perf_counter()``
    time after which no optional pass starts (a paced stream's frame, all reads of it together), or None.
    """

    focus: tuple[Region, ...] = ()
    foreign: tuple[tuple[tuple[float, float], ...], ...] = ()
    whole: bool = True
    reread: bool = True
    deadline: float | None = None

    @property
    def unread(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        """The outlines where a located code is not read this frame (known to hold something other than a
        number)."""
        return self.foreign if not (self.whole and self.reread) else ()


def centre_of(points) -> tuple[float, float]:
    """The mean of a few (x, y) points (plain Python: numpy's mean costs more for four points)."""
    points = [(float(x), float(y)) for x, y in points]
    return sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
