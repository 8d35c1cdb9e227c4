"""The public API: livereader.read, livereader.Reader, Status, __version__, --version, python -m livereader."""

import subprocess
import sys
from dataclasses import replace
from importlib.metadata import version

import numpy as np
import pytest

import livereader
from livereader.symbol import encode


def _photo(text: str, level: str) -> np.ndarray:
    page = np.pad(encode(text, level), 4)
    return (255 - 255 * np.kron(page, np.ones((6, 6), np.uint8))).astype(np.uint8)


def test_read_an_array_or_a_file_with_either_content(tmp_path):
    import cv2

    number, text = _photo("004217", "H"), _photo("HELLO", "Q")
    [code] = livereader.read(number)
    assert code.status == livereader.Status.READ == "read" and code.text == "004217" and code.ec_level == "H"
    assert (code.bytes, code.content, code.version, code.mirrored, code.error, code.track) == (
        b"004217", "numeric", 1, False, None, None)
    assert code.mask in range(8) and code.orientation == 0 and code.symbology_identifier == "]Q1"
    path = tmp_path / "text.png"
    cv2.imwrite(str(path), text)
    assert livereader.read(path) == []  # reads only, as zxingcpp.read_barcodes
    [code] = livereader.read(path, return_errors=True)  # and every located code, with why it did not read
    assert (code.status, code.text) == (livereader.Status.REJECTED, None)
    assert code.error == "holds other content than a number"
    [code] = livereader.read(str(path), content="any")
    assert (code.text, code.content, code.ec_level, code.bytes) == ("HELLO", "alphanumeric", "Q", b"HELLO")


def test_read_takes_bytes_pil_images_and_turned_or_mirrored_codes(tmp_path):
    import cv2
    from PIL import Image

    number = _photo("123456", "H")
    encoded = cv2.imencode(".png", number)[1].tobytes()
    assert [c.text for c in livereader.read(encoded)] == ["123456"]
    assert [c.text for c in livereader.read(Image.fromarray(number))] == ["123456"]
    assert [c.text for c in livereader.read(Image.fromarray(number).convert("RGB"))] == ["123456"]
    # light modules transparent (black where the alpha is 0): read as printed, on white, in every form
    bgra = np.dstack([np.zeros((*number.shape, 3), np.uint8), 255 - number])
    cv2.imwrite(str(tmp_path / "clear.png"), bgra)
    clear = cv2.imencode(".png", bgra)[1].tobytes()
    pil = Image.fromarray(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA))
    for given in (tmp_path / "clear.png", clear, pil, bgra):
        assert [c.text for c in livereader.read(given)] == ["123456"], type(given)
    [turned] = livereader.read(cv2.rotate(number, cv2.ROTATE_90_CLOCKWISE))
    assert turned.orientation == 90 and not turned.mirrored  # its top edge points down the image's y axis
    [mirrored] = livereader.read(number[:, ::-1].copy())
    assert mirrored.mirrored and mirrored.text == "123456" and mirrored.orientation == 180


def test_read_refuses_what_is_not_an_image(tmp_path):
    (tmp_path / "not.png").write_text("no image")
    for bad in (tmp_path / "not.png", np.zeros((10, 10), np.float32), b"", b"not an image"):
        with pytest.raises(ValueError):
            livereader.read(bad)
    with pytest.raises(ValueError):
        livereader.read(_photo("1", "H"), content="text")
    with pytest.raises(ValueError):
        livereader.read(_photo("1", "H"), effort="hard")


