"""Per-frame structural descriptors of metal nanoclusters: Steinhardt order, CNA, coordination, RDF.

A *frame descriptor* maps the positions of one frame (``(n_atoms, 3)`` in Å) and the atomic
numbers to a fixed-length feature vector with named features (the :class:`FrameDescriptor`
contract). The descriptors here are invariant under rotation, translation and permutation of the
atoms, and cheap enough (a few ms per Cu147 frame on one core) to featurise thousands of MD frames
for a t-SNE + DBSCAN basin finder:

* :class:`Steinhardt` — mean and spread over atoms of the bond-orientational order ``q_l`` and,
  optionally, the normalised third-order invariants ``ŵ_l``;
* :class:`CNAFractions` — fractions of bonded pairs with each common-neighbour signature
  (421/422 fcc/hcp, 555 icosahedral axis, 544/433 defective, 666 bcc);
* :class:`CoordinationHistogram` — the distribution of first-shell coordination numbers;
* :class:`RadialDistribution` — the pair-distance histogram per atom;
* :class:`SOAPAverage` — atom-averaged SOAP through the optional ``dscribe`` package.

:class:`DescriptorSet` concatenates several of them and :func:`compute_descriptors` runs one over
a trajectory into an :class:`xarray.DataArray` with dims ``("frame", "feature")``. Clusters are
non-periodic; a ``cell`` (and ``pbc``) given to a descriptor switches to periodic neighbour search
through ASE (``pip install 'surrodyn[md]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numba
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from ..errors import ConfigError, ConfigTypeError, param_error

try:
    from scipy.special import sph_harm_y as _sph_harm_y
except ImportError:  # pragma: no cover - scipy < 1.15
    from scipy.special import sph_harm as _sph_harm_legacy

    def _sph_harm_y(n, m, theta, phi):  # same argument order as scipy's sph_harm_y
        return _sph_harm_legacy(m, n, phi, theta)


__all__ = [
    "CNA_SIGNATURES",
    "FCC_SHELL_MIDPOINT",
    "CNAFractions",
    "CoordinationHistogram",
    "DescriptorSet",
    "FrameDescriptor",
    "RadialDistribution",
    "SOAPAverage",
    "Steinhardt",
    "cna_signatures",
    "compute_descriptors",
    "default_descriptors",
    "nearest_neighbour_cutoff",
    "neighbor_pairs",
    "steinhardt",
]

FCC_SHELL_MIDPOINT = 0.5 * (1.0 + math.sqrt(2.0))
"""Ratio of the first-shell cutoff to the nearest-neighbour distance: midway between √1 and √2 shells."""

_CU_CUTOFF_A = FCC_SHELL_MIDPOINT * 3.615 / math.sqrt(2.0)  # ≈ 3.085 Å, used when no cutoff is given

_Q_ZERO = 1e-8  # q_l below this is treated as 0 and its ŵ_l set to 0

CNA_SIGNATURES = ((4, 2, 1), (4, 2, 2), (5, 5, 5), (5, 4, 4), (4, 3, 3), (6, 6, 6))
"""The common-neighbour signatures counted by :class:`CNAFractions`, in feature order."""


@runtime_checkable
class FrameDescriptor(Protocol):
    """The contract of a per-frame descriptor: named features and a call on one frame.

    Attributes
    ----------
    names : list of str
        Feature names, ``len(names) == n_features``.
    """

    names: list[str]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame.

        Parameters
        ----------
        positions : ndarray, shape (n_atoms, 3)
            Atom positions in Å.
        numbers : ndarray, shape (n_atoms,)
            Atomic numbers.

        Returns
        -------
        ndarray, shape (n_features,)
        """
        ...


# --------------------------------------------------------------------------------------------
# validation


def _positions(positions: ArrayLike, name: str = "positions") -> np.ndarray:
    try:
        arr = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a numeric array of shape (n_atoms, 3) in Å.") from None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ConfigError(
            f"{name} must have shape (n_atoms, 3) with n_atoms >= 1 (positions of one frame, in Å); "
            f"got shape {arr.shape}. Pass one frame at a time, or use compute_descriptors for a trajectory."
        )
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} contains NaN or infinite coordinates.")
    return arr


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise param_error(name, value, "a positive finite number")
    if not (math.isfinite(value) and value > 0):
        raise param_error(name, value, "a positive finite number")
    return float(value)


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise param_error(name, value, f"an integer >= {minimum}")
    return int(value)


