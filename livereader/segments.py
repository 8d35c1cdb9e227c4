"""One long video on every core: ``livereader --video FILE --jobs N`` reads N segments of the file at once.

The file's frames are cut into N segments of about equal length. Each segment is read as ``livereader --video FILE
--frames START:STOP`` reads it, starting :data:`LEAD` frames before its first frame (``START``): those lead frames
are read, not reported, so that at the seam the segment's tracks, fused frames and search schedule are where a
serial run's would be. The lead frames are also where the segments are joined: each track of a segment that
follows, in the lead frames, a code the segment before reported in the same frames (centres within
:data:`MATCH_DISTANCE` code sizes, most frames agreeing) keeps that code's track id, and every other track gets the
next free id, in order of appearance, as a serial run numbers them. ``--once`` and ``--dedupe`` are applied to the
joined lines (a code seen across a seam is reported once).

What can differ from a serial run: a track that a segment's lead frames do not establish as the serial run had it
(one located in fewer than its frames' share, or fused from frames before the lead), for a few frames after the
seam. docs/benchmarks.md gives the lines that differed on real footage.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livereader.geometry import centre_and_size, centre_of

LEAD = 30  # frames read before each later segment, not reported: 1 s of a 30 frames/s video, twice a track's life
MATCH_DISTANCE = 0.5  # centres of one code in two segments' lead frames, at most this many code sizes apart


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` to ``stop`` - 1 of a file, reported; read from ``start - lead``."""

    start: int
    stop: int | None  # None: to the file's end
    lead: int

    @property
    def frames(self) -> str:
        """The ``--frames`` range that reads it, lead included."""
        return f"{self.start - self.lead}:{'' if self.stop is None else self.stop}"


def split(frames: int, parts: int, lead: int = LEAD) -> list[Segment]:
    """``frames`` frames in ``parts`` segments of about equal length (fewer where the file is short: each at
    least ``lead`` frames long); the last one reads to the file's end, whatever its frame count said."""
    parts = max(1, min(parts, frames // max(lead, 1)))
    bounds = [round(frames * i / parts) for i in range(parts + 1)]
    return [Segment(bounds[i], bounds[i + 1] if i + 1 < parts else None, min(lead, bounds[i])) for i in range(parts)]


def _matches(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> dict[int, int]:
    """The later segment's track ids -> the earlier one's, from the lines both give of the lead frames: each later
    code votes for the nearest earlier code of its frame within MATCH_DISTANCE; one earlier track a later one,
    most votes first."""
    by_frame: dict[int, list[tuple[tuple[float, float], float, int]]] = {}  # frame -> (centre, size, track)
    for line in earlier:
        by_frame.setdefault(line["frame"], []).append((*centre_and_size(line["corners"]), line["track"]))
    votes: Counter[tuple[int, int]] = Counter()
    for line in later:
        centre = centre_of(line["corners"])
        near = [(math.dist(centre, other) / size, track) for other, size, track in by_frame.get(line["frame"], [])]
        if near and min(near)[0] <= MATCH_DISTANCE:
            votes[(line["track"], min(near)[1])] += 1
    mapping: dict[int, int] = {}
    for (mine, theirs), _ in votes.most_common():
        if mine not in mapping and theirs not in mapping.values():
            mapping[mine] = theirs
    return mapping


def join(parts: list[list[dict[str, Any]]], segments: list[Segment]) -> list[dict[str, Any]]:
    """The segments' lines (each segment's as read, lead frames included) as one run's: lead frames dropped, track
    ids joined across the seams (see the module docstring)."""
    joined: list[dict[str, Any]] = []
    next_id = 0
    for segment, lines in zip(segments, parts):
        lead = [line for line in lines if line["frame"] < segment.start]
        earlier = [line for line in joined if line["frame"] >= segment.start - segment.lead]
        mapping = _matches(earlier, lead) if "track" in (lines[0] if lines else {}) else {}
        for line in lines:
            if line["frame"] < segment.start:
                continue
            if "track" in line:
                if line["track"] not in mapping:
                    mapping[line["track"]] = next_id
                line = {**line, "track": mapping[line["track"]]}
                next_id = max(next_id, line["track"] + 1)
            joined.append(line)
    return joined


def reported(lines: Iterable[dict[str, Any]], once: bool, dedupe: float | None, fps: float) -> list[dict[str, Any]]:
    """The joined lines that ``--once`` / ``--dedupe`` keep (as :class:`livereader.cli.Reported` keeps a serial
    run's: a track's first read is its first line with a read)."""
    from livereader.cli import Reported

    keep, read_tracks, kept = Reported(once, dedupe), set(), []
    for line in lines:
        first = line["status"] == "read" and line.get("track") not in read_tracks
        if line["status"] == "read":
            read_tracks.add(line.get("track"))
        if keep.keep(first, line["text"], line["frame"] / fps):
            kept.append(line)
    return kept


def write_joined(places: list[Path], segments: list[Segment], target: Path, once: bool, dedupe: float | None,
                 fps: float) -> int:
    """The segments' JSON lines files (missing ones: segments not read) joined into ``target``; the codes read
    (every frame's, before ``once`` and ``dedupe``)."""
    parts = [[json.loads(text) for text in place.read_text().splitlines()] if place.exists() else []
             for place in places]
    joined = join(parts, segments)
    with open(target, "w") as out:
        for line in reported(joined, once, dedupe, fps):
            out.write(json.dumps(line) + "\n")
    return sum(line["status"] == "read" for line in joined)
