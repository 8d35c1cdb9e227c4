"""Reading a stream (camera, video, demo): each frame read with what the earlier frames showed.

A stream shows the same codes in many consecutive frames, so most of a frame's work is known before it is
read. :class:`StreamReader` keeps that knowledge for one stream (state lives here and in the tracker, never in
the stages) and turns it into :class:`livereader.pipeline.Hints` for each frame:

- **Where tracked codes are now.** The outline corners of each live 21x21 track are followed from the
  previous frame by pyramidal Lucas-Kanade optical flow (``cv2.calcOpticalFlowPyrLK``, on half-size frames),
  and a region around each predicted outline is searched at full resolution where no whole-frame search
  settles it (``Hints.focus``): a code stays found in every frame once any search has found it, also one too
  small for the half-size search.
- **What holds no number.** A code that has decoded to something other than a number stays known as such
  while it is tracked (``Hints.foreign``): it is neither refined, deblurred nor fused again in later frames, and
  frames off the schedule do not read it again (``Hints.reread``).
- **What is drawn.** The tracker keeps drawing a track's last number for a few frames after it was read
  (a steady overlay). Such a held number is drawn only while the frame still supports it: the symbol seen
  through the track's outline in this frame may disagree with the symbol seen when the number was read on
  at most ``FuseOptions.max_disagreement`` of the data modules (two different codes disagree on about half).
  Otherwise the track is drawn as not read: a code replaced in place never shows the old number.
- **The schedule.** Every ``StreamOptions.full_every``-th frame (the first included) is searched whole at full
  resolution, every ``scout_every``-th of the others whole at half size (by default both are 4: every 4th frame at
  full resolution, none at half size), and every frame in the focus regions
  and around codes worth another try (finder patterns that the half-size search leaves unexplained wait for
  the next whole-frame search: in a stream they are mostly the same ones frame after frame). A new code is
  therefore found within ``scout_every`` frames when its modules are about 3 px or larger, and within
  ``full_every`` frames whatever its size in frames of up to ``ReaderOptions.max_full_pixels`` (larger ones are
  searched coarse to fine, at full resolution where evidence asks for it): the longest a new code waits.
- **Pacing.** A stream with a frame interval (``StreamOptions.interval``: a live camera's, or a video file's, as a
  camera would deliver its frames) spends the time the schedule leaves on whole-frame searches: while the searches
  that a frame searched whole always runs (``pipeline.PASSES``' essential ones) cost at most half the interval (a
  moving average; the other half is for the other passes, fusion, flow and tracking), every frame is searched
  whole (at half size where the schedule does not say full resolution), and its other passes, fused reads
  included, start only within the interval from the frame's start (``Hints.deadline``); the schedule is the floor
  where the searches cost more. Frames searched whole only for the pacing leave close-ups (modules too wide for
  the threshold window, which only ``ReaderOptions.coarse`` finds) to the schedule: a new close-up is found within
  ``scout_every`` frames, and then followed like any tracked code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from livereader import compiled
from livereader.decode.reader import Model
from livereader.live.fuse import FrameStack, FuseOptions, with_fused
from livereader.live.track import TrackedCode, Tracker, TrackOptions
from livereader.pipeline import PASSES, READ, REJECTED, Hints, ReaderOptions, read_frame, read_passes, to_grey
from livereader.symbol import SIZE
from livereader.timing import timed
from livereader.vision.grid import corner_homography, data_modules
from livereader.vision.search import Region, around

_FLOW_SCALE = 2  # optical flow runs on frames shrunk by this factor: corners move little between frames
_FLOW_WINDOW = (15, 15)
_ESSENTIAL = {step.name for step in PASSES if step.essential}


@dataclass(frozen=True)
class StreamOptions:
    full_every: int = 4  # search the whole frame at full resolution every this many frames (the longest wait)
    # ... and at half size every this many, where it is less (the longest wait of a code with 3 px modules)
    scout_every: int = 4
    # The source's frame interval, seconds (a camera's, or a video file's as a camera delivers it; None: not paced):
    # while the essential searches of a frame searched whole cost at most half of it, every frame is searched whole
    # (the two schedules above are the floor), and each frame's optional passes, fused reads included, start within
    # it (Hints.deadline)
    interval: float | None = None
    focus_margin: float = 0.5  # a focus region holds the predicted outline and this share of its size around it
    fusion: bool = True  # read the mean of the latest frames where a frame alone leaves a code unread
    track: TrackOptions = field(default_factory=TrackOptions)
    fuse: FuseOptions = field(default_factory=FuseOptions)


class StreamReader:
    """Reads the frames of one stream in order; one object per stream (see the module docstring)."""

    def __init__(self, model: Model | Sequence[Model], options: ReaderOptions = ReaderOptions(),
                 stream: StreamOptions = StreamOptions(), *, first: int = 0):
        """``first``: the index of the stream's first frame in its source (a video read from a later frame keeps
        the schedule's phase of the whole file)."""
        self.model = model
        # Unexplained finders wait for the next whole-frame search. Codes with two finders in sight wait for frames
        # that show all three, but in a paced stream, whose frames are read as frames alone are where the budget
        # allows (some noisy frames show a code's third finder in none of them).
        paired = 0 if stream.interval is None else options.paired_reads
        self.options = replace(options, reach=0.0, paired_reads=paired)
        self.full_options = replace(options, scout=1, paired_reads=paired)
        # frames searched whole only for the pacing leave close-ups to the schedule (tracked ones to their focus)
        self.paced_options = replace(self.options, coarse=())
        self.stream = stream
        # seconds the essential searches of a frame searched whole cost, a moving average from the second frame on
        # (None: not measured yet, and the frame is searched whole)
        self.whole_cost: float | None = None
        self.tracker = Tracker(stream.track)
        self.stack = FrameStack(stream.fuse) if stream.fusion else None
        self.first, self.frames = first, 0
        self._small: np.ndarray | None = None  # the previous frame at flow scale
        self._seen: dict[int, np.ndarray] = {}  # track -> its data modules as seen when its number was read

    def read(self, image: np.ndarray) -> list[TrackedCode]:
        """Read the next BGR (or grey) uint8 frame of the stream; its codes with their track ids, then the held
        tracks (:meth:`livereader.live.track.Tracker.update`)."""
        compiled.load_if_ready()  # before the frame's clock starts
        started = time.perf_counter()
        grey = to_grey(image)
        index = self.first + self.frames  # the frame's index in its source: the schedule's phase
        full = index % self.stream.full_every == 0
        interval = self.stream.interval
        scheduled = full or index % self.stream.scout_every == 0
        affordable = interval is not None and (self.whole_cost is None or self.whole_cost <= interval / 2)
        whole = scheduled or affordable
        hints = self._hints(grey, whole=whole, reread=scheduled,
                            deadline=None if interval is None else started + interval)
        options = self.full_options if full else self.options if scheduled else self.paced_options
        self.frames += 1
        if self.stack is not None:
            self.stack.add(grey)
        state = read_passes(grey, self.model, options, hints)
        results = state.results + state.known
        if self.stack is not None:
            results = with_fused(results, self.stack, self.model, options, hints)
        if whole and self.frames > 1:  # (the first frame pays for first calls)
            # the searches every frame searched whole needs: the other passes keep within the deadline
            essential = sum(seconds for name, seconds in state.spent if name in _ESSENTIAL)
            self.whole_cost = essential if self.whole_cost is None else 0.75 * self.whole_cost + 0.25 * essential
        tracked = [self._supported(grey, code) for code in self.tracker.update(results)]
        live = {t.track for t in self.tracker.live()}
        self._seen = {track: seen for track, seen in self._seen.items() if track in live}
        return tracked

    def _supported(self, grey: np.ndarray, code: TrackedCode) -> TrackedCode:
        """The tracked code, drawn as not read where this frame does not support the number it would show."""
        if code.result is not None and code.result.status == READ:
            self._seen[code.track] = data_modules(grey, corner_homography(code.result.corners))
            return code
        if code.shown.status != READ:
            return code
        seen = self._seen.get(code.track)
        now = data_modules(grey, corner_homography(code.shown.corners))
        limit = self.stream.fuse.max_disagreement
        if seen is not None and float((now != seen).mean()) <= limit:
            return code
        return replace(code, shown=replace(code.result or code.shown, status=REJECTED, text=None, fused=0, read=None))

    @timed("optical flow (streams)")
    def _hints(self, grey: np.ndarray, whole: bool, reread: bool, deadline: float | None) -> Hints:
        """Where the live 21x21 tracks are predicted in this frame: focus regions (also of codes known to hold
        something other than a number, so that they stay located) and known foreign outlines; ``whole``: whether
        the whole frame is searched too; ``reread``: whether codes known to hold something else are read again
        (frames on the schedule); ``deadline``: the frame's, for all its reads."""
        small = cv2.resize(grey, None, fx=1 / _FLOW_SCALE, fy=1 / _FLOW_SCALE, interpolation=cv2.INTER_AREA)
        previous, self._small = self._small, small
        tracks = [t for t in self.tracker.live() if t.result.modules == SIZE]
        if previous is None or previous.shape != small.shape or not tracks:
            return Hints(whole=whole, reread=reread, deadline=deadline)
        corners = np.asarray([t.result.corners for t in tracks], np.float32).reshape(-1, 1, 2)
        points = (corners + 0.5) / _FLOW_SCALE - 0.5
        moved, found, _ = cv2.calcOpticalFlowPyrLK(previous, small, points, None, winSize=_FLOW_WINDOW, maxLevel=2)
        predicted = ((moved + 0.5) * _FLOW_SCALE - 0.5).reshape(-1, 4, 2)
        tracked_ok = np.asarray(found).reshape(-1, 4).min(axis=1).tolist()  # 1: all four corners followed
        # a track whose corners the flow lost stays where it was last seen
        outlines = [p if ok else c for p, c, ok in zip(predicted, corners.reshape(-1, 4, 2), tracked_ok)]
        focus: list[Region] = []
        foreign = []
        for track, outline in zip(tracks, outlines):
            if track.foreign:
                foreign.append(tuple(map(tuple, outline.tolist())))
            focus.append(around(outline, self.stream.focus_margin * float(np.sqrt(cv2.contourArea(outline)))))
        return Hints(tuple(focus), tuple(foreign), whole, reread, deadline)


def warm_up(model: Model | Sequence[Model], options: ReaderOptions = ReaderOptions(), *,
            kernels_wait: float = 0.5) -> None:
    """Read a rendered code with ``model``, outside any stream, so that the first real frame does not pay for the
    first calls of the network and libraries (a live source's first frame would otherwise come out late), after
    waiting up to ``kernels_wait`` seconds for the compiled kernels, loaded before the first frame where they are
    ready (:func:`livereader.compiled.wait`: a cached load, not a compile). A file's frames need not wait (0): what
    is read does not depend on when the kernels arrive, and the first run after install would wait for a compile."""
    from livereader.symbol import encode

    compiled.wait(timeout=kernels_wait)

    frame = np.full((240, 320), 230, np.uint8)
    frame[20:194, 40:214] = 230 - 200 * np.kron(np.pad(encode("000000", "H"), 4), np.ones((6, 6), np.uint8))
    for _ in range(2):  # TorchScript optimises a graph on its first calls
        read_frame(frame, model, replace(options, scout=1))