def test_code_to_dict_is_the_json_line_of_the_command_line(tmp_path):
    """One place builds a code's JSON fields: the command line's line for an image is ``frame`` and ``source``
    followed by ``Code.to_dict()`` of the same code read by the API."""
    import json

    import cv2

    from livereader.cli import main

    path, out = tmp_path / "two.png", tmp_path / "out.jsonl"
    cv2.imwrite(str(path), np.hstack([_photo("246810", "H"), _photo("HELLO", "Q")]))
    assert main(["--image", str(path), "--jsonl", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    codes = livereader.read(path, return_errors=True)
    assert len(codes) == len(lines) == 2 and all(c.track is None for c in codes)  # a still image: no track
    assert sorted(line["track"] for line in lines) == [0, 1]  # the command line tracks codes across images
    codes = [replace(c, track=line["track"]) for c, line in zip(codes, lines)]
    assert lines == [{"frame": 0, "source": str(path), **json.loads(json.dumps(c.to_dict()))} for c in codes]
    assert sorted((line["text"] or "", line["status"]) for line in lines) == [("", "rejected"), ("246810", "read")]
    old = {"frame", "source", "text", "confidence", "corners", "status", "track", "fused", "content", "ec_level"}
    assert all(old <= set(line) for line in lines)  # the JSON lines keep every field they had


def test_reader_follows_a_code_through_a_stream():
    import cv2

    reader = livereader.Reader(content="any")
    frame = cv2.cvtColor(_photo("HELLO", "M"), cv2.COLOR_GRAY2BGR)
    frames = [reader.read(frame) for _ in range(3)]
    assert all(isinstance(c, livereader.Code) for codes in frames for c in codes)
    assert [[(c.text, c.track) for c in codes] for codes in frames] == [[("HELLO", frames[0][0].track)]] * 3
    numbers = livereader.Reader(soft=True)  # the same frame, numbers only: located, not read
    assert numbers.read(frame) == []
    [code] = numbers.read(frame, return_errors=True)  # its second frame: known, not read again
    assert (code.status, code.track) == ("rejected", 0) and code.error.startswith("holds other content than a number")


def test_every_effort_reads_a_clean_code_and_fast_searches_less():
    page = np.hstack([_photo("135790", "H"), _photo("246802", "H")])
    for effort in ("fast", "normal", "thorough"):
        assert sorted(c.text for c in livereader.read(page, effort=effort)) == ["135790", "246802"]
    assert livereader.api.EFFORTS["fast"]["scout"] == 2 and livereader.api.EFFORTS["thorough"]["budget"] > 1


def test_thorough_effort_restores_larger_smeared_frames_and_keeps_the_callers_other_motion_options(monkeypatch):
    from livereader.pipeline import ReaderOptions
    from livereader.vision.motion import MotionOptions

    seen = []
    monkeypatch.setattr(livereader.api, "read_frame", lambda image, models, options: seen.append(options) or [])
    mine = ReaderOptions(motion=MotionOptions(min_dip=0.3))
    livereader.read(_photo("135790", "H"), effort="thorough", options=mine)
    livereader.read(_photo("135790", "H"), options=mine)
    assert [o.motion.max_pixels for o in seen] == [1_300_000, MotionOptions().max_pixels]
    assert all(o.motion.min_dip == 0.3 for o in seen)


def test_a_paced_reader_follows_the_code_and_refuses_an_interval_that_is_no_time():
    import cv2

    reader = livereader.Reader(content="any", interval=1 / 30)
    frame = cv2.cvtColor(_photo("HELLO", "M"), cv2.COLOR_GRAY2BGR)
    read = [[c.text for c in reader.read(frame)] for _ in range(3)]
    assert read == [["HELLO"]] * 3 and reader._stream.stream.interval == 1 / 30  # read in every frame, paced
    for interval in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            livereader.Reader(interval=interval)


@pytest.mark.slow
def test_version_everywhere():
    assert livereader.__version__ == version("livereader")
    done = subprocess.run([sys.executable, "-m", "livereader", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"livereader {livereader.__version__}"
    code = "import sys, livereader; livereader.__version__; livereader.read; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_the_reader_and_the_demo_import_no_training_or_benchmark_code():
    code = ("import sys, numpy as np, livereader\n"
            "from livereader.live import capture\n"
            "frames = [f.image for f in capture.demo(3)]\n"
            "reader = livereader.Reader()\n"
            "print(sum(len(reader.read(f)) for f in frames) > 0, len(livereader.read(frames[0])) > 0)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('livereader.train', 'livereader.bench'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["True True", "[]"], done.stderr[-2000:]
