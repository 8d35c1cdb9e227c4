"""Batched augmentation of clean grids into what the camera pipeline hands over (torch only).

Each grid is, at random: left clean; or rendered at ``PIXELS`` px per module with a quiet zone, blurred, and
resampled at sub-module-misregistered centres (soft values); given a contrast range, uneven light and noise;
binarized with a varied threshold or left soft; and finally given ``k`` wrong modules anywhere in the symbol.
Grids follow the convention of :mod:`livereader.symbol` (1 = dark); output values are in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from livereader.symbol import SIZE

PIXELS = 3  # render resolution, pixels per module
QUIET = 2  # modules of light margin rendered around the symbol


@dataclass(frozen=True)
class AugmentConfig:
    clean: float = 0.15  # share of grids left exactly as encoded
    render: float = 0.6  # share of the others rendered, blurred and resampled
    max_blur: float = 0.75  # largest Gaussian blur sigma, in modules
    max_shift: float = 0.3  # largest misregistration of the sampling grid, in modules
    max_rotation: float = 3.0  # largest rotation of the sampling grid, degrees
    max_scale: float = 0.03  # largest relative scale error of the sampling grid
    max_noise: float = 0.2  # largest noise standard deviation (0-1 scale)
    binarize: float = 0.6  # share of the others binarized with a varied threshold
    flipped: float = 0.7  # share of the others given wrong modules
    max_flips: int = 30  # largest number of wrong modules

    def to_dict(self) -> dict:
        return asdict(self)


# Harder than training augmentation, so that calibration and its check see the whole range of confidences.
CALIBRATION_AUGMENT = AugmentConfig(clean=0.1, max_flips=45, max_blur=0.9, max_noise=0.3)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _render(grids: torch.Tensor, config: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Blur and resample (B, 21, 21) grids at misregistered module centres -> (B, 21, 21) soft grids."""
    b = len(grids)
    image = F.pad(grids, (QUIET, QUIET, QUIET, QUIET)).repeat_interleave(PIXELS, 1).repeat_interleave(PIXELS, 2)
    sigma = _uniform(b, 0.05, config.max_blur, gen) * PIXELS  # (B,) pixels
    # Separable blur as two batched products with one Gaussian matrix per grid: a grouped convolution with
    # a kernel per grid was 3x slower on CPU.
    pixels = torch.arange(image.shape[1])
    weights = torch.exp(-0.5 * (pixels[None, :].float() / sigma[:, None]) ** 2)  # (B, H) by distance
    kernel = weights[:, (pixels[:, None] - pixels[None, :]).abs()]  # (B, H, H)
    kernel = kernel / kernel.sum(2, keepdim=True)  # rows sum to 1
    image = kernel @ image @ kernel.transpose(1, 2)  # (B, H, W)
    span = SIZE + 2 * QUIET
    angle = torch.deg2rad(_uniform(b, -config.max_rotation, config.max_rotation, gen))
    scale = (SIZE / span) * (1 + _uniform(b, -config.max_scale, config.max_scale, gen))
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, :, 2] = _uniform(2 * b, -config.max_shift, config.max_shift, gen).reshape(b, 2) * 2 / span
    points = F.affine_grid(theta, [b, 1, SIZE, SIZE], align_corners=False)
    return F.grid_sample(image[:, None], points, align_corners=False, padding_mode="border")[:, 0]


def flip_modules(grids: torch.Tensor, counts: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Make ``counts[i]`` distinct random modules of grid i wrong (x -> 1 - x)."""
    order = torch.rand(len(grids), SIZE * SIZE, generator=gen).argsort(1)
    wrong = (order < counts[:, None]).reshape(-1, SIZE, SIZE)
    return torch.where(wrong, 1 - grids, grids)


def augment(grids: torch.Tensor, config: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 21, 21) clean 0/1 grids -> (B, 1, 21, 21) float augmented grids in [0, 1]."""
    x = grids.float()
    b = len(x)
    clean = torch.rand(b, generator=gen) < config.clean
    rendered = (torch.rand(b, generator=gen) < config.render) & ~clean
    if rendered.any():
        x[rendered] = _render(x[rendered], config, gen)
    # Contrast range, uneven light (a linear ramp) and noise.
    light = _uniform(b, 0.0, 0.35, gen)[:, None, None]
    dark = _uniform(b, 0.65, 1.0, gen)[:, None, None]
    ramp = torch.linspace(-1, 1, SIZE)
    slope = _uniform(2 * b, -0.12, 0.12, gen).reshape(b, 2, 1, 1)
    light_field = slope[:, 0] * ramp[None, :, None] + slope[:, 1] * ramp[None, None, :]
    noise = torch.randn(b, SIZE, SIZE, generator=gen) * _uniform(b, 0, config.max_noise, gen)[:, None, None]
    degraded = light + (dark - light) * x + light_field + noise
    binarize = torch.rand(b, generator=gen) < config.binarize
    threshold = light + (dark - light) * _uniform(b, 0.35, 0.65, gen)[:, None, None]
    degraded = torch.where(binarize[:, None, None], (degraded > threshold).float(), degraded.clamp(0, 1))
    x = torch.where(clean[:, None, None], x, degraded)
    flipped = (torch.rand(b, generator=gen) < config.flipped) & ~clean
    counts = torch.where(flipped, torch.randint(1, config.max_flips + 1, (b,), generator=gen), 0)
    return flip_modules(x, counts, gen)[:, None]
