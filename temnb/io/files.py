"""One call to open a TEM movie, whatever wrote it; one call to save a result safely.

:func:`load` reads every format through hyperspy/rosettasciio and returns one
``Signal2D``: a frame (y, x) or a movie (time, y, x) with calibration normalised
by :mod:`temnb.io.calibration`.  A folder or glob of per-frame files (Gatan in situ
capture writes ``Hour_00/Minute_01/Second_02/...``) becomes one movie in time
order.  Bad input raises a temnb error that names the file; the file itself is
only ever opened for reading.

:func:`save` writes through a temporary file in the target folder and renames
it, so an error never leaves half a file, and it refuses to overwrite the raw
data a signal was read from.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np

from ..core import metadata as md
from ..core.errors import (
    CorruptFileError,
    DataFileError,
    DataShapeError,
    DataValueError,
    MissingFileError,
    ParameterError,
    TemnbWarning,
    UnsupportedFormatError,
)
from ..core.signals import is_signal
from . import calibration
from .frame_files import FORMATS, _resolve, _source_files

__all__ = ["load", "save", "from_array", "hdf5_image_datasets", "FORMATS", "count_nonfinite"]

_KEEPS_METADATA = {".hspy", ".hdf5", ".zspy"}


# ------------------------------------------------------------- reading one file

@contextlib.contextmanager
def _quiet_reader():
    """hyperspy logs 'please report this error' before re-raising; temnb explains the error itself."""
    logger = logging.getLogger("hyperspy.io")
    drop = logging.Filter()
    drop.filter = lambda record: "report this error" not in record.getMessage()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _summary(exc) -> str:
    name = type(exc).__name__
    if name == "error":  # struct.error and friends say nothing without their module
        name = f"{type(exc).__module__}.error"
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no message"
    return f"{name}: {text}"


def _choose(loaded, path, select):
    items = loaded if isinstance(loaded, list) else [loaded]
    if not items:
        raise CorruptFileError("contains no signals", source=path, hint="check that the file is complete")
    listing = "; ".join(f"{i}: '{s.metadata.get_item('General.title', '')}' ("
                        f"{ {1: '1-D', 2: 'image'}.get(s.axes_manager.signal_dimension, 'data')}, "
                        f"{'x'.join(str(n) for n in s.data.shape)})" for i, s in enumerate(items))
    if select is not None:
        if isinstance(select, (int, np.integer)) and not isinstance(select, bool):
            if -len(items) <= select < len(items):
                return items[select]
            raise ParameterError(f"select={select} is out of range; the file holds {listing}", source=path)
        if isinstance(select, str):
            hits = [s for s in items if s.metadata.get_item("General.title", "") == select] or [
                s for s in items if str(s.metadata.get_item("General.title", "")).lower() == select.lower()]
            if len(hits) == 1:
                return hits[0]
            raise ParameterError(f"select={select!r} matches {len(hits) or 'no'} signals; the file holds {listing}",
                                 source=path, hint="pass the index or the exact title")
        raise ParameterError(f"select must be an index or a title, not {type(select).__name__}", source=path)
    if len(items) == 1:
        return items[0]
    images = [(i, s) for i, s in enumerate(items) if s.axes_manager.signal_dimension == 2]
    if not images:
        raise DataShapeError(f"holds no image, only {listing}", source=path)
    if len(images) > 1:
        raise ParameterError(f"holds {len(images)} images; choose one with select=index or title: {listing}",
                             source=path)
    index, signal = images[0]
    md.add_note(signal, f"the file holds {len(items)} signals ({listing}); loaded the only image, {index}")
    return signal


def _as_image(signal, path):
    am = signal.axes_manager
    if am.signal_dimension != 2 and am.navigation_dimension == 0 and signal.data.ndim in (2, 3):
        signal = signal.transpose(signal_axes=2)  # NPY arrives with every axis a signal axis
        am = signal.axes_manager
    shape = tuple(signal.data.shape)
    if am.signal_dimension == 1:
        what = "a 1-D spectrum or line profile" if am.navigation_dimension == 0 else "a spectrum image"
        raise DataShapeError(f"is {what} of shape {shape}, but an image or a movie is expected", source=path,
                             hint="pick the image with select=... if the file holds several signals")
    if am.signal_dimension != 2 or am.navigation_dimension > 1:
        raise DataShapeError(f"has shape {shape} ({am.navigation_dimension} navigation + {am.signal_dimension} "
                             "signal axes), but a 2-D image or a 3-D movie (time, y, x) is expected", source=path)
    return signal


def _expected_bytes(signal, path) -> int | None:
    """Bytes an uncompressed MRC/NPY needs; a lazy open maps the file and cannot see truncation."""
    suffix = path.suffix.lower()
    if suffix == ".mrc":
        extended = signal.original_metadata.get_item("std_header.NEXT", 0)
        return 1024 + int(np.asarray(extended).ravel()[0]) + int(signal.data.nbytes)
    if suffix == ".npy":
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            reader(fh)
            return fh.tell() + int(signal.data.nbytes)
    return None


def count_nonfinite(data) -> int:
    """Number of NaN/inf values (computes a lazy array: a full pass over the data)."""
    if data.dtype.kind != "f":
        return 0
    count = (~np.isfinite(data)).sum()  # dask arrays dispatch the ufunc lazily
    return int(count.compute() if hasattr(count, "compute") else count)


def _readers_for(path: Path) -> list[str]:
    """The rosettasciio readers that claim *path*'s extension (HDF5 files are claimed by several)."""
    from rsciio import IO_PLUGINS

    ext = path.suffix.lower().lstrip(".")
    return [p["name"] for p in IO_PLUGINS if ext in [e.lower() for e in p["file_extensions"]]]


