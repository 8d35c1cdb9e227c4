"""The vision pipeline on synthetic scenes: finder location, orientation, corners, reads and rejections."""

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from livereader.geometry import held, holding
from livereader.pipeline import READ, REJECTED, UNSUPPORTED, ReaderOptions, read_frame
from livereader.symbol import encode
from livereader.synth.scene import SceneConfig, render_scene, scenes
from livereader.vision.grid import corner_homography, refine, sample_grid
from livereader.vision.search import search


def _corner_error(result_corners, truth) -> float:
    """Largest corner distance in modules, corners compared in order (tl, tr, br, bl)."""
    return float(np.hypot(*(np.array(result_corners) - np.array(truth.corners)).T).max() / truth.module_px)


@pytest.mark.parametrize("category", ["clean", "perspective", "inverted", "mirrored", "several", "small"])
def test_reads_every_code_with_its_corners(model, category):

    read = total = 0
    for scene in scenes([category], 8, seed=3):
        results = read_frame(scene.image, model, ReaderOptions(scout=1))  # as still images are read
        for truth in scene.codes:
            total += 1
            mine = [r for r in results if r.text == truth.text]
            if mine:
                read += 1
                assert _corner_error(mine[0].corners, truth) < 1.0  # symbol corners in tl, tr, br, bl order
        assert {r.text for r in results if r.text} <= {t.text for t in scene.codes}  # never a wrong number
    assert read >= 0.85 * total


def test_the_half_size_search_finds_light_on_dark_codes():
    # At half size their modules are about 2 px wide, where the contours' half-pixel offset made a finder's outer
    # ring look more like a finder than the finder itself (24 of these 30 were found before it was corrected).
    found = sum(any(code.supported for code in search(cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY), factor=2)[0])
                for s in scenes(["inverted"], 30, seed=0))
    assert found >= 28


def test_sampled_grid_matches_the_code(model):
    scene = render_scene("clean", np.random.default_rng(5))
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    (code,), _ = search(grey)
    assert code.supported and code.modules == 21
    assert (sample_grid(grey, code).hard == encode(scene.codes[0].text, "H")).all()


def test_codes_sampled_together_give_the_grids_of_codes_sampled_alone(monkeypatch):
    """All codes of a search share one remap and one resize (in chunks of grid.BATCH): stacking them must not mix
    one code's samples into another's, mirrored codes among them, with a last chunk shorter than the others."""
    from livereader.vision import grid

    frame = np.full((480, 640), 230, np.uint8)
    symbols = [encode("123456", "H"), encode("654321", "H").T, encode("111111", "H"), encode("909090", "H").T]
    for (x, y), symbol in zip(((20, 20), (330, 20), (20, 250), (330, 250)), symbols):  # mirrored: transposed
        frame[y:y + 29 * 7, x:x + 29 * 7] = 230 - 200 * np.kron(np.pad(symbol, 4), np.ones((7, 7), np.uint8))
    codes = [code for code in search(frame)[0] if code.supported]
    assert len(codes) == 4
    alone = [grid.sample_grids(frame, [code])[0] for code in codes]
    assert sorted(sampled.mirrored for sampled in alone) == [False, False, True, True]
    monkeypatch.setattr(grid, "BATCH", 3)
    for together in (grid.sample_grids(frame, codes), grid.sample_grids(frame, codes[::-1])[::-1]):
        assert len(together) == len(codes)
        for single, joint in zip(alone, together):
            assert np.array_equal(single.soft, joint.soft) and np.array_equal(single.hard, joint.hard)
            assert single.mirrored == joint.mirrored
    # each in its own orientation: the mirrored ones transposed back
    assert sorted(sampled.hard.tobytes() for sampled in alone) == \
        sorted(encode(text, "H").astype(np.uint8).tobytes() for text in ("123456", "654321", "111111", "909090"))
    assert grid.sample_grids(frame, []) == []


