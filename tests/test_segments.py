"""Segments of one video: their bounds, and their lines joined into one run's (track ids across the seams)."""

from livereader.segments import Segment, join, reported, split


def test_split_cuts_equal_segments_each_read_from_a_lead_before_it():
    assert split(100, 2, lead=10) == [Segment(0, 50, 0), Segment(50, None, 10)]
    assert split(100, 3, lead=10) == [Segment(0, 33, 0), Segment(33, 67, 10), Segment(67, None, 10)]
    assert split(25, 4, lead=10) == [Segment(0, 12, 0), Segment(12, None, 10)]  # segments at least a lead long
    assert Segment(40, None, 10).frames == "30:" and Segment(0, 50, 0).frames == "0:50"


def _line(frame: int, track: int, x: float, text: str | None = "1") -> dict:
    corners = [[x, 0.0], [x + 10, 0.0], [x + 10, 10.0], [x, 10.0]]
    return {"frame": frame, "source": "v", "text": text, "corners": corners, "status": "read" if text else "rejected",
            "track": track}


def test_join_keeps_a_track_across_the_seam_and_numbers_new_ones_after_the_last():
    segments = [Segment(0, 4, 0), Segment(4, None, 2)]
    first = [_line(f, 0, 100 + f) for f in range(4)] + [_line(f, 1, 300) for f in range(1, 4)]
    # the second segment, read from frame 2: its own ids, the code at 100 its track 0, at 300 its 1, a new one 2
    second = [_line(f, 1, 100 + f) for f in range(2, 7)] + [_line(f, 0, 300) for f in range(2, 5)]
    second += [_line(f, 2, 500) for f in range(5, 7)]
    joined = join([first, second], segments)
    assert [(line["frame"], line["track"]) for line in joined if line["frame"] >= 4] == [
        (4, 0), (5, 0), (6, 0), (4, 1), (5, 2), (6, 2)]
    assert [line["frame"] for line in joined].count(2) == 2  # the lead frames once, from the first segment
    assert len(reported(joined, once=True, dedupe=None, fps=30)) == 3  # one line per track
    assert len(reported(joined, once=False, dedupe=-1, fps=30)) == 1  # one text, once per run
