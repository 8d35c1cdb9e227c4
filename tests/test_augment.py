import numpy as np
import torch

from livereader.symbol import encode
from livereader.train.augment import AugmentConfig, augment, flip_modules


def _grids(n):
    return torch.from_numpy(np.stack([encode("%06d" % i) for i in range(n)]))


def test_output_shape_and_range():
    out = augment(_grids(64), AugmentConfig(), torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 21, 21) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out[:, 0], _grids(64).float())


def test_clean_share_leaves_grids_exact():
    grids = _grids(8)
    out = augment(grids, AugmentConfig(clean=1.0), torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 0], grids.float())


def test_flip_modules_flips_exactly_k():
    grids = _grids(16).float()
    counts = torch.arange(16) * 3
    out = flip_modules(grids, counts, torch.Generator().manual_seed(0))
    assert ((out != grids).sum((1, 2)) == counts).all()
