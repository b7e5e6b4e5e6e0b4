"""Axis names and units, normalised the same way whatever file a movie came from.

Readers disagree on names ('X', 'height', '<undefined>'), spell units their own
way ('n_m', 'um', 'A') and sometimes give none.  After :func:`normalise` a movie
has image axes 'y' (rows) and 'x' (columns) in nm where the file gave a length,
and a navigation axis 'time' in seconds where the file gave a time.  What the
file does not say is reported (``CalibrationWarning`` + a calibration note),
never guessed: a wrong pixel size or frame rate silently skews every dose and
drift number computed later.
"""
from __future__ import annotations

import math
import os
import sys
import warnings

from ..core import metadata as md
from ..core.checks import positive
from ..core.errors import CalibrationWarning, DataShapeError, DataValueError, ParameterError, describe_source

_UNDEFINED = {"", "<undefined>", "undefined", "none", "pixel", "pixels", "px", "pix", "a.u.", "au", "arb"}

# Keys are lower case; 'A' means Ångström here because an axis in amperes makes no sense.
_ALIASES = {
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "um": "µm", "µm": "µm", "μm": "µm", "micron": "µm", "microns": "µm",
    "micrometer": "µm", "micrometers": "µm", "micrometre": "µm", "micrometres": "µm",
    "pm": "pm", "picometer": "pm", "picometers": "pm", "picometre": "pm",
    "a": "Å", "å": "Å", "\u212b": "Å", "ang": "Å", "angstrom": "Å", "angstroms": "Å", "ångström": "Å",
    "m": "m", "mm": "mm", "cm": "cm", "meter": "m", "metre": "m",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "msec": "ms", "millisecond": "ms", "milliseconds": "ms",
    "us": "µs", "µs": "µs", "μs": "µs", "usec": "µs", "microsecond": "µs", "microseconds": "µs",
    "ns": "ns", "nanosecond": "ns", "nanoseconds": "ns",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
}


def normalise_unit(units) -> str | None:
    """A canonical spelling of *units*; None when the file gives no unit."""
    if units is None:
        return None
    text = str(units).strip()
    if text.lower() in _UNDEFINED:
        return None
    key = text.lower()
    for prefix in ("1/", "1 /"):
        if key.startswith(prefix):
            inner = normalise_unit(text[len(prefix):])
            return f"1/{inner}" if inner else text
    for suffix in ("^-1", "-1"):
        if key.endswith(suffix) and len(key) > len(suffix):
            inner = normalise_unit(text[: -len(suffix)])
            return f"1/{inner}" if inner else text
    if key in _ALIASES:
        return _ALIASES[key]
    # Berkeley EMD writers store 'n_m', 'u_m', 'p_m'.
    if "_" in key and key.replace("_", "") in _ALIASES:
        return _ALIASES[key.replace("_", "")]
    return text


def _ureg():
    try:
        import hyperspy.api as hs

        return hs._ureg
    except (ImportError, AttributeError):  # pragma: no cover - private in hyperspy
        import pint

        return pint.UnitRegistry()


def unit_kind(units) -> str | None:
    """'length', 'reciprocal', 'time', 'angle', 'energy', 'other', 'unknown', or None (undefined)."""
    units = normalise_unit(units)
    if units is None:
        return None
    try:
        quantity = _ureg()(units)
        dims = quantity.dimensionality
    except Exception:
        return "unknown"
    if dims == {"[length]": 1}:
        return "length"
    if dims == {"[length]": -1}:
        return "reciprocal"
    if dims == {"[time]": 1}:
        return "time"
    if not dims:
        name = str(getattr(quantity, "units", ""))
        return "angle" if ("radian" in name or "degree" in name) else "unknown"
    if dims == {"[mass]": 1, "[length]": 2, "[time]": -2}:
        return "energy"
    return "other"


