"""livereader: a real-time reader for version-1 QR codes, read by a small CNN and verified.

``import livereader`` loads no model and imports no torch: the models are loaded on first use.

    >>> import livereader
    >>> for code in livereader.read("photo.jpg"):
    ...     print(code.text, code.confidence, code.corners)
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (cheap imports)
if TYPE_CHECKING:
    from typing import Any

_API = {"read": "api", "Reader": "api", "Code": "results", "Status": "results", "StructuredAppend": "decode.payload",
        "ReaderOptions": "pipeline", "GridRead": "decode.reader", "ModelError": "decode.reader",
        "decode_grid": "decode.reader", "load_model": "decode.reader", "load_models": "decode.reader",
        "read_grids": "decode.reader"}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The API, imported on first use: ``livereader.cli`` starts by importing this package, and the shorter its
    imports, the shorter the moment in which Ctrl-C can only end it with a traceback."""
    if name == "__version__":  # the installed package's metadata: one source, pyproject.toml
        from importlib.metadata import version

        return version("livereader")
    if name in _API:
        from importlib import import_module

        return getattr(import_module(f"livereader.{_API[name]}"), name)
    raise AttributeError(f"module 'livereader' has no attribute {name!r}")
