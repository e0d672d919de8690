"""Common-neighbour analysis (Honeycutt–Andersen signatures) of first-shell bonds, numba kernel."""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from .neighbours import _cell, _half_bonds, _positions, _positive, _widths

__all__ = ["CNA_SIGNATURES", "cna_signatures"]

CNA_SIGNATURES = ((4, 2, 1), (4, 2, 2), (5, 5, 5), (5, 4, 4), (4, 3, 3), (6, 6, 6))
"""The common-neighbour signatures counted by :class:`CNAFractions`, in feature order."""


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
