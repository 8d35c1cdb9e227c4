"""Deblurring: deconvolution of module samples recovers codes that no threshold can separate."""

from dataclasses import replace

import cv2
import numpy as np

from livereader.pipeline import read_frame
from livereader.symbol import SIZE, encode
from livereader.synth.scene import scenes
from livereader.vision.deblur import DeblurOptions, _kernels, deblur, deconvolve
from livereader.vision.grid import sample_grid
from livereader.vision.search import search


def _blurred_samples(grid: np.ndarray, sigma: float, quiet: int, flip: bool, rng) -> np.ndarray:
    """Module-centre samples of a light-on-dark or dark-on-light symbol blurred by ``sigma`` modules."""
    modules = np.pad(grid.astype(np.float64), quiet)
    (kernel,) = _kernels((sigma,), len(modules))
    blurred = kernel @ modules @ kernel.T
    grey = 0.8 - 0.6 * blurred if not flip else 0.2 + 0.6 * blurred
    return grey + rng.normal(0, 0.005, grey.shape)


def test_deconvolution_recovers_modules_that_a_threshold_cannot():
    rng = np.random.default_rng(0)
    options = DeblurOptions()
    for text, flip in (("123456", False), ("987650", True)):
        grid = encode(text, "H")
        samples = _blurred_samples(grid, 0.7, options.quiet, flip, rng)
        inner = samples[options.quiet:-options.quiet, options.quiet:-options.quiet]
        threshold = (inner < inner.mean()) if not flip else (inner > inner.mean())
        assert (threshold != grid).sum() > 30  # a global threshold misses many modules
        modules, sigma = deconvolve(samples, options)
        assert modules.shape == (SIZE, SIZE)
        assert sigma == 0.7
        assert ((modules > 0.5) != grid).sum() <= 2
        # each sigma is solved on its own: the chosen one alone gives the same modules (deblur's second solution
        # solves only the sigma its first chose)
        again, _ = deconvolve(samples, replace(options, sigmas=(sigma,)))
        assert np.abs(again - modules).max() < 1e-6


def test_blurred_scenes_read_and_never_misread(model):
    read = total = 0
    for scene in scenes(["blur0.7"], 10, seed=7):
        results = read_frame(scene.image, model)
        truth = {c.text for c in scene.codes}
        assert {r.text for r in results if r.text} <= truth
        total += len(truth)
        read += sum(r.text in truth for r in results)
    assert read >= 0.7 * total


def test_sharp_codes_deconvolve_to_their_grid():
    scene = next(scenes(["clean"], 1, seed=1))
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
    (code,), _ = search(grey)
    assert (deblur(grey, code).hard == sample_grid(grey, code).hard).all()