def check_parameters(pixel_size=None, pixel_unit=None, frame_time=None):
    """Validate the user's calibration overrides before any file is opened.

    Returns ``(pixel_size as (y, x) or None, pixel_unit or None, frame_time or None)``.
    """
    sizes = None
    if pixel_size is not None:
        if isinstance(pixel_size, (tuple, list)):
            if len(pixel_size) != 2:
                raise ParameterError(f"pixel_size={pixel_size!r} must be one number or a (y, x) pair")
            sizes = tuple(positive(v, "pixel_size") for v in pixel_size)
        else:
            sizes = (positive(pixel_size, "pixel_size"),) * 2
    unit = None
    if pixel_unit is not None:
        unit = normalise_unit(pixel_unit)
        if unit_kind(unit) != "length":
            raise ParameterError(
                f"pixel_unit={pixel_unit!r} is not a length unit",
                hint="use e.g. 'nm', 'pm', 'Å' or 'µm'",
            )
    if frame_time is not None:
        frame_time = positive(frame_time, "frame_time")
    return sizes, unit, frame_time


def _outside_caller_level() -> int:
    """stacklevel that points a warning at the first frame outside temnb (the user's cell)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the temnb folder
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def report(signal, note: str, *, source=None, warn: bool = True) -> None:
    """Record *note* on the signal and, when it is something missing, warn about it."""
    md.add_note(signal, note)
    if warn:
        warnings.warn(f"{describe_source(source)}: {note}", CalibrationWarning, stacklevel=_outside_caller_level())


def _normalise_axis_units(signal, axis):
    units = normalise_unit(axis.units)
    if units is not None and units != axis.units:  # an undefined unit stays exactly as the file gave it
        md.add_note(signal, f"axis '{axis.name}' units '{axis.units}' read as '{units}'")
        axis.units = units


def _convert(signal, axis, units, source=None):
    before = f"{axis.scale:g} {axis.units}"
    # same_units=False: hyperspy otherwise converts every image axis, or none if one is undefined.
    signal.axes_manager.convert_units(axes=axis, units=units, same_units=False)
    if normalise_unit(axis.units) != units:
        report(signal, f"axis '{axis.name}' ({before}) could not be converted to {units}; kept", source=source)
        return
    # pint leaves float noise (0.0019999999999999996); 12 digits is far beyond any calibration's accuracy.
    axis.scale, axis.offset, axis.units = float(f"{axis.scale:.12g}"), float(f"{axis.offset:.12g}"), units
    md.add_note(signal, f"axis '{axis.name}' converted from {before} to {axis.scale:g} {units} per step")


def _image_axes(signal):
    rows, cols = sorted(signal.axes_manager.signal_axes, key=lambda a: a.index_in_array)
    return rows, cols


def normalise_image_axes(signal, *, source=None, pixel_size=None, pixel_unit=None) -> None:
    """Name the image axes 'y', 'x' and put lengths in nm; report what is missing."""
    if signal.axes_manager.signal_dimension != 2:
        raise DataShapeError("is not an image (it has no two image axes)", source=source)
    rows, cols = _image_axes(signal)
    old_names = (str(rows.name), str(cols.name))
    if {n.lower() for n in old_names} == {"x", "y"} and (old_names[0].lower(), old_names[1].lower()) != ("y", "x"):
        report(signal, f"image axes named {old_names} in the file were renamed ('y', 'x') by array "
               "position (rows are y)", source=source, warn=False)
    rows.name, cols.name = "y", "x"
    for axis in (rows, cols):
        _normalise_axis_units(signal, axis)

    if pixel_size is not None or pixel_unit is not None:
        _override_pixel(signal, (rows, cols), source, pixel_size, pixel_unit)
    for axis in (rows, cols):
        _check_scale_sign(signal, axis, source)
    kinds = [unit_kind(a.units) for a in (rows, cols)]
    if None in kinds:
        report(signal, f"pixel size unknown: the file gives no units for the image axes (scale "
               f"{rows.scale:g}, {cols.scale:g} per pixel kept as the file says); pass pixel_size=... "
               "(nm) or pixel_unit=... to calibrate", source=source)
    for axis, kind in zip((rows, cols), kinds):
        if kind == "length":
            if not axis.is_uniform:
                report(signal, f"image axis '{axis.name}' is non-uniform; kept in {axis.units}", source=source)
            elif axis.units != "nm":
                _convert(signal, axis, "nm", source)
        elif kind is not None:
            report(signal, f"image axis '{axis.name}' is in '{axis.units}' ({kind}), not a length; "
                   "kept as the file says, not converted to nm", source=source)
    _check_square(signal, rows, cols, source, warn=pixel_size is None)


def _check_square(signal, rows, cols, source, warn=True):
    """Non-square pixels are reported: doses per Å² use the true area y x x, but the filters and
    networks treat a pixel as square, so a 10x difference (a TIFF tag read wrongly?) matters."""
    if not (rows.is_uniform and cols.is_uniform) or str(rows.units) != str(cols.units) or not rows.scale:
        return
    ratio = abs(rows.scale / cols.scale) if cols.scale else float("inf")
    if abs(ratio - 1) > 1e-3:
        report(signal, f"pixels are not square: y {rows.scale:.5g} {rows.units}, x {cols.scale:.5g} {cols.units} "
               f"({max(ratio, 1 / ratio):.3g}x); doses per area use y x x, but filters and networks treat pixels "
               "as square: pass pixel_size=(y, x) if the file is wrong, or resample first", source=source, warn=warn)


def _check_scale_sign(signal, axis, source):
    """A pixel has a size: a zero scale is refused; a negative one (a file whose coordinates run
    backwards, e.g. -1 nm) is reported and its magnitude kept, so that doses per Å² stay positive.
    The data are not flipped: pixel (0, 0) stays the file's first pixel."""
    if not axis.is_uniform:
        return
    if axis.scale == 0:
        raise DataValueError(f"image axis '{axis.name}' has a pixel size of 0 {axis.units}", source=source,
                             hint="pass pixel_size=... (nm) to calibrate it")
    if axis.scale < 0:
        before = axis.scale
        axis.offset, axis.scale = axis.offset + axis.scale * (axis.size - 1), -axis.scale
        report(signal, f"image axis '{axis.name}' has a negative pixel size ({before:g} {axis.units}) in the file: "
               f"its coordinates run backwards; temnb uses {axis.scale:g} {axis.units} per pixel and keeps the "
               "pixels in the file's order (the image is not flipped)", source=source)


