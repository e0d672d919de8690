"""Featurise MD trajectories: distances, angles, dihedrals (sin/cos), contacts, centre-of-mass distances.

Any trajectory MDAnalysis reads (DCD, XTC, TRR, NetCDF, PDB, ...) with a topology, streamed in
chunks of frames so that a trajectory larger than memory works, and PLUMED COLVAR files for users
who already have CV columns. Lengths are in **nm** (OpenMM's and PLUMED's unit; MDAnalysis
reads Å and is converted), angles in radians.

A feature set is a list of feature specs resolved against the topology by a :class:`Featurizer`;
every feature has a name (``"dist C5-N7"``, ``"sin phi ..."``), and a featurizer computes all of
them for a block of frames at once (vectorised over frames and features). Distances in a periodic
orthorhombic box use the minimum image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, param_error

__all__ = [
    "Angles",
    "CentreOfMassDistance",
    "Contacts",
    "Dihedrals",
    "Distances",
    "FeatureStream",
    "Featurizer",
    "read_colvar",
]

_ANGSTROM_TO_NM = 0.1


@dataclass(frozen=True)
class Distances:
    """Pairwise distances within one selection, or between every atom of two selections."""

    selection: str = "not name H*"
    other: str | None = None


@dataclass(frozen=True)
class Angles:
    """Bond angles of atom triples (0-based indices), in radians."""

    triples: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Dihedrals:
    """Dihedral angles of atom quadruples (0-based), as (sin, cos) pairs by default, or radians."""

    quads: tuple[tuple[int, int, int, int], ...]
    labels: tuple[str, ...] | None = None
    sincos: bool = True


@dataclass(frozen=True)
class Contacts:
    """Rational switching function s = (1 − (r/r0)^n) / (1 − (r/r0)^m) of the distances between two selections.

    PLUMED's ``RATIONAL`` form: 1 at r = 0, exactly n/m at r = r0, → 0 far away. With ``total``
    the contacts are summed into one coordination number.
    """

    selection: str
    other: str
    r0: float = 0.5
    n: int = 6
    m: int = 12
    total: bool = False


@dataclass(frozen=True)
class CentreOfMassDistance:
    """Distance between the centres of mass of two groups (host–guest)."""

    selection: str
    other: str


Spec = Distances | Angles | Dihedrals | Contacts | CentreOfMassDistance


def _minimum_image(d: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    if box is None:
        return d
    return d - box * np.round(d / box)


def _dihedral(p: np.ndarray) -> np.ndarray:
    """Dihedral angles of (..., 4, 3) point quadruples (IUPAC sign convention), radians."""
    b0, b1, b2 = p[..., 0, :] - p[..., 1, :], p[..., 2, :] - p[..., 1, :], p[..., 3, :] - p[..., 2, :]
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, -1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, -1, keepdims=True) * b1n
    x = np.sum(v * w, -1)
    y = np.sum(np.cross(b1n, v) * w, -1)
    return np.arctan2(y, x)


class Featurizer:
    """Feature specs resolved against a topology; computes features of position blocks.

    Parameters
    ----------
    universe : MDAnalysis.Universe
        Topology (and trajectory) to resolve selections against.
    specs : sequence of Spec
        Feature specs, in order.
    """

    def __init__(self, universe: Any, specs: Sequence[Spec]) -> None:
        if not specs:
            raise ConfigError("no features requested: give at least one feature spec.")
        self.n_atoms = len(universe.atoms)
        self.names: list[str] = []
        self._ops: list[tuple[str, Any]] = []
        labels = [f"{a.name}{a.index}" for a in universe.atoms]
        for spec in specs:
            if isinstance(spec, Distances):
                pairs = self._pairs(universe, spec.selection, spec.other)
                self._ops.append(("dist", pairs))
                self.names += [f"dist {labels[i]}-{labels[j]}" for i, j in pairs]
            elif isinstance(spec, Contacts):
                pairs = self._pairs(universe, spec.selection, spec.other)
                if not spec.r0 > 0 or spec.n <= 0 or spec.m <= spec.n:
                    raise param_error("contacts", (spec.r0, spec.n, spec.m), "r0 > 0 and 0 < n < m")
                self._ops.append(("contact", (pairs, spec)))
                self.names += (
                    [f"contacts {spec.selection} / {spec.other}"]
                    if spec.total
                    else [f"contact {labels[i]}-{labels[j]}" for i, j in pairs]
                )
            elif isinstance(spec, Angles):
                idx = self._indices(spec.triples, 3)
                self._ops.append(("angle", idx))
                self.names += ["angle " + "-".join(labels[k] for k in t) for t in idx]
            elif isinstance(spec, Dihedrals):
                idx = self._indices(spec.quads, 4)
                tags = spec.labels or tuple("-".join(labels[k] for k in q) for q in idx)
                if len(tags) != len(idx):
                    raise ConfigError(f"{len(tags)} dihedral labels for {len(idx)} dihedrals.")
                self._ops.append(("dihedral", (idx, spec.sincos)))
                self.names += [f"{f} {t}" for t in tags for f in ("sin", "cos")] if spec.sincos else list(tags)
            elif isinstance(spec, CentreOfMassDistance):
                a, b = self._select(universe, spec.selection), self._select(universe, spec.other)
                masses = np.asarray(universe.atoms.masses, dtype=float)
                self._ops.append(("com", (a, b, masses[a] / masses[a].sum(), masses[b] / masses[b].sum())))
                self.names.append(f"com distance {spec.selection} / {spec.other}")
            else:
                raise ConfigError(f"unknown feature spec {spec!r}.")

    @classmethod
    def _pairs(cls, universe: Any, selection: str, other: str | None) -> np.ndarray:
        """Atom index pairs: within ``selection`` (each once), or between it and ``other`` (no self-pairs)."""
        a = cls._select(universe, selection)
        if other is None:
            pairs = np.array(list(combinations(a, 2)))
        else:
            pairs = np.array([(i, j) for i in a for j in cls._select(universe, other) if i != j])
        if pairs.size == 0:
            raise ConfigError(f"the selections {selection!r} / {other!r} give no atom pairs.")
        return pairs

    @staticmethod
    def _select(universe: Any, selection: str) -> np.ndarray:
        try:
            idx = universe.select_atoms(selection).indices
        except Exception as err:  # MDAnalysis raises SelectionError and friends
            raise ConfigError(f"atom selection {selection!r} failed: {err}") from None
        if idx.size == 0:
            raise ConfigError(f"atom selection {selection!r} matches no atom.")
        return np.asarray(idx)

    def _indices(self, tuples: Sequence[Sequence[int]], k: int) -> np.ndarray:
        idx = np.asarray(tuples, dtype=int).reshape(-1, k)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= self.n_atoms:
            raise ConfigError(f"atom indices must lie in [0, {self.n_atoms}); got {tuples!r}.")
        return idx

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.names)

    def compute(self, positions: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """Features of a block of frames.

        Parameters
        ----------
        positions : numpy.ndarray
            (n_frames, n_atoms, 3) in nm.
        box : numpy.ndarray, optional
            (n_frames, 3) orthorhombic box lengths in nm, for minimum-image distances.

        Returns
        -------
        numpy.ndarray
            (n_frames, n_features), float64.
        """
        x = np.asarray(positions, dtype=float)
        if x.ndim != 3 or x.shape[1:] != (self.n_atoms, 3):
            raise ConfigError(f"positions must be (frames, {self.n_atoms}, 3); got {x.shape}.")
        bx = None if box is None else np.asarray(box, dtype=float)[:, None, :]
        cols: list[np.ndarray] = []
        for kind, arg in self._ops:
            if kind == "dist":
                d = _minimum_image(x[:, arg[:, 1]] - x[:, arg[:, 0]], bx)
                cols.append(np.linalg.norm(d, axis=-1))
            elif kind == "contact":
                pairs, spec = arg
                r = np.linalg.norm(_minimum_image(x[:, pairs[:, 1]] - x[:, pairs[:, 0]], bx), axis=-1) / spec.r0
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = (1.0 - r**spec.n) / (1.0 - r**spec.m)
                s = np.where(np.abs(r - 1.0) < 1e-8, spec.n / spec.m, s)  # the removable singularity at r0
                cols.append(s.sum(-1, keepdims=True) if spec.total else s)
            elif kind == "angle":
                u = x[:, arg[:, 0]] - x[:, arg[:, 1]]
                v = x[:, arg[:, 2]] - x[:, arg[:, 1]]
                cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
                cols.append(np.arccos(np.clip(cos, -1.0, 1.0)))
            elif kind == "dihedral":
                idx, sincos = arg
                phi = _dihedral(x[:, idx])
                cols.append(np.stack([np.sin(phi), np.cos(phi)], -1).reshape(len(x), -1) if sincos else phi)
            else:  # centre-of-mass distance
                a, b, wa, wb = arg
                d = _minimum_image(np.einsum("fai,a->fi", x[:, b], wb) - np.einsum("fai,a->fi", x[:, a], wa),
                                   None if bx is None else bx[:, 0])  # fmt: skip
                cols.append(np.linalg.norm(d, axis=-1, keepdims=True))
        return np.concatenate(cols, axis=1)


def _box(ts: Any) -> np.ndarray | None:
    dims = ts.dimensions
    if dims is None or not np.all(np.asarray(dims[:3]) > 0):
        return None
    if not np.allclose(dims[3:], 90.0):
        raise ConfigError("only orthorhombic boxes are supported for minimum-image features.")
    return np.asarray(dims[:3], dtype=float) * _ANGSTROM_TO_NM


class FeatureStream:
    """Features of a trajectory, read in chunks of frames (iterate) or all at once (:meth:`array`).

    Parameters
    ----------
    topology : str or Path
        Topology file (PDB, PSF, PRMTOP, GRO, ...).
    trajectory : str, Path, list of them, or None
        Trajectory file(s) in any format MDAnalysis reads; ``None`` reads the topology's frames.
    specs : sequence of Spec
        Feature specs.
    chunk : int
        Frames per block (memory holds one block of positions at a time).
    stride : int
        Take every ``stride``-th frame.
    """

    def __init__(
        self,
        topology: str | Path,
        trajectory: str | Path | Sequence[str | Path] | None,
        specs: Sequence[Spec],
        chunk: int = 1000,
        stride: int = 1,
    ) -> None:
        import MDAnalysis as mda

        if not (isinstance(chunk, int) and isinstance(stride, int) and chunk >= 1 and stride >= 1):
            raise param_error("chunk/stride", (chunk, stride), "positive integers")
        trajs = [] if trajectory is None else [trajectory] if isinstance(trajectory, str | Path) else list(trajectory)
        for path in [topology, *trajs]:
            if not Path(path).is_file():
                raise ConfigError(f"{path}: no such file.")
        try:
            self.universe = mda.Universe(str(topology), *[str(t) for t in trajs])
        except Exception as err:  # unreadable or mismatched files
            raise ConfigError(f"MDAnalysis cannot read {topology} with {trajs}: {err}") from None
        self.featurizer = Featurizer(self.universe, specs)
        self.chunk, self.stride = chunk, stride

    @property
    def names(self) -> list[str]:
        """Feature names."""
        return self.featurizer.names

    def __len__(self) -> int:
        return len(range(0, len(self.universe.trajectory), self.stride))

    def __iter__(self) -> Iterator[np.ndarray]:
        pos: list[np.ndarray] = []
        boxes: list[np.ndarray | None] = []
        for ts in self.universe.trajectory[:: self.stride]:
            pos.append(ts.positions.astype(np.float64) * _ANGSTROM_TO_NM)
            boxes.append(_box(ts))
            if len(pos) == self.chunk:
                yield self.featurizer.compute(np.stack(pos), None if boxes[0] is None else np.stack(boxes))
                pos, boxes = [], []
        if pos:
            yield self.featurizer.compute(np.stack(pos), None if boxes[0] is None else np.stack(boxes))

    def array(self) -> np.ndarray:
        """All frames' features, (n_frames, n_features)."""
        return np.concatenate(list(self), axis=0)


