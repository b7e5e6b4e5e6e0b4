"""Fixtures shared by the test files: the real sample files and a way to prove input stays untouched."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

REAL_DIR = Path(__file__).resolve().parents[1] / "data" / "real"


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """Folder of the real microscope files (read them, never write there)."""
    return REAL_DIR


@pytest.fixture
def real_copy(tmp_path):
    """``real_copy(name, dest=None)`` copies a real file (with its TIA .ser companions) into tmp; returns the copy."""

    def copy(name: str, dest: Path | None = None) -> Path:
        dest = Path(dest or tmp_path)
        dest.mkdir(parents=True, exist_ok=True)
        source = REAL_DIR / name
        companions = []
        if source.suffix == ".emi":
            companions = [p for p in REAL_DIR.glob(source.stem + "_*.ser")
                          if re.fullmatch(re.escape(source.stem) + r"_\d+", p.stem)]
        for path in [source, *companions]:
            shutil.copy2(path, dest / path.name)
        return dest / source.name

    return copy


@pytest.fixture
def file_state():
    """``file_state(path)`` -> (sha256, mtime_ns, size): compare before and after to show a file was not touched."""

    def state(path) -> tuple:
        path = Path(path)
        return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns, path.stat().st_size

    return state


# nbval executes the committed notebooks as a user opens them; to keep CI within its time budget it
# runs them with the smoke preset (temnb.record.PRESET_ENV), unless the caller set TEMNB_PRESET
# (e.g. ``TEMNB_PRESET=workshop python3 -m pytest notebooks`` checks them at their committed preset).
_NBVAL_PRESET = {"set_by_us": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    import os

    from temnb.record import PRESET_ENV

    is_notebook_cell = type(item).__name__ == "NbCellItem"
    if is_notebook_cell and PRESET_ENV not in os.environ:
        os.environ[PRESET_ENV] = "smoke"
        _NBVAL_PRESET["set_by_us"] = True
    elif not is_notebook_cell and _NBVAL_PRESET["set_by_us"]:
        os.environ.pop(PRESET_ENV, None)
        _NBVAL_PRESET["set_by_us"] = False
