"""Atomic models for the simulated movies: a Wulff-shaped Pt particle on CeO2(111).

Built with ASE, both crystals oriented as a cube-on-cube epitaxial particle on
its support: ``z`` (the beam) along [1-10], a <110> zone axis; ``y`` (up in the
image) along [111], the normal of the support surface and of the particle's
contact facet; ``x`` along [11-2].  Lengths are in Angstrom, as in ASE.

A :class:`Scene` keeps the particle (the atoms that change during a movie) in
field-of-view coordinates (``0 <= x <= width``, ``0 <= y <= height``, +y up)
and rebuilds the support to fill whatever simulation cell is asked for.  The
particle is handled by atomic *columns* (atoms sharing a projected (x, y)
position); each Pt atom carries a persistent column id in
``atoms.arrays['column']``, so a column that leaves and comes back keeps its name.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..core.errors import ParameterError

__all__ = [
    "PT_LATTICE_CONSTANT", "CEO2_LATTICE_CONSTANT", "PARTICLE_DIAMETERS_NM", "PT_SURFACE_ENERGIES",
    "ORIENTATION", "Column", "Support", "Scene", "particle_diameter_nm", "fcc_lattice_constant", "pt_particle", "ceo2_support",
    "label_columns",
    "find_columns", "remove_column", "add_column", "vacant_column_sites", "place_in_field_of_view",
    "build_scene",
]

PT_LATTICE_CONSTANT = 3.924
CEO2_LATTICE_CONSTANT = 5.411
PARTICLE_DIAMETERS_NM = {"small": 1.2, "medium": 1.8, "large": 2.5}
# DFT surface energies of Pt in J/m^2 (Vitos et al., Surf. Sci. 411, 186 (1998));
# only their ratios matter to the Wulff construction.
PT_SURFACE_ENERGIES = {(1, 1, 1): 2.299, (1, 0, 0): 2.734, (1, 1, 0): 2.819}

# Rows are the crystal directions that become x, y, z.
ORIENTATION = np.array([[1, 1, -2], [1, 1, 1], [1, -1, 0]], dtype=float)
ORIENTATION /= np.linalg.norm(ORIENTATION, axis=1)[:, None]

# Columns of an fcc crystal seen along <110> have 6 projected neighbours
# (4 at a*sqrt(6)/4, 2 at a/sqrt(2)); fewer means the column is on the surface.
FCC_110_COORDINATION = 6
PARTICLE_TAG = 1
SUPPORT_TAG = 2
_VACUUM_Z = 2.0  # Angstrom of vacuum before and after the specimen along the beam


@dataclass(frozen=True)
class Column:
    """One atomic column of the particle, as seen along the beam."""

    id: int
    x: float  # projected position, Angstrom, field-of-view coordinates
    y: float
    n_atoms: int
    surface: bool  # fewer projected neighbours than a bulk column
    interface: bool  # in the bottom layer, touching the support


@dataclass(frozen=True)
class Support:
    """A CeO2(111) slab under the particle, filling the cell's width."""

    top: float  # y of the topmost O plane, field-of-view coordinates (Angstrom)
    thickness: float = 40.0  # along the beam (Angstrom)
    lattice_constant: float = CEO2_LATTICE_CONSTANT


def _orient(positions) -> np.ndarray:
    return np.asarray(positions, dtype=float) @ ORIENTATION.T


def particle_diameter_nm(size: str | float) -> float:
    """The nominal diameter (nm) of a particle *size* ('small', 'medium', 'large' or nm)."""
    if isinstance(size, str):
        if size not in PARTICLE_DIAMETERS_NM:
            raise ParameterError(f"unknown particle size {size!r}",
                                 hint=f"use one of {', '.join(PARTICLE_DIAMETERS_NM)} or a diameter in nm")
        return PARTICLE_DIAMETERS_NM[size]
    diameter = float(size)
    if not 0.5 <= diameter <= 10:
        raise ParameterError(f"particle diameter {diameter} nm is outside 0.5-10 nm")
    return diameter


