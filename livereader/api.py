"""The Python API: :func:`read` reads one image, :class:`Reader` reads a stream; both return :class:`Code` values
(:mod:`livereader.results`).

Images are numpy arrays of shape (H, W, 3) BGR (OpenCV's order), (H, W, 4) BGRA or (H, W) grey, uint8; paths of
image files; bytes of an encoded image file (PNG, JPEG, ...); or PIL images. The shipped models are loaded once,
on first use. The public options are few (``content``, ``effort``, ``soft``, ``fusion``); the reader's thresholds
stay in :class:`livereader.pipeline.ReaderOptions`, for those who must.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from livereader.decode.reader import Model, _default_models, load_model
from livereader.pipeline import ReaderOptions, read_frame
from livereader.results import READ, Code

Image = np.ndarray | str | Path | bytes | bytearray | memoryview | Any  # Any: a PIL image
Models = Model | str | Path | Sequence[Model | str | Path] | None
# effort -> what a still image's read changes in ReaderOptions (see read()); a dict changes those fields of a
# nested options value and keeps its others
EFFORTS: dict[str, dict[str, Any]] = {"fast": {"scout": 2}, "normal": {},
           "thorough": {"budget": 10.0, "max_retries": 64, "max_deblurs": 16, "max_full_pixels": 16_000_000,
                        "motion": {"max_pixels": 1_300_000}}}


def _options(options: ReaderOptions | None, content: str, soft: bool | None) -> ReaderOptions:
    """The reader's options with the public ones applied; ValueError for an unknown ``content`` (from
    :class:`VerifyOptions`' own check)."""
    options = options or ReaderOptions()
    grid = options.grid if soft is None else replace(options.grid, soft=soft)
    return replace(options, grid=grid, verify=replace(options.verify, content=content))


def _models(models: Models) -> tuple[Model, ...]:
    """The models to read with: the shipped ones (None), one loaded model, several, or model file paths."""
    if models is None:
        return _default_models()
    if isinstance(models, (Model, str, Path)):
        models = [models]
    return tuple(m if isinstance(m, Model) else load_model(m) for m in models)


def _pixels(image: Image) -> np.ndarray:
    """An image given in any form :func:`read` takes, as a uint8 array; ValueError for anything else. Files,
    encoded bytes, PIL images and BGRA arrays go through one normalization (:func:`capture.normalized`:
    transparent pixels on white, any bit depth), so one image reads the same in every form."""

    from livereader.live.capture import decode_image, load_image, normalized

    if isinstance(image, (str, Path)):
        decoded = load_image(Path(image))
        if decoded is None:
            raise ValueError(f"not an image file: {image}")
        return decoded
    if isinstance(image, (bytes, bytearray, memoryview)):
        decoded = decode_image(bytes(image))
        if decoded is None:
            raise ValueError("the bytes are not an encoded image OpenCV can decode")
        return decoded
    if hasattr(image, "getbands") and hasattr(image, "convert"):  # a PIL image, without importing PIL
        return _pil_pixels(image)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"an image must be (H, W), (H, W, 3) or (H, W, 4) uint8, not {array.shape} {array.dtype}")
    return normalized(array) if array.ndim == 3 and array.shape[2] == 4 else array


