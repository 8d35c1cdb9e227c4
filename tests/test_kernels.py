"""The compiled kernels of finder location, grouping, fitting, Reed-Solomon decoding, six-digit verification and
deconvolution (livereader.kernels) against their plain references, on the finders of synthetic scenes and of frames
of many finder patterns, and on random inputs; and how a process comes to use them (livereader.compiled)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from livereader import compiled, kernels
from livereader.symbol import encode
from livereader.synth.scene import scenes
from livereader.vision import fit, grouping
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
        centres, sizes, nearest = grouping._side_partners(kernels, finders, options)
        triples, scores = grouping._candidate_triples(kernels, centres, sizes, nearest, options)
        reference_triples, reference_scores = grouping.reference_triple_scores(finders, options)
        assert triples == reference_triples
        np.testing.assert_allclose(scores, reference_scores, rtol=0, atol=1e-9)
        compared += len(triples)
    assert compared >= 40


@pytest.mark.parametrize(("partners", "limits"), [(1, (0.3, 0.3)), (2, (0.3, 0.3)), (1, (0.3, 0.5)), (2, (0.1, 1.0)),
                                                  (1, (1.2, 1.6)), (1, (0.5, 0.3))])
def test_side_partners_match_the_reference(frames_and_finders, partners, limits):
    # the defaults, the sheared regroup's looser other finder, and limits beyond a right angle
    options = replace(FinderOptions(), side_partners=partners, max_misalignment=limits[0],
                      max_other_misalignment=limits[1])
    found = 0
    for _, finders in frames_and_finders:
        _, _, nearest = grouping._side_partners(kernels, finders, options)
        reference = grouping.reference_sides(finders, options)
        assert [[[j for j in row if j >= 0] for row in sides] for sides in nearest.tolist()] == reference
        assert grouping.side_partnered(finders, options) == [any(sides) for sides in reference]
        found += sum(len(row) for sides in reference for row in sides)
    assert found >= 100


def test_paired_matches_the_reference(frames_and_finders):
    options = FinderOptions()
    found = []
    for _, finders in frames_and_finders:
        centres, sizes = np.array([f.centre for f in finders]), np.array([f.size for f in finders])
        _, _, _, span, small, large = grouping.pair_geometry(finders)
        paired = kernels.paired(centres, sizes, options.max_size_ratio, options.max_modules)
        assert (paired == grouping.plausible_pairs(span, small, large, options).any(axis=1)).all()
        found += paired.tolist()
    assert any(found) and not all(found)


def test_paired_matches_the_reference_on_many_random_finders():
    # thousands of pairs at every distance and size ratio, clustered so that many are plausible
    options = FinderOptions()
    rng = np.random.default_rng(8)
    found = []
    for count in (0, 1, 2, 50, 900):
        centres = rng.uniform(0, 1500, (count, 2)) * rng.choice([1.0, 0.1], (count, 1))
        sizes = rng.uniform(4, 90, count)
        distance = np.hypot(*(centres[None] - centres[:, None]).transpose(2, 0, 1))
        span = 7 * distance / ((sizes[:, None] + sizes[None, :]) / 2)
        small, large = np.minimum.outer(sizes, sizes), np.maximum.outer(sizes, sizes)
        plausible = grouping.plausible_pairs(span, small, large, options)
        np.fill_diagonal(plausible, False)
        paired = kernels.paired(centres, sizes, options.max_size_ratio, options.max_modules)
        assert paired.tolist() == plausible.any(axis=1).tolist()
        found += paired.tolist()
    assert sum(found) >= 100 and not all(found)


def test_judged_orders_match_the_reference(frames_and_finders):
    options = FinderOptions()
    judged = fitted = 0
    for grey, finders in frames_and_finders:
        trios = grouping._trios(*grouping.reference_triple_scores(finders, options))
        outlines = grouping._Outlines.of(grey, finders, trios, np.array([f.centre for f in finders]),
                                         np.array([f.size for f in finders]))
        for orders in trios.values():
            for fits in (1, 100):  # a budget that stops after one order, and one that does not
                compiled_budget, reference_budget = grouping._Budget(fits), grouping._Budget(fits)
                code, contrast = grouping._judge(kernels, grey, finders, orders, compiled_budget, options,
                                                 outlines)
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
        compiled_contrast = kernels._timing_contrast(grey, homography, modules)
        assert compiled_contrast == pytest.approx(fit.timing_contrast(grey, homography, modules), abs=1e-9)


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
            full, reference = fit.fit_all_outlines(code.finders), fit.fit_trio(code.finders)
            assert (full is None) == (reference is None)
            if full is None or reference is None:
                continue
            fitted += 1
            assert full.modules == reference.modules
            # cv2.findHomography stops its refinement after 10 iterations; the kernel goes on to convergence
            np.testing.assert_allclose(full.corners, reference.corners, rtol=0, atol=5e-3)
            assert full.residual == pytest.approx(reference.residual, rel=1e-6)
            assert full.residual <= reference.residual * (1 + 1e-9)
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


def test_the_noise_level_matches_the_reference(monkeypatch):
    from livereader.vision import finder

    assert compiled.loaded() is kernels
    rng = np.random.default_rng(6)
    # an even and an odd count of differences (the median of two middle ones, or of one), and too few columns
    shapes = ((240, 320), (232, 320), (9, 3), (1, 3), (1, 5), (17, 1))
    greys = [*_frames(), *(np.clip(rng.normal(128, sigma, shape), 0, 255).astype(np.uint8)
                           for sigma in (0.5, 3, 40, 200) for shape in shapes)]
    greys += [grey[5:, 3:] for grey in greys[:4]] + [np.zeros((0, 8), np.uint8)]  # crops: other strides
    samples = [grey[::8, ::2] for grey in greys if grey[::8, ::2].shape[1] >= 2 and len(grey)]
    medians = [kernels.median_difference(sample) for sample in samples]
    assert medians == [finder.reference_median_difference(sample) for sample in samples]
    assert any(median % 1 for median in medians)  # a median between two middle values
    levels = [finder.noise_level(grey) for grey in greys]
    assert len(set(levels)) >= 8 and 0.0 in levels  # flat and noisy frames, and frames with no difference
    monkeypatch.setattr(compiled, "kernels", lambda: None)  # before the kernels are ready: the reference
    assert [finder.noise_level(grey) for grey in greys] == levels


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


def test_located_finder_candidates_match_the_reference_in_a_frame_traced_in_tiles():
    from livereader.vision import finder

    frame = np.full((1500, 1500), 235, np.uint8)  # over TILED_ABOVE: its contour tree is joined from tiles
    grid = np.kron(np.pad(encode("314159", "H"), 4), np.ones((6, 6), np.uint8))
    for y, x in ((40, 40), (900, 600), (300, 950)):  # the last two across the tiles' edges (1024 px)
        frame[y : y + grid.shape[0], x : x + grid.shape[1]] = 235 - 200 * grid
    assert frame.size > finder.TILED_ABOVE
    contours, hierarchy = finder.contour_tree(frame)
    located = finder._located(contours, hierarchy[0], FinderOptions())
    assert located == finder.reference_located(contours, hierarchy[0], FinderOptions())
    assert len(located) >= 9


def _noisy_words(rng: np.random.Generator, count: int):
    """Codewords of every level with errors and erasures (some erased codewords also wrong), within the capacity
    and beyond it; and random words."""
    import reedsolo

    from livereader.decode.codeword import CODEWORDS, DATA_CODEWORDS

    for index in range(count):
        level = "LMQH"[index % 4]
        ec = CODEWORDS - DATA_CODEWORDS[level]
        word = bytearray(reedsolo.RSCodec(ec, nsize=CODEWORDS).encode(
            bytearray(rng.integers(0, 256, DATA_CODEWORDS[level], dtype=np.uint8).tobytes())))
        places = rng.permutation(CODEWORDS).tolist()
        errors, erased = int(rng.integers(0, ec // 2 + 3)), int(rng.integers(0, ec + 2)) * int(rng.random() < 0.6)
        erasures = sorted(places[errors : errors + erased])
        for place in places[:errors] + erasures[::2]:
            word[place] ^= int(rng.integers(1, 256))
        within = 2 * errors + len(erasures) <= ec
        if index % 10 == 9:  # a random word: no codeword near it, as far as anyone knows
            word, within = bytearray(rng.integers(0, 256, CODEWORDS, dtype=np.uint8).tobytes()), False
        yield bytes(word), level, erasures, within


def test_reed_solomon_decoding_matches_reedsolo(monkeypatch):
    import reedsolo

    from livereader.decode import codeword

    assert compiled.loaded() is kernels  # the kernel decodes (conftest)
    rng = np.random.default_rng(5)
    decoded = failed = 0
    for word, level, erasures, within in _noisy_words(rng, 4000):
        fast = codeword.error_corrected(word, level, erasures)
        with monkeypatch.context() as patched:
            patched.setattr(codeword.compiled, "loaded", lambda: None)  # reedsolo
            reference = codeword.error_corrected(word, level, erasures)
        if within or not erasures:  # within the capacity, and wherever nothing is erased: the same
            assert fast == reference, (word, level, erasures)
        if fast is not None:  # beyond it, a codeword either way (reedsolo encodes its data to it), or none
            data = codeword.DATA_CODEWORDS[level]
            codec = reedsolo.RSCodec(codeword.CODEWORDS - data, nsize=codeword.CODEWORDS)
            assert bytes(codec.encode(fast[:data])) == fast
        decoded += fast is not None
        failed += fast is None
    assert decoded >= 1500 and failed >= 500


def test_codeword_evidence_is_the_same_with_the_kernel_and_reedsolo(monkeypatch):
    from livereader.decode import codeword
    from livereader.symbol import FormatInfo

    assert compiled.loaded() is kernels
    rng = np.random.default_rng(6)
    options = codeword.CodewordOptions()
    reads = 0
    for index in range(600):
        level, mask = "LMQH"[index % 4], int(rng.integers(0, 8))
        digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 12))))
        grid = encode(digits, level, mask).astype(np.float32)
        bits = codeword.codeword_bits(grid[None].astype(np.uint8), np.array([mask]))[0]
        logits = (2.0 * bits - 1) * rng.uniform(0.2, 6.0, bits.shape)
        logits[rng.random(bits.shape) < rng.uniform(0, 0.12)] *= -1  # misread bits, some of them confident
        fmt = FormatInfo(level, mask, 0)
        for content in ("numeric", "any"):
            fast = codeword.decode(grid, fmt, logits, options, content)
            with monkeypatch.context() as patched:
                patched.setattr(codeword.compiled, "loaded", lambda: None)
                reference = codeword.decode(grid, fmt, logits, options, content)
            assert fast == reference
            reads += fast.text == digits
    assert reads >= 300


@pytest.mark.slow
def test_compiling_all_covers_the_argument_types_of_a_reads_calls():
    # in a process of its own: nothing compiled before compile_all
    import subprocess
    import sys

    script = """
