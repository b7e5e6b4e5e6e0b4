"""Describe many data files at once: what loads, with which calibration, and what is doubtful.

Used by notebook 01 (a table over every bundled real file) and by ``temnb info``.
Warnings raised while loading are collected into the row rather than printed, so
the table says everything about a file in one place.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import TemnbError
from ..core.metadata import get, source_of
from .calibration import frame_time_s, pixel_area_A2

COLUMNS = ("file", "shape", "dtype", "pixel", "frame time", "counts", "dose", "notes")


def describe(path, *, lazy: bool = True) -> dict:
    """Load *path* (lazily by default) and summarise it as one table row.

    A file temnb cannot read gives a row whose ``error`` says why, instead of
    stopping a survey of many files.
    """
    from .files import load  # hyperspy is heavy: imported when a file is described

    row = {"file": Path(str(path)).name, "path": str(path), "error": None, "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            signal = load(path, lazy=lazy)
        except TemnbError as exc:
            row["error"], row["error_message"] = exc.problem, str(exc)
            return row
    summary = info(signal)
    row.update(summary.as_dict())
    row["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    return row


def survey(paths, *, lazy: bool = True) -> list[dict]:
    """:func:`describe` for each path, in order."""
    return [describe(p, lazy=lazy) for p in paths]


def _cell(row, column) -> str:
    if row.get("error"):
        return {"file": row["file"], "notes": f"ERROR: {row['error']}"}.get(column, "")
    if column == "file":
        return row["file"]
    if column == "shape":
        return " x ".join(str(n) for n in row["shape"])
    if column == "dtype":
        return row["dtype"]
    if column == "pixel":
        unit = row["pixel_unit"] or "(no unit)"
        y, x = row.get("pixel_size_y"), row["pixel_size"]
        if y is not None and not math.isclose(abs(y), abs(x), rel_tol=1e-6):
            return f"{y:.5g} x {x:.5g} {unit} (y x x: not square)"
        return f"{x:.5g} {unit}"
    if column == "dose":
        if row.get("dose_per_pixel") is None:
            return "-"
        area = row.get("dose_per_area")
        return f"{row['dose_per_pixel']:.3g} e-/px" + ("" if area is None else f" = {area:.3g} e-/Å²")
    if column == "frame time":
        if row["n_frames"] == 1:
            return "-"
        return "unknown" if row["frame_time"] is None else f"{row['frame_time']:.4g} s"
    if column == "counts":
        return {True: "yes", False: "no"}.get(row["counts"], "unknown")
    if column == "notes":
        return str(len(row["notes"]))
    raise KeyError(column)


def format_table(rows, columns=COLUMNS) -> str:
    """A plain-text table of survey rows (monospace, for notebooks and the terminal)."""
    cells = [[_cell(row, c) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


@dataclass
class MovieInfo:
    """A plain summary of a movie's calibration, for tables and reports."""

    title: str
    shape: tuple
    dtype: str
    pixel_size: float | None      # x axis, in the file's unit (normalised)
    pixel_unit: str | None
    pixel_size_y: float | None    # y axis, same unit: differs from pixel_size for non-square pixels
    frame_time: float | None
    n_frames: int
    counts: bool | None
    dose_per_pixel: float | None
    dose_per_area: float | None   # e-/Å² per frame: needs a length calibration
    dose_rate: float | None       # e-/Å²/s: needs the frame time too
    beam_energy_kV: float | None
    detector: str | None
    simulated: bool
    lazy: bool
    source: Any = None
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def info(signal) -> MovieInfo:
    """Summarise a signal's calibration and temnb metadata."""
    am = signal.axes_manager
    sig_axes = am.signal_axes
    pixel_size = pixel_size_y = pixel_unit = None
    if sig_axes:
        ax = sig_axes[0]
        pixel_size = float(ax.scale)
        pixel_size_y = float(sig_axes[1].scale) if len(sig_axes) > 1 else pixel_size
        pixel_unit = None if str(ax.units) in ("None", "", "<undefined>") else str(ax.units)
    dose_px, area = get(signal, "dose_per_pixel"), pixel_area_A2(signal)
    dose_area = get(signal, "dose_per_area")
    if dose_area is None and dose_px is not None and area:
        dose_area = float(dose_px) / area
    rate = None if dose_area is None or not frame_time_s(signal) else dose_area / frame_time_s(signal)
    n_frames = int(am.navigation_size) if am.navigation_dimension else 1
    frame_time = get(signal, "frame_time")
    tem = signal.metadata.get_item("Acquisition_instrument.TEM", None)
    beam = detector = None
    if tem is not None:
        beam = tem.get_item("beam_energy", None)
        detector = tem.get_item("Detector.Camera.name", None) or tem.get_item("Detector.name", None)
    return MovieInfo(
        title=signal.metadata.get_item("General.title", "") or "",
        shape=tuple(int(n) for n in signal.data.shape),
        dtype=str(signal.data.dtype),
        pixel_size=pixel_size,
        pixel_unit=pixel_unit,
        pixel_size_y=pixel_size_y,
        frame_time=None if frame_time is None else float(frame_time),
        n_frames=n_frames,
        counts=get(signal, "counts"),
        dose_per_pixel=dose_px,
        dose_per_area=dose_area,
        dose_rate=rate,
        beam_energy_kV=None if beam is None else float(beam),
        detector=detector,
        simulated=bool(get(signal, "simulated", False)),
        lazy=bool(getattr(signal, "_lazy", False)),
        source=source_of(signal),
        notes=list(get(signal, "calibration_notes", []) or []),
    )