def _cell(cell: ArrayLike | None, pbc: bool | Sequence[bool] | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Normalise ``cell``/``pbc`` to a (3, 3) matrix and three booleans, or (None, None) if non-periodic."""
    if cell is None:
        if pbc is not None and np.any(pbc):
            raise param_error("pbc", pbc, "no periodic direction when cell is None", "Give the cell vectors in Å.")
        return None, None
    try:
        c = np.asarray(cell, dtype=float)
    except (TypeError, ValueError):
        raise param_error("cell", cell, "three lengths or a (3, 3) matrix of cell vectors in Å") from None
    if c.shape == (3,):
        c = np.diag(c)
    if c.shape != (3, 3) or not np.isfinite(c).all():
        raise param_error("cell", cell, "three lengths or a (3, 3) matrix of finite cell vectors in Å")
    try:
        flags = np.broadcast_to(np.asarray(True if pbc is None else pbc, dtype=bool), (3,)).copy()
    except ValueError:
        raise param_error("pbc", pbc, "a bool or three bools, one per cell vector") from None
    if not flags.any():
        return None, None
    if abs(np.linalg.det(c)) < 1e-9:
        raise param_error("cell", cell, "cell vectors spanning a non-zero volume")
    return c, flags


def _widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell."""
    volume = abs(np.linalg.det(cell))
    return volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


# --------------------------------------------------------------------------------------------
# neighbours


def _half_bonds(
    positions: np.ndarray, cutoff: float, cell: np.ndarray | None, pbc: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every bond once: (i, j, d = r_j - r_i) with i < j, plus one direction of each self-image bond."""
    if cell is None:
        pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray").astype(np.int64, copy=False)
        i, j = pairs[:, 0], pairs[:, 1]
        d = positions[j] - positions[i]
    else:
        try:
            from ase.neighborlist import primitive_neighbor_list
        except ImportError:  # pragma: no cover - optional dependency
            raise ImportError(
                "periodic descriptors need ASE: pip install 'surrodyn[md]' (or pip install ase)."
            ) from None
        i, j, d = primitive_neighbor_list("ijD", pbc, cell, positions, cutoff, self_interaction=False)
        x, y, z = d.T
        upper = (x > 0) | ((x == 0) & ((y > 0) | ((y == 0) & (z > 0))))
        keep = (i < j) | ((i == j) & upper)
        i, j, d = i[keep].astype(np.int64), j[keep].astype(np.int64), d[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def neighbor_pairs(
    positions: ArrayLike,
    cutoff_A: float,
    cell: ArrayLike | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All bonds shorter than a cutoff, in both directions.

    Parameters
    ----------
    positions : array_like, shape (n_atoms, 3)
        Atom positions in Å.
    cutoff_A : float
        Bond cutoff in Å (pairs with ``|r_j - r_i| <= cutoff_A``).
    cell : array_like, shape (3, 3) or (3,), optional
        Cell vectors (rows) or orthorhombic lengths in Å; ``None`` for a cluster in vacuum.
    pbc : bool or sequence of 3 bool, optional
        Periodic directions; default all periodic when a cell is given.

    Returns
    -------
    i, j : ndarray of int, shape (n_bonds,)
        Bonded atoms, every bond listed as (i, j) and (j, i), sorted by i then j. ``i != j``
        except in a periodic cell shorter than the cutoff, where an atom bonds to its own images.
    d : ndarray, shape (n_bonds, 3)
        Bond vectors ``r_j - r_i`` in Å (minimum/periodic image).

    Notes
    -----
    Non-periodic search uses :class:`scipy.spatial.cKDTree`; periodic search uses
    :func:`ase.neighborlist.primitive_neighbor_list`.
    """
    pos = _positions(positions)
    cutoff = _positive("cutoff_A", cutoff_A)
    c, p = _cell(cell, pbc)
    i, j, d = _half_bonds(pos, cutoff, c, p)
    ii, jj, dd = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, -d])
    order = np.lexsort((jj, ii))
    return ii[order], jj[order], dd[order]


def nearest_neighbour_cutoff(positions: ArrayLike) -> float:
    """Automatic first-shell cutoff of an fcc-like metal frame.

    Parameters
    ----------
    positions : array_like, shape (n_atoms, 3)
        Atom positions in Å, at least two atoms.

    Returns
    -------
    float
        ``r_c = (1 + √2)/2 · r_nn`` in Å, where ``r_nn`` is the median length of the first-shell
        bonds: all pairs shorter than 1.25 times the median nearest-neighbour distance.

    Notes
    -----
    In fcc the first two shells sit at ``r_nn`` and ``√2 r_nn``; their midpoint separates them
    with the largest margin for thermal vibration and also keeps the slightly longer
    intra-shell bonds of icosahedra and decahedra (≈ 1.05 ``r_nn``). For Cu, ``r_nn`` ≈ 2.55 Å
    gives ``r_c`` ≈ 3.08 Å. The median makes it robust to a few adatoms or vacancies. Taking the
    median over the whole first shell rather than over each atom's nearest neighbour only keeps
    the cutoff unbiased in thermally disordered frames, where the nearest of ~12 neighbours is
    systematically short.
    """
    pos = _positions(positions)
    if pos.shape[0] < 2:
        raise ConfigError("nearest_neighbour_cutoff needs at least two atoms; got one.")
    tree = cKDTree(pos)
    dist, _ = tree.query(pos, k=2)
    r_min = float(np.median(dist[:, 1]))
    if r_min <= 0:
        raise ConfigError("positions has coincident atoms: the median nearest-neighbour distance is 0.")
    pairs = tree.query_pairs(1.25 * r_min, output_type="ndarray")
    r_nn = float(np.median(np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)))
    return FCC_SHELL_MIDPOINT * r_nn


