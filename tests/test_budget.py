"""The per-frame budget: passes after the essential searches start only within it, and every search is bounded
in the pixels it traces, so pathological frames end in bounded time."""

import time

import cv2
import numpy as np
import pytest

import livereader.kernels as kernels
import livereader.vision.finder as finder
import livereader.vision.grouping as grouping
import livereader.vision.search as search
from livereader.pipeline import PASSES, Hints, ReaderOptions, read_passes
from livereader.symbol import encode

ESSENTIAL = [step.name for step in PASSES if step.essential]


def _noise(shape=(480, 640), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(160, 30, shape).clip(0, 255).astype(np.uint8)


def test_a_frame_that_explains_nothing_runs_every_pass_within_its_budget(model):
    state = read_passes(_noise(), model, ReaderOptions(budget=float("inf")))
    assert [name for name, _ in state.spent] == [step.name for step in PASSES]


def test_past_the_budget_only_the_essential_searches_run(model):
    assert [name for name, _ in read_passes(_noise(), model, ReaderOptions(budget=0.0)).spent] == ESSENTIAL
    past = Hints(deadline=time.perf_counter() - 1)  # a paced stream's frame whose interval is over
    assert [name for name, _ in read_passes(_noise(), model, hints=past).spent] == ESSENTIAL


def _specky_photo(rng: np.random.Generator, size=(3000, 4000)) -> np.ndarray:
    """A 12 MP grey frame of fine paper texture and 200,000 dark specks of 1-5 px a side (at the sensitive threshold
    190,000 contours, 152,000 of them left once specks of one or two pixels are pruned), with a six-digit code of 10 px
    modules blurred by 0.8 module."""
    texture = cv2.GaussianBlur(rng.normal(0, 1, size).astype(np.float32), (0, 0), 2.0)
    frame = (170 + 6 * texture / texture.std()).clip(0, 255).astype(np.uint8)
    ys, xs = rng.integers(0, size[0] - 8, 200_000), rng.integers(0, size[1] - 8, 200_000)
    for y, x, side in zip(ys, xs, rng.integers(1, 6, len(ys))):
        frame[y : y + side, x : x + side] = 40
    grid = np.kron(np.pad(encode("314159", "H"), 4), np.ones((10, 10), np.uint8))
    code = cv2.GaussianBlur((230 - 200 * grid).astype(np.uint8), (0, 0), 8)
    frame[1200 : 1200 + code.shape[0], 1700 : 1700 + code.shape[1]] = code
    return frame


def test_a_12_megapixel_still_image_of_specks_is_searched_in_bounded_pieces(model, monkeypatch):
    """Read as a still image, coarse to fine: nothing is searched whole at full resolution (no evidence asks for
    it), no call of OpenCV's contour tracing sees more than ``TILED_ABOVE`` pixels and no sensitive search more than
    ``ReaderOptions.retry_max_pixels``; the blurred code is still read."""
    searched, calls, contour_tree, find_contours = [], [], finder.contour_tree, cv2.findContours

    def logged(grey, options=finder.FinderOptions()):
        searched.append((grey.shape[0] * grey.shape[1], options.offset))
        return contour_tree(grey, options)

    monkeypatch.setattr(finder, "contour_tree", logged)
    monkeypatch.setattr(cv2, "findContours", lambda image, *args, **kw: calls.append(image.size) or
                        find_contours(image, *args, **kw))
    frame, options = _specky_photo(np.random.default_rng(0)), ReaderOptions(scout=1, budget=float("inf"))
    assert [r.text for r in read_passes(frame, model, options).results if r.text] == ["314159"]
    assert max(pixels for pixels, _ in searched) <= frame.size / 4 and max(calls) <= finder.TILED_ABOVE
    sensitive = [pixels for pixels, offset in searched if offset == options.retry_offset]
    assert sensitive and max(sensitive) <= options.retry_max_pixels


def test_contours_of_a_large_frame_are_traced_in_tiles_that_find_the_same_finders():
    """Tiles bound each tracing call; a finder pattern of up to ``TILE_OVERLAP`` px lies wholly in one of them, so
    tiled tracing finds the finders that one call over the whole frame finds."""
    frame = np.full((2100, 2100), 220, np.uint8)
    finder_pattern = (220 - 190 * np.kron(encode("0")[:7, :7], np.ones((20, 20), np.uint8))).astype(np.uint8)
    for y in range(30, 2000, 190):
        for x in range(45, 2000, 190):  # 140 px finder patterns, many across the tiles' edges
            frame[y : y + 140, x : x + 140] = finder_pattern
    assert frame.size > finder.TILED_ABOVE
    tiled = {(round(f.centre[0]), round(f.centre[1])) for f in finder.find_finders(frame)}
    whole = cv2.findContours(finder.binarize(frame, finder.FinderOptions()), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    with pytest.MonkeyPatch.context() as patch:  # one call over the whole frame
        patch.setattr(finder, "contour_tree", lambda grey, options=None: whole)
        untiled = {(round(f.centre[0]), round(f.centre[1])) for f in finder.find_finders(frame)}
    assert len(tiled) == 11 * 11 and tiled == untiled


def test_a_frame_of_thousands_of_finder_like_shapes_reads_its_code_within_bounded_fits(model, monkeypatch):
    """2,000 finder patterns of 2 px modules strewn over a 1280x960 frame, and one code: every grouping fits at
    most ``max_fits`` and two per finder, and the code is read."""
    rng = np.random.default_rng(1)
    frame = np.full((960, 1280), 225, np.uint8)
    small = (225 - 190 * np.kron(encode("0")[:7, :7], np.ones((2, 2), np.uint8))).astype(np.uint8)
    for y, x in zip(rng.integers(0, 946, 2000), rng.integers(0, 1266, 2000)):
        frame[y : y + 14, x : x + 14] = small
    grid = np.kron(np.pad(encode("271828", "H"), 4), np.ones((8, 8), np.uint8))
    frame[300 : 300 + grid.shape[0], 500 : 500 + grid.shape[1]] = 225 - 190 * grid
    groupings, group_codes = [], grouping.group_codes

    def counted(grey, finders, options=finder.FinderOptions()):
        fits, fit, full, judge = [], grouping.fit_trio, grouping.fit_all_outlines, kernels.judge_orders

        def judged(*args):  # the orders that the compiled judge fitted
            result = judge(*args)
            fits.extend([1] * result[-1])
            return result

        monkeypatch.setattr(grouping, "fit_trio", lambda *args, **kwargs: fits.append(1) or fit(*args, **kwargs))
        monkeypatch.setattr(grouping, "fit_all_outlines", lambda *args: fits.append(1) or full(*args))
        monkeypatch.setattr(kernels, "judge_orders", judged)
        try:
            return group_codes(grey, finders, options)
        finally:
            monkeypatch.setattr(grouping, "fit_trio", fit)
            monkeypatch.setattr(grouping, "fit_all_outlines", full)
            monkeypatch.setattr(kernels, "judge_orders", judge)
            groupings.append((len(fits), len(finders), options.max_fits))

    monkeypatch.setattr(search, "group_codes", counted)
    results = read_passes(frame, model, ReaderOptions(scout=1, budget=float("inf"))).results
    assert "271828" in [r.text for r in results]
    assert max(n for n, _, _ in groupings) > 64  # the frame's finders make many candidate codes
    assert all(fits <= limit + 2 * finders for fits, finders, limit in groupings)
