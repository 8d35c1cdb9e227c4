"""A plain (non-editable) install must carry the shipped model inside the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_models(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("livereader-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"livereader/models/default.pt", "livereader/models/default.json", "livereader/cli.py"} <= names
