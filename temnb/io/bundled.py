"""Where the bundled data live, and one-line access to them.

The repository's ``data/`` folder holds a simulated counted movie of a Pt
nanoparticle on CeO2 (with its clean ground truth) and a few small real files
from other groups (provenance in ``data/README.md``).  Set ``TEMNB_DATA`` to use
another copy of that folder (e.g. a non-editable install).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import MissingFileError, ParameterError

SAMPLES = {
    "movie": "sample/pt_ceo2_movie.hspy",
    "truth": "sample/pt_ceo2_movie_truth.hspy",
}

REAL_FILES = {
    "haadf_srtio3_noisy": "real/stem_haadf_srtio3_noisy.emd",
    "haadf_srtio3_clean": "real/stem_haadf_srtio3_clean.emi",
    "haadf_nanoparticle_series": "real/stem_haadf_nanoparticles_series.emi",
    "haadf_multi_signal": "real/stem_haadf_multi_signal.dm3",
    "adf_srtio3_110": "real/stem_adf_srtio3_110.hspy",
    "ceta_dark_frame": "real/ceta_dark_frame.emd",
    "dm4_stack_3d": "real/format_dm4_stack_3d.dm4",
    "tem_stack_velox": "real/tem_stack_velox.emd",
    "stack_stackbuilder": "real/stack_stackbuilder.dm3",
    "tem_preview_series": "real/tem_preview_series.emi",
    "random_scan_movie": "real/random_scan_movie.mrc",
    "haadf_scan": "real/haadf_scan.mrc",
    "stack_saved_by_dm": "real/stack_saved_by_dm.tif",
    "stack_saved_by_imagej": "real/stack_saved_by_imagej.tif",
    "stack_3d_small": "real/stack_3d_small.dm4",
}


def data_dir() -> Path:
    """The folder holding ``sample/`` and ``real/``."""
    env = os.environ.get("TEMNB_DATA")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
    if not folder.is_dir():
        raise MissingFileError(
            "the temnb data folder does not exist",
            source=folder,
            hint="work from a clone of the repository (pip install -e .) or set TEMNB_DATA "
            "to a copy of its data/ folder",
        )
    return folder


def _lookup(name: str, table: dict) -> Path:
    if name not in table:
        raise ParameterError(f"unknown data set {name!r}; choose one of: {', '.join(table)}")
    path = data_dir() / table[name]
    if not path.exists():
        raise MissingFileError(
            "bundled data file is missing",
            source=path,
            hint="regenerate the sample with `python data/make_sample_movie.py`" if table is SAMPLES
            else "restore it from git (git checkout -- data/)",
        )
    return path


def sample_path(name: str = "movie") -> Path:
    """Path of a bundled simulated sample: 'movie' (noisy counts) or 'truth' (clean)."""
    return _lookup(name, SAMPLES)


def real_path(name: str) -> Path:
    """Path of a bundled real file by its short name (see ``REAL_FILES``)."""
    return _lookup(name, REAL_FILES)


def resolve(data: str | os.PathLike) -> Path | str:
    """Turn a notebook's ``DATA`` parameter into something ``temnb.load`` reads.

    ``"sample"`` means the bundled simulated movie, a key of ``REAL_FILES`` a real
    file, anything else is a path or glob passed through unchanged.
    """
    text = str(data)
    if text in ("sample", "movie"):
        return sample_path("movie")
    if text in REAL_FILES:
        return real_path(text)
    return data


def load_sample(name: str = "movie", lazy: bool = False):
    """Load a bundled simulated sample as a hyperspy signal."""
    from .files import load

    return load(sample_path(name), lazy=lazy)


def crop_movie(signal, n_frames: int | None = None, size: int | None = None):
    """First *n_frames* frames and a centred *size* x *size* crop (None keeps all).

    Used by the presets so smoke runs take seconds; calibration is kept because
    hyperspy's ``isig``/``inav`` slicing keeps the axes.
    """
    out = signal
    if n_frames is not None and signal.axes_manager.navigation_dimension:
        out = out.inav[: int(n_frames)]
    if size is not None:
        ny, nx = out.axes_manager.signal_shape[::-1]
        size = int(size)
        if size > min(ny, nx):
            size = min(ny, nx)
        y0, x0 = (ny - size) // 2, (nx - size) // 2
        out = out.isig[x0 : x0 + size, y0 : y0 + size]
    return out
