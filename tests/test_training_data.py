"""temnb.simulation.training_data on tiny fields of view with coarse sampling (the smoke preset)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from temnb.core import metadata as md
from temnb.core.dose import PAPER
from temnb.core.errors import DataShapeError, DataValueError, ParameterError
from temnb.simulation import hrtem as sim
from temnb.simulation import paper_regime as pr
from temnb.simulation import structures as st
from temnb.simulation import training_data as td

FAST = dict(pixel_size=0.5, sampling=0.125)


@pytest.fixture(scope="module")
def scene():
    return st.build_scene("small", field_of_view=24.0, support_thickness=30.0, margin=4.0)


@pytest.fixture(scope="module")
def smoke_spec():
    return td.DatasetSpec.preset("smoke")


@pytest.fixture(scope="module")
def built(tmp_path_factory, smoke_spec):
    out = tmp_path_factory.mktemp("smoke")
    td.build_dataset(smoke_spec, out, progress=False)
    return out


# -- spec -----------------------------------------------------------------------------

def test_presets_and_json_round_trip(tmp_path):
    smoke, workshop, full = (td.DatasetSpec.preset(n) for n in ("smoke", "workshop", "full"))
    assert smoke.n_images < 10 and 20 <= workshop.n_images <= 100 and full.n_images >= 1000
    assert td.DatasetSpec.preset("full", n_structures=10).n_images == 10 * len(full.defoci)
    assert td.DatasetSpec.load(smoke.save(tmp_path / "spec.json")) == smoke
    assert td.DatasetSpec(defoci=[-8, 0]).defoci == (-8.0, 0.0)


def test_dose_is_given_per_area_or_per_pixel_and_both_are_recorded(tmp_path):
    default = td.DatasetSpec()
    assert default.dose_per_area == pytest.approx(PAPER.per_area) == pytest.approx(121.0, rel=1e-3)
    assert default.dose == pytest.approx(PAPER.per_area * 0.25 ** 2)
    paper = td.DatasetSpec(sizes=("small",), pixel_size=0.061, image_size=400, sampling=0.061, dose_per_area=121)
    assert paper.dose == pytest.approx(0.45, rel=1e-3)
    per_pixel = td.DatasetSpec(pixel_size=0.25, dose=0.45)
    assert per_pixel.dose == 0.45 and per_pixel.dose_per_area == pytest.approx(7.2)
    both = td.DatasetSpec(pixel_size=0.25, dose=0.45, dose_per_area=7.2)
    assert both == per_pixel
    saved = json.loads(paper.save(tmp_path / "spec.json").read_text())
    assert saved["dose"] == paper.dose and saved["dose_per_area"] == 121.0
    assert td.DatasetSpec.load(tmp_path / "spec.json") == paper
    with pytest.raises(ParameterError, match="disagree on 0.25 A pixels"):
        td.DatasetSpec(pixel_size=0.25, dose=0.45, dose_per_area=121.0)


def test_a_spec_saved_before_dose_per_area_loads(tmp_path):
    old = {"sizes": ["small"], "defects": ["none"], "defoci": [-8.0, 0.0], "tilts": [0.0], "thicknesses": [3.0],
           "n_structures": 2, "dose": 0.45, "pixel_size": 0.5, "image_size": 48, "sampling": 0.125,
           "margin": 4.0, "seed": 0}
    (tmp_path / "spec.json").write_text(json.dumps(old))
    spec = td.DatasetSpec.load(tmp_path / "spec.json")
    assert spec.dose == 0.45 and spec.dose_per_area == pytest.approx(1.8)  # 0.45 e-/px over 0.25 A^2
    assert td.DatasetSpec(**old) == spec


def test_presets_keep_the_papers_dose_per_area_on_multiples_of_its_pixel():
    for name, binning in (("full", 1), ("workshop", 4), ("smoke", 8)):
        spec = td.DatasetSpec.preset(name)
        assert spec.dose_per_area == pytest.approx(PAPER.per_area)
        assert spec.pixel_size == pytest.approx(binning * PAPER.pixel_size_A)
        assert spec.dose == pytest.approx(PAPER.per_pixel * binning ** 2, rel=1e-3)
    full = td.DatasetSpec.preset("full")
    assert full.field_of_view == pytest.approx(50.0, abs=0.5)  # the paper's 5 nm supercell
    assert min(full.defoci) == -20.0 and max(full.defoci) == 0.0  # C1 = 0..20 nm
    assert full.tilts == (0.0, 1.0, 2.0, 3.0, 4.0) and full.thicknesses == (3.0, 4.0, 5.0, 6.0)
    # A new pixel size keeps the electrons per area; a dose per pixel replaces them.
    assert td.DatasetSpec.preset("workshop", pixel_size=0.122, image_size=316).dose == pytest.approx(1.80, rel=1e-3)
    assert td.DatasetSpec.preset("workshop", dose=0.45).dose_per_area == pytest.approx(0.45 / 0.244 ** 2)


@pytest.mark.parametrize("changes, words", [
    (dict(dose=-1.0), "dose"),
    (dict(dose_per_area=0.0), "dose 0 e-/A"),
    (dict(dose_per_area="lots"), "not a number"),
    (dict(pixel_size=1.5), "too coarse for any lattice fringes"),
    (dict(defoci=[]), "defoci is empty"),
    (dict(defects=("hole",)), "unknown defect"),
    (dict(sizes=("large",), image_size=64, pixel_size=0.25), "does not fit"),
    (dict(sampling=0.5, pixel_size=0.25), "sampling"),
])
def test_spec_validation(changes, words):
    with pytest.raises(ParameterError, match=words):
        td.DatasetSpec(**changes)


def test_unknown_preset():
    with pytest.raises(ParameterError, match="unknown data-set preset 'huge'"):
        td.DatasetSpec.preset("huge")


def test_plan_is_reproducible_and_covers_the_grid():
    spec = td.DatasetSpec(sizes=("small",), defects=("none", "adatom"), tilts=(0, 3), thicknesses=(3,),
                          n_structures=4, seed=7)
    plan = td.plan_structures(spec)
    assert plan == td.plan_structures(spec)
    assert {(e["defect"], e["tilt_deg"]) for e in plan} == {("none", 0), ("none", 3), ("adatom", 0), ("adatom", 3)}
    for e in plan:
        assert np.hypot(e["tilt_x_deg"], e["tilt_y_deg"]) == pytest.approx(e["tilt_deg"], abs=1e-5)
    assert len({e["seed"] for e in plan}) == 4


def test_defects_change_the_structure():
    spec = td.DatasetSpec(sizes=("small",), defects=td.DEFECTS, image_size=48, **FAST, margin=4.0)
    base = td.make_structure(spec, dict(size="small", defect="none", thickness_nm=3.0, seed=1))[0]
    n = len(base.atoms)
    for defect, change in [("atom_vacancy", -1), ("adatom", 1)]:
        scene, extra = td.make_structure(spec, dict(size="small", defect=defect, thickness_nm=3.0, seed=1))
        assert len(scene.atoms) == n + change and extra["defect_site"]
    gone = td.make_structure(spec, dict(size="small", defect="column_vacancy", thickness_nm=3.0, seed=1))[0]
    grown = td.make_structure(spec, dict(size="small", defect="new_column", thickness_nm=3.0, seed=1))[0]
    assert len(gone.columns()) == len(base.columns()) - 1 and len(grown.columns()) == len(base.columns()) + 1
    stepped, extra = td.make_structure(spec, dict(size="small", defect="step_edge", thickness_nm=3.0, seed=1))
    full = td.assemble_scene(base, 0.5)
    with_step = td.assemble_scene(stepped, 0.5, step=extra["step"])
    removed = len(full.atoms) - len(with_step.atoms)
    assert removed > 0 and len(stepped.atoms) == n  # support atoms only
    assert full.atoms.get_tags().tolist().count(st.SUPPORT_TAG) - removed == \
        with_step.atoms.get_tags().tolist().count(st.SUPPORT_TAG)


# -- images ---------------------------------------------------------------------------

def test_defocus_series_equals_separate_images_and_pixel_size(scene):
    defoci = [-8.0, 0.0, 6.0]
    series = td.contrast_series(scene, defoci, **FAST)
    assert all(im.shape == (48, 48) for im in series)
    for d, im in zip(defoci, series):
        np.testing.assert_allclose(im, sim.hrtem_image(scene, d, **FAST), rtol=1e-5, atol=1e-5)
    vacuum = series[0][: int(scene.vacuum_height() / 0.5)]
    assert vacuum.mean() == pytest.approx(1.0, abs=0.02)
    ratios = [td.column_contrast(im, scene) for im in series]
    assert len(set(np.round(ratios, 3))) == 3  # the defocus changes the column contrast
    assert td.contrast_kind(1.2) == "white" and td.contrast_kind(0.8) == "black"
    assert td.contrast_kind(1.0) == "intermediate"


def test_tilt_zero_equals_untilted_and_three_degrees_changes(scene):
    ref = sim.exit_wave(scene, **FAST).image(-8.0)
    flat = sim.exit_wave(td.assemble_scene(scene, 0.5, tilt_x=0.0, tilt_y=0.0), **FAST).image(-8.0)
    np.testing.assert_allclose(flat, ref, atol=1e-4)
    tilted = sim.exit_wave(td.assemble_scene(scene, 0.5, tilt_x=3.0), **FAST).image(-8.0)
    assert np.abs(tilted - ref).max() > 0.05


def test_no_atoms_in_field_of_view_is_a_parameter_error(scene):
    from dataclasses import replace

    away = scene.atoms.copy()
    away.positions += (500.0, 500.0, 0.0)
    lonely = replace(scene, atoms=away, support=None)
    with pytest.raises(ParameterError, match="field of view"):
        td.assemble_scene(lonely, 0.5, tilt_x=2.0)


# -- data sets ------------------------------------------------------------------------

def test_build_writes_files_manifest_and_calibration(built, smoke_spec):
    manifest = json.loads((built / "manifest.json").read_text())
    assert len(manifest["structures"]) == smoke_spec.n_structures
    assert td.DatasetSpec.load(built / "spec.json") == smoke_spec
    files = sorted(p.name for p in built.glob("*.hspy"))
    assert files == [f"structure_{i:05d}.hspy" for i in range(smoke_spec.n_structures)]
    clean, noisy, table = td.load_dataset(built, seed=1)
    size = smoke_spec.image_size
    assert clean.data.shape == (smoke_spec.n_images, size, size) and clean.data.dtype == np.float32
    assert len(table) == smoke_spec.n_images
    for key in ("structure", "size", "defect", "defocus_nm", "tilt_x_deg", "tilt_y_deg", "thickness_nm",
                "dose", "dose_per_area", "pixel_size_A", "seed"):
        assert key in table[0]
    assert table[0]["dose_per_area"] == smoke_spec.dose_per_area
    assert [r["defocus_nm"] for r in table[:2]] == list(smoke_spec.defoci)
    for ax in clean.axes_manager.signal_axes:
        assert ax.units == "nm" and ax.scale == pytest.approx(smoke_spec.pixel_size / 10)
    assert clean.data[:, :4].mean() == pytest.approx(smoke_spec.dose, rel=0.03)  # vacuum = dose
    assert md.get(clean, "simulated") and md.get(noisy, "simulated") and md.get(noisy, "counts")
    # Shot noise: variance = mean, relative to the clean image.
    diff = noisy.data.astype(float) - clean.data
    assert diff.mean() == pytest.approx(0, abs=0.02)
    assert diff.var() == pytest.approx(clean.data.mean(), rel=0.1)
    again = td.load_dataset(built, seed=1)[1]
    np.testing.assert_array_equal(again.data, noisy.data)
    assert td.load_dataset(built, noisy=False)[1] is None


def test_rerun_skips_and_resume_rebuilds_only_missing(built, smoke_spec, monkeypatch):
    calls = []
    real = sim.exit_wave

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sim, "exit_wave", counting)
    before = td.load_dataset(built, noisy=False)[0].data.copy()
    td.build_dataset(smoke_spec, built, progress=False)
    assert calls == []
    (built / "structure_00001.hspy").unlink()
    td.build_dataset(smoke_spec, built, progress=False)
    assert len(calls) == 1
    np.testing.assert_array_equal(td.load_dataset(built, noisy=False)[0].data, before)
    with pytest.raises(ParameterError, match="different spec"):
        td.build_dataset(td.DatasetSpec.preset("smoke", seed=5), built, progress=False)


@pytest.mark.slow
def test_parallel_equals_serial(built, smoke_spec, tmp_path):
    td.build_dataset(smoke_spec, tmp_path, n_workers=2, progress=False)
    serial = td.load_dataset(built, noisy=False)
    parallel = td.load_dataset(tmp_path, noisy=False)
    np.testing.assert_array_equal(parallel[0].data, serial[0].data)
    assert [r["seed"] for r in parallel[2]] == [r["seed"] for r in serial[2]]


# -- the paper's regime ---------------------------------------------------------------

def test_raw_psnr_takes_the_clean_maximum_as_peak():
    clean = np.ones((8, 8))
    clean[2, 3] = 4.0
    # MSE 1: peak = max 4 gives 12.04 dB; the range (3) would give 9.54 dB.
    assert pr.raw_psnr(clean + 1.0, clean) == pytest.approx(10 * np.log10(16.0))
    assert pr.raw_psnr(clean, clean) == np.inf
    with pytest.raises(DataShapeError, match="do not match"):
        pr.raw_psnr(clean[:4], clean)


def test_expected_raw_psnr_is_what_poisson_draws_give():
    rng = np.random.default_rng(3)
    clean = np.full((256, 256), 0.45)
    clean[100:110, 100:110] = 1.0  # max / vacuum = 2.2, near the paper's
    draws = [pr.raw_psnr(sim.poisson_counts(clean, rng), clean) for _ in range(5)]
    expected = pr.expected_raw_psnr(clean)
    assert expected == pytest.approx(10 * np.log10(1.0 / clean.mean()))
    assert np.mean(draws) == pytest.approx(expected, abs=0.1)
    numbers = pr.regime_numbers([clean, 2 * clean], vacuum=[0.45, 0.9], seed=1)
    np.testing.assert_allclose(numbers.max_over_vacuum, [1 / 0.45, 1 / 0.45])
    assert np.isnan(numbers.column_contrast).all() and numbers.n_images == 2
    again = pr.regime_numbers([clean, 2 * clean], vacuum=[0.45, 0.9], seed=1)
    np.testing.assert_array_equal(again.raw_psnr_db, numbers.raw_psnr_db)  # seeded


def test_regime_numbers_of_a_built_dataset(built, smoke_spec):
    numbers = pr.dataset_regime_numbers(built, seed=1)
    summary = numbers.summary()
    assert numbers.n_images == summary["n_images"] == smoke_spec.n_images
    assert summary["paper_raw_psnr_db"] == pr.PAPER_RAW_PSNR_DB
    np.testing.assert_allclose(numbers.vacuum, smoke_spec.dose, rtol=0.01)  # measured in the vacuum rows
    assert (numbers.max_over_vacuum > 1).all()
    # At 28.8 e-/px the PSNR is about 10 log10(ratio^2 x dose).
    np.testing.assert_allclose(numbers.raw_psnr_db, numbers.expected_psnr_db, atol=0.5)
    np.testing.assert_allclose(numbers.expected_psnr_db,
                               10 * np.log10(numbers.max_over_vacuum ** 2 * smoke_spec.dose), atol=0.5)
    clean, noisy, table = td.load_dataset(built, seed=1)
    entry = td.plan_structures(smoke_spec)[table[0]["structure"]]
    scene, extra = td.make_structure(smoke_spec, entry)
    scene = td.assemble_scene(scene, smoke_spec.pixel_size, tilt_x=entry["tilt_x_deg"], tilt_y=entry["tilt_y_deg"],
                              step=extra["step"])
    assert numbers.column_contrast[0] == pytest.approx(td.column_contrast(clean.data[0], scene))
    assert numbers.raw_psnr_db[0] == pytest.approx(pr.raw_psnr(noisy.data[0], clean.data[0]))


def test_regime_numbers_reject_what_they_cannot_measure():
    image = np.full((16, 16), 0.45)
    with pytest.raises(ParameterError, match="no vacuum level"):
        pr.regime_numbers(image)
    with pytest.raises(ParameterError, match="2 vacuum levels for 1 images"):
        pr.regime_numbers(image, vacuum=[0.45, 0.45])
    with pytest.raises(DataValueError, match="negative"):
        pr.regime_numbers(image - 1.0, vacuum=0.45)
    with pytest.raises(DataShapeError, match="shape"):
        pr.regime_numbers(np.ones((2, 2, 2, 2)), vacuum=0.45)
    with pytest.raises(ParameterError, match="noisy images for 1 clean"):
        pr.regime_numbers(image, vacuum=0.45, noisy=[image, image])
