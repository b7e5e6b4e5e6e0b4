"""The helpers notebooks 07 and 08 call, each in the subpackage of its topic: build_and_fit
(temnb.nets.self_supervised), blind-spot maps and centre weights (temnb.nets.diagnostics), vacuum rows
and contrast kept (temnb.judge.contrast), drift errors (temnb.classic.align), the Gaussian reach
(temnb.classic.filters)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.classic import align, filters
from temnb.core.errors import DataShapeError, ParameterError
from temnb.judge import contrast
from temnb.nets import diagnostics, self_supervised
from temnb.simulation import synthetic


# --------------------------------------------------------------------------- drift
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=2, max_size=12),
       st.floats(-3, 3), st.floats(-3, 3))
def test_correcting_shifts_undo_the_drift_up_to_a_constant(drift, oy, ox):
    drift = np.array(drift)
    shifts = align.correcting_shifts(drift)
    assert np.allclose(shifts.mean(axis=0), 0, atol=1e-9)
    # frame + its correcting shift lands every frame on the same position
    assert np.allclose(drift + shifts, (drift + shifts)[0], atol=1e-9)
    # an estimate that differs only by a constant offset has no error
    err = align.drift_error(shifts + [oy, ox], drift)
    assert err.mean_px < 1e-9 and err.max_px < 1e-9


def test_drift_error_measures_a_known_mistake_and_the_uncorrected_error():
    drift = np.stack([np.zeros(4), np.arange(4.0)], axis=1)      # 0, 1, 2, 3 px to the right
    wrong = align.correcting_shifts(drift) + np.array([[0, 0.5], [0, -0.5], [0, 0.5], [0, -0.5]])
    err = align.drift_error(wrong, drift)
    assert err.mean_px == pytest.approx(0.5) and err.max_px == pytest.approx(0.5)
    assert err.drift_rms_px == pytest.approx(np.sqrt(np.mean([2.25, 0.25, 0.25, 2.25])))
    with pytest.raises(DataShapeError):
        align.drift_error(wrong[:3], drift)
    with pytest.raises(DataShapeError):
        align.correcting_shifts(np.zeros(5))


# --------------------------------------------------------------------------- regions
def test_region_std_is_zero_on_flat_vacuum_and_sees_fringes():
    movie = np.ones((3, 20, 20))
    assert contrast.region_std(movie, (0, 10)) == 0.0
    movie[:, :10] += 0.1 * np.sin(np.arange(20) * 2.0)[None, None, :]   # fringes in the top rows
    assert contrast.region_std(movie, (0, 10)) > 0.05
    assert contrast.region_std(movie, (10, 20)) == 0.0
    with pytest.raises(DataShapeError):
        contrast.region_std(movie, (5, 5))


def test_vacuum_rows_follow_a_crop_of_the_sample():
    from temnb.io import bundled
    truth = bundled.load_sample("truth", lazy=True)
    full = contrast.vacuum_rows(truth)
    assert full is not None and full[0] == 0 and full[1] > 50
    crop = bundled.crop_movie(truth, n_frames=2, size=128)       # rows 64..191 of the frame
    assert contrast.vacuum_rows(crop) == (0, full[1] - 64)
    noisy, _ = synthetic.counted_movie(2, (16, 16))
    assert contrast.vacuum_rows(noisy) is None                          # no simulation metadata


def test_contrast_kept_is_one_for_the_clean_image_and_zero_when_the_lattice_is_removed():
    noisy, clean = synthetic.counted_movie(3, (64, 64), dose=1.0, spacing_px=6.0, seed=3, as_signal=False)
    rows = (30, 64)                                                # the crystal
    assert contrast.contrast_kept(clean, clean, rows) == pytest.approx(1.0)
    assert contrast.contrast_kept(0.5 * clean + 7, clean, rows) == pytest.approx(0.5)
    assert abs(contrast.contrast_kept(noisy, clean, rows) - 1) < 0.3     # noise does not bias it
    flat = np.broadcast_to(clean[:, rows[0]:, :].mean(axis=(1, 2))[:, None, None], clean.shape)
    assert contrast.contrast_kept(flat, clean, rows) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataShapeError):
        contrast.contrast_kept(clean[:2], clean)


# --------------------------------------------------------------------------- scores
def test_gaussian_reach_matches_scipy_truncation():
    from scipy import ndimage
    impulse = np.zeros(41)
    impulse[20] = 1
    for sigma in (0.5, 1.0, 2.0, 3.3):
        support = np.flatnonzero(ndimage.gaussian_filter1d(impulse, sigma) > 0)
        assert filters.gaussian_reach(sigma) == 20 - support[0]


# --------------------------------------------------------------------------- networks
def test_blind_spot_maps_and_centre_weight_of_untrained_and_trained_networks():
    from temnb.nets import registry
    from temnb.nets.config import UDVDConfig, WCVDConfig

    udvd = registry.build_model(UDVDConfig(frames=3, channels=4, n_scales=1, blocks_per_scale=1, blind_region=3))
    m = diagnostics.blind_spot_map(udvd, size=16)
    assert m.shape == (3, 16, 16) and m.max() == pytest.approx(1.0)
    assert m[1, 7:10, 7:10].max() == 0.0 and m[1, 8, 11] > 0      # the 3x3 hidden, the rest seen

    noisy, _ = synthetic.counted_movie(6, (32, 32), seed=2)
    fitted = self_supervised.build_and_fit(WCVDConfig(kernel_sizes=(3, 5), features=4, depth=0), noisy, steps=3, patch_size=16,
                    kind="poisson", device="cpu")
    assert len(fitted.losses) == 3 and fitted.frames == 6 and fitted.shape == (32, 32)
    assert np.isfinite(fitted.final_loss) and fitted.seconds > 0
    assert diagnostics.centre_weight(fitted.model) == 0.0                 # still zero after Adam steps
    w = diagnostics.blind_spot_map(fitted.model, size=12)
    assert w[1, 6, 6] == 0.0 and w[0, 6, 6] > 0                   # sees its pixel in the other frames
    with pytest.raises(ParameterError):
        diagnostics.centre_weight(udvd)
    with pytest.raises(DataShapeError):
        self_supervised.build_and_fit(WCVDConfig(), noisy.data[0], steps=1)
