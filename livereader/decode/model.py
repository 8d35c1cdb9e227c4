"""The CNNs that read a 21x21 grid: both networks in one file.

:class:`GridReader` reads six-digit level-H numbers whole; :class:`CodewordReader` reads the codeword bits of
numeric codes of any length and level, which :mod:`livereader.decode.codeword` decodes.

GridReader input: ``(B, 1, 21, 21)`` float grids, 1 = dark, values in ``[0, 1]`` (soft or binarized), upright and
with their data mask removed (:func:`livereader.symbol.unmask`, with the mask that the format bits name).
``forward`` (training): ``(B, 10 * groups)``, the logits of the 10 bits of each 3-digit group (``groups =
digits // 3``, least significant bit first). ``read`` (the reader; exported with the TorchScript file): ``(B,
groups, 1000)``, the log probabilities of each group's value, computed in the graph (each operation the reader
runs outside it costs more than the arithmetic).

Why this shape: the data mask is a global property of the symbol, fixed by the
15 format bits beside the finder patterns, so a purely local CNN cannot unmask a module. The reader reads the
format bits as every QR decoder does (nearest valid format word, :func:`livereader.symbol.read_format`; the
verification needs them anyway) and removes the mask before the network sees the grid. A 3x3 convolution then
sees the unmasked modules (blur and misregistration are local) and a 1x1 convolution squeezes its features;
a fully connected layer reads the 20 data bits from where their modules are, which global pooling would throw
away. The symbol stores each 3-digit group as a 10-bit binary number, so the bits are what the network reads;
a fixed layer turns the bits' probabilities into each group's distribution over 0-999. (Reading digits
directly left the last digit of each group, ``value % 10`` of the bits, 55% right.) One 3x3 layer, not two: the
fully connected layer already combines neighbours, and a second 3x3 layer cost 35% of the batched speed on
2 CPU cores. The network is small on purpose: in a camera frame its call is a sixth of the time, and its fully
connected weights (0.45 MB) stay in a CPU core's cache, where an earlier network with a learnt mask head and
four times the weights took 0.2 ms more per frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import torch
from torch import nn

from livereader.decode.codeword import FORMATS, PLACEMENT
from livereader.symbol import FIXED_REGION, FORMAT_POSITIONS, SIZE, fixed_modules, mask_patterns

GROUP_BITS = 10


@dataclass(frozen=True)
class ModelConfig:
    digits: int = 6  # digits of the payload the network reads
    channels: int = 16  # convolution channels
    squeeze: int = 2  # channels per module kept for the fully connected layer
    hidden: int = 128  # width of the fully connected layer

    def to_dict(self) -> dict:
        return asdict(self)


class GridReader(nn.Module):
    if TYPE_CHECKING:  # the buffers' types, for type checkers only: TorchScript reads class annotations as types
        value_bits: torch.Tensor  # (1000, GROUP_BITS): see value_bits()

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.digits % 3:
            raise ValueError("digits must be a multiple of 3 (groups of three digits)")
        self.config = config
        self.groups = config.digits // 3
        self.register_buffer("value_bits", value_bits().clone(), persistent=False)
        c = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, config.squeeze, 1), nn.ReLU(),
        )
        self.reader = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.squeeze * SIZE * SIZE, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, GROUP_BITS * self.groups),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.reader(self.features(grid))  # (B, squeeze, 21, 21) features -> (B, 10 * G) bits, LSB first

    @torch.jit.export
    def read(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, 1, 21, 21) unmasked grids -> (B, G, 1000) log probabilities of each group's value."""
        bit_logits = self.forward(grid).reshape(-1, self.groups, self.value_bits.shape[1])  # (B, G, GROUP_BITS)
        return group_log_probs(bit_logits, self.value_bits)


@lru_cache(maxsize=1)
def value_bits() -> torch.Tensor:
    """(1000, 10) float: the bits of each group value 0-999, least significant first (shared: do not modify)."""
    return ((torch.arange(1000)[:, None] >> torch.arange(GROUP_BITS)) & 1).float()


def group_log_probs(bit_logits: torch.Tensor, value_bits: torch.Tensor) -> torch.Tensor:
    """(..., 10) independent bit logits -> (..., 1000) log probabilities of the group values 0-999.

    log P(v) = sum_i [b_i(v) log s(x_i) + (1 - b_i(v)) log s(-x_i)] = b(v) . x + const, as
    log s(x) - log s(-x) = x; normalizing over 0-999 drops the constant and the values 1000-1023.
    """
    return torch.log_softmax(bit_logits @ value_bits.T, dim=-1)


