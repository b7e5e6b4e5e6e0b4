"""temnb.simulation.structures and temnb.simulation.hrtem on tiny specimens, and the bundled simulated sample.

Everything here runs on fields of view of ~20 A with coarse pixels so that a
multislice takes a fraction of a second after abTEM's first-call warm-up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from temnb.core import metadata
from temnb.core.errors import DataValueError, ParameterError
from temnb.io import survey
from temnb.simulation import hrtem as sim
from temnb.simulation import structures as st

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FAST = dict(pixel_size=0.5, sampling=0.125)


def two_columns(separation=10.0, fov=20.0):
    """Two 5-atom Pt columns *separation* A apart, mid-height of a square field of view."""
    z = np.arange(5) * 2.77
    pos = [(x, fov / 2, zi) for x in (fov / 2 - separation / 2, fov / 2 + separation / 2) for zi in z]
    return st.place_in_field_of_view(Atoms("Pt10", positions=pos), fov, margin=4.0)


def column_centroid(image, pixel_size, near_row, near_col, radius=2.5):
    """Centre of the contrast |image - 1| near a point, in A from the top-left corner."""
    rows, cols = np.indices(image.shape)
    r_c, c_c = (rows + 0.5) * pixel_size, (cols + 0.5) * pixel_size
    w = np.abs(image - 1) * (np.hypot(r_c - near_row, c_c - near_col) < radius)
    return (w * r_c).sum() / w.sum(), (w * c_c).sum() / w.sum()


@pytest.fixture(scope="module")
def small_scene():
    return st.build_scene("small", field_of_view=24.0, support_thickness=8.0, margin=4.0)


@pytest.fixture(scope="module")
def particle_only(small_scene):
    """The small particle without a support, so that only it changes between frames."""
    return st.place_in_field_of_view(small_scene.atoms, 24.0, position=(12.0, 3.0), margin=4.0)


@pytest.fixture(scope="module")
def movie(particle_only):
    drift = np.array([[0.0, 0.0], [0.3, -0.7], [1.2, 0.55], [-0.45, 1.6]])
    return sim.simulate_movie(particle_only, n_frames=4, events=[], drift=drift, dose=2.0,
                              frame_time=0.01, seed=3, progress=False, **FAST), drift


# -- structures -----------------------------------------------------------------

def test_particle_sizes_orientation_and_support_chemistry():
    small, medium = st.pt_particle("small"), st.pt_particle("medium")
    assert len(small) < len(medium)
    assert set(small.get_chemical_symbols()) == {"Pt"}
    # The contact facet is a flat (111) layer at y = 0: several atoms share the lowest y.
    bottom = medium.positions[:, 1] < 0.1
    assert bottom.sum() >= 6 and medium.positions[:, 1].min() == pytest.approx(0, abs=1e-9)
    # fcc seen along <110>: atoms of one column are a/sqrt(2) apart along the beam.
    ids = medium.arrays["column"]
    z = np.sort(medium.positions[ids == ids[np.argmax(np.bincount(ids)[ids])], 2])
    assert np.allclose(np.diff(z), st.PT_LATTICE_CONSTANT / np.sqrt(2), atol=1e-6)

    slab = st.ceo2_support(40.0, (0.0, 15.0), 30.0)
    sym = np.array(slab.get_chemical_symbols())
    assert (sym == "O").sum() == 2 * (sym == "Ce").sum()
    assert sym[np.argmax(slab.positions[:, 1])] == "O"  # O-terminated (111)
    assert slab.positions[:, 1].max() == pytest.approx(15.0)
    assert abs(slab.info["strain_x"]) < 0.1


def test_columns_surface_flags_and_column_edits(small_scene):
    cols = small_scene.columns()
    assert sum(c.n_atoms for c in cols) == len(small_scene.atoms)
    top = max(cols, key=lambda c: c.y)
    assert top.surface and not top.interface
    interior = [c for c in cols if not c.surface]
    assert interior, "a 1.2 nm particle has at least one fully coordinated column"
    assert all(c.interface for c in cols if c.y < min(c.y for c in cols) + 0.1)

    col = next(c for c in cols if c.surface and not c.interface)
    fewer = small_scene.remove_column(col.id)
    assert len(fewer.atoms) == len(small_scene.atoms) - col.n_atoms
    assert col.id not in [c.id for c in fewer.columns()]
    back = fewer.add_column(small_scene.column_positions(col.id), column_id=col.id)
    assert back.state_key() == small_scene.state_key() != fewer.state_key()
    site = small_scene.vacant_sites()[0]
    grown = small_scene.add_column(site)
    assert len(grown.atoms) == len(small_scene.atoms) + len(site)

    with pytest.raises(ParameterError, match="no column 999"):
        small_scene.remove_column(999)
    with pytest.raises(ParameterError, match="from existing ones"):
        small_scene.add_column(small_scene.column_positions(col.id) + [0.5, 0, 0])


def test_no_atoms_in_field_of_view_is_a_parameter_error():
    outside = Atoms("Pt2", positions=[(100, 100, 0), (100, 100, 2.77)])
    with pytest.raises(ParameterError, match="none of the 2 atoms"):
        st.place_in_field_of_view(outside, 20.0)
    with pytest.raises(ParameterError, match="no atoms"):
        st.place_in_field_of_view(Atoms(), 20.0)
    with pytest.raises(ParameterError, match="field of view"):
        sim.hrtem_image(outside, field_of_view=20.0, **FAST)
    with pytest.raises(ParameterError, match="unknown particle size"):
        st.pt_particle("huge")


# -- images ---------------------------------------------------------------------

@pytest.mark.parametrize("pixel_size", [0.25, 0.5])
def test_image_has_requested_pixel_size(pixel_size):
    scene = two_columns(separation=10.0, fov=20.0)
    image = sim.hrtem_image(scene, pixel_size=pixel_size, sampling=0.125)
    assert image.shape == (round(20.0 / pixel_size),) * 2 and image.dtype == np.float32
    found = []
    for x in (5.0, 15.0):
        row, col = scene.image_position(x, 10.0)
        found.append(column_centroid(image, pixel_size, row, col))
    # The columns' contrast is centred where the atoms are, 10 A apart.
    assert np.hypot(*np.subtract(found[1], found[0])) == pytest.approx(10.0, abs=0.1)
    assert found[0] == pytest.approx(scene.image_position(5.0, 10.0), abs=0.5 * pixel_size)


def test_vacuum_is_one_and_dose_is_kept(particle_only):
    wave = sim.exit_wave(particle_only, **FAST)
    image = wave.image(-8.0)
    rows = int(particle_only.vacuum_height() / wave.pixel_size)
    assert rows >= 10
    assert image[:rows].mean() == pytest.approx(1.0, abs=2e-3)
    assert image.min() < 0.95 or image.max() > 1.05  # the particle has contrast
    expected = sim.expected_counts(image, dose=0.45)
    counts = sim.poisson_counts(np.broadcast_to(expected, (80, *expected.shape)), rng=1)
    assert counts.dtype == np.uint16
    assert counts[:, :rows].mean() == pytest.approx(0.45, rel=0.03)
    # One exit wave, several defoci: a defocus series differs from frame to frame.
    series = wave.images([-8.0, 0.0])
    assert series.shape == (2, *image.shape) and np.abs(series[0] - series[1]).max() > 0.05
    assert np.array_equal(series[0], image)


def test_vibration_is_a_gaussian_blur_of_rms_vibration_pm(particle_only):
    from scipy.ndimage import gaussian_filter

    # Dr. Probe's vibration envelope (wavimg) is a Gaussian kernel exp(-r^2 / 2 sigma^2) on the
    # image intensity with sigma = the RMS amplitude; 50 pm is 0.5 A, i.e. 4 grid points here.
    wave = sim.exit_wave(particle_only, pixel_size=0.125, sampling=0.125)
    still = wave.padded_image(-8.0, sim.Microscope(vibration_pm=0.0)).astype(np.float64)
    shaken = wave.padded_image(-8.0, sim.Microscope(vibration_pm=50.0))
    np.testing.assert_allclose(shaken, gaussian_filter(still, 0.5 / 0.125, mode="wrap"), atol=1e-5)
    assert np.abs(shaken - still).max() > 0.3  # the blur matters at this resolution


def test_overfocus_gives_white_columns_with_negative_cs(particle_only):
    from temnb.simulation.training_data import column_contrast

    # abTEM's defocus is -C1; Dr. Probe's (and the paper's) C1 > 0 is an overfocus, which with
    # Cs = -13 um images Pt columns bright.  So the paper's C1 = 0..20 nm is defocus 0..-20 nm.
    wave = sim.exit_wave(particle_only, **FAST)
    over, under = (column_contrast(wave.image(d), particle_only) for d in (-12.0, 12.0))
    assert over > 1.05 and under < 0.9



def test_poisson_counts_have_variance_equal_to_mean():
    for level in (0.45, 4.0):
        counts = sim.poisson_counts(np.full((300, 300), level), rng=7)
        assert counts.mean() == pytest.approx(level, rel=0.02)
        assert counts.var() == pytest.approx(counts.mean(), rel=0.04)
    a, b = (sim.poisson_counts(np.full((50, 50), 1.0), rng=s) for s in (5, 5))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sim.poisson_counts(np.full((50, 50), 1.0), rng=6))
    with pytest.raises(DataValueError):
        sim.poisson_counts(np.array([1.0, -1.0]))
    with pytest.raises(ParameterError):
        sim.expected_counts(np.ones((4, 4)), dose=0)


def test_removing_a_column_changes_the_image_there(particle_only):
    col = next(c for c in particle_only.columns() if c.surface and not c.interface)
    fewer = particle_only.remove_column(col.id)
    assert len(fewer.atoms) == len(particle_only.atoms) - col.n_atoms
    before, after = (sim.hrtem_image(s, **FAST) for s in (particle_only, fewer))
    row, c = (int(v / FAST["pixel_size"]) for v in particle_only.image_position(col.x, col.y))
    assert np.abs(before - after)[row - 1:row + 2, c - 1:c + 2].max() > 0.05
    assert np.abs(before - after)[:5].max() < 1e-3  # far vacuum unchanged


# -- movies ---------------------------------------------------------------------

def test_movie_drift_is_the_requested_one(movie):
    from skimage.registration import phase_cross_correlation

    (clean, noisy), drift = movie
    for t in range(1, len(drift)):
        shift, _, _ = phase_cross_correlation(clean.data[0], clean.data[t], upsample_factor=100)
        assert np.allclose(-shift, drift[t] - drift[0], atol=0.1)
    assert np.allclose(metadata.get(noisy, "simulation_drift"), drift)


def test_clean_and_noisy_share_axes_and_carry_metadata(movie):
    (clean, noisy), _ = movie
    assert clean.data.shape == noisy.data.shape == (4, 48, 48)
    assert clean.data.dtype == np.float32 and noisy.data.dtype.kind == "u"
    for a, b in zip(clean.axes_manager._axes, noisy.axes_manager._axes):
        assert (a.name, a.units, a.scale, a.size, a.offset) == (b.name, b.units, b.scale, b.size, b.offset)
    t, y, x = noisy.axes_manager._axes
    assert (t.name, t.units, t.scale, t.navigate) == ("time", "s", 0.01, True)
    assert (y.name, x.name, y.units) == ("y", "x", "nm") and y.scale == pytest.approx(0.05)
    assert noisy.metadata.Signal.quantity == "Electrons (counts)"
    assert clean.metadata.Signal.quantity == "Expected electrons"
    assert noisy.metadata.Acquisition_instrument.TEM.beam_energy == 300
    assert noisy.metadata.Acquisition_instrument.TEM.Detector.Camera.name == "simulated K3 (counted)"
    assert metadata.get(noisy, "counts") is True and metadata.get(noisy, "simulated") is True
    assert metadata.get(clean, "simulated") is True and metadata.get(noisy, "dose_per_pixel") == 2.0
    assert metadata.get(noisy, "dose_method") == "simulation" and metadata.get(noisy, "frame_time") == 0.01
    assert metadata.get(noisy, "source") == []
    assert noisy.metadata.Signal.Noise_properties.Variance_linear_model.gain_factor == 1
    assert metadata.get(noisy, "simulation")["defocus_nm"] == -8.0
    assert survey.info(noisy).simulated and survey.info(noisy).pixel_size == pytest.approx(0.05)


def test_movie_events_change_the_right_place(particle_only):
    clean, noisy = sim.simulate_movie(particle_only, n_frames=3, events=1, drift=0.0, seed=2, dose=1.0,
                                      progress=False, **FAST)
    (event,) = metadata.get(noisy, "simulation_events")
    f = event["frame"]
    assert event["kind"] == "removed" and 0 < f < 3
    assert metadata.get(noisy, "simulation")["multislice"]["runs"] == 2
    assert all(np.array_equal(clean.data[0], clean.data[t]) for t in range(f))
    diff = np.abs(clean.data[f] - clean.data[0])
    assert diff.max() > 0.05
    peak = np.array(np.unravel_index(np.argmax(diff), diff.shape)) * 0.05 + 0.025  # nm
    assert np.hypot(*(peak - event["position_nm"])) < 0.3


def test_a_restored_column_reuses_the_first_multislice(particle_only):
    cid = next(c.id for c in particle_only.columns() if c.surface and not c.interface)
    events = [sim.Event(1, cid, "removed"), sim.Event(2, cid, "added")]  # comes back where it was
    clean, noisy = sim.simulate_movie(particle_only, n_frames=3, events=events, drift=0.0,
                                      progress=False, **FAST)
    assert metadata.get(noisy, "simulation")["multislice"]["runs"] == 2
    assert np.array_equal(clean.data[0], clean.data[2])
    assert not np.array_equal(clean.data[0], clean.data[1])
    positions = [e["position_nm"] for e in metadata.get(noisy, "simulation_events")]
    assert positions[0] == positions[1] is not None


def test_bad_movie_parameters_are_parameter_errors(particle_only):
    with pytest.raises(ParameterError, match="never removed"):
        sim.simulate_movie(particle_only, n_frames=3, events=[sim.Event(1, 999, "added")],
                           progress=False, **FAST)
    with pytest.raises(ParameterError, match="margin"):
        sim.simulate_movie(particle_only, n_frames=2, events=[], drift=np.array([[0, 0], [50, 0]]),
                           progress=False, **FAST)
    with pytest.raises(ParameterError, match="events do not fit"):
        sim.simulate_movie(particle_only, n_frames=2, events=5, progress=False, **FAST)


# -- the bundled sample ---------------------------------------------------------

def test_bundled_sample_loads_with_documented_metadata():
    import hyperspy.api as hs

    noisy = hs.load(SAMPLE / "pt_ceo2_movie.hspy")
    clean = hs.load(SAMPLE / "pt_ceo2_movie_truth.hspy")
    assert noisy.data.shape == clean.data.shape == (40, 256, 256)
    assert noisy.data.dtype in (np.uint8, np.uint16) and clean.data.dtype == np.float32
    for s in (noisy, clean):
        t, y, x = s.axes_manager._axes
        assert (t.name, t.units, t.scale) == ("time", "s", 0.025)
        # The paper's regime: 121 e-/Å² per frame on its 0.061 Å pixels binned 4 x 4 (0.244 Å, 7.2 e-/px).
        assert (y.units, x.units) == ("nm", "nm") and x.scale == pytest.approx(0.0244)
        assert metadata.get(s, "simulated") is True and metadata.get(s, "dose_per_pixel") == pytest.approx(7.2, rel=1e-3)
        assert metadata.get(s, "dose_per_area") == pytest.approx(121, rel=1e-2)
    assert metadata.get(noisy, "counts") is True
    assert len(metadata.get(noisy, "simulation_events")) == 4
    rows = metadata.get(noisy, "simulation")["vacuum_rows"][1]
    assert rows >= 64  # at least a quarter of the frame is vacuum
    assert noisy.data[:, :rows].mean() == pytest.approx(7.2, rel=0.02)
    assert clean.data[:, :rows].mean() == pytest.approx(7.2, rel=0.005)


def test_a_movie_records_its_dose_per_pixel_and_per_area(movie):
    (clean, noisy), _ = movie
    pixel_A = 10 * clean.axes_manager.signal_axes[0].scale
    for signal in (clean, noisy):
        assert metadata.get(signal, "dose_per_pixel") == 2.0
        assert metadata.get(signal, "dose_per_area") == pytest.approx(2.0 / pixel_A**2)
        assert metadata.get(signal, "simulation")["dose_e_per_A2"] == pytest.approx(2.0 / pixel_A**2)


def test_frame_dose_takes_the_dose_per_area_by_default_and_refuses_two_that_disagree():
    assert sim.frame_dose(pixel_size=0.061).per_pixel == pytest.approx(0.45, rel=1e-3)     # the paper
    assert sim.frame_dose(pixel_size=0.244).per_pixel == pytest.approx(7.2, rel=1e-3)     # binned 4 x 4
    assert sim.frame_dose(dose_per_area=100.0, pixel_size=0.1).per_pixel == pytest.approx(1.0)
    assert sim.frame_dose(dose=1.0, dose_per_area=100.0, pixel_size=0.1).per_area == pytest.approx(100.0)
    with pytest.raises(ParameterError, match="not the dose_per_area"):
        sim.frame_dose(dose=0.45, dose_per_area=121.0, pixel_size=0.25)
