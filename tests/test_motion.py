"""Motion deblur: a straight motion's blur estimated from the frame, and the frame restored before it is read."""

import math
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from livereader import pipeline
from livereader.pipeline import ReaderOptions, read_frame, read_passes
from livereader.symbol import encode
from livereader.synth.scene import CATEGORIES, render_scene
from livereader.vision.motion import MotionOptions, estimate, kernel, restore
from livereader.vision.search import shrunk


def _code_frame(text: str, module_px: int, angle: float) -> np.ndarray:
    """A grey frame with one code of ``module_px`` px modules, turned by ``angle`` degrees, on a light page."""
    modules = np.pad(encode(text, "H"), 4)
    image = np.where(cv2.resize(modules.astype(np.uint8), None, fx=module_px, fy=module_px,
                                interpolation=cv2.INTER_NEAREST) > 0, 40, 210).astype(np.uint8)
    frame = np.full((480, 640), 210, np.uint8)
    y, x = (480 - len(image)) // 2, (640 - len(image)) // 2
    frame[y:y + len(image), x:x + len(image)] = image
    turn = cv2.getRotationMatrix2D((320, 240), angle, 1.0)
    return cv2.warpAffine(frame, turn, (640, 480), flags=cv2.INTER_LINEAR, borderValue=210)


