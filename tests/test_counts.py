"""Counts versus detector units: gain/offset estimates, conversion, dose, the counts check."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import temnb
from temnb.classic.poisson import variance_mean_ratio
from temnb.core import metadata as md
from temnb.core.errors import (
    CalibrationWarning,
    CountsWarning,
    DataShapeError,
    DataValueError,
    NotCountsError,
    ParameterError,
)
from temnb.io.counts import (
    _residual,
    check_counts,
    dark_statistics,
    estimate_dose,
    estimate_gain_offset,
    record_dose,
    require_counts,
    to_counts,
)

hs = pytest.importorskip("hyperspy.api")

GAIN, OFFSET, READ = 7.3, 100.0, 3.0


def smooth_scene(shape, lo, hi, period=90.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * xx / period) * np.cos(2 * np.pi * yy / (0.8 * period))
    return lo + (hi - lo) * wave


def detector(mu, rng, frames=None):
    """Integrating-camera model: gain * Poisson + offset + Gaussian read noise."""
    size = mu.shape if frames is None else (frames,) + mu.shape
    return GAIN * rng.poisson(mu, size) + OFFSET + rng.normal(0.0, READ, size)


def movie_signal(data, *, time_scale=0.05, pixel_nm=0.02, source="synthetic.emd"):
    sig = hs.signals.Signal2D(data)
    t = sig.axes_manager.navigation_axes[0] if sig.axes_manager.navigation_dimension else None
    if t is not None:
        t.name, t.units, t.scale = "time", "s", time_scale
    for ax in sig.axes_manager.signal_axes:
        ax.units, ax.scale = "nm", pixel_nm
    md.set(sig, "source", [source])
    return sig


# --------------------------------------------------------------------------- gain and offset
def test_gain_from_movie_without_dark():
    rng = np.random.default_rng(1)
    mov = detector(smooth_scene((256, 256), 5, 60), rng, frames=20)
    est = estimate_gain_offset(mov)
    assert est.gain == pytest.approx(GAIN, rel=0.05)
    # Without a dark the offset absorbs read_noise**2/gain (~1.2 here).
    assert est.offset == pytest.approx(OFFSET - READ ** 2 / GAIN, abs=4.0)
    assert est.read_noise == 0.0 and "negligible" in " ".join(est.notes)
    assert est.method.startswith("movie")
    # The binned photon-transfer curve lies on the fitted line.
    assert np.allclose(est.model(est.levels), est.variances, rtol=0.05)
    assert np.all(np.diff(est.levels) > 0) and est.r_squared > 0.99


def test_gain_from_single_frame_with_smooth_structure():
    rng = np.random.default_rng(2)
    frame = detector(smooth_scene((512, 512), 5, 60), rng)
    est = estimate_gain_offset(frame)
    assert est.method.startswith("frame")
    assert est.gain == pytest.approx(GAIN, rel=0.05)
    assert est.offset == pytest.approx(OFFSET, abs=10.0)
    assert est.gain_stderr < 0.03 * est.gain


def test_gain_from_finer_structure_is_not_biased():
    # Period 30 px: a quadratic level estimate would be biased by several percent here.
    rng = np.random.default_rng(3)
    frame = detector(smooth_scene((512, 512), 5, 60, period=30), rng)
    assert estimate_gain_offset(frame).gain == pytest.approx(GAIN, rel=0.04)


def test_gain_with_dark_frame_fits_only_the_gain():
    rng = np.random.default_rng(4)
    mov = detector(smooth_scene((256, 256), 0.2, 1.0), rng, frames=40)   # low dose
    dark = hs.signals.Signal2D(OFFSET + rng.normal(0, READ, (256, 256)))
    est = estimate_gain_offset(mov, dark=dark)
    assert est.gain == pytest.approx(GAIN, rel=0.05)
    assert est.offset == pytest.approx(OFFSET, abs=0.1)
    assert est.read_noise == pytest.approx(READ, rel=0.03)
    assert "dark" in est.method
    frame_est = estimate_gain_offset(detector(smooth_scene((512, 512), 2, 8), rng), dark=dark)
    assert frame_est.gain == pytest.approx(GAIN, rel=0.05)


def test_dark_statistics_removes_stripes_and_uses_stacks():
    rng = np.random.default_rng(5)
    stripes = rng.normal(0, 4, 128)[None, :]          # column fixed pattern
    frame = OFFSET + stripes + rng.normal(0, READ, (128, 128))
    offset, read, note = dark_statistics(frame)
    assert offset == pytest.approx(frame.mean())
    assert read == pytest.approx(READ, rel=0.05) and frame.std() > 1.3 * READ
    stack = OFFSET + rng.normal(0, 10, (128, 128)) + rng.normal(0, READ, (6, 128, 128))
    assert dark_statistics(stack)[1] == pytest.approx(READ, rel=0.05)
    assert "temporal" in dark_statistics(stack)[2] and "stripes" in note


def test_gain_estimate_errors():
    rng = np.random.default_rng(6)
    with pytest.raises(DataShapeError, match="too small"):
        estimate_gain_offset(detector(np.full((20, 20), 10.0), rng))
    with pytest.raises(DataValueError, match="flat"):   # one level only: no slope to fit
        estimate_gain_offset(detector(np.full((128, 128), 10.0), rng))
    inverted = 2000 - GAIN * rng.poisson(smooth_scene((256, 256), 5, 60), (10, 256, 256))
    with pytest.raises(DataValueError, match="negative"):
        estimate_gain_offset(inverted)
    with pytest.raises(ParameterError):
        estimate_gain_offset(np.ones((64, 64)), method="magic")
    with pytest.raises(DataShapeError, match="1-D"):
        estimate_gain_offset(np.ones(100))


# --------------------------------------------------------------------------- to_counts
@settings(max_examples=25, deadline=None)
@given(gain=st.floats(0.05, 500), offset=st.floats(-1000, 1000), seed=st.integers(0, 2 ** 16))
def test_to_counts_inverts_the_detector_model(gain, offset, seed):
    n = np.random.default_rng(seed).poisson(3.0, (8, 8))
    out = to_counts(gain * n + offset, gain, offset)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, n, atol=1e-3 * (1 + abs(offset) / gain))


def test_to_counts_signal_metadata_and_variance_one():
    rng = np.random.default_rng(7)
    mu = np.full((64, 64), 30.0)
    sig = movie_signal(detector(mu, rng, frames=50).astype(np.float64))
    before = sig.data.copy()
    dark = OFFSET + rng.normal(0, READ, (64, 64))
    counts = to_counts(sig, GAIN, dark=dark)
    np.testing.assert_array_equal(sig.data, before)              # input untouched
    assert md.get(sig, "counts") is None
    assert counts is not sig and counts.data.dtype == np.float32
    assert md.get(counts, "counts") is True and md.get(counts, "gain") == GAIN
    assert md.get(counts, "offset") == pytest.approx(OFFSET, abs=0.1)
    assert counts.metadata.Signal.quantity == "Electrons (counts)"
    gf = counts.metadata.get_item("Signal.Noise_properties.Variance_linear_model.gain_factor")
    go = counts.metadata.get_item("Signal.Noise_properties.Variance_linear_model.gain_offset")
    assert gf == 1.0 and go == pytest.approx((READ / GAIN) ** 2, rel=0.1)
    assert counts.axes_manager[0].scale == 0.05 and counts.axes_manager[1].units == "nm"
    vmr = variance_mean_ratio(counts)
    assert vmr.ratio == pytest.approx(1 + go / 30.0, abs=0.03)
    with pytest.raises(DataValueError, match="already"):
        to_counts(counts, GAIN, OFFSET)


def test_to_counts_estimates_when_nothing_is_given():
    rng = np.random.default_rng(8)
    mov = detector(smooth_scene((128, 128), 5, 60), rng, frames=30)
    counts = to_counts(movie_signal(mov))
    assert md.get(counts, "gain") == pytest.approx(GAIN, rel=0.05)
    assert variance_mean_ratio(counts).difference_ratio == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ParameterError, match="offset"):
        to_counts(mov, gain=GAIN)
    with pytest.raises(ParameterError, match="gain"):
        to_counts(mov, gain=-1.0, offset=0.0)


# --------------------------------------------------------------------------- dose
def specimen_movie(rng, *, dose=0.45, frames=60, vacuum_cols=96, shape=(256, 256)):
    """Vacuum on the left, a lattice of Gaussian columns on a darker film elsewhere."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lattice = np.zeros(shape)
    for cy in range(4, shape[0], 12):
        for cx in range(4, shape[1], 12):
            lattice += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.0 ** 2))
    specimen = dose * (0.55 + 0.4 * lattice / lattice.max())
    mu = np.where(xx < vacuum_cols, dose, specimen)
    return rng.poisson(mu, (frames,) + shape), xx < vacuum_cols