def _read_signal(path: Path, lazy: bool, select=None, reader=None):
    """One file as a checked Signal2D (lazy: no pixel data read)."""
    fmt = FORMATS[path.suffix.lower()]
    if path.is_file() and path.stat().st_size == 0:
        raise CorruptFileError("is empty (0 bytes)", source=path, hint="copy the file again from the acquisition PC")
    import hyperspy.api as hs

    # Read-only, always: the zspy reader otherwise opens lazy files for writing.
    options = {"mode": "r"} if path.suffix.lower() in (".hspy", ".hdf5", ".zspy") else {}
    try:
        with _quiet_reader(), warnings.catch_warnings():
            # rsciio's MRC reader leaves its header file handle to the garbage collector.
            warnings.simplefilter("ignore", ResourceWarning)
            loaded = hs.load(str(path), lazy=lazy, **options, **({"reader": reader} if reader else {}))
    except ImportError as exc:
        raise UnsupportedFormatError(f"needs the optional package '{exc.name}' to read {fmt} files", source=path,
                                     hint=f"pip install {exc.name}") from None
    except MemoryError:
        raise
    except Exception as exc:
        if path.suffix.lower() in _HDF5_SUFFIXES and _is_plain_hdf5(path):
            readers = ", ".join(_readers_for(path)) or "none"
            raise UnsupportedFormatError(f"is an HDF5 file but not one HyperSpy wrote ({_summary(exc)}); several "
                                         f"readers claim its extension ({readers}) and temnb cannot tell which of "
                                         "its datasets is the image", source=path,
                                         hint=f"pass reader= with one of {readers} if one of them wrote it, or "
                                              + _dataset_hint(path)) from None
        raise CorruptFileError(f"could not be read as {fmt} ({_summary(exc)}); it is truncated, corrupt or not "
                               f"a {fmt} file", source=path, hint="compare its size with the original and copy it "
                               "again") from None
    signal = _as_image(_choose(loaded, path, select), path)
    dtype = signal.data.dtype
    if dtype.kind not in "biuf":
        what = "colour (RGB) pixels" if dtype.names else f"values of type {dtype}"
        raise DataValueError(f"has {what}, not real numbers", source=path,
                             hint="convert to a greyscale (real-valued) image first")
    expected = _expected_bytes(signal, path)
    if expected is not None and path.stat().st_size < expected:
        raise CorruptFileError(f"is truncated: it holds {path.stat().st_size} bytes but its header describes "
                               f"{expected} bytes", source=path, hint="copy the file again")
    if not lazy:
        bad = count_nonfinite(signal.data)
        if bad:
            raise DataValueError(f"contains {bad} NaN or infinite values (of {signal.data.size})", source=path,
                                 hint="mask or interpolate the bad pixels, or crop them away, and save a copy")
    return signal


