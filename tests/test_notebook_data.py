"""What a notebook runs on: the sample with its truth, or a real file without, in counts where possible."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import temnb
from temnb.core.errors import TooFewFramesError
from temnb.io import bundled
from temnb.notebook.data import MIN_FRAMES, notebooks_for, open_data, truth_path_for


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_the_sample_comes_with_its_truth_cropped_alike():
    data = open_data("sample", "07", n_frames=6, size=64)
    assert data.is_sample and data.has_truth and data.counts
    assert data.truth.data.shape == data.movie.data.shape == (6, 64, 64)
    assert data.dose.per_pixel == pytest.approx(7.2, rel=0.01) and data.dose.per_area == pytest.approx(121, rel=0.01)
    assert "ground truth" in data.summary() and "first 6 of the 40 frames" in data.summary()
    assert data.skip_without_truth("the PSNR table") is False


def test_a_real_movie_in_detector_units_is_converted_and_has_no_truth(capsys):
    data = open_data(bundled.real_path("haadf_nanoparticle_series"), "09")
    assert not data.is_sample and not data.has_truth
    assert data.counts and data.conversion and temnb.core.metadata.get(data.movie, "counts") is True
    assert np.asarray(data.raw.data).dtype == np.uint16, "the raw signal is left as loaded"
    assert data.skip_without_truth("the PSNR table") is True
    assert "needs the ground truth" in capsys.readouterr().out
    assert "no-reference path" in data.summary()


def test_data_that_cannot_be_counts_skip_the_poisson_sections(capsys):
    data = open_data(bundled.real_path("dm4_stack_3d"), "02", n_frames=8)
    assert not data.counts and data.dose is None and data.counts_reason
    assert data.skip_without_counts("the Poisson histogram") is True
    assert "needs electron counts" in capsys.readouterr().out


def test_a_short_movie_stops_with_the_frames_needed_and_what_works():
    with pytest.raises(TooFewFramesError) as err:
        open_data(bundled.real_path("stack_saved_by_imagej"), "07_unsupervised_video_udvd")
    text = str(err.value)
    assert "has 2 frames" in text and "needs at least 5" in text and "00, 01, 02, 03, 04, 05, 06, 10, 11" in text
    assert "09_evaluating_without_ground_truth" in notebooks_for(3)
    assert "07_unsupervised_video_udvd" not in notebooks_for(3)
    assert MIN_FRAMES["07_unsupervised_video_udvd"][0] == 5


def test_a_simulated_movie_written_with_its_truth_beside_it_brings_the_truth(tmp_path):
    from temnb.simulation import synthetic

    noisy, clean = synthetic.counted_movie(6, (32, 32), dose=2.0, seed=0)
    temnb.save(noisy, tmp_path / "sim.hspy")
    temnb.save(clean, tmp_path / "sim_truth.hspy")
    assert truth_path_for(tmp_path / "sim.hspy") == tmp_path / "sim_truth.hspy"
    data = open_data(tmp_path / "sim.hspy", "09")
    assert data.has_truth and not data.is_sample
    np.testing.assert_array_equal(data.truth.data, clean.data)
