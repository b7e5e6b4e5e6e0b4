"""Poisson log-likelihood-ratio maps (temnb.explain.likelihood): the formula on closed-form cases,
regions clipped at the edge, the per-pixel normalisation, real against phantom columns on an
abTEM-simulated Pt frame at the paper's 121 e-/Å² per frame, thresholds derived again and scaled
with dose, a movie at fixed columns, and bad input."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import poisson

from temnb.core.dose import PAPER, Dose
from temnb.core.errors import DataShapeError, NotCountsError, ParameterError
from temnb.explain import likelihood as L
from temnb.judge import columns


def _counts(array):
    """A hand-built frame (constant, tiled) marked as electron counts: its noise is not Poisson-like."""
    sig = _signal(np.asarray(array))
    sig.metadata.set_item("temnb.counts", True)
    return sig


def _signal(array, pixel_size_nm=None):
    import hyperspy.api as hs

    sig = hs.signals.Signal2D(array)
    if pixel_size_nm is not None:
        for ax in sig.axes_manager.signal_axes:
            ax.scale, ax.units = pixel_size_nm, "nm"
    return sig


# ------------------------------------------------------------------------------------------
# The formula


def test_constant_level_in_the_region_gives_the_closed_form_exactly():
    rng = np.random.default_rng(0)
    shape, centre, radius = (41, 41), (20.0, 20.0), 6.0
    counts = rng.poisson(0.6, shape)
    lambda_c, lambda_v = 0.62, 0.45
    denoised = np.full(shape, lambda_c)
    res = L.column_llr(counts, denoised, columns=[centre], radius_px=radius, vacuum_level=lambda_v)
    idx = L.disk_region(centre, radius, shape)
    x = counts.ravel()[idx]
    closed = x.mean() * np.log(lambda_c / lambda_v) - (lambda_c - lambda_v)
    direct = np.mean(poisson.logpmf(x, lambda_c) - poisson.logpmf(x, lambda_v))  # Eq. 6 term by term
    row = res.rows[0]
    assert row["llr"] == pytest.approx(closed, rel=1e-12) and row["llr"] == pytest.approx(direct, rel=1e-10)
    assert row["region_px"] == len(idx) == 113  # pixel centres within 6 px
    assert row["lambda_c"] == pytest.approx(lambda_c) and row["mean_counts"] == pytest.approx(x.mean())
    # The expectation is a KL divergence: positive for counts at lambda_c, negative at lambda_v.
    kl_cv = lambda_c * np.log(lambda_c / lambda_v) - lambda_c + lambda_v
    kl_vc = lambda_v * np.log(lambda_v / lambda_c) - lambda_v + lambda_c
    assert L.expected_llr(lambda_c, lambda_c, lambda_v) == pytest.approx(kl_cv)
    assert L.expected_llr(lambda_v, lambda_c, lambda_v) == pytest.approx(-kl_vc)
    assert kl_cv == pytest.approx((lambda_c - lambda_v) ** 2 / (2 * lambda_v), rel=0.15)


def test_a_denoiser_output_of_zero_is_floored_before_the_logarithm():
    counts = np.ones((9, 9), int)
    res = L.column_llr(_counts(counts), np.full((9, 9), -0.3), columns=[[4, 4]], radius_px=2, vacuum_level=0.45)
    assert res.rows[0]["lambda_c"] == pytest.approx(-0.3)  # reported as the denoiser gave it
    expected = 1.0 * np.log(L.LAMBDA_FLOOR / 0.45) - (L.LAMBDA_FLOOR - 0.45)
    assert res.rows[0]["llr"] == pytest.approx(expected) and res.rows[0]["verdict"] == "spurious"


def test_regions_at_the_edge_are_clipped_never_wrapped():
    shape, radius = (30, 30), 4.0
    counts = np.zeros(shape, int)
    counts[-5:, :] = 50  # the opposite edge: a wrapped disk would pick these up
    counts[:, -5:] = 50
    res = L.column_llr(_counts(counts), np.full(shape, 2.0), columns=[[0.0, 0.0], [15.0, 15.0]], radius_px=radius,
                       vacuum_level=1.0)
    corner, inside = res.rows
    assert inside["region_px"] == 49 and corner["region_px"] == 17  # a quarter disk plus its two edges
    idx = L.disk_region((0.0, 0.0), radius, shape)
    rows, cols = np.divmod(idx, shape[1])
    assert rows.max() <= 4 and cols.max() <= 4  # nothing from the far side
    assert corner["mean_counts"] == 0.0 and corner["llr"] == pytest.approx(-(2.0 - 1.0))
    # The map: NaN outside the regions, the column's value inside.
    m = res.map.data
    assert np.isnan(m[10, 0]) and np.isnan(m[-1, -1]) and m[0, 0] == pytest.approx(corner["llr"])
    assert np.count_nonzero(np.isfinite(m)) == 17 + 49
    assert L.disk_region((-10.0, -10.0), radius, shape).size == 0  # a column wholly outside


def test_the_per_pixel_normalisation_makes_the_llr_independent_of_the_region_size():
    shape = (101, 101)
    constant = np.full(shape, 3)
    lambda_c, lambda_v = 9.0, 4.5
    kl = float(L.expected_llr(lambda_c, lambda_c, lambda_v))  # 9 ln 2 - 4.5 = 1.738 per pixel
    real = np.random.default_rng(1).poisson(lambda_c, shape)  # a real column's counts, i.i.d.
    sizes, flat, drawn = [], [], []
    for radius in (10.0, 20.0, 40.0):
        kw = {"columns": [[50.0, 50.0]], "radius_px": radius, "vacuum_level": lambda_v}
        flat.append(L.column_llr(_counts(constant), np.full(shape, lambda_c), **kw).rows[0]["llr"])
        row = L.column_llr(real, np.full(shape, lambda_c), **kw).rows[0]
        sizes.append(row["region_px"])
        drawn.append(row["llr"])
        # Within the shot noise of the mean count, whatever |R|.
        assert abs(row["llr"] - kl) < 4 * float(L.llr_spread(lambda_c, lambda_c, lambda_v, row["region_px"]))
    assert sizes[0] < sizes[1] < sizes[2] and sizes[2] > 15 * sizes[0]
    assert np.ptp(flat) < 1e-12  # the same per-pixel counts give exactly the same LLR
    assert flat[0] == pytest.approx(3 * np.log(2) - 4.5)
    # The summed log-likelihood ratio (|R| x LLR) grows with the region; the per-pixel one does not.
    summed = np.array(sizes) * np.array(drawn)
    assert summed[2] / summed[0] == pytest.approx(sizes[2] / sizes[0], rel=0.1)
    # Its spread, by contrast, falls as 1 / sqrt(|R|).
    assert L.llr_spread(0.9, 0.9, 0.45, 400) == pytest.approx(L.llr_spread(0.9, 0.9, 0.45, 100) / 2)


# ------------------------------------------------------------------------------------------
# Real columns against phantoms on an abTEM frame at the paper's dose per Å²

P_SIM = 0.244  # Å per pixel: the paper's 0.061 Å pixels binned 4 x 4
DEFOCUS_NM = 5.0  # in the paper's 0-20 nm range: dark columns, 27 % below the vacuum over the 0.7 Å disk


@pytest.fixture(scope="module")
def sim():
    from temnb.simulation import hrtem
    from temnb.simulation.structures import build_scene

    # The medium particle (43 columns) in a 164-px frame; 3 grid points per pixel keep it to seconds.
    scene = build_scene("medium", field_of_view=164 * P_SIM, support_thickness=20.0)
    image = hrtem.hrtem_image(scene, DEFOCUS_NM, pixel_size=P_SIM, sampling=P_SIM / 3).astype(np.float64)
    dose = Dose.from_area(PAPER.per_area, P_SIM)  # 121 e-/Å² per frame = 7.2 e-/px here
    vacuum = columns.vacuum_region(image.shape, scene)
    return SimpleNamespace(scene=scene, image=image, dose=dose, vacuum=vacuum,
                           clean=image * dose.per_pixel / image[vacuum].mean(),
                           truth=columns.true_columns(scene, P_SIM, shift_px=(-0.1, 0.1)),
                           region=columns.particle_region(image.shape, scene))


def test_real_and_phantom_columns_separate_at_the_paper_dose(sim):
    assert sim.dose.per_pixel == pytest.approx(0.45 * 16, rel=0.01)
    d = L.derive_thresholds(sim.image, sim.truth, sim.vacuum, dose=sim.dose, pixel_size_A=P_SIM, n_noise=20, seed=0)
    assert d.auc >= 0.9  # measured 0.994
    assert d.vacuum_level == pytest.approx(sim.dose.per_pixel, rel=0.01)
    assert 24 <= d.region_px <= 27  # the 0.7 Å disk on 0.244 Å pixels (|R| 414 at 0.061 Å)
    th = d.thresholds
    assert th.real > 0 > th.spurious  # an undetermined band between, as in the paper
    assert d.measured_false_real <= 0.02 and d.measured_false_spurious <= 0.02  # 1 % asked
    assert np.median(d.real_llr) > th.real and np.median(d.phantom_llr) < th.spurious
    # Carried to the paper's pixels (same electrons per column) they land near the paper's 0.0050 / -0.0060.
    paper_pixels = L.scale_thresholds(th, dose_per_pixel=PAPER.per_pixel, region_px=414)
    assert 0.002 < paper_pixels.real < 0.012 and -0.012 < paper_pixels.spurious < -0.002


def test_the_thresholds_move_with_dose_as_the_kl_scaling_predicts(sim):
    kw = {"pixel_size_A": P_SIM, "n_noise": 60, "false_real_rate": 0.05, "false_spurious_rate": 0.05}
    ref = L.derive_thresholds(sim.image, sim.truth, sim.vacuum, dose=sim.dose, seed=0, **kw)
    for k in (0.5, 0.25):
        d = L.derive_thresholds(sim.image, sim.truth, sim.vacuum, dose=Dose.from_area(PAPER.per_area * k, P_SIM),
                                seed=1, **kw)
        ratio = d.vacuum_level / ref.vacuum_level
        # Mean LLRs are KL divergences: proportional to the dose per pixel at a fixed contrast.
        assert d.real_llr.mean() / ref.real_llr.mean() == pytest.approx(ratio, rel=0.06)
        assert d.phantom_llr.mean() / ref.phantom_llr.mean() == pytest.approx(ratio, rel=0.06)
        # The thresholds (mean + z std; the std goes as sqrt(dose)) as scale_thresholds predicts.
        predicted = L.scale_thresholds(ref.thresholds, dose_per_pixel=d.vacuum_level)
        spread = np.std(d.phantom_llr)
        assert abs(predicted.real - d.thresholds.real) < 0.2 * spread, k
        assert abs(predicted.spurious - d.thresholds.spurious) < 0.2 * spread, k
        assert d.auc < ref.auc  # fewer electrons, more overlap


def test_mean_llrs_match_the_expected_kl_divergences(sim):
    d = L.derive_thresholds(sim.image, sim.truth, sim.vacuum, dose=sim.dose, pixel_size_A=P_SIM, n_noise=40, seed=3)
    sites = L.phantom_sites(sim.vacuum, 2 * 0.7 / P_SIM, n=len(sim.truth), seed=np.random.default_rng(3))
    hallucinated = L.add_phantom_columns(sim.clean, sites, sim.truth, radius_px=2 * 0.7 / P_SIM,
                                         vacuum_level=sim.dose.per_pixel)
    lam = np.array([hallucinated.ravel()[L.disk_region(p, 0.7 / P_SIM, sim.clean.shape)].mean()
                    for p in sim.truth.positions_px])
    lv = sim.dose.per_pixel
    assert d.real_llr.mean() == pytest.approx(np.mean(L.expected_llr(lam, lam, lv)), rel=0.05)
    # The phantoms copy the mean column, so their level is the mean real level.
    assert d.phantom_llr.mean() == pytest.approx(float(L.expected_llr(lv, lam.mean(), lv)), rel=0.1)


def test_the_same_dose_per_area_on_finer_pixels_scales_the_thresholds_with_the_dose_per_pixel(sim):
    # 0.122 Å pixels holding a quarter of the electrons each: the same experiment, |R| four times larger.
    fine = np.kron(sim.image, np.ones((2, 2)))
    fine_truth = sim.truth.positions_px * 2 + 0.5
    fine_vacuum = np.kron(sim.vacuum, np.ones((2, 2), bool))
    coarse = L.derive_thresholds(sim.image, sim.truth, sim.vacuum, dose=sim.dose, pixel_size_A=P_SIM,
                                 n_noise=40, seed=0, false_real_rate=0.05, false_spurious_rate=0.05)
    d = L.derive_thresholds(fine, fine_truth, fine_vacuum, dose=sim.dose.per_pixel / 4, pixel_size_A=P_SIM / 2,
                            n_noise=40, seed=0, false_real_rate=0.05, false_spurious_rate=0.05)
    assert d.region_px == pytest.approx(4 * coarse.region_px, rel=0.06)
    # Published thresholds (no model) scale with the dose per pixel alone: right here.
    bare = L.LLRThresholds(coarse.thresholds.real, coarse.thresholds.spurious, coarse.vacuum_level, coarse.region_px)
    predicted = L.scale_thresholds(bare, dose_per_pixel=d.vacuum_level, region_px=d.region_px)
    assert predicted.real == pytest.approx(coarse.thresholds.real / 4, rel=0.01)
    spread = np.std(d.phantom_llr)
    assert abs(predicted.real - d.thresholds.real) < 0.2 * spread
    assert abs(predicted.spurious - d.thresholds.spurious) < 0.2 * spread
    assert d.auc == pytest.approx(coarse.auc, abs=0.02)


def test_column_llr_on_a_hallucinated_frame_flags_the_phantoms(sim):
    radius = 0.7 / P_SIM
    sites = L.phantom_sites(sim.vacuum, 2 * radius, n=10, seed=0)
    hallucinated = L.add_phantom_columns(sim.clean, sites, sim.truth, radius_px=2 * radius, vacuum=sim.vacuum)
    counts = np.random.default_rng(0).poisson(sim.clean)  # drawn without the phantoms
    den = _signal(hallucinated, P_SIM / 10)
    res = L.column_llr(counts, den, vacuum=sim.vacuum,
                       detect={"polarity": "dark", "vacuum": sim.vacuum, "region": sim.region | sim.vacuum})
    assert len(res.rows) == len(sim.truth) + len(sites)  # LoG finds every column and every phantom
    pos = np.array([[r["row_px"], r["col_px"]] for r in res.rows])
    is_phantom = np.linalg.norm(pos[:, None] - sites[None], axis=-1).min(1) < 1.0
    verdicts = np.array(res.verdicts)
    assert is_phantom.sum() == len(sites)
    # At the paper's thresholds (scaled) about 1.5 % of phantoms pass as real by shot noise alone.
    assert np.sum(verdicts[is_phantom] == "real") <= 1 and np.mean(verdicts[is_phantom] == "spurious") >= 0.7
    assert np.mean(verdicts[~is_phantom] == "real") >= 0.7  # measured 36 of 43
    assert "spurious" not in verdicts[~is_phantom]
    assert res.vacuum_level == pytest.approx(sim.dose.per_pixel, rel=0.02)  # from the raw counts' vacuum
    # The thresholds default to the paper's, carried to 7.2 e-/px: 16 x 0.0050 and 16 x -0.0060.
    assert res.thresholds.real == pytest.approx(0.0050 * res.vacuum_level / 0.45)
    # The map keeps the calibration; the table prints.
    assert res.map.axes_manager.signal_axes[0].scale == pytest.approx(P_SIM / 10)
    assert res.rows[0]["row_A"] == pytest.approx(res.rows[0]["row_px"] * P_SIM)
    text = res.format_table()
    assert "spurious" in text and text.count("\n") == len(res.rows) + 3


def test_llr_over_time_at_fixed_columns_matches_frame_by_frame(sim):
    rng = np.random.default_rng(5)
    movie = rng.poisson(np.broadcast_to(sim.clean, (6,) + sim.clean.shape))
    positions = sim.truth.positions_px
    series = L.llr_over_time(movie, sim.clean, columns=sim.truth, vacuum_level=sim.dose.per_pixel,
                             pixel_size_A=P_SIM)
    assert series.llr.shape == (len(positions), 6) and series.region_px.shape == (len(positions),)
    assert np.allclose(series.positions_A, positions * P_SIM)
    for t in (0, 5):
        one = L.column_llr(movie[t], sim.clean, columns=sim.truth, vacuum_level=sim.dose.per_pixel,
                           pixel_size_A=P_SIM, thresholds=series.thresholds)
        assert np.allclose(series.llr[:, t], one.llr)
        assert list(series.verdicts[:, t]) == one.verdicts
    assert series.fraction("real").mean() > 0.7
    # A denoised movie of the same shape is tested frame by frame; the vacuum comes from the raw movie.
    again = L.llr_over_time(movie, np.broadcast_to(sim.clean, movie.shape), columns=sim.truth, vacuum=sim.vacuum,
                            pixel_size_A=P_SIM)
    assert again.vacuum_level == pytest.approx(movie[:, sim.vacuum].mean())


# ------------------------------------------------------------------------------------------
# Thresholds and bad input


def test_the_paper_thresholds_and_their_scaling():
    th = L.PAPER_THRESHOLDS
    assert (th.real, th.spurious, th.dose_per_pixel, th.pixel_size_A) == (0.0050, -0.0060, 0.45, 0.061)
    assert len(L.disk_region((100.0, 100.0), 0.7 / 0.061, (200, 200))) in range(405, 425)  # |R| ~ 410
    assert [th.verdict(v) for v in (0.006, 0.0, -0.007)] == ["real", "undetermined", "spurious"]
    binned = L.scale_thresholds(th, dose_per_pixel=Dose.from_area(PAPER.per_area, 0.244).per_pixel, region_px=26)
    assert binned.real == pytest.approx(0.0050 * 16, rel=0.01) and binned.spurious == pytest.approx(-0.096, rel=0.01)
    with pytest.raises(ParameterError, match="below the spurious"):
        L.LLRThresholds(-0.01, 0.01, 0.45, 410)


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.45, (32, 32))
    denoised = np.full((32, 32), 0.5)
    with pytest.raises(ParameterError, match="radius_px"):  # radius in Å, no calibration
        L.column_llr(counts, denoised, columns=[[16, 16]], vacuum_level=0.45)
    with pytest.raises(ParameterError, match="pixel size"):
        L.column_llr(_signal(counts), _signal(denoised), columns=[[16, 16]], vacuum_level=0.45)
    ok = L.column_llr(counts, denoised, columns=[[16, 16]], vacuum_level=0.45, radius_px=3)
    assert ok.rows[0]["row_A"] is None
    calibrated = L.column_llr(_signal(counts), _signal(denoised, 0.0061), columns=[[16, 16]], vacuum_level=0.45)
    assert calibrated.radius_px == pytest.approx(0.7 / 0.061)
    with pytest.raises(DataShapeError, match="shape"):
        L.column_llr(counts, denoised[:30], columns=[[16, 16]], vacuum_level=0.45, radius_px=3)
    with pytest.raises(DataShapeError, match="movie"):
        L.llr_over_time(counts, denoised, columns=[[16, 16]], vacuum_level=0.45, radius_px=3)
    with pytest.raises(NotCountsError, match="to_counts"):  # negative values
        L.column_llr(counts - 1.0, denoised, columns=[[16, 16]], vacuum_level=0.45, radius_px=3)
    with pytest.raises(NotCountsError):  # a smooth float image is not counts
        L.column_llr(denoised + rng.normal(0, 0.01, denoised.shape), denoised, columns=[[16, 16]],
                     vacuum_level=0.45, radius_px=3)
    detector = _signal(counts * 7.3 + 100.0, 0.0061)
    detector.metadata.set_item("temnb.counts", False)
    with pytest.raises(NotCountsError, match="detector units"):
        L.column_llr(detector, _signal(denoised, 0.0061), columns=[[16, 16]], vacuum_level=0.45)
    with pytest.raises(ParameterError, match="finding the columns"):
        L.column_llr(counts, denoised, vacuum_level=0.45, radius_px=3)
    with pytest.raises(ParameterError, match="thresholds"):
        L.column_llr(counts, denoised, columns=[[16, 16]], vacuum_level=0.45, radius_px=3, thresholds="paper")
    with pytest.raises(ParameterError):
        L.column_llr(counts, denoised, columns=[[16, 16]], vacuum_level=-1, radius_px=3)


def test_the_vacuum_level_is_found_on_frames_too_small_for_32_px_blocks():
    """A 48 x 48 movie holds one 32 px block: the vacuum search uses blocks that fit the frame."""
    from temnb.simulation import synthetic

    noisy, clean = synthetic.counted_movie(4, (48, 48), dose=2.0, seed=1)
    series = L.llr_over_time(noisy, clean, columns=[[12.0, 12.0], [36.0, 36.0]])
    assert series.llr.shape == (2, 4)
    assert abs(series.vacuum_level - 2.0) < 0.2, series.vacuum_level


def test_contrast_over_disk_is_the_median_column_against_the_vacuum():
    image = np.full((40, 40), 2.0)
    vacuum = np.zeros_like(image, dtype=bool)
    vacuum[:8] = True
    cols = [[20.0, 10.0], [20.0, 20.0], [20.0, 30.0]]
    for (r, c), level in zip(cols, (1.0, 1.5, 3.0)):      # disks darker, darker, brighter than the vacuum
        image.ravel()[L.disk_region((r, c), 3.0, image.shape)] = level
    assert L.contrast_over_disk(image, cols, vacuum, radius_px=3.0) == pytest.approx(1.5 / 2 - 1)
    # a disk of radius 3 px at 0.5 Å per pixel is 1.5 Å
    assert L.contrast_over_disk(image, cols, vacuum, radius_A=1.5, pixel_size_A=0.5) == pytest.approx(-0.25)
    with pytest.raises(ParameterError):
        L.contrast_over_disk(image, cols, np.zeros_like(vacuum))
