import numpy as np
import pytest

from livereader.decode.decoders import SIX_DIGIT
from livereader.decode.evidence import verified as within_bounds
from livereader.decode.verify import (
    MIN_DISTANCE,
    VerifyOptions,
    _group_tables,
    bits_number,
    candidate_tiers,
    encode_data,
    evaluate,
    number_bits,
)
from livereader.symbol import DATA_REGION, encode


def verified(evidence, options: VerifyOptions) -> bool:
    return within_bounds(evidence, *SIX_DIGIT.bounds(options), options.max_format_distance)


def test_encoder_equals_qrcode_for_every_mask():
    rng = np.random.default_rng(1)
    for mask in range(8):
        numbers = rng.integers(0, 10**6, 25)
        expected = np.stack([encode("%06d" % n, "H", mask)[DATA_REGION] for n in numbers])
        assert (encode_data(numbers, mask) == expected).all()


def test_minimum_distance_between_codes():
    # Two numbers' data modules differ by high[p] ^ low[q] for the XOR (p, q) of their 10-bit groups.
    high, low = _group_tables()
    weights = [(high[p][None] ^ low).sum(1) for p in range(1024)]
    weights[0] = weights[0][1:]  # p = q = 0 is the same number
    assert min(int(w.min()) for w in weights) == MIN_DISTANCE


def test_options_out_of_range_are_refused():
    for wrong in ({"candidates": 0}, {"candidates": 1001}, {"expand": -1}, {"expand_pairs": -1},
                  {"expand_triples": -2}):
        with pytest.raises(ValueError):
            VerifyOptions(**wrong)
    assert VerifyOptions(candidates=1000, expand=0).candidates == 1000


def test_bits_round_trip_and_invalid_groups():
    numbers = np.array([0, 1, 999999, 123456, 500250])
    assert (bits_number(number_bits(numbers)) == numbers).all()
    too_big = number_bits(np.array([0]))
    too_big[0, :10] = 1  # high group 1023
    assert bits_number(too_big)[0] == -1


def _confident(number: int) -> np.ndarray:
    """Group log probabilities of a CNN sure of ``number``."""
    log_probs = np.full((2, 1000), np.log(1e-6))
    log_probs[0, number // 1000] = log_probs[1, number % 1000] = 0.0
    return log_probs


def test_expansion_finds_numbers_up_to_three_data_bits_away():
    truth = 123456
    no_expansion = VerifyOptions(expand=0, expand_pairs=0, expand_triples=0)
    for flipped in ([2], [2, 13], [0, 9, 17]):
        bits = number_bits(np.array([truth]))
        bits[0, flipped] ^= 1
        misread = int(bits_number(bits)[0])
        assert truth in np.concatenate(list(candidate_tiers(_confident(misread), VerifyOptions())))
        assert truth not in np.concatenate(list(candidate_tiers(_confident(misread), no_expansion)))


def test_wrong_candidate_is_rejected_and_right_one_accepted():
    grid = encode("654321", "H", 2).astype(np.float32)
    options = VerifyOptions(expand=0, expand_pairs=0, expand_triples=0, candidates=1)
    assert verified(evaluate(grid, _confident(654321), options), options)
    wrong = evaluate(grid, _confident(654320), options)
    assert wrong.distance >= MIN_DISTANCE and not verified(wrong, options)


def test_other_levels_are_never_verified():
    grid = encode("654321", "M").astype(np.float32)
    evidence = evaluate(grid, _confident(654321), VerifyOptions())
    assert evidence.text is None and not verified(evidence, VerifyOptions())


def test_soft_low_contrast_grid_is_normalized():
    grid = 0.35 + 0.3 * encode("000777", "H", 6).astype(np.float32)
    evidence = evaluate(grid, _confident(777), VerifyOptions())
    assert evidence.text == "000777" and evidence.distance < 1


def test_grids_judged_foreign_together_are_judged_as_alone():
    """verify.foreign_grids measures a stack's levels and format bits at once: each grid is judged as alone, text
    codes (light-on-dark too) foreign, numbers and unreadable grids not."""
    from livereader.decode.codeword import foreign_data
    from livereader.decode.verify import foreign, foreign_grids
    from livereader.symbol import FIXED_REGION, fixed_modules, read_format

    text = encode("HELLO", "M")
    number = encode("004217", "H")
    noise = np.random.default_rng(4).integers(0, 2, (21, 21)).astype(np.uint8)
    stack = np.stack([text, number, 1 - text, noise, 1 - number, encode("https://x.org", "L")]).astype(np.uint8)
    assert foreign_grids(stack) == [True, False, True, False, False, True]
    assert [foreign(grid) for grid in stack] == foreign_grids(stack)
    assert foreign_grids(stack[[5, 1, 0]]) == [True, False, True]

    def alone(grid: np.ndarray) -> bool:  # one grid at a time: its levels, format bits and codewords
        values = grid[FIXED_REGION]
        dark, light = (np.sort(values[fixed_modules() == k])[(fixed_modules() == k).sum() // 2] for k in (1, 0))
        grid = 1 - grid if dark < light else grid
        fmt = read_format(grid)
        return fmt.distance <= 1 and foreign_data(grid, fmt)

    assert [alone(grid) for grid in stack] == foreign_grids(stack)
