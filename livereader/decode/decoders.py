"""The two decoders: what a model's network outputs mean, how they are verified, and how such a network is
trained, calibrated, described and evaluated. A model file names its decoder by ``kind``
(:func:`decoder_for`); nothing else asks which decoder a model has.

* :data:`SIX_DIGIT` (kind ``six-digit``): :class:`livereader.decode.model.GridReader` reads the two 3-digit
  groups of a six-digit level-H number from a grid unmasked with the mask its format bits name; the CNN's best
  numbers and their bit neighbours are re-encoded and the closest verified (:mod:`livereader.decode.verify`).
* :data:`CODEWORD` (kind ``codeword``; model files of the older kind ``numeric`` load as it):
  :class:`livereader.decode.model.CodewordReader` reads the 208 codeword bits of any version-1 symbol, which
  Reed-Solomon decoding and re-encoding verify (:mod:`livereader.decode.codeword`): numbers of any length and
  level, any content with the content option ``any``.

Grids are (N, 21, 21) float32, values in [0, 1], 1 = dark, in the symbol's own orientation.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from livereader.decode import codeword
from livereader.decode.evidence import Calibration, Evidence, fit_calibration
from livereader.decode.verify import LEVEL, VerifyOptions, evaluate, no_candidate, prepare, upright_formats
from livereader.symbol import FormatInfo, unmask

if TYPE_CHECKING:
    import torch

    from livereader.train.augment import AugmentConfig

Network = Callable[[np.ndarray], np.ndarray]  # (N, 21, 21) grids -> (N, ...) outputs of the decoder's method
UNMASKED = "unmasked"  # a six-digit model's input: upright grids with their data mask removed
# the calibration features' names, in the order of :attr:`Evidence.features`
CODEWORD_FEATURES: tuple[str, ...] = ("distance", "capacity_used", "margin", "format_distance")


class Decoder(Protocol):
    """What one kind of model is and how it reads, trains and is judged (the model file's ``kind``)."""

    kind: str  # as model files store it
    name: str  # a model's default name (OUT_DIR/NAME.pt)
    method: str  # the network's method the reader calls (TorchScript)
    features: tuple[str, ...]  # the calibration features, in order
    payload: str  # model card: what it reads
    intended_use: str  # model card
    limits: str  # model card
    suites: tuple[str, ...]  # the evaluations of :mod:`livereader.train.evaluate` that measure it
    reads_any: bool  # reads any content (``--content any``): a confidence for it is fitted (``calibration_any``)

    def output_shape(self, metadata: dict) -> tuple[int, ...]:
        """The shape of one grid's output of ``method``."""
        ...

    def metadata(self) -> dict:
        """What a model file of this kind stores besides its name, kind, configuration and calibration."""
        ...

    def check(self, module: Any, metadata: dict) -> None:
        """ValueError when a loaded TorchScript module and its metadata do not fit this decoder."""
        ...

    def evidence(self, network: Network, grids: np.ndarray, options: VerifyOptions,
                 batch: int = 4096) -> list[Evidence]:
        """The evidence for (N, 21, 21) checked grids, the network run ``batch`` grids at a time."""
        ...

    def bounds(self, options: VerifyOptions) -> tuple[float, float]:
        """(max distance, min gap) a verified candidate must meet."""
        ...

    def network(self) -> torch.nn.Module:
        """A new eager network to train (its ``config`` has ``to_dict``)."""
        ...

    def training_data(self, args: argparse.Namespace) -> Any:
        """What :meth:`batch` draws from (made once per training run)."""
        ...

    def batch(self, data: Any, size: int, rng: np.random.Generator, args: argparse.Namespace) -> Any:
        """One training batch of clean grids with their targets."""
        ...

    def loss(self, net: torch.nn.Module, batch: Any, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """The training loss of a batch, augmented with ``gen``."""
        ...

    def calibrate(self, net: torch.nn.Module, data: Any, size: int, seed: int, rng: np.random.Generator,
                  gen: torch.Generator, args: argparse.Namespace) -> dict:
        """The model file's calibration entries (``calibration``, and ``calibration_any`` where there is one)."""
        ...

    def card_data(self, args: argparse.Namespace, data: Any) -> dict:
        """The model card's words on the training data."""
        ...

    def augment(self) -> AugmentConfig:
        """The training augmentation."""
        ...


def _outputs(network: Network, grids: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """The network's outputs for (N, 21, 21) grids, run on ``batch`` grids at a time."""
    for start in range(0, len(grids), batch):
        yield from network(grids[start : start + batch])


def _prepared(grids: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, FormatInfo]]]:
    """(N, 21, 21) grids -> the upright grids (the network's input), and each one normalized with its format
    (:func:`verify.prepare`; for all 0/1 grids at once by :func:`verify.upright_formats`: such a grid normalized
    is the upright one)."""
    grids = grids.astype(np.float32)
    binary, flipped, formats = upright_formats(grids)
    uprights = np.where(flipped[:, None, None], 1 - grids, grids)
    prepared = [(upright, fmt) for upright, fmt in zip(uprights, formats)]
    for i in np.flatnonzero(~binary).tolist():  # soft grids: normalized by their own levels
        upright, normalized, fmt = prepare(grids[i])
        uprights[i], prepared[i] = upright, (normalized, fmt)
    return uprights, prepared


def _calibration_entry(calibration: Calibration, features: tuple[str, ...], **extra: Any) -> dict:
    return {"weights": list(calibration.weights), "bias": calibration.bias, "features": list(features), **extra}


def eager(method: Callable[[torch.Tensor], torch.Tensor]) -> Network:
    """A network's ``method`` (an eager module's) as a function of (N, 21, 21) numpy grids, without gradients."""
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return method(torch.from_numpy(batch.astype(np.float32))[:, None]).numpy()

    return run


class SixDigitDecoder:
    kind, name, method = "six-digit", "default", "read"
    features: tuple[str, ...] = ("distance", "gap", "log_prob", "format_distance")
    payload = "six decimal digits, version 1, error correction H"
    intended_use = ("Reading six-digit numbers from version-1 level-H QR codes sampled by livereader's vision "
                    "pipeline (21x21 grids, 1 = dark); every read is verified by re-encoding.")
    limits = ("Only six-digit numbers at level H; other codes are rejected, never read as a number. Trained "
              "on synthetic grids (qrcode, augmented), measured on held-out payloads only; real-camera "
              "accuracy depends on the vision pipeline's sampling.")
    suites: tuple[str, ...] = ("six-digit",)
    reads_any = False

    def output_shape(self, metadata: dict) -> tuple[int, ...]:
        return int(metadata["config"]["digits"]) // 3, 1000

    def metadata(self) -> dict:
        return {"input": UNMASKED}

    def check(self, module: Any, metadata: dict) -> None:
        if not hasattr(module, self.method) or metadata.get("input") != UNMASKED:
            raise ValueError("reads masked grids: exported by an older livereader, train it again")

    def evidence(self, network: Network, grids: np.ndarray, options: VerifyOptions,
                 batch: int = 4096) -> list[Evidence]:
        """Each grid turned upright, the CNN run on those whose format bits name level H (no other can verify),
        unmasked with the mask that they name; its best numbers verified (:func:`verify.evaluate`)."""
        uprights, prepared = _prepared(grids)
        chosen = [i for i, (_, fmt) in enumerate(prepared) if fmt.level == LEVEL]
        unmasked = unmask(uprights[chosen], [prepared[i][1].mask for i in chosen])
        evidence = {}
        for i, log_probs in zip(chosen, _outputs(network, unmasked, batch)):  # batch by batch
            grid, fmt = prepared[i]
            evidence[i] = evaluate(grid, log_probs, options, fmt)
        return [evidence[i] if i in evidence else no_candidate(fmt) for i, (_, fmt) in enumerate(prepared)]

    def bounds(self, options: VerifyOptions) -> tuple[float, float]:
        return options.max_distance, options.min_gap

    def network(self) -> torch.nn.Module:
        from livereader.decode.model import GridReader, ModelConfig

        return GridReader(ModelConfig())

    def training_data(self, args: argparse.Namespace) -> Any:
        """(qrcode's own masks, given masks) for the training numbers: never a held-out one."""
        from livereader.train.data import NUMBERS, GridSet, encode_numbers, is_held_out, six_digit_grids

        if args.numbers >= NUMBERS:
            chosen, given = six_digit_grids(False, args.workers), six_digit_grids(True, args.workers)
            keep = np.array([not is_held_out("%06d" % n) for n in range(NUMBERS)])
            return (GridSet(chosen.numbers[keep], chosen.packed[keep], chosen.masks[keep]),
                    GridSet(given.numbers[keep], given.packed[keep], given.masks[keep]))
        train = np.array([n for n in range(NUMBERS * 2 // 100) if not is_held_out("%06d" % n)][: args.numbers])
        if len(train) < args.numbers:  # the first 2% hold ~19k training numbers, plenty for smoke runs
            train = np.array([n for n in range(NUMBERS) if not is_held_out("%06d" % n)][: args.numbers])
        return encode_numbers(train, False, args.workers), encode_numbers(train, True, args.workers)

    def batch(self, data: Any, size: int, rng: np.random.Generator, args: argparse.Namespace) -> Any:
        """Clean grids with their numbers and masks; 60% qrcode's masks, 40% given masks."""
        from livereader.train.data import unpack

        from_given = rng.random(size) < 0.4
        rows = rng.integers(len(data[0].numbers), size=size)
        packed = np.where(from_given[:, None], data[1].packed[rows], data[0].packed[rows])
        masks = np.where(from_given, data[1].masks[rows], data[0].masks[rows])
        return unpack(packed), data[0].numbers[rows], masks

    def loss(self, net: torch.nn.Module, batch: Any, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """Negative log likelihood of each group's value under the bits' probabilities (see model.py), for
        augmented grids unmasked with their own masks (the reader unmasks with the mask that the format bits
        name: the same one wherever a read can verify)."""
        import torch
        import torch.nn.functional as F

        from livereader.decode.model import GROUP_BITS, group_log_probs
        from livereader.train.augment import augment

        grids, numbers, masks = batch
        inner: Any = getattr(net, "module", net)  # the model, also under DistributedDataParallel
        value_bits = inner.value_bits  # its buffer
        groups = torch.from_numpy(np.stack([numbers // 1000, numbers % 1000], axis=1)).to(device)  # (B, 2)
        seen = augment(torch.from_numpy(grids), self.augment(), gen)[:, 0].numpy()
        x = torch.from_numpy(unmask(seen, masks))[:, None].to(device)
        bit_logits = net(x).reshape(len(x), -1, GROUP_BITS)
        return F.nll_loss(group_log_probs(bit_logits, value_bits).reshape(-1, 1000), groups.reshape(-1))

    def calibrate(self, net: torch.nn.Module, data: Any, size: int, seed: int, rng: np.random.Generator,
                  gen: torch.Generator, args: argparse.Namespace) -> dict:
        """Fit the confidence on augmented training numbers and foreign codes (never held-out numbers)."""
        import torch

        from livereader.train.augment import CALIBRATION_AUGMENT, augment
        from livereader.train.data import foreign_codes

        grids, truth, _ = self.batch(data, size, rng, args)
        soft = augment(torch.from_numpy(grids), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
        _, foreign = foreign_codes(size // 10, seed=seed + 1)
        module: Any = net
        evidence = self.evidence(eager(module.read), np.concatenate([soft, foreign]), VerifyOptions())
        wanted = ["%06d" % n for n in truth] + [None] * len(foreign)
        correct = np.array([e.text is not None and e.text == t for e, t in zip(evidence, wanted)])
        calibration = fit_calibration(np.array([e.features for e in evidence]), correct)
        return {"calibration": _calibration_entry(calibration, self.features)}

    def card_data(self, args: argparse.Namespace, data: Any) -> dict:
        return {"source": "qrcode grids of '%06d' % n, version 1, level H",
                "training_numbers": int(len(data[0].numbers)),
                "held_out": "sha256(payload)[0] < 13, never trained on",
                "masks": "60% qrcode's own choice, 40% a random given mask per number"}

    def augment(self) -> AugmentConfig:
        from livereader.train.augment import AugmentConfig

        return AugmentConfig()


class CodewordDecoder:
    kind, name, method = "codeword", "numeric", "forward"
    payload = "numeric, 1-41 digits at L, 1-34 at M, 1-27 at Q, 1-17 at H, version 1"
    features = CODEWORD_FEATURES
    intended_use = ("Reading the codeword bits of any version-1 QR code sampled by livereader's vision "
                    "pipeline; numeric payloads of every length and level by default, any content with "
                    "--content any; every read is verified by Reed-Solomon decoding and re-encoding.")
    limits = ("Version 1 only. Trained on numeric payloads; other content reads because the network reads "
              "bits, verified the same way. The general confidence is close to 1 for every verified read: "
              "its damaged calibration grids held no wrongly decoded payload.")
    suites: tuple[str, ...] = ("numeric", "any")
    reads_any = True

    def output_shape(self, metadata: dict) -> tuple[int, ...]:
        return (codeword.FORMATS + 8 * codeword.CODEWORDS,)

    def metadata(self) -> dict:
        return {}

    def check(self, module: Any, metadata: dict) -> None:
        pass  # its output shape, checked by the loader, is all it needs

    def evidence(self, network: Network, grids: np.ndarray, options: VerifyOptions,
                 batch: int = 4096) -> list[Evidence]:
        """Each grid turned upright, the codeword CNN run on it, its bits decoded (:func:`codeword.decode`)."""
        uprights, prepared = _prepared(grids)
        return [codeword.decode(grid, fmt, logits[codeword.FORMATS :], options.codeword, options.content)
                for (grid, fmt), logits in zip(prepared, _outputs(network, uprights, batch))]

    def bounds(self, options: VerifyOptions) -> tuple[float, float]:
        return options.codeword.max_distance, 0.0

    def network(self) -> torch.nn.Module:
        from livereader.decode.model import CodewordConfig, CodewordReader

        return CodewordReader(CodewordConfig())

    def training_data(self, args: argparse.Namespace) -> Any:
        return None  # fresh codes for every batch

    def batch(self, data: Any, size: int, rng: np.random.Generator, args: argparse.Namespace) -> Any:
        from livereader.train.data import numeric_codes

        return numeric_codes(size, rng, False, args.chosen_share)

    def loss(self, net: torch.nn.Module, batch: Any, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """Cross-entropy of the codeword bits and of the (level, mask) pair."""
        import torch
        import torch.nn.functional as F

        from livereader.train.augment import augment

        x = augment(torch.from_numpy(batch.grids), self.augment(), gen).to(device)
        bits = torch.from_numpy(codeword.codeword_bits(batch.grids, batch.masks)).float().to(device)  # (B, 208)
        formats = torch.from_numpy(batch.levels * 8 + batch.masks).to(device)  # (B,)
        output = net(x)
        bit_loss = F.binary_cross_entropy_with_logits(output[:, codeword.FORMATS :], bits)
        return bit_loss + 0.2 * F.cross_entropy(output[:, : codeword.FORMATS], formats)

    def calibrate(self, net: torch.nn.Module, data: Any, size: int, seed: int, rng: np.random.Generator,
                  gen: torch.Generator, args: argparse.Namespace) -> dict:
        """Fit the confidence on augmented training payloads and codes that hold text (never held-out payloads),
        and the confidence with the content option ``any`` (:func:`calibrate_any`)."""
        import torch

        from livereader.train.augment import CALIBRATION_AUGMENT, augment
        from livereader.train.data import numeric_codes, text_codes

        codes = numeric_codes(size, rng, held_out=False, chosen_share=args.chosen_share)
        soft = augment(torch.from_numpy(codes.grids), CALIBRATION_AUGMENT, gen)[:, 0].numpy()
        _, foreign = text_codes(size // 10, seed=seed + 1)
        evidence = self.evidence(eager(net), np.concatenate([soft, foreign]), VerifyOptions())
        calibration = _fit_found(evidence, codes.payloads + [None] * len(foreign))[0]
        general, seen = calibrate_any(eager(net), size, seed + 3)
        return {"calibration": _calibration_entry(calibration, self.features),
                "calibration_any": _calibration_entry(general, self.features, fitted_on=seen)}

    def card_data(self, args: argparse.Namespace, data: Any) -> dict:
        return {"source": "fresh qrcode grids for every batch: level uniform, then length uniform over all that "
                          "fit, random digits",
                "held_out": "sha256(payload)[0] < 13, never trained on",
                "masks": f"{args.chosen_share:.0%} qrcode's own choice, the rest a random given mask",
                "grids_seen": args.steps * args.batch}

    def augment(self) -> AugmentConfig:
        # Fewer wrong modules than for the six-digit model, which learns to see through them; the codeword
        # reader cannot (an isolated wrong module looks right), and Reed-Solomon decoding corrects them.
        from livereader.train.augment import AugmentConfig

        return AugmentConfig(flipped=0.3, max_flips=10)


def _fit_found(evidence: list[Evidence], truth: Sequence[str | None]) -> tuple[Calibration, np.ndarray, np.ndarray]:
    """A calibration fitted on the grids that decode (right or wrong; all of them where none decodes, as a
    smoke run may), and which decoded and which rightly."""
    correct = np.array([e.text == t for e, t in zip(evidence, truth)])
    found = np.array([e.found for e in evidence])
    found = found if found.any() else ~found
    return fit_calibration(np.array([e.features for e in evidence])[found], correct[found]), found, correct


def calibrate_any(network: Network, size: int, seed: int) -> tuple[Calibration, dict]:
    """Fit a codeword model's confidence with the content option ``any``: on training payloads of every mode
    (never held-out ones), half augmented as for calibration (``CALIBRATION_AUGMENT``), half with 0-50 wrong
    modules (up to far beyond what Reed-Solomon corrects), on every grid that decodes (right or wrong).
    Returns the calibration and how many grids decoded, and wrongly."""
    import torch

    from livereader.train.augment import CALIBRATION_AUGMENT, augment, flip_modules
    from livereader.train.data import general_codes

    codes = general_codes(size, np.random.default_rng(seed), held_out=False)
    gen = torch.Generator().manual_seed(seed)
    grids = torch.from_numpy(codes.grids)
    damaged = np.concatenate([augment(grids, CALIBRATION_AUGMENT, gen)[:, 0].numpy(),
                              flip_modules(grids, torch.randint(0, 51, (len(grids),), generator=gen), gen).numpy()])
    evidence = CODEWORD.evidence(network, damaged.astype(np.float32), VerifyOptions(content="any"))
    calibration, found, correct = _fit_found(evidence, list(codes.payloads) * 2)
    return calibration, {"grids": len(evidence), "decoded": int(found.sum()),
                    "decoded_wrong": int((found & ~correct).sum())}


SIX_DIGIT: Decoder = SixDigitDecoder()
CODEWORD: Decoder = CodewordDecoder()
DECODERS: dict[str, Decoder] = {d.kind: d for d in (SIX_DIGIT, CODEWORD)}
_OLDER_KINDS = {"numeric": CODEWORD}  # model files written before the codeword decoder had its name


def decoder_for(kind: str) -> Decoder:
    """The decoder of a model file's ``kind``; ValueError for a kind no decoder has."""
    decoder = DECODERS.get(kind) or _OLDER_KINDS.get(kind)
    if decoder is None:
        raise ValueError(f"unknown model kind {kind!r}")
    return decoder
