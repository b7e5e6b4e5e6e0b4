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


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, restored afterwards: these tensors are tiny, and on a busy
    2-core machine a second thread costs more than it gives."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linearised(model):
    """The same network geometry without data-dependent gating (ReLU -> identity, max-pool ->
    average-pool), so that autograd shows its whole receptive field."""
    from torch import nn

    for name, child in list(model.named_children()):
        if isinstance(child, nn.ReLU):
            setattr(model, name, nn.Identity())
        elif isinstance(child, nn.MaxPool2d):
            setattr(model, name, nn.AvgPool2d(2))
        else:
            linearised(child)
    return model
