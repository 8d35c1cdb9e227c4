"""A plain (non-editable) install must carry the shipped models inside the package."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_the_models(tmp_path):
    # built from a copy, offline, with the environment's own setuptools: no network, no build/ in the checkout
    source = tmp_path / "source"
    for name in ("livereader", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    wheel = next((tmp_path / "dist").glob("livereader-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"livereader/models/default.pt", "livereader/models/numeric.json", "livereader/cli.py",
            "livereader/py.typed"} <= names
    assert any(name.endswith("licenses/LICENSE") for name in names)
