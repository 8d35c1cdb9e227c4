"""livereader-bench's comparison of real photos with a manifest, on a few photos made here."""

import json

import cv2
import numpy as np
import pytest

from livereader.bench.cli import run_photos
from livereader.decode.reader import load_models
from livereader.symbol import encode

_MODULE = 6  # px per module of the rendered codes


def _page(payloads: list[tuple[str, str]]) -> tuple[np.ndarray, list[list[list[int]]]]:
    """A 480x640 photo of codes side by side, and each code's corners (tl, tr, br, bl) in its pixels."""
    image = np.full((480, 640), 235, np.uint8)
    corners = []
    for i, (text, level) in enumerate(payloads):
        x, y = 40 + 200 * i, 60
        image[y : y + 21 * _MODULE, x : x + 21 * _MODULE] = 235 - 200 * np.kron(encode(text, level),
                                                                                 np.ones((_MODULE, _MODULE), np.uint8))
        side = 21 * _MODULE - 1
        corners.append([[x, y], [x + side, y], [x + side, y + side], [x, y + side]])
    return image, corners


def test_manifest_comparison_counts_exact_wrong_and_unknown_reads(tmp_path):
    folder = tmp_path / "photos"
    (folder / "set").mkdir(parents=True)
    image, corners = _page([("HELLO", "M"), ("123456", "H"), ("WORLD", "Q")])
    cv2.imwrite(str(folder / "set" / "a.png"), image)
    codes = [{"text": "HELLO", "version": 1, "numeric_only": False, "corners_tl_tr_br_bl": corners[0]},
             {"text": "123456", "version": 1, "numeric_only": True, "corners_tl_tr_br_bl": corners[1]}]
    # the third code is known only by its hand-labelled outline; a fourth decoded one holds another text
    entry = {"path": "set/a.png", "codes": codes, "hand_labelled_corners": corners}
    image, corners = _page([("TEXT", "L")])
    cv2.imwrite(str(folder / "set" / "b.png"), image)
    wrong = {"path": "set/b.png", "codes": [{"text": "OTHER", "version": 1, "corners_tl_tr_br_bl": corners[0]}]}
    (folder / "manifest.jsonl").write_text(json.dumps(entry) + "\n" + json.dumps(wrong) + "\n")
    figures = run_photos(folder, load_models())
    assert figures["text"]["set"] == {"codes": 3, "exact": 2, "wrong": 1, "beyond": 1, "elsewhere": 0}
    assert figures["numeric version-1 codes"] == 1 and figures["of those read"] == 1
    assert figures["manifest version-1 codes"] == 3 and figures["of those located"] == 3
    assert figures["wrong_files"] == [str(folder / "set" / "b.png")]


def test_codes_replaced_in_place_by_numbers_read_as_their_numbers():
    from livereader.bench.footage import numeric_in_place
    from livereader.pipeline import read_frame

    image, corners = _page([("HELLO", "M"), ("WORLD", "Q")])
    photo = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), (3, 3), 0.8)
    entry = {"codes": [{"text": "HELLO", "version": 1, "ec_level": "M", "corners_tl_tr_br_bl": corners[0]},
                       {"text": "WORLD", "version": 1, "ec_level": "Q", "corners_tl_tr_br_bl": corners[1]},
                       {"text": "LARGER", "version": 2, "corners_tl_tr_br_bl": corners[1]}]}
    replaced, truths = numeric_in_place(photo, entry, np.random.default_rng(0))
    assert len(truths) == 2 and all(text.isdigit() for text, _ in truths)
    assert (replaced[:, 400:] == photo[:, 400:]).all()  # nothing changes away from the codes
    texts = {r.text for r in read_frame(replaced, load_models())}
    assert texts == {text for text, _ in truths}