def test_refining_moves_a_misplaced_bottom_right_corner_back_to_the_symbol():
    wrong, off = [], []
    for seed in range(4):
        scene = render_scene("clean", np.random.default_rng(seed))
        grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
        (code,), _ = search(grey)
        module = float(np.linalg.norm(code.corners[1] - code.corners[0])) / 21
        truth, grid = np.array(scene.codes[0].corners), encode(scene.codes[0].text, "H")
        for dx, dy in ((0.8, -0.6), (-0.7, -0.9), (0.0, 0.9)):  # modules off, along the code's own axes
            corners = code.corners.copy()
            corners[2] = cv2.perspectiveTransform(np.array([[[21 + dx, 21 + dy]]]), code.homography)[0, 0]
            misplaced = replace(code, corners=corners, homography=corner_homography(corners))
            assert (sample_grid(grey, misplaced).hard != grid).sum() > 5
            refined = refine(grey, misplaced)
            off.append(float(np.linalg.norm(refined.corners[2] - truth[2])) / module)
            wrong.append(int((sample_grid(grey, refined).hard != grid).sum()))
    # the samples' contrast peaks anywhere inside the modules: the corner comes back to within about half a module,
    # its grid within what Reed-Solomon corrects (a corner 1.4-2.1 modules off and 56-64 modules wrong would fail)
    assert max(off) < 0.75 and np.median(off) < 0.45
    assert max(wrong) <= 4 and sum(wrong) <= 12


def test_mirrored_code_is_transposed_back():
    scene = render_scene("mirrored", np.random.default_rng(2))
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    (code,), _ = search(grey)
    sampled = sample_grid(grey, code)
    assert sampled.mirrored
    assert (sampled.hard == encode(scene.codes[0].text, "H")).all()


def test_foreign_and_other_versions_are_never_read(model):
    """Text codes and numbers of other lengths at version 1 are rejected; larger versions are unsupported."""
    config = SceneConfig(codes=(0, 0), foreign=(3, 3), module_px=(4.0, 5.0))
    statuses = []
    for seed in range(6):
        scene = render_scene("distractors", np.random.default_rng(seed), config=config)
        results = read_frame(scene.image, model)
        assert not any(r.status == READ for r in results)
        for r in results:
            owner = min(scene.codes, key=lambda t: np.abs(np.mean(t.corners, 0) - np.mean(r.corners, 0)).sum())
            is_version_1 = encode_size(owner.text) == 21
            assert r.status == (REJECTED if is_version_1 else UNSUPPORTED)
            statuses.append(r.status)
    assert REJECTED in statuses and UNSUPPORTED in statuses  # both kinds were located


def encode_size(text: str) -> int:
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(text)
    code.make(fit=True)
    return len(code.modules)


def test_empty_and_grey_frames(model):
    assert read_frame(np.zeros((240, 320, 3), np.uint8), model) == []
    scene = render_scene("clean", np.random.default_rng(1))
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    assert [r.text for r in read_frame(grey, model)] == [scene.codes[0].text]


@pytest.mark.parametrize("shape", [(40, 1), (40, 2), (1, 40), (1, 1)])
def test_a_crop_of_one_or_two_pixels_is_searched_without_error(shape):
    # a region at a frame's right or bottom edge, shrunk for a search, can be that narrow
    from livereader.vision.finder import FinderOptions, find_finders, noise_level

    crop = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    assert noise_level(crop) == 0.0 if shape[1] <= 2 else noise_level(crop) > 0  # noise along the one row
    for options in (FinderOptions(), FinderOptions(offset=3.0, prune_noise=0.0)):
        assert find_finders(crop, options) == []


@pytest.mark.parametrize("category", ["clean", "mirrored", "inverted", "perspective"])
def test_scene_truth_corners_frame_the_symbol(category):
    """Warping a scene's truth corners (tl, tr, br, bl) to a square gives the code's own grid, mirrored too."""
    scene = render_scene(category, np.random.default_rng(4))
    truth = scene.codes[0]
    square = np.float32([[0, 0], [21, 0], [21, 21], [0, 21]]) * 8
    warp = cv2.getPerspectiveTransform(np.float32(truth.corners), square)
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    symbol = cv2.warpPerspective(grey, warp, (168, 168)).astype(np.float32)
    centres = symbol[4::8, 4::8]
    dark = centres < (centres.max() + centres.min()) / 2
    grid = encode(truth.text, "H")
    assert (dark == grid).mean() > 0.97 if category != "inverted" else (dark != grid).mean() > 0.97


def _paste(frame: np.ndarray, text: str, module_px: int, x: int, y: int) -> None:
    """Draw the level-H code of ``text`` with its quiet zone at (x, y), ``module_px`` pixels per module."""
    modules = np.pad(encode(text, "H"), 4)
    frame[y : y + 29 * module_px, x : x + 29 * module_px] = 255 - 220 * np.kron(modules, np.ones((module_px,) * 2))


