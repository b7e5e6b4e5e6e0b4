"""Finding the per-frame files of a movie: a folder (searched recursively) or a glob.

Gatan in situ capture writes ``Hour_00/Minute_01/Second_02/...``, so frames are put
in natural path order ('Second_9' before 'Second_10' at every level).  A TIA ``.ser``
is read through its ``.emi``; both are recorded as the data's source.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from ..core.errors import DataFileError, MissingFileError, UnsupportedFormatError

FORMATS = {".dm3": "Gatan DigitalMicrograph", ".dm4": "Gatan DigitalMicrograph", ".mrc": "MRC", ".mrcz": "MRCZ",
           ".tif": "TIFF", ".tiff": "TIFF", ".emd": "EMD (Berkeley or Velox)", ".emi": "FEI TIA", ".ser": "FEI TIA",
           ".hspy": "HyperSpy HDF5", ".hdf5": "HyperSpy HDF5", ".zspy": "HyperSpy zarr", ".npy": "NumPy array"}
_SUPPORTED = ", ".join(sorted(FORMATS))


def _time_order(files, base) -> list:
    """Natural order of the paths relative to *base*: 'Second_9' before 'Second_10' at every level."""
    def key(f):
        parts = Path(os.path.relpath(f, base)).parts
        return tuple(tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", p) if t)
                     for p in parts)
    return sorted(files, key=key)


def _frame_files(candidates, label) -> list:
    files = [f for f in candidates if f.suffix.lower() in FORMATS and not f.name.startswith(".")]
    if not files:
        raise MissingFileError(f"holds no files of a supported format ({_SUPPORTED})", source=label)
    # A TIA .ser is read through its .emi when both are there: one entry per dataset.
    names = {str(f) for f in files}
    files = [f for f in files if not (f.suffix.lower() == ".ser" and str(_emi_of(f)) in names)]
    kinds = {}
    for f in files:
        kinds.setdefault(FORMATS[f.suffix.lower()], []).append(f)
    if len(kinds) > 1:
        found = ", ".join(f"{len(v)} {k}" for k, v in kinds.items())
        raise DataFileError(f"holds frames of several formats ({found})", source=label,
                            hint="pass a glob that picks one kind, e.g. 'folder/**/*.dm4'")
    return files


def _resolve(path):
    """Return ``(files in time order, label for messages, folder of a collection or None)``."""
    text = os.path.expanduser(os.fspath(path))
    target = Path(text)
    if target.exists():
        if target.is_dir() and target.suffix.lower() != ".zspy":
            found = []
            for root, dirs, names in os.walk(target):
                # A .zspy store is one file to us; hidden folders hold no frames.
                found += [Path(root, d) for d in dirs if d.lower().endswith(".zspy")]
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.lower().endswith(".zspy"))
                found += [Path(root, n) for n in names]
            return _time_order(_frame_files(found, text), target), text, target
        if target.suffix.lower() not in FORMATS:
            raise UnsupportedFormatError(f"has an extension temnb cannot read ('{target.suffix}')", source=text,
                                         hint=f"supported: {_SUPPORTED}")
        return [target], text, None
    if set("*?[") & set(text):
        matches = [Path(m) for m in glob.glob(text, recursive=True)]
        matches = [m for m in matches if m.is_file() or m.suffix.lower() == ".zspy"]
        if not matches:
            raise MissingFileError("matches no files", source=text, hint="check the folder and the pattern")
        files = _frame_files(matches, text)
        base = Path(os.path.commonpath([str(f.parent) for f in files]))
        return _time_order(files, base), text, base
    raise MissingFileError("does not exist", source=text,
                           hint="check the path (relative paths start from the notebook's folder)")


def _emi_of(ser: Path) -> Path:
    return ser.with_name(re.sub(r"_\d+$", "", ser.stem) + ".emi")


def _source_files(files) -> list:
    """Absolute paths of every file the data came from, TIA .ser companions included."""
    out = []
    for f in files:
        out.append(f)
        if f.suffix.lower() == ".emi":
            out += sorted(p for p in f.parent.glob(glob.escape(f.stem) + "_*.ser")
                          if re.fullmatch(re.escape(f.stem) + r"_\d+", p.stem))
        elif f.suffix.lower() == ".ser" and _emi_of(f).exists():
            out.append(_emi_of(f))
    return [os.path.abspath(p) for p in dict.fromkeys(out)]
