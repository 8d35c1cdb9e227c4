from livereader.symbol import DATA_REGION, FIXED_REGION, LEVELS, encode, fixed_modules, read_format


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