def _two_sizes() -> np.ndarray:
    """A 1280x720 frame (large enough for the half-size first search) with a large and a small code."""
    frame = np.full((720, 1280), 235, np.uint8)
    _paste(frame, "123456", 8, 20, 20)
    _paste(frame, "654321", 2, 401, 301)  # no finder pattern of it shows at half resolution
    return frame


def _with_lone_finder(frame: np.ndarray, x: int = 100, y: int = 300) -> np.ndarray:
    """The frame with one finder pattern (4 px modules, 60 px with its quiet zone) drawn at (x, y), outside every
    code."""
    lone = frame.copy()
    lone[y : y + 60, x : x + 60] = 255 - 220 * np.kron(np.pad(encode("0")[:7, :7], 4), np.ones((4, 4)))[:60, :60]
    return lone


def test_the_half_resolution_search_stands_only_when_it_explains_the_frame(model):

    frame = _two_sizes()
    codes, left_over = search(frame, factor=2)
    assert len(codes) == 1 and not left_over
    codes, left_over = search(_with_lone_finder(frame), factor=2)
    assert len(codes) == 1 and len(left_over) == 1  # a finder pattern outside every code: searched around it
    # Where no finder of a small code shows at half resolution, only a full search finds it: the capture loop
    # runs one every few frames (tests/test_cli.py), and reads still images so.
    assert [r.text for r in read_frame(frame, model)] == ["123456"]
    assert sorted(r.text for r in read_frame(frame, model, ReaderOptions(scout=1))) == ["123456", "654321"]