def _is_plain_hdf5(path: Path) -> bool:
    try:
        import h5py

        return bool(h5py.is_hdf5(path))
    except (ImportError, OSError):
        return False


def _read_frames(path, select):
    data = _read_signal(Path(path), False, select).data
    return data[np.newaxis] if data.ndim == 2 else data


# --------------------------------------------------------------- many files

def _stack(files, lazy, select, label):
    """Concatenate per-frame files along time; headers are read first so nothing is read twice lazily."""
    import hyperspy.api as hs

    probes = [_read_signal(f, True, select) for f in files]
    first = probes[0]
    frame_shape = tuple(first.data.shape[-2:])
    calib = [(a.scale, str(a.units)) for a in first.axes_manager.signal_axes]
    for f, s in zip(files, probes):
        if tuple(s.data.shape[-2:]) != frame_shape:
            raise DataShapeError(f"has frames of {s.data.shape[-2]}x{s.data.shape[-1]} pixels but "
                                 f"'{files[0]}' has {frame_shape[0]}x{frame_shape[1]}; the frames of a movie must "
                                 "all have the same size", source=f)
        other = [(a.scale, str(a.units)) for a in s.axes_manager.signal_axes]
        if other != calib and "calibration differs" not in str(md.get(first, "calibration_notes")):
            calibration.report(first, f"calibration differs between frame files ('{f}' has {other}, the first "
                               f"has {calib}); the first file's is used", source=label)
    counts = [s.data.shape[0] if s.data.ndim == 3 else 1 for s in probes]
    dtype = np.result_type(*[s.data.dtype for s in probes])
    for s in probes:
        with contextlib.suppress(Exception):  # lazy HDF5 keeps its file open; thousands of frames would not fit
            s.close_file()
    shape = (sum(counts), *frame_shape)
    if lazy:
        import dask
        import dask.array as da

        parts = [da.from_delayed(dask.delayed(_read_frames, pure=True)(str(f), select), (n, *frame_shape), dtype)
                 for f, n in zip(files, counts)]
        data = da.concatenate(parts, axis=0)
    else:
        data, start = np.empty(shape, dtype), 0
        for f, n in zip(files, counts):
            data[start:start + n] = _read_frames(f, select)
            start += n
    axes = [dict(a.get_axis_dictionary(), navigate=a.navigate) for a in first.axes_manager._axes]
    nav = first.axes_manager.navigation_axes
    if nav and nav[0].is_uniform:
        axes[0]["size"] = shape[0]
    else:
        axes = [{"name": "time", "size": shape[0], "scale": 1.0, "offset": 0.0, "navigate": True}] + axes[-2:]
    cls = hs.signals.LazySignal2D if lazy else hs.signals.Signal2D
    signal = cls(data, axes=axes, metadata=first.metadata.as_dictionary(),
                 original_metadata=first.original_metadata.as_dictionary())
    md.add_note(signal, f"stacked {len(files)} files from {label} in natural path order")
    return signal


# ------------------------------------------------------------------- load

# ------------------------------------------------------------- arrays and plain HDF5
_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5", ".nxs")


