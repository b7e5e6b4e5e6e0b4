"""PSNR, SSIM and the comparison table, checked against their formulas and the published numbers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.core.errors import DataShapeError, ParameterError
from temnb.judge.metrics import PUBLISHED_045, PUBLISHED_PEAK, compare, format_table, psnr, psnr_per_frame, ssim
from temnb.simulation.synthetic import counted_movie


def test_identical_images():
    clean = np.random.default_rng(0).random((32, 32))
    assert psnr(clean, clean) == float("inf")
    assert ssim(clean, clean) == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.01, 10.0), st.floats(0.5, 100.0))
def test_psnr_matches_formula_for_known_mse(offset, scale):
    clean = np.linspace(0, scale, 64 * 64).reshape(64, 64)   # range = scale
    estimate = clean + offset                                 # MSE = offset**2
    assert psnr(estimate, clean) == pytest.approx(10 * np.log10(scale ** 2 / offset ** 2))
    assert psnr(estimate, clean, peak=1.0) == pytest.approx(-20 * np.log10(offset))


def test_peak_comes_from_the_clean_image():
    clean = np.zeros((16, 16))
    clean[0, 0] = 2.0
    noisy = clean + np.where(np.indices((16, 16)).sum(0) % 2, 50.0, 0.0)
    mse = np.mean((noisy - clean) ** 2)
    assert psnr(noisy, clean) == pytest.approx(10 * np.log10(4.0 / mse))


def test_shapes_must_match():
    with pytest.raises(DataShapeError):
        psnr(np.ones((8, 8)), np.ones((8, 9)))
    with pytest.raises(DataShapeError):
        ssim(np.ones((3, 8, 8)), np.ones((8, 8)))


def test_movies_signals_and_per_frame():
    noisy, clean = counted_movie(3, (64, 64), 0.45, seed=0)
    per_frame = psnr_per_frame(noisy, clean)
    assert per_frame.shape == (3,)
    assert per_frame[1] == pytest.approx(psnr(noisy.data[1], clean.data[1]))
    assert psnr(noisy, clean) == pytest.approx(psnr(noisy.data, clean.data))
    assert 0 < ssim(noisy, clean) < 0.5          # raw counts at 0.45 e-/px are far from the truth


def test_compare_and_table():
    noisy, clean = counted_movie(1, (64, 64), 0.45, seed=0, as_signal=False)
    rows = compare({"raw": noisy, "truth": clean}, clean, timings={"raw": 0.0})
    assert [r["name"] for r in rows] == ["raw", "truth"]
    assert rows[1]["psnr"] == float("inf") and rows[1]["ssim"] == pytest.approx(1.0)
    assert rows[0]["seconds"] == 0.0 and rows[1]["seconds"] is None
    text = format_table(rows, PUBLISHED_045)
    assert "raw" in text and "3.56" in text


def test_published_numbers_are_table_1_of_the_paper():
    table = {"raw": (3.56, 0.00), "adaptive_wiener": (21.59, 0.44), "lowpass": (22.42, 0.63),
             "anscombe_nlm": (26.55, 0.73), "anscombe_bm3d": (22.57, 0.80), "pure_let": (28.36, 0.93),
             "sbd_dncnn": (30.47, 0.93), "sbd_small_unet": (30.87, 0.93), "unet": (42.87, 0.99)}
    assert {k: (v["psnr"], v["ssim"]) for k, v in PUBLISHED_045.items()} == table
    assert PUBLISHED_PEAK == "max"


def test_the_two_peak_conventions_differ_by_the_offset_of_the_clean_image():
    clean = 1.0 + np.linspace(0, 1, 32 * 32).reshape(32, 32)      # vacuum-like offset: max 2, range 1
    estimate = clean + 0.05
    assert psnr(estimate, clean) == pytest.approx(psnr(estimate, clean, peak="max"))
    assert psnr(estimate, clean, peak="max") - psnr(estimate, clean, peak="range") == pytest.approx(
        20 * np.log10(2.0))
    assert psnr(estimate, clean, peak=2.0) == pytest.approx(psnr(estimate, clean, peak="max"))
    with pytest.raises(ParameterError, match="convention"):
        psnr(estimate, clean, peak="clean")
    with pytest.raises(ParameterError):
        psnr(estimate, clean, peak=-1.0)


def test_tables_say_their_convention_and_show_published_numbers_only_beside_their_own():
    noisy, clean = counted_movie(1, (32, 32), 0.45, seed=0, as_signal=False)
    paper = format_table(compare({"raw": noisy}, clean), PUBLISHED_045)
    assert "peak = clean maximum" in paper.splitlines()[0] and "3.56" in paper
    other = format_table(compare({"raw": noisy}, clean, peak="range"), PUBLISHED_045)
    assert "max - min" in other.splitlines()[0] and "3.56" not in other and "not shown" in other
    mixed = compare({"raw": noisy}, clean) + compare({"raw": noisy}, clean, peak="range")
    with pytest.raises(ParameterError, match="mix"):
        format_table(mixed)


def test_tune_filter_finds_the_best_gaussian_and_flags_a_grid_edge():
    from temnb.judge.metrics import psnr, tune_filter
    from temnb.simulation.synthetic import counted_movie

    noisy, clean = counted_movie(12, (48, 48), 2.0, seed=3, as_signal=False)
    tuned = tune_filter("gaussian_3d", noisy, clean, grid={"sigma": (0.5, 1.0, 2.0), "sigma_time": (0.5, 2.0)})
    assert len(tuned.table) == 6 and tuned.psnr == max(row["psnr"] for row in tuned.table)
    assert tuned.psnr == pytest.approx(psnr(tuned.estimate, clean))
    assert tuned.psnr > psnr(noisy, clean) + 3
    for key, value in tuned.params.items():
        assert (key in tuned.on_edge) == (value in {"sigma": (0.5, 2.0), "sigma_time": (0.5, 2.0)}[key])
    with pytest.raises(ParameterError, match="grid"):
        tune_filter("median", noisy, clean)
    with pytest.raises(ParameterError):
        tune_filter("gaussian", noisy, clean, grid={"sigma": ()})
