"""Metal nanoclusters for MD: magic-number shapes from ASE and non-magic sizes derived from them.

Magic sizes come straight from :mod:`ase.cluster` (icosahedra, cuboctahedra, octahedra, Marks
decahedra). A non-magic size (e.g. Cu54, Cu56) is made from the magic cluster of the same shape by
removing its least-coordinated surface atoms or by adding adatoms in three-fold hollow sites,
with ties broken by a seeded generator, so the same spec always gives the same atoms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ..errors import param_error, unknown_keys_error

__all__ = ["SHAPES", "ClusterSpec", "build_cluster"]

#: shapes :func:`build_cluster` knows, with the meaning of ``size``
SHAPES = {
    "icosahedron": "number of shells including the centre atom (2 -> 13, 3 -> 55, 4 -> 147 atoms)",
    "cuboctahedron": "number of shells including the centre atom (2 -> 13, 3 -> 55, 4 -> 147 atoms)",
    "octahedron": "atoms along an edge (ASE's Octahedron length, no truncation)",
    "decahedron": "Marks decahedron (p, q, r) as a list of three integers (ASE's Decahedron)",
}


@dataclass(frozen=True)
class ClusterSpec:
    """A nanocluster to simulate.

    Parameters
    ----------
    shape : str
        One of :data:`SHAPES`.
    size : int or tuple of int
        Shape parameter (see :data:`SHAPES`).
    element : str
        Chemical symbol (default ``"Cu"``).
    n_atoms : int, optional
        Target number of atoms when it differs from the magic size of ``shape``/``size``: surface
        atoms are removed or adatoms added (see :func:`build_cluster`).
    lattice_constant_A : float, optional
        fcc lattice constant; ASE's reference value of the element when omitted.
    seed : int
        Tie-break seed for non-magic sizes.
    """

    shape: str = "icosahedron"
    size: int | tuple[int, ...] = 4
    element: str = "Cu"
    n_atoms: int | None = None
    lattice_constant_A: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        from ase.data import atomic_numbers

        if self.shape not in SHAPES:
            raise param_error("cluster.shape", self.shape, f"one of {sorted(SHAPES)}")
        if self.shape == "decahedron":
            allowed = "three integers (p >= 1, q >= 1, r >= 0) for a decahedron"
            raw = self.size if isinstance(self.size, list | tuple | np.ndarray) else [self.size]
            if len(raw) != 3 or not all(_is_int(s) for s in raw):
                raise param_error("cluster.size", self.size, allowed)
            size = tuple(int(s) for s in raw)
            if min(size) < 0 or size[0] < 1 or size[1] < 1:
                raise param_error("cluster.size", self.size, allowed)
            object.__setattr__(self, "size", size)
        elif not _is_int(self.size) or self.size < 1:
            raise param_error("cluster.size", self.size, f"a positive integer: {SHAPES[self.shape]}")
        else:
            object.__setattr__(self, "size", int(self.size))
        if not isinstance(self.element, str) or self.element not in atomic_numbers:
            raise param_error("cluster.element", self.element, "a chemical symbol such as 'Cu'")
        if self.n_atoms is not None:
            if not _is_int(self.n_atoms) or self.n_atoms < 2:
                raise param_error("cluster.n_atoms", self.n_atoms, "an integer >= 2")
            object.__setattr__(self, "n_atoms", int(self.n_atoms))
        if self.lattice_constant_A is not None:
            a = self.lattice_constant_A
            if isinstance(a, bool) or not isinstance(a, int | float) or not (math.isfinite(a) and a > 0):
                raise param_error("cluster.lattice_constant_A", a, "a positive length in Å")
            object.__setattr__(self, "lattice_constant_A", float(a))
        if not _is_int(self.seed) or self.seed < 0:
            raise param_error("cluster.seed", self.seed, "an integer >= 0")
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ClusterSpec:
        """Build from the YAML mapping form (keys are the constructor's arguments)."""
        known = {"shape", "size", "element", "n_atoms", "lattice_constant_A", "seed"}
        unknown = set(spec) - known
        if unknown:
            raise unknown_keys_error(unknown, known, "key(s) in cluster")
        size = spec.get("size", 4)
        return cls(**{**spec, "size": tuple(size) if isinstance(size, list) else size})

    @property
    def label(self) -> str:
        """Short name such as ``Cu147-icosahedron``."""
        return f"{self.element}{len(build_cluster(self))}-{self.shape}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _magic(spec: ClusterSpec) -> Atoms:
    try:
        return _ase_cluster(spec)
    except (ValueError, NotImplementedError) as exc:  # ASE cannot guess the lattice constant
        raise param_error(
            "cluster.lattice_constant_A", spec.lattice_constant_A, f"a value for {spec.element} ({exc})"
        ) from None


def _ase_cluster(spec: ClusterSpec) -> Atoms:
    from ase.cluster import Decahedron, Icosahedron, Octahedron

    kw = {} if spec.lattice_constant_A is None else {"latticeconstant": float(spec.lattice_constant_A)}
    if spec.shape == "icosahedron":
        return Icosahedron(spec.element, int(spec.size), **kw)
    if spec.shape == "cuboctahedron":
        n = int(spec.size) - 1
        if n == 0:
            return Atoms(spec.element, positions=[[0.0, 0.0, 0.0]])
        return Octahedron(spec.element, 2 * n + 1, cutoff=n, **kw)
    if spec.shape == "octahedron":
        return Octahedron(spec.element, int(spec.size), **kw)
    p, q, r = spec.size  # type: ignore[misc]
    return Decahedron(spec.element, p, q, r, **kw)


def _nn_distance(pos: np.ndarray) -> float:
    d, _ = cKDTree(pos).query(pos, k=2)
    return float(np.median(d[:, 1]))


def _remove_surface_atoms(atoms: Atoms, n: int, rng: np.random.Generator) -> Atoms:
    atoms = atoms.copy()
    for _ in range(n):
        pos = atoms.get_positions()
        cut = 1.2 * _nn_distance(pos)
        cn = np.array([len(x) - 1 for x in cKDTree(pos).query_ball_point(pos, cut)])
        lowest = np.flatnonzero(cn == cn.min())
        del atoms[int(rng.choice(lowest))]
    return atoms


def _add_adatoms(atoms: Atoms, n_target: int, rng: np.random.Generator) -> Atoms:
    atoms = atoms.copy()
    while len(atoms) < n_target:
        pos = atoms.get_positions()
        r_nn = _nn_distance(pos)
        tree = cKDTree(pos)
        centre = pos.mean(axis=0)
        sites = []
        # three-fold hollow sites: centroid of three mutually bonded atoms, pushed outward by the
        # height of a regular tetrahedron; kept if no atom is closer than 0.9 r_nn
        for i, j in sorted(tree.query_pairs(1.2 * r_nn)):
            for k in set(tree.query_ball_point(pos[i], 1.2 * r_nn)) & set(tree.query_ball_point(pos[j], 1.2 * r_nn)):
                if k <= j:
                    continue
                tri = pos[[i, j, k]]
                normal = np.cross(tri[1] - tri[0], tri[2] - tri[0])
                normal /= np.linalg.norm(normal)
                mid = tri.mean(axis=0)
                if np.dot(normal, mid - centre) < 0:
                    normal = -normal
                site = mid + normal * r_nn * np.sqrt(2.0 / 3.0)
                if tree.query(site)[0] > 0.9 * r_nn:
                    sites.append(site)
        if not sites:  # a single atom (size 1) has no three-fold hollow site
            raise param_error(
                "cluster.n_atoms", n_target, f"a size reachable by adding adatoms to a {len(atoms)}-atom cluster"
            )
        sites_a = np.asarray(sites)
        # prefer the most coordinated site (fewest dangling bonds), ties broken by the seed
        cn = np.array([len(x) for x in tree.query_ball_point(sites_a, 1.2 * r_nn)])
        best = np.flatnonzero(cn == cn.max())
        atoms += Atoms(atoms.get_chemical_symbols()[0], positions=[sites_a[int(rng.choice(best))]])
    return atoms


def build_cluster(spec: ClusterSpec) -> Atoms:
    """Build the cluster described by ``spec``, centred at the origin, without a cell.

    Parameters
    ----------
    spec : ClusterSpec
        Shape, size, element and optional non-magic atom count.

    Returns
    -------
    ase.Atoms
        The cluster (non-periodic, no cell).

    Raises
    ------
    surrodyn.errors.ConfigError
        If ASE cannot guess the lattice constant of the element (give ``lattice_constant_A``), or
        if ``n_atoms`` cannot be reached by adding adatoms (a single-atom magic cluster).

    Notes
    -----
    Non-magic sizes: atoms are removed one at a time, each time one of the least-coordinated
    (vertex) atoms; adatoms are added one at a time on the three-fold hollow site with the most
    neighbours. Ties are broken with ``numpy.random.default_rng(spec.seed)``.
    """
    atoms = _magic(spec)
    if spec.n_atoms is not None and spec.n_atoms != len(atoms):
        rng = np.random.default_rng(spec.seed)
        if spec.n_atoms < len(atoms):
            atoms = _remove_surface_atoms(atoms, len(atoms) - spec.n_atoms, rng)
        else:
            atoms = _add_adatoms(atoms, spec.n_atoms, rng)
    atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.get_positions())
    atoms.positions -= atoms.positions.mean(axis=0)
    return atoms
