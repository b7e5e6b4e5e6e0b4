"""Poisson statistics: sampling, SNR, variance/mean, time averaging, the Anscombe transform."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.classic.poisson import (
    anscombe,
    anscombe_bias,
    anscombe_expectation,
    anscombe_variance,
    averaging_gain,
    inverse_anscombe,
    inverse_anscombe_bias,
    poisson_sample,
    snr,
    snr_of_dose,
    time_average,
    variance_mean_ratio,
)
from temnb.core import metadata as md
from temnb.core.errors import DataShapeError, DataValueError, NotCountsError, ParameterError, TooFewFramesError
from temnb.io.counts import to_counts

hs = pytest.importorskip("hyperspy.api")
FAST = settings(max_examples=20, deadline=None)


def movie_signal(data, time_scale=0.1):
    sig = hs.signals.Signal2D(data)
    t = sig.axes_manager.navigation_axes[0]
    t.name, t.units, t.scale, t.offset = "time", "s", time_scale, 1.0
    for ax in sig.axes_manager.signal_axes:
        ax.name, ax.units, ax.scale = ax.name, "nm", 0.05
    return sig


# --------------------------------------------------------------------------- sampling and SNR
@FAST
@given(mean=st.floats(0.1, 50), seed=st.integers(0, 2 ** 32 - 1))
def test_poisson_samples_have_variance_equal_to_mean(mean, seed):
    z = poisson_sample(np.full(200_000, mean), rng=seed)
    assert z.dtype == np.int32
    # s.e. of var/mean for Poisson is sqrt((1/mean + 2) / n): < 0.008 here.
    assert z.var(ddof=1) / z.mean() == pytest.approx(1.0, abs=0.035)
    assert z.mean() == pytest.approx(mean, rel=0.03, abs=0.01)


def test_poisson_sample_reproducible_and_signal_metadata():
    expected = movie_signal(np.full((3, 16, 16), 0.45))
    a, b = poisson_sample(expected, rng=5), poisson_sample(expected, rng=5)
    np.testing.assert_array_equal(a.data, b.data)
    assert md.get(a, "counts") is True and md.get(expected, "counts") is None
    assert a.metadata.get_item("Signal.Noise_properties.Variance_linear_model.gain_factor") == 1.0
    assert a.axes_manager[0].scale == 0.1 and a.axes_manager[1].units == "nm"
    with pytest.raises(DataValueError, match="negative"):
        poisson_sample(np.array([1.0, -0.5]))
    with pytest.raises(DataValueError, match="NaN"):
        poisson_sample(np.array([1.0, np.nan]))


@FAST
@given(dose=st.floats(0.2, 100), seed=st.integers(0, 2 ** 32 - 1))
def test_measured_snr_is_sqrt_dose(dose, seed):
    clean = np.full((64, 64), dose)
    noisy = poisson_sample(np.broadcast_to(clean, (20, 64, 64)), rng=seed)
    assert snr(noisy, clean) == pytest.approx(snr_of_dose(dose), rel=0.03)
    assert snr_of_dose(dose) == pytest.approx(np.sqrt(dose))


def test_snr_errors():
    with pytest.raises(DataShapeError, match="do not match"):
        snr(np.ones((4, 5)), np.ones((4, 6)))
    with pytest.raises(ParameterError):
        snr_of_dose(-1.0)


# --------------------------------------------------------------------------- variance / mean
def test_variance_mean_ratio_is_one_for_a_big_poisson_movie():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:256, :256]
    mu = 0.45 * (1 + 0.5 * np.sin(xx / 7.0) * np.cos(yy / 9.0))
    r = variance_mean_ratio(rng.poisson(mu, (200, 256, 256)))
    assert r.ratio == pytest.approx(1.0, abs=0.015) and r.stderr < 0.005
    assert r.difference_ratio == pytest.approx(1.0, abs=0.015)
    assert r.n_frames == 200 and r.n_pixels == 256 * 256


def test_variance_mean_ratio_frame_differences_survive_slow_drift():
    rng = np.random.default_rng(2)
    ramp = np.linspace(2.0, 6.0, 100)[:, None, None]          # beam brightens threefold
    movie = rng.poisson(ramp * np.ones((1, 64, 64)))
    r = variance_mean_ratio(movie)
    assert r.ratio > 1.2                                         # the drift looks like noise
    assert r.difference_ratio == pytest.approx(1.0, abs=0.05)    # differences cancel it
    mask = np.zeros((64, 64), bool)
    mask[:10] = True
    assert variance_mean_ratio(movie, mask=mask).n_pixels == 640


def test_variance_mean_ratio_gives_the_gain_for_detector_units():
    rng = np.random.default_rng(3)
    movie = 7.3 * rng.poisson(20.0, (50, 64, 64))
    assert variance_mean_ratio(movie).ratio == pytest.approx(7.3, rel=0.03)


def test_variance_mean_ratio_errors():
    with pytest.raises(TooFewFramesError):
        variance_mean_ratio(np.ones((32, 32)))
    with pytest.raises(DataShapeError, match="1-D"):
        variance_mean_ratio(np.ones(32))
    bad = np.ones((3, 8, 8))
    bad[1, 2, 2] = np.nan
    with pytest.raises(DataValueError, match="NaN"):
        variance_mean_ratio(bad)
    with pytest.raises(DataShapeError, match="mask"):
        variance_mean_ratio(np.ones((3, 8, 8)), mask=np.ones((4, 4), bool))


# --------------------------------------------------------------------------- time averaging
@FAST
@given(n=st.integers(2, 8), mean=st.floats(0.3, 20), seed=st.integers(0, 2 ** 32 - 1))
def test_time_average_divides_the_variance_by_n(n, mean, seed):
    movie = np.random.default_rng(seed).poisson(mean, (8 * n, 48, 48))
    avg = time_average(movie, n)
    assert avg.shape == (8, 48, 48)
    ratio = avg.var(axis=0, ddof=1).mean() / movie.var(axis=0, ddof=1).mean()
    assert ratio == pytest.approx(1 / n, rel=0.1)
    assert avg.mean() == pytest.approx(movie.mean(), rel=1e-6)
    running = time_average(movie, n, running=True)
    assert running.shape[0] == 8 * n - n + 1
    np.testing.assert_allclose(running[0], movie[:n].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(time_average(movie, n, reduce="sum")[1], movie[n:2 * n].sum(0))


def test_time_average_signal_axes_and_metadata():
    rng = np.random.default_rng(4)
    sig = movie_signal(rng.poisson(0.45, (10, 16, 16)))
    md.set(sig, "counts", True)
    md.set(sig, "frame_time", 0.1)
    md.set(sig, "dose_per_pixel", 0.45)
    avg = time_average(sig, 4)
    t = avg.axes_manager.navigation_axes[0]
    assert avg.data.shape == (2, 16, 16) and t.size == 2
    assert t.scale == pytest.approx(0.4) and t.offset == pytest.approx(1.15)
    assert t.name == "time" and t.units == "s"
    assert avg.axes_manager.signal_axes[0].scale == 0.05 and sig.axes_manager[0].scale == 0.1
    assert md.get(avg, "frame_time") == pytest.approx(0.4)
    assert md.get(avg, "dose_per_pixel") == pytest.approx(1.8)
    # The mean of counts is detector units of gain 1/n: to_counts gives back the sums.
    assert md.get(avg, "counts") is False and md.get(avg, "gain") == 0.25
    np.testing.assert_allclose(to_counts(avg).data, sig.data[:8].reshape(2, 4, 16, 16).sum(1))
    summed = time_average(sig, 5, reduce="sum")
    assert md.get(summed, "counts") is True and summed.data.dtype.kind == "i"


def test_time_average_errors():
    with pytest.raises(TooFewFramesError):
        time_average(np.ones((8, 8)), 2)
    for bad_n in (0, 11, 2.5):
        with pytest.raises(ParameterError):
            time_average(np.ones((10, 8, 8)), bad_n)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), dose=st.sampled_from([0.45, 2.0]))
def test_averaging_gain_follows_sqrt_n(seed, dose):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    clean = dose * (1 + 0.3 * np.sin(xx / 5.0))
    movie = rng.poisson(clean, (64, 96, 96))
    with_clean = averaging_gain(movie, clean)
    assert list(with_clean.ns) == [1, 2, 4, 8, 16, 32, 64]
    np.testing.assert_allclose(with_clean.gain, np.sqrt(with_clean.ns), rtol=0.06)
    assert with_clean.snr[0] == pytest.approx(np.sqrt(dose), rel=0.1)
    blind = averaging_gain(movie, ns=(1, 2, 4, 8))
    np.testing.assert_allclose(blind.gain, np.sqrt([1, 2, 4, 8]), rtol=0.08)
    np.testing.assert_allclose(blind.reference, blind.snr[0] * np.sqrt([1, 2, 4, 8]))


def test_averaging_gain_errors():
    with pytest.raises(ParameterError):
        averaging_gain(np.ones((8, 4, 4)), ns=(1, 8))          # one group: no differences
    with pytest.raises(DataShapeError, match="clean"):
        averaging_gain(np.ones((8, 4, 4)), np.ones((3, 3)))


# --------------------------------------------------------------------------- Anscombe
@settings(max_examples=25, deadline=None)
@given(mean=st.floats(0.2, 50), seed=st.integers(0, 2 ** 32 - 1))
def test_exact_unbiased_inverse_recovers_the_mean(mean, seed):
    z = np.random.default_rng(seed).poisson(mean, 1_000_000)
    y = float(np.mean(anscombe(z).astype(np.float64)))
    # Propagate the sampling error of mean(A) through the slope d mean / d E[A].
    slope = 1e-3 / (anscombe_expectation(mean + 1e-3) - anscombe_expectation(mean))
    tol = 5 * slope * np.sqrt(anscombe_variance(mean) / z.size) + 1e-4
    assert inverse_anscombe(y) == pytest.approx(mean, abs=tol)
    assert tol < 0.02 * mean + 0.005


@FAST
@given(mean=st.floats(0.0, 5000))
def test_exact_inverse_undoes_the_expectation(mean):
    assert inverse_anscombe(np.float64(anscombe_expectation(mean))) == pytest.approx(
        mean, rel=1e-5, abs=1e-6)


def test_algebraic_inverse_is_biased_at_low_dose():
    # The teaching point of notebook 02: at 0.45 e-/px the algebraic inverse of the mean
    # Anscombe value is ~25 % low, the asymptotic one ~30 % high; the exact one is right.
    assert inverse_anscombe_bias(0.45, "algebraic") < -0.2 * 0.45
    assert inverse_anscombe_bias(0.45, "asymptotic") > 0.2 * 0.45
    assert abs(inverse_anscombe_bias(0.45, "exact_unbiased")) < 1e-6
    z = np.random.default_rng(5).poisson(0.45, 2_000_000)
    y = np.float64(anscombe(z).mean(dtype=np.float64))
    assert inverse_anscombe(y, "algebraic") < 0.8 * 0.45
    assert inverse_anscombe(y) == pytest.approx(0.45, rel=0.01)
    # At high dose all three agree to a fraction of a percent.
    assert abs(inverse_anscombe_bias(200.0, "algebraic")) < 0.002 * 200


def test_anscombe_is_not_variance_stabilised_at_low_dose():
    assert anscombe_variance(0.45) < 0.5
    assert anscombe_variance(20.0) == pytest.approx(1.0, abs=0.01)
    z = np.random.default_rng(6).poisson(0.45, 1_000_000)
    assert anscombe(z).var() == pytest.approx(anscombe_variance(0.45), rel=0.02)
    assert anscombe_bias(0.45) < -0.1 and abs(anscombe_bias(1000.0)) < 0.01
    means = np.array([0.1, 0.45, 1.0, 5.0])
    assert anscombe_expectation(means).shape == (4,)
    assert np.all(np.diff(anscombe_variance(means)) > 0)


def test_anscombe_signals_and_errors():
    sig = movie_signal(np.random.default_rng(7).poisson(3.0, (4, 8, 8)))
    md.set(sig, "counts", True)
    md.set_variance_model(sig, 1.0, 0.0)
    a = anscombe(sig)
    assert a.axes_manager[0].scale == 0.1 and md.get(a, "counts") is False
    assert not a.metadata.has_item("Signal.Noise_properties.Variance_linear_model")
    back = inverse_anscombe(a, "algebraic")
    np.testing.assert_allclose(back.data, sig.data, atol=1e-4)
    assert md.get(back, "counts") is None
    with pytest.raises(DataValueError, match="-3/8"):
        anscombe(np.array([1.0, -2.0]))
    md.set(sig, "counts", False)
    with pytest.raises(NotCountsError):
        anscombe(sig)
    with pytest.raises(ParameterError):
        inverse_anscombe(np.ones(3), method="closed")
    assert inverse_anscombe(np.array([0.5]))[0] == 0.0        # below A(0): zero electrons


def test_variance_by_level_follows_the_poisson_line():
    from temnb.classic import poisson
    from temnb.simulation import synthetic

    noisy, clean = synthetic.counted_movie(20, (96, 96), dose=5.0, seed=4)
    levels, variances, stderr, slope = poisson.variance_by_level(noisy, clean)
    assert slope == pytest.approx(1.0, rel=0.03)
    np.testing.assert_allclose(variances, levels, rtol=0.1)
    # detector units (gain 3) put the same bins on a line of slope 3
    _, _, _, slope3 = poisson.variance_by_level(3 * noisy.data, 3 * clean.data)
    assert slope3 == pytest.approx(3.0, rel=0.03)
