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
The ANI angular function of Smith, Isayev & Roitberg (2017), as TorchANI and NeuroChem compute it,

.. math::

    G^{\mathrm{ANI}}_i = 2^{1-\zeta} \sum_{j<k} \bigl(1 + \cos(\theta'_{ijk} - \theta_s)\bigr)^\zeta
        e^{-\eta \left(\frac{r_{ij} + r_{ik}}{2} - r_s\right)^2} f_c(r_{ij}) f_c(r_{ik}),
    \qquad \theta'_{ijk} = \arccos(0.95 \cos\theta_{ijk}),

resolves the angle with shifted sections :math:`\theta_s` and the radial shell with shifts
:math:`r_s` (:class:`ANIAngularFunctions`). The 0.95 is part of ANI's definition (it keeps the
arccos differentiable). TorchANI's radial term is :math:`\tfrac14` of G2 with one shared
:math:`\eta`.

References
----------
.. [1] J. Behler, "Atom-centered symmetry functions for constructing high-dimensional neural
   network potentials", J. Chem. Phys. 134, 074106 (2011). https://doi.org/10.1063/1.3553717
.. [2] G. Imbalzano et al., "Automatic selection of atomic fingerprints and reference
   configurations for machine-learning potentials", J. Chem. Phys. 148, 241730 (2018).
   https://doi.org/10.1063/1.5024611
.. [3] J. S. Smith, O. Isayev, A. E. Roitberg, "ANI-1: an extensible neural network potential with
   DFT accuracy at force field computational cost", Chem. Sci. 8, 3192 (2017).
   https://doi.org/10.1039/C6SC05720A
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

__all__ = ["ANIAngularFunctions", "AngularFunctions", "Fingerprints", "RadialFunctions", "SymmetryFunctions"]


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


@dataclass(frozen=True)
class ANIAngularFunctions:
    r"""ANI angular functions (Smith et al. 2017), one per ``(eta, zeta, theta_s, rs)`` quadruple.

    Parameters
    ----------
    eta_per_A2 : tuple of float
        Width :math:`\eta` in Å⁻² of the Gaussian in the mean distance :math:`(r_{ij} + r_{ik})/2`.
    zeta : tuple of float
        Angular resolution :math:`\zeta \geq 1`.
    theta_s : tuple of float
        Angle sections :math:`\theta_s` in radians, in :math:`[0, \pi]`.
    rs_A : tuple of float
        Radial shifts :math:`r_s` of the mean distance, in Å.
    cutoff_A : float
        Cutoff radius in Å.
    kind : {"ANI"}
        Fixed; it tells this set from :class:`AngularFunctions` in :meth:`SymmetryFunctions.to_dict`.

    Notes
    -----
    TorchANI's ``ANIAngular(eta, zeta, shifts, sections, cutoff)`` is the grid
    ``[(eta, zeta, theta_s, rs) for rs in shifts for theta_s in sections]`` (shifts outer);
    :meth:`SymmetryFunctions.ani` builds it in that order.
    """

    eta_per_A2: tuple[float, ...]
    zeta: tuple[float, ...]
    theta_s: tuple[float, ...]
    rs_A: tuple[float, ...]
    cutoff_A: float
    kind: str = "ANI"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "eta_per_A2", _positive_tuple("eta_per_A2", self.eta_per_A2, allow_zero=True))
        set_(self, "zeta", _positive_tuple("zeta", self.zeta))
        set_(self, "theta_s", _positive_tuple("theta_s", self.theta_s, allow_zero=True))
        set_(self, "rs_A", _positive_tuple("rs_A", self.rs_A, allow_zero=True))
        n = len(self.eta_per_A2)
        if not len(self.zeta) == len(self.theta_s) == len(self.rs_A) == n:
            raise param_error(
                "zeta/theta_s/rs_A", (self.zeta, self.theta_s, self.rs_A), f"as many values as eta_per_A2 ({n})"
            )
        if any(z < 1 for z in self.zeta):
            raise param_error("zeta", self.zeta, "values >= 1 (the derivative is singular below 1)")
        if any(t > np.pi for t in self.theta_s):
            raise param_error("theta_s", self.theta_s, "angles in [0, pi] radians")
        if not (np.isfinite(self.cutoff_A) and self.cutoff_A > 0):
            raise param_error("cutoff_A", self.cutoff_A, "a positive radius in Å")
        if self.kind != "ANI":
            raise param_error("kind", self.kind, "'ANI' (use AngularFunctions for G4/G5)")

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
    angular : AngularFunctions, ANIAngularFunctions or None
        G4/G5 (or ANI) functions, repeated for every unordered pair of neighbour elements.

    Notes
    -----
    Features are ordered as radial blocks by neighbour element, then angular blocks by element
    pair ``(a, b)`` with ``a <= b``. :meth:`compute` returns raw values; scaling belongs to the
    model, so the Jacobian is the same for every model that shares the descriptor.
    """

    elements: tuple[str, ...]
    radial: RadialFunctions
    angular: AngularFunctions | ANIAngularFunctions | None = None

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

    @classmethod
    def ani(
        cls,
        elements: tuple[str, ...] | list[str],
        *,
        radial_eta_per_A2: float = 16.0,
        n_radial: int = 16,
        radial_start_A: float = 0.9,
        radial_cutoff_A: float = 5.2,
        angular_eta_per_A2: float = 8.0,
        zeta: float = 32.0,
        n_angular_shifts: int = 4,
        angular_start_A: float = 0.9,
        angular_cutoff_A: float = 3.5,
        n_sections: int = 8,
    ) -> SymmetryFunctions:
        r"""Build ANI's grid (TorchANI's ``cover_linearly``; the defaults are ANI-1x's constants).

        Radial G2 with one :math:`\eta` and ``n_radial`` shifts ``start + k (cutoff − start) / n``,
        and :class:`ANIAngularFunctions` on the product of ``n_angular_shifts`` radial shifts
        (outer) and ``n_sections`` angle sections :math:`\pi (2k + 1) / (2 n)` (inner). The
        layout then matches TorchANI's ``AEVComputer`` feature for feature, except that TorchANI's
        radial terms are :math:`\tfrac14` of these.

        Returns
        -------
        SymmetryFunctions
        """
        for name, value in (("n_radial", n_radial), ("n_angular_shifts", n_angular_shifts), ("n_sections", n_sections)):
            if int(value) < 1:
                raise param_error(name, value, "an integer >= 1")
        for name, start, cutoff in (
            ("radial_start_A", radial_start_A, radial_cutoff_A),
            ("angular_start_A", angular_start_A, angular_cutoff_A),
        ):
            if not 0 <= start < cutoff:
                raise param_error(name, start, f"a radius in [0, cutoff={cutoff})")
        rs = [radial_start_A + (radial_cutoff_A - radial_start_A) / n_radial * k for k in range(int(n_radial))]
        radial = RadialFunctions(tuple([float(radial_eta_per_A2)] * len(rs)), tuple(rs), float(radial_cutoff_A))
        shifts = [
            angular_start_A + (angular_cutoff_A - angular_start_A) / n_angular_shifts * k
            for k in range(int(n_angular_shifts))
        ]
        sections = [np.pi / n_sections / 2 + np.pi / n_sections * k for k in range(int(n_sections))]
        grid = [(r, t) for r in shifts for t in sections]
        angular = ANIAngularFunctions(
            tuple([float(angular_eta_per_A2)] * len(grid)),
            tuple([float(zeta)] * len(grid)),
            tuple(float(t) for _, t in grid),
            tuple(float(r) for r, _ in grid),
            float(angular_cutoff_A),
        )
        return cls(tuple(elements), radial, angular)

    def rounded_to_float32(self) -> SymmetryFunctions:
        """Return the same functions with every width, shift, exponent and angle rounded to float32.

        Codes that keep their constants in float32 buffers (TorchANI) compute these functions,
        not the ones they were given; this is the set to compare with them in float64.

        Returns
        -------
        SymmetryFunctions
        """

        def f32(values: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(float(v) for v in np.asarray(values, dtype=np.float32))

        rad = dataclasses.replace(self.radial, eta_per_A2=f32(self.radial.eta_per_A2), rs_A=f32(self.radial.rs_A))
        ang = self.angular
        if isinstance(ang, ANIAngularFunctions):
            ang = dataclasses.replace(
                ang, eta_per_A2=f32(ang.eta_per_A2), zeta=f32(ang.zeta), theta_s=f32(ang.theta_s), rs_A=f32(ang.rs_A)
            )
        elif ang is not None:
            ang = dataclasses.replace(ang, eta_per_A2=f32(ang.eta_per_A2), zeta=f32(ang.zeta))
        return SymmetryFunctions(self.elements, rad, ang)

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
            if isinstance(a, ANIAngularFunctions):
                params = [
                    f"eta={eta:g},zeta={z:g},theta_s={t:.4g},rs={r:g}"
                    for eta, z, t, r in zip(a.eta_per_A2, a.zeta, a.theta_s, a.rs_A, strict=True)
                ]
            else:
                params = [
                    f"eta={eta:g},zeta={z:g},lambda={lam:+g}"
                    for eta, z, lam in zip(a.eta_per_A2, a.zeta, a.lambda_, strict=True)
                ]
            for k, e1 in enumerate(self.elements):
                for e2 in self.elements[k:]:
                    names += [f"{a.kind}[{e1}-{e2}]({p})" for p in params]
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
        ani = isinstance(ang, ANIAngularFunctions)
        n_ang = len(ang) if ang is not None else 0
        # Every angular function is a radial factor, of (eta) or of (eta, r_s) for ANI, times an
        # angular factor of (zeta, lambda) or (zeta, theta_s). The usual grids are products, so the
        # kernel evaluates each distinct factor once per triplet and combines them per function.
        if ang is not None:
            u_rad, rad_key = np.unique(
                np.column_stack([ang.eta_per_A2, ang.rs_A if ani else np.zeros(n_ang)]), axis=0, return_inverse=True
            )
            u_ang, ang_key = np.unique(
                np.column_stack([ang.zeta, ang.theta_s if ani else ang.lambda_]), axis=0, return_inverse=True
            )
        else:
            u_rad = u_ang = np.zeros((0, 2))
            rad_key = ang_key = np.zeros(0, dtype=np.int64)
        G, dG = _fingerprints(
            species,
            pj,
            R,
            offsets,
            np.asarray(rad.eta_per_A2),
            np.asarray(rad.rs_A),
            rad.cutoff_A,
            u_rad,
            rad_key.ravel().astype(np.int64),
            u_ang,
            ang_key.ravel().astype(np.int64),
            ang.cutoff_A if ang is not None else 0.0,
            {"G4": _G4, "G5": _G5, "ANI": _ANI}[ang.kind] if ang is not None else _G4,
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
            ang = spec.get("angular")
            kind = AngularFunctions if not ang or ang.get("kind", "G4") != "ANI" else ANIAngularFunctions
            angular = kind(**ang) if ang else None
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


_G4, _G5, _ANI = 0, 1, 2  # angular kinds of the kernel


@njit(cache=True, inline="always")
def _cutoff(r: float, rc: float) -> tuple[float, float]:
    if r >= rc:
        return 0.0, 0.0
    x = np.pi / rc
    return 0.5 * (np.cos(x * r) + 1.0), -0.5 * x * np.sin(x * r)


@njit(cache=True)
def _fingerprints(
    species, pj, R, offsets, rad_eta, rad_rs, rc_r, u_rad, rad_key, u_ang, ang_key, rc_a, mode, n_elem, want
):  # pragma: no cover - compiled; exercised through SymmetryFunctions.compute
    n_atoms = offsets.shape[0] - 1
    n_pairs = pj.shape[0]
    n_rad, n_ang = rad_eta.shape[0], rad_key.shape[0]
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
    n_ur, n_ua = u_rad.shape[0], u_ang.shape[0]
    pref = np.empty(n_ua)
    cos_s = np.empty(n_ua)
    sin_s = np.empty(n_ua)
    for m in range(n_ua):
        pref[m] = 2.0 ** (1.0 - u_ang[m, 0])
        cos_s[m] = np.cos(u_ang[m, 1])  # ANI: the section theta_s
        sin_s[m] = np.sin(u_ang[m, 1])
    E_u, dE_u, A_u, dA_u = np.empty(n_ur), np.empty(n_ur), np.empty(n_ua), np.empty(n_ua)
    three_body = mode == _G4
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
                if three_body:
                    if cc >= rc_a:
                        continue
                    fcc, dfcc = _cutoff(cc, rc_a)
                    ssum = a * a + b * b + cc * cc
                else:
                    fcc, dfcc = 1.0, 0.0
                    ssum = a * a + b * b
                cos = dot / (a * b)
                F = fa * fb * fcc
                for c in range(3):
                    dcos_p[c] = R[q, c] / (a * b) - cos * R[p, c] / (a * a)
                    dcos_q[c] = R[p, c] / (a * b) - cos * R[q, c] / (b * b)
                    if three_body:
                        ds_p[c] = 2.0 * (R[p, c] - Rc[c])
                        ds_q[c] = 2.0 * (R[q, c] + Rc[c])
                        dF_p[c] = dfa * fb * fcc * R[p, c] / a - fa * fb * dfcc * Rc[c] / cc
                        dF_q[c] = fa * dfb * fcc * R[q, c] / b + fa * fb * dfcc * Rc[c] / cc
                    elif mode == _G5:
                        ds_p[c] = 2.0 * R[p, c]
                        ds_q[c] = 2.0 * R[q, c]
                        dF_p[c] = dfa * fb * R[p, c] / a
                        dF_q[c] = fa * dfb * R[q, c] / b
                    else:  # ANI: the Gaussian is in (a + b)/2, so d/dR_p goes through a alone
                        ds_p[c] = R[p, c] / a
                        ds_q[c] = R[q, c] / b
                        dF_p[c] = dfa * fb * R[p, c] / a
                        dF_q[c] = fa * dfb * R[q, c] / b
                # the distinct radial factors E and their derivative along ds
                for k in range(n_ur):
                    eta = u_rad[k, 0]
                    if mode == _ANI:
                        x = 0.5 * (a + b) - u_rad[k, 1]
                        E_u[k] = np.exp(-eta * x * x)
                        dE_u[k] = -eta * x * E_u[k]
                    else:
                        E_u[k] = np.exp(-eta * ssum)
                        dE_u[k] = -eta * E_u[k]
                # the distinct angular factors 2^(1-zeta) base^zeta and their derivative in cos
                if mode == _ANI:
                    # cos(theta' - theta_s) with theta' = arccos(0.95 cos), written without arccos
                    c95 = 0.95 * cos
                    sin95 = np.sqrt(max(1.0 - c95 * c95, 0.0))
                for m in range(n_ua):
                    z = u_ang[m, 0]
                    if mode == _ANI:
                        base = 1.0 + c95 * cos_s[m] + sin95 * sin_s[m]
                        dbase = 0.95 * cos_s[m] - 0.95 * c95 * sin_s[m] / sin95
                    else:
                        base = 1.0 + u_ang[m, 1] * cos
                        dbase = u_ang[m, 1]
                    if base <= 0.0:
                        A_u[m] = 0.0
                        dA_u[m] = 0.0
                    else:
                        A_u[m] = pref[m] * base**z
                        dA_u[m] = pref[m] * z * dbase * base ** (z - 1.0)
                col0 = ang0 + block[species[pj[p]], species[pj[q]]] * n_ang
                for d in range(n_ang):
                    A, dA = A_u[ang_key[d]], dA_u[ang_key[d]]
                    if A == 0.0 and dA == 0.0:
                        continue
                    E, dE = E_u[rad_key[d]], dE_u[rad_key[d]]
                    G[i, col0 + d] += A * E * F
                    if want:
                        for c in range(3):
                            dG[p, col0 + d, c] += dA * E * F * dcos_p[c] + A * (dE * ds_p[c] * F + E * dF_p[c])
                            dG[q, col0 + d, c] += dA * E * F * dcos_q[c] + A * (dE * ds_q[c] * F + E * dF_q[c])
    return G, dG
