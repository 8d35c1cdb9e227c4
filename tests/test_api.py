"""The public API: livereader.read, livereader.Reader, Status, __version__, --version, python -m livereader."""

import subprocess
import sys
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
    path = tmp_path / "text.png"
    cv2.imwrite(str(path), text)
    assert [(c.status, c.text) for c in livereader.read(path)] == [(livereader.Status.REJECTED, None)]
    [code] = livereader.read(str(path), content="any")
    assert (code.text, code.content, code.ec_level) == ("HELLO", "alphanumeric", "Q")


def test_read_refuses_what_is_not_an_image(tmp_path):
    (tmp_path / "not.png").write_text("no image")
    for bad in (tmp_path / "not.png", np.zeros((10, 10), np.float32)):
        with pytest.raises(ValueError):
            livereader.read(bad)
    with pytest.raises(ValueError):
        livereader.read(_photo("1", "H"), content="text")


def test_reader_follows_a_code_through_a_stream():
    import cv2

    reader = livereader.Reader(content="any")
    frame = cv2.cvtColor(_photo("HELLO", "M"), cv2.COLOR_GRAY2BGR)
    tracks = [reader.read(frame) for _ in range(3)]
    assert all(len(t) == 1 and t[0].track == tracks[0][0].track and t[0].shown.text == "HELLO" for t in tracks)


def test_a_paced_reader_follows_the_code_and_refuses_an_interval_that_is_no_time():
    import cv2

    reader = livereader.Reader(content="any", interval=1 / 30)
    frame = cv2.cvtColor(_photo("HELLO", "M"), cv2.COLOR_GRAY2BGR)
    read = [[c.result.text for c in reader.read(frame) if c.result is not None] for _ in range(3)]
    assert read == [["HELLO"]] * 3 and reader._stream.stream.interval == 1 / 30  # read in every frame, paced
    for interval in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            livereader.Reader(interval=interval)


def test_version_everywhere():
    assert livereader.__version__ == version("livereader")
    done = subprocess.run([sys.executable, "-m", "livereader", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"livereader {livereader.__version__}"
    code = "import sys, livereader; livereader.__version__; livereader.read; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"


def test_the_reader_and_the_demo_import_no_training_or_benchmark_code():
    code = ("import sys, numpy as np, livereader\n"
            "from livereader.live import capture\n"
            "frames = [f.image for f in capture.demo(3)]\n"
            "reader = livereader.Reader()\n"
            "print(sum(len(reader.read(f)) for f in frames) > 0, len(livereader.read(frames[0])) > 0)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('livereader.train', 'livereader.bench'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["True True", "[]"], done.stderr[-2000:]