# --------------------------------------------------------------------------------------------
# Steinhardt bond order


def _wigner_3j(j1: int, j2: int, j3: int, m1: int, m2: int, m3: int) -> float:
    """Wigner 3j symbol of integer angular momenta by Racah's formula (exact rational arithmetic)."""
    if m1 + m2 + m3 != 0 or abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3:
        return 0.0
    if j3 < abs(j1 - j2) or j3 > j1 + j2:
        return 0.0
    f = math.factorial
    triangle = Fraction(f(j1 + j2 - j3) * f(j1 - j2 + j3) * f(-j1 + j2 + j3), f(j1 + j2 + j3 + 1))
    weight = triangle * f(j1 + m1) * f(j1 - m1) * f(j2 + m2) * f(j2 - m2) * f(j3 + m3) * f(j3 - m3)
    k_min = max(0, j2 - j3 - m1, j1 - j3 + m2)
    k_max = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    total = Fraction(0)
    for k in range(k_min, k_max + 1):
        den = f(k) * f(j3 - j2 + k + m1) * f(j3 - j1 + k - m2) * f(j1 + j2 - j3 - k) * f(j1 - k - m1) * f(j2 - k + m2)
        total += Fraction((-1) ** k, den)
    if total == 0:
        return 0.0
    sign = (-1) ** ((j1 - j2 - m3) % 2) * (1 if total > 0 else -1)
    return sign * math.sqrt(total * total * weight)


@lru_cache(maxsize=16)
def _w_terms(l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # noqa: E741
    """Columns (m + l) of the three factors and the 3j coefficient of every term of w_l."""
    a, b, c, coef = [], [], [], []
    for m1 in range(-l, l + 1):
        for m2 in range(-l, l + 1):
            m3 = -m1 - m2
            if abs(m3) <= l:
                a.append(m1 + l)
                b.append(m2 + l)
                c.append(m3 + l)
                coef.append(_wigner_3j(l, l, l, m1, m2, m3))
    out = (np.array(a), np.array(b), np.array(c), np.array(coef))
    for arr in out:
        arr.setflags(write=False)
    return out


def _steinhardt_from_bonds(
    n_atoms: int, i: np.ndarray, j: np.ndarray, d: np.ndarray, degrees: tuple[int, ...], wigner: bool
) -> dict[str, np.ndarray]:
    """q_l (and ŵ_l) per atom from the half bond list (each bond once)."""
    ls = np.concatenate([np.full(l + 1, l) for l in degrees])  # noqa: E741
    ms = np.concatenate([np.arange(l + 1) for l in degrees])  # noqa: E741
    r = np.linalg.norm(d, axis=1)
    polar = np.arccos(np.clip(d[:, 2] / np.where(r > 0, r, 1.0), -1.0, 1.0))
    azimuth = np.arctan2(d[:, 1], d[:, 0])
    y = _sph_harm_y(ls[None, :], ms[None, :], polar[:, None], azimuth[:, None])  # (n_bonds, K)
    # Y_lm(-r) = (-1)^l Y_lm(r): the reverse bond j -> i contributes with the parity of l
    acc = np.zeros((n_atoms, ls.size), dtype=complex)
    np.add.at(acc, i, y)
    np.add.at(acc, j, y * np.where(ls % 2 == 0, 1.0, -1.0))
    n_neigh = np.bincount(i, minlength=n_atoms) + np.bincount(j, minlength=n_atoms)
    qlm = acc / np.maximum(n_neigh, 1)[:, None]

    out: dict[str, np.ndarray] = {}
    w_out: dict[str, np.ndarray] = {}
    start = 0
    for l in degrees:  # noqa: E741
        q = qlm[:, start : start + l + 1]  # m = 0..l
        start += l + 1
        norm2 = np.abs(q[:, 0]) ** 2 + 2.0 * np.sum(np.abs(q[:, 1:]) ** 2, axis=1)  # sum over m = -l..l
        out[f"q{l}"] = np.sqrt(4.0 * np.pi / (2 * l + 1) * norm2)
        if wigner:
            signs = (-1.0) ** np.arange(l, 0, -1)
            full = np.concatenate([signs * np.conj(q[:, :0:-1]), q], axis=1)  # m = -l..l
            a, b, c, coef = _w_terms(l)
            w = np.real((full[:, a] * full[:, b] * full[:, c]) @ coef)
            # ŵ_l is a ratio of two vanishing quantities where q_l = 0 (e.g. q4 of an icosahedron): set it to 0
            defined = out[f"q{l}"] > _Q_ZERO
            w_out[f"w{l}"] = np.divide(w, norm2**1.5, out=np.zeros_like(w), where=defined)
    out.update(w_out)
    return out


def _degrees(degrees: object) -> tuple[int, ...]:
    try:
        values = tuple(degrees)  # type: ignore[arg-type]
    except TypeError:
        raise param_error("degrees", degrees, "a sequence of distinct integers >= 1, e.g. (4, 6)") from None
    ok = len(values) > 0 and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1 for v in values)
    if not ok or len(set(values)) != len(values):
        raise param_error("degrees", degrees, "a sequence of distinct integers >= 1, e.g. (4, 6)")
    return tuple(int(v) for v in values)


