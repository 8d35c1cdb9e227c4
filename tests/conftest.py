import numpy as np
import pytest

from livereader.data import held_out_numbers
from livereader.symbol import encode


@pytest.fixture(scope="session")
def model():
    from livereader import load_model

    return load_model()


@pytest.fixture(scope="session")
def held_out():
    """300 held-out numbers with their grids: the first 200 with qrcode's mask, the rest with given masks."""
    numbers = np.random.default_rng(0).choice(held_out_numbers(), 300, replace=False)
    grids = np.stack([encode("%06d" % n, "H", None if i < 200 else i % 8) for i, n in enumerate(numbers)])
    return numbers, grids
