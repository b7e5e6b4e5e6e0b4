"""The metadata temnb keeps on a movie, in one place.

hyperspy's own metadata fields are used where hyperspy defines them
(``General.title``, ``Signal.quantity``, ``Acquisition_instrument.TEM``,
``Signal.Noise_properties.Variance_linear_model``); everything else that
temnb needs lives under ``metadata.temnb``:

========================  =======================================================
``temnb.source``          list of the file(s) the data were read from
``temnb.io.counts``          True: values are electron counts; False: detector units;
                          absent/None: unknown
``temnb.gain``            detector units per electron (after a gain estimate)
``temnb.offset``          detector units at zero electrons
``temnb.read_noise``      standard deviation of the read noise, detector units
``temnb.dose_per_pixel``  electrons per pixel per frame in vacuum
``temnb.dose_per_area``   electrons per Å² per frame in vacuum (the physics; needs the pixel size)
``temnb.dose_method``     how the dose was obtained ('vacuum region', 'simulation'..)
``temnb.frame_time``      seconds per frame, or absent when unknown
``temnb.simulated``       True for simulated data (never mistake them for real)
``temnb.calibration_notes``  list of what was normalised or found missing
``temnb.denoised``        provenance of a network's output (architecture, config,
                          model folder, training data)
``temnb.drift_correction``  shifts applied by temnb.classic.align and how they were found
``temnb.temporal_reach``  frames on each side of a frame that made it (filters, video networks):
                          a uPSNR reference must be further away
========================  =======================================================

Functions here read and write that node; no other module touches the raw keys.
"""

from __future__ import annotations

from typing import Any

NODE = "temnb"


_KEYS = (
    "denoised",
    "drift_correction",
    "temporal_reach",
    "source",
    "counts",
    "gain",
    "offset",
    "read_noise",
    "dose_per_pixel",
    "dose_per_area",
    "dose_method",
    "frame_time",
    "simulated",
    "calibration_notes",
)


def get(signal, key: str, default: Any = None) -> Any:
    """Value of ``metadata.temnb.<key>`` or *default*."""
    if key not in _KEYS and not key.startswith("simulation"):
        raise KeyError(f"unknown temnb metadata key {key!r}; known keys: {', '.join(_KEYS)}")
    return signal.metadata.get_item(f"{NODE}.{key}", default)


def set(signal, key: str, value: Any) -> None:  # noqa: A001 - mirrors hyperspy's set_item
    """Set ``metadata.temnb.<key>``."""
    if key not in _KEYS and not key.startswith("simulation"):
        raise KeyError(f"unknown temnb metadata key {key!r}; known keys: {', '.join(_KEYS)}")
    signal.metadata.set_item(f"{NODE}.{key}", value)


def add_note(signal, note: str) -> None:
    """Append a calibration note (what was normalised, what is missing)."""
    notes = list(get(signal, "calibration_notes", []) or [])
    if note not in notes:
        notes.append(note)
    set(signal, "calibration_notes", notes)


def source_of(signal):
    """The file(s) a signal came from, or None for in-memory data."""
    src = get(signal, "source")
    if src:
        return src[0] if len(src) == 1 else list(src)
    original = signal.metadata.get_item("General.original_filename")
    return original or None


def set_variance_model(signal, gain: float, offset: float) -> None:
    """Record the noise model variance = gain * value + offset the hyperspy way.

    hyperspy's ``estimate_poissonian_noise_variance`` reads this node, so a
    signal marked here gets the right Poisson variance from hyperspy too.
    """
    signal.metadata.set_item("Signal.Noise_properties.Variance_linear_model.gain_factor", float(gain))
    signal.metadata.set_item("Signal.Noise_properties.Variance_linear_model.gain_offset", float(offset))
