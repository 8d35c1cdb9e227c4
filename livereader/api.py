"""The Python API for frames: :func:`read` reads one image, :class:`Reader` reads a stream.

Images are numpy arrays of shape (H, W, 3) BGR (OpenCV's order) or (H, W) grey, uint8, or paths of image files.
Results are :class:`livereader.pipeline.CodeResult` values (``Code``): ``status`` (a :class:`Status`),
``text``, ``confidence``, ``corners`` (tl, tr, br, bl of the symbol, (x, y) pixels), ``content``, ``ec_level``.
The shipped models are loaded once, on first use.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from livereader.decode.reader import Model, _default_models, load_model
from livereader.decode.verify import VerifyOptions
from livereader.pipeline import ReaderOptions, read_frame
from livereader.results import CodeResult

Code = CodeResult


def _options(options: ReaderOptions | None, content: str) -> ReaderOptions:
    options = options or ReaderOptions()
    return replace(options, verify=replace(options.verify, content=content))


def _models(models) -> tuple[Model, ...]:
    """The models to read with: the shipped ones (None), one loaded model, several, or model file paths."""
    if models is None:
        return _default_models()
    if isinstance(models, (Model, str, Path)):
        models = [models]
    return tuple(m if isinstance(m, Model) else load_model(m) for m in models)


def read(image: np.ndarray | str | Path, *, content: str = "numeric", models=None,
         options: ReaderOptions | None = None) -> list[Code]:
    """Every code located in one image, read or not, searched as a still image, as ``livereader --image`` does: the
    whole image at full resolution, or over ``ReaderOptions.max_full_pixels`` coarse to fine (at a reduced size
    first, at full resolution where evidence asks for it), within ``ReaderOptions.budget``.

    Args:
        image: (H, W, 3) BGR or (H, W) grey uint8 array, or the path of an image file.
        content: ``"numeric"`` (numbers only, the default) or ``"any"`` (whatever a code holds).
        models: a loaded :class:`livereader.decode.reader.Model`, several tried in order, or model file paths; the
            shipped models when None.
        options: the reader's options (:class:`livereader.pipeline.ReaderOptions`); ``content`` overrides theirs.

    Returns:
        One :class:`Code` per located code. Raises ``ValueError`` for an image file that cannot be decoded or
        an array that is not a uint8 image.
    """
    if isinstance(image, (str, Path)):
        from livereader.live.capture import load_image

        path = image
        image = load_image(Path(path))
        if image is None:
            raise ValueError(f"not an image file: {path}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"an image must be (H, W) or (H, W, 3) uint8, not {image.shape} {image.dtype}")
    return read_frame(image, _models(models), replace(_options(options, content), scout=1))


class Reader:
    """One stream of frames (a camera, a video): codes tracked from frame to frame, consecutive frames fused
    where one alone does not read, and the search schedule of :class:`livereader.live.stream.StreamReader`.

    Args:
        content: ``"numeric"`` or ``"any"``, as for :func:`read`.
        fusion: fuse consecutive frames (on by default, as ``livereader`` does).
        models, options: as for :func:`read`.
        interval: the source's frame interval in seconds (``1 / fps``), to pace the stream to it as ``livereader``
            does: every frame searched whole while that fits the interval, each frame's optional passes within it
            (:class:`livereader.live.stream.StreamOptions`); None: the search schedule alone (and the options'
            ``budget`` per frame).
    """

    def __init__(self, *, content: str = "numeric", fusion: bool = True, models=None,
                 options: ReaderOptions | None = None, interval: float | None = None):
        from livereader.live.stream import StreamOptions, StreamReader

        VerifyOptions(content=content)  # a wrong content fails here, not at the first frame
        if interval is not None and not interval > 0:
            raise ValueError(f"a frame interval must be positive seconds, not {interval}")
        stream = StreamOptions(fusion=fusion, interval=interval)
        self._stream = StreamReader(_models(models), _options(options, content), stream)

    def read(self, frame: np.ndarray) -> list:
        """The next frame's codes as :class:`livereader.live.track.TrackedCode` values: ``track`` (an id, the same
        in every frame that shows the same code), ``result`` (what this frame located, or None for a code held
        from earlier frames) and ``shown`` (the :class:`Code` to show: the last read of its track)."""
        return self._stream.read(np.asarray(frame))