import numpy as np, cv2
from livereader.decode.reader import load_models
from livereader.decode.verify import VerifyOptions
from livereader.pipeline import ReaderOptions, read_frame
from livereader.synth.scene import scenes
from livereader import compiled, kernels
compiled.use_kernels()
kernels.compile_all()
dispatchers = {name: value for name, value in vars(kernels).items() if hasattr(value, "signatures")}
assert all(len(d.signatures) == 1 for name, d in dispatchers.items() if not name.startswith("_")), dispatchers
before = {name: len(d.signatures) for name, d in dispatchers.items()}
model = load_models(None)  # both shipped models: the codeword model's reads decode Reed-Solomon
frames = [s.image for s in scenes(["clean", "perspective", "several", "distractors", "numeric"], 3, seed=2)]
grey = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
grey.setflags(write=False)  # read-only, as a PIL image through numpy
frames += [grey, cv2.cvtColor(frames[1], cv2.COLOR_BGR2BGRA), frames[2][::2, ::2]]
for frame in frames:
    for options in (ReaderOptions(), ReaderOptions(scout=1), ReaderOptions(verify=VerifyOptions(content="any"))):
        read_frame(frame, model, options)
assert {name: len(d.signatures) for name, d in dispatchers.items()} == before
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _compiling_in_a_child(wait: float):
    """A process that enters compiled.one_compiler(wait), says so, and stays inside until its stdin closes."""
    import subprocess
    import sys

    script = (f"import sys\nfrom livereader import compiled\nwith compiled.one_compiler({wait}):\n"
              "    print('in', flush=True)\n    sys.stdin.read()\n")
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _said_within(child, seconds: float) -> str | None:
    """The child's first line, where it says one within ``seconds``."""
    import select

    ready, _, _ = select.select([child.stdout], [], [], seconds)
    return child.stdout.readline() if ready else None


