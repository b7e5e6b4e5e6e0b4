"""Dose per pixel and per area: the paper's regime, binning, and the conversions both ways."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.core import dose
from temnb.core.errors import ParameterError


def test_the_paper_regime_is_121_electrons_per_square_angstrom_per_frame():
    assert dose.PAPER.per_pixel == 0.45 and dose.PAPER.pixel_size_A == 0.061
    assert dose.PAPER.per_area == pytest.approx(120.93, abs=0.01)
    assert dose.PAPER.rate == pytest.approx(4837, abs=1)
    assert str(dose.PAPER) == "0.45 e⁻/px = 121 e⁻/Å² per frame (0.061 Å/px; 4,837 e⁻/Å²/s at 25 ms)"


def test_coarser_pixels_keep_the_dose_per_area_not_per_pixel():
    twice, four = dose.PAPER.binned(2), dose.PAPER.binned(4)
    assert (twice.per_pixel, twice.pixel_size_A) == (pytest.approx(1.8), pytest.approx(0.122))
    assert (four.per_pixel, four.pixel_size_A) == (pytest.approx(7.2), pytest.approx(0.244))
    assert twice.per_area == pytest.approx(dose.PAPER.per_area) == four.per_area


@settings(max_examples=50, deadline=None)
@given(st.floats(1e-3, 1e4), st.floats(0.01, 5.0))
def test_per_pixel_and_per_area_are_inverse(area, pixel):
    assert dose.per_area(dose.per_pixel(area, pixel), pixel) == pytest.approx(area, rel=1e-12)
    assert dose.Dose.from_area(area, pixel).per_area == pytest.approx(area, rel=1e-12)


def test_what_is_unknown_stays_unknown():
    d = dose.Dose(0.45)
    assert d.per_area is None and d.rate is None
    assert "no dose per Å²" in str(d)
    assert dose.Dose(0.45, 0.061).rate is None
    assert math.isclose(dose.Dose(0.45, 0.061, 0.025).as_dict()["dose_per_area"], 120.93, abs_tol=0.01)


@pytest.mark.parametrize("args", [(-0.45,), (0.45, 0.0), (0.45, 0.061, -1.0), ("lots",)])
def test_bad_doses_are_refused_by_name(args):
    with pytest.raises(ParameterError, match="dose per pixel|pixel size|frame time"):
        dose.Dose(*args)
    with pytest.raises(ParameterError):
        dose.binned(dose.PAPER, 0)
