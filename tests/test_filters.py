"""The classic filters: they keep the mean, raise the PSNR, keep calibration, and refuse bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.classic import filters as F
from temnb.core import metadata as md
from temnb.core.errors import DataShapeError, DataValueError, NotCountsError, ParameterError, TooFewFramesError
from temnb.judge.metrics import psnr
from temnb.simulation.synthetic import counted_movie, lattice_image


@pytest.fixture(scope="module")
def movie():
    return counted_movie(5, (128, 128), 0.45, seed=3)


@pytest.fixture(scope="module")
def bright_movie():
    # The median of Poisson(0.45) counts is 0: a median only keeps the mean at higher dose.
    return counted_movie(3, (128, 128), 20.0, seed=3)


# Each spatial filter applied to the middle frame (time filters to the movie).
SPATIAL = {
    "gaussian": dict(sigma=2.0),
    "median": dict(size=3),
    "adaptive_wiener": dict(radius=3),
    "lowpass": dict(cutoff=1.6),           # 1/Å; Nyquist is 4.1 1/Å at 0.122 Å/px
    "bragg_mask": dict(threshold=8.0),
    "anscombe_nlm": dict(),
    "anscombe_bm3d": dict(),
}


@pytest.mark.parametrize("name", list(SPATIAL))
def test_filter_keeps_mean_improves_psnr_and_calibration(movie, bright_movie, name):
    noisy, clean = bright_movie if name == "median" else movie
    frame, truth = noisy.inav[2], clean.data[2]
    out = F.apply(name, frame, **SPATIAL[name])
    assert out.data.shape == truth.shape
    assert out.data.mean() == pytest.approx(truth.mean(), rel=0.05)
    assert psnr(out, truth) > psnr(frame.data, truth) + 3.0
    ax_in, ax_out = frame.axes_manager.signal_axes[0], out.axes_manager.signal_axes[0]
    assert (ax_out.scale, ax_out.units) == (ax_in.scale, ax_in.units)
    assert md.get(out, "counts") is None and md.get(frame, "counts") is True
    assert out.metadata.General.title != frame.metadata.General.title


@pytest.mark.parametrize("name,params", [("gaussian_3d", dict(sigma=1.5, sigma_time=2.0)),
                                         ("time_average", dict(n=3)), ("gaussian", dict(sigma=1.5))])
def test_movie_filters_keep_shape_axes_and_improve(movie, name, params):
    noisy, clean = movie
    out = F.apply(name, noisy, **params)
    assert out.data.shape == noisy.data.shape
    assert out.axes_manager[0].scale == noisy.axes_manager[0].scale
    assert out.data.mean() == pytest.approx(clean.data.mean(), rel=0.05)
    assert psnr(out, clean.data) > psnr(noisy.data, clean.data) + 3.0


def test_time_average_is_centred_running_mean():
    movie = np.arange(5, dtype=float)[:, None, None] * np.ones((5, 8, 8))
    out = F.time_average(movie, 3)
    assert np.allclose(out[:, 0, 0], [0.5, 1, 2, 3, 3.5])


def test_gaussian_sigma_nm_uses_calibration(movie):
    frame = movie[0].inav[0]
    pixel_nm = frame.axes_manager.signal_axes[0].scale
    assert np.allclose(F.gaussian(frame, sigma_nm=2 * pixel_nm).data, F.gaussian(frame.data, 2.0))
    with pytest.raises(ParameterError):
        F.gaussian(frame.data, sigma_nm=0.1)      # an array has no calibration


def test_adaptive_wiener_poisson_rule_differs_from_estimated(movie):
    frame = movie[0].inav[0]
    poisson = F.adaptive_wiener(frame, 3).data
    estimated = F.adaptive_wiener(frame.data.astype(float), 3)
    assert not np.allclose(poisson, estimated)
    # Zero noise variance means no shrinkage at all.
    assert np.allclose(F.adaptive_wiener(frame.data.astype(float), 3, noise_variance=0), frame.data)


def test_lowpass_bad_cutoffs(movie):
    frame = movie[0].inav[0]
    with pytest.raises(ParameterError, match="Nyquist"):
        F.lowpass(frame, 10.0)                     # Nyquist is 4.1 1/Å
    with pytest.raises(ParameterError, match="cutoff_px"):
        F.lowpass(frame.data, 1.0)                 # uncalibrated
    with pytest.raises(ParameterError):
        F.lowpass(frame.data, cutoff_px=1.5)
    assert F.lowpass(frame.data, cutoff_px=0.3).shape == frame.data.shape


@settings(max_examples=15, deadline=None)
@given(st.floats(0.05, 1.0), st.integers(1, 6))
def test_lowpass_keeps_mean_property(fraction, order):
    rng = np.random.default_rng(0)
    frame = rng.poisson(2.0, (32, 40)).astype(float)
    out = F.lowpass(frame, cutoff_px=fraction, order=order)
    assert out.mean() == pytest.approx(frame.mean(), rel=1e-9)
    assert out.std() <= frame.std() + 1e-9       # a low-pass never adds variance


def test_bad_input_errors():
    with pytest.raises(TooFewFramesError):
        F.gaussian_3d(np.ones((16, 16)), 1.0, 1.0)
    bad = np.ones((16, 16))
    bad[3, 4] = np.nan
    with pytest.raises(DataValueError, match="NaN"):
        F.gaussian(bad, 1.0)
    with pytest.raises(DataShapeError):
        F.median(np.ones(16), 3)
    with pytest.raises(ParameterError):
        F.adaptive_wiener(np.ones((16, 16)), -1)
    with pytest.raises(NotCountsError):
        F.anscombe_nlm(np.full((16, 16), -2.0))
    with pytest.raises(ParameterError):
        F.apply("no such filter", np.ones((16, 16)))


def test_error_names_the_file(movie):
    frame = movie[0].inav[0].deepcopy()
    md.set(frame, "source", ["/data/pt_ceo2.emd"])
    with pytest.raises(ParameterError, match="pt_ceo2.emd"):
        F.lowpass(frame, 10.0)


def test_bragg_spots_at_lattice_frequency():
    spacing, pixel_nm = 10.0, 0.0122
    noisy, _ = counted_movie(8, (256, 256), 0.45, seed=1, spacing_px=spacing)
    spots = F.find_bragg_spots(noisy)
    assert spots.unit == "1/Å" and len(spots) >= 4
    expected = 1.0 / (spacing * pixel_nm * 10)    # 1/Å
    assert np.allclose(spots.k_magnitude[:4], expected, rtol=0.05)
    # On the clean lattice with no vacuum the spots are the square lattice's {10} family.
    clean = lattice_image((128, 128), spacing_px=8.0, vacuum_fraction=0.0) * 5
    px = F.find_bragg_spots(np.random.default_rng(0).poisson(clean), n_spots=4)
    assert np.allclose(np.sort(np.abs(px.pixels).max(axis=1)), 16.0)


def test_bragg_mask_paints_lattice_over_vacuum():
    noisy, clean = counted_movie(4, (256, 256), 0.45, seed=2)
    out = F.bragg_mask(noisy)
    vacuum = out.data[:, 10:60, :]                # the top 30 % is vacuum
    assert vacuum.std() > 0.02                   # the documented artifact: a lattice where there is none
    assert clean.data[:, 10:60, :].std() < 1e-3


def test_every_default_filter_runs_on_a_calibrated_movie():
    from temnb.classic import filters
    from temnb.simulation import synthetic

    noisy, _ = synthetic.counted_movie(6, (64, 64), dose=0.45, seed=2)
    for name in filters.FILTERS:
        out = filters.apply(name, noisy)
        assert out.data.shape == noisy.data.shape, name
        assert out.axes_manager[0].scale == noisy.axes_manager[0].scale, name
