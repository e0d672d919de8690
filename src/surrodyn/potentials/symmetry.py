r"""Atom-centred symmetry functions (Behler–Parrinello) with exact pair Jacobians.

The fingerprint of atom *i* is a vector of radial (G2) and angular (G4 or G5) functions of its
neighbourhood, resolved by the element of the neighbours. Every function depends on the positions
only through the pair vectors :math:`\mathbf R_{ij} = \mathbf r_j - \mathbf r_i` (minimum image
and periodic shifts included), so the derivative is stored per pair: ``dG[p, d, :]`` is
:math:`\partial G_{i_p d} / \partial \mathbf R_{p}`. Forces and the virial follow by a
contraction with :math:`\partial E / \partial G` (see :mod:`surrodyn.potentials.model`), which is
how n2p2 and RuNNer make force training cheap: the Jacobian is computed once per structure.

Notes
-----
With the cosine cutoff :math:`f_c(r) = \tfrac12[\cos(\pi r / r_c) + 1]` for :math:`r < r_c`,

.. math::

    G^2_i &= \sum_{j} e^{-\eta (r_{ij} - r_s)^2} f_c(r_{ij}) \\
    G^4_i &= 2^{1-\zeta} \sum_{j<k} (1 + \lambda \cos\theta_{ijk})^\zeta
             e^{-\eta (r_{ij}^2 + r_{ik}^2 + r_{jk}^2)} f_c(r_{ij}) f_c(r_{ik}) f_c(r_{jk})

and G5 drops the :math:`r_{jk}` terms. The angular sum runs over unordered pairs ``j < k``.

References
----------
.. [1] J. Behler, "Atom-centered symmetry functions for constructing high-dimensional neural
   network potentials", J. Chem. Phys. 134, 074106 (2011). https://doi.org/10.1063/1.3553717
.. [2] G. Imbalzano et al., "Automatic selection of atomic fingerprints and reference
   configurations for machine-learning potentials", J. Chem. Phys. 148, 241730 (2018).
   https://doi.org/10.1063/1.5024611
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list
from numba import njit
from scipy.spatial import cKDTree

from ..errors import ConfigError, param_error

__all__ = ["AngularFunctions", "Fingerprints", "RadialFunctions", "SymmetryFunctions"]


def _positive_tuple(name: str, values: Any, allow_zero: bool = False) -> tuple[float, ...]:
    out = tuple(float(v) for v in np.atleast_1d(values))
    if not out or any(not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero) for v in out):
        kind = "non-negative" if allow_zero else "positive"
        raise param_error(name, values, f"a non-empty list of finite {kind} numbers")
    return out


@dataclass(frozen=True)
class RadialFunctions:
    r"""Radial G2 functions, one per ``(eta, rs)`` pair.

    Parameters
    ----------
    eta_per_A2 : tuple of float
        Gaussian widths :math:`\eta` in Å⁻².
    rs_A : tuple of float
        Gaussian centres :math:`r_s` in Å, same length as ``eta_per_A2``.
    cutoff_A : float
        Cutoff radius in Å.
    """

    eta_per_A2: tuple[float, ...]
    rs_A: tuple[float, ...]
    cutoff_A: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta_per_A2", _positive_tuple("eta_per_A2", self.eta_per_A2, allow_zero=True))
        object.__setattr__(self, "rs_A", _positive_tuple("rs_A", self.rs_A, allow_zero=True))
        if len(self.eta_per_A2) != len(self.rs_A):
            raise param_error("rs_A", self.rs_A, f"as many values as eta_per_A2 ({len(self.eta_per_A2)})")
        if not (np.isfinite(self.cutoff_A) and self.cutoff_A > 0):
            raise param_error("cutoff_A", self.cutoff_A, "a positive radius in Å")

    def __len__(self) -> int:
        return len(self.eta_per_A2)


@dataclass(frozen=True)
class AngularFunctions:
    r"""Angular G4 (or G5) functions, one per ``(eta, zeta, lambda)`` triple.

    Parameters
    ----------
    eta_per_A2 : tuple of float
        Radial widths :math:`\eta` in Å⁻².
    zeta : tuple of float
        Angular resolution :math:`\zeta \geq 1`.
    lambda_ : tuple of float
        :math:`\lambda = \pm 1`.
    cutoff_A : float
        Cutoff radius in Å (at most the radial cutoff is usual but not required).
    kind : {"G4", "G5"}
        G4 includes the :math:`r_{jk}` terms, G5 does not.
    """

    eta_per_A2: tuple[float, ...]
    zeta: tuple[float, ...]
    lambda_: tuple[float, ...]
    cutoff_A: float
    kind: str = "G4"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta_per_A2", _positive_tuple("eta_per_A2", self.eta_per_A2, allow_zero=True))
        object.__setattr__(self, "zeta", _positive_tuple("zeta", self.zeta))
        lam = tuple(float(v) for v in np.atleast_1d(self.lambda_))
        object.__setattr__(self, "lambda_", lam)
        n = len(self.eta_per_A2)
        if len(self.zeta) != n or len(lam) != n:
            raise param_error("zeta/lambda_", (self.zeta, lam), f"as many values as eta_per_A2 ({n})")
        if any(z < 1 for z in self.zeta):
            raise param_error("zeta", self.zeta, "values >= 1 (the derivative is singular below 1)")
        if any(v not in (-1.0, 1.0) for v in lam):
            raise param_error("lambda_", lam, "values of +1 or -1")
        if not (np.isfinite(self.cutoff_A) and self.cutoff_A > 0):
            raise param_error("cutoff_A", self.cutoff_A, "a positive radius in Å")
        if self.kind not in ("G4", "G5"):
            raise param_error("kind", self.kind, "'G4' or 'G5'")

    def __len__(self) -> int:
        return len(self.eta_per_A2)


@dataclass
class Fingerprints:
    r"""Fingerprints of one structure and their pair Jacobian.

    Attributes
    ----------
    G : ndarray, shape (n_atoms, n_features)
        Raw (unscaled) symmetry functions.
    species : ndarray of int, shape (n_atoms,)
        Index of each atom's element in :attr:`SymmetryFunctions.elements`.
    pair_i, pair_j : ndarray of int, shape (n_pairs,)
        Centre and neighbour of every pair within the largest cutoff, sorted by ``pair_i``.
    R : ndarray, shape (n_pairs, 3)
        Pair vectors :math:`\mathbf r_j - \mathbf r_i` in Å, periodic shifts included.
    dG : ndarray, shape (n_pairs, n_features, 3) or None
        :math:`\partial G_{i_p d} / \partial \mathbf R_p` in Å⁻¹; ``None`` when not requested.
    """

    G: np.ndarray
    species: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray
    R: np.ndarray
    dG: np.ndarray | None


@dataclass(frozen=True)
class SymmetryFunctions:
    """Element-resolved Behler–Parrinello fingerprints.

    Parameters
    ----------
    elements : tuple of str
        Chemical symbols the fingerprints resolve, in a fixed order.
    radial : RadialFunctions
        G2 functions, repeated for every neighbour element.
    angular : AngularFunctions or None
        G4/G5 functions, repeated for every unordered pair of neighbour elements.

    Notes
    -----
    Features are ordered as radial blocks by neighbour element, then angular blocks by element
    pair ``(a, b)`` with ``a <= b``. :meth:`compute` returns raw values; scaling belongs to the
    model, so the Jacobian is the same for every model that shares the descriptor.
    """

    elements: tuple[str, ...]
    radial: RadialFunctions
    angular: AngularFunctions | None = None

    def __post_init__(self) -> None:
        elements = tuple(str(e) for e in self.elements)
        if not elements or len(set(elements)) != len(elements) or any(e not in atomic_numbers for e in elements):
            raise param_error("elements", self.elements, "a non-empty list of distinct chemical symbols")
        object.__setattr__(self, "elements", elements)

    @classmethod
    def standard(
        cls,
        elements: tuple[str, ...] | list[str],
        *,
        n_radial: int = 12,
        radial_cutoff_A: float = 6.0,
        radial_start_A: float = 1.5,
        angular_cutoff_A: float = 4.5,
        angular_eta_per_A2: tuple[float, ...] = (0.005, 0.02, 0.06),
        zetas: tuple[float, ...] = (1.0, 2.0, 4.0, 16.0),
        lambdas: tuple[float, ...] = (-1.0, 1.0),
        kind: str = "G4",
    ) -> SymmetryFunctions:
        r"""Build the usual grid: shifted radial Gaussians and an (eta, zeta, lambda) angular grid.

        The radial centres are spread evenly over ``[radial_start_A, radial_cutoff_A]`` with
        widths :math:`\eta = 1 / (2 \Delta^2)` set by their spacing :math:`\Delta` (the
        "shifted" grid of Imbalzano et al. 2018). The angular set is the Cartesian product of
        ``angular_eta_per_A2``, ``zetas`` and ``lambdas``; ``zetas=()`` gives a radial-only set.

        Returns
        -------
        SymmetryFunctions
            ``n_radial * n_elements + len(eta) * len(zeta) * len(lambda) * n_element_pairs``
            features per atom (12 + 24 = 36 for one element with the defaults).
        """
        if int(n_radial) < 1:
            raise param_error("n_radial", n_radial, "an integer >= 1")
        if not 0 <= radial_start_A < radial_cutoff_A:
            raise param_error("radial_start_A", radial_start_A, f"a radius in [0, radial_cutoff_A={radial_cutoff_A})")
        rs = np.linspace(radial_start_A, radial_cutoff_A, int(n_radial) + 1)[:-1]
        step = (radial_cutoff_A - radial_start_A) / int(n_radial)
        radial = RadialFunctions(tuple(np.full(int(n_radial), 0.5 / step**2)), tuple(rs), float(radial_cutoff_A))
        angular = None
        if len(zetas) and len(angular_eta_per_A2) and len(lambdas):
            grid = [(e, z, lam) for e in angular_eta_per_A2 for z in zetas for lam in lambdas]
            eta, zeta, lam = (tuple(float(g[k]) for g in grid) for k in range(3))
            angular = AngularFunctions(eta, zeta, lam, float(angular_cutoff_A), kind)
        return cls(tuple(elements), radial, angular)

    # ------------------------------------------------------------------ layout
    @property
    def n_element_pairs(self) -> int:
        """Number of unordered neighbour-element pairs."""
        n = len(self.elements)
        return n * (n + 1) // 2

    @property
    def n_features(self) -> int:
        """Length of one atom's fingerprint."""
        n_ang = len(self.angular) if self.angular is not None else 0
        return len(self.radial) * len(self.elements) + n_ang * self.n_element_pairs

    @property
    def cutoff_A(self) -> float:
        """Largest cutoff, the radius of the neighbour list."""
        ang = self.angular.cutoff_A if self.angular is not None else 0.0
        return max(self.radial.cutoff_A, ang)

    @property
    def feature_names(self) -> list[str]:
        """Human-readable name of every feature, in order."""
        names = [
            f"G2[{e}](eta={eta:g},rs={rs:g})"
            for e in self.elements
            for eta, rs in zip(self.radial.eta_per_A2, self.radial.rs_A, strict=True)
        ]
        if self.angular is not None:
            a = self.angular
            for k, e1 in enumerate(self.elements):
                for e2 in self.elements[k:]:
                    names += [
                        f"{a.kind}[{e1}-{e2}](eta={eta:g},zeta={z:g},lambda={lam:+g})"
                        for eta, z, lam in zip(a.eta_per_A2, a.zeta, a.lambda_, strict=True)
                    ]
        return names

    def species_of(self, atoms: Atoms) -> np.ndarray:
        """Index of every atom's element in :attr:`elements`.

        Raises
        ------
        ConfigError
            If the structure holds an element the fingerprints do not know.
        """
        lookup = {e: k for k, e in enumerate(self.elements)}
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(lookup))
        if unknown:
            raise ConfigError(
                f"the structure contains {unknown}, which these symmetry functions do not resolve "
                f"(elements={list(self.elements)}); build the descriptor with every element of the data."
            )
        return np.fromiter((lookup[s] for s in symbols), dtype=np.int64, count=len(symbols))

    # ------------------------------------------------------------- compute
    def compute(self, atoms: Atoms, *, derivatives: bool = True) -> Fingerprints:
        """Fingerprints of every atom of ``atoms``, with the pair Jacobian if asked.

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic, partly periodic or isolated structure.
        derivatives : bool, default True
            Also return ``dG`` (costs ``n_pairs * n_features * 3`` floats).

        Returns
        -------
        Fingerprints
        """
        species = self.species_of(atoms)
        if np.any(atoms.pbc) and atoms.cell.rank < 3:
            raise ConfigError("a periodic structure needs a full-rank cell; set atoms.cell or atoms.pbc=False.")
        pi, pj, R = _pairs(atoms, self.cutoff_A)
        order = np.argsort(pi, kind="stable")
        pi, pj, R = pi[order].astype(np.int64), pj[order].astype(np.int64), np.ascontiguousarray(R[order], float)
        offsets = np.zeros(len(atoms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pi, minlength=len(atoms)), out=offsets[1:])
        rad, ang = self.radial, self.angular
        empty = np.zeros(0)
        G, dG = _fingerprints(
            species,
            pj,
            R,
            offsets,
            np.asarray(rad.eta_per_A2),
            np.asarray(rad.rs_A),
            rad.cutoff_A,
            np.asarray(ang.eta_per_A2) if ang else empty,
            np.asarray(ang.zeta) if ang else empty,
            np.asarray(ang.lambda_) if ang else empty,
            ang.cutoff_A if ang else 0.0,
            bool(ang is not None and ang.kind == "G5"),
            len(self.elements),
            bool(derivatives),
        )
        return Fingerprints(G, species, pi, pj, R, dG if derivatives else None)

    # ------------------------------------------------------------ persist
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; :meth:`from_dict` inverts it."""
        return {
            "elements": list(self.elements),
            "radial": dataclasses.asdict(self.radial),
            "angular": dataclasses.asdict(self.angular) if self.angular is not None else None,
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> SymmetryFunctions:
        """Rebuild from :meth:`to_dict` output."""
        try:
            radial = RadialFunctions(**spec["radial"])
            angular = AngularFunctions(**spec["angular"]) if spec.get("angular") else None
            return cls(tuple(spec["elements"]), radial, angular)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a symmetry-function description: {exc}") from exc


def _pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordered pairs ``(i, j)`` within ``cutoff`` and their vectors ``r_j - r_i`` (+ periodic shift)."""
    if np.any(atoms.pbc):
        return neighbor_list("ijD", atoms, cutoff, self_interaction=False)
    # isolated structure: a k-d tree ignores the (possibly huge, vacuum-padded) cell, which makes
    # ASE's cell-binned neighbour list ~20x slower for a cluster in a 60 Å box
    pos = np.asarray(atoms.positions, dtype=float)
    half = cKDTree(pos).query_pairs(cutoff, output_type="ndarray")
    pi = np.concatenate([half[:, 0], half[:, 1]])
    pj = np.concatenate([half[:, 1], half[:, 0]])
    return pi, pj, pos[pj] - pos[pi]


