"""Fourier power spectra of denoised frames: the lattice a denoiser keeps or loses, without the truth.

:func:`power_spectrum` (windowed, log), :func:`radial_profile`, :func:`spectrum_line_scan` through
Bragg spots and :func:`spot_to_background` (how far the spots stand above the noise)."""
from __future__ import annotations

import numpy as np

from ..core.errors import DataShapeError, ParameterError
from ..core.signals import require_image_data, source_label, unwrap
from ..io.calibration import pixel_size_angstrom
from .contrast import line_profile


# --------------------------------------------------------------------------- power spectrum
def power_spectrum(image, *, window: str | None = "hann", log: bool = True):
    """|FFT|^2 of a frame (centred, k = 0 in the middle); a movie gives the mean over frames.

    The frame's mean is subtracted and a Hann *window* applied (None: no window), so
    the wrap-around edges do not paint a cross through the spectrum.  Averaging
    per-frame spectra (not the FFT of the mean) keeps the lattice spots even when the
    movie drifts.  ``log=True`` returns ``log(1 + power)``.  For a signal with a
    length calibration the result is a Signal2D with reciprocal axes in 1/nm
    (1/<unit> otherwise, 1/px without units); for an array, an array.
    """
    arr, template = unwrap(image)
    require_image_data(arr, source=source_label(image), what="a power spectrum")
    h, w = arr.shape[-2:]
    if window is None or window == "none":
        win = np.ones((h, w))
    elif window == "hann":
        win = np.outer(np.hanning(h), np.hanning(w))
    else:
        raise ParameterError(f"window={window!r}: use 'hann' or None")
    power = np.zeros((h, w))
    frames = arr.reshape((-1, h, w))
    for frame in frames:
        frame = frame.astype(np.float64)
        power += np.abs(np.fft.fftshift(np.fft.fft2((frame - frame.mean()) * win))) ** 2
    power /= len(frames)
    if log:
        power = np.log1p(power)
    if template is None:
        return power
    import hyperspy.api as hs

    pixel_A = pixel_size_angstrom(template)
    sx, sy = template.axes_manager.signal_axes
    out = hs.signals.Signal2D(power)
    for ax, n, src in zip(out.axes_manager.signal_axes, (w, h), (sx, sy)):
        if pixel_A is not None:
            step, units = src.scale * (pixel_A / sx.scale) / 10.0, "1/nm"   # pixel size in nm
        else:
            unit = str(src.units)
            step, units = src.scale, ("1/px" if unit in ("", "None", "<undefined>") else f"1/{unit}")
        ax.scale = 1.0 / (n * step)
        ax.offset = -(n // 2) * ax.scale
        ax.units, ax.name = units, f"k{src.name}" if src.name not in (None, "<undefined>") else "k"
    out.metadata.General.title = f"power spectrum of {template.metadata.General.title}".strip()
    out.metadata.set_item("Signal.quantity", "log(1 + power)" if log else "power")
    return out


def radial_profile(ps, *, bin_width: float = 1.0):
    """Azimuthal average of a centred power spectrum: ``(k, profile)`` arrays.

    *ps* from :func:`power_spectrum` (``log=False`` is better here: averaging the
    logarithm dilutes a few bright spots in a ring of noise).  k is in the spectrum's axis units (1/nm when
    calibrated) for a signal, FFT pixels from the centre for an array; bins are
    *bin_width* FFT pixels wide.  A ring of Bragg spots shows as a peak at 1/d.
    """
    arr, template = unwrap(ps)
    require_image_data(arr, source=source_label(ps), what="a radial profile", allow_movie=False)
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise ParameterError(f"bin_width={bin_width!r}: use a positive number of FFT pixels")
    h, w = arr.shape
    y, x = np.indices((h, w))
    if template is None:
        ky, kx, step = y - h // 2, x - w // 2, 1.0
    else:
        ax_x, ax_y = template.axes_manager.signal_axes
        ky, kx = ax_y.offset + y * ax_y.scale, ax_x.offset + x * ax_x.scale
        step = min(ax_x.scale, ax_y.scale)
    k = np.hypot(ky, kx)
    bins = np.floor(k / (bin_width * step)).astype(int).ravel()
    counts = np.bincount(bins)
    sums = np.bincount(bins, weights=arr.astype(np.float64).ravel())
    keep = counts > 0
    centres = (np.arange(len(counts)) + 0.5) * bin_width * step
    return centres[keep], sums[keep] / counts[keep]


def spectrum_line_scan(ps, k_start, k_end, *, width: int = 1):
    """Line profile across a power spectrum, e.g. through a row of Bragg spots.

    *k_start*, *k_end* are (ky, kx) from the centre: in the spectrum's units (1/nm)
    for a signal from :func:`power_spectrum`, in FFT pixels for an array.
    """
    arr, template = unwrap(ps)
    require_image_data(arr, source=source_label(ps), what="a spectrum line scan", allow_movie=False)
    if template is not None:
        return line_profile(ps, k_start, k_end, width=width)
    h, w = arr.shape
    centre = np.array([h // 2, w // 2], dtype=float)
    return line_profile(arr, tuple(np.asarray(k_start, float) + centre),
                        tuple(np.asarray(k_end, float) + centre), width=width)


def spot_to_background(ps, spots_px, *, radius: int = 1) -> np.ndarray:
    """Power at each Bragg spot over the azimuthal mean power at the same |k|.

    *ps*: a centred power spectrum array from
    :func:`temnb.judge.spectra.power_spectrum` with ``log=False``; *spots_px*: (n, 2)
    spot positions (ky, kx) in FFT pixels from the centre.  The spot's power is the
    maximum within *radius* pixels (spots fall between FFT pixels).  1 means the spot
    is lost in the noise.  A linear filter (Gaussian, low-pass) multiplies spot and
    background at one |k| alike, so it cannot raise this ratio; only a denoiser that
    adapts to the image can.
    """
    arr, _ = unwrap(ps)
    if arr.ndim != 2:
        raise DataShapeError(f"needs one power spectrum (2-D), got shape {arr.shape}")
    spots = np.atleast_2d(np.asarray(spots_px, dtype=float))
    if spots.shape[1] != 2:
        raise ParameterError("spots_px must be (ky, kx) pairs in FFT pixels from the centre")
    h, w = arr.shape
    y, x = np.indices(arr.shape)
    k = np.hypot(y - h // 2, x - w // 2)
    ring_index = np.floor(k).astype(int).ravel()
    ring_mean = np.bincount(ring_index, weights=arr.ravel()) / np.maximum(np.bincount(ring_index), 1)
    out = []
    for ky, kx in spots:
        r, c = int(round(ky)) + h // 2, int(round(kx)) + w // 2
        if not (0 <= r < h and 0 <= c < w):
            raise ParameterError(f"spot ({ky:g}, {kx:g}) lies outside the {h} x {w} spectrum")
        patch = arr[max(r - radius, 0):r + radius + 1, max(c - radius, 0):c + radius + 1]
        out.append(patch.max() / ring_mean[int(np.floor(np.hypot(ky, kx)))])
    return np.array(out)