def fcc_lattice_constant(element: str) -> float:
    """The fcc lattice constant (Å) of *element*: 3.924 for Pt, else ASE's reference value
    (``ase.data.reference_states``); ParameterError for an element that is not fcc."""
    from ase.data import atomic_numbers, reference_states

    if element == "Pt":
        return PT_LATTICE_CONSTANT
    state = reference_states[atomic_numbers[element]] if element in atomic_numbers else None
    if not state or state.get("symmetry") != "fcc":
        raise ParameterError(f"{element!r} is not an fcc metal in ASE's reference states",
                             hint="use Pt, Au, Pd, Ag, Cu, Ni, Rh or Ir")
    return float(state["a"])


def pt_particle(size: str | float = "medium", *, surface_energies: dict | None = None,
                lattice_constant: float | None = None, element: str = "Pt"):
    """A Wulff-shaped fcc particle (Pt by default; *element* e.g. "Au" with its own lattice
    constant), [1-10] along z, a (111) facet facing -y.

    *size* is 'small', 'medium', 'large' (about 1.2, 1.8, 2.5 nm) or a diameter in nm.
    The particle is centred on x = z = 0 with its bottom (111) layer at y = 0 and
    its columns labelled (``arrays['column']``).  The surface energies are Pt's unless given.
    """
    from ase import Atoms
    from ase.cluster import wulff_construction

    lattice_constant = fcc_lattice_constant(element) if lattice_constant is None else float(lattice_constant)
    diameter = particle_diameter_nm(size)
    energies = surface_energies or PT_SURFACE_ENERGIES
    # Sphere volume over the volume per atom (a^3/4 in fcc) sets the atom count.
    n_atoms = max(13, round(np.pi / 6 * (10 * diameter) ** 3 / (lattice_constant**3 / 4)))
    cluster = wulff_construction(element, list(energies), list(energies.values()), n_atoms, "fcc",
                                 rounding="closest", latticeconstant=lattice_constant)
    # A plain Atoms: the Cluster subclass carries lattice bookkeeping that no
    # longer holds once the particle is rotated.
    pos = _orient(cluster.positions)
    lo, hi = pos.min(0), pos.max(0)
    pos -= [(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2]
    particle = Atoms(cluster.get_chemical_symbols(), positions=pos, tags=np.full(len(pos), PARTICLE_TAG))
    label_columns(particle)
    return particle


def ceo2_support(width: float, y_range: tuple[float, float], thickness: float,
                 *, lattice_constant: float = CEO2_LATTICE_CONSTANT):
    """An O-terminated CeO2(111) slab seen along [1-10].

    It spans ``0 <= x < width``, whole O-Ce-O trilayers from ``y_range[0]`` up to
    its top O plane at ``y_range[1]``, and ``thickness`` (rounded to whole
    3.83 A repeats) along z from z = 0.  Along x it is strained by at most half a
    repeat so that it is periodic in a cell of that width: a seam would print a
    false defect at the cell edge.
    """
    from ase import Atoms
    from ase.build import bulk, make_supercell

    if width <= 0 or thickness <= 0 or y_range[1] <= y_range[0]:
        raise ParameterError(f"support of width {width:g} A, height {y_range[1] - y_range[0]:g} A and "
                             f"thickness {thickness:g} A is empty", hint="give positive sizes in Angstrom")
    primitive = bulk("CeO2", "fluorite", a=lattice_constant)
    # Orthogonal 18-atom repeat along [11-2]/2, [111], [1-10]/2 (primitive basis).
    block = make_supercell(primitive, [[-1, -1, 2], [1, 1, 1], [-1, 1, 0]])
    period = np.abs(np.diag(_orient(block.cell.array)))
    unit = _orient(block.positions)
    # Wrap into the repeat; the tolerance stops atoms on a face landing on both faces.
    unit -= np.floor(unit / period + 1e-6) * period
    symbols = np.array(block.get_chemical_symbols())

    spacing = period[1] / 3  # between Ce planes
    o_offset = lattice_constant * np.sqrt(3) / 12  # O planes above/below each Ce plane
    n_tri = max(1, int((y_range[1] - y_range[0] - 2 * o_offset) // spacing) + 1)
    nx = max(1, round(width / period[0]))
    ny = n_tri // 3 + 2
    nz = max(1, round(thickness / period[2]))
    shifts = np.stack(np.meshgrid(*map(np.arange, (nx, ny, nz)), indexing="ij"), -1).reshape(-1, 3) * period
    pos = (unit[None] + shifts[:, None]).reshape(-1, 3)
    sym = np.tile(symbols, len(shifts))

    # Keep whole, stoichiometric trilayers: each O goes with its nearest Ce plane.
    frac = (pos[:, 1] / spacing) % 1
    side = np.where(sym == "Ce", 0.0, np.where(frac < 0.5, o_offset, -o_offset))
    plane = np.round((pos[:, 1] - side) / spacing)
    top = plane.max() - 1  # the highest plane may lack its upper O layer
    keep = (plane <= top) & (plane > top - n_tri)
    pos, sym = pos[keep], sym[keep]
    pos[:, 1] += y_range[1] - (top * spacing + o_offset)
    strain = width / (nx * period[0])
    pos[:, 0] *= strain
    return Atoms(list(sym), positions=pos, tags=np.full(len(pos), SUPPORT_TAG),
                 info={"strain_x": float(strain - 1)})


def label_columns(atoms, tolerance: float = 0.5) -> np.ndarray:
    """Give every atom the id of its column (``atoms.arrays['column']``) and return them.

    Atoms whose projected (x, y) positions are within *tolerance* (Angstrom) of
    each other, directly or through a chain, form one column.  Ids run from the
    top-left column, row by row.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xy = atoms.positions[:, :2]
    pairs = cKDTree(xy).query_pairs(tolerance, output_type="ndarray") if len(xy) else np.zeros((0, 2), int)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy),) * 2)
    n, raw = connected_components(graph, directed=False)
    centres = np.array([xy[raw == k].mean(0) for k in range(n)]).reshape(-1, 2)
    rank = np.empty(n, dtype=int)
    rank[np.lexsort((centres[:, 0], -np.round(centres[:, 1] / tolerance)))] = np.arange(n)
    ids = rank[raw].astype(int)
    atoms.set_array("column", ids)
    return ids


def _column_ids(atoms, tolerance) -> np.ndarray:
    if "column" not in atoms.arrays:
        label_columns(atoms, tolerance)
    return atoms.arrays["column"]


def find_columns(atoms, tolerance: float = 0.5, *,
                 bulk_coordination: int = FCC_110_COORDINATION) -> list[Column]:
    """The columns of *atoms* along the beam, with surface and interface flags.

    Surface: fewer than *bulk_coordination* projected neighbours within 1.25 x the
    typical nearest-column spacing (both neighbour shells of an fcc <110>
    projection).  Interface: the lowest row, touching the support.
    """
    from scipy.spatial import cKDTree

    ids = _column_ids(atoms, tolerance)
    unique = np.unique(ids)
    if len(unique) == 0:
        return []
    xy = np.array([atoms.positions[ids == i, :2].mean(0) for i in unique])
    counts = np.array([(ids == i).sum() for i in unique])
    tree = cKDTree(xy)
    spacing = np.median(tree.query(xy, k=2)[0][:, 1]) if len(xy) > 1 else 0.0
    neighbours = [len(n) - 1 for n in tree.query_ball_point(xy, 1.25 * spacing)]
    bottom = xy[:, 1].min()
    return [Column(int(i), float(x), float(y), int(c), bool(n < bulk_coordination),
                   bool(y < bottom + tolerance)) for i, (x, y), c, n in zip(unique, xy, counts, neighbours)]


def remove_column(atoms, column_id: int):
    """A copy of *atoms* without the column *column_id*."""
    ids = _column_ids(atoms, 0.5)
    if column_id not in ids:
        raise ParameterError(f"there is no column {column_id} in this structure",
                             hint=f"pick one of the existing column ids ({_id_summary(ids)})")
    return atoms[ids != column_id]


def add_column(atoms, positions, *, column_id: int | None = None, symbol: str = "Pt",
               tolerance: float = 0.5, min_distance: float = 1.8):
    """A copy of *atoms* with a new column of *symbol* atoms at *positions* (n, 3).

    The atoms must share one projected position (within *tolerance*) and keep at
    least *min_distance* Angstrom from every existing atom.
    """
    from ase import Atoms

    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
        raise ParameterError(f"column positions of shape {positions.shape} are not (n, 3)")
    if (spread := np.ptp(positions[:, :2], axis=0).max()) > 2 * tolerance:
        raise ParameterError(f"the new atoms spread over {spread:.2f} A across the beam: not one column",
                             hint="give atoms that share one (x, y) position and differ only in z")
    ids = _column_ids(atoms, tolerance)
    if len(atoms) and (gap := np.linalg.norm(atoms.positions[None] - positions[:, None], axis=-1).min()) \
            < min_distance:
        raise ParameterError(f"the new column would put atoms {gap:.2f} A from existing ones (less "
                             f"than {min_distance} A)", hint="choose a vacant site (vacant_column_sites)")
    new_id = (int(ids.max()) + 1 if len(ids) else 0) if column_id is None else int(column_id)
    if new_id in ids:
        raise ParameterError(f"column id {new_id} is already in use", hint="leave column_id=None")
    extra = Atoms([symbol] * len(positions), positions=positions, tags=np.full(len(positions), PARTICLE_TAG))
    extra.set_array("column", np.full(len(extra), new_id, dtype=int))
    return atoms.copy() + extra  # _column_ids has labelled atoms, so the ids carry over


def vacant_column_sites(atoms, *, lattice_constant: float = PT_LATTICE_CONSTANT,
                        tolerance: float = 0.5) -> list[np.ndarray]:
    """Empty fcc column sites where a new column would continue the particle's lattice.

    Each site is returned as the (n, 3) positions of its atoms, limited to the z
    range of the neighbouring columns; a site needs at least two existing
    nearest-neighbour columns and must not lie below the particle's bottom row.
    Highest sites first.
    """
    from scipy.spatial import cKDTree

    if len(atoms) == 0:
        return []
    cols = find_columns(atoms, tolerance)
    col_xy = np.array([(c.x, c.y) for c in cols])
    ids = _column_ids(atoms, tolerance)
    origin, centre = atoms.positions[0], atoms.positions.mean(0)
    reach = np.linalg.norm(atoms.positions - centre, axis=1).max() + 4.0
    n = int(np.ceil(reach / lattice_constant)) + 1
    centre_c = np.round((centre - origin) @ ORIENTATION / lattice_constant)
    r = np.arange(-n, n + 1)
    cells = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3) + centre_c
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    lattice = origin + _orient(((cells[:, None] + basis[None]).reshape(-1, 3)) * lattice_constant)
    lattice = lattice[np.linalg.norm(lattice - centre, axis=1) < reach]

    nn = lattice_constant * np.sqrt(6) / 4  # nearest projected column spacing
    site_xy = np.unique(np.round(lattice[:, :2], 3), axis=0)
    tree = cKDTree(col_xy)
    sites = []
    for xy in site_xy:
        if tree.query(xy)[0] < tolerance or xy[1] < col_xy[:, 1].min() - tolerance:
            continue
        near = tree.query_ball_point(xy, 1.05 * nn)
        if len(near) < 2:
            continue
        z = np.concatenate([atoms.positions[ids == cols[k].id, 2] for k in near])
        members = lattice[(np.linalg.norm(lattice[:, :2] - xy, axis=1) < tolerance)
                          & (lattice[:, 2] >= z.min() - tolerance) & (lattice[:, 2] <= z.max() + tolerance)]
        if len(members):
            sites.append(members[np.argsort(members[:, 2])])
    sites.sort(key=lambda s: -s[:, 1].mean())
    return sites


def _id_summary(ids) -> str:
    return f"{np.min(ids)}-{np.max(ids)}" if len(ids) else "none: the structure has no columns"


def _pair(value, what: str) -> tuple[float, float]:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.shape == (1,):
        arr = np.repeat(arr, 2)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(f"{what} {value!r} is not a positive size or (x, y) pair of sizes in Angstrom")
    return float(arr[0]), float(arr[1])


@dataclass(frozen=True)
class Scene:
    """The atoms that may change (field-of-view coordinates), an optional support, and a
    *margin* simulated on every side then cropped, so drift and cell edges never show."""

    atoms: object  # ase.Atoms
    field_of_view: tuple[float, float]  # (width along x, height along y), Angstrom
    support: Support | None = None
    margin: float = 8.0
    info: dict = field(default_factory=dict)

    def columns(self, tolerance: float = 0.5) -> list[Column]:
        """The particle's columns (see :func:`find_columns`)."""
        return find_columns(self.atoms, tolerance)

    def column_positions(self, column_id: int) -> np.ndarray:
        """Positions (n, 3) of the atoms of column *column_id*."""
        ids = _column_ids(self.atoms, 0.5)
        if column_id not in ids:
            raise ParameterError(f"there is no column {column_id} in this scene",
                                 hint=f"existing ids: {_id_summary(ids)}")
        return self.atoms.positions[ids == column_id].copy()

    def remove_column(self, column_id: int) -> Scene:
        return replace(self, atoms=remove_column(self.atoms, column_id))

    def add_column(self, positions, *, column_id: int | None = None) -> Scene:
        return replace(self, atoms=add_column(self.atoms, positions, column_id=column_id))

    def vacant_sites(self) -> list[np.ndarray]:  # see vacant_column_sites
        return vacant_column_sites(self.atoms)

    def image_position(self, x: float, y: float) -> tuple[float, float]:
        """(row, column) distance in Angstrom from the image's top-left corner."""
        return float(self.field_of_view[1] - y), float(x)

    def vacuum_height(self, clearance: float = 5.0) -> float:
        """Angstrom at the top of the field of view at least *clearance* above every atom."""
        tops = [self.atoms.positions[:, 1].max()] if len(self.atoms) else []
        tops += [self.support.top] if self.support is not None else []
        height = self.field_of_view[1]
        return float(np.clip(height - max(tops) - clearance, 0, height)) if tops else float(height)

    def state_key(self) -> str:
        """A digest of everything that changes the image: equal keys, equal multislice."""
        import hashlib

        # Sorted, so that a column removed and put back gives the same key.
        table = np.column_stack([np.round(self.atoms.positions, 3), self.atoms.numbers])
        h = hashlib.sha1(table[np.lexsort(table.T[::-1])].tobytes())
        h.update(repr((self.field_of_view, self.support, self.margin)).encode())
        return h.hexdigest()

    def to_atoms(self, extent: tuple[float, float] | None = None,
                 offset: tuple[float, float] | None = None):
        """All atoms in an orthogonal periodic cell of *extent* (default: field of view plus
        margins), beam along z, the field of view's corner at *offset* (default: the margin).
        The support is built to fill the cell's width down to its bottom edge."""
        width, height = self.field_of_view
        ox, oy = offset if offset is not None else (self.margin, self.margin)
        lx, ly = extent if extent is not None else (width + 2 * ox, height + 2 * oy)
        parts = self.atoms.copy()
        parts.positions += (ox, oy, 0.0)
        if self.support is not None:
            # 1 A clear of the cell's bottom edge, where the periodic image of the top begins.
            slab = ceo2_support(lx, (1.0, self.support.top + oy), self.support.thickness,
                                lattice_constant=self.support.lattice_constant)
            if "column" in parts.arrays:
                slab.set_array("column", np.full(len(slab), -1, dtype=int))
            parts = slab + parts if len(parts) else slab
        if len(parts) == 0:
            raise ParameterError("the scene has no atoms", hint="add a particle or a support")
        parts.positions[:, 2] += _VACUUM_Z - parts.positions[:, 2].min()
        parts.set_cell([lx, ly, parts.positions[:, 2].max() + _VACUUM_Z])
        parts.pbc = True
        return parts


def place_in_field_of_view(atoms, field_of_view, *, position: tuple[float, float] | None = None,
                           support: Support | None = None, margin: float = 8.0,
                           info: dict | None = None) -> Scene:
    """A Scene of *atoms* in a *field_of_view* of Angstrom (a size or (width, height)).

    With *position* (x, y) the middle of the atoms' bottom edge goes there;
    otherwise their coordinates are field-of-view coordinates already.  With a
    *support* they are centred on it along the beam.  ParameterError if nothing
    would be visible.
    """
    width, height = _pair(field_of_view, "field of view")
    if margin < 0:
        raise ParameterError(f"margin {margin} A is negative")
    atoms = atoms.copy()
    if position is not None and len(atoms):
        p = atoms.positions
        p[:, 0] += position[0] - 0.5 * (p[:, 0].min() + p[:, 0].max())
        p[:, 1] += position[1] - p[:, 1].min()
        atoms.positions = p
    if support is not None and len(atoms):  # centred on the support along the beam
        z = atoms.positions[:, 2]
        atoms.positions[:, 2] += 0.5 * support.thickness - 0.5 * (z.min() + z.max())
    xy = atoms.positions[:, :2]
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
    support_visible = support is not None and support.top > 0
    if not inside.any() and not support_visible:
        where = "there are no atoms" if len(atoms) == 0 else (
            f"none of the {len(atoms)} atoms (x {xy[:, 0].min():.1f}..{xy[:, 0].max():.1f} A, "
            f"y {xy[:, 1].min():.1f}..{xy[:, 1].max():.1f} A) lies")
        raise ParameterError(f"{where} in the {width:g} x {height:g} A field of view: nothing to image",
                             hint="move the structure into the field of view (position=...) or enlarge it")
    if "column" not in atoms.arrays:
        label_columns(atoms)
    return Scene(atoms, (width, height), support, float(margin), dict(info or {}))


def build_scene(size: str | float = "medium", *, field_of_view=64.0, support_thickness: float = 40.0,
                support_top: float | None = None, gap: float = 2.2, margin: float = 8.0,
                surface_energies: dict | None = None, element: str = "Pt") -> Scene:
    """A Pt particle (or another fcc *element*, e.g. "Au") on CeO2(111), both seen along [1-10],
    in a field of view.

    The support fills the bottom of the field of view up to *support_top*
    (default: a quarter of the height), the particle sits *gap* Angstrom above
    the top O plane in the middle, and the rest of the top is vacuum.
    *support_thickness* is along the beam, in Angstrom (30-60 is typical).
    """
    width, height = _pair(field_of_view, "field of view")
    if not 5.0 <= support_thickness <= 500.0:
        raise ParameterError(f"support thickness {support_thickness} A is outside 5-500 A",
                             hint="30-60 A (3-6 nm) is typical")
    top = 0.25 * height if support_top is None else float(support_top)
    particle = pt_particle(size, surface_energies=surface_energies, element=element)
    repeat = CEO2_LATTICE_CONSTANT / np.sqrt(2)  # the support comes in whole repeats along the beam
    support = Support(top=top, thickness=float(max(1, round(support_thickness / repeat)) * repeat))
    energies = surface_energies or PT_SURFACE_ENERGIES
    info = {
        "particle": f"{element} Wulff particle (ASE wulff_construction), {len(particle)} atoms, size {size!r}",
        "particle_nominal_diameter_nm": particle_diameter_nm(size),
        "particle_width_nm": round(float(np.ptp(particle.positions[:, 0])) / 10, 3),
        "surface_energies_J_m2": {"".join(map(str, k)): v for k, v in energies.items()},
        "support": f"CeO2(111), O-terminated, a = {CEO2_LATTICE_CONSTANT} A",
        "support_thickness_A": round(support.thickness, 3), "particle_support_gap_A": float(gap),
        "zone_axis": "[1-10] (a <110> axis) of both crystals, cube-on-cube; [111] up",
    }
    return place_in_field_of_view(particle, (width, height), position=(width / 2, top + gap),
                                  support=support, margin=margin, info=info)