@njit(cache=True, inline="always")
def _cutoff(r: float, rc: float) -> tuple[float, float]:
    if r >= rc:
        return 0.0, 0.0
    x = np.pi / rc
    return 0.5 * (np.cos(x * r) + 1.0), -0.5 * x * np.sin(x * r)


@njit(cache=True)
def _fingerprints(
    species, pj, R, offsets, rad_eta, rad_rs, rc_r, ang_eta, ang_zeta, ang_lam, rc_a, g5, n_elem, want
):  # pragma: no cover - compiled; exercised through SymmetryFunctions.compute
    n_atoms = offsets.shape[0] - 1
    n_pairs = pj.shape[0]
    n_rad, n_ang = rad_eta.shape[0], ang_eta.shape[0]
    n_feat = n_rad * n_elem + n_ang * (n_elem * (n_elem + 1) // 2)
    G = np.zeros((n_atoms, n_feat))
    dG = np.zeros((n_pairs if want else 0, n_feat, 3))
    block = np.zeros((n_elem, n_elem), dtype=np.int64)
    k = 0
    for a in range(n_elem):
        for b in range(a, n_elem):
            block[a, b] = k
            block[b, a] = k
            k += 1
    r = np.sqrt((R * R).sum(axis=1))
    for i in range(n_atoms):
        for p in range(offsets[i], offsets[i + 1]):
            rp = r[p]
            if rp >= rc_r:
                continue
            fc, dfc = _cutoff(rp, rc_r)
            base = species[pj[p]] * n_rad
            for d in range(n_rad):
                x = rp - rad_rs[d]
                e = np.exp(-rad_eta[d] * x * x)
                G[i, base + d] += e * fc
                if want:
                    s = e * (dfc - 2.0 * rad_eta[d] * x * fc) / rp
                    for c in range(3):
                        dG[p, base + d, c] += s * R[p, c]
    if n_ang == 0:
        return G, dG
    ang0 = n_rad * n_elem
    pref = np.empty(n_ang)
    for d in range(n_ang):
        pref[d] = 2.0 ** (1.0 - ang_zeta[d])
    work = np.empty((7, 3))
    Rc, dcos_p, dcos_q, ds_p, ds_q, dF_p, dF_q = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    for i in range(n_atoms):
        for p in range(offsets[i], offsets[i + 1]):
            a = r[p]
            if a >= rc_a:
                continue
            fa, dfa = _cutoff(a, rc_a)
            for q in range(p + 1, offsets[i + 1]):
                b = r[q]
                if b >= rc_a:
                    continue
                fb, dfb = _cutoff(b, rc_a)
                dot = 0.0
                for c in range(3):
                    Rc[c] = R[q, c] - R[p, c]
                    dot += R[p, c] * R[q, c]
                cc = np.sqrt(Rc[0] ** 2 + Rc[1] ** 2 + Rc[2] ** 2)
                if g5:
                    fcc, dfcc = 1.0, 0.0
                    ssum = a * a + b * b
                else:
                    if cc >= rc_a:
                        continue
                    fcc, dfcc = _cutoff(cc, rc_a)
                    ssum = a * a + b * b + cc * cc
                cos = dot / (a * b)
                F = fa * fb * fcc
                for c in range(3):
                    dcos_p[c] = R[q, c] / (a * b) - cos * R[p, c] / (a * a)
                    dcos_q[c] = R[p, c] / (a * b) - cos * R[q, c] / (b * b)
                    if g5:
                        ds_p[c] = 2.0 * R[p, c]
                        ds_q[c] = 2.0 * R[q, c]
                        dF_p[c] = dfa * fb * R[p, c] / a
                        dF_q[c] = fa * dfb * R[q, c] / b
                    else:
                        ds_p[c] = 2.0 * (R[p, c] - Rc[c])
                        ds_q[c] = 2.0 * (R[q, c] + Rc[c])
                        dF_p[c] = dfa * fb * fcc * R[p, c] / a - fa * fb * dfcc * Rc[c] / cc
                        dF_q[c] = fa * dfb * fcc * R[q, c] / b + fa * fb * dfcc * Rc[c] / cc
                col0 = ang0 + block[species[pj[p]], species[pj[q]]] * n_ang
                for d in range(n_ang):
                    base = 1.0 + ang_lam[d] * cos
                    if base <= 0.0:
                        continue
                    z = ang_zeta[d]
                    A = base**z
                    dA = z * ang_lam[d] * base ** (z - 1.0)
                    E = np.exp(-ang_eta[d] * ssum)
                    G[i, col0 + d] += pref[d] * A * E * F
                    if want:
                        u = pref[d] * E
                        for c in range(3):
                            dG[p, col0 + d, c] += u * (dA * F * dcos_p[c] + A * (F * -ang_eta[d] * ds_p[c] + dF_p[c]))
                            dG[q, col0 + d, c] += u * (dA * F * dcos_q[c] + A * (F * -ang_eta[d] * ds_q[c] + dF_q[c]))
    return G, dG
