"""The compiled grouping kernels (livereader.vision.kernels) against their plain references, on the finders of
synthetic scenes and of a frame of many finder patterns, and on random inputs."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from livereader.symbol import encode
from livereader.synth.scene import scenes
from livereader.vision import fit, grouping, kernels
from livereader.vision.finder import FinderOptions, find_finders


def _frames() -> list[np.ndarray]:
    """Grey frames with codes, clutter, strong perspective, several codes and codes of other versions."""
    frames = [cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY)
              for s in scenes(["clean", "perspective", "several", "distractors", "small"], 6, seed=11)]
    finder_pattern = 255 - 220 * np.kron(np.pad(encode("0")[:7, :7], 2), np.ones((4, 4)))  # 44x44 px
    grid = np.full((44 * 4, 44 * 6), 235, np.uint8)
    for row in range(4):
        for column in range(6):
            grid[44 * row : 44 * row + 44, 44 * column : 44 * column + 44] = finder_pattern
    rotated = cv2.warpAffine(grid, cv2.getRotationMatrix2D((132, 88), 20, 0.8), (264, 176), borderValue=235)
    return [*frames, grid, rotated]


@pytest.fixture(scope="module")
def frames_and_finders():
    return [(grey, finders) for grey in _frames() if len(finders := find_finders(grey)) >= 3]


@pytest.mark.parametrize("partners", [1, 2])
def test_candidate_triples_match_the_reference(frames_and_finders, partners):
    options = replace(FinderOptions(), side_partners=partners)
    compared = 0
    for _, finders in frames_and_finders:
        triples, scores = grouping.triple_scores(finders, options)
        reference_triples, reference_scores = grouping.reference_triple_scores(finders, options)
        assert triples == reference_triples
        np.testing.assert_allclose(scores, reference_scores, rtol=0, atol=1e-9)
        compared += len(triples)
    assert compared >= 40


@pytest.mark.parametrize("partners", [1, 2])
def test_side_partners_match_the_reference(frames_and_finders, partners):
    options = replace(FinderOptions(), side_partners=partners)
    found = 0
    for _, finders in frames_and_finders:
        _, _, nearest = grouping._side_partners(finders, options)
        reference = grouping.reference_sides(finders, options)
        assert [[[j for j in row if j >= 0] for row in sides] for sides in nearest.tolist()] == reference
        assert grouping.side_partnered(finders, options) == [any(sides) for sides in reference]
        found += sum(len(row) for sides in reference for row in sides)
    assert found >= 100


def test_paired_matches_the_reference(frames_and_finders):
    options = FinderOptions()
    for _, finders in frames_and_finders:
        centres, sizes = np.array([f.centre for f in finders]), np.array([f.size for f in finders])
        _, _, _, span, small, large = grouping.pair_geometry(finders)
        plausible = (large < options.max_size_ratio * small) & (span > 9) & (span < options.max_modules - 7)
        found = kernels.paired(centres, sizes, options.max_size_ratio, options.max_modules)
        assert (found == plausible.any(axis=1)).all()


def test_judged_orders_match_the_reference(frames_and_finders):
    options = FinderOptions()
    judged = fitted = 0
    for grey, finders in frames_and_finders:
        trios = grouping._trios(*grouping.reference_triple_scores(finders, options))
        outlines = grouping._Outlines.of(grey, finders, trios)
        for orders in trios.values():
            for fits in (1, 100):  # a budget that stops after one order, and one that does not
                compiled_budget, reference_budget = grouping._Budget(fits), grouping._Budget(fits)
                code, contrast = grouping._judge(finders, orders, compiled_budget, options, outlines)
                reference, reference_contrast = grouping.reference_judge(grey, finders, orders, reference_budget,
                                                                         options)
                assert compiled_budget.left == reference_budget.left
                assert (code is None) == (reference is None)
                judged += 1
                if code is None or reference is None:
                    continue
                fitted += 1
                assert code.finders == reference.finders and code.modules == reference.modules
                np.testing.assert_allclose(code.corners, reference.corners, rtol=0, atol=1e-6)
                np.testing.assert_allclose(code.homography, reference.homography, rtol=1e-9, atol=1e-9)
                assert code.residual == pytest.approx(reference.residual, abs=1e-9)
                assert contrast == pytest.approx(reference_contrast, abs=1e-9)
    assert judged >= 60 and fitted >= 30


@pytest.mark.parametrize("modules", [21, 25])
def test_timing_contrast_matches_the_reference_in_and_beyond_the_frame(modules):
    rng = np.random.default_rng(4)
    grey = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    for _ in range(200):
        corners = rng.uniform(-40, 200, (4, 2)).astype(np.float32)  # some timing places outside the frame
        square = np.array([[0, 0], [modules, 0], [modules, modules], [0, modules]], np.float32)
        homography = cv2.getPerspectiveTransform(square, corners)
        compiled = kernels.timing_contrast(grey, homography, modules)
        assert compiled == pytest.approx(fit.timing_contrast(grey, homography, modules), abs=1e-9)


def test_the_algebraic_fit_matches_the_reference():
    rng = np.random.default_rng(6)
    for _ in range(100):
        source = rng.uniform(0, 21, (12, 2))
        truth = cv2.getPerspectiveTransform(np.float32([[0, 0], [21, 0], [21, 21], [0, 21]]),
                                            rng.uniform(0, 640, (4, 2)).astype(np.float32))
        target = cv2.perspectiveTransform(source[None], truth)[0] + rng.normal(0, 0.5, (12, 2))
        solved, homography = kernels._algebraic_fit(source, target)
        reference = fit._algebraic_fit([tuple(p) for p in source.tolist()], [tuple(p) for p in target.tolist()])
        assert solved and reference is not None
        np.testing.assert_allclose(homography, reference, rtol=1e-7, atol=1e-7)
    assert not kernels._algebraic_fit(np.zeros((8, 2)), rng.uniform(0, 9, (8, 2)))[0]  # one source point: no fit


def test_the_convexity_check_matches_opencv():
    rng = np.random.default_rng(8)
    quads = [rng.uniform(0, 10, (4, 2)) for _ in range(500)]
    quads += [np.array([[0, 0], [1, 0], [2, 0], [1, 1]], float), np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)]
    for quad in quads:
        assert kernels._convex(quad) == cv2.isContourConvex(quad.astype(np.float32))


def test_the_full_fit_matches_opencvs_refined_least_squares(frames_and_finders):
    fitted = 0
    for grey, finders in frames_and_finders:
        for code in grouping.group_codes(grey, finders):
            compiled, reference = fit.fit_all_outlines(code.finders), fit.fit_trio(code.finders)
            assert (compiled is None) == (reference is None)
            if compiled is None or reference is None:
                continue
            fitted += 1
            assert compiled.modules == reference.modules
            # cv2.findHomography stops its refinement after 10 iterations; the kernel goes on to convergence
            np.testing.assert_allclose(compiled.corners, reference.corners, rtol=0, atol=5e-3)
            assert compiled.residual == pytest.approx(reference.residual, rel=1e-6)
            assert compiled.residual <= reference.residual * (1 + 1e-9)
    assert fitted >= 30


@pytest.mark.parametrize("most", [2000, 3])
def test_located_finder_candidates_match_the_reference(most):
    from livereader.vision import finder

    options = finder.FinderOptions(max_candidates=most)
    compared = 0
    noisy = np.clip(np.random.default_rng(2).normal(128, 60, (240, 320)), 0, 255).astype(np.uint8)
    for grey in [*_frames(), noisy]:
        for sensitive in (options, replace(options, offset=3.0, noise_offset=1.5)):
            contours, hierarchy = finder.contour_tree(grey, sensitive)
            located = finder._located(contours, hierarchy[0], sensitive)
            reference = finder.reference_located(contours, hierarchy[0], sensitive)
            assert [(size, outlines) for _, size, outlines in located] == \
                   [(size, outlines) for _, size, outlines in reference]
            np.testing.assert_allclose([centre for centre, _, _ in located] or np.zeros((0, 2)),
                                       [centre for centre, _, _ in reference] or np.zeros((0, 2)), rtol=0, atol=1e-9)
            compared += len(located)
    assert compared >= (200 if most > 3 else 40)


def test_outline_quads_match_the_reference():
    from livereader.vision import finder

    compared = found = 0
    for grey in _frames():
        contours, _ = finder.contour_tree(grey)
        for contour in contours[:400]:
            for scale, origin in ((1.0, (0, 0)), (2.0, (16, 8))):
                quad, reference = finder._quad(contour, scale, origin), finder.reference_quad(contour, scale, origin)
                assert quad == reference
                compared += 1
                found += quad is not None
    assert found >= 500 and compared - found >= 50  # quads found, and contours that have none
