"""Arrays inside, hyperspy signals at the edges.

Public temnb functions accept a numpy array or a hyperspy signal and return the
same kind.  ``unwrap`` takes the array out (after checking it), ``rewrap`` puts
a result back into a copy of the input signal so axes and metadata are kept.
"""
from __future__ import annotations

import numpy as np

from . import metadata as md
from .errors import DataShapeError, DataValueError, TooFewFramesError


def is_signal(obj) -> bool:
    """True for any hyperspy BaseSignal (imported lazily: hyperspy is heavy)."""
    try:
        from hyperspy.signal import BaseSignal
    except ImportError:  # pragma: no cover - hyperspy is a dependency
        return False
    return isinstance(obj, BaseSignal)


def source_label(data, name=None):
    """What to call the data in an error message: the given name, the file, or None."""
    if name is not None:
        return name
    if is_signal(data):
        return md.source_of(data)
    return None


def unwrap(data, *, name=None, compute: bool = True, check_finite: bool = True):
    """Return ``(array, template)``; *template* is the signal or None for an array.

    Lazy signals are computed unless ``compute=False`` (then a dask array comes back).
    """
    source = source_label(data, name)
    if is_signal(data):
        array = data.data
        if compute and getattr(data, "_lazy", False):
            array = np.asarray(array.compute())
        template = data
    else:
        try:
            array = np.asarray(data)
        except Exception as exc:  # ragged lists and such
            raise DataShapeError(f"could not be read as an image array ({exc})", source=source) from None
        template = None
    if array.dtype.kind not in "biuf":
        raise DataValueError(
            f"has values of type {array.dtype}, not numbers",
            source=source,
            hint="pass a numeric image or movie (integers for counts, floats otherwise)",
        )
    if check_finite and array.dtype.kind == "f" and isinstance(array, np.ndarray):
        bad = ~np.isfinite(array)
        if bad.any():
            raise DataValueError(
                f"contains {int(bad.sum())} NaN or infinite values (first at index "
                f"{tuple(int(i) for i in np.argwhere(bad)[0])})",
                source=source,
                hint="mask or interpolate the bad pixels first, or crop them away",
            )
    return array, template


def rewrap(array, template, *, title: str | None = None, quantity: str | None = None):
    """Put *array* back into the kind of thing *template* was.

    With a signal template the result is a new signal with the template's axes
    and metadata (the template itself is never changed); with None, the array.
    """
    if template is None:
        return array
    out = template._deepcopy_with_new_data(array)
    if getattr(out, "_lazy", False) and isinstance(array, np.ndarray):
        # A computed result of a lazy input is an in-memory signal.
        out._lazy = False
        out._assign_subclass()
        if getattr(template, "_temnb_protected", False):
            protect_raw(out)
    if title is not None:
        out.metadata.General.title = title
    if quantity is not None:
        out.metadata.set_item("Signal.quantity", quantity)
    return out


def require_image_data(array, *, source=None, what: str = "this step", allow_movie: bool = True):
    """Check that *array* is a 2-D frame (or a 3-D movie when allowed)."""
    ndim = array.ndim
    allowed = (2, 3) if allow_movie else (2,)
    if ndim not in allowed:
        kind = {0: "a single number", 1: "a 1-D spectrum or line profile"}.get(ndim, f"{ndim}-D data")
        want = "a 2-D frame or a 3-D movie (time, y, x)" if allow_movie else "a 2-D frame"
        raise DataShapeError(
            f"is {kind} of shape {tuple(array.shape)}, but {what} needs {want}",
            source=source,
            hint="select the image signal (temnb.load(..., select=N)) or index the frame you want",
        )


def require_movie(array, *, min_frames: int = 2, source=None, what: str = "this method"):
    """Check that *array* is a (time, y, x) movie with at least *min_frames* frames."""
    require_image_data(array, source=source, what=what)
    if array.ndim == 2:
        raise TooFewFramesError(
            f"is a single frame, but {what} needs a movie of at least {min_frames} frames",
            source=source,
            hint="load the whole movie (a stack or a folder of frames), not one frame",
        )
    n = array.shape[0]
    if n < min_frames:
        raise TooFewFramesError(
            f"has {n} frame{'s' if n != 1 else ''}, but {what} needs at least {min_frames}",
            source=source,
            hint="use a longer movie, or a method that works frame by frame",
        )


def float_array(data, what: str):
    """*data* (array or signal) as a float64 array; *what* names it in errors when it is an unnamed array."""
    array, _ = unwrap(data, name=source_label(data) or what)
    return array.astype(np.float64)


# --------------------------------------------------------------------------- raw files are never written
def is_raw_source(target, signal) -> bool:
    """True when *target* is (or links to) a file *signal* was read from (``metadata.temnb.source``)."""
    import contextlib
    import os

    from . import metadata as md

    real = os.path.realpath(target)
    for src in md.get(signal, "source") or []:
        if os.path.realpath(src) == real:
            return True
        with contextlib.suppress(OSError):
            if os.path.samefile(src, target):
                return True
    return False


def _guarded_save(self, filename=None, overwrite=None, **kwargs):
    """HyperSpy's ``save``, stopped where it would write over a file this signal was read from."""
    import os
    from pathlib import Path

    from .errors import DataFileError

    folder, stem = self.tmp_parameters.get_item("folder"), self.tmp_parameters.get_item("filename")
    target = filename
    if target is None and folder is not None and stem is not None:   # hyperspy's default: the file read
        target = Path(folder) / (stem + (self.tmp_parameters.get_item("extension") or ""))
    if target is not None and is_raw_source(Path(os.path.expanduser(os.fspath(target))), self):
        raise DataFileError("is raw data this signal was read from; temnb never overwrites raw data "
                            "(hyperspy's save was stopped)", source=target,
                            hint="save the result under a new name, with temnb.save(signal, path)")
    return super(_PROTECTED_BASE[type(self)], self).save(filename, overwrite=overwrite, **kwargs)


_PROTECTED = {}        # hyperspy class -> its protected subclass
_PROTECTED_BASE = {}   # protected subclass -> the hyperspy class


def protect_raw(signal):
    """Give *signal* a ``save`` that refuses its raw files: hyperspy's ``out.save(raw_path,
    overwrite=True)`` (or ``out.save()``, which defaults to the file read) would replace the raw data.

    The signal's class becomes a subclass of its hyperspy class that differs only in ``save``;
    hyperspy's copies (``deepcopy``, slicing, temnb's results through :func:`rewrap`) keep it.  A
    hyperspy operation that re-derives the class (``change_dtype``, ``compute``) drops it, which is
    why :func:`temnb.save` checks again and is the one documented way to save.
    """
    cls = type(signal)
    if cls in _PROTECTED_BASE:
        return signal
    if cls not in _PROTECTED:
        guarded = type(cls.__name__, (cls,), {"save": _guarded_save, "__module__": cls.__module__,
                                              "__qualname__": cls.__qualname__, "_temnb_protected": True})
        _PROTECTED[cls], _PROTECTED_BASE[guarded] = guarded, cls
    signal.__class__ = _PROTECTED[cls]
    return signal
