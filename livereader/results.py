"""The values that pass between the stages of a frame and a stream, and the public result.

:class:`Code` is what :func:`livereader.read` and :meth:`livereader.Reader.read` return and what the JSON lines
hold (:meth:`Code.to_dict`). Between stages: what became of a located code (``Status``), a code's result
inside the pipeline (``CodeResult``) and what a stream knows of a frame before reading it (``Hints``).

Conventions: points are (x, y) pixels of the frame (origin top-left); corners are ordered tl, tr, br, bl of the
symbol (its own corners: a mirrored code's are given in the symbol's order, not the image's).
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from livereader.vision.search import Region

if TYPE_CHECKING:
    from livereader.decode.payload import StructuredAppend
    from livereader.decode.reader import GridRead

Corners = tuple[tuple[float, float], ...]


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
    """One located code in a frame, as the pipeline's stages pass it on (the public value is :class:`Code`).

    ``status``: ``read`` (``text`` holds the verified number, or text with the content option ``any``),
    ``rejected`` (a 21x21 code that did not read or verify) or ``unsupported`` (not 21x21). ``corners``: tl,
    tr, br, bl of the symbol in pixels (x, y). ``modules``: its size as located. ``foreign``: a rejected code
    known to hold something other than a number (it decodes so as sampled, or a stream saw it do so): no other
    sampling can make it read, so it is not tried again (with the content option ``any`` no code is foreign).
    ``read``: what its grid read as (None where it was not read). ``mirrored``: seen mirrored. ``error``: why
    it did not read (None for a read).
    """

    corners: Corners
    status: Status
    text: str | None
    confidence: float
    modules: int
    fused: int = 0  # frames averaged for this read by :mod:`livereader.live.fuse` (0: read from this frame alone)
    foreign: bool = False
    read: GridRead | None = None
    mirrored: bool = False
    error: str | None = None

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


# zxing-cpp's symbology identifiers of QR codes (ISO/IEC 18004 table F.1): by FNC1 and whether an ECI is present
_SYMBOLOGY = {(None, False): "]Q1", (None, True): "]Q2", ("gs1", False): "]Q3", ("gs1", True): "]Q4",
              ("aim", False): "]Q5", ("aim", True): "]Q6"}


@dataclass(frozen=True)
class Code:
    """A code located in an image or frame: the value :func:`livereader.read` and :meth:`livereader.Reader.read`
    return, with the fields of zxing-cpp's ``Barcode`` where livereader knows them.

    ``text``: the verified payload (the number, or any text with the content option ``any``), None where the code
    did not read. ``status``: ``read``, ``rejected`` (a 21x21 code that did not read or verify; ``error`` says
    why) or ``unsupported`` (located but not version 1). ``confidence``: the calibrated probability in [0, 1]
    that the read is right. ``corners``: tl, tr, br, bl of the symbol in (x, y) pixels. ``bytes``: the payload's
    bytes as stored (digits and alphanumeric text as ASCII, byte segments as they are, kanji as Shift JIS).
    ``content``: the mode of its data segments (``numeric``, ``alphanumeric``, ``byte``, ``kanji``, ``mixed``);
    ``ec_level`` (L, M, Q, H), ``mask`` (0-7) and ``version`` (1 for the codes read): its format. ``orientation``:
    the symbol's rotation in the image in degrees (the direction of its top edge, tl to tr, clockwise from the
    x axis, -180 to 180). ``mirrored``: seen mirrored. ``eci``, ``fnc1`` (``"gs1"`` or ``"aim:<indicator>"``),
    ``structured_append``: what the symbol holds besides its text. ``track``: the same id in every frame of a
    stream that shows the same code (None for still images). ``fused``: frames averaged for this read (0: read
    from this frame alone).
    """

    text: str | None
    status: Status
    confidence: float
    corners: Corners
    bytes: builtins.bytes | None = None  # (builtins: the field's own name shadows the type in the class body)
    content: str | None = None
    ec_level: str | None = None
    version: int | None = None
    mask: int | None = None
    orientation: int | None = None
    mirrored: bool = False
    error: str | None = None
    eci: int | None = None
    fnc1: str | None = None
    structured_append: StructuredAppend | None = None
    track: int | None = None
    fused: int = 0

    @classmethod
    def of(cls, result: CodeResult, track: int | None = None) -> Code:
        """The public value of a pipeline result (``track``: its stream track, if any)."""
        read = result.read if result.status == READ else None
        payload = read.payload if read else None
        version = (result.modules - 17) // 4 if result.modules >= 21 and (result.modules - 17) % 4 == 0 else None
        orientation = None
        if len(result.corners) == 4:
            (x0, y0), (x1, y1) = result.corners[:2]
            orientation = round(math.degrees(math.atan2(y1 - y0, x1 - x0)))
        return cls(result.text, result.status, result.confidence, result.corners,
                   payload.raw if payload else None, payload.content if payload else None,
                   read.ec_level if read else None, version, read.mask if read else None,
                   orientation, result.mirrored, result.error,
                   payload.eci if payload else None, payload.fnc1 if payload else None,
                   payload.structured_append if payload else None, track, result.fused)

    @property
    def symbology_identifier(self) -> str:
        """The AIM symbology identifier of a QR code (``]Q1`` to ``]Q6``), as zxing-cpp gives it."""
        fnc1 = None if self.fnc1 is None else self.fnc1[:3]
        return _SYMBOLOGY[(fnc1, self.eci is not None)]

    def to_dict(self) -> dict[str, Any]:
        """The code as a JSON line's fields (``livereader``'s JSON lines add ``frame`` and ``source``): ``text``,
        ``confidence``, ``corners``, ``status``, ``track``, ``fused``, ``content``, ``ec_level``, then ``eci``,
        ``fnc1`` and ``structured_append`` ({"index", "total", "parity"}) each only where the code holds it,
        then ``version``, ``mask``, ``orientation``, ``mirrored`` and ``error``. ``bytes`` is left out (``text``
        holds the payload)."""
        fields: dict[str, Any] = {
            "text": self.text, "confidence": self.confidence, "corners": [list(p) for p in self.corners],
            "status": self.status.value, "track": self.track, "fused": self.fused, "content": self.content,
            "ec_level": self.ec_level}
        if self.eci is not None:
            fields["eci"] = self.eci
        if self.fnc1 is not None:
            fields["fnc1"] = self.fnc1
        if self.structured_append is not None:
            append = self.structured_append
            fields["structured_append"] = {"index": append.index, "total": append.total, "parity": append.parity}
        fields.update(version=self.version, mask=self.mask, orientation=self.orientation, mirrored=self.mirrored,
                      error=self.error)
        return fields
