"""temnb.simulation.training_data on tiny fields of view with coarse sampling (the smoke preset)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from temnb.core import metadata as md
from temnb.core.errors import ParameterError
from temnb.simulation import hrtem as sim
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


@pytest.mark.parametrize("changes, words", [
    (dict(dose=-1.0), "dose"),
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
    assert clean.data.shape == (smoke_spec.n_images, 48, 48) and clean.data.dtype == np.float32
    assert len(table) == smoke_spec.n_images
    for key in ("structure", "size", "defect", "defocus_nm", "tilt_x_deg", "tilt_y_deg", "thickness_nm",
                "dose", "pixel_size_A", "seed"):
        assert key in table[0]
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
