"""Featurise MD trajectories: distances, angles, dihedrals (sin/cos), contacts, centre-of-mass distances.

Any trajectory MDAnalysis reads (DCD, XTC, TRR, NetCDF, PDB, ...) with a topology, streamed in
chunks of frames so that a trajectory larger than memory works, and PLUMED COLVAR files for users
who already have CV columns. Lengths are in **nm** (OpenMM's and PLUMED's unit; MDAnalysis
reads Å and is converted), angles in radians.

A feature set is a list of feature specs resolved against the topology by a :class:`Featurizer`;
every feature has a name (``"dist C5-N7"``, ``"sin phi ..."``), and a featurizer computes all of
them for a block of frames at once (vectorised over frames and features), and their exact
Jacobians with respect to the atom positions (:meth:`Featurizer.jacobian`, for biasing). In a
periodic orthorhombic box, distances and the bond vectors of angles and dihedrals use the
minimum image and centre-of-mass groups are made whole, as PLUMED does. A resolved featurizer is
plain data (0-based atom indices, weights, parameters): :meth:`Featurizer.to_dict` /
:meth:`Featurizer.from_dict` carry it to an MD engine without the topology.
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

FEATURIZER_FORMAT = 1  # version of the dictionary written by Featurizer.to_dict

_KEYS = {  # the fields of every resolved operation, as stored by Featurizer.to_dict
    "dist": ("pairs",),
    "contact": ("group_a", "group_b", "r0", "n", "m", "total"),
    "angle": ("triples",),
    "dihedral": ("quads", "sincos"),
    "com": ("group_a", "group_b", "weights_a", "weights_b"),
}


def _minimum_image(d: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    if box is None:
        return d
    return d - box * np.round(d / box)


def _pair_list(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Atom pairs within ``a`` (each once), or between ``a`` and ``b`` (no self-pairs), as (P, 2)."""
    if b is None:
        return np.array(list(combinations(a, 2)), dtype=int).reshape(-1, 2)
    return np.array([(i, j) for i in a for j in b if i != j], dtype=int).reshape(-1, 2)