def test_estimate_dose_auto_finds_the_vacuum():
    rng = np.random.default_rng(9)
    data, vacuum = specimen_movie(rng)
    sig = movie_signal(data)
    md.set(sig, "counts", True)
    est = estimate_dose(sig)
    assert est.dose_per_pixel == pytest.approx(0.45, rel=0.05)
    assert est.region.any() and not np.any(est.region & ~vacuum)
    assert est.dispersion == pytest.approx(1.0, abs=0.1)
    # 0.2 nm pixels = 4 A^2 ... 0.02 nm here: 0.04 A^2; 0.05 s frames.
    assert est.dose_per_area == pytest.approx(est.dose_per_pixel / 0.04)
    assert est.dose_rate == pytest.approx(est.dose_per_area / 0.05)
    record_dose(sig, est)
    assert md.get(sig, "dose_per_pixel") == est.dose_per_pixel
    assert "vacuum" in md.get(sig, "dose_method")


def test_estimate_dose_single_frame_and_given_region():
    rng = np.random.default_rng(10)
    data, vacuum = specimen_movie(rng, frames=1)
    with pytest.warns(CalibrationWarning, match="darker than the vacuum"):
        est = estimate_dose(data[0])                  # brightness alone does the work here
    assert est.dose_per_pixel == pytest.approx(0.45, rel=0.05)
    assert not np.any(est.region & ~vacuum) and est.dose_rate is None
    data, _ = specimen_movie(rng)
    given = estimate_dose(data, vacuum=(slice(0, 256), slice(0, 64)))
    assert given.dose_per_pixel == pytest.approx(0.45, rel=0.02) and given.region.sum() == 256 * 64
    with pytest.warns(CalibrationWarning, match="specimen"):
        estimate_dose(data, vacuum=(slice(0, 256), slice(128, 256)))
    with pytest.raises(ParameterError):
        estimate_dose(data, vacuum=np.ones((10, 10), bool))


