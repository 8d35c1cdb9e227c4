"""What a decoder measured for one grid (:class:`Evidence`), the bounds a read must meet (:func:`verified`) and
the calibration that turns evidence into a confidence (:class:`Calibration`): shared by both decoders
(:mod:`livereader.decode.decoders`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from livereader.decode.payload import Payload
from livereader.symbol import FormatInfo


@dataclass(frozen=True)
class Evidence:
    """What decoding measured for one grid's best candidate (distances in data modules of 208).

    ``text``: the best candidate (None when there is none), ``payload`` how it is encoded; ``distance``: where
    the candidate's own symbol disagrees with the observed grid; ``gap``: how much farther the next-best
    candidate is (infinite where decoding yields one candidate only); ``format``: the format bits read;
    ``features``: the decoder's calibration features (:attr:`livereader.decode.decoders.Decoder.features`);
    ``foreign``: no candidate, but the codewords decode to a payload of another content than the one asked for
    (a code that no better sampling would make readable).
    """

    text: str | None
    distance: float
    format: FormatInfo
    features: tuple[float, ...]
    gap: float = math.inf
    payload: Payload | None = None
    foreign: bool = False

    @property
    def found(self) -> bool:
        return self.text is not None


def verified(evidence: Evidence, max_distance: float, min_gap: float, max_format_distance: float) -> bool:
    """True when a candidate was found and meets every acceptance bound (the confidence is checked apart)."""
    return (
        evidence.text is not None
        and evidence.format.distance <= max_format_distance
        and evidence.distance <= max_distance
        and evidence.gap >= min_gap
    )


@dataclass(frozen=True)
class Calibration:
    """Logistic map from :attr:`Evidence.features` to the probability that the best candidate is right."""

    weights: tuple[float, ...]
    bias: float

    def confidence(self, evidence: Evidence) -> float:
        if not evidence.found:
            return 0.0
        z = sum(w * f for w, f in zip(self.weights, evidence.features)) + self.bias
        return 1.0 / (1.0 + math.exp(-min(max(z, -50.0), 50.0)))


def fit_calibration(features: np.ndarray, correct: np.ndarray) -> Calibration:
    """Fit the logistic calibration by maximum likelihood (features standardized for the optimizer)."""
    import torch

    mean, std = features.mean(0), features.std(0) + 1e-6
    x = torch.from_numpy((features - mean) / std).float()
    y = torch.from_numpy(correct.astype(np.float32))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 1e-4 * (w**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weights = w.detach().numpy() / std
    bias = float(b.detach()) - float((weights * mean).sum())
    return Calibration(tuple(float(v) for v in weights), bias)