def _geometric_sum(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """P_k(q) = 1 + q + … + q^(k−1) and its derivative, by Horner's scheme."""
    p, dp = np.ones_like(q), np.zeros_like(q)
    for _ in range(k - 1):
        dp = dp * q + p
        p = p * q + 1.0
    return p, dp


def _rational(q: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Rational switch s(q) = (1 − q^n)/(1 − q^m) and ds/dq, free of the removable singularity at q = 1.

    With integer n < m, s = P_n(q)/P_m(q) with the geometric sums P_k(q) = (1 − q^k)/(1 − q): both
    positive, so s(1) = n/m and s'(1) = n(n − m)/(2m) come out of the same expression without
    cancellation.
    """
    pn, dpn = _geometric_sum(q, n)
    pm, dpm = _geometric_sum(q, m)
    return pn / pm, (dpn * pm - pn * dpm) / pm**2


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (cheaper than ``np.cross`` on small blocks)."""
    i, j = [1, 2, 0], [2, 0, 1]
    return a[..., i] * b[..., j] - a[..., j] * b[..., i]


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Divide, with 0 where the denominator is 0 (the derivative of a degenerate angle or dihedral)."""
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _whole(x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    """Chain the minimum images along the atom order (PLUMED's ``makeWhole``): (N, k, 3) → (N, k, 3)."""
    if box is None or x.shape[1] < 2:
        return x
    y = x.copy()
    for j in range(1, x.shape[1]):
        y[:, j] = y[:, j - 1] + _minimum_image(x[:, j] - y[:, j - 1], box[:, 0])
    return y


# Each kernel returns the values (N, k) and, when asked, the derivative "slots": a list of
# (rows (s,), atoms (s,), d value / d position (N, s, 3)) whose sum over slots is the Jacobian.
_Slots = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def _distance_kernel(x: np.ndarray, pairs: np.ndarray, box: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    d = _minimum_image(x[:, pairs[:, 1]] - x[:, pairs[:, 0]], box)
    r = np.linalg.norm(d, axis=-1)
    return r, _safe_divide(d, r[..., None])


def _pair_slots(pairs: np.ndarray, g: np.ndarray, rows: np.ndarray | None = None) -> _Slots:
    rows = np.arange(len(pairs)) if rows is None else rows
    return [(rows, pairs[:, 1], g), (rows, pairs[:, 0], -g)]


def _op_values(kind: str, op: dict[str, Any], x: np.ndarray, box: np.ndarray | None, grad: bool):
    """Values (N, k) of one resolved operation, and its derivative slots when ``grad``."""
    slots: _Slots = []
    if kind == "dist":
        r, u = _distance_kernel(x, op["pairs"], box)
        return r, (_pair_slots(op["pairs"], u) if grad else slots)
    if kind == "contact":
        pairs = op["pairs"]
        r, u = _distance_kernel(x, pairs, box)
        s, ds = _rational(r / op["r0"], op["n"], op["m"])
        g = (ds / op["r0"])[..., None] * u
        if op["total"]:
            return s.sum(-1, keepdims=True), (_pair_slots(pairs, g, np.zeros(len(pairs), dtype=int)) if grad else slots)
        return s, (_pair_slots(pairs, g) if grad else slots)
    if kind == "angle":
        t = op["triples"]
        u = _minimum_image(x[:, t[:, 0]] - x[:, t[:, 1]], box)
        v = _minimum_image(x[:, t[:, 2]] - x[:, t[:, 1]], box)
        nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
        cos = np.clip(_safe_divide(np.sum(u * v, -1), nu * nv), -1.0, 1.0)
        theta = np.arccos(cos)
        if grad:  # dθ/du = (cos θ u/|u|² − v/(|u||v|)) / sin θ, and the same with u ↔ v
            sin = _safe_divide(np.linalg.norm(_cross(u, v), axis=-1), nu * nv)[..., None]
            uv = (nu * nv)[..., None]
            du = _safe_divide(cos[..., None] * _safe_divide(u, nu[..., None] ** 2) - _safe_divide(v, uv), sin)
            dv = _safe_divide(cos[..., None] * _safe_divide(v, nv[..., None] ** 2) - _safe_divide(u, uv), sin)
            rows = np.arange(len(t))
            slots = [(rows, t[:, 0], du), (rows, t[:, 2], dv), (rows, t[:, 1], -(du + dv))]
        return theta, slots
    if kind == "dihedral":
        q = op["quads"]
        ba = _minimum_image(x[:, q[:, 1]] - x[:, q[:, 0]], box)
        bb = _minimum_image(x[:, q[:, 2]] - x[:, q[:, 1]], box)
        bc = _minimum_image(x[:, q[:, 3]] - x[:, q[:, 2]], box)
        n1, n2 = _cross(ba, bb), _cross(bb, bc)
        lb = np.linalg.norm(bb, axis=-1)
        phi = np.arctan2(lb * np.sum(ba * n2, -1), np.sum(n1 * n2, -1))  # IUPAC sign
        if grad:  # Blondel & Karplus (1996), J. Comput. Chem. 17, 1132
            g0 = -_safe_divide(lb[..., None] * n1, np.sum(n1 * n1, -1, keepdims=True))
            g3 = _safe_divide(lb[..., None] * n2, np.sum(n2 * n2, -1, keepdims=True))
            f = _safe_divide(np.sum(ba * bb, -1), lb**2)[..., None]
            h = _safe_divide(np.sum(bc * bb, -1), lb**2)[..., None]
            g1, g2 = -(1.0 + f) * g0 + h * g3, f * g0 - (1.0 + h) * g3
            rows = np.arange(len(q))
            slots = [(rows, q[:, k], g) for k, g in enumerate((g0, g1, g2, g3))]
        if not op["sincos"]:
            return phi, slots
        sin, cos = np.sin(phi), np.cos(phi)
        values = np.stack([sin, cos], -1).reshape(len(x), -1)
        # rows 2k (sin φ_k) and 2k + 1 (cos φ_k) by the chain rule
        sc = [(2 * r, a, cos[..., None] * g) for r, a, g in slots]
        return values, sc + [(2 * r + 1, a, -sin[..., None] * g) for r, a, g in slots]
    # centre-of-mass distance; each group is made whole first when there is a box
    a, b, wa, wb = op["group_a"], op["group_b"], op["weights_a"], op["weights_b"]
    ca = np.einsum("fai,a->fi", _whole(x[:, a], box), wa)
    cb = np.einsum("fai,a->fi", _whole(x[:, b], box), wb)
    d = _minimum_image(cb - ca, None if box is None else box[:, 0])
    r = np.linalg.norm(d, axis=-1, keepdims=True)
    if grad:
        u = _safe_divide(d, r)[:, None, :]
        slots = [(np.zeros(len(a), dtype=int), a, -wa[None, :, None] * u),
                 (np.zeros(len(b), dtype=int), b, wb[None, :, None] * u)]  # fmt: skip
    return r, slots


def _n_outputs(kind: str, op: dict[str, Any]) -> int:
    if kind == "dist":
        return len(op["pairs"])
    if kind == "contact":
        return 1 if op["total"] else len(op["pairs"])
    if kind == "angle":
        return len(op["triples"])
    if kind == "dihedral":
        return len(op["quads"]) * (2 if op["sincos"] else 1)
    return 1


class Featurizer:
    """Feature specs resolved against a topology; computes features of position blocks, and their Jacobians.

    A resolved featurizer is a list of operations on 0-based atom indices (pairs, triples,
    quadruples, groups with their weights, switching parameters) and needs no topology: it is
    saved with :meth:`to_dict` and rebuilt with :meth:`from_dict`, which is how it travels with a
    model to an MD engine (:mod:`surrodyn.cv.export`).

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
        n_atoms = len(universe.atoms)
        names: list[str] = []
        ops: list[tuple[str, dict[str, Any]]] = []
        labels = [f"{a.name}{a.index}" for a in universe.atoms]
        for spec in specs:
            if isinstance(spec, Distances):
                pairs = self._pairs(universe, spec.selection, spec.other)
                ops.append(("dist", {"pairs": pairs}))
                names += [f"dist {labels[i]}-{labels[j]}" for i, j in pairs]
            elif isinstance(spec, Contacts):
                if not (spec.r0 > 0 and _is_int(spec.n) and _is_int(spec.m) and 0 < spec.n < spec.m):
                    raise param_error("contacts", (spec.r0, spec.n, spec.m), "r0 > 0 and integers 0 < n < m")
                a = self._select(universe, spec.selection)
                b = None if spec.other is None else self._select(universe, spec.other)
                pairs = self._pairs(universe, spec.selection, spec.other)
                ops.append(("contact", {"group_a": a, "group_b": b, "r0": float(spec.r0), "n": int(spec.n),
                                        "m": int(spec.m), "total": bool(spec.total), "pairs": pairs}))  # fmt: skip
                names += (
                    [f"contacts {spec.selection} / {spec.other}"]
                    if spec.total
                    else [f"contact {labels[i]}-{labels[j]}" for i, j in pairs]
                )
            elif isinstance(spec, Angles):
                idx = _indices(spec.triples, 3, n_atoms)
                ops.append(("angle", {"triples": idx}))
                names += ["angle " + "-".join(labels[k] for k in t) for t in idx]
            elif isinstance(spec, Dihedrals):
                idx = _indices(spec.quads, 4, n_atoms)
                tags = spec.labels or tuple("-".join(labels[k] for k in q) for q in idx)
                if len(tags) != len(idx):
                    raise ConfigError(f"{len(tags)} dihedral labels for {len(idx)} dihedrals.")
                ops.append(("dihedral", {"quads": idx, "sincos": bool(spec.sincos)}))
                names += [f"{f} {t}" for t in tags for f in ("sin", "cos")] if spec.sincos else list(tags)
            elif isinstance(spec, CentreOfMassDistance):
                a, b = self._select(universe, spec.selection), self._select(universe, spec.other)
                masses = np.asarray(universe.atoms.masses, dtype=float)
                ops.append(("com", {"group_a": a, "group_b": b, "weights_a": masses[a] / masses[a].sum(),
                                    "weights_b": masses[b] / masses[b].sum()}))  # fmt: skip
                names.append(f"com distance {spec.selection} / {spec.other}")
            else:
                raise ConfigError(f"unknown feature spec {spec!r}.")
        self._set(n_atoms, names, ops)

    def _set(self, n_atoms: int, names: list[str], ops: list[tuple[str, dict[str, Any]]]) -> None:
        self.n_atoms = int(n_atoms)
        self.names = list(names)
        self._ops = ops
        n_features = sum(_n_outputs(kind, op) for kind, op in ops)
        if n_features != len(self.names):
            raise ConfigError(f"{len(self.names)} feature names for {n_features} features.")

    @classmethod
    def _pairs(cls, universe: Any, selection: str, other: str | None) -> np.ndarray:
        """Atom index pairs: within ``selection`` (each once), or between it and ``other`` (no self-pairs)."""
        a = cls._select(universe, selection)
        pairs = _pair_list(a, None if other is None else cls._select(universe, other))
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
        return np.asarray(idx, dtype=int)

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Describe the resolved featurizer as a JSON-able dictionary (no topology needed to rebuild it).

        Returns
        -------
        dict
            ``format``, ``n_atoms``, ``names`` and ``ops``: one entry per feature spec with its
            ``kind`` (``dist``, ``contact``, ``angle``, ``dihedral``, ``com``) and its 0-based atom
            indices (``pairs``, ``triples``, ``quads``, ``group_a``/``group_b``), the normalised
            mass weights of centre-of-mass groups, and the switching parameters of contacts.
        """
        ops = []
        for kind, op in self._ops:
            entry: dict[str, Any] = {"kind": kind}
            for key in _KEYS[kind]:
                value = op[key]
                entry[key] = value.tolist() if isinstance(value, np.ndarray) else value
            ops.append(entry)
        return {"format": FEATURIZER_FORMAT, "n_atoms": self.n_atoms, "names": list(self.names), "ops": ops}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Featurizer:
        """Rebuild a featurizer from :meth:`to_dict` output; ``compute`` and ``jacobian`` are reproduced exactly.

        Raises
        ------
        ConfigError
            On a different format version, an unknown kind, missing keys or atom indices out of range.
        """
        if not isinstance(data, dict) or data.get("format") != FEATURIZER_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"not a featurizer dictionary of format {FEATURIZER_FORMAT} (got {got!r}).")
        try:
            n_atoms = int(data["n_atoms"])
            ops: list[tuple[str, dict[str, Any]]] = []
            for entry in data["ops"]:
                kind = entry["kind"]
                if kind not in _KEYS:
                    raise ConfigError(f"unknown featurizer operation {kind!r}; known: {sorted(_KEYS)}.")
                op = {key: entry[key] for key in _KEYS[kind]}
                for key in ("pairs", "triples", "quads", "group_a", "group_b"):
                    if key in op and op[key] is not None:
                        width = {"pairs": 2, "triples": 3, "quads": 4}.get(key, 1)
                        op[key] = _indices(op[key], width, n_atoms)
                        op[key] = op[key][:, 0] if width == 1 else op[key]
                for key in ("weights_a", "weights_b"):
                    if key in op:
                        op[key] = np.asarray(op[key], dtype=float)
                if kind == "contact":
                    op.update(r0=float(op["r0"]), n=int(op["n"]), m=int(op["m"]), total=bool(op["total"]))
                    if not (op["r0"] > 0 and 0 < op["n"] < op["m"]):
                        raise param_error("contacts", (op["r0"], op["n"], op["m"]), "r0 > 0 and integers 0 < n < m")
                    op["pairs"] = _pair_list(op["group_a"], op["group_b"])
                elif kind == "com" and (op["weights_a"].shape != op["group_a"].shape
                                        or op["weights_b"].shape != op["group_b"].shape):  # fmt: skip
                    raise ConfigError("centre-of-mass weights must have one entry per atom of their group.")
                elif kind == "dihedral":
                    op["sincos"] = bool(op["sincos"])
                ops.append((kind, op))
            featurizer = cls.__new__(cls)
            featurizer._set(n_atoms, list(data["names"]), ops)
        except (KeyError, TypeError) as err:
            raise ConfigError(f"incomplete featurizer dictionary: {err!r}.") from None
        return featurizer

    def _frames(self, positions: np.ndarray, box: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(positions, dtype=float)
        if x.ndim != 3 or x.shape[1:] != (self.n_atoms, 3):
            raise ConfigError(f"positions must be (frames, {self.n_atoms}, 3); got {x.shape}.")
        if box is None:
            return x, None
        bx = np.asarray(box, dtype=float)
        if bx.shape not in ((3,), (len(x), 3)) or not np.all(bx > 0):
            raise param_error("box", bx.shape if bx.shape not in ((3,), (len(x), 3)) else bx.tolist(),
                              f"positive orthorhombic box lengths in nm, shape (3,) or ({len(x)}, 3)")  # fmt: skip
        return x, np.broadcast_to(bx, (len(x), 3))[:, None, :]

    def compute(self, positions: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """Features of a block of frames.

        Parameters
        ----------
        positions : numpy.ndarray
            (n_frames, n_atoms, 3) in nm.
        box : numpy.ndarray, optional
            (n_frames, 3) or (3,) orthorhombic box lengths in nm: distances and the bond vectors of
            angles and dihedrals take the minimum image, and centre-of-mass groups are made whole
            along their atom order first (as PLUMED does).

        Returns
        -------
        numpy.ndarray
            (n_frames, n_features), float64.
        """
        x, bx = self._frames(positions, box)
        return np.concatenate([_op_values(kind, op, x, bx, False)[0] for kind, op in self._ops], axis=1)

    def jacobian(self, positions: np.ndarray, box: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Features and their exact derivatives with respect to the atom positions.

        Parameters
        ----------
        positions : numpy.ndarray
            (n_frames, n_atoms, 3) in nm.
        box : numpy.ndarray, optional
            Orthorhombic box lengths in nm, as for :meth:`compute`.

        Returns
        -------
        values : numpy.ndarray
            (n_frames, n_features), as :meth:`compute`.
        jac : numpy.ndarray
            (n_frames, n_features, n_atoms, 3): ∂feature/∂x in feature units per nm (distances:
            dimensionless; angles: rad/nm; sin, cos and contacts: 1/nm). Dense, so it takes
            24 · n_features · n_atoms bytes per frame (24 kB for 45 distances of 22 atoms):
            meant for molecules and small blocks of frames.

        Notes
        -----
        Distances: ∂r/∂x_j = d/r. Contacts s(r/r0) = P_n(q)/P_m(q) with the geometric sums
        P_k(q) = 1 + q + … + q^(k−1), which equal (1 − q^k)/(1 − q): the removable singularity at
        r = r0 is gone, s(1) = n/m and s'(1) = n(n − m)/(2m). Angles: θ = arccos c, ∂θ/∂u =
        (c u/|u|² − v/(|u||v|))/sin θ. Dihedrals: Blondel & Karplus (1996), with sin and cos by the
        chain rule. Where a derivative is undefined (θ = 0 or π, a dihedral with three collinear
        atoms, coincident centres), it is set to 0. Minimum-image shifts are constant between
        jumps, so they do not enter the derivatives.

        References
        ----------
        A. Blondel and M. Karplus (1996), "New formulation for derivatives of torsion angles and
        improper torsion angles in molecular mechanics", J. Comput. Chem. 17, 1132,
        doi:10.1002/(SICI)1096-987X(19960715)17:9<1132::AID-JCC5>3.0.CO;2-T.
        """
        x, bx = self._frames(positions, box)
        values, blocks = [], []
        for kind, op in self._ops:
            v, slots = _op_values(kind, op, x, bx, True)
            block = np.zeros((len(x), v.shape[1], self.n_atoms, 3))
            for rows, atoms, d in slots:
                if kind == "contact" and op["total"]:  # one row, atoms repeat: accumulate
                    np.add.at(block, (slice(None), rows, atoms), d)
                else:  # (row, atom) unique within a slot
                    block[:, rows, atoms] += d
            values.append(v)
            blocks.append(block)
        return np.concatenate(values, axis=1), np.concatenate(blocks, axis=1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer())


def _indices(tuples: Any, k: int, n_atoms: int) -> np.ndarray:
    idx = np.asarray(tuples)
    if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n_atoms:
        raise ConfigError(f"atom indices must be integers in [0, {n_atoms}); got {tuples!r}.")
    return idx.astype(int).reshape(-1, k)


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
        from .readers import TrajectoryReader

        self.reader = TrajectoryReader(topology, trajectory, chunk=chunk, stride=stride, reader="mdanalysis")
        self.universe = self.reader.universe
        self.featurizer = Featurizer(self.universe, specs)

    @property
    def names(self) -> list[str]:
        """Feature names."""
        return self.featurizer.names

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self) -> Iterator[np.ndarray]:
        for positions, box in self.reader:
            yield self.featurizer.compute(positions, box)

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