def read_colvar(path: str | Path, columns: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Read a PLUMED COLVAR file (``#! FIELDS time a b ...`` header, whitespace columns).

    Parameters
    ----------
    path : str or Path
        The COLVAR file; restarts (repeated ``#! FIELDS`` lines) are allowed if the fields agree.
    columns : sequence of str, optional
        Columns to return (default all but ``time``).

    Returns
    -------
    tuple
        Column names and the (n_frames, n_columns) array.
    """
    fields: list[str] | None = None
    rows: list[list[float]] = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#! FIELDS"):
                new = line.split()[2:]
                if fields is not None and new != fields:
                    raise ConfigError(f"{path}:{lineno}: FIELDS change within the file ({fields} -> {new}).")
                fields = new
            elif line.startswith("#") or not line.strip():
                continue
            else:
                if fields is None:
                    raise ConfigError(f"{path}: data before the '#! FIELDS' header (line {lineno}).")
                values = line.split()
                if len(values) != len(fields):
                    raise ConfigError(f"{path}:{lineno}: {len(values)} values for {len(fields)} fields.")
                rows.append([float(v) for v in values])
    if fields is None or not rows:
        raise ConfigError(f"{path}: not a PLUMED COLVAR file (no '#! FIELDS' header or no data).")
    data = np.asarray(rows)
    want = [f for f in fields if f != "time"] if columns is None else list(columns)
    missing = [c for c in want if c not in fields]
    if missing:
        raise ConfigError(f"{path}: no column(s) {missing}; the file has {fields}.")
    return want, data[:, [fields.index(c) for c in want]]
