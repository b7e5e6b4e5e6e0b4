"""Reproducible simulated training and evaluation data sets (ASE + abTEM).

One :class:`DatasetSpec` (saved beside the data as ``spec.json``) describes the
structures -- particle size, surface defect, support thickness, crystal tilt --
and the imaging -- defocus series, dose per area, pixel size, image size, seed.
:func:`build_dataset` runs ONE multislice per structure and derives every
defocus from that exit wave through the CTF; :func:`load_dataset` reads the
images back as hyperspy signals with a per-image metadata table and
Poisson-noisy copies.

Conventions
-----------
* Defocus follows :mod:`temnb.simulation.hrtem` (abTEM): ``defocus = -C1``, so a
  NEGATIVE defocus is an overfocus.  With the negative Cs of
  :class:`~temnb.simulation.hrtem.Microscope` (small particle on 3 nm CeO2, measured with
  :func:`column_contrast`) the Pt columns are white from -20 to -10 nm, intermediate
  around -8 to -4 nm and black from -2 nm to +20 nm; -20..0 nm spans all three.
* Dose: a spec says it per area, ``dose_per_area`` in e-/A^2 per frame (default 121, the
  paper's 0.45 e-/px on 0.061 A pixels), and per pixel, ``dose`` = dose_per_area x pixel_size^2
  in e-/px per frame; give either (or both, if they agree) and ``spec.json`` records both.  The
  presets keep 121 e-/A^2 on every pixel size, so coarser pixels count more electrons each.
* Files on disk hold the CLEAN images normalised to vacuum = 1 (float32), one
  HSPY stack (defocus, rows, columns) per structure; :func:`load_dataset`
  scales them to expected electrons at the spec dose (vacuum = dose, e-/px).
* Tilts are rotations of all atoms (particle and support) about the particle /
  support centre; the beam stays along z.  A tilt magnitude from the spec gets
  a random in-plane axis per structure: ``tilt_x = t cos(phi)``, ``tilt_y = t sin(phi)``.
* Each structure's random choices (which column, tilt axis, step side) come
  from ``SeedSequence(spec.seed, spawn_key=(index,))``: parallel builds equal
  serial ones, and a build can be resumed.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..core import metadata as md
from ..core.dose import PAPER, per_pixel
from ..core.errors import DataFileError, DataShapeError, ParameterError
from ..core.record import write_json_atomically
from . import hrtem as sim
from .structures import (
    CEO2_LATTICE_CONSTANT,
    PARTICLE_TAG,
    PT_LATTICE_CONSTANT,
    SUPPORT_TAG,
    Scene,
    build_scene,
    particle_diameter_nm,
    place_in_field_of_view,
)

__all__ = [
    "DEFECTS", "PRESETS", "DatasetSpec", "plan_structures", "make_structure", "assemble_scene",
    "build_dataset", "load_dataset", "contrast_series", "column_contrast", "contrast_kind",
]

DEFECTS = ("none", "atom_vacancy", "column_vacancy", "adatom", "new_column", "step_edge")
MANIFEST, SPEC_FILE = "manifest.json", "spec.json"
# The widest Pt fringes seen along <110>: (111) planes, a / sqrt(3) = 2.27 A.  A pixel
# must be under half of it (Nyquist) for any lattice fringe of the particle to show.
_PT_D111 = PT_LATTICE_CONSTANT / math.sqrt(3)
_TRILAYER = CEO2_LATTICE_CONSTANT / math.sqrt(3)  # CeO2(111) O-Ce-O repeat, 3.12 A

# Every preset records the paper's 121 e-/A^2 per frame (PAPER.per_area); their pixels
# are the paper's 0.061 A or whole multiples of it, so a coarser preset is the paper's frame
# binned n x n at the same electrons per area (n^2 more per pixel), not a lower dose.  Image
# sizes are chosen so that image + 2 margins, in grid points, factors into 2, 3, 5 and 7: a
# large prime factor makes every FFT of the multislice several times slower.
PRESETS = {
    # A handful of tiny images in seconds (tests, CI): the paper's pixels binned 8 x 8, 0.488 A
    # at 28.8 e-/px, 52 px = 2.5 nm, on a 0.122 A multislice grid (280 points).
    "smoke": dict(sizes=("small",), defects=("none", "column_vacancy"), defoci=(-8.0, 0.0),
                  tilts=(0.0, 3.0), thicknesses=(3.0,), n_structures=2, image_size=52,
                  pixel_size=8 * PAPER.pixel_size_A, sampling=2 * PAPER.pixel_size_A, margin=4.0,
                  dose_per_area=PAPER.per_area),
    # Dozens of images in about two minutes on 2 CPU cores (the workshop notebook): the paper's
    # pixels binned 4 x 4, 0.244 A at 7.2 e-/px, 158 px = 3.9 nm, multislice on the paper's 0.061 A
    # grid (896 points).  74 s on 2 busy cores.  (0.122 A at 1.8 e-/px would cost the same
    # multislice, but 4x the pixels for the networks of notebooks 05-08, whose patches and
    # receptive fields are sized for ~0.25 A.)
    "workshop": dict(sizes=("small", "medium"), defects=DEFECTS, defoci=(-16.0, -12.0, -8.0, -4.0, 0.0),
                     tilts=(0.0, 2.0, 4.0), thicknesses=(3.0, 5.0), n_structures=16, image_size=158,
                     pixel_size=4 * PAPER.pixel_size_A, sampling=PAPER.pixel_size_A, margin=8.0,
                     dose_per_area=PAPER.per_area),
    # Thousands of images as the paper simulates them: 0.061 A pixels at 0.45 e-/px, 816 px = 5.0 nm,
    # the paper's supercell (a 1024 px frame would be 6.2 nm), C1 = 0..20 nm (abTEM defocus
    # 0..-20 nm), tilts 0-4 degrees, 3-6 nm supports; x 400 structures.  The multislice grid is
    # the pixel (1080 points; antialiasing limit 108 mrad at 300 kV).  About 11 s and 11 MB on disk
    # a structure on 2 cores (1.2 h, 4.5 GB in all); load_dataset holds 12 GB of float32 clean images.
    "full": dict(sizes=("small", "medium", "large"), defects=DEFECTS,
                 defoci=tuple(float(d) for d in range(-20, 1, 2)), tilts=(0.0, 1.0, 2.0, 3.0, 4.0),
                 thicknesses=(3.0, 4.0, 5.0, 6.0), n_structures=400, image_size=816,
                 pixel_size=PAPER.pixel_size_A, sampling=PAPER.pixel_size_A, margin=8.0,
                 dose_per_area=PAPER.per_area),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines a simulated data set; validated on creation.

    sizes: particle sizes ('small', 'medium', 'large' or nm).  defects: from
    :data:`DEFECTS`.  defoci: nm, abTEM sign (negative = overfocus).  tilts:
    tilt magnitudes in degrees (0-4 typical; random axis in the x-y plane).
    thicknesses: support thickness along the beam, nm.  n_structures: how many
    structures (the size x defect x thickness x tilt grid, shuffled, cycled).
    dose_per_area: e-/A^2 per frame in vacuum (default 121, the paper's).  dose: e-/px per frame
    in vacuum, ``dose_per_area * pixel_size**2``; give one of the two, or both if they agree
    (a spec saved before dose_per_area existed gives only ``dose``).  pixel_size: Angstrom.
    image_size: pixels (square).  sampling: multislice grid, Angstrom.  margin: simulated then
    cropped, Angstrom.
    """

    sizes: tuple = ("small", "medium")
    defects: tuple = ("none", "column_vacancy")
    defoci: tuple = (-8.0, 0.0)
    tilts: tuple = (0.0,)
    thicknesses: tuple = (4.0,)
    n_structures: int = 4
    dose: float | None = None
    dose_per_area: float | None = None
    pixel_size: float = 0.25
    image_size: int = 128
    sampling: float = 0.05
    margin: float = 8.0
    seed: int = 0

    def __post_init__(self):
        def seq(name, kind=float):
            value = getattr(self, name)
            value = (value,) if isinstance(value, (str, int, float)) else tuple(value)
            if not value:
                raise ParameterError(f"DatasetSpec.{name} is empty", hint=f"give at least one {name[:-1]}")
            try:
                value = tuple(v if isinstance(v, str) and kind is not float else kind(v) for v in value)
            except (TypeError, ValueError):
                raise ParameterError(f"DatasetSpec.{name} = {value!r} is not a list of numbers") from None
            object.__setattr__(self, name, value)
            return value

        sizes = seq("sizes", lambda v: v if isinstance(v, str) else float(v))
        for s in sizes:
            particle_diameter_nm(s)
        for d in seq("defects", str):
            if d not in DEFECTS:
                raise ParameterError(f"unknown defect {d!r}", hint=f"use some of {', '.join(DEFECTS)}")
        defoci = seq("defoci")
        if not all(np.isfinite(defoci)) or max(map(abs, defoci)) > 200:
            raise ParameterError(f"defoci {defoci} nm must be finite and within +-200 nm",
                                 hint="abTEM sign: negative = overfocus; -20..0 nm spans white to black columns")
        tilts = seq("tilts")
        if not all(0 <= t <= 10 for t in tilts):
            raise ParameterError(f"tilts {tilts} degrees must lie in 0-10 (0-4 is typical)")
        thick = seq("thicknesses")
        if not all(0.5 <= t <= 50 for t in thick):
            raise ParameterError(f"support thicknesses {thick} nm must lie in 0.5-50 nm (3-6 is typical)")
        for name in ("n_structures", "image_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise ParameterError(f"DatasetSpec.{name} = {value!r} is not an integer")
            object.__setattr__(self, name, int(value))
        if self.n_structures < 1 or self.seed < 0:
            raise ParameterError(f"n_structures {self.n_structures} must be >= 1 and seed {self.seed} >= 0")
        for name in ("pixel_size", "sampling", "margin"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not 0 < self.pixel_size < _PT_D111 / 2:
            raise ParameterError(
                f"pixel size {self.pixel_size} A is too coarse for any lattice fringes: the widest Pt fringes "
                f"(111, {_PT_D111:.2f} A) need pixels under {_PT_D111 / 2:.2f} A",
                hint="use 0.25 A as the sample, or at most ~0.5 A for quick tests")
        self._resolve_dose()
        if not 0 < self.sampling <= self.pixel_size:
            raise ParameterError(f"multislice sampling {self.sampling} A must be positive and at most the "
                                 f"pixel size ({self.pixel_size} A)", hint="0.05 A is accurate at 300 kV")
        if self.image_size < 16:
            raise ParameterError(f"image size {self.image_size} px is under 16 px")
        if self.margin < 2 * self.pixel_size:
            raise ParameterError(f"margin {self.margin} A is under two pixels")
        fov = self.field_of_view
        for s in sizes:
            d = 10 * particle_diameter_nm(s)
            # The particle sits on the support (top at fov/4) and must fit with ~2 A to spare.
            if d + 4 > fov or 0.25 * fov + 2.2 + d + 2 > fov:
                raise ParameterError(f"a {s!r} particle ({d / 10:g} nm) does not fit in the {fov / 10:g} nm "
                                     f"field of view ({self.image_size} px of {self.pixel_size} A)",
                                     hint="use larger images, larger pixels or smaller particles")

    def _resolve_dose(self):
        """Fill in whichever of dose (e-/px) and dose_per_area (e-/A^2) is missing, or check that the
        two agree: a spec must say one dose, whatever unit it was given in."""
        given = {}
        for name, unit in (("dose", "e-/px"), ("dose_per_area", "e-/A^2")):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                if isinstance(value, bool):
                    raise TypeError
                value = float(value)
            except (TypeError, ValueError):
                raise ParameterError(f"DatasetSpec.{name} = {value!r} is not a number") from None
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"dose {value:g} {unit} per frame must be a positive number",
                                     hint=f"{PAPER.per_area:g} e-/A^2 as the paper "
                                          f"({PAPER.per_pixel} e-/px on {PAPER.pixel_size_A} A pixels)")
            given[name] = value
        area = self.pixel_size ** 2
        if not given:
            given["dose_per_area"] = PAPER.per_area
        if "dose" not in given:
            given["dose"] = per_pixel(given["dose_per_area"], self.pixel_size)
        elif "dose_per_area" not in given:
            given["dose_per_area"] = given["dose"] / area
        elif not math.isclose(given["dose"], given["dose_per_area"] * area, rel_tol=1e-6):
            raise ParameterError(
                f"dose {given['dose']:g} e-/px and dose_per_area {given['dose_per_area']:g} e-/A^2 disagree on "
                f"{self.pixel_size:g} A pixels ({given['dose_per_area']:g} e-/A^2 is "
                f"{given['dose_per_area'] * area:.4g} e-/px there)",
                hint="give only one of them; dose = dose_per_area x pixel_size^2")
        object.__setattr__(self, "dose", given["dose"])
        object.__setattr__(self, "dose_per_area", given["dose_per_area"])

    @property
    def field_of_view(self) -> float:
        """Width = height of the images, Angstrom."""
        return self.image_size * self.pixel_size

    @property
    def n_images(self) -> int:
        return self.n_structures * len(self.defoci)

    @classmethod
    def preset(cls, name: str, **changes) -> DatasetSpec:
        """'smoke' (seconds), 'workshop' (~2 min on 2 cores), 'full' (thousands); *changes* override.

        A dose given per pixel (``dose=...``) replaces the preset's dose per area, and a new
        ``pixel_size`` alone keeps the preset's 121 e-/A^2.
        """
        if name not in PRESETS:
            raise ParameterError(f"unknown data-set preset {name!r}", hint=f"use one of {', '.join(PRESETS)}")
        base = dict(PRESETS[name])
        if "dose" in changes and "dose_per_area" not in changes:
            base.pop("dose_per_area", None)
        return cls(**{**base, **changes})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSpec:
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
            raise ParameterError(f"unknown DatasetSpec fields {sorted(unknown)}")
        return cls(**data)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path) -> DatasetSpec:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise DataFileError(f"cannot read a data-set spec: {err}", source=str(path)) from None