@pytest.mark.slow
def test_the_command_line_runs_count_the_frames_and_where_a_code_was_located(tmp_path):
    from livereader.bench.footage import RunError, cli_runs

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for index in range(12):
        frame = np.full((240, 320), 230, np.uint8)
        if index >= 4:  # a code from frame 4 on
            frame[20:194, 40:214] = 230 - 200 * np.kron(np.pad(encode("123456", "H"), 4), np.ones((6, 6), np.uint8))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    seen = []
    (run,) = cli_runs(video, 1, seen.append)
    assert len(seen) == run["frames"] == 12  # zxing-cpp's turn saw every frame
    assert run["frames with a 21x21 code located"] == 8
    assert run["livereader s"] > 0 and run["zxing-cpp s"] > 0
    broken = tmp_path / "broken.avi"
    broken.write_bytes(video.read_bytes()[:2000])
    try:
        cli_runs(broken, 1, seen.append)
    except RunError as error:
        assert "exited with 1" in str(error)
    else:
        raise AssertionError("a failing command must raise RunError")


def test_the_first_search_contours_alone_are_those_of_the_image_the_first_search_thresholds():
    from livereader.bench.footage import FIRST_CONTOURS, first_contours, format_row, row
    from livereader.pipeline import ReaderOptions
    from livereader.vision.finder import contour_tree
    from livereader.vision.search import shrunk

    image, _ = _page([("123456", "H"), ("HELLO", "M")])  # 640x480: searched whole at first
    large = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)  # 1280x960: at half size first
    half = cv2.resize(large, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert first_contours(image) == len(contour_tree(image)[0]) > 0
    assert first_contours(large) == len(contour_tree(half, shrunk(large, 2)[1])[0])
    assert first_contours(large, ReaderOptions(scout=1)) == len(contour_tree(large)[0])
    assert first_contours(large) != first_contours(large, ReaderOptions(scout=1))
    figures = row({"livereader": [4.0, 6.0], "zxing-cpp": [2.0, 2.0], FIRST_CONTOURS: [1.0, 1.0]})
    assert figures["ratio"]["p50"] == 2.5 and figures["first contours ratio"]["p50"] == 0.5
    assert figures["worst frame ratio"] == 3.0 and figures["total ratio"] == 2.5
    assert format_row("photos", figures).endswith("0.5x /   0.5x /   0.5x     3.0x   2.5x")


def test_the_stage_timers_mark_the_stages_that_the_shares_name():
    from livereader.bench.footage import STAGES, StageTimer
    from livereader.live.stream import StreamReader
    from livereader.pipeline import read_frame

    models = load_models()
    image, _ = _page([("123456", "H"), ("HELLO", "M")])
    frame = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    timer = StageTimer(lambda frame: read_frame(frame, models))
    assert len(timer(frame)) == 2
    assert {"finder patterns", "grouping and fit", "grid sampling", "CNN and verification"} <= set(timer.stages)
    stream = StageTimer(StreamReader(models).read)
    for _ in range(3):
        stream(frame)
    assert "optical flow (streams)" in stream.stages
    for measured in (timer, stream):
        assert set(measured.stages) <= set(STAGES)  # a stage renamed in its decorator would show here
        assert list(measured.shares()) == [stage for stage in STAGES if stage in measured.stages]
        assert 0 < measured.shares()["finder patterns"] < 1
    assert read_frame(frame, models) == timer(frame)  # measured or not, the same reads


def test_photos_are_read_in_their_stored_pixel_layout_as_the_manifest_gives_corners(tmp_path):
    from livereader.live.capture import load_image

    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = 255
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    # an EXIF segment saying "rotate 90 degrees clockwise to show" (orientation 6), right after the JPEG's start
    exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01" + b"\x01\x12\0\x03\0\0\0\x01\0\x06\0\0" + b"\0\0\0\0"
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:])
    assert cv2.imread(str(path)).shape == (64, 32, 3)  # a viewer shows it turned
    assert load_image(path).shape == (32, 64, 3) and load_image(path)[:, :30].min() > 200
