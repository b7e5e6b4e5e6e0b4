"""Writing results so that a reader never sees half a file: JSON-able values, atomic writes, peak memory.

Every stage that writes numbers or files that others read (model folders, data-set manifests,
a notebook's recorded results, benchmarks) goes through these helpers.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import sys
import tempfile
from pathlib import Path

from .errors import CorruptFileError, ParameterError


def jsonable(value, what: str):
    """A JSON value for *value*: numpy/torch scalars and arrays become Python numbers and lists."""
    if isinstance(value, (bool, str)):
        return value
    if value is None:
        raise ParameterError(f"{what} is None; record a number, text, a bool or a list of those")
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        # numpy scalars and arrays, torch tensors: tolist() gives Python numbers
        return jsonable(value.tolist(), what)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ParameterError(
                f"{what} is {number}; a recorded number must mean something",
                hint="find out why the computation gave NaN/inf (empty region? zero variance?) "
                "and fix the cause, or record an explanatory text instead",
            )
        return number
    if isinstance(value, (list, tuple)):
        return [jsonable(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ParameterError(
        f"{what} has type {type(value).__name__}, which cannot be recorded; "
        "record numbers, text, bools or lists of those"
    )


def peak_memory_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        resource = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return round(peak / 1024**2 if sys.platform == "darwin" else peak / 1024, 1)
    try:
        import psutil
    except ImportError:
        return None
    info = psutil.Process().memory_info()
    return round(getattr(info, "peak_wset", info.rss) / 1024**2, 1)


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` then rename over *path*: a reader (or a crash) never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, payload, *, default=None, indent: int = 2) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=indent, default=default)
            fh.write("\n")

    atomic_write(path, write)


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"is not valid JSON ({exc})", source=path) from None
