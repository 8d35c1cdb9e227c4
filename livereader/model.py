"""The CNN that reads a 21x21 grid: the whole network in one file.

Input: ``(B, 1, 21, 21)`` float grids, 1 = dark, values in ``[0, 1]`` (soft or binarized).
Output: ``(B, 10 * digits + 8)`` logits: ``digits`` groups of 10 digit logits (most significant first), then
8 logits for the data mask (an auxiliary head that the network also uses itself).

Why this shape (see ``../shared/FACTS.md``): the data mask is a global property of the symbol, fixed by the
15 format bits beside the finder patterns, so a purely local CNN cannot unmask a module. A small format head
reads the 30 format modules, and its soft mask estimate is XORed into the grid; a 3x3 convolution sees raw and
unmasked modules side by side (blur and misregistration are local) and a 1x1 convolution squeezes its features;
a fully connected layer reads the digits from where their modules are, which global pooling would throw away.
One 3x3 layer, not two: the fully connected layer already combines neighbours, and a second 3x3 layer cost 35%
of the batched speed on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from livereader.symbol import FORMAT_POSITIONS, SIZE, mask_patterns

MASKS = 8


@dataclass(frozen=True)
class ModelConfig:
    digits: int = 6  # digits of the payload the network reads
    channels: int = 16  # convolution channels
    squeeze: int = 4  # channels per module kept for the fully connected layer
    hidden: int = 256  # width of the fully connected layer

    def to_dict(self) -> dict:
        return asdict(self)


class GridReader(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        format_index = torch.from_numpy(FORMAT_POSITIONS[..., 0] * SIZE + FORMAT_POSITIONS[..., 1]).flatten()
        self.register_buffer("format_index", format_index, persistent=False)  # (30,)
        self.register_buffer("masks", torch.from_numpy(mask_patterns()).float(), persistent=False)  # (8, 21, 21)
        self.format_head = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, MASKS))
        c = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(2, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, config.squeeze, 1), nn.ReLU(),
        )
        self.reader = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.squeeze * SIZE * SIZE, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 10 * config.digits),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        mask_logits = self.format_head(grid.flatten(1)[:, self.format_index])  # (B, 8)
        mask_weights = torch.softmax(mask_logits, dim=1)  # (B, 8)
        mask = torch.einsum("bk,khw->bhw", mask_weights, self.masks).unsqueeze(1)  # (B, 1, 21, 21)
        unmasked = grid + mask - 2 * grid * mask  # soft XOR
        features = self.features(torch.cat([grid, unmasked], dim=1))  # (B, squeeze, 21, 21)
        digit_logits = self.reader(features)  # (B, 10 * digits)
        return torch.cat([digit_logits, mask_logits], dim=1)  # (B, 10 * digits + 8)


def split_logits(logits: torch.Tensor, digits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 10 * digits + 8) -> digit logits (B, digits, 10) and mask logits (B, 8)."""
    return logits[:, : 10 * digits].reshape(-1, digits, 10), logits[:, 10 * digits :]
