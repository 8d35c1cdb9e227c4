"""``livereader``: read numbers from version-1 QR codes.

Sources so far: ``--grid FILE...``, text files that each hold one 21x21 grid, one line per row, with ``1`` or
``#`` for a dark module and ``0`` or ``.`` for a light one. One JSON line per grid goes to stdout. Exit codes:
0 ran, 1 error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from livereader.symbol import SIZE

_DARK, _LIGHT = "1#", "0."


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader", description="Read numbers from version-1 QR codes.")
    parser.add_argument("--grid", nargs="+", metavar="FILE", required=True,
                        help="text files with one 21x21 grid each (1 or # dark, 0 or . light)")
    parser.add_argument("--model", help="model file (default: the shipped models/default.pt)")
    return parser


def read_grid_file(path: Path) -> np.ndarray:
    """A text grid -> (21, 21) uint8 grid, 1 = dark; ValueError with a one-line reason."""
    rows = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(rows) != SIZE or any(len(row) != SIZE for row in rows):
        raise ValueError(f"{path}: expected {SIZE} rows of {SIZE} modules")
    if any(ch not in _DARK + _LIGHT for row in rows for ch in row):
        raise ValueError(f"{path}: modules must be 1/# (dark) or 0/. (light)")
    return np.array([[ch in _DARK for ch in row] for row in rows], dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from livereader.reader import ModelError, load_model, read_grids

    try:
        grids = [read_grid_file(Path(name)) for name in args.grid]
        reads = read_grids(np.stack(grids), load_model(args.model))
    except (ModelError, OSError, ValueError) as error:
        print(f"livereader: error: {error}", file=sys.stderr)
        return 1
    for name, read in zip(args.grid, reads):
        print(json.dumps({"source": name, "text": read.text, "confidence": round(read.confidence, 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
