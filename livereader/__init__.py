"""livereader: a real-time reader for version-1 QR codes that hold numbers, read by a small CNN.

``import livereader`` loads no model and imports no torch: the models are loaded on first use.
"""

__all__ = ["GridRead", "ModelError", "decode_grid", "load_model", "load_models", "read_grids"]


def __getattr__(name: str):
    """The API from :mod:`livereader.reader`, imported on first use: ``livereader.cli`` starts by importing this
    package, and the shorter its imports, the shorter the moment in which Ctrl-C can only end it with a
    traceback."""
    if name in __all__:
        from livereader import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'livereader' has no attribute {name!r}")