def steinhardt(
    positions: ArrayLike,
    cutoff_A: float,
    degrees: Sequence[int] = (4, 6),
    wigner: bool = False,
    *,
    cell: ArrayLike | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> dict[str, np.ndarray]:
    r"""Per-atom Steinhardt bond-orientational order parameters.

    Parameters
    ----------
    positions : array_like, shape (n_atoms, 3)
        Atom positions in Å.
    cutoff_A : float
        Neighbour cutoff in Å.
    degrees : sequence of int, default (4, 6)
        Degrees ``l``.
    wigner : bool, default False
        Also return the normalised third-order invariants ``ŵ_l``.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Returns
    -------
    dict of str to ndarray, shape (n_atoms,)
        ``"q4"``, ``"q6"``, … and, with ``wigner``, ``"w4"``, ``"w6"``, …; atoms without neighbours
        get 0, and so does ``ŵ_l`` where ``q_l < 1e-8`` (the ratio below is then undefined).

    Notes
    -----
    With ``N_i`` neighbours of atom i and unit bond vectors ``r̂_ij``,

    .. math::

        q_{lm}(i) = \frac{1}{N_i} \sum_j Y_{lm}(\hat r_{ij}), \qquad
        q_l(i) = \sqrt{\frac{4\pi}{2l+1} \sum_m |q_{lm}(i)|^2},

        \hat w_l(i) = \frac{\sum_{m_1+m_2+m_3=0}
        \begin{pmatrix} l & l & l \\ m_1 & m_2 & m_3 \end{pmatrix}
        q_{lm_1} q_{lm_2} q_{lm_3}}{\left(\sum_m |q_{lm}|^2\right)^{3/2}}.

    Perfect fcc: q4 = 0.19094, q6 = 0.57452, ŵ4 = −0.15932, ŵ6 = −0.01316; icosahedron centre:
    q4 = 0, q6 = 0.66332, ŵ6 = −0.16975.

    References
    ----------
    P. J. Steinhardt, D. R. Nelson, M. Ronchetti, Phys. Rev. B 28, 784 (1983),
    doi:10.1103/PhysRevB.28.784.
    """
    pos = _positions(positions)
    cutoff = _positive("cutoff_A", cutoff_A)
    degs = _degrees(degrees)
    c, p = _cell(cell, pbc)
    i, j, d = _half_bonds(pos, cutoff, c, p)
    return _steinhardt_from_bonds(pos.shape[0], i, j, d, degs, bool(wigner))


# --------------------------------------------------------------------------------------------
# common-neighbour analysis


@numba.njit(cache=True)
def _root(parent: np.ndarray, u: int) -> int:
    while parent[u] != u:
        parent[u] = parent[parent[u]]
        u = parent[u]
    return u


@numba.njit(cache=True)
def _bonded(indptr: np.ndarray, indices: np.ndarray, a: int, b: int) -> bool:
    lo, hi = indptr[a], indptr[a + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < b:
            lo = mid + 1
        else:
            hi = mid
    return lo < indptr[a + 1] and indices[lo] == b


@numba.njit(cache=True)
def _cna_kernel(indptr: np.ndarray, indices: np.ndarray, pair_i: np.ndarray, pair_j: np.ndarray) -> np.ndarray:
    """(n_common, n_bonds, longest_chain) of every pair from a sorted CSR adjacency."""
    n_pairs = pair_i.shape[0]
    out = np.zeros((n_pairs, 3), dtype=np.int64)
    max_degree = 0
    for a in range(indptr.shape[0] - 1):
        max_degree = max(max_degree, indptr[a + 1] - indptr[a])
    common = np.empty(max_degree, dtype=np.int64)
    parent = np.empty(max_degree, dtype=np.int64)
    cluster_bonds = np.empty(max_degree, dtype=np.int64)
    for p in range(n_pairs):
        a, b = pair_i[p], pair_j[p]
        ia, ib, n_common = indptr[a], indptr[b], 0
        while ia < indptr[a + 1] and ib < indptr[b + 1]:  # merge of two sorted neighbour lists
            x, y = indices[ia], indices[ib]
            if x == y:
                common[n_common] = x
                n_common += 1
                ia += 1
                ib += 1
            elif x < y:
                ia += 1
            else:
                ib += 1
        for u in range(n_common):
            parent[u] = u
            cluster_bonds[u] = 0
        n_bonds = 0
        for u in range(n_common):
            for v in range(u + 1, n_common):
                if _bonded(indptr, indices, common[u], common[v]):
                    n_bonds += 1
                    ru, rv = _root(parent, u), _root(parent, v)
                    if ru != rv:
                        parent[rv] = ru
                        cluster_bonds[ru] += cluster_bonds[rv] + 1
                    else:
                        cluster_bonds[ru] += 1
        longest = 0
        for u in range(n_common):
            if parent[u] == u and cluster_bonds[u] > longest:
                longest = cluster_bonds[u]
        out[p, 0], out[p, 1], out[p, 2] = n_common, n_bonds, longest
    return out


def _cna_from_bonds(n_atoms: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Signatures (n_pairs, 3) of the half bond list (sorted, i < j)."""
    ii, jj = np.concatenate([i, j]), np.concatenate([j, i])
    order = np.lexsort((jj, ii))
    indptr = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(ii, minlength=n_atoms), out=indptr[1:])
    return _cna_kernel(indptr, jj[order], i, j)


def _check_cna_cell(cell: np.ndarray | None, pbc: np.ndarray | None, cutoff: float) -> None:
    if cell is None:
        return
    widths = _widths(cell)[pbc]
    if widths.size and widths.min() < 3.0 * cutoff:
        raise ConfigError(
            f"the periodic cell is too small for common-neighbour analysis: its narrowest width "
            f"{widths.min():.3f} Å is below 3 × cutoff_A = {3 * cutoff:.3f} Å, so bonds through different "
            "periodic images would be merged. Repeat the cell (e.g. atoms.repeat((2, 2, 2)))."
        )


def cna_signatures(
    positions: ArrayLike,
    cutoff_A: float,
    *,
    cell: ArrayLike | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common-neighbour signature of every bonded pair.

    Parameters
    ----------
    positions : array_like, shape (n_atoms, 3)
        Atom positions in Å.
    cutoff_A : float
        Bond cutoff in Å.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`; every periodic width must exceed
        ``3 cutoff_A`` so that atom indices identify periodic images unambiguously.

    Returns
    -------
    n_common, n_bonds, longest_chain : ndarray of int, shape (n_pairs,)
        For every bonded pair ``i < j`` in the order of ``i, j, _ = neighbor_pairs(positions,
        cutoff_A)`` restricted to ``i < j``: the number of common neighbours, the number of bonds
        among them, and the number of bonds in the largest connected cluster of those bonds.

    Notes
    -----
    The Honeycutt–Andersen triplet as defined by Faken and Jónsson: perfect fcc has only
    421 pairs, hcp 421 and 422, the axis of a 13-atom icosahedron (centre–surface) 555 and its
    surface pairs 322, bcc 666 and 444.

    References
    ----------
    J. D. Honeycutt, H. C. Andersen, J. Phys. Chem. 91, 4950 (1987), doi:10.1021/j100303a014.
    D. Faken, H. Jónsson, Comput. Mater. Sci. 2, 279 (1994), doi:10.1016/0927-0256(94)90109-0.
    """
    pos = _positions(positions)
    cutoff = _positive("cutoff_A", cutoff_A)
    c, p = _cell(cell, pbc)
    _check_cna_cell(c, p, cutoff)
    i, j, _ = _half_bonds(pos, cutoff, c, p)
    sig = _cna_from_bonds(pos.shape[0], i, j)
    return sig[:, 0].copy(), sig[:, 1].copy(), sig[:, 2].copy()


# --------------------------------------------------------------------------------------------
# descriptor classes


class Steinhardt:
    """Mean and standard deviation over atoms of Steinhardt ``q_l`` (and ``ŵ_l``).

    Parameters
    ----------
    cutoff_A : float
        Neighbour cutoff in Å.
    degrees : sequence of int, default (4, 6)
        Degrees ``l``.
    wigner : bool, default False
        Add the normalised invariants ``ŵ_l``.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"q4_mean", "q4_std", "q6_mean", "q6_std"`` then, with ``wigner``, the same for ``w``.

    See Also
    --------
    steinhardt : the per-atom values and their definition.
    """

    def __init__(
        self,
        cutoff_A: float,
        degrees: Sequence[int] = (4, 6),
        wigner: bool = False,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.degrees = degrees
        self.wigner = wigner
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        self._degrees = _degrees(degrees)
        self._cell, self._pbc = _cell(cell, pbc)
        keys = [f"q{l}" for l in self._degrees] + ([f"w{l}" for l in self._degrees] if wigner else [])  # noqa: E741
        self.names = [f"{k}_{stat}" for k in keys for stat in ("mean", "std")]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        i, j, d = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        per_atom = _steinhardt_from_bonds(pos.shape[0], i, j, d, self._degrees, bool(self.wigner))
        return np.array([f(v) for v in per_atom.values() for f in (np.mean, np.std)])


class CNAFractions:
    """Fractions of bonded pairs with chosen common-neighbour signatures, and of all others.

    Parameters
    ----------
    cutoff_A : float
        Bond cutoff in Å.
    signatures : sequence of (int, int, int)
        Signatures to count; default 421, 422, 555, 544, 433 (fcc, hcp/twin, icosahedral axis,
        and the two defect signatures of liquids). Add 666 and 444 for bcc: in close-packed
        clusters a 666 pair is a rare one-off whose on/off, once standardised, splits basins
        that are one.
    cell, pbc : optional
        Periodic cell, as in :func:`cna_signatures`.

    Attributes
    ----------
    names : list of str
        ``"cna_421", "cna_422", "cna_555", "cna_544", "cna_433", "cna_other"`` by default.

    Notes
    -----
    The fractions sum to 1 (all zero for a frame without any bond).
    """

    def __init__(
        self,
        cutoff_A: float,
        *,
        signatures: Sequence[tuple[int, int, int]] = CNA_SIGNATURES[:5],
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.signatures = signatures
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        self._cell, self._pbc = _cell(cell, pbc)
        _check_cna_cell(self._cell, self._pbc, self._cutoff)
        try:
            self._signatures = [tuple(int(v) for v in sig) for sig in signatures]
        except (TypeError, ValueError):
            raise ConfigError(f"signatures={signatures!r}: expected triplets of integers such as (4, 2, 1).") from None
        if not self._signatures or any(len(sig) != 3 for sig in self._signatures):
            raise ConfigError(f"signatures={signatures!r}: expected one or more triplets such as (4, 2, 1).")
        self.names = [f"cna_{a}{b}{c}" for a, b, c in self._signatures] + ["cna_other"]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        i, j, _ = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        out = np.zeros(len(self.names))
        if i.size == 0:
            return out
        sig = _cna_from_bonds(pos.shape[0], i, j)
        for k, triplet in enumerate(self._signatures):
            out[k] = np.count_nonzero(np.all(sig == triplet, axis=1))
        out /= i.size
        out[-1] = max(0.0, 1.0 - out[:-1].sum())
        return out


class CoordinationHistogram:
    """Fraction of atoms with each first-shell coordination number.

    Parameters
    ----------
    cutoff_A : float
        Bond cutoff in Å.
    kmin, kmax : int, default 3 and 13
        Range of coordination numbers; atoms below ``kmin`` count in the ``kmin`` bin and atoms
        above ``kmax`` in the ``kmax`` bin, so the fractions always sum to 1.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"cn_3", …, "cn_13"``.
    """

    def __init__(
        self,
        cutoff_A: float,
        kmin: int = 3,
        kmax: int = 13,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.kmin = kmin
        self.kmax = kmax
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        lo = _count("kmin", kmin, 0)
        if _count("kmax", kmax, 0) < lo:
            raise param_error("kmax", kmax, f"an integer >= kmin={kmin}")
        self._cell, self._pbc = _cell(cell, pbc)
        self.names = [f"cn_{k}" for k in range(kmin, kmax + 1)]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        n = pos.shape[0]
        i, j, _ = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        cn = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
        k = np.clip(cn, self.kmin, self.kmax) - self.kmin
        return np.bincount(k, minlength=len(self.names)) / n


class RadialDistribution:
    """Histogram of pair distances per atom.

    Parameters
    ----------
    r_min_A, r_max_A : float, default 2.0 and 6.0
        Range of distances in Å (``r_max_A`` is also the neighbour-search cutoff).
    n_bins : int, default 20
        Number of equal-width bins.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"rdf_<bin centre in Å>"``, e.g. ``"rdf_2.10"``.

    Notes
    -----
    Each unordered pair is counted from both atoms, so feature k is the mean number of neighbours
    per atom at distances in bin k, ``n(r_k) = 2 N_pairs(r_k) / n_atoms``, and the bins up to the
    first-shell cutoff add up to the mean coordination number. Bins are half-open
    ``[r_k, r_{k+1})`` except the last, which includes ``r_max_A`` (as :func:`numpy.histogram`).
    """

    def __init__(
        self,
        r_min_A: float = 2.0,
        r_max_A: float = 6.0,
        n_bins: int = 20,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.r_min_A = r_min_A
        self.r_max_A = r_max_A
        self.n_bins = n_bins
        self.cell = cell
        self.pbc = pbc
        if isinstance(r_min_A, bool) or not isinstance(r_min_A, int | float | np.integer | np.floating):
            raise param_error("r_min_A", r_min_A, "a finite number >= 0 in Å")
        if not (math.isfinite(r_min_A) and r_min_A >= 0):
            raise param_error("r_min_A", r_min_A, "a finite number >= 0 in Å")
        if _positive("r_max_A", r_max_A) <= r_min_A:
            raise param_error("r_max_A", r_max_A, f"a distance in Å larger than r_min_A={r_min_A}")
        self._edges = np.linspace(float(r_min_A), float(r_max_A), _count("n_bins", n_bins, 1) + 1)
        self._cell, self._pbc = _cell(cell, pbc)
        centres = 0.5 * (self._edges[1:] + self._edges[:-1])
        self.names = [f"rdf_{c:.2f}" for c in centres]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        _, _, d = _half_bonds(pos, float(self.r_max_A), self._cell, self._pbc)
        counts, _ = np.histogram(np.linalg.norm(d, axis=1), bins=self._edges)
        return 2.0 * counts / pos.shape[0]


class SOAPAverage:
    """SOAP power spectrum averaged over atoms, through the optional package ``dscribe``.

    Parameters
    ----------
    cutoff_A : float, default 5.0
        SOAP cutoff radius in Å.
    n_max, l_max : int, default 6 and 6
        Radial and angular expansion orders.
    sigma_A : float, default 0.5
        Width of the atomic Gaussians in Å.
    species : sequence of str, default ("Cu",)
        Chemical species that may appear.
    average : {"inner", "outer"}, default "inner"
        dscribe's averaging: of the expansion coefficients before forming the power spectrum
        (``"inner"``) or of the per-atom power spectra (``"outer"``).

    Raises
    ------
    ImportError
        If ``dscribe`` is not installed (``pip install dscribe``).

    References
    ----------
    A. P. Bartók, R. Kondor, G. Csányi, Phys. Rev. B 87, 184115 (2013), doi:10.1103/PhysRevB.87.184115.
    L. Himanen et al., Comput. Phys. Commun. 247, 106949 (2020), doi:10.1016/j.cpc.2019.106949.
    """

    def __init__(
        self,
        cutoff_A: float = 5.0,
        n_max: int = 6,
        l_max: int = 6,
        sigma_A: float = 0.5,
        species: Sequence[str] = ("Cu",),
        average: str = "inner",
    ) -> None:
        self.cutoff_A = cutoff_A
        self.n_max = n_max
        self.l_max = l_max
        self.sigma_A = sigma_A
        self.species = species
        self.average = average
        _positive("cutoff_A", cutoff_A)
        _positive("sigma_A", sigma_A)
        _count("n_max", n_max, 1)
        _count("l_max", l_max, 0)
        if average not in ("inner", "outer"):
            raise param_error("average", average, '"inner" or "outer"')
        if isinstance(species, str) or not all(isinstance(s, str) for s in species) or len(species) == 0:
            raise param_error("species", species, 'a non-empty sequence of chemical symbols, e.g. ("Cu",)')
        try:
            from dscribe.descriptors import SOAP
        except ImportError:
            raise ImportError("SOAPAverage needs the optional package dscribe: pip install dscribe") from None
        self._soap = SOAP(
            species=list(species),
            periodic=False,
            r_cut=float(cutoff_A),
            n_max=int(n_max),
            l_max=int(l_max),
            sigma=float(sigma_A),
            average=average,
        )
        self.names = [f"soap_{k}" for k in range(self._soap.get_number_of_features())]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame."""
        from ase import Atoms

        pos = _positions(positions)
        atoms = Atoms(numbers=np.asarray(numbers), positions=pos)
        return np.asarray(self._soap.create(atoms), dtype=float).ravel()


class DescriptorSet:
    """Several frame descriptors side by side, itself a :class:`FrameDescriptor`.

    Parameters
    ----------
    descriptors : sequence of FrameDescriptor
        The descriptors, in feature order; their feature names must be distinct.

    Attributes
    ----------
    names : list of str
        The concatenated feature names.
    """

    def __init__(self, descriptors: Sequence[FrameDescriptor]) -> None:
        self.descriptors = descriptors
        if isinstance(descriptors, FrameDescriptor) or not isinstance(descriptors, Sequence) or not descriptors:
            raise param_error("descriptors", descriptors, "a non-empty sequence of frame descriptors")
        for k, desc in enumerate(descriptors):
            if not isinstance(desc, FrameDescriptor):
                raise ConfigTypeError(
                    f"descriptors[{k}] is a {type(desc).__name__}, not a frame descriptor: it needs a `names` "
                    "list and a __call__(positions, numbers) returning one value per name."
                )
        self.names = [name for desc in descriptors for name in desc.names]
        seen: set[str] = set()
        duplicates = sorted({n for n in self.names if n in seen or seen.add(n)})
        if duplicates:
            raise ConfigError(
                f"descriptors has duplicate feature names {duplicates}: give each descriptor distinct names."
            )

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Concatenated features of one frame."""
        parts = []
        for desc in self.descriptors:
            values = np.asarray(desc(positions, numbers), dtype=float).ravel()
            if values.size != len(desc.names):
                raise ConfigError(
                    f"{type(desc).__name__} returned {values.size} values for {len(desc.names)} names; "
                    "a frame descriptor must return exactly one value per name."
                )
            parts.append(values)
        return np.concatenate(parts)


def default_descriptors(
    cutoff_A: float | None = None,
    *,
    distributions: bool = False,
    cell: ArrayLike | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> DescriptorSet:
    """Build the default descriptor set for metal clusters.

    Parameters
    ----------
    cutoff_A : float, optional
        First-shell cutoff in Å; default ≈ 3.085 Å, the value of :func:`nearest_neighbour_cutoff`
        for bulk Cu (a = 3.615 Å).
    distributions : bool, default False
        Add the coordination histogram and the radial distribution.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Returns
    -------
    DescriptorSet
        ``Steinhardt(wigner=True)`` (8 features) and ``CNAFractions`` (7); with ``distributions``
        also ``CoordinationHistogram`` (11: CN 3–13) and ``RadialDistribution`` (20 bins over
        2–6 Å), 46 features.

    Notes
    -----
    The order parameters alone are the default for basin finding. The histogram bins drift
    smoothly with thermal expansion and vibration; with 31 of 46 standardised features tracking
    temperature, t-SNE lays a heating ramp out as one continuous curve and DBSCAN no longer sees
    the melting of Cu147 as a gap (measured on the ramps of ``docs/basins.md``).
    """
    cutoff = _CU_CUTOFF_A if cutoff_A is None else cutoff_A
    parts: list[FrameDescriptor] = [
        Steinhardt(cutoff, wigner=True, cell=cell, pbc=pbc),
        CNAFractions(cutoff, cell=cell, pbc=pbc),
    ]
    if distributions:
        parts += [CoordinationHistogram(cutoff, cell=cell, pbc=pbc), RadialDistribution(cell=cell, pbc=pbc)]
    return DescriptorSet(parts)


def compute_descriptors(
    positions: np.ndarray,
    numbers: np.ndarray,
    descriptors: FrameDescriptor | None = None,
    progress: bool = False,
) -> xr.DataArray:
    """Descriptors of every frame of a trajectory.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, n_atoms, 3)
        Atom positions in Å.
    numbers : ndarray of int, shape (n_atoms,)
        Atomic numbers.
    descriptors : FrameDescriptor, optional
        What to compute; default :func:`default_descriptors` with the cutoff
        :func:`nearest_neighbour_cutoff` of the first frame.
    progress : bool, default False
        Show a progress bar (tqdm).

    Returns
    -------
    xarray.DataArray, dims ("frame", "feature")
        Coordinates ``frame`` (0-based index) and ``feature`` (the descriptor names).
    """
    try:
        pos = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("positions must be a numeric array of shape (n_frames, n_atoms, 3) in Å.") from None
    if pos.ndim != 3 or pos.shape[2] != 3 or 0 in pos.shape:
        raise ConfigError(
            f"positions must have shape (n_frames, n_atoms, 3) with at least one frame and atom; got shape "
            f"{pos.shape}. For a single frame use positions[None]."
        )
    nums = np.asarray(numbers)
    if nums.shape != (pos.shape[1],) or not np.issubdtype(nums.dtype, np.integer):
        raise ConfigError(
            f"numbers must be integer atomic numbers of shape (n_atoms,) = ({pos.shape[1]},); "
            f"got shape {nums.shape} and dtype {nums.dtype}."
        )
    if descriptors is None:
        descriptors = default_descriptors(nearest_neighbour_cutoff(pos[0]))
    elif not isinstance(descriptors, FrameDescriptor):
        raise ConfigTypeError(
            f"descriptors is a {type(descriptors).__name__}, not a frame descriptor (a `names` list and a "
            "__call__(positions, numbers)); combine several with DescriptorSet."
        )
    names = list(descriptors.names)
    out = np.empty((pos.shape[0], len(names)))
    frames = range(pos.shape[0])
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, unit="frame", desc="descriptors")
    for f in frames:
        values = np.asarray(descriptors(pos[f], nums), dtype=float).ravel()
        if values.size != len(names):
            raise ConfigError(
                f"{type(descriptors).__name__} returned {values.size} values for {len(names)} names; "
                "a frame descriptor must return exactly one value per name."
            )
        out[f] = values
    return xr.DataArray(
        out,
        dims=("frame", "feature"),
        coords={"frame": np.arange(pos.shape[0]), "feature": names},
        name="descriptors",
        attrs={"long_name": "structural descriptors per frame"},
    )
