"""Drift correction: sub-pixel accuracy at 0.45 e-/px, round trip, calibration, bad input."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.classic.align import Drift, align, apply_drift, estimate_drift
from temnb.core import metadata as md
from temnb.core.errors import DataShapeError, DataValueError, ParameterError, TooFewFramesError
from temnb.simulation.hrtem import smooth_drift
from temnb.simulation.synthetic import counted_movie, lattice_image


def _drifting(n_frames, shape, seed, total=3.0, dose=0.45, noisy=True):
    """A lattice movie whose content moves by smooth_drift (rows, cols); returns (movie, drift)."""
    rng = np.random.default_rng(seed)
    drift = smooth_drift(n_frames, total, rng)
    clean = np.stack([dose * lattice_image(shape, shift=tuple(d)) for d in drift])
    return (rng.poisson(clean).astype(np.uint16) if noisy else clean), drift


def _rms_error(estimated, drift):
    """RMS distance between estimated correcting shifts and -drift, up to a common offset."""
    err = (estimated - estimated.mean(0)) + (drift - drift.mean(0))
    return float(np.sqrt((err ** 2).sum(1).mean()))


def test_recovers_smooth_subpixel_drift_at_045_e_per_px():
    # 512 x 512 x 12 frames at 0.45 e-/px; per frame ~0.12 px RMS, smoothed over 7 frames < 0.1.
    movie, drift = _drifting(12, (512, 512), seed=3)
    d = estimate_drift(movie, smooth_frames=7, max_shift_px=4.0, progress=False)
    assert np.ptp(drift, axis=0).max() > 2.0                       # a real, multi-pixel drift
    assert _rms_error(d.shifts_px, drift) < 0.1
    assert np.allclose(d.shifts_px.mean(0), 0, atol=1e-9)          # 'mean': centred on average position


def test_auto_bound_keeps_the_lattice_from_jumping():
    movie, drift = _drifting(10, (128, 128), seed=1)
    auto = estimate_drift(movie, progress=False)
    assert auto.method["max_shift_px"] is not None                  # lattice found, search bounded
    assert _rms_error(auto.shifts_px, drift) < 0.8                  # ~0.4 px per 128 x 128 frame
    unbounded = estimate_drift(movie, max_shift_px=None, progress=False)
    assert _rms_error(unbounded.shifts_px, drift) > 2.0             # jumps by lattice vectors


@pytest.mark.parametrize("reference, tol", [("first", 0.06), ("previous", 0.2)])
def test_other_references_fix_frame_zero(reference, tol):
    # 'previous' sums frame-to-frame steps, so their small errors add up: a looser bound.
    movie, drift = _drifting(8, (96, 96), seed=2, total=2.0, noisy=False)
    d = estimate_drift(movie, reference=reference, progress=False)
    assert np.allclose(d.shifts_px[0], 0)
    assert np.allclose(d.shifts_px, -(drift - drift[0]), atol=tol)


def test_apply_then_reestimate_gives_zero_shifts():
    movie, drift = _drifting(10, (128, 128), seed=4, noisy=False)
    aligned, d = align(movie, order=3, progress=False)
    again = estimate_drift(aligned, progress=False)
    assert np.abs(d.shifts_px).max() > 1.0
    assert np.sqrt((again.shifts_px ** 2).sum(1).mean()) < 0.05


def test_signal_kept_input_unchanged_and_metadata_recorded():
    noisy, _ = counted_movie(8, (96, 96), drift_px_per_frame=(0.3, -0.2), seed=1)
    before = noisy.data.copy()
    aligned, drift = align(noisy, progress=False)
    assert np.array_equal(noisy.data, before)                       # input untouched
    assert type(aligned) is type(noisy) and aligned.data.shape == noisy.data.shape
    for a, b in zip(aligned.axes_manager._axes, noisy.axes_manager._axes):
        assert (a.scale, a.offset, str(a.units), a.name) == (b.scale, b.offset, str(b.units), b.name)
    rec = aligned.metadata.get_item("temnb.drift_correction")
    assert np.allclose(rec["shifts_px"], drift.shifts_px) and rec["interpolation_order"] == 1
    assert md.get(aligned, "counts") is None                        # interpolated: no longer counts
    assert md.get(noisy, "counts") is True
    assert drift.time_units == "s" and np.isclose(drift.time[1], 0.025)
    assert np.allclose(drift.shifts_A, drift.shifts_px * 0.122)      # 0.0122 nm pixels
    assert drift.plot() is not None


def test_crop_keeps_only_covered_region_and_moves_offsets():
    noisy, _ = counted_movie(6, (64, 80), seed=0)
    shifts = np.array([[0, 0], [1.5, -2.0], [3.0, -4.0], [0, 0], [0, 0], [0, 0]], dtype=float)
    out = apply_drift(noisy, shifts, crop=True)
    assert out.data.shape == (6, 64 - 3, 80 - 4)
    ax_x, ax_y = out.axes_manager.signal_axes
    assert np.isclose(ax_y.offset, 3 * ax_y.scale) and np.isclose(ax_x.offset, 0.0)
    arr = apply_drift(noisy.data, shifts, crop=True)
    assert np.array_equal(arr, out.data)


def test_order0_keeps_integer_counts_and_linear_keeps_mean():
    movie, _ = _drifting(6, (64, 64), seed=5)
    shifts = np.tile([[0.4, -1.6]], (6, 1))
    whole = apply_drift(movie, shifts, order=0)
    assert whole.dtype == movie.dtype
    assert np.array_equal(whole[:, 2:-2, 2:-2], np.roll(movie, (0, -2), axis=(1, 2))[:, 2:-2, 2:-2])
    linear = apply_drift(movie, shifts)
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert linear.min() >= 0
    assert abs(linear[inner].mean() / movie[inner].mean() - 1) < 0.02


def test_callable_prefilter_is_used():
    movie, drift = _drifting(6, (96, 96), seed=6, noisy=False)
    calls = []

    def identity(m):
        calls.append(np.shape(m))
        return m

    d = estimate_drift(movie, prefilter=identity, progress=False)
    assert calls == [movie.shape] and d.method["prefilter"] == "identity"
    assert _rms_error(d.shifts_px, drift) < 0.05


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=2, max_size=4))
def test_whole_pixel_shifts_are_exact_moves(shift_list):
    rng = np.random.default_rng(0)
    movie = rng.poisson(2.0, (len(shift_list), 24, 24)).astype(np.float64)
    out = apply_drift(movie, np.array(shift_list, dtype=float), mode="constant")
    for frame, res, (dy, dx) in zip(movie, out, shift_list):
        assert np.allclose(res[3:-3, 3:-3], np.roll(frame, (dy, dx), axis=(0, 1))[3:-3, 3:-3])


def test_bad_input_raises_temnb_errors():
    frame = np.ones((32, 32))
    with pytest.raises(DataShapeError):
        estimate_drift(frame, progress=False)
    with pytest.raises(TooFewFramesError):
        estimate_drift(frame[None], progress=False)
    bad = np.ones((4, 32, 32))
    bad[2, 5, 5] = np.nan
    with pytest.raises(DataValueError):
        estimate_drift(bad, progress=False)
    good = np.random.default_rng(0).poisson(1.0, (4, 32, 32))
    with pytest.raises(ParameterError):
        estimate_drift(good, reference="median", progress=False)
    with pytest.raises(ParameterError):
        estimate_drift(good, smooth_frames=4, progress=False)
    with pytest.raises(ParameterError):
        estimate_drift(good, sigma_A=1.0, progress=False)           # no calibration on an array
    with pytest.raises(DataShapeError):
        apply_drift(good, np.zeros((3, 2)))
    with pytest.raises(ParameterError):
        apply_drift(good, np.zeros((4, 2)), mode="wrap")
    with pytest.raises(ParameterError):
        Drift(np.zeros((4, 2)), np.zeros(4), "mean").shifts_A


def test_drift_on_pure_noise_or_too_few_frames_is_bounded_and_warned():
    """Issue 13, item 7: unbounded registration of pure noise returned +-90 px shifts without a word."""
    import warnings

    from temnb.core.errors import TemnbWarning

    noise = np.random.default_rng(0).poisson(0.45, (5, 128, 128)).astype(np.float32)
    with pytest.warns(TemnbWarning, match="do not correlate above their noise"):
        drift = estimate_drift(noise, progress=False)
    assert np.abs(drift.shifts_px).max() <= 128 / 4 + 1e-9  # bounded at a quarter of the frame
    assert drift.method["max_shift_px"] == pytest.approx(32)
    two = np.random.default_rng(1).poisson(0.45, (2, 64, 64)).astype(np.float32)
    with pytest.warns(TemnbWarning, match="from 2 frames"):
        estimate_drift(two, progress=False)
    lattice = np.stack([2 + np.cos(2 * np.pi * np.arange(64) / 8)[None, :] * np.ones((64, 1))] * 6)
    counts = np.random.default_rng(2).poisson(20 * lattice).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemnbWarning)
        estimate_drift(counts, progress=False)  # real structure: no warning