def _override_pixel(signal, axes, source, pixel_size, pixel_unit):
    for i, axis in enumerate(axes):
        before = f"{axis.scale:g} {axis.units}"
        if pixel_size is not None:
            # Keep the offset at the same pixel index when the scale changes.
            axis.offset = axis.offset / axis.scale * pixel_size[i] if axis.scale else 0.0
            axis.scale = pixel_size[i]
        axis.units = pixel_unit or ("nm" if pixel_size is not None else axis.units)
        md.add_note(signal, f"image axis '{axis.name}' calibration set by the caller to "
                    f"{axis.scale:g} {axis.units} per pixel (file said {before})")


def normalise_time_axis(signal, *, source=None, frame_time=None, file_frame_time=None,
                        frames_axis_is_index: bool = False, hint: str | None = None):
    """Name and convert the navigation axis of a movie; return the frame time in s or None.

    *frames_axis_is_index*: the reader's navigation scale is not a time (MRC stores
    a voxel size there), so it is reset to a frame index.  *hint* is appended to
    the 'frame time unknown' warning (what the file says that is not a calibration).
    """
    nav = signal.axes_manager.navigation_axes
    if not nav:
        if frame_time is not None:
            md.add_note(signal, f"single frame; frame_time={frame_time:g} s recorded from the caller")
        return frame_time
    if len(nav) > 1:
        raise DataShapeError(f"has {len(nav)} navigation axes; a movie has one (time)", source=source)
    axis = nav[0]
    _normalise_axis_units(signal, axis)
    kind = unit_kind(axis.units)
    described = f"'{axis.name}' ({axis.scale:g} {axis.units} per step)"

    if frame_time is not None:
        if kind == "time" and axis.is_uniform:
            if axis.units != "s":
                _convert(signal, axis, "s", source)
            if not math.isclose(axis.scale, frame_time, rel_tol=1e-6):
                md.add_note(signal, f"frame time {frame_time:g} s set by frame_time= (file said {axis.scale:g} s)")
        else:
            if kind not in (None, "unknown"):
                report(signal, f"navigation axis {described} replaced by time because frame_time= was given",
                       source=source, warn=False)
            axis.offset = 0.0
        axis.name, axis.scale, axis.units = "time", frame_time, "s"
        return frame_time

    if kind == "time":
        axis.name = "time"
        if not axis.is_uniform:
            report(signal, "time axis is non-uniform; no single frame time", source=source)
            return None
        if axis.units != "s":
            _convert(signal, axis, "s", source)
        return float(axis.scale)
    if kind not in (None, "unknown"):
        report(signal, f"navigation axis {described} is not time ({kind}); kept as the file says. "
               "temnb treats it as the frame axis", source=source)
        return None

    axis.name = "time"
    if frames_axis_is_index and (axis.scale != 1 or axis.offset != 0):
        md.add_note(signal, f"the file's frame-axis spacing {axis.scale:g} is a voxel size, not a "
                    "time; the axis now counts frames")
        axis.scale, axis.offset = 1.0, 0.0
    if file_frame_time is not None:
        axis.scale, axis.units = float(file_frame_time), "s"
        md.add_note(signal, f"frame time {file_frame_time:g} s taken from the file's temnb metadata")
        return float(file_frame_time)
    extra = f" ({hint})" if hint else ""
    report(signal, f"frame time unknown; pass frame_time=... (s). Navigation axis kept as the file "
           f"says: {axis.scale:g} {axis.units} per frame{extra}", source=source)
    return None