def from_array(array, *, pixel_size=None, pixel_unit=None, frame_time=None, title=None, name="the array"):
    """A numpy (or dask) image (H, W) or movie (T, H, W) as the ``Signal2D`` :func:`load` would give:
    axes 'time', 'y', 'x', the calibration from *pixel_size* (one number or (y, x)) in *pixel_unit*
    (default nm) and *frame_time* (s), ``metadata.temnb`` filled in.  The array is not copied when it
    is already a numpy array of real numbers (the signal is a view: ``temnb.save`` writes copies)."""
    import hyperspy.api as hs

    sizes, unit, frame_time = calibration.check_parameters(pixel_size, pixel_unit, frame_time)
    lazy = hasattr(array, "dask") or type(array).__module__.startswith("dask")
    data = array if lazy else np.asarray(array)
    if data.ndim not in (2, 3):
        raise DataShapeError(f"has shape {tuple(data.shape)}; an image is (height, width) and a movie "
                             "(frames, height, width)", source=name, hint="index or reshape it first")
    if data.dtype.kind not in "biuf":
        raise DataValueError(f"has values of type {data.dtype}, not real numbers", source=name,
                             hint="convert to a greyscale (real-valued) image first")
    if not lazy:
        bad = count_nonfinite(data)
        if bad:
            raise DataValueError(f"contains {bad} NaN or infinite values (of {data.size})", source=name,
                                 hint="mask or interpolate the bad pixels, or crop them away")
    signal = hs.signals.Signal2D(data).as_lazy() if lazy else hs.signals.Signal2D(data)
    if lazy:
        signal.data = data
    found_time = calibration.normalise(signal, source=name, pixel_size=sizes, pixel_unit=unit, frame_time=frame_time)
    md.set(signal, "source", None)
    md.set(signal, "counts", None)
    if found_time is not None:
        md.set(signal, "frame_time", float(found_time))
    signal.metadata.set_item("General.title", title or str(name))
    return signal


def hdf5_image_datasets(path) -> list[tuple[str, tuple, str]]:
    """(name, shape, dtype) of every dataset in an HDF5 file that could be an image or a movie
    (2 or 3 dimensions, real numbers, at least 8 x 8 pixels)."""
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind in "biuf" \
                and min(obj.shape[-2:]) >= 8:
            found.append(("/" + name, tuple(obj.shape), str(obj.dtype)))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def _dataset_hint(path: Path) -> str:
    found = hdf5_image_datasets(path)
    if not found:
        return "it holds no 2-D or 3-D dataset of numbers; open it with h5py to see what it holds"
    listed = ", ".join(f"{n} {'x'.join(map(str, shape))} {dtype}" for n, shape, dtype in found[:6])
    return (f"pass dataset= with one of its image datasets: {listed}"
            + (f" (and {len(found) - 6} more)" if len(found) > 6 else "")
            + f", e.g. temnb.load({str(path)!r}, dataset={found[0][0]!r}, pixel_size=...)")


def _load_hdf5_dataset(path: Path, dataset: str, lazy, pixel_size, pixel_unit, frame_time):
    import h5py

    if not path.is_file():
        raise MissingFileError("does not exist", source=path)
    if not h5py.is_hdf5(path):
        raise CorruptFileError("is not an HDF5 file, so dataset= does not apply", source=path,
                               hint="leave dataset= out for other formats")
    f = h5py.File(path, "r")  # read-only: the raw file is never written
    try:
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise MissingFileError(f"has no dataset {dataset!r}", source=path, hint=_dataset_hint(path))
        node = f[dataset]
        if lazy:
            import dask.array as da

            data = da.from_array(node, chunks=(1,) + tuple(node.shape[1:]) if node.ndim == 3 else node.shape)
        else:
            data = node[()]
    except BaseException:
        f.close()
        raise
    if not lazy:
        f.close()
    label = f"{path}:{dataset}"
    signal = from_array(data, pixel_size=pixel_size, pixel_unit=pixel_unit, frame_time=frame_time,
                        title=f"{path.stem}{dataset}", name=label)
    md.set(signal, "source", [str(path.resolve())])  # the file itself: temnb.save refuses to write over it
    calibration.report(signal, f"read from the HDF5 dataset {dataset} with h5py", source=label, warn=False)
    return protect_raw(signal)