@dataclass(frozen=True)
class CodewordConfig:
    channels: int = 32  # convolution channels

    def to_dict(self) -> dict:
        return asdict(self)


class CodewordReader(nn.Module):
    """Reads the 208 codeword bits of any version-1 symbol, unmasked, in codeword-stream order.

    Input: ``(B, 1, 21, 21)`` grids as for :class:`GridReader`. Output: ``(B, 32 + 208)``: the logits of the 32
    (level, mask) pairs, then the logit that each codeword bit is 1 (order of ``codeword.PLACEMENT``).

    Why this shape: the payload of a numeric code of any length is protected by Reed-Solomon coding, which a
    small network cannot learn (a multilayer perceptron reached 80% on 1-17 digits), while reading each
    module through blur, noise and uneven light is what a CNN does well and what decides whether Reed-Solomon
    decoding succeeds. So the network estimates each module's darkness from its 5x5 neighbourhood (two 3x3
    convolutions; the grid is also given stretched by its function patterns' dark and light levels), and
    unmasks it with the mask distribution read from the format modules:
    P(bit) = P(dark) (1 - P(flip)) + (1 - P(dark)) P(flip). Its soft bits tell the decoder which codewords to
    erase. It is translation-invariant apart from the mask, so it cannot learn a bias towards any payload.
    """

    if TYPE_CHECKING:  # the buffers' types, for type checkers only: TorchScript reads class annotations as types
        format_index: torch.Tensor  # (30,) format modules, indices into a flattened (21, 21) grid
        masks: torch.Tensor  # (8, 21, 21)
        known_dark: torch.Tensor  # fixed modules that are dark, indices as format_index
        known_light: torch.Tensor  # ... and light
        placement: torch.Tensor  # (208,) codeword bits in codeword-stream order, indices as format_index

    def __init__(self, config: CodewordConfig):
        super().__init__()
        self.config = config
        format_index = torch.from_numpy(FORMAT_POSITIONS[..., 0] * SIZE + FORMAT_POSITIONS[..., 1]).flatten()
        self.register_buffer("format_index", format_index, persistent=False)  # (30,)
        self.register_buffer("masks", torch.from_numpy(mask_patterns()).float(), persistent=False)  # (8, 21, 21)
        fixed = torch.from_numpy(FIXED_REGION.flatten().nonzero()[0])
        known = torch.from_numpy(fixed_modules().astype(bool))
        self.register_buffer("known_dark", fixed[known], persistent=False)
        self.register_buffer("known_light", fixed[~known], persistent=False)
        self.register_buffer("placement", torch.from_numpy(PLACEMENT[:, 0] * SIZE + PLACEMENT[:, 1]),
                             persistent=False)  # (208,)
        self.format_head = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, FORMATS))
        c = config.channels
        self.modules_head = nn.Sequential(
            nn.Conv2d(2, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 1, 1),
        )

    def dark_logits(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, 1, 21, 21) grids -> (B, 21, 21) logits that each module is dark (before unmasking)."""
        flat = grid.flatten(1)
        dark, light = flat[:, self.known_dark].mean(1), flat[:, self.known_light].mean(1)  # (B,)
        stretched = (grid - light[:, None, None, None]) / (dark - light).clamp_min(0.1)[:, None, None, None]
        return self.modules_head(torch.cat([grid, stretched], dim=1))[:, 0]

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        format_logits = self.format_head(grid.flatten(1)[:, self.format_index])  # (B, 32)
        mask_weights = torch.softmax(format_logits, dim=1).reshape(-1, 4, 8).sum(1)  # (B, 8): summed over levels
        flip = torch.einsum("bk,khw->bhw", mask_weights, self.masks).clamp(1e-6, 1 - 1e-6)  # (B, 21, 21)
        dark = self.dark_logits(grid)  # (B, 21, 21)
        log_dark, log_light = nn.functional.logsigmoid(dark), nn.functional.logsigmoid(-dark)
        log_flip, log_keep = flip.log(), (1 - flip).log()
        one = torch.logaddexp(log_dark + log_keep, log_light + log_flip)
        zero = torch.logaddexp(log_light + log_keep, log_dark + log_flip)
        bits = (one - zero).flatten(1)[:, self.placement]  # (B, 208)
        return torch.cat([format_logits, bits], dim=1)
