"""Tracking: stable ids through clips of moving codes, a steady overlay, and --once reporting."""

import json

import cv2
import numpy as np

from livereader.cli import main
from livereader.live.track import Tracker, TrackOptions
from livereader.pipeline import READ, REJECTED, CodeResult, read_frame
from livereader.synth.scene import CATEGORIES, clip


def _result(x: float, text: str | None, size: float = 100.0) -> CodeResult:
    corners = ((x, 0.0), (x + size, 0.0), (x + size, size), (x, size))
    return CodeResult(corners, READ if text else REJECTED, text, 1.0 if text else 0.1, 21)


def test_ids_stay_and_numbers_are_reported_once_through_clips(model):
    rng = np.random.default_rng(4)
    for codes, category in ((1, "noise"), (2, "perspective"), (4, "clean")):
        frames = clip(CATEGORIES[category], 20, codes, rng).frames
        tracker, last, pairs, kept, reports = Tracker(), {}, 0, 0, {}
        for t, scene in enumerate(frames):
            for code in tracker.update(read_frame(scene.image, model)):
                if code.result is None:
                    continue
                centre = np.mean(code.result.corners, 0)
                which = int(np.argmin([np.hypot(*(centre - np.mean(c.corners, 0))) for c in scene.codes]))
                if which in last and last[which][0] == t - 1:
                    pairs += 1
                    kept += last[which][1] == code.track
                last[which] = (t, code.track)
                if code.first_read:
                    assert code.result.text == scene.codes[which].text
                    reports[code.result.text] = reports.get(code.result.text, 0) + 1
        assert pairs >= 15 * codes and kept >= 0.99 * pairs
        assert set(reports) == {c.text for c in frames[0].codes} and set(reports.values()) == {1}


def test_held_tracks_keep_the_overlay_steady():
    tracker = Tracker(TrackOptions(hold=2, max_missing=3))
    (first,) = tracker.update([_result(0, "123456")])
    assert first.first_read and first.missing == 0
    (located,) = tracker.update([_result(5, None)])  # located, not read: drawn with the track's number
    assert located.track == first.track and located.result.status == REJECTED
    assert located.shown.text == "123456" and not located.first_read
    held = [tracker.update([]) for _ in range(4)]
    assert [[c.missing for c in frame] for frame in held] == [[1], [2], [], []]
    assert held[0][0].result is None and held[0][0].shown.text == "123456"
    (again,) = tracker.update([_result(5, "123456")])  # unseen for 4 frames > max_missing: a new track
    assert again.track != first.track and again.first_read


def test_a_new_number_in_the_same_place_is_a_new_track():
    tracker = Tracker()
    (a,) = tracker.update([_result(0, "111111")])
    (b,) = tracker.update([_result(2, "222222")])
    assert b.track != a.track and b.first_read


def test_once_writes_each_number_once(tmp_path, capsys):
    frames = clip(CATEGORIES["clean"], 12, 2, np.random.default_rng(9)).frames
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for scene in frames:
        writer.write(scene.image)
    writer.release()
    for once in (False, True):
        out = tmp_path / f"once{once}.jsonl"
        assert main(["--video", str(tmp_path / "clip.avi"), "--jsonl", str(out)] + ["--once"] * once) == 0
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(isinstance(line["track"], int) for line in lines)
        texts = [line["text"] for line in lines if line["text"]]
        if once:
            assert sorted(texts) == sorted(c.text for c in frames[0].codes)
        else:
            assert len(texts) >= 0.9 * 2 * len(frames) and set(texts) == {c.text for c in frames[0].codes}


def test_clip_through_a_wide_lens_tracks_after_undistortion(model):
    from pathlib import Path

    from livereader.live.calibrate import Undistorter, load_profile
    from livereader.synth.scene import DEMO_CAMERA

    undistort = Undistorter(load_profile(Path(__file__).parent.parent / "calibration" / "example-wide-640x480.yaml"))
    frames = clip(CATEGORIES["clean"], 15, 2, np.random.default_rng(3), camera=DEMO_CAMERA).frames
    tracker, tracks = Tracker(), {}
    for scene in frames:
        for code in tracker.update(read_frame(undistort(scene.image), model)):
            if code.result is not None and code.result.text:
                tracks.setdefault(code.result.text, set()).add(code.track)
    assert set(tracks) == {c.text for c in frames[0].codes}
    assert all(len(ids) == 1 for ids in tracks.values())