def load(path, lazy=False, *, select=None, pixel_size=None, pixel_unit=None, frame_time=None, dataset=None,
         reader=None):
    """Load a TEM image or movie as one hyperspy ``Signal2D``.

    *path* is a file (DM3/DM4, MRC/MRCZ, TIFF, EMD, TIA EMI/SER, HSPY/ZSPY, NPY),
    a folder of per-frame files (searched recursively, stacked in natural path
    order) or a glob.  ``lazy=True`` opens through dask: only headers are read.
    ``select`` (index or title) picks a signal when a file holds several.
    ``pixel_size`` (one number or (y, x)) in ``pixel_unit`` (default nm)
    overrides the file; ``pixel_unit`` alone says what unit the file's own
    scale is in.  ``frame_time`` (s) overrides or supplies the time axis.
    ``dataset`` ("/group/name") reads one dataset of a plain HDF5 file (.h5, .hdf5; e.g. from
    pycroscopy or atomap) with h5py, read-only; such files carry no calibration temnb can trust,
    so give ``pixel_size`` too.  A plain HDF5 file loaded without it gets a message that lists
    its image datasets.  ``reader`` names the rosettasciio reader (``"HSPY"``, ``"USID"``, ...) for a
    file several readers claim.  Arrays in memory: :func:`from_array`.

    The result has image axes 'y', 'x' (nm when the file gives a length) and,
    for a movie, a first axis 'time' (s when known).  ``metadata.temnb`` holds
    ``source``, ``frame_time`` (when known), ``counts`` (kept from temnb's own
    files, else None) and ``calibration_notes``.
    """
    suffix = Path(str(path)).suffix.lower()
    if dataset is not None:
        if not isinstance(dataset, str) or not dataset:
            raise ParameterError(f"dataset = {dataset!r}; it must be an HDF5 path such as '/data/images'")
        return _load_hdf5_dataset(Path(path), dataset if dataset.startswith("/") else "/" + dataset, lazy,
                                  pixel_size, pixel_unit, frame_time)
    if suffix in _HDF5_SUFFIXES and suffix != ".hdf5" and Path(path).is_file():
        raise UnsupportedFormatError("is a plain HDF5 file: temnb cannot tell which of its datasets is the image",
                                     source=Path(path), hint=_dataset_hint(Path(path)))
    sizes, unit, frame_time = calibration.check_parameters(pixel_size, pixel_unit, frame_time)
    files, label, folder = _resolve(path)
    many = folder is not None
    if reader is not None and many:
        raise ParameterError("reader= chooses the reader of one file, not of a folder of frames")
    signal = _stack(files, lazy, select, label) if many else _read_signal(files[0], lazy, select, reader)
    where = label if many else files[0]
    tia = signal.original_metadata.get_item("ObjectInfo.AcquireInfo.FrameTime")
    hint = tia and (f"the TIA header gives a scan frame time of {tia} s (ObjectInfo.AcquireInfo.FrameTime), "
                    "which is the frame period only if frames were recorded back to back")
    found_time = calibration.normalise(
        signal, source=where, pixel_size=sizes, pixel_unit=unit, frame_time=frame_time, hint=hint,
        file_frame_time=md.get(signal, "frame_time"), frames_axis_is_index=files[0].suffix.lower() in (".mrc", ".mrcz"))
    md.set(signal, "source", _source_files(files))
    md.set(signal, "counts", md.get(signal, "counts"))
    if found_time is not None:
        md.set(signal, "frame_time", float(found_time))
    if not signal.metadata.get_item("General.title", ""):
        signal.metadata.set_item("General.title", folder.resolve().name if many else files[0].stem)
    return protect_raw(signal)


def protect_raw(signal):
    """Make hyperspy's own ``save`` of *signal*, and of the signals derived from it, refuse its raw
    files (:func:`temnb.core.signals.protect_raw`); ``temnb.save`` refuses them anyway."""
    from ..core.signals import protect_raw as protect

    return protect(signal)


