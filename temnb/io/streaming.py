"""Processing a lazy movie in time blocks, with bounded memory, and writing the result as it comes.

An hour of K3 movie does not fit in memory, nor does a 400 x 1024² stack on a 2 GB Binder.
``temnb.load(path, lazy=True)`` gives a dask-backed signal; the functions that work frame by
frame or over a temporal window (``filters.apply``, ``temnb.denoise``, ``align.apply_drift``)
then run through :func:`map_frames`: the movie is cut into blocks of whole frames, each block is
read with the *reach* frames on either side that a temporal window needs, processed by the same
in-memory function, and only its own frames are kept.  Near the ends of the movie the block
starts or stops at the movie's own first or last frame, so the function meets the same boundary
as on the whole movie: a frame's result is the one the in-memory call gives (the tests check it
to the last bit for the filters).

The result is a lazy signal (nothing more is computed until it is saved or computed), or, with
``out=``, a file written block by block: ``.hspy`` through HyperSpy's lazy writer, ``.mrc``
through ``mrcfile``.  The peak memory is that of a few blocks, whatever the movie's length;
:func:`block_frames` sizes the blocks (``TEMNB_BLOCK_MB``, default 128 MB of float32 per block).
"""
from __future__ import annotations

import gc
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..core.errors import ParameterError, TemnbWarning, UnsupportedFormatError
from ..core.signals import is_signal

__all__ = ["is_lazy", "block_frames", "time_blocks", "map_frames", "stream_sum", "BlockCache", "STREAM_FORMATS"]

BLOCK_MB_ENV = "TEMNB_BLOCK_MB"
STREAM_FORMATS = (".hspy", ".zspy", ".mrc")
_ONE_BLOCK_AT_A_TIME = threading.RLock()


def is_lazy(data) -> bool:
    """True for a lazy (dask-backed) hyperspy signal or a dask array."""
    if is_signal(data):
        return bool(getattr(data, "_lazy", False))
    return type(data).__module__.startswith("dask")