# -- structures ---------------------------------------------------------------------

def plan_structures(spec: DatasetSpec) -> list[dict]:
    """The structures of *spec*: the size x defect x thickness x tilt grid shuffled by
    ``spec.seed`` and cycled to ``n_structures``, each with its own derived seed."""
    grid = list(itertools.product(range(len(spec.sizes)), spec.defects, spec.thicknesses, spec.tilts))
    order = np.random.default_rng(spec.seed).permutation(len(grid))
    plan = []
    for index in range(spec.n_structures):
        size, defect, thickness, tilt = grid[order[index % len(grid)]]
        seed = int(np.random.SeedSequence(spec.seed, spawn_key=(index,)).generate_state(1)[0])
        phi = np.random.default_rng(seed).uniform(0, 2 * np.pi)
        plan.append(dict(structure=index, size=spec.sizes[size], defect=defect, thickness_nm=float(thickness),
                         tilt_deg=float(tilt), tilt_x_deg=round(float(tilt * np.cos(phi)), 6) + 0.0,
                         tilt_y_deg=round(float(tilt * np.sin(phi)), 6) + 0.0, seed=seed))
    return plan


def _with_defect(scene: Scene, defect: str, rng: np.random.Generator) -> tuple[Scene, dict]:
    """*scene* with a particle defect; the step edge is applied later (it is on the support)."""
    if defect in ("none", "step_edge"):
        return scene, {}
    cols = scene.columns()
    free = [c for c in cols if c.surface and not c.interface]
    if defect == "column_vacancy":
        if not free:
            raise ParameterError("the particle has no free surface column to remove")
        col = free[int(rng.integers(len(free)))]
        return scene.remove_column(col.id), {"column": col.id, "x_A": col.x, "y_A": col.y}
    if defect == "atom_vacancy":
        tall = [c for c in free if c.n_atoms >= 2] or free
        col = tall[int(rng.integers(len(tall)))]
        ids = scene.atoms.arrays["column"]
        members = np.flatnonzero(ids == col.id)
        z = scene.atoms.positions[members, 2]
        drop = members[np.argmax(z) if rng.random() < 0.5 else np.argmin(z)]  # an end atom of the column
        keep = np.ones(len(scene.atoms), bool)
        keep[drop] = False
        return replace(scene, atoms=scene.atoms[keep]), {"column": col.id, "x_A": col.x, "y_A": col.y}
    sites = scene.vacant_sites()
    if not sites:
        raise ParameterError("the particle has no vacant column site for an adatom")
    site = sites[int(rng.integers(min(3, len(sites))))]  # one of the highest sites
    if defect == "adatom":
        site = site[[len(site) // 2]]
    new = scene.add_column(site)
    x, y = site[:, :2].mean(0)
    return new, {"column": int(new.atoms.arrays["column"].max()), "x_A": float(x), "y_A": float(y),
                 "n_atoms": len(site)}


def make_structure(spec: DatasetSpec, entry: dict) -> tuple[Scene, dict]:
    """The particle Scene of one planned structure (defect applied, not yet tilted)."""
    rng = np.random.default_rng(entry["seed"])
    rng.uniform()  # the tilt axis draw of plan_structures
    scene = build_scene(entry["size"], field_of_view=spec.field_of_view,
                        support_thickness=10 * entry["thickness_nm"], margin=spec.margin)
    scene, where = _with_defect(scene, entry["defect"], rng)
    step = None
    if entry["defect"] == "step_edge":
        side = 1 if rng.random() < 0.5 else -1
        x = scene.atoms.positions[:, 0]
        step = {"side": "right" if side > 0 else "left",
                "x_A": float((x.max() + 3.0) if side > 0 else (x.min() - 3.0))}
    return scene, {"defect_site": where, "step": step}


def assemble_scene(scene: Scene, pixel_size: float, *, tilt_x: float = 0.0, tilt_y: float = 0.0,
                   step: dict | None = None) -> Scene:
    """One Scene holding every atom (particle and support) of *scene*'s padded cell at
    *pixel_size*, with an optional support step and a tilt of *tilt_x*, *tilt_y* degrees.

    The support is built to fill the cell exactly as :func:`temnb.simulation.hrtem.exit_wave`
    would; *step* ``{'side': 'left'|'right', 'x_A': x}`` removes the support's top O-Ce-O
    trilayer beyond x; the tilt rotates all atoms (ASE ``Atoms.rotate``, about x then y)
    about the centre of the particle's base on the support, mid-thickness.  Positions are
    wrapped into the periodic cell; the seams fall in the margin, which is cropped.
    ParameterError if no atom is left in the field of view.
    """
    width, height = scene.field_of_view
    shape = (round(height / pixel_size), round(width / pixel_size))
    margin_px = math.ceil(scene.margin / pixel_size)
    extent = ((shape[1] + 2 * margin_px) * pixel_size, (shape[0] + 2 * margin_px) * pixel_size)
    offset = np.array([margin_px * pixel_size] * 2 + [0.0])
    xy = scene.atoms.positions[:, :2]
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
    if not inside.any() and not (scene.support is not None and scene.support.top > 0):
        raise ParameterError(f"none of the {len(xy)} atoms lies in the {width:g} x {height:g} A field of view: "
                             "nothing to image", hint="move the structure into the field of view")
    if scene.support is None and not (tilt_x or tilt_y or step):
        return scene
    atoms = scene.to_atoms(extent=extent, offset=tuple(offset[:2]))
    atoms.positions -= offset  # back to field-of-view coordinates
    tags = atoms.get_tags()
    if step is not None and scene.support is not None:
        y, x = atoms.positions[:, 1], atoms.positions[:, 0]
        top = scene.support.top
        beyond = x > step["x_A"] if step["side"] == "right" else x < step["x_A"]
        # The top trilayer spans top - 1.56 .. top A; the next one's top O is 3.12 A down.
        atoms = atoms[~((tags == SUPPORT_TAG) & (y > top - 0.75 * _TRILAYER) & beyond)]
        tags = atoms.get_tags()
    if (tilt_x or tilt_y) and len(atoms):
        particle = tags == PARTICLE_TAG
        ref = atoms.positions[particle] if particle.any() else atoms.positions
        centre = (0.5 * (ref[:, 0].min() + ref[:, 0].max()),
                  scene.support.top if scene.support is not None else ref[:, 1].min(),
                  0.5 * (atoms.positions[:, 2].min() + atoms.positions[:, 2].max()))
        atoms.rotate(tilt_x, "x", center=centre)
        atoms.rotate(tilt_y, "y", center=centre)
        pos = atoms.positions
        pos[:, :2] = (pos[:, :2] + offset[:2]) % extent - offset[:2]
        atoms.positions = pos
    if "column" not in atoms.arrays:
        atoms.set_array("column", np.full(len(atoms), -1, dtype=int))
    atoms.info.clear()
    info = {**scene.info, "tilt_x_deg": float(tilt_x), "tilt_y_deg": float(tilt_y), "step": step}
    return place_in_field_of_view(atoms, (width, height), margin=scene.margin, info=info)


# -- building -----------------------------------------------------------------------

def _structure_file(index: int) -> str:
    return f"structure_{index:05d}.hspy"


def _build_one(spec: DatasetSpec, entry: dict, out_dir: str) -> list[dict]:
    """Simulate one structure, write its defocus stack atomically, return its image records."""
    scene, extra = make_structure(spec, entry)
    full = assemble_scene(scene, spec.pixel_size, tilt_x=entry["tilt_x_deg"], tilt_y=entry["tilt_y_deg"],
                          step=extra["step"])
    microscope = sim.Microscope()
    wave = sim.exit_wave(full, pixel_size=spec.pixel_size, sampling=spec.sampling,
                         energy_kV=microscope.energy_kV)
    stack = wave.images(spec.defoci, microscope).astype(np.float32)
    name = _structure_file(entry["structure"])
    signal = _stack_signal(stack, spec.pixel_size, nav_name="defocus", nav_units="nm", nav_axis=spec.defoci)
    signal.metadata.General.title = f"Simulated structure {entry['structure']} (clean, vacuum = 1)"
    md.set(signal, "simulated", True)
    md.set(signal, "simulation", {**entry, **{k: v for k, v in extra.items() if v}, "n_atoms": len(full.atoms)})
    tmp = Path(out_dir) / (name[:-5] + ".partial.hspy")
    signal.save(tmp, overwrite=True)
    os.replace(tmp, Path(out_dir) / name)
    base = {**entry, "file": name, "dose": spec.dose, "dose_per_area": spec.dose_per_area,
            "pixel_size_A": spec.pixel_size,
            "n_atoms": len(full.atoms), "defect_site": extra["defect_site"], "step": extra["step"],
            "file_bytes": (Path(out_dir) / name).stat().st_size}
    return [{**base, "index_in_file": i, "defocus_nm": float(d)} for i, d in enumerate(spec.defoci)]


def _stack_signal(data, pixel_size, *, nav_name, nav_units, nav_axis=None):
    import hyperspy.api as hs

    nav = {"name": nav_name, "units": nav_units, "navigate": True, "size": data.shape[0]}
    values = np.asarray(nav_axis if nav_axis is not None else np.arange(data.shape[0]), float)
    if len(values) > 1 and np.allclose(np.diff(values), values[1] - values[0]) and values[1] != values[0]:
        nav.update(scale=float(values[1] - values[0]), offset=float(values[0]))
    else:
        nav.update(scale=1.0, offset=0.0)
    axes = [nav] + [{"name": n, "units": "nm", "scale": pixel_size / 10, "offset": 0.0, "navigate": False,
                     "size": s} for n, s in zip("yx", data.shape[1:])]
    return hs.signals.Signal2D(data, axes=axes)


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataFileError(f"the manifest is not valid JSON ({err})", source=str(path),
                            hint="delete it to rebuild the data set") from None


def _write_json(path: Path, data) -> None:
    write_json_atomically(path, data, default=float, indent=1)


def build_dataset(spec: DatasetSpec, out_dir, *, n_workers: int = 1, progress: bool = True) -> Path:
    """Simulate *spec* into *out_dir* (created) and return it.

    Writes ``spec.json``, one ``structure_NNNNN.hspy`` per structure (clean images,
    float32, vacuum = 1, navigation axis = defocus) and ``manifest.json`` (one record
    per image).  Cached and resumable: structures whose file is present with the size
    the manifest recorded are skipped, so rerunning an interrupted build finishes it.
    *n_workers* > 1 simulates structures in parallel processes (identical results).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    if not isinstance(spec, DatasetSpec):
        raise ParameterError(f"build_dataset needs a DatasetSpec, not {type(spec).__name__}",
                             hint="DatasetSpec.preset('smoke') or DatasetSpec(...)")
    if int(n_workers) != n_workers or n_workers < 1:
        raise ParameterError(f"n_workers {n_workers!r} must be a positive integer")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / SPEC_FILE
    if spec_path.exists() and DatasetSpec.load(spec_path) != spec:
        raise ParameterError(f"{out_dir} already holds a data set built from a different spec",
                             hint="build into a new folder, or delete this one")
    spec.save(spec_path)
    for stale in out_dir.glob("*.partial.hspy"):  # left by an interrupted build
        stale.unlink()

    manifest = _read_manifest(out_dir)
    done = {}
    for key, records in manifest.get("structures", {}).items():
        f = out_dir / records[0]["file"]
        if f.exists() and f.stat().st_size == records[0]["file_bytes"]:
            done[int(key)] = records
    todo = [e for e in plan_structures(spec) if e["structure"] not in done]

    def record(records):
        done[records[0]["structure"]] = records
        _write_json(out_dir / MANIFEST, {
            "spec": spec.to_dict(), "clean_units": "vacuum = 1 (multiply by dose for expected electrons)",
            "defocus_convention": "abTEM: defocus = -C1, negative = overfocus",
            "microscope": asdict(sim.Microscope()), "versions": sim._versions(),
            "structures": {str(k): done[k] for k in sorted(done)}})

    bar = tqdm(total=spec.n_structures, initial=spec.n_structures - len(todo), desc="structures (multislice)",
               disable=not progress)
    if n_workers == 1 or len(todo) <= 1:
        for entry in todo:
            record(_build_one(spec, entry, str(out_dir)))
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")  # abTEM / dask thread pools do not survive fork
        with ProcessPoolExecutor(max_workers=int(n_workers), mp_context=ctx) as pool:
            futures = [pool.submit(_build_one, spec, entry, str(out_dir)) for entry in todo]
            for future in as_completed(futures):
                record(future.result())
                bar.update()
    bar.close()
    return out_dir


# -- loading ------------------------------------------------------------------------

def load_dataset(path, *, noisy: bool = True, seed: int | None = 0):
    """``(clean, noisy, table)`` of a data set built by :func:`build_dataset`.

    *clean*: Signal2D stack (navigation = image index) of expected electrons per pixel
    at the spec dose (vacuum = dose), float32, signal axes in nm.  *noisy*: Poisson
    draws from it with a generator seeded by *seed* (uint16 counts; None if
    ``noisy=False``).  *table*: one dict per image (structure, size, defect, defocus_nm,
    tilt, thickness_nm, dose (e-/px), dose_per_area (e-/A^2), pixel_size_A, seed, ...).  Both signals carry
    ``temnb.simulated = True``; the noisy one ``temnb.io.counts = True``.
    """
    import hyperspy.api as hs

    path = Path(path)
    out_dir = path.parent if path.is_file() else path
    spec = DatasetSpec.load(out_dir / SPEC_FILE) if (out_dir / SPEC_FILE).exists() else None
    manifest = _read_manifest(out_dir)
    if spec is None or not manifest.get("structures"):
        raise DataFileError("no simulated data set here (spec.json / manifest.json missing)", source=str(out_dir),
                            hint="run temnb.simulation.training_data.build_dataset(spec, folder) first")
    table, stacks = [], []
    for key in sorted(manifest["structures"], key=int):
        records = manifest["structures"][key]
        f = out_dir / records[0]["file"]
        if not f.exists():
            raise DataFileError(f"{f.name} listed in the manifest is missing", source=str(out_dir),
                                hint="rerun build_dataset with the same spec to rebuild it")
        stacks.append(np.asarray(hs.load(f, lazy=False).data, dtype=np.float32))
        table.extend(dict(r) for r in records)
    images = np.concatenate(stacks) * np.float32(spec.dose)
    clean = _dataset_signal(images, spec, "Simulated training set: clean (expected electrons)",
                            "Expected electrons", table)
    if not noisy:
        return clean, None, table
    counts = sim.poisson_counts(images, np.random.default_rng(seed))
    noisy_signal = _dataset_signal(counts, spec, "Simulated training set: noisy (counted electrons)",
                                   "Electrons (counts)", table)
    md.set(noisy_signal, "counts", True)
    md.set_variance_model(noisy_signal, 1, 0)
    md.set(noisy_signal, "simulation_noise_seed", seed)
    return clean, noisy_signal, table


def _dataset_signal(data, spec, title, quantity, table):
    signal = _stack_signal(data, spec.pixel_size, nav_name="image", nav_units="")
    signal.metadata.General.title = title
    signal.metadata.set_item("Signal.quantity", quantity)
    signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", float(sim.Microscope().energy_kV))
    for key, value in [("simulated", True), ("dose_per_pixel", spec.dose), ("dose_method", "simulation"),
                       ("simulation", {"generator": "temnb.simulation.training_data", "spec": spec.to_dict()}),
                       ("simulation_images", json.dumps(table, default=float))]:
        md.set(signal, key, value)
    return signal


# -- contrast helpers for the notebook ----------------------------------------------

def contrast_series(scene: Scene, defoci, *, microscope: sim.Microscope | None = None,
                    pixel_size: float = 0.25, sampling: float = 0.05) -> list[np.ndarray]:
    """Images (vacuum = 1) of *scene* at each of *defoci* (nm, abTEM sign) from ONE exit wave."""
    defoci = list(np.atleast_1d(np.asarray(defoci, dtype=float)))
    if not defoci:
        raise ParameterError("no defocus given", hint="e.g. defoci=[-16, -8, 0, 8] (nm)")
    microscope = microscope or sim.Microscope()
    wave = sim.exit_wave(scene, pixel_size=pixel_size, sampling=sampling, energy_kV=microscope.energy_kV)
    return [wave.image(d, microscope) for d in defoci]


def column_contrast(image, scene: Scene, *, radius: float = 0.5) -> float:
    """Mean intensity at the Pt column positions of *scene* over the vacuum level.

    *image*: the field of view of *scene* (array or Signal2D, any scale).  The vacuum
    level is the mean of the rows above every atom (``scene.vacuum_height``; 1 if there
    are none, for images normalised to vacuum = 1).  Above 1: white columns; below 1:
    black (see :func:`contrast_kind`).  *radius*: Angstrom averaged around each column.
    """
    data = np.asarray(getattr(image, "data", image), dtype=np.float64)
    if data.ndim != 2:
        raise ParameterError(f"column_contrast needs one 2D image, not shape {data.shape}")
    width, height = scene.field_of_view
    ps = width / data.shape[1]
    tags = scene.atoms.get_tags()
    pt = scene.atoms[(tags == PARTICLE_TAG)] if (tags == PARTICLE_TAG).any() else scene.atoms
    pt = pt[np.array(pt.get_chemical_symbols()) == "Pt"] if len(pt) else pt
    if len(pt) == 0:
        raise ParameterError("the scene has no Pt atoms to measure")
    cols = [c for c in place_in_field_of_view(pt, scene.field_of_view, margin=scene.margin).columns()
            if 0 <= c.x <= width and 0 <= c.y <= height]
    rows, cc = np.indices(data.shape)
    yc, xc = height - (rows + 0.5) * ps, (cc + 0.5) * ps
    mask = np.zeros(data.shape, bool)
    for c in cols:
        mask |= np.hypot(xc - c.x, yc - c.y) <= max(radius, 0.5 * ps)
    vac_rows = int(scene.vacuum_height() / ps)
    vacuum = float(data[:vac_rows].mean()) if vac_rows >= 1 else 1.0
    return float(data[mask].mean() / vacuum)


def contrast_kind(ratio: float, tolerance: float = 0.05) -> str:
    """'white', 'black' or 'intermediate' for a :func:`column_contrast` ratio."""
    return "white" if ratio > 1 + tolerance else "black" if ratio < 1 - tolerance else "intermediate"


# Column contrast of the Pt particle against defocus for temnb.simulation.hrtem.Microscope (Cs -13 um,
# C5 5 mm, 300 kV), measured with temnb.simulation.training_data.column_contrast on the small particle:
# bright (white) columns in overfocus, dark (black) near Gaussian focus and underfocus.
CONTRAST_BY_DEFOCUS = (("white", -20.0, -10.0), ("intermediate", -9.0, -3.0), ("black", -2.0, 20.0))


def contrast_of_defocus(defocus_nm: float) -> str:
    """'white', 'intermediate' or 'black': the Pt column contrast at *defocus_nm* (abTEM sign)."""
    d = float(defocus_nm)
    for kind, low, high in CONTRAST_BY_DEFOCUS:
        if low <= d <= high:
            return kind
    raise ParameterError(f"defocus {d} nm is outside the measured range -20..20 nm",
                         hint="use temnb.simulation.training_data.column_contrast on your own images")


def split_by_structure(table, test_fraction: float = 0.25, seed: int = 0):
    """``(train, test)`` index arrays into *table* with whole STRUCTURES held out.

    Images of one structure at different defoci share every atom, so splitting images at
    random would leak test structures into training; the split is over ``table[i]['structure']``.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    structures = np.array([row["structure"] for row in table])
    unique = np.unique(structures)
    if len(unique) < 2:
        raise DataShapeError(f"the data set has {len(unique)} structure(s); a held-out split needs at least 2",
                             hint="build a larger data set (DatasetSpec n_structures)")
    rng = np.random.default_rng(seed)
    n_test = min(len(unique) - 1, max(1, round(test_fraction * len(unique))))
    test_structures = rng.choice(unique, size=n_test, replace=False)
    is_test = np.isin(structures, test_structures)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def select_images(table, indices=None, *, contrast=None, defoci=None) -> np.ndarray:
    """Indices (among *indices*, default all) whose column contrast is in *contrast* (a kind or
    a list of kinds, see :func:`contrast_of_defocus`) and whose defocus is in *defoci*."""
    chosen = np.arange(len(table)) if indices is None else np.asarray(indices, dtype=int)
    kinds = {contrast} if isinstance(contrast, str) else set(contrast or ())
    unknown = kinds - {k for k, _, _ in CONTRAST_BY_DEFOCUS}
    if unknown:
        raise ParameterError(f"unknown contrast {sorted(unknown)}", hint="use 'white', 'intermediate' or 'black'")
    keep = []
    for i in chosen:
        d = float(table[i]["defocus_nm"])
        if kinds and contrast_of_defocus(d) not in kinds:
            continue
        if defoci is not None and not any(abs(d - float(x)) < 1e-6 for x in defoci):
            continue
        keep.append(int(i))
    return np.array(keep, dtype=int)


def take_images(stack, indices):
    """The images *indices* of a hyperspy stack (navigation = image) as a new stack with the same
    calibration and metadata (dose, simulation spec), so training knows their dose.  hyperspy's
    ``inav`` takes slices, not index lists."""
    import hyperspy.api as hs

    from ..core.signals import is_signal

    if not is_signal(stack) or stack.axes_manager.navigation_dimension != 1:
        raise DataShapeError("take_images needs a hyperspy stack of images (one navigation axis)")
    indices = np.asarray(indices, dtype=int)
    if indices.size == 0:
        raise ParameterError("no images selected", hint="check the split or the contrast / defocus filter")
    out = hs.signals.Signal2D(np.asarray(stack.data)[indices], metadata=stack.metadata.as_dictionary())
    for new, old in zip(out.axes_manager.signal_axes, stack.axes_manager.signal_axes):
        new.scale, new.offset, new.units, new.name = old.scale, old.offset, old.units, old.name
    out.axes_manager.navigation_axes[0].name = stack.axes_manager.navigation_axes[0].name
    if "simulation_images" in out.metadata.get_item("temnb", {}):
        import json

        table = json.loads(out.metadata.temnb.simulation_images)
        out.metadata.temnb.simulation_images = json.dumps([table[i] for i in indices], default=float)
    return out