def normalise(signal, *, source=None, pixel_size=None, pixel_unit=None, frame_time=None,
              file_frame_time=None, frames_axis_is_index=False, hint=None):
    """Normalise image and time axes in place; return the frame time (s) or None."""
    normalise_image_axes(signal, source=source, pixel_size=pixel_size, pixel_unit=pixel_unit)
    return normalise_time_axis(signal, source=source, frame_time=frame_time, file_frame_time=file_frame_time,
                               frames_axis_is_index=frames_axis_is_index, hint=hint)


# Ångström per unit of a length axis (units as normalised by temnb.io.calibration).
_TO_ANGSTROM = {"Å": 1.0, "nm": 10.0, "pm": 0.01, "µm": 1e4, "mm": 1e7, "cm": 1e8, "m": 1e10}


def _axis_angstrom(axis):
    factor = _TO_ANGSTROM.get(normalise_unit(axis.units))
    return None if factor is None else abs(float(axis.scale)) * factor


def pixel_size_angstrom(template):
    """Pixel size in Å from a signal's x axis, or None when there is no length calibration."""
    if template is None or not template.axes_manager.signal_axes:
        return None
    return _axis_angstrom(template.axes_manager.signal_axes[0])


def require_pixel_size_angstrom(template, what: str, *, source=None, hint=None) -> float:
    """The pixel size in Å of *template*'s x axis, or a ParameterError saying that *what* needs
    one (an array, or a signal without a length calibration, has none)."""
    pixel = pixel_size_angstrom(template)
    if pixel is None:
        raise ParameterError(f"{what} needs the pixel size (a length calibration of the image axes), which "
                             f"{'an array has not' if template is None else 'this signal has not'}",
                             source=source, hint=hint)
    return pixel


def pixel_sizes_angstrom(template):
    """(y, x) pixel sizes in Å of a signal's image axes, each None when that axis is not a length."""
    if template is None or len(template.axes_manager.signal_axes) != 2:
        return None, None
    x, y = template.axes_manager.signal_axes
    return _axis_angstrom(y), _axis_angstrom(x)


def pixel_area_A2(template):
    """Area of one pixel in Å² (y size × x size), or None when either axis is not a length."""
    y, x = pixel_sizes_angstrom(template)
    return None if y is None or x is None else y * x


def frame_time_s(template):
    """Seconds per frame: ``metadata.temnb.frame_time``, else a time navigation axis in s/ms/µs, else None."""
    t = md.get(template, "frame_time")
    if t is None and template.axes_manager.navigation_dimension == 1:
        ax = template.axes_manager.navigation_axes[0]
        unit = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}.get(str(ax.units).strip())
        t = None if unit is None else unit * ax.scale
    return None if t is None else float(t)
