import numpy as np

from livereader.symbol import (
    DATA_REGION,
    FIXED_REGION,
    LEVELS,
    encode,
    fixed_modules,
    mask_patterns,
    read_format,
    unmask,
)


def test_format_is_read_for_every_level_and_mask():
    for level in LEVELS:
        for mask in range(8):
            info = read_format(encode("2024", level, mask))
            assert (info.level, info.mask, info.distance) == (level, mask, 0)


def test_format_survives_three_wrong_format_modules():
    grid = encode("123456", "H", 5)
    for row, col in [(0, 8), (8, 20), (8, 2)]:
        grid[row, col] ^= 1
    info = read_format(grid)
    assert (info.level, info.mask, info.distance) == ("H", 5, 3)


def test_regions_match_the_symbol_layout():
    assert DATA_REGION.sum() == 26 * 8
    for text, level, mask in [("1", "L", 0), ("999999", "H", 7), ("HELLO", "Q", 3)]:
        assert (encode(text, level, mask)[FIXED_REGION] == fixed_modules()).all()


def test_grid_convention_is_one_for_dark():
    grid = encode("42")
    assert grid[0, 0] == 1 and grid[1, 1] == 0 and grid[3, 3] == 1  # finder: dark ring, light ring, dark core


def test_unmask_flips_the_modules_of_the_named_mask():
    grids = np.stack([encode("123456", "H", mask) for mask in range(8)])  # uint8, 1 = dark
    plain = unmask(grids, range(8))
    assert plain.dtype == np.float32 and set(np.unique(plain)) == {0.0, 1.0}
    assert all(np.array_equal(p[DATA_REGION], plain[0][DATA_REGION]) for p in plain)  # one payload under 8 masks
    soft = grids * np.float32(0.8) + np.float32(0.1)
    flips = mask_patterns() == 1
    assert np.allclose(unmask(soft, range(8)), np.where(flips, 1 - soft, soft))
