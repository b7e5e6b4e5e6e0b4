"""uPSNR against the truth, the signal-change bias, rankings, spot ratios and contrast helpers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.classic.filters import gaussian
from temnb.core.errors import DataShapeError, ParameterError
from temnb.judge.contrast import contrast_along_line
from temnb.judge.no_reference import (
    compare_unsupervised,
    format_unsupervised_table,
    kendall_tau,
    same_ranking,
    signal_change_bias,
)
from temnb.judge.spectra import power_spectrum, spot_to_background
from temnb.simulation.synthetic import counted_movie, lattice_image


def _static(n=40, shape=(96, 96), seed=0):
    return counted_movie(n, shape, seed=seed, as_signal=False)


def test_compare_unsupervised_matches_the_true_psnr_on_a_static_movie():
    noisy, clean = _static()
    rows = compare_unsupervised({"g1": gaussian(noisy, 1.0), "g3": gaussian(noisy, 3.0)}, noisy, clean)
    for r in rows:
        assert abs(r["error_db"]) < max(0.5, 3 * r["upsnr_se"]), r
        assert r["n_frames"] == 38 and r["gap"] == 1
    assert rows[1]["psnr"] > rows[0]["psnr"] and rows[1]["upsnr"] > rows[0]["upsnr"]
    assert "uPSNR-PSNR" in format_unsupervised_table(rows)


def test_a_too_small_gap_flatters_a_temporal_denoiser():
    from scipy import ndimage

    noisy, clean = _static()
    smoothed = ndimage.gaussian_filter(noisy.astype(float), (1.0, 1.0, 1.0))   # reads frames t-4..t+4
    wrong, right = compare_unsupervised({"s": smoothed}, noisy, clean, gap=1)[0], \
        compare_unsupervised({"s": smoothed}, noisy, clean, gap={"s": 5})[0]
    assert wrong["upsnr"] > wrong["psnr"] + 2            # or inf
    assert abs(right["error_db"]) < max(1.0, 3 * right["upsnr_se"])
    assert right["n_frames"] == 30


def test_signal_change_bias_is_zero_when_static_and_grows_with_drift():
    noisy, clean = _static(n=20)
    assert signal_change_bias(gaussian(noisy, 2.0), clean, gap=3) == pytest.approx(0.0, abs=1e-9)
    drifting_noisy, drifting = counted_movie(20, (96, 96), drift_px_per_frame=(0.3, 0.0), as_signal=False)
    f = gaussian(drifting_noisy, 2.0)
    b1, b4 = (signal_change_bias(f, drifting, gap=g, as_db=True) for g in (1, 4))
    assert 0 < b1 < b4                                   # steady drift: uPSNR too high, more at larger gaps
    assert signal_change_bias(f, drifting, gap=2, per_frame=True).shape == (16,)


def test_signal_change_bias_is_the_expected_umse_error():
    rng = np.random.default_rng(3)
    _, clean = counted_movie(12, (64, 64), drift_px_per_frame=(0.5, 0.2), as_signal=False)
    f = gaussian(clean, 1.0)                           # a fixed estimate; noise drawn many times
    from temnb.judge.no_reference import umse
    values = [umse(f, rng.poisson(clean)).value for _ in range(300)]
    t = np.arange(1, 11)
    true = np.mean((f[t] - clean[t]) ** 2)
    assert np.mean(values) - true == pytest.approx(signal_change_bias(f, clean), abs=4 * np.std(values) / np.sqrt(300))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=8, unique=True))
def test_rankings_agree_with_any_monotone_transform(scores):
    a = np.array(scores, dtype=float)
    assert same_ranking(a, 3 * a + 1) and kendall_tau(a, np.exp(a / 50)) == pytest.approx(1.0)
    assert kendall_tau(a, -a) == pytest.approx(-1.0)
    assert not same_ranking(a, -a)


def test_a_linear_filter_keeps_the_spot_to_background_ratio():
    rng = np.random.default_rng(0)
    clean = 0.45 * lattice_image((128, 128), vacuum_fraction=0.0)
    noisy = rng.poisson(np.broadcast_to(clean, (20, 128, 128))).astype(float)
    ps_clean = power_spectrum(clean, log=False)
    spots = np.argwhere(ps_clean == ps_clean[np.hypot(*(np.indices(ps_clean.shape) - 64)) > 5].max())[:1] - 64
    raw = spot_to_background(power_spectrum(noisy, log=False), spots)
    blurred = spot_to_background(power_spectrum(gaussian(noisy, 1.0), log=False), spots)
    assert raw[0] > 3                                  # the lattice stands above the noise
    assert blurred[0] == pytest.approx(raw[0], rel=0.15)
    with pytest.raises(ParameterError):
        spot_to_background(ps_clean, [[500, 0]])


def test_contrast_along_line_is_inflated_by_noise_and_takes_movies():
    noisy, clean = _static(n=5)
    out = contrast_along_line({"clean": clean, "noisy": noisy}, (50, 5), (50, 90), width=3)
    assert out["noisy"][1] > out["clean"][1] > 0.05
    assert out["clean"][0].shape == out["noisy"][0].shape


def test_bad_input_raises_temnb_errors():
    noisy, clean = _static(n=6)
    with pytest.raises(ParameterError):
        compare_unsupervised({}, noisy, clean)
    with pytest.raises(DataShapeError):
        compare_unsupervised({"x": noisy}, noisy, clean[:, :10])
    with pytest.raises(ParameterError):
        compare_unsupervised({"x": noisy}, noisy, clean, gap={"x": 0})
    with pytest.raises(ParameterError):
        signal_change_bias(noisy, clean, gap=True)


def test_a_bias_that_cancels_the_whole_error_reads_as_infinite_upsnr_not_nan():
    import numpy as np

    from temnb.judge.no_reference import signal_change_bias

    # A denoised movie that is exact, on a specimen that changes: the MSE is 0+, the bias negative.
    x = np.zeros((9, 16, 16))
    x[::2] += 1.0                                   # alternating frames: references differ from frame t
    f = x + 1e-6
    value = signal_change_bias(f, x, gap=1, as_db=True)
    assert value == float("inf") or np.isfinite(value)
    assert not np.isnan(value)
    assert not np.isnan(signal_change_bias(f, x, gap=1, as_db=True, per_frame=True)).any()
