"""Simulated HRTEM frames and movies with abTEM, with their ground truth.

1. :func:`exit_wave` -- abTEM multislice (plane wave, Lobato potential) of a
   :class:`~temnb.simulation.structures.Scene` over the field of view plus a margin, on a
   grid that divides the detector pixel.  The slow step: once per structure.
2. :meth:`ExitWave.image` -- abTEM's ``CTF`` (defocus, Cs, C5, partial
   coherence as quasi-coherent envelopes), intensity, Gaussian vibration blur,
   binning to detector pixels, vacuum = 1.  One exit wave serves any number of
   defoci (:meth:`ExitWave.images`), e.g. for a defocus-series data set.
3. :func:`expected_counts` and :func:`poisson_counts` -- dose and shot noise;
   :func:`frame_dose` reads a dose given per area or per pixel (temnb.core.dose converts).
4. :func:`simulate_movie` -- a fluxional particle with known surface events and
   drift, clean and noisy movies as hyperspy signals carrying their recipe.

Sign convention (abTEM's): ``defocus = -C1``, so a negative defocus is an
overfocus, which is what negative-Cs imaging needs for bright atoms.  Dr. Probe (the
paper's simulator) writes chi = 2 pi / lambda (C1 w^2 / 2 + Cs w^4 / 4 + ...): its C1 > 0
is an overfocus, and the paper's C1 = 0..20 nm is defocus 0..-20 nm here.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np

from ..core import metadata as md
from ..core.dose import PAPER, Dose
from ..core.errors import DataValueError, ParameterError
from .structures import Scene, build_scene, place_in_field_of_view

__all__ = [
    "Microscope", "ExitWave", "Event", "SimulatedMovie", "exit_wave", "hrtem_image",
    "expected_counts", "poisson_counts", "plan_events", "smooth_drift", "frame_dose", "simulate_movie",
]

DETECTOR_NAME = "simulated K3 (counted)"



@dataclass(frozen=True)
class Microscope:
    """Objective-lens and coherence settings, in microscope units.

    ``focal_spread_nm`` is the 1/e half-width of the defocus spread (abTEM's and
    Kirkland's convention; sigma = focal_spread / sqrt(2)).  ``convergence_mrad``
    is abTEM's ``angular_spread``, applied as the envelope exp(-(a/2)^2 |grad chi|^2),
    the one Dr. Probe uses for its (1/e half-width) semi-convergence.  ``vibration_pm``
    is the standard deviation of an isotropic Gaussian blur of the image intensity
    (real space; the same as the envelope exp(-2 pi^2 sigma^2 k^2) on the image
    spectrum), as Dr. Probe's RMS vibration amplitude.  No objective aperture by
    default, as usual in aberration-corrected HRTEM.  The defaults are the paper's
    settings; at 50 pm the clean maximum of a Pt/CeO2 image at 0.061 A/px is about
    1.3 x the vacuum (raw PSNR about -1 dB at 0.45 e-/px), without vibration about
    2.3 x (3.5 dB) -- see :mod:`temnb.simulation.paper_regime`.
    """

    energy_kV: float = 300.0
    cs_um: float = -13.0
    c5_mm: float = 5.0
    focal_spread_nm: float = 4.0
    convergence_mrad: float = 0.2
    vibration_pm: float = 50.0
    aperture_mrad: float = math.inf

    def ctf(self, defocus_nm: float):
        """abTEM's CTF for this lens at *defocus_nm* (abTEM sign: negative = overfocus)."""
        import abtem

        return abtem.CTF(energy=self.energy_kV * 1e3, Cs=self.cs_um * 1e4, C5=self.c5_mm * 1e7,  # in A
                         defocus=float(defocus_nm) * 10, focal_spread=self.focal_spread_nm * 10,
                         angular_spread=self.convergence_mrad, semiangle_cutoff=self.aperture_mrad)


def _abtem_settings():
    import abtem

    # FFTW_MEASURE spends seconds planning every new grid size; the estimate
    # plan is nearly as fast for the few transforms each run does.
    return abtem.config.set({"fftw.planning_effort": "FFTW_ESTIMATE",
                             "fftw.threads": max(1, os.cpu_count() or 1)})


@dataclass
class ExitWave:
    """An exit wave on the padded simulation cell, ready for any lens setting."""

    waves: object  # abtem.Waves, computed
    scene: Scene
    pixel_size: float  # detector pixel, Angstrom
    oversampling: int  # simulation grid points per detector pixel
    shape: tuple[int, int]  # field of view in detector pixels (rows, columns)
    margin_px: int
    energy_kV: float
    incident_intensity: float = 1.0

    def padded_image(self, defocus_nm: float, microscope: Microscope | None = None) -> np.ndarray:
        """Detector image of the whole periodic cell (rows run down from +y), vacuum = 1."""
        microscope = microscope or Microscope(energy_kV=self.energy_kV)
        if not math.isclose(microscope.energy_kV, self.energy_kV):
            raise ParameterError(f"the microscope is set to {microscope.energy_kV} kV but the exit wave "
                                 f"was computed at {self.energy_kV} kV", hint="use one beam energy for both")
        with _abtem_settings():
            images = self.waves.apply_ctf(microscope.ctf(defocus_nm)).intensity()
            if microscope.vibration_pm > 0:
                images = images.gaussian_filter(microscope.vibration_pm / 100, boundary="periodic")
            fine = np.asarray(images.compute(progress_bar=False).array, dtype=np.float64)
        f = self.oversampling
        nx, ny = fine.shape[0] // f, fine.shape[1] // f
        # Area binning: a detector pixel integrates everything that lands on it.
        binned = fine.reshape(nx, f, ny, f).mean(axis=(1, 3))
        return (binned.T[::-1] / self.incident_intensity).astype(np.float32)

    def crop(self, padded: np.ndarray) -> np.ndarray:
        m = self.margin_px
        return padded[..., m:m + self.shape[0], m:m + self.shape[1]]

    def image(self, defocus_nm: float, microscope: Microscope | None = None) -> np.ndarray:
        """The field of view at *defocus_nm*: float32, vacuum = 1, ``pixel_size`` per pixel."""
        return self.crop(self.padded_image(defocus_nm, microscope))

    def images(self, defoci_nm, microscope: Microscope | None = None) -> np.ndarray:
        """A defocus series (n, rows, columns) from this one exit wave."""
        return np.stack([self.image(d, microscope) for d in np.atleast_1d(defoci_nm)])


def _as_scene(specimen, field_of_view) -> Scene:
    if isinstance(specimen, Scene):
        return specimen
    if specimen is None:
        raise ParameterError("no structure given", hint="pass a Scene (temnb.simulation.structures.build_scene())")
    if field_of_view is None:
        field_of_view = tuple(np.diag(specimen.cell.array)[:2]) if specimen.cell.rank == 3 else None
    if field_of_view is None:
        raise ParameterError("an ase.Atoms without a cell needs field_of_view=... (Angstrom)")
    return place_in_field_of_view(specimen, field_of_view)


def exit_wave(specimen, *, pixel_size: float = 0.25, sampling: float = 0.05, energy_kV: float = 300.0,
              slice_thickness: float = 2.0, field_of_view=None) -> ExitWave:
    """Multislice exit wave of *specimen* (a Scene, or ase.Atoms plus *field_of_view* in Angstrom).

    The grid is ``pixel_size / ceil(pixel_size / sampling)`` Angstrom, at most
    *sampling* (0.05 A keeps the 2/3 anti-aliasing limit above 100 mrad at 300 kV)
    and an exact divisor of the detector pixel so that binning is exact.
    """
    import abtem

    scene = _as_scene(specimen, field_of_view)
    if not (0 < sampling <= pixel_size):
        raise ParameterError(f"sampling {sampling} A must be positive and at most the pixel ({pixel_size} A)")
    width, height = scene.field_of_view
    shape = (round(height / pixel_size), round(width / pixel_size))
    if min(shape) < 8:
        raise ParameterError(f"a {width:g} x {height:g} A field of view is only {shape} pixels of "
                             f"{pixel_size} A", hint="use a smaller pixel size or a larger field of view")
    margin_px = math.ceil(scene.margin / pixel_size)
    total = (shape[0] + 2 * margin_px, shape[1] + 2 * margin_px)
    oversampling = math.ceil(pixel_size / sampling - 1e-9)
    atoms = scene.to_atoms(extent=(total[1] * pixel_size, total[0] * pixel_size),
                           offset=(margin_px * pixel_size,) * 2)
    energy = energy_kV * 1e3
    with _abtem_settings():
        potential = abtem.Potential(atoms, gpts=(total[1] * oversampling, total[0] * oversampling),
                                    slice_thickness=slice_thickness, parametrization="lobato",
                                    projection="infinite")
        # normalize=False: unit amplitude, so the incident intensity per pixel is 1.
        wave = abtem.PlaneWave(energy=energy, normalize=False)
        waves = wave.multislice(potential).compute(progress_bar=False)
        incident = float(np.mean(np.abs(wave.build(lazy=False).array) ** 2))
    return ExitWave(waves, scene, float(pixel_size), oversampling, shape, margin_px, float(energy_kV),
                    incident)


def hrtem_image(specimen, defocus_nm: float = -8.0, *, microscope: Microscope | None = None,
                pixel_size: float = 0.25, sampling: float = 0.05, slice_thickness: float = 2.0,
                field_of_view=None) -> np.ndarray:
    """One HRTEM image (float32, vacuum = 1) of *specimen*; see :func:`exit_wave`."""
    microscope = microscope or Microscope()
    wave = exit_wave(specimen, pixel_size=pixel_size, sampling=sampling, energy_kV=microscope.energy_kV,
                     slice_thickness=slice_thickness, field_of_view=field_of_view)
    return wave.image(defocus_nm, microscope)



def expected_counts(image, dose: float = 0.45) -> np.ndarray:
    """Electrons per pixel expected from an image normalised to vacuum = 1, at *dose* e-/px in vacuum."""
    if not (np.isfinite(dose) and dose > 0):
        raise ParameterError(f"dose {dose!r} e-/px/frame must be a positive number")
    return (np.asarray(image, dtype=np.float32) * np.float32(dose)).astype(np.float32)


def poisson_counts(expected, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Counted electrons: a Poisson sample of *expected* (uint16, or uint32 if needed)."""
    expected = np.asarray(expected, dtype=np.float64)
    if not np.all(np.isfinite(expected)) or (expected < 0).any():
        raise DataValueError("the expected counts contain negative, NaN or infinite values",
                             hint="pass an image scaled to a dose (expected_counts)")
    counts = np.random.default_rng(rng).poisson(expected)
    return counts.astype(np.uint16 if counts.max(initial=0) < 2**16 else np.uint32)


@dataclass(frozen=True)
class Event:
    """A surface event: *column_id* is 'removed' or 'added' from *frame* on.

    ``position_nm`` is (down, right) from the field of view's top-left corner
    in frame 0 (drift not included); ``positions`` are the column's atoms
    (Angstrom, field-of-view coordinates), needed to add a column at a new site.
    """

    frame: int
    column_id: int
    kind: str
    position_nm: tuple[float, float] | None = None
    positions: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "positions"}
        out["position_nm"] = None if self.position_nm is None else [float(v) for v in self.position_nm]
        return out


def _position_nm(scene: Scene, positions) -> tuple[float, float]:
    x, y = np.asarray(positions)[:, :2].mean(0)
    return tuple(round(v / 10, 4) for v in scene.image_position(x, y))


def plan_events(scene: Scene, n_frames: int, n_events: int = 4,
                rng: np.random.Generator | int | None = None) -> list[Event]:
    """Evenly spaced fluxional events on free (non-interface) surface columns.

    They cycle through: remove a column, remove another, restore the first,
    grow a column on a vacant lattice site.
    """
    rng = np.random.default_rng(rng)
    if n_events < 0 or n_events >= n_frames:
        raise ParameterError(f"{n_events} events do not fit in {n_frames} frames",
                             hint="use fewer events than frames")
    frames = np.linspace(0, n_frames, n_events + 2)[1:-1].round().astype(int)
    state, removed, used, events, gone = scene, [], set(), [], []
    for i, frame in enumerate(frames):
        step = i % 4
        # Growth on a genuinely new site, not where a removed column used to be.
        sites = [p for p in (state.vacant_sites() if step == 3 else [])
                 if all(np.linalg.norm(p[0, :2] - g) > 0.5 for g in gone)]
        if step == 2 and removed:
            cid, pos = removed.pop(0)
            event = Event(int(frame), cid, "added", _position_nm(scene, pos), pos)
        elif step == 3 and sites:
            pos = sites[int(rng.integers(min(3, len(sites))))]  # one of the highest sites
            cid = int(state.atoms.arrays["column"].max()) + 1
            event = Event(int(frame), cid, "added", _position_nm(scene, pos), pos)
        else:
            free = [c for c in state.columns() if c.surface and not c.interface and c.id not in used]
            if not free:
                raise ParameterError("the particle has no free surface column left to remove",
                                     hint="use fewer events or a larger particle")
            col = free[int(rng.integers(len(free)))]
            pos = state.column_positions(col.id)
            event = Event(int(frame), col.id, "removed", _position_nm(scene, pos), pos)
            removed.append((col.id, pos))
            gone.append(pos[0, :2])
        used.add(event.column_id)
        state = _apply(state, event)
        events.append(event)
    return events


def _apply(state: Scene, event: Event) -> Scene:
    if event.kind == "removed":
        return state.remove_column(event.column_id)
    return state.add_column(event.positions, column_id=event.column_id)


def _movie_states(scene: Scene, events, n_frames: int):
    """The distinct structures, which one each frame shows, and the events completed
    with positions (a column removed earlier and 'added' again comes back where it was)."""
    states, state_of_frame, done, memory = [scene], np.zeros(n_frames, dtype=int), [], {}
    for ev in sorted(events, key=lambda e: e.frame):
        if ev.kind not in ("removed", "added") or not 0 <= ev.frame < n_frames:
            raise ParameterError(f"event {ev} needs kind 'removed' or 'added' and a frame 0..{n_frames - 1}")
        pos = states[-1].column_positions(ev.column_id) if ev.kind == "removed" else (
            ev.positions if ev.positions is not None else memory.get(ev.column_id))
        if pos is None:
            raise ParameterError(f"event {ev} adds column {ev.column_id}, which was never removed, "
                                 "without atom positions", hint="give positions=... (Angstrom)")
        memory[ev.column_id] = pos
        ev = replace(ev, positions=pos, position_nm=ev.position_nm or _position_nm(scene, pos))
        states.append(_apply(states[-1], ev))
        state_of_frame[ev.frame:] = len(states) - 1
        done.append(ev)
    return states, state_of_frame, done


def smooth_drift(n_frames: int, total_px: float = 3.0,
                 rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Drift (n_frames, 2) in pixels (down, right): a steady glide of *total_px* in a
    random direction plus a gentle sideways wobble, starting at 0."""
    rng = np.random.default_rng(rng)
    t = np.arange(n_frames) / max(n_frames - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    along = np.array([np.sin(angle), np.cos(angle)])
    across = np.array([along[1], -along[0]])
    wobble = 0.1 * total_px * np.sin(np.pi * t) * np.sin(2 * np.pi * t)
    return (total_px * t[:, None] * along + wobble[:, None] * across).astype(np.float64)


def _shift(image: np.ndarray, shift) -> np.ndarray:
    from scipy.ndimage import fourier_shift

    # The padded image is one period of a periodic simulation, so a Fourier
    # shift is an exact sub-pixel translation of it.
    return np.fft.ifft2(fourier_shift(np.fft.fft2(image), shift)).real.astype(np.float32)


class SimulatedMovie(NamedTuple):
    clean: object  # hyperspy Signal2D, expected electrons (float32)
    noisy: object  # hyperspy Signal2D, counted electrons (uint16)


def frame_dose(dose=None, dose_per_area=None, pixel_size: float = 0.25) -> Dose:
    """The dose per frame from *dose* (e⁻/px) or *dose_per_area* (e⁻/Å²) on *pixel_size* Å pixels;
    neither: the paper's 121 e⁻/Å² per frame.  Both must agree (1 %), so that no call is ambiguous."""
    if dose is None and dose_per_area is None:
        return Dose.from_area(PAPER.per_area, pixel_size)
    if dose is None:
        return Dose.from_area(dose_per_area, pixel_size)
    result = Dose(dose, pixel_size)
    if dose_per_area is not None and not math.isclose(result.per_area, float(dose_per_area), rel_tol=0.01):
        raise ParameterError(f"dose={dose} e-/px on {pixel_size} Å pixels is {result.per_area:.4g} e-/Å², "
                             f"not the dose_per_area={dose_per_area} given", hint="give one of the two")
    return result


def simulate_movie(scene: Scene | None = None, *, n_frames: int = 40, events=4, drift=3.0,
                   defocus_nm: float = -8.0, dose: float | None = None, dose_per_area: float | None = None,
                   pixel_size: float = 0.25,
                   frame_time: float = 0.025, microscope: Microscope | None = None,
                   sampling: float = 0.05, slice_thickness: float = 2.0,
                   seed: int | None = 0, progress: bool = True) -> SimulatedMovie:
    """A simulated in situ movie of a fluxional particle: ``(clean, noisy)`` Signal2D.

    *events*: a number of events to plan (:func:`plan_events`) or a list of
    :class:`Event`.  *drift*: total drift in pixels (:func:`smooth_drift`) or an
    (n_frames, 2) array of (down, right) shifts in pixels.  One multislice runs
    per distinct structure (events + 1), not per frame.

    The dose is given per area, *dose_per_area* (e⁻/Å² per frame), or per pixel, *dose* (e⁻/px
    per frame, on *pixel_size* Å pixels) -- one of them; by default the paper's 121 e⁻/Å² per
    frame (:data:`temnb.core.dose.PAPER`).  Both are recorded in the metadata.
    """
    from tqdm.auto import tqdm

    microscope = microscope or Microscope()
    scene = scene if scene is not None else build_scene()
    dose = frame_dose(dose, dose_per_area, pixel_size)
    rng = np.random.default_rng(seed)
    if int(n_frames) != n_frames or n_frames < 1 or not (np.isfinite(frame_time) and frame_time > 0):
        raise ParameterError(f"n_frames {n_frames!r} and frame_time {frame_time!r} s must be positive")
    events = plan_events(scene, n_frames, int(events), rng) if np.isscalar(events) else list(events)
    drift = smooth_drift(n_frames, float(drift), rng) if np.isscalar(drift) else np.asarray(drift, float)
    if drift.shape != (n_frames, 2):
        raise ParameterError(f"drift has shape {drift.shape}, expected ({n_frames}, 2) pixels (down, right)")
    states, state_of_frame, events = _movie_states(scene, events, n_frames)
    margin_px = math.ceil(scene.margin / pixel_size)
    if np.abs(drift).max(initial=0) > margin_px - 2:
        raise ParameterError(f"drift up to {np.abs(drift).max():.1f} px does not fit in the "
                             f"{margin_px}-px margin", hint="reduce the drift or enlarge scene.margin")

    padded, cache = {}, {}
    for index in tqdm(sorted(set(state_of_frame)), desc="multislice (structures)", disable=not progress):
        key = states[index].state_key()
        if key not in cache:
            wave = exit_wave(states[index], pixel_size=pixel_size, sampling=sampling,
                             energy_kV=microscope.energy_kV, slice_thickness=slice_thickness)
            cache[key] = wave.padded_image(defocus_nm, microscope)
        padded[index] = cache[key]
    shape = wave.shape
    clean = np.empty((n_frames, *shape), dtype=np.float32)
    for t in tqdm(range(n_frames), desc="frames", disable=not progress):
        clean[t] = expected_counts(wave.crop(_shift(padded[state_of_frame[t]], drift[t])), dose.per_pixel)
    noisy = poisson_counts(clean, rng)

    vacuum_rows = int(scene.vacuum_height() / pixel_size - np.abs(drift[:, 0]).max())
    params = {
        "generator": "temnb.simulation.hrtem.simulate_movie",
        "seed": seed, "n_frames": int(n_frames), "frame_time_s": float(frame_time),
        "dose_e_per_px": float(dose.per_pixel), "dose_e_per_A2": float(dose.per_area),
        "pixel_size_nm": pixel_size / 10, "defocus_nm": float(defocus_nm),
        "defocus_convention": "abTEM: defocus = -C1, negative = overfocus",
        **{k: float(v) for k, v in asdict(microscope).items()},
        "coherence_model": "quasi-coherent envelopes (abTEM CTF); focal spread is the 1/e half-width",
        "vibration_model": "Gaussian blur of the image intensity, sigma = vibration_pm",
        "multislice": {"code": "abTEM", "sampling_A": pixel_size / wave.oversampling,
                       "slice_thickness_A": float(slice_thickness), "parametrization": "lobato",
                       "projection": "infinite", "runs": len(cache), "plane_wave": True},
        "detector": "area binning to the pixel size, no MTF, counted (Poisson) electrons",
        "field_of_view_nm": [shape[0] * pixel_size / 10, shape[1] * pixel_size / 10],
        "vacuum_rows": [0, max(vacuum_rows, 0)],
        "structure": dict(scene.info), "n_atoms_frame0": int(len(scene.atoms)), "versions": _versions(),
    }
    common = dict(params=params, events=events, drift=drift, frame_time=frame_time, pixel_size=pixel_size,
                  dose=dose)
    return SimulatedMovie(
        _movie_signal(clean, "Expected electrons", "Simulated movie: clean (expected counts)", **common),
        _movie_signal(noisy, "Electrons (counts)", "Simulated movie: noisy (counted electrons)", counts=True,
                      **common),
    )


def _versions() -> dict:
    import abtem
    import ase

    from ..core.environment import TEMNB_VERSION as __version__
    return {"temnb": __version__, "abtem": abtem.__version__, "ase": ase.__version__}


def _movie_signal(data, quantity, title, *, params, events, drift, frame_time, pixel_size, dose, counts=None):
    import hyperspy.api as hs

    axes = [{"name": "time", "units": "s", "scale": frame_time, "offset": 0.0, "navigate": True}] + [
        {"name": n, "units": "nm", "scale": pixel_size / 10, "offset": 0.0, "navigate": False} for n in "yx"]
    for ax, size in zip(axes, data.shape):
        ax["size"] = size
    signal = hs.signals.Signal2D(data, axes=axes)
    signal.metadata.General.title = title
    signal.metadata.set_item("Signal.quantity", quantity)
    tem = "Acquisition_instrument.TEM."
    signal.metadata.set_item(tem + "beam_energy", float(params["energy_kV"]))
    signal.metadata.set_item(tem + "Detector.Camera.name", DETECTOR_NAME)
    signal.metadata.set_item(tem + "Detector.Camera.exposure", float(frame_time))
    if counts:
        md.set(signal, "counts", True)
        md.set_variance_model(signal, 1, 0)  # Poisson: variance = counts
    for key, value in [("simulated", True), ("dose_per_pixel", float(dose.per_pixel)),
                       ("dose_per_area", float(dose.per_area)), ("dose_method", "simulation"),
                       ("frame_time", float(frame_time)), ("source", []), ("simulation", params),
                       ("simulation_events", [ev.as_dict() for ev in events]),
                       ("simulation_drift", np.asarray(drift, dtype=np.float64))]:
        md.set(signal, key, value)
    return signal
