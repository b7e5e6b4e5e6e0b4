"""The fast synthetic generators behave like the data they stand in for."""
import numpy as np
import pytest

from temnb.core import metadata
from temnb.core.errors import ParameterError
from temnb.simulation import synthetic


def test_counted_movie_has_the_requested_vacuum_dose_and_metadata():
    noisy, clean = synthetic.counted_movie(30, (96, 96), dose=0.45, vacuum_fraction=0.4, seed=1)
    vacuum = noisy.data[:, :30].astype(float)
    assert vacuum.mean() == pytest.approx(0.45, rel=0.03)
    assert metadata.get(noisy, "counts") is True
    assert metadata.get(noisy, "simulated") is True
    assert metadata.get(clean, "dose_per_pixel") == 0.45
    assert noisy.axes_manager[0].units == "s" and noisy.axes_manager[1].units == "nm"
    # Poisson: the noise variance equals the expected value
    residual = noisy.data - clean.data
    assert residual.var() / clean.data.mean() == pytest.approx(1.0, rel=0.03)


def test_counted_movie_drift_moves_the_lattice():
    noisy, clean = synthetic.counted_movie(3, (64, 64), drift_px_per_frame=(0, 2.0), seed=0)
    shifted = np.roll(clean.data[0], 4, axis=1)
    assert np.abs(clean.data[2][:, 8:] - shifted[:, 8:]).max() < 1e-5


def test_detector_movie_has_known_gain_and_offset():
    movie, clean = synthetic.detector_movie(10, (64, 64), dose=20, gain=7.3, offset=100, read_noise=3)
    assert metadata.get(movie, "counts") is False
    assert movie.data.mean() == pytest.approx(7.3 * clean.mean() + 100, rel=0.01)


def test_bad_parameters_are_clear():
    with pytest.raises(ParameterError, match="dose must be positive"):
        synthetic.counted_movie(2, dose=0)
    with pytest.raises(ParameterError, match="too small"):
        synthetic.lattice_image((4, 4))