def test_estimate_dose_allows_for_read_noise_after_to_counts():
    # Read noise of 3/7.3 e- makes the vacuum's variance/mean ~1.4 at 0.45 e-/px; the
    # variance model written by to_counts tells estimate_dose to expect that.
    rng = np.random.default_rng(15)
    data, vacuum = specimen_movie(rng, frames=40)
    raw = GAIN * data + OFFSET + rng.normal(0, READ, data.shape)
    counts = to_counts(movie_signal(raw), GAIN, dark=OFFSET + rng.normal(0, READ, (256, 256)))
    est = estimate_dose(counts)
    assert est.dispersion == pytest.approx(1 + (READ / GAIN) ** 2 / 0.45, abs=0.1)
    assert est.dose_per_pixel == pytest.approx(0.45, rel=0.05) and not np.any(est.region & ~vacuum)


def test_estimate_dose_without_vacuum_says_so():
    rng = np.random.default_rng(11)
    data, _ = specimen_movie(rng, vacuum_cols=0)
    with pytest.raises(DataValueError, match="no vacuum"):
        estimate_dose(data)


def test_estimate_dose_requires_counts():
    rng = np.random.default_rng(12)
    data, _ = specimen_movie(rng, frames=10)
    with pytest.raises(NotCountsError):
        estimate_dose(GAIN * data + OFFSET)