@pytest.mark.slow
def test_a_background_process_waits_while_another_compiles_then_loads_beside_the_others(monkeypatch, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # a lock of this test's own (the child inherits it)
    with open(compiled.lock_path(), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a background process that compiles holds it
        child = _compiling_in_a_child(wait=300)
        try:
            assert _said_within(child, 3) is None  # waiting (starting and importing compiled take far less)
            fcntl.flock(held, fcntl.LOCK_UN)  # the compile is done
            assert _said_within(child, 30) == "in\n"
            with open(compiled.lock_path(), "a") as free:  # inside, it holds no lock: the others load beside it
                fcntl.flock(free, fcntl.LOCK_EX | fcntl.LOCK_NB)
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()


@pytest.mark.slow
def test_a_background_process_waits_for_a_hung_compiler_only_so_long(monkeypatch, tmp_path):
    import time

    fcntl = pytest.importorskip("fcntl")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    with open(compiled.lock_path(), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a holder that never lets go
        started = time.monotonic()
        child = _compiling_in_a_child(wait=1.0)
        try:
            assert _said_within(child, 30) == "in\n"
            assert time.monotonic() - started >= 1.0  # it waited as long as it was told to
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()


@pytest.mark.parametrize("problem", ["no process", "not cached", "failed"])
def test_without_a_background_process_that_compiled_the_kernels_the_references_read_on(monkeypatch, problem):
    class Ended:  # a background process that has ended with this status
        returncode = {"not cached": compiled.NOT_CACHED, "failed": 1}.get(problem, 0)

        def poll(self):
            return self.returncode

        def wait(self, timeout=None):
            return self.returncode

    def popen(*args, **kwargs):
        if problem == "no process":
            raise OSError("no processes here")
        return Ended()

    for name, value in (("_kernels", None), ("_compiler", None), ("_failed", False), ("_deferred", False)):
        monkeypatch.setattr(compiled, name, value)
    monkeypatch.setattr(compiled.subprocess, "Popen", popen)
    assert compiled.kernels() is None  # starts it
    compiled.load_if_ready()  # the next frame's start: nothing compiled here, no stall
    assert compiled.kernels() is None and compiled._failed
    grey = _frames()[0]
    assert len(grouping.group_codes(grey, find_finders(grey))) == 1  # read by the references


def test_a_short_run_compiles_the_kernels_when_it_exits_where_they_are_not_cached(monkeypatch, tmp_path):
    started, at_exit = [], []

    class Running:  # a background process that has not ended
        def poll(self):
            return None

        def wait(self, timeout=None):
            return None

    def popen(*args, **kwargs):
        started.append(args[0])
        return Running()

    def fresh():  # a process that has started no background process yet
        for name, value in (("_kernels", None), ("_compiler", None), ("_failed", False), ("_deferred", False)):
            monkeypatch.setattr(compiled, name, value)

    fresh()
    monkeypatch.setattr(compiled.subprocess, "Popen", popen)
    monkeypatch.setattr(compiled.atexit, "register", at_exit.append)
    monkeypatch.setattr(compiled, "lock_path", lambda: tmp_path / "kernels.lock")
    assert not compiled.cached()  # no stamp: never compiled here
    assert compiled.defer() is True
    compiled.kernels()
    compiled.wait(timeout=0)
    assert started == [] and at_exit == [compiled._start_at_exit]  # searches and waits start nothing meanwhile
    assert compiled.defer() is True and at_exit == [compiled._start_at_exit]  # deferred once
    at_exit[0]()  # the process exits: its background process compiles for the next run
    assert len(started) == 1 and started[0][-2:] == ["-m", "livereader.kernels"] and not compiled._deferred

    compiled.mark_cached()  # as that background process does once it has compiled them
    assert compiled.stamp_path() == tmp_path / "kernels.stamp" and compiled.cached()
    fresh()
    at_exit.clear()
    assert compiled.defer() is False  # cached: started at once, read with once loaded
    assert len(started) == 2 and at_exit == []

    stamp = compiled.stamp_path().read_text()
    assert "kernels.py" in stamp and "numba" in stamp
    compiled.stamp_path().write_text(stamp.replace("kernels.py", "kernels.py 1"))  # another kernels file, say
    assert not compiled.cached()
    compiled.stamp_path().write_bytes(b"\xff\xfe")  # not text
    assert not compiled.cached()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kernels.stamp"]  # no partial stamp left

    fresh()  # a run that defers, then turns out to last (a long file after it in one process): starts at once
    assert compiled.defer() is True
    compiled.start(now=True)
    assert len(started) == 3 and not compiled._deferred
    at_exit[-1]()  # and its exit starts no second one
    assert len(started) == 3

    monkeypatch.setattr(compiled, "lock_path", lambda: tmp_path / "missing" / "kernels.lock")
    compiled.mark_cached()  # an unwritable place: no stamp, and no error
    assert not compiled.cached()


def test_kernels_compile_without_a_disk_cache_where_numba_refuses_one(monkeypatch):
    import numba

    njit = numba.njit

    def no_cache(*args, cache=False, **kwargs):  # as numba does where no cache location is writable
        if cache:
            raise RuntimeError("cannot cache function 'twice': no locator available for file '<test>'")
        return njit(*args, **kwargs)

    from numba.core.caching import NullCache

    monkeypatch.setattr(kernels.numba, "njit", no_cache)
    monkeypatch.setattr(kernels, "CACHED", True)
    twice = kernels._jit(lambda x: 2 * x)
    assert twice(21) == 42 and isinstance(twice._cache, NullCache)  # compiled, not cached
    assert kernels.CACHED is False  # the background process exits with NOT_CACHED


@pytest.mark.slow
def test_a_process_reads_with_the_references_until_the_background_process_has_compiled_the_kernels():
    # in a process of its own: the test session reads with the kernels from its start (conftest)
    import subprocess
    import sys

    script = """
import time
import numpy as np
from livereader.symbol import encode
from livereader import compiled, kernels
from livereader.vision.finder import find_finders
from livereader.vision.grouping import group_codes
frame = np.full((240, 320), 230, np.uint8)
frame[20:194, 40:214] = 230 - 200 * np.kron(np.pad(encode("271828", "H"), 4), np.ones((6, 6), np.uint8))
before = [code.corners.round(2).tolist() for code in group_codes(frame, find_finders(frame))]
assert compiled.kernels() is None and compiled._compiler is not None
assert compiled._compiler.wait(timeout=120) == 0
assert compiled.kernels() is None  # loaded only at a frame's start
started = time.perf_counter()
compiled.load_if_ready()
assert compiled.kernels() is kernels and time.perf_counter() - started < 5  # loaded from the cache, not compiled
after = [code.corners.round(2).tolist() for code in group_codes(frame, find_finders(frame))]
assert before == after and len(after) == 1, (before, after)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_thread_never_waits_while_another_loads_the_kernels(monkeypatch):
    import threading
    import time

    class Compiler:  # a background process: still running until ``ended``, then ended well
        ended = False

        def poll(self):
            return 0 if self.ended else None

        def wait(self, timeout=None):
            if not self.ended:
                raise compiled.subprocess.TimeoutExpired("kernels", timeout)
            return 0

        returncode = 0

    compiler = Compiler()
    for name, value in (("_kernels", None), ("_compiler", compiler), ("_failed", False), ("_deferred", False)):
        monkeypatch.setattr(compiled, name, value)
    monkeypatch.setattr(kernels, "compile_all", lambda: time.sleep(0.5))  # a load of half a second
    compiled.wait(timeout=0.01)  # still compiling: no wait beyond the timeout, nothing loaded
    assert compiled.kernels() is None
    compiler.ended = True
    loader = threading.Thread(target=compiled.load_if_ready)
    loader.start()
    time.sleep(0.1)
    started = time.perf_counter()
    assert compiled.kernels() is None  # another thread's frame: the references, at once
    compiled.load_if_ready()
    assert time.perf_counter() - started < 0.1
    loader.join()
    assert compiled.kernels() is kernels


def test_deconvolution_matches_the_reference(monkeypatch):
    from livereader.vision import deblur

    assert compiled.kernels() is kernels  # the kernel deconvolves (conftest)
    rng = np.random.default_rng(8)
    options = deblur.DeblurOptions()
    quiet = options.quiet
    side = 21 + 2 * quiet

    def solve(sigmas, samples, steps, prune_after):
        return kernels.deconvolved(
            deblur._kernels(sigmas, side), deblur._transposed(sigmas, side), deblur._bands(sigmas, side), samples,
            *deblur._known(quiet), deblur._lipschitz(sigmas, side), steps, prune_after, options.prune_ratio)

    chosen = pruned = 0
    for trial in range(12):
        sigma = options.sigmas[trial % len(options.sigmas)]
        modules = np.pad(encode(str(rng.integers(10**6)).zfill(6), "LMQH"[trial % 4]).astype(np.float64), quiet)
        (kernel,) = deblur._kernels((sigma,), side)
        samples = 0.8 - 0.6 * (kernel @ modules @ kernel.T) + rng.normal(0, 0.02 * (trial % 3), (side, side))
        if trial % 4 == 3:  # light on dark, and samples off any blurred symbol
            samples = 1 - samples + 0.2 * rng.random((side, side))
        for sigmas, steps, prune_after in ((options.sigmas, options.steps, options.prune_after),
                                           (options.sigmas, 9, 0), ((sigma,), options.steps, options.prune_after),
                                           ((0.5, 0.6), 7, options.prune_after)):
            solved = replace(options, sigmas=sigmas, steps=steps, prune_after=prune_after)
            reference, errors = deblur.deconvolve_reference(samples, solved)
            fast, fast_errors = solve(sigmas, samples, steps, prune_after)
            assert np.abs(fast - reference).max() < 1e-9
            assert np.allclose(fast_errors, errors, rtol=1e-9, atol=1e-15)
            # each sigma that goes on, as if never pruned, bit for bit; each pruned one as after its first steps
            going = np.isfinite(fast_errors)
            whole, whole_errors = solve(sigmas, samples, steps, steps)
            early, _ = solve(sigmas, samples, min(prune_after, steps), steps)
            assert np.array_equal(fast[going], whole[going]) and np.array_equal(fast_errors[going], whole_errors[going])
            assert np.array_equal(fast[~going], early[~going]) and going[np.argmin(whole_errors)]
            assert np.abs(reference[going] - whole[going]).max() < 1e-9
            pruned += int((~going).sum())
            modules_fast, sigma_fast = deblur.deconvolve(samples, solved)
            with monkeypatch.context() as patched:
                patched.setattr(deblur.compiled, "kernels", lambda: None)  # the reference
                modules_reference, sigma_reference = deblur.deconvolve(samples, solved)
            assert sigma_fast == sigma_reference
            assert np.abs(modules_fast - modules_reference).max() < 1e-6
            chosen += len(sigmas) > 1 and sigma_fast == sigma
    assert chosen >= 6  # the blur's own sigma, from samples of a blurred symbol
    assert pruned >= 40  # sigmas stopped early (of the 168 solutions at seven sigmas)
    with pytest.raises(ValueError):
        deblur.DeblurOptions(prune_ratio=0.5)  # it would prune the best sigma too


def _six_digit_cases(rng: np.random.Generator, count: int):
    """(group log probabilities, observed data modules, mask): grids of six-digit numbers read with 0-5 wrong
    bits of the number and 0-40 misread modules, soft or hard (hard grids' distances tie), and log probabilities
    sure of a nearby number, spread or flat (every number equally likely: every order is a tie)."""
    from livereader.decode.verify import bits_number, encode_data, number_bits

    for index in range(count):
        truth, mask = int(rng.integers(0, 10**6)), int(rng.integers(0, 8))
        observed = encode_data(np.array([truth]), mask)[0].astype(np.float32)
        flipped = rng.choice(observed.size, int(rng.integers(0, 41)), replace=False)
        observed[flipped] = 1 - observed[flipped]
        if index % 3:  # soft
            observed = np.clip(observed + rng.normal(0, 0.2, observed.shape), 0, 1).astype(np.float32)
        bits = number_bits(np.array([truth]))
        bits[0, rng.choice(20, int(rng.integers(0, 6)), replace=False)] ^= 1
        misread = max(int(bits_number(bits)[0]), 0)
        kind = index % 5
        if kind == 4:
            log_probs = np.full((2, 1000), -np.log(1000), np.float32)
        else:
            logits = rng.normal(0, (0.5, 2.0, 8.0, 8.0)[kind], (2, 1000))
            logits[0, misread // 1000] += 6
            logits[1, misread % 1000] += 6
            log_probs = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
        yield log_probs, observed, mask


@pytest.mark.parametrize("options", [{}, {"candidates": 1}, {"candidates": 5, "expand": 9, "expand_pairs": 3},
                                     {"expand": 0, "expand_pairs": 0, "expand_triples": 0},
                                     {"max_distance": 40.0, "expand_triples": 4}])
def test_six_digit_verification_matches_the_reference(monkeypatch, options):
    from livereader.decode import verify
    from livereader.decode.verify import VerifyOptions, _bit_changes, _group_tables, codebook, reference_best
    from livereader.symbol import FormatInfo

    assert compiled.loaded() is kernels  # the kernel verifies (conftest)
    options = VerifyOptions(**options)
    rng = np.random.default_rng(7)
    tiers = ties = lonely = 0
    for log_probs, observed, mask in _six_digit_cases(rng, 200):
        best, distance, gap, log_prob = kernels.six_digit_best(
            log_probs, observed, _group_tables(), codebook()[0][mask], *_bit_changes(), options.candidates,
            options.expand, options.expand_pairs, options.expand_triples, options.max_distance)
        reference = reference_best(log_probs, observed, mask, options)
        assert best == reference[0]
        np.testing.assert_allclose((distance, gap, log_prob), reference[1:], rtol=0, atol=1e-9)
        tiers += best not in verify._top_numbers(log_probs, options.candidates)
        ties += gap == 0
        lonely += gap == np.inf
        # and the evidence of evaluate, compiled and not
        fmt = FormatInfo("H", mask, 0)
        grid = np.zeros((21, 21), np.float32)
        grid[verify.DATA_REGION] = observed
        fast = verify.evaluate(grid, log_probs, options, fmt)
        with monkeypatch.context() as patched:
            patched.setattr(verify.compiled, "loaded", lambda: None)
            slow = verify.evaluate(grid, log_probs, options, fmt)
        assert fast.text == slow.text
        np.testing.assert_allclose(fast.features, slow.features, rtol=0, atol=1e-9)
        assert fast.gap == pytest.approx(slow.gap, abs=1e-9)
        if gap == np.inf:  # a lone candidate: evidence gives MIN_DISTANCE as its gap, compiled or not
            assert slow.gap == fast.gap == verify.MIN_DISTANCE
        # log probabilities in float64 are verified as the network's float32
        np.testing.assert_allclose(verify.evaluate(grid, log_probs.astype(np.float64), options, fmt).features,
                                   fast.features, rtol=0, atol=0)
    if options.candidates == 1:
        assert lonely > 0
    if options.expand or options.expand_pairs or options.expand_triples:
        assert tiers >= 20  # numbers found beyond the first tier
    assert ties >= 10  # hard grids and flat log probabilities


def test_upright_formats_and_mirroring_match_the_references():
    from livereader.decode import decoders, verify
    from livereader.vision import grid as sampling

    assert compiled.loaded() is kernels  # the kernels read (conftest)
    rng = np.random.default_rng(5)
    grids = []
    for level in "LMQH":
        for mask in range(8):
            symbol = encode("%06d" % rng.integers(10**6), level, mask)
            misread = symbol ^ (rng.random(symbol.shape) < rng.choice([0.0, 0.03, 0.1, 0.5])).astype(np.uint8)
            grids += [misread, 1 - misread, misread.T, (1 - misread).T]
    hard = np.stack(grids).astype(np.uint8)
    binary, flipped, formats = verify.upright_formats(hard)
    reference = verify.reference_upright_formats(hard)
    assert binary.all() and reference[0].all()
    assert flipped.tolist() == reference[1].tolist() and formats == reference[2]
    assert 0 < flipped.sum() < len(hard)  # light-on-dark grids among them
    assert len({fmt.distance for fmt in formats}) >= 5  # exact and misread format bits
    mirrored = sampling._mirrored(hard)
    assert mirrored == sampling.reference_mirrored(hard) and 0 < sum(mirrored) < len(hard)
    # soft grids: levels the same, not 0/1, so a decoder normalizes each one by its own levels
    soft = np.clip(hard + rng.normal(0, 0.2, hard.shape), 0, 1).astype(np.float32)
    binary, flipped, _ = verify.upright_formats(soft)
    assert not binary.any() and flipped.tolist() == verify.reference_upright_formats(soft)[1].tolist()
    # a decoder's input, hard and soft grids together, as each grid alone
    mixed = np.concatenate([hard.astype(np.float32), soft])[rng.permutation(2 * len(hard))]
    uprights, prepared = decoders._prepared(mixed)
    for grid, upright, (normalized, fmt) in zip(mixed, uprights, prepared):
        alone = verify.prepare(grid)
        assert np.array_equal(upright, alone[0]) and np.array_equal(normalized, alone[1]) and fmt == alone[2]
    # a grid as a transposed view, and no grids at all, compiled and not
    views = hard.transpose(0, 2, 1)
    assert verify.upright_formats(views)[2] == verify.reference_upright_formats(views)[2]
    assert sampling._mirrored(views) == sampling.reference_mirrored(views) != mirrored
    for upright_formats in (verify.upright_formats, verify.reference_upright_formats):
        binary, flipped, formats = upright_formats(np.zeros((0, 21, 21), np.float32))
        assert binary.shape == flipped.shape == (0,) and formats == []
    uprights, prepared = decoders._prepared(np.zeros((0, 21, 21), np.float32))
    assert uprights.shape == (0, 21, 21) and prepared == []


@pytest.mark.parametrize(("window", "gain"), [(7, 1.0), (3, 1.0), (5, 0.7), (9, 2.5), (6, 1.0), (25, 1.0)])
def test_soft_grids_match_the_reference_bit_for_bit(window, gain):
    from livereader.vision.grid import GridOptions, reference_softs

    rng = np.random.default_rng(window)
    options = GridOptions(window=window, gain=gain)
    for trial in range(40):
        count = int(rng.integers(1, 5))
        if trial % 2:  # noise
            samples = rng.integers(0, 256, (count * 63, 63)).astype(np.uint8)
        else:  # modules of two levels, blurred by noise, as sampled codes look
            modules = np.kron(rng.integers(0, 2, (count * 21, 21)) * 180 + 30, np.ones((3, 3)))
            samples = np.clip(modules + rng.normal(0, 20, modules.shape), 0, 255).astype(np.uint8)
        fast = kernels.soft_grids(samples, count, window, gain)
        assert fast.dtype == np.float32 and fast.shape == (count, 21, 21)
        assert np.array_equal(fast, reference_softs(samples, count, options))