def _pil_pixels(image: Any) -> np.ndarray:
    """A PIL image as the reader's array: grey as grey, anything with transparency on white, 16-bit grey scaled
    to 8 bits (other modes as PIL converts them)."""
    import cv2

    from livereader.live.capture import normalized

    if image.mode in ("I", "I;16"):  # 16-bit grey (PIL holds 16-bit PNGs as 32-bit integers)
        return normalized(np.clip(np.asarray(image), 0, 65535).astype(np.uint16))
    if image.mode not in ("RGB", "RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "HSV", "LAB"):
        return np.asarray(image.convert("L"))
    if "A" in image.getbands() or "transparency" in image.info:
        return normalized(cv2.cvtColor(np.asarray(image.convert("RGBA")), cv2.COLOR_RGBA2BGRA))
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def read(image: Image, *, content: str = "numeric", return_errors: bool = False, effort: str = "normal",
         soft: bool | None = None, models: Models = None, options: ReaderOptions | None = None) -> list[Code]:
    """The codes in one image, searched as a still image, as ``livereader --image`` does: the whole image at
    full resolution, or over ``ReaderOptions.max_full_pixels`` coarse to fine (at a reduced size first, at full
    resolution where evidence asks for it), within ``ReaderOptions.budget``.

    Args:
        image: an array ((H, W, 3) BGR, (H, W, 4) BGRA or (H, W) grey, uint8), the path of an image file, the
            bytes of an encoded image, or a PIL image.
        content: ``"numeric"`` (numbers only, the default) or ``"any"`` (whatever a code holds).
        return_errors: False (the default): the codes that read, as ``zxingcpp.read_barcodes`` returns them;
            True: every located code, also those that did not read (``status`` rejected or unsupported,
            ``error`` saying why).
        effort: ``"normal"`` (a still image's search), ``"fast"`` (a camera frame's: searched at half size
            first, where that finds the codes) or ``"thorough"`` (more time and more retries: a 10 s budget, 64
            refined and 16 deblurred codes, up to 16 MP searched at full resolution, and a frame smeared by motion
            restored at up to 1.3 MP).
        soft: give the CNN soft (grey) grids instead of binarized ones (None: as ``options`` say; off).
        models: a loaded :class:`livereader.decode.reader.Model`, several tried in order, or model file paths;
            the shipped models when None.
        options: the reader's options (:class:`livereader.pipeline.ReaderOptions`); the arguments above
            override theirs.

    Returns:
        One :class:`Code` per code (per located code with ``return_errors``). Raises ``ValueError`` for an image
        that cannot be decoded or an array that is not a uint8 image, and for an unknown ``content`` or
        ``effort``.
    """
    if effort not in EFFORTS:
        raise ValueError(f"effort must be one of {', '.join(EFFORTS)}, not {effort!r}")
    options = _options(options, content, soft)
    changes = {key: replace(getattr(options, key), **value) if isinstance(value, dict) else value
               for key, value in {"scout": 1, **EFFORTS[effort]}.items()}
    options = replace(options, **changes)
    results = read_frame(_pixels(image), _models(models), options)
    return [Code.of(r) for r in results if return_errors or r.status == READ]


class Reader:
    """One stream of frames (a camera, a video): codes tracked from frame to frame, consecutive frames fused
    where one alone does not read, and the search schedule of :class:`livereader.live.stream.StreamReader`.

    Args:
        content, soft, models, options: as for :func:`read`.
        fusion: fuse consecutive frames (on by default, as ``livereader`` does).
        interval: the source's frame interval in seconds (``1 / fps``), to pace the stream to it as ``livereader``
            does: every frame searched whole while that fits the interval, each frame's optional passes within it
            (:class:`livereader.live.stream.StreamOptions`); None: the search schedule alone (and the options'
            ``budget`` per frame).
    """

    def __init__(self, *, content: str = "numeric", fusion: bool = True, soft: bool | None = None,
                 models: Models = None, options: ReaderOptions | None = None, interval: float | None = None):
        from livereader.live.stream import StreamOptions, StreamReader

        reader_options = _options(options, content, soft)  # a wrong content fails here, not at the first frame
        if interval is not None and not interval > 0:
            raise ValueError(f"a frame interval must be positive seconds, not {interval}")
        stream = StreamOptions(fusion=fusion, interval=interval)
        self._stream = StreamReader(_models(models), reader_options, stream)

    def read(self, frame: Image, *, return_errors: bool = False) -> list[Code]:
        """The next frame's codes, each with its ``track`` (the same id in every frame that shows the same code):
        those that read (and, with ``return_errors``, every code located), as :func:`read` gives them; the JSON
        lines of ``livereader`` hold the same codes (with ``return_errors``)."""
        tracked = self._stream.read(_pixels(frame))
        return [Code.of(t.result, t.track) for t in tracked
                if t.result is not None and (return_errors or t.result.status == READ)]

