"""Camera calibration: intrinsics recovered from rendered chessboard views, profiles, undistorted reading, bad input."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from livereader.cli import main as livereader_main
from livereader.live.calibrate import CalibrationError, Undistorter, calibrate, load_profile, main, save_profile
from livereader.pipeline import read_frame
from livereader.synth.scene import DEMO_CAMERA, DemoStream, chessboard_views, lens_scenes

EXAMPLE = Path(__file__).parent.parent / "calibration" / "example-wide-640x480.yaml"


def _check_intrinsics(profile) -> None:
    true = DEMO_CAMERA.camera_matrix
    assert abs(profile.camera_matrix[0, 0] / true[0, 0] - 1) < 0.01
    assert abs(profile.camera_matrix[1, 1] / true[1, 1] - 1) < 0.01
    assert abs(profile.distortion[0] - DEMO_CAMERA.distortion[0]) < 0.02


@pytest.mark.slow
def test_calibration_recovers_focal_lengths_and_k1():
    profile = calibrate(chessboard_views((9, 6), DEMO_CAMERA, 20, seed=1), (9, 6))
    assert profile.views >= 15 and profile.image_size == (640, 480)
    assert profile.rms < 0.5
    _check_intrinsics(profile)


def test_profile_round_trip_and_shipped_example(tmp_path):
    example = load_profile(EXAMPLE)
    _check_intrinsics(example)
    save_profile(example, tmp_path / "copy.yaml")
    again = load_profile(tmp_path / "copy.yaml")
    assert np.allclose(again.camera_matrix, example.camera_matrix) and np.allclose(again.distortion, example.distortion)
    assert (again.image_size, again.views, again.board) == (example.image_size, example.views, example.board)


@pytest.mark.slow
def test_undistorting_reads_more_codes_through_a_wide_lens(model):
    undistort = Undistorter(load_profile(EXAMPLE))
    codes, plain, undistorted = 0, 0, 0
    for scene in lens_scenes(60, seed=0):
        truth = {c.text for c in scene.codes}
        for image, counter in ((scene.image, "plain"), (undistort(scene.image), "undistorted")):
            texts = {r.text for r in read_frame(image, model) if r.text}
            assert texts <= truth  # never a wrong number
            if counter == "plain":
                plain += len(texts)
            else:
                undistorted += len(texts)
        codes += len(truth)
    assert undistorted >= 0.97 * codes
    assert undistorted >= plain + 2


@pytest.mark.slow
def test_calibrate_command_demo_and_image_folder(tmp_path, capsys):
    out = tmp_path / "demo.yaml"
    assert main(["--demo", "--board", "9x6", "--views", "16", "--out", str(out)]) == 0
    _check_intrinsics(load_profile(out))
    folder = tmp_path / "views"
    folder.mkdir()
    for i, view in enumerate(chessboard_views((7, 5), DEMO_CAMERA, 8, seed=2)):
        cv2.imwrite(str(folder / f"view{i}.png"), view)
    assert main(["--images", str(folder), "--board", "7x5", "--out", str(tmp_path / "folder.yaml")]) == 0
    assert load_profile(tmp_path / "folder.yaml").views >= 5


def _one_line_error(capsys, *prefixes) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(prefixes) and "Traceback" not in err[0]
    return err[0]


@pytest.mark.slow
def test_no_chessboard_is_one_line_error(tmp_path, capsys):
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), DemoStream(seed=i).next().image)
    assert main(["--images", str(tmp_path), "--board", "9x6", "--out", str(tmp_path / "x.yaml")]) == 1
    assert "found in 0 views" in _one_line_error(capsys, "livereader-calibrate: error:")
    assert not (tmp_path / "x.yaml").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--demo", "--board", "nine", "--out", str(tmp_path / "x.yaml")])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("content", ["calibration: [1, 2\n  nope", "hello", "%YAML:1.0\n---\nfoo: 1\n"])
def test_unreadable_profile_is_one_line_error(tmp_path, capsys, content):
    profile = tmp_path / "bad.yaml"
    profile.write_text(content)
    with pytest.raises(CalibrationError):
        load_profile(profile)
    assert livereader_main(["--demo", "--nodisplay", "--calibration", str(profile)]) == 1
    assert "not a calibration profile" in _one_line_error(capsys, "livereader: error:")


def test_profile_for_another_image_size_is_one_line_error(tmp_path, capsys):
    image = cv2.resize(DemoStream().next().image, (320, 240))
    cv2.imwrite(str(tmp_path / "small.png"), image)
    assert livereader_main(["--image", str(tmp_path / "small.png"), "--calibration", str(EXAMPLE)]) == 1
    assert "640x480" in _one_line_error(capsys, "livereader: error:")


@pytest.mark.slow
def test_calibrating_from_a_camera_stream(tmp_path, serve_mjpeg):
    views = [cv2.cvtColor(v, cv2.COLOR_GRAY2BGR) if v.ndim == 2 else v
             for v in chessboard_views((9, 6), DEMO_CAMERA, 8, seed=0)]
    url = serve_mjpeg([view for view in views for _ in range(20)], interval=0.02)  # each view for 20 frames
    out = tmp_path / "camera.yaml"
    assert main(["--camera", url, "--board", "9x6", "--views", "6", "--out", str(out)]) == 0
    assert load_profile(out).views >= 5