def block_frames(frame_shape, reach: int = 0, *, budget_mb: float | None = None, bytes_per_value: int = 4) -> int:
    """Frames per block: *budget_mb* (default ``TEMNB_BLOCK_MB`` or 128) of values, and at least
    3 x the 2 x *reach* overlap frames so that re-reading the overlap costs at most a third."""
    if budget_mb is None:
        budget_mb = float(os.environ.get(BLOCK_MB_ENV, "128") or 128)
    per_frame = int(np.prod(frame_shape)) * bytes_per_value
    by_budget = max(1, int(budget_mb * 2 ** 20 // per_frame))
    return max(by_budget, 6 * int(reach), 1)


def time_blocks(n_frames: int, block: int, reach: int = 0) -> list[tuple[int, int, int, int]]:
    """``(read_from, read_to, keep_from, keep_to)`` for each block: read frames
    [read_from, read_to), keep the results of frames [keep_from, keep_to) (absolute indices)."""
    if block < 1:
        raise ParameterError(f"block = {block}: a block holds at least one frame")
    out = []
    for start in range(0, n_frames, block):
        stop = min(n_frames, start + block)
        out.append((max(0, start - reach), min(n_frames, stop + reach), start, stop))
    return out


def _block_signal(signal, lo: int, hi: int, array):
    """Frames [lo, hi) of a lazy *signal* as an in-memory signal with their axes and metadata."""
    from ..core.signals import rewrap

    part = signal.inav[lo:hi]
    return rewrap(np.asarray(array), part)


class BlockCache:
    """Blocks of frames computed once and read back from a temporary file, for methods that pass over
    a long movie several times (``estimate_drift``): the disk holds them, not the memory.  Plain reads
    and writes, not a memory map, so the pages read back are the system's cache, not the process's."""

    def __init__(self, make_blocks):
        self._make = make_blocks        # () -> iterator of (first frame, block array)
        self._file = None
        self._index = []                # (first frame, offset, shape, dtype)

    def __iter__(self):
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile(prefix="temnb_blocks_")
            for lo, block in self._make():
                block = np.ascontiguousarray(block)
                self._index.append((lo, self._file.tell(), block.shape, block.dtype))
                self._file.write(block.tobytes())
                yield lo, block
            self._file.flush()
            return
        for lo, offset, shape, dtype in self._index:
            self._file.seek(offset)
            yield lo, np.fromfile(self._file, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def close(self):
        if self._file is not None:
            self._file.close()


def stream_sum(signal, *, dtype=np.float64, progress: bool = False, desc: str = "summing") -> np.ndarray:
    """The sum over time of a lazy movie, one block at a time (float64)."""
    from tqdm.auto import tqdm

    data = signal.data if is_signal(signal) else signal
    n = int(data.shape[0])
    total = np.zeros(data.shape[1:], dtype)
    for lo, hi, _, _ in tqdm(time_blocks(n, block_frames(data.shape[1:])), desc=desc, disable=not progress,
                             leave=False):
        total += np.asarray(data[lo:hi]).sum(axis=0, dtype=dtype)
    return total


def map_frames(func, signal, *, reach: int = 0, out=None, dtype=None, block: int | None = None,
               progress: bool = True, desc: str = "processing", overwrite: bool = False,
               pass_index: bool = False):
    """Apply *func* (in-memory signal -> signal of the same frames) to a lazy movie block by block.

    *reach*: frames on each side that *func* reads for one frame (0 for frame-by-frame work).
    The first ``2 reach + 1`` frames are processed now (they give the result's metadata, and any
    error shows at once); the blocks when the result is computed or saved.  With *out* (``.hspy``, ``.mrc``)
    the result is written there block by block and the file is returned, loaded lazily.
    ``pass_index=True`` calls ``func(block, first_frame)`` (e.g. to pick the block's drift shifts).
    """
    import dask
    import dask.array as da
    from tqdm.auto import tqdm

    from ..core.signals import rewrap

    if not is_signal(signal) or not is_lazy(signal):
        raise ParameterError("map_frames needs a lazy hyperspy signal (temnb.load(path, lazy=True))")
    data = signal.data
    if data.ndim != 3:
        return func(_computed(signal))      # a single frame: nothing to stream
    n = int(data.shape[0])
    if block is None:
        block = block_frames(data.shape[1:], reach)
    blocks = time_blocks(n, int(block), int(reach))
    bar = tqdm(total=n, desc=desc, unit="frame", disable=not progress, leave=False)

    def run(lo, hi, a, b, array):
        # One block at a time, whatever dask's scheduler: memory stays bounded, hyperspy's slicing
        # of the shared input signal is not thread-safe, and some filters (bm3d) run their own pools.
        with _ONE_BLOCK_AT_A_TIME, warnings.catch_warnings():
            warnings.simplefilter("ignore", TemnbWarning)   # what concerns the movie was said by the probe
            block_signal = _block_signal(signal, lo, hi, array)
            result = func(block_signal, lo) if pass_index else func(block_signal)
            values = np.asarray(result.data if is_signal(result) else result)[a - lo: b - lo]
            bar.update(b - a)
            # HyperSpy signals are reference cycles (signal <-> axes manager): without a collection
            # here each block's input and result arrays wait for Python's cyclic collector, and
            # several blocks pile up (a 1024^2 Gaussian 3-D peaked at 2.1 GB instead of ~1 GB).
            del result, block_signal
            gc.collect()
        return values

    # A few frames first: the result's metadata and dtype, and any error at once (not after an hour).
    probe_hi = min(n, max(2 * int(reach) + 1, 2))
    probe = func(_block_signal(signal, 0, probe_hi, data[:probe_hi].compute()), 0) if pass_index else \
        func(_block_signal(signal, 0, probe_hi, data[:probe_hi].compute()))
    sample = np.asarray(probe.data if is_signal(probe) else probe)[:1]
    dtype = np.dtype(dtype or sample.dtype)
    pieces = []
    for lo, hi, a, b in blocks:
        task = dask.delayed(run, pure=False)(lo, hi, a, b, data[lo:hi])
        pieces.append(da.from_delayed(task, shape=(b - a,) + sample.shape[1:], dtype=sample.dtype).astype(dtype))
    lazy_data = da.concatenate(pieces, axis=0)
    template = probe if is_signal(probe) else signal
    result = rewrap(sample, template)          # in-memory template with the result's metadata ...
    result = result.as_lazy()                  # ... then the whole movie, lazily
    result.data = lazy_data
    for axis_out, axis_in in zip(result.axes_manager.navigation_axes, signal.axes_manager.navigation_axes):
        axis_out.size, axis_out.offset, axis_out.scale = axis_in.size, axis_in.offset, axis_in.scale
    result.axes_manager._update_attributes()
    if out is None:
        result._temnb_progress = bar
        return result
    try:
        path = write_lazy(result, out, overwrite=overwrite)
    finally:
        bar.close()
    from .files import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemnbWarning)
        return load(path, lazy=True)


def _computed(signal):
    from ..core.signals import rewrap

    return rewrap(np.asarray(signal.data.compute()), signal)


def write_lazy(signal, out, *, overwrite: bool = False) -> Path:
    """Write a lazy *signal* to *out* block by block (``.hspy``/``.zspy`` by HyperSpy, ``.mrc`` by
    mrcfile), with temnb.save's protection of raw files; returns the path."""
    from .files import save

    target = Path(os.path.expanduser(os.fspath(out)))
    ext = target.suffix.lower()
    if ext not in STREAM_FORMATS:
        raise UnsupportedFormatError(f"cannot be written block by block ('{target.suffix}')", source=target,
                                     hint=f"use one of {', '.join(STREAM_FORMATS)}")
    if ext != ".mrc":
        import dask

        # One block at a time: the point is bounded memory (and the blocks run numpy's own threads).
        with dask.config.set(scheduler="synchronous"):
            return save(signal, target, overwrite=overwrite)
    return _write_mrc(signal, target, overwrite)


def _write_mrc(signal, target: Path, overwrite: bool) -> Path:
    import uuid

    import mrcfile

    from .files import _is_raw_source, _move_into_place, _remove
    from ..core.errors import DataFileError

    if _is_raw_source(target, signal):
        raise DataFileError("is raw data this signal was read from; temnb never overwrites raw data",
                            source=target, hint="write the result under a new name")
    if target.exists() and not overwrite:
        raise DataFileError("already exists", source=target, hint="pass overwrite=True or choose another name")
    data = signal.data
    dtype = np.dtype(data.dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int16), np.dtype(np.uint16), np.dtype(np.int8),
                     np.dtype(np.uint8)):
        dtype = np.dtype(np.float32)
    tmp = target.with_name(f".{target.stem}.temnb-partial-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        with mrcfile.new_mmap(str(tmp), shape=tuple(data.shape), mrc_mode=mrcfile.utils.mode_from_dtype(dtype),
                              overwrite=True) as mrc:
            edges = np.concatenate([[0], np.cumsum(data.chunks[0])]) if hasattr(data, "chunks") \
                else np.array([0, len(data)])
            for lo, hi in zip(edges[:-1], edges[1:]):      # one time block at a time
                mrc.data[lo:hi] = np.asarray(data[lo:hi]).astype(dtype, copy=False)
                mrc.flush()
            rows, cols = sorted(signal.axes_manager.signal_axes, key=lambda a: a.index_in_array)
            if str(rows.units) == "nm" and str(cols.units) == "nm":
                mrc.voxel_size = (cols.scale * 10.0, rows.scale * 10.0, 1.0)   # Å, as MRC files keep it
        _move_into_place(tmp, target)
    finally:
        _remove(tmp)
    bar = getattr(signal, "_temnb_progress", None)
    if bar is not None:
        bar.close()
    warnings.warn(f"'{target}': MRC keeps the data and the pixel size only; temnb metadata (source, frame time, "
                  "counts, notes) are not stored. Write .hspy to keep them", TemnbWarning, stacklevel=3)
    return target