def _smeared(frame: np.ndarray, vector: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    blurred = cv2.filter2D(frame.astype(np.float32), -1, kernel(vector), borderType=cv2.BORDER_REFLECT)
    return np.clip(blurred + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)


def test_the_kernel_is_a_centred_segment_of_the_motions_length():
    for vector in ((12.0, 0.0), (0.0, 7.5), (-6.0, 8.0), (9.3, 4.1)):
        psf = kernel(vector)
        assert psf.shape[0] == psf.shape[1] and psf.shape[0] % 2 == 1
        assert math.isclose(psf.sum(), 1.0, rel_tol=1e-5)
        ys, xs = np.mgrid[:len(psf), :len(psf)] - len(psf) // 2
        assert abs((psf * xs).sum()) < 0.15 and abs((psf * ys).sum()) < 0.15  # centred
        along = (xs * vector[0] + ys * vector[1]) / math.hypot(*vector)
        across = (-xs * vector[1] + ys * vector[0]) / math.hypot(*vector)
        # a uniform segment of length L has a second moment of L^2 / 12 along it; 1 px wide across
        assert math.isclose(math.sqrt(12 * (psf * along**2).sum()), math.hypot(*vector), rel_tol=0.1)
        assert (psf * across**2).sum() < 0.2
    with pytest.raises(ValueError):
        kernel((0.5, 0.0))  # under a pixel: no segment to restore
    with pytest.raises(ValueError):
        MotionOptions(min_length=0.5)


def test_the_motion_is_estimated_from_the_smeared_frame_and_a_sharp_one_shows_none():
    rng = np.random.default_rng(0)
    sharp = _code_frame("123456", 6, 20.0)
    assert estimate(sharp) is None  # a sharp code's gradients have no preferred direction
    for vector in ((14.0, 0.0), (0.0, 10.0), (8.0, 8.0), (-11.0, 5.0), (6.0, -15.0)):
        motion = estimate(_smeared(sharp, vector, rng))
        assert motion is not None
        sign = 1 if np.dot(motion.vector, vector) > 0 else -1  # a motion and its opposite blur alike
        assert math.dist([sign * v for v in motion.vector], vector) < 1.5, (motion, vector)


def test_restoring_the_estimated_motion_makes_a_smeared_code_read(model):
    rng = np.random.default_rng(1)
    frame = _smeared(_code_frame("654321", 5, -15.0), (11.0, 6.0), rng)  # 2.5 modules
    assert not any(r.text for r in read_frame(frame, model, ReaderOptions(motion=MotionOptions(max_pixels=0))))
    assert [r.text for r in read_frame(frame, model) if r.text] == ["654321"]
    motion = estimate(frame)
    assert motion is not None
    restored = restore(frame, motion)
    assert restored.dtype == np.uint8 and restored.shape == frame.shape
    # over the code, the restored frame is closer to the sharp one than the smeared frame is
    sharp = _code_frame("654321", 5, -15.0).astype(np.float32)
    code = (slice(180, 300), slice(260, 380))
    assert np.abs(restored[code] - sharp[code]).mean() < 0.7 * np.abs(frame[code] - sharp[code]).mean()


def test_smeared_scenes_read_through_the_motion_pass_once_each_where_they_are_and_never_misread(model):
    config = replace(CATEGORIES["motion"], motion=(2.2, 3.0))  # beyond what the other passes read
    rng = np.random.default_rng(5)
    read = with_pass = 0
    for size in ((640, 480),) * 5 + ((1280, 720),) * 2:  # the larger frames estimated shrunk, as still images
        scene = render_scene("motion", rng, size=size, config=config)
        (truth,) = scene.codes
        options = ReaderOptions(scout=1, budget=10.0)  # a busy machine must not end the frame before the pass
        state = read_passes(scene.image, model, options)
        reads = [r for r in state.results + state.known if r.status == "read"]
        assert all(r.text == truth.text for r in reads)
        assert len(reads) <= 1
        if reads:
            read += 1
            error = np.abs(np.array(reads[0].corners) - np.array(truth.corners)).max()
            assert error < truth.module_px, (reads[0].corners, truth.corners)  # within a module of the truth
            assert all(pipeline.holder(r.corners, reads) is None for r in state.results if r not in reads)
        unrestored = replace(options, motion=MotionOptions(max_pixels=0))  # no motion pass
        with_pass += len(reads) - sum(r.text == truth.text for r in read_frame(scene.image, model, unrestored))
    assert read >= 6
    assert with_pass >= 5  # the motion pass made the difference


def test_the_restored_frame_is_read_only_before_the_frames_deadline(model, monkeypatch):
    frame = _smeared(_code_frame("654321", 5, -15.0), (11.0, 6.0), np.random.default_rng(1))
    options = ReaderOptions(budget=0.5)
    assert [r.text for r in read_frame(frame, model, options) if r.text] == ["654321"]

    def slow_restore(*args, **kwargs):
        time.sleep(0.6)  # past the deadline once restored
        return restore(*args, **kwargs)

    monkeypatch.setattr(pipeline, "restore", slow_restore)
    state = read_passes(frame, model, options)
    assert "motion deblur" in dict(state.spent)
    assert not any(r.text for r in state.results + state.known)  # the restored frame was not searched
    assert not any(step.essential for step in pipeline.RESTORED_PASSES)  # nor would a pass past its deadline be


def test_a_large_frame_is_estimated_restored_and_read_within_the_pixels_allowed(model, monkeypatch):
    small = _smeared(_code_frame("246810", 5, 10.0), (12.0, 5.0), np.random.default_rng(2))
    large = cv2.resize(small, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)  # 2560x1920, smeared over 48 px
    shapes = []

    def recorded(image, *args, **kwargs):
        shapes.append(image.shape)
        return restore(image, *args, **kwargs)

    monkeypatch.setattr(pipeline, "restore", recorded)
    options = ReaderOptions(scout=1, budget=10.0)  # a busy machine must not end the frame before the pass
    reads = [r for r in read_frame(large, model, options) if r.text]
    assert shapes == [(480, 640)]  # shrunk by 4 to fit 0.4 MP
    assert [r.text for r in reads] == ["246810"]
    (small_read,) = [r for r in read_frame(small, model, options) if r.text]
    truth = [(x * 4 + 1.5, y * 4 + 1.5) for x, y in small_read.corners]
    error = np.abs(np.array(reads[0].corners) - truth).max(1)
    assert (error[[0, 1, 3]] < 4).all() and error[2] < 6  # the finders' corners within a pixel of the small
    # frame's, scaled; the extrapolated bottom-right one within 1.5 px


def test_points_of_a_shrunk_frame_map_to_the_pixel_centres_they_average():
    frame = np.zeros((64, 96), np.uint8)
    frame[40:44, 24:28] = 255  # one pixel (6, 10) of the frame shrunk by 4: its centre is (25.5, 41.5)
    small = shrunk(frame, 4)[0]
    row, column = np.unravel_index(np.argmax(small), small.shape)
    assert pipeline._rescaled([(column, row)], 4) == ((25.5, 41.5),)
    assert pipeline._rescaled([(25.5, 41.5)], 1 / 4) == ((6.0, 10.0),)


def test_a_featureless_square_shows_no_smear():
    rng = np.random.default_rng(3)
    xs = np.mgrid[:480, :640][1]
    shading = np.clip(60 + 0.25 * xs + rng.normal(0, 3, xs.shape), 0, 255).astype(np.uint8)
    anything = MotionOptions(max_isotropy=1.0)  # past the isotropy check: only the dip decides
    assert estimate(shading, anything) is None
    assert estimate(shading, replace(anything, min_dip=0.0)) is not None
