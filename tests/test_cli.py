import json
import os

import pytest

from livereader.cli import main
from livereader.symbol import encode


def _write(path, grid):
    path.write_text("\n".join("".join("#" if v else "." for v in row) for row in grid) + "\n")
    return str(path)


def test_grid_files_give_json_lines(tmp_path, capsys):
    good = _write(tmp_path / "good.txt", encode("004217"))
    foreign = _write(tmp_path / "foreign.txt", encode("HELLO", "M"))
    assert main(["--grid", good, foreign]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["source"], d["text"]) for d in lines] == [(good, "004217"), (foreign, None)]


def test_bad_grid_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("0101\n")
    assert main(["--grid", str(bad)]) == 1
    assert main(["--grid", str(tmp_path / "missing.txt")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("livereader: error:") for line in err)


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_a_new_code_is_found_within_the_full_search_schedule_and_then_followed(tmp_path, capsys):
    import cv2
    import numpy as np

    from livereader.live.stream import StreamOptions

    every = StreamOptions().full_every
    large = np.full((720, 1280), 235, np.uint8)  # large enough for the half-size search
    both = large.copy()
    for frame, text, module_px, x, y in ((large, "123456", 8, 20, 20), (both, "123456", 8, 20, 20),
                                         (both, "654321", 2, 401, 301)):  # as in test_vision
        modules = np.pad(encode(text, "H"), 4)
        frame[y : y + 29 * module_px, x : x + 29 * module_px] = 255 - 220 * np.kron(modules, np.ones((module_px,) * 2))
    path = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, 720))
    for frame in [large] + [both] * (every + 1):  # the small code shows from frame 1 on
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main(["--video", str(path), "--jsonl", "-", "--nofusion"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    small = sorted(d["frame"] for d in lines if d["text"] == "654321")
    # Too small for the half-size search: the next whole-frame search finds it (frame `every`, within `every`
    # frames of its first), and the track's focus region keeps it found in the frames after.
    assert small == [every, every + 1]
    assert sorted(d["frame"] for d in lines if d["text"] == "123456") == list(range(every + 2))


def test_dedupe_writes_a_number_again_only_after_it_was_out_of_sight(tmp_path, capsys):
    import cv2
    import numpy as np

    with_code = np.full((480, 640), 230, np.uint8)
    with_code[100:274, 200:374] = 230 - 200 * np.kron(np.pad(encode("123456", "H"), 4), np.ones((6, 6), np.uint8))
    empty = np.full((480, 640), 230, np.uint8)
    path = tmp_path / "gap.avi"  # 10 frames/s: in sight for 1 s, out of sight for 2 s, in sight again
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for frame in [with_code] * 10 + [empty] * 20 + [with_code] * 10:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    written = {}
    for seconds in ("1", "5", "-1"):
        assert main(["--video", str(path), "--jsonl", "-", "--dedupe", seconds]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert all(line["text"] == "123456" for line in lines)
        written[seconds] = [line["frame"] for line in lines]
    # back in sight from frame 30: read at its 10 frames/s, every frame of the video is searched whole
    assert written == {"1": [0, 30], "5": [0], "-1": [0]}


def test_a_video_file_does_not_wait_for_the_compiled_kernels(tmp_path, capsys, monkeypatch, serve_mjpeg):
    """A file's frames read the same with the kernels or their references: its start-up does not wait for a
    background process (after install, a compile of about 30 s), and the kernels load between frames once ready. A
    live source waits up to half a second, so that its first frames come out in time."""
    import cv2
    import numpy as np

    from livereader import compiled

    waits = []
    monkeypatch.setattr(compiled, "wait", lambda timeout=None: waits.append(timeout))
    frame = np.full((480, 640), 230, np.uint8)
    frame[100:274, 200:374] = 230 - 200 * np.kron(np.pad(encode("123456", "H"), 4), np.ones((6, 6), np.uint8))
    path = tmp_path / "code.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(3):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main(["--video", str(path), "--jsonl", "-"]) == 0
    assert waits == [0.0]
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["123456"] * 3
    waits.clear()
    live = serve_mjpeg([cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)] * 3, interval=0.05)
    assert main(["--camera", live, "--nodisplay", "--jsonl", "-"]) == 1  # a live source that ends
    assert waits == [0.5]
    assert "123456" in {json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()}


def test_a_short_video_file_defers_the_kernels_compile_to_its_end_and_a_long_one_starts_it(tmp_path, monkeypatch):
    """A first compile of the kernels (about 30 s) slows the reading beside it by about 30% and outlasts a short file:
    that compile starts when it has been read (livereader.compiled.defer); a long file's starts at once."""
    import cv2
    import numpy as np

    from livereader import cli, compiled
    from livereader.batch import video_extent

    calls = []
    monkeypatch.setattr(compiled, "defer", lambda: calls.append("defer"))
    monkeypatch.setattr(compiled, "start", lambda now=False: calls.append("start now" if now else "start"))
    def blank(path, codec):  # three blank 320x240 frames
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, (320, 240))
        for _ in range(3):
            writer.write(np.full((240, 320, 3), 200, np.uint8))
        writer.release()
        return path

    path = blank(tmp_path / "blank.avi", "MJPG")
    assert video_extent(path) == (3, 320 * 240) and video_extent(tmp_path / "none.avi") == (0, 0)
    firsts = []  # what each run calls first (later, waiting for the kernels calls start, which defer makes idle)
    frame = 320 * 240
    for limit, frames in ((cli.SHORT_VIDEO_PIXELS, []), (3 * frame - 1, []), (2 * frame, ["--frames", "1:"])):
        monkeypatch.setattr(cli, "SHORT_VIDEO_PIXELS", limit)
        calls.clear()
        assert main(["--video", str(path), "--nodisplay", *frames]) == 0
        firsts.append(calls[0])
    assert firsts == ["defer", "start now", "defer"]  # the last reads two of its three frames
    # the header's probe opens the file before the reading does: no decoder's own lines on stderr either (a process
    # of its own: FFmpeg's log level is read once a process); its kernels cannot be cached (no compile left behind)
    import subprocess
    import sys

    whole = blank(tmp_path / "whole.mp4", "mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-200])  # its index (the "moov atom") lost
    (tmp_path / "file").write_text("")
    env = {name: value for name, value in os.environ.items() if name != "OPENCV_FFMPEG_LOGLEVEL"}  # as a shell's
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "file" / "cache")
    done = subprocess.run([sys.executable, "-m", "livereader", "--video", str(cut), "--nodisplay"], text=True,
                          capture_output=True, env=env)
    assert done.returncode == 1 and done.stderr.splitlines() == [f"livereader: error: cannot open video: {cut}"]


def test_content_any_reports_text_with_its_mode_and_level(tmp_path, capsys):
    text = _write(tmp_path / "text.txt", encode("HELLO 42", "M"))
    number = _write(tmp_path / "number.txt", encode("004217"))
    assert main(["--grid", text, number, "--content", "any"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["text"], d["content"], d["ec_level"]) for d in lines] == [("HELLO 42", "alphanumeric", "M"),
                                                                         ("004217", "numeric", "H")]


def test_a_text_code_in_an_image_is_read_only_with_content_any(tmp_path, capsys):
    import cv2
    import numpy as np

    page = np.pad(encode("grüße", "L"), 4)
    path = tmp_path / "code.png"
    cv2.imwrite(str(path), (255 - 255 * np.kron(page, np.ones((6, 6), np.uint8))).astype(np.uint8))
    assert main(["--image", str(path)]) == 0
    default = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["status"], d["text"], d["content"]) for d in default] == [("rejected", None, None)]
    assert main(["--image", str(path), "--content", "any"]) == 0
    read = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["status"], d["text"], d["content"], d["ec_level"]) for d in read] == [("read", "grüße", "byte", "L")]
