"""Fast synthetic data for tests, smoke runs and exercises (in the spirit of atomap's dummy_data).

These are *not* physical image simulations (see :mod:`temnb.simulation.hrtem` for
abTEM multislice); they are quick, seeded stand-ins with known truth: a lattice
of Gaussian columns beside a vacuum region, Poisson counts at a chosen dose, and
detector-unit versions with a known gain, offset and read noise.
"""
from __future__ import annotations

import numpy as np

from ..core import metadata as md
from ..core.errors import ParameterError


def lattice_image(shape=(128, 128), spacing_px: float = 10.0, sigma_px: float = 1.8,
                  contrast: float = 0.6, vacuum_fraction: float = 0.3, background: float = 0.8,
                  shift=(0.0, 0.0)) -> np.ndarray:
    """Clean intensity (vacuum = 1): bright Gaussian columns on a slightly darker crystal.

    The top ``vacuum_fraction`` of the rows is vacuum; *shift* (dy, dx) in pixels
    moves the crystal and its edge, which is how a drifting movie is made.
    """
    ny, nx = int(shape[0]), int(shape[1])
    if ny < 8 or nx < 8:
        raise ParameterError(f"shape {shape} is too small; use at least 8 x 8 pixels")
    if not 0 <= vacuum_fraction < 1:
        raise ParameterError(f"vacuum_fraction must be in [0, 1), got {vacuum_fraction}")
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    y -= shift[0]
    x -= shift[1]
    edge = vacuum_fraction * ny
    crystal = 1.0 / (1.0 + np.exp(-(y - edge) / 1.5))  # soft edge, no aliasing
    # Columns on a square lattice; distance to the nearest lattice site.
    dy = (y - edge - spacing_px / 2) % spacing_px - spacing_px / 2
    dx = (x - spacing_px / 2) % spacing_px - spacing_px / 2
    columns = np.exp(-(dy**2 + dx**2) / (2 * sigma_px**2))
    specimen = background + contrast * columns
    return (1 - crystal) * 1.0 + crystal * specimen


def _as_signal(array, *, pixel_size_nm, frame_time, title, quantity):
    import hyperspy.api as hs

    sig = hs.signals.Signal2D(array)
    axes = sig.axes_manager
    names = ("time", "y", "x") if array.ndim == 3 else ("y", "x")
    for ax, name in zip(axes._axes, names):
        ax.name = name
        if name == "time":
            ax.scale, ax.units = frame_time, "s"
        else:
            ax.scale, ax.units = pixel_size_nm, "nm"
    sig.metadata.General.title = title
    sig.metadata.set_item("Signal.quantity", quantity)
    md.set(sig, "simulated", True)
    md.set(sig, "source", [])
    if array.ndim == 3:
        md.set(sig, "frame_time", frame_time)
    return sig


def counted_movie(n_frames: int = 20, shape=(128, 128), dose: float = 0.45, *,
                  drift_px_per_frame=(0.0, 0.0), seed=0, pixel_size_nm: float = 0.0122,
                  frame_time: float = 0.025, as_signal: bool = True, **lattice):
    """A noisy counted movie and its clean expectation: ``(noisy, clean)``.

    Vacuum has *dose* electrons per pixel per frame on average; the crystal drifts
    by *drift_px_per_frame* each frame.  Signals carry temnb metadata
    (counts, dose, simulated) like a real temnb movie.
    """
    if n_frames < 1:
        raise ParameterError(f"n_frames must be at least 1, got {n_frames}")
    if dose <= 0:
        raise ParameterError(f"dose must be positive (electrons per pixel per frame), got {dose}")
    rng = np.random.default_rng(seed)
    clean = np.stack([
        dose * lattice_image(shape, shift=(t * drift_px_per_frame[0], t * drift_px_per_frame[1]), **lattice)
        for t in range(n_frames)
    ]).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.uint16)
    if not as_signal:
        return noisy, clean
    noisy_s = _as_signal(noisy, pixel_size_nm=pixel_size_nm, frame_time=frame_time,
                         title="dummy counted movie", quantity="Electrons (counts)")
    clean_s = _as_signal(clean, pixel_size_nm=pixel_size_nm, frame_time=frame_time,
                         title="dummy counted movie (truth)", quantity="Expected electrons")
    for sig in (noisy_s, clean_s):
        md.set(sig, "dose_per_pixel", float(dose))
        md.set(sig, "dose_method", "simulation")
    md.set(noisy_s, "counts", True)
    md.set_variance_model(noisy_s, 1.0, 0.0)
    return noisy_s, clean_s


def detector_movie(n_frames: int = 20, shape=(128, 128), dose: float = 20.0, *, gain: float = 7.3,
                   offset: float = 100.0, read_noise: float = 3.0, seed=0, as_signal: bool = True):
    """A movie in detector units, ``gain * Poisson + offset + read noise``: ``(movie, clean_counts)``.

    The kind of data an integrating camera gives; used to teach and test the
    photon-transfer (mean-variance) estimate of gain and offset.
    """
    rng = np.random.default_rng(seed)
    noisy, clean = counted_movie(n_frames, shape, dose, seed=rng, as_signal=False)
    values = gain * noisy.astype(np.float64) + offset + rng.normal(0.0, read_noise, noisy.shape)
    values = np.round(values).astype(np.int32)
    if not as_signal:
        return values, clean
    sig = _as_signal(values, pixel_size_nm=0.0122, frame_time=0.025,
                     title="dummy detector-unit movie", quantity="Intensity (detector units)")
    md.set(sig, "counts", False)
    return sig, clean