# ------------------------------------------------------------------- save

def _writers() -> dict:
    from rsciio import IO_PLUGINS

    out = {}
    for plugin in IO_PLUGINS:
        for ext in plugin["file_extensions"] if plugin.get("writes") else []:
            # USID also claims .hdf5; the HyperSpy writers keep everything.
            if plugin["name"] in ("HSPY", "ZSPY") or "." + ext.lower() not in out:
                out["." + ext.lower()] = plugin
    out.pop(".h5", None)  # claimed by several writers, none of them temnb's
    return out


from ..core.signals import is_raw_source as _is_raw_source  # noqa: E402  (kept here for io's callers)


def _remove(path: Path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _move_into_place(tmp: Path, target: Path):
    if target.is_dir() and not target.is_symlink():
        # os.replace cannot replace a folder (.zspy): swap, then drop the old one.
        old = target.with_name(f".{target.name}.temnb-old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(old, target)
            raise
        _remove(old)
    else:
        os.replace(tmp, target)


def save(signal, path, overwrite=False):
    """Save *signal* to *path* (format from the extension: .hspy, .zspy, .tif, ...).

    Refuses to replace an existing file unless ``overwrite=True``, and always
    refuses to replace a file the signal was read from (its raw data).  The
    file is written under a temporary name in the same folder and renamed when
    complete.  Formats other than .hspy/.zspy keep the data and pixel
    calibration only; a ``TemnbWarning`` says so.  Returns the Path written.
    """
    if not is_signal(signal):
        raise ParameterError(f"save needs a hyperspy signal, not {type(signal).__name__}",
                             hint="wrap arrays with hyperspy.api.signals.Signal2D(array), or use numpy.save")
    target = Path(os.path.expanduser(os.fspath(path)))
    if _is_raw_source(target, signal):
        raise DataFileError("is raw data this signal was read from; temnb never overwrites raw data", source=target,
                            hint="save the result under a new name")
    ext = target.suffix.lower()
    writers = _writers()
    if ext not in writers:
        raise UnsupportedFormatError(f"has an extension temnb cannot write ('{target.suffix}')", source=target,
                                     hint=f"use one of {', '.join(sorted(writers))} (.hspy keeps everything)")
    if not target.parent.is_dir():
        raise MissingFileError(f"cannot be written: the folder '{target.parent}' does not exist", source=target,
                               hint="create the folder first")
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise DataFileError("already exists", source=target, hint="pass overwrite=True or choose another name")
        if target.is_dir() and ext != ".zspy":
            raise DataFileError("is a folder, not a file", source=target, hint="choose a file name")
    tmp = target.with_name(f".{target.stem}.temnb-partial-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        with _quiet_reader():
            signal.save(str(tmp), overwrite=False, file_format=writers[ext]["name"])
        _move_into_place(tmp, target)
    except Exception as exc:
        # A missing optional package, or rosettasciio 0.15's ZSPY writer meeting zarr 3.
        missing = isinstance(exc, ImportError) or (isinstance(exc, AttributeError) and "zarr" in str(exc))
        package = (exc.name if isinstance(exc, ImportError) else None) or "zarr<3"
        hint = f"save as .hspy, or install {package}" if missing else "save as .hspy, which holds any signal"
        raise (UnsupportedFormatError if missing else DataFileError)(
            f"could not be written as {writers[ext]['name']} ({_summary(exc)})", source=target, hint=hint) from None
    finally:
        _remove(tmp)
    signal.tmp_parameters.set_item("folder", str(target.parent))
    signal.tmp_parameters.set_item("filename", target.stem)
    if ext not in _KEEPS_METADATA:
        warnings.warn(f"'{target}': {writers[ext]['name']} keeps the data and (at best) the axis calibration; "
                      "temnb metadata (source, frame time, counts, notes) are not stored. Save as .hspy to keep "
                      "them", TemnbWarning, stacklevel=2)
    return target