def test_a_code_at_the_half_size_limit_sends_the_search_to_the_whole_frame(model):
    """A sheet of small codes: one whose modules show at half size, but barely, means more of its kind that do
    not; the full-resolution search then takes the whole frame."""

    frame = np.full((1440, 2560), 235, np.uint8)  # drawn at twice the size, then shrunk: 1280x720
    _paste(frame, "123456", 5, 40, 40)  # 2.5 px modules, 1.25 at half size: found, at the limit
    texts = ["%06d" % (111111 * i) for i in range(1, 7)]
    for i, text in enumerate(texts):  # 1.5 px modules, 0.75 at half size: only the full resolution shows them
        _paste(frame, text, 3, 600 + 300 * (i % 3), 600 + 300 * (i // 3))
    frame = cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert sorted(r.text for r in read_frame(frame, model)) == sorted(["123456", *texts])
    assert [r.text for r in read_frame(frame, model, ReaderOptions(scout_limit=0.0))] == ["123456"]


def test_the_full_resolution_search_looks_only_around_what_the_first_search_left(model, monkeypatch):
    import livereader.pipeline as pipeline
    import livereader.vision.search as search_module

    batches, searched, read_grids, find_finders = [], [], pipeline.read_grids, search_module.find_finders

    def counted(grids, *args, **kwargs):
        batches.append(len(grids))
        return read_grids(grids, *args, **kwargs)

    def logged(grey, *args, **kwargs):
        searched.append(grey.shape)
        return find_finders(grey, *args, **kwargs)

    monkeypatch.setattr(pipeline, "read_grids", counted)
    monkeypatch.setattr(search_module, "find_finders", logged)
    far = read_frame(_with_lone_finder(_two_sizes()), model)  # a lone finder far from the small code
    assert [r.text for r in far if r.status == "read"] == ["123456"]
    assert batches == [1] and searched[0] == (360, 640) and searched[1][0] * searched[1][1] < 0.1 * 720 * 1280
    batches.clear()
    near = read_frame(_with_lone_finder(_two_sizes(), 330, 380), model)  # one beside the small code
    assert sorted(r.text for r in near if r.status == "read") == ["123456", "654321"]  # each reported once
    # The first search read the large code; the search around the lone finder read only the small one.
    assert batches == [1, 1]


def test_the_partners_of_a_large_lone_finder_are_searched_for_in_the_frame_shrunk(model, monkeypatch):
    """A finder pattern of 20 px modules outside every code: the other finders of its code are at most
    max_size_ratio (2.2) times smaller, modules of 9 px and more, which keep 2.25 px in the frame shrunk by 4; the
    sensitive search looks for them there, not at full resolution."""
    import livereader.pipeline as pipeline
    import livereader.vision.search as search_module

    frame = np.full((720, 1280), 235, np.uint8)
    _paste(frame, "123456", 8, 20, 20)
    frame[300:480, 800:980] = 255 - 220 * np.kron(np.pad(encode("0")[:7, :7], 1), np.ones((20, 20)))
    searched, find_finders = [], search_module.find_finders

    def logged(grey, options, *args, **kwargs):
        searched.append((options.offset, grey.size))
        return find_finders(grey, options, *args, **kwargs)

    monkeypatch.setattr(search_module, "find_finders", logged)
    still = ReaderOptions(scout=1, budget=float("inf"))  # the whole frame at full resolution first: the lone
    # finder is left over (and no budget ends the frame before its sensitive search)
    assert [r.text for r in read_frame(frame, model, still)] == ["123456"]
    (lone,) = search(frame)[1]
    assert pipeline._partner_factor(lone, still) == 4
    sensitive = [pixels for offset, pixels in searched if offset == still.retry_offset]
    assert sensitive and max(sensitive) <= frame.size // 16
    smaller = replace(lone, size=lone.size / 2)  # a code's finders at most 2.2 times smaller: modules of 4.5 px
    assert pipeline._partner_factor(smaller, still) == 2


def test_a_large_frame_that_explains_nothing_is_searched_sensitively_at_full_size_only_around_evidence(model,
                                                                                                     monkeypatch):
    """Read whole at full resolution and explaining nothing, a frame with a shorter side of ``scout_min_side`` px
    or more is searched with the sensitive threshold around the finder patterns that search left, and whole only
    shrunk; a smaller frame (a VGA camera's: noise hides finders that leave no evidence) whole at full size."""
    import livereader.vision.search as search_module

    searched, find_finders = [], search_module.find_finders

    def logged(grey, options, *args, **kwargs):
        searched.append((options.offset, grey.size))
        return find_finders(grey, options, *args, **kwargs)

    monkeypatch.setattr(search_module, "find_finders", logged)
    still = ReaderOptions(scout=1, budget=float("inf"))
    for height, width in ((960, 1280), (480, 640)):
        frame = _with_lone_finder(np.full((height, width), 235, np.uint8), 300, 200)
        searched.clear()
        assert read_frame(frame, model, still) == []
        sensitive = [pixels for offset, pixels in searched if offset == still.retry_offset]
        if width == 1280:  # around the lone finder (4 finder sizes around it) at full size, and whole at half size
            assert max(sensitive) == frame.size // 4 and min(sensitive) < frame.size // 16
        else:
            assert frame.size in sensitive


def test_the_sensitive_threshold_drops_specks_in_any_frame_and_keeps_every_finder():
    import livereader.vision.finder as finder

    frame = np.full((480, 640), 235, np.uint8)
    _paste(frame, "123456", 4, 40, 40)
    specky = frame.copy()
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(0, 480, 6000), rng.integers(0, 640, 6000)
    outside = (ys > 40 + 29 * 4) | (xs > 40 + 29 * 4)
    specky[ys[outside], xs[outside]] = 150  # single dark pixels on the paper: no noise to speak of
    assert finder.noise_level(specky) == 0.0
    sensitive = replace(finder.FinderOptions(), offset=3.0, prune_noise=0.0)  # as the sensitive search's
    found = finder.find_finders(specky, sensitive)  # the code's three finders, and the code itself as a ring
    assert len(found) >= 3 and [f.centre for f in found] == [f.centre for f in finder.find_finders(frame, sensitive)]
    kept = replace(sensitive, prune_noise=0.5)  # the default: this frame is not noisy enough to prune
    assert [f.centre for f in found] == [f.centre for f in finder.find_finders(specky, kept)]
    assert len(finder.contour_tree(specky, sensitive)[0]) < len(finder.contour_tree(specky, kept)[0]) / 10


@pytest.mark.parametrize("density", [0.03, 0.2, 0.5])
def test_pruning_drops_specks_of_one_or_two_pixels_and_keeps_every_other_shape_and_hole(density):
    import livereader.vision.finder as finder

    rng = np.random.default_rng(int(density * 100))
    for shape in [(1, 1), (1, 7), (2, 2), (37, 51), (120, 160)]:
        binary = np.where(rng.random(shape) < density, 255, 0).astype(np.uint8)
        kept = finder.pruned(binary)
        assert kept.dtype == np.uint8 and np.array_equal(kept, finder.reference_pruned(binary))
        # dark shapes are 8-connected and light ones 4-connected, with light all around the image, as
        # cv2.findContours traces them: the shapes of 3 px and more stay, with the same light regions between them
        count, labels = cv2.connectedComponents(binary, connectivity=8)
        sizes = np.bincount(labels[binary > 0], minlength=count)
        large = np.where(np.isin(labels, np.flatnonzero(sizes >= 3)) & (binary > 0), 255, 0).astype(np.uint8)
        assert cv2.connectedComponents(kept, connectivity=8)[0] == cv2.connectedComponents(large, connectivity=8)[0]
        assert (cv2.connectedComponents(np.pad(255 - kept, 1, constant_values=255), connectivity=4)[0]
                == cv2.connectedComponents(np.pad(255 - large, 1, constant_values=255), connectivity=4)[0])
        assert np.all(kept <= binary)  # pixels are only removed


def test_a_noisy_frame_is_binarized_without_its_specks_and_a_clean_one_as_thresholded():
    import livereader.vision.finder as finder

    options = finder.FinderOptions()
    rng = np.random.default_rng(5)
    frame = np.full((240, 320), 200, np.uint8)
    _paste(frame, "123456", 4, 40, 40)
    noisy = np.clip(frame + rng.normal(0, 2.5, frame.shape), 0, 255).astype(np.uint8)
    raw = cv2.adaptiveThreshold(noisy, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, options.block,
                                max(options.offset, options.noise_offset * finder.noise_level(noisy)))
    assert np.array_equal(finder.binarize(noisy, options), finder.pruned(raw))
    assert len(finder.contour_tree(noisy, options)[0]) < len(cv2.findContours(raw, cv2.RETR_TREE,
                                                                              cv2.CHAIN_APPROX_SIMPLE)[0]) / 2
    centres = [f.centre for f in finder.find_finders(frame, options)]
    assert len(centres) >= 3 and all(min(math.dist(c, f.centre) for f in finder.find_finders(noisy, options)) < 1
                                     for c in centres)  # every finder pattern stays, in place
    frame[200, 300] = 150  # a speck of one pixel, in a frame without noise: thresholded, not pruned
    clean = cv2.adaptiveThreshold(frame, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, options.block,
                                  options.offset)
    assert clean[200, 300] == 255 and np.array_equal(finder.binarize(frame, options), clean)


def test_points_are_held_by_convex_and_concave_outlines_as_opencv_holds_them():
    rng = np.random.default_rng(4)
    for trial in range(60):
        count = int(rng.integers(2, 7))  # with 300 points, more than one by one takes
        centres = rng.uniform(0, 200, (count, 1, 2))
        outlines = centres + rng.uniform(-40, 40, (count, 4, 2))  # convex or not, any orientation
        if trial % 3 != 2:  # codes' corners: convex, tl tr br bl, and mirrored codes' (the other way round)
            angle = rng.uniform(0, 2 * np.pi, (count, 1))
            square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
            rotation = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(-1, 2, 2)
            outlines = centres + rng.uniform(10, 40, (count, 1, 1)) * square @ rotation.transpose(0, 2, 1)
            if trial % 2:
                outlines = outlines[:, ::-1]
        outlines = list(np.round(outlines, 1))
        points = [tuple(p) for p in rng.uniform(-20, 220, (300, 2)).round(1).tolist()]
        points += [tuple(outlines[0][0])]  # a corner
        # OpenCV decides points within rounding of an edge in float32: those are left out
        points = [p for p in points if all(abs(cv2.pointPolygonTest(np.float32(o), p, True)) > 1e-3 or tuple(o[0]) == p
                                           for o in outlines)]
        expected = [holding(point, outlines) is not None for point in points]
        assert held(points, outlines) == expected
        assert any(expected) and not all(expected)
    square = np.array([[10, 10], [50, 10], [50, 50], [10, 50]], np.float64)
    on_edge, beside = [(30.0, 10.0), (10.0, 30.0)], [(30.0, 9.9), (50.1, 30.0)]
    for outlines in ([square] * 20, [square[::-1]] * 20):  # either way round
        assert held(on_edge + beside + [(20.0, 20.0)] * 4, outlines) == [True, True, False, False] + [True] * 4
    points = [(100.0, 200.0), (10.0, 10.0)] * 40
    dot = np.array([[10, 10]] * 4, np.float64)  # an outline of no area holds only its own point
    assert held(points, [dot] * 20) == [holding(point, [dot]) is not None for point in points]
    assert held([], [square]) == [] and held([(1.0, 2.0)], []) == [False]



def test_a_frame_full_of_finder_patterns_costs_a_bounded_number_of_fits(monkeypatch):
    import livereader.kernels as kernels
    import livereader.vision.finder as finder
    import livereader.vision.grouping as grouping

    finder_pattern = 255 - 220 * np.kron(np.pad(encode("0")[:7, :7], 2), np.ones((4, 4)))  # 44x44 px
    frame = np.full((44 * 16, 44 * 20), 235, np.uint8)
    for row in range(16):
        for column in range(20):  # 320 aligned finder patterns, every one a plausible partner of many
            frame[44 * row : 44 * row + 44, 44 * column : 44 * column + 44] = finder_pattern
    fits, fit, full, judge = [], grouping.fit_trio, grouping.fit_all_outlines, kernels.judge_orders

    def judged(*args):  # the orders that the compiled judge fitted
        result = judge(*args)
        fits.extend([1] * result[-1])
        return result

    monkeypatch.setattr(grouping, "fit_trio", lambda *args, **kwargs: fits.append(1) or fit(*args, **kwargs))
    monkeypatch.setattr(grouping, "fit_all_outlines", lambda *args: fits.append(1) or full(*args))
    monkeypatch.setattr(kernels, "judge_orders", judged)
    found = finder.find_finders(frame)
    assert len(found) == 320
    grouping.group_codes(frame, found)
    assert finder.FinderOptions().max_fits < len(fits) <= finder.FinderOptions().max_fits + 2 * len(found)


def test_rejected_codes_are_retried_within_the_budget(model, monkeypatch):
    import livereader.pipeline as pipeline

    frame = np.full((480, 640), 235, np.uint8)
    for index in range(6):
        grid = encode("%06d" % (111111 * (index + 1)), "H")
        grid[9:, 9:] = np.random.default_rng(index).integers(0, 2, (12, 12))  # data beyond correction
        modules = np.pad(grid, 4)
        y, x = 20 + 150 * (index // 3), 20 + 210 * (index % 3)
        frame[y : y + 29 * 4, x : x + 29 * 4] = 255 - 220 * np.kron(modules, np.ones((4, 4)))
    refined, refine, deblurred, deblur = [], pipeline.refine, [], pipeline.deblur
    monkeypatch.setattr(pipeline, "refine", lambda grey, code: refined.append(1) or refine(grey, code))
    monkeypatch.setattr(pipeline, "deblur", lambda grey, code, options: deblurred.append(1) or deblur(grey, code))
    results = read_frame(frame, model, ReaderOptions(max_retries=3, max_deblurs=1))
    assert sum(r.status == REJECTED for r in results) == 6 and len(refined) == 3 and len(deblurred) == 1


def test_a_code_whose_corner_looks_narrow_is_located(model):
    # A tilt of 55 degrees can narrow a code's right angle to 50 degrees as seen; this shear narrows it to 49
    # (|cos| 0.65), which is no right angle to a stricter check.
    flat = np.full((480, 640), 235, np.uint8)
    _paste(flat, "314159", 6, 40, 60)
    shear = np.float32([[1, 0.85, 0], [0, 1, 0]])
    frame = cv2.warpAffine(flat, shear, (640, 480), flags=cv2.INTER_AREA, borderValue=235)
    (code,), _ = search(frame)
    assert code.modules == 21
    assert [r.text for r in read_frame(frame, model)] == ["314159"]


@pytest.mark.parametrize("lost", ["tr", "bl"])
def test_a_code_with_one_finder_pattern_lost_reads_from_the_other_two(model, lost):
    frame = np.full((480, 640), 235, np.uint8)
    _paste(frame, "271828", 6, 100, 60)
    row, column = (4, 18) if lost == "tr" else (18, 4)  # the finder's top-left module, quiet zone included
    frame[60 + 6 * row : 60 + 6 * (row + 7), 100 + 6 * column : 100 + 6 * (column + 7)] = 235  # glare
    assert [r.text for r in read_frame(frame, model)] == ["271828"]
    assert not any(r.text for r in read_frame(frame, model, ReaderOptions(paired_reads=0)))


def test_two_finder_patterns_alone_are_no_code(model):
    frame = _with_lone_finder(_with_lone_finder(np.full((480, 640), 235, np.uint8)), 156, 300)  # a side apart
    assert read_frame(frame, model) == []


def test_a_finder_pattern_turned_off_its_side_is_grouped_where_nothing_else_explains_the_frame(model):
    # Motion blur shears a finder pattern's outline: here the tr finder, turned by 20 degrees (0.35 rad) about its
    # centre, lies off the line of its side by more than the 0.3 rad both finders of a side are held to at first.
    frame = np.full((480, 640), 235, np.uint8)
    _paste(frame, "161803", 6, 100, 60)
    x, y = 100 + 6 * 17, 60 + 6 * 3  # the tr finder and its separator: 9x9 modules
    patch = frame[y : y + 54, x : x + 54].copy()
    turn = cv2.getRotationMatrix2D((26.5, 26.5), 20, 1)
    frame[y : y + 54, x : x + 54] = cv2.warpAffine(patch, turn, (54, 54), borderValue=235)
    alone = ReaderOptions(paired_reads=0)  # not read from two finders instead
    assert [r.text for r in read_frame(frame, model, alone)] == ["161803"]
    assert read_frame(frame, model, replace(alone, regroup_misalignment=0.3)) == []


def test_a_text_code_that_decodes_as_sampled_costs_no_cnn_call(model, monkeypatch):
    import livereader.pipeline as pipeline

    frame = np.full((480, 640), 235, np.uint8)
    frame[40 : 40 + 29 * 6, 40 : 40 + 29 * 6] = 255 - 220 * np.kron(np.pad(encode("HELLO", "L"), 4), np.ones((6, 6)))
    _paste(frame, "123456", 6, 340, 200)
    batches = []
    read_grids = pipeline.read_grids
    monkeypatch.setattr(pipeline, "read_grids",
                        lambda grids, *args: batches.append(len(grids)) or read_grids(grids, *args))
    results = sorted(read_frame(frame, model), key=lambda r: r.corners[0][0])
    assert [(r.status, r.text, r.foreign) for r in results] == [(REJECTED, None, True), (READ, "123456", False)]
    assert batches == [1]  # the number alone went to the CNN
    batches.clear()
    texts = read_frame(frame, model, ReaderOptions(verify=replace(ReaderOptions().verify, content="any")))
    assert "123456" in [r.text for r in texts] and batches[0] == 2  # any content: every code goes to the CNN


@pytest.mark.parametrize("size", [(480, 640), (720, 1280)])  # searched whole at full size first; at half size
def test_a_frame_searched_only_in_focus_regions_does_not_read_a_known_text_code_again(model, monkeypatch, size):
    import livereader.pipeline as pipeline
    from livereader.results import Hints

    frame = np.full(size, 235, np.uint8)
    frame[60 : 60 + 29 * 6, 100 : 100 + 29 * 6] = 255 - 220 * np.kron(np.pad(encode("HELLO", "H"), 4), np.ones((6, 6)))
    (text,) = read_frame(frame, model)
    assert text.status == REJECTED and text.foreign
    calls = []  # a text code is read as sampled (Reed-Solomon decoding), and by the CNN where that fails
    read_grids, foreign_grids = pipeline.read_grids, pipeline.foreign_grids
    monkeypatch.setattr(pipeline, "read_grids", lambda *args: calls.append(1) or read_grids(*args))
    monkeypatch.setattr(pipeline, "foreign_grids", lambda *args: calls.append(1) or foreign_grids(*args))
    focus = Hints(focus=((80, 40, 300, 260),), foreign=(text.corners,), whole=False)
    (again,) = read_frame(frame, model, hints=focus)
    assert again.status == REJECTED and again.foreign and calls == []  # located, reported, not read
    (paced,) = read_frame(frame, model, hints=replace(focus, whole=True, reread=False))  # a paced stream's frame
    assert paced.status == REJECTED and paced.foreign and calls == []
    (whole,) = read_frame(frame, model, hints=replace(focus, whole=True))
    assert whole.foreign and calls  # a whole-frame search reads it again
