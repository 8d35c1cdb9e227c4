"""Tracking: follow each code across frames and give it a stable ``track`` id.

Each frame's located codes are matched to the live tracks greedily, nearest first: a code continues a track
when its outline's centre lies within ``TrackOptions.max_distance`` code sizes of where the track was last
seen, their sizes differ by less than ``max_size_ratio``, and it does not read a different number than the
track did (a new number in the same place is a new code: it starts a new track and ends the old one).
Other unmatched codes start tracks; a track not seen for more than ``max_missing`` frames ends. For a steady
overlay, each track is drawn with the number it last read in the last ``hold`` frames, also in a frame that
located it without reading it, and a track missed in a frame is still drawn where it was last seen for up to
``hold`` frames.

A track reports its number once, in the frame where that number is first read (``TrackedCode.first_read``):
``livereader --once`` writes only those lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from itertools import count

from livereader.geometry import centre_and_size
from livereader.results import READ, UNSUPPORTED, CodeResult


@dataclass(frozen=True)
class TrackOptions:
    max_distance: float = 0.6  # centre distance in code sizes (square root of the outline's area)
    max_size_ratio: float = 1.6
    max_missing: int = 15  # frames a track lives on unseen
    hold: int = 5  # frames an unseen track stays drawn


@dataclass(frozen=True)
class TrackedCode:
    """A track in this frame: ``result`` is what this frame located (None for a held track, unseen for
    ``missing`` frames); ``shown`` is what the overlay draws."""

    track: int
    result: CodeResult | None
    shown: CodeResult
    missing: int = 0
    first_read: bool = False  # this frame first read the track's number


@dataclass(frozen=True)
class LiveTrack:
    """A live track as last seen: for a stream's search hints (:mod:`livereader.live.stream`)."""

    track: int
    result: CodeResult  # where and what it was last located
    foreign: bool  # it decoded to something other than a number and has not read a number since


@dataclass
class _Track:
    id: int
    result: CodeResult  # the latest located result
    last_read: CodeResult | None = None
    since_read: int = 0  # frames since the last read
    missing: int = 0
    foreign: bool = False

    @property
    def text(self) -> str | None:
        return self.last_read.text if self.last_read else None


@dataclass
class Tracker:
    options: TrackOptions = field(default_factory=TrackOptions)
    _tracks: list[_Track] = field(default_factory=list)
    _ids: count = field(default_factory=count)

    def update(self, results: list[CodeResult]) -> list[TrackedCode]:
        """Match this frame's results to tracks; returns them with their track ids (in the order given), then
        the held tracks to draw."""
        seen = [centre_and_size(t.result.corners) for t in self._tracks]  # where each track was last seen: centre, size
        pairs: list[tuple[float, int, int]] = []
        replaced: dict[int, int] = {}  # replaced: result -> a track it would continue but for its new number
        for i, result in enumerate(results):
            centre, size = centre_and_size(result.corners)
            for j, (track, (last_centre, last_size)) in enumerate(zip(self._tracks, seen)):
                distance = math.dist(centre, last_centre) / max(size, last_size)
                ratio = max(size, last_size) / min(size, last_size)
                same_kind = (result.status == UNSUPPORTED) == (track.result.status == UNSUPPORTED)
                if distance < self.options.max_distance and ratio < self.options.max_size_ratio and same_kind:
                    if result.status == READ and track.text is not None and result.text != track.text:
                        replaced.setdefault(i, j)
                    else:
                        pairs.append((distance, i, j))
        matched: dict[int, int] = {}
        used: set[int] = set()
        for _, i, j in sorted(pairs):
            if i not in matched and j not in used:
                matched[i] = j
                used.add(j)
        for i, j in replaced.items():
            if i not in matched and j not in used:
                self._tracks[j].missing = self.options.max_missing + 1  # ends below, not held
                used.add(j)
        tracked = []
        for i, result in enumerate(results):
            if i in matched:
                track = self._tracks[matched[i]]
                track.missing = 0
            else:
                track = _Track(next(self._ids), result)
                self._tracks.append(track)
                used.add(len(self._tracks) - 1)
            first = result.status == READ and track.text is None
            track.result = result
            track.foreign = result.foreign or (track.foreign and result.status != READ)
            track.since_read += 1
            if result.status == READ:
                track.last_read, track.since_read = result, 0
            tracked.append(TrackedCode(track.id, result, self._shown(track), 0, first))
        held = []
        for index, track in enumerate(self._tracks):
            if index not in used:
                track.missing += 1
                track.since_read += 1
                if track.missing <= self.options.hold:
                    held.append(TrackedCode(track.id, None, self._shown(track), track.missing))
        self._tracks = [t for t in self._tracks if t.missing <= self.options.max_missing]
        return tracked + held

    def live(self) -> list[LiveTrack]:
        """The tracks seen in the last ``options.hold`` frames."""
        return [LiveTrack(t.id, t.result, t.foreign) for t in self._tracks if t.missing <= self.options.hold]

    def _shown(self, track: _Track) -> CodeResult:
        """Where the track was last seen, with the number it last read if that was in the last ``hold`` frames."""
        if track.last_read is None or track.since_read == 0 or track.since_read > self.options.hold:
            return track.result
        return replace(track.last_read, corners=track.result.corners)
