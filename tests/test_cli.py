import json

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


def test_the_capture_loop_searches_whole_frames_every_few_frames(tmp_path, capsys):
    import cv2
    import numpy as np

    from livereader.cli import FULL_SEARCH_EVERY

    frame = np.full((480, 640), 235, np.uint8)
    for text, module_px, x, y in (("123456", 8, 20, 20), ("654321", 2, 401, 301)):  # as in test_vision
        modules = np.pad(encode(text, "H"), 4)
        frame[y : y + 29 * module_px, x : x + 29 * module_px] = 255 - 220 * np.kron(modules, np.ones((module_px,) * 2))
    path = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(FULL_SEARCH_EVERY + 1):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main(["--video", str(path), "--jsonl", "-", "--nofusion"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    small = sorted(d["frame"] for d in lines if d["text"] == "654321")
    assert small == [0, FULL_SEARCH_EVERY]  # only the full searches find it
    assert sorted(d["frame"] for d in lines if d["text"] == "123456") == list(range(FULL_SEARCH_EVERY + 1))