# --------------------------------------------------------------------------- counts check
def test_require_counts_passes_poisson_and_rejects_the_rest():
    rng = np.random.default_rng(13)
    counts = rng.poisson(0.45, (10, 64, 64))
    assert require_counts(counts).ok
    assert require_counts(counts.astype(np.float32)).dispersion == pytest.approx(1, abs=0.1)
    neg = counts.astype(np.int16) - 1
    with pytest.raises(NotCountsError, match=r"negative.*\n.*to_counts") as err:
        require_counts(neg, name="movie.tif")
    assert "movie.tif" in str(err.value) and str(int((neg < 0).sum())) in str(err.value)
    sig = movie_signal(counts, source="camera.emd")
    md.set(sig, "counts", False)
    with pytest.raises(NotCountsError, match="camera.emd.*detector units"):
        require_counts(sig)
    detector_units = np.round(detector(np.full((64, 64), 20.0), rng, frames=4))
    with pytest.raises(NotCountsError, match="variance / mean"):
        require_counts(detector_units)
    smooth = counts + 0.5
    with pytest.raises(NotCountsError, match="non-integer"):
        require_counts(smooth)
    with pytest.warns(CountsWarning, match="non-integer"):
        require_counts(smooth, strict=False)
    nan = counts.astype(float)
    nan[0, 3, 4] = np.nan
    with pytest.raises(DataValueError, match="NaN"):
        require_counts(nan)
    lazy = movie_signal(counts.astype(np.float32)).as_lazy()
    assert check_counts(lazy).ok                      # only the first frames are computed
    lazy_nan = movie_signal(nan).as_lazy()
    with pytest.raises(DataValueError, match="NaN"):
        check_counts(lazy_nan)
    marked = movie_signal(smooth)
    md.set(marked, "counts", True)                    # the metadata are trusted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_counts(marked).flag is True and require_counts(marked).ok


# --------------------------------------------------------------------------- real files
def test_real_ceta_dark_frame(real_dir):
    dark = hs.load(real_dir / "ceta_dark_frame.emd")
    values = dark.data.astype(float)
    assert dark.data.dtype == np.int16 and -11 <= values.min() and values.max() <= 8
    offset, read, _ = dark_statistics(dark)
    assert offset == pytest.approx(values.mean())           # about -1.57
    # Column stripes are fixed pattern: removing them leaves ~1.0 of the raw 1.65 std.
    assert 0.5 < read < values.std()
    rng = np.random.default_rng(14)
    mu = smooth_scene(values.shape, 0.2, 2.0)
    frames = [GAIN * rng.poisson(mu) + dark.data + rng.normal(0, read, mu.shape) for _ in range(12)]
    est = estimate_gain_offset(np.array(frames), dark=dark)
    assert est.gain == pytest.approx(GAIN, rel=0.05) and est.offset == pytest.approx(offset)


def test_real_noisy_haadf_gain_and_counts(real_dir):
    haadf = hs.load(real_dir / "stem_haadf_srtio3_noisy.emd")
    assert haadf.data.dtype == np.uint16
    with pytest.raises(NotCountsError):
        require_counts(haadf)
    est = estimate_gain_offset(haadf)                 # about 216 units per electron
    assert est.gain > 0 and est.gain_stderr < 0.1 * est.gain
    counts = to_counts(haadf, estimate=est)
    x = counts.data.astype(np.float64)
    residual = _residual(x)[2:-2, 2:-2]
    assert np.mean(residual ** 2) / x[2:-2, 2:-2].mean() == pytest.approx(1.0, abs=0.1)
    assert haadf.data.dtype == np.uint16 and md.get(haadf, "counts") is None
    assert temnb.require_counts(counts).flag is True
