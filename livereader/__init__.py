"""livereader: a real-time reader for version-1 QR codes that hold numbers, read by a small CNN.

``import livereader`` loads no model and imports no torch: the models are loaded on first use.
"""

from livereader.reader import GridRead, ModelError, decode_grid, load_model, load_models, read_grids

__all__ = ["GridRead", "ModelError", "decode_grid", "load_model", "load_models", "read_grids"]
