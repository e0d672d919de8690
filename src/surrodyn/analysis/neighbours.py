"""Neighbour search of the frame descriptors: first-shell pairs, cutoffs, cells, argument checks.

Clusters are non-periodic (a k-d tree); a ``cell`` (and ``pbc``) switches to ASE's periodic
neighbour list (``pip install 'surrodyn[md]'``). Used by :mod:`surrodyn.analysis.descriptors`,
:mod:`surrodyn.analysis.steinhardt` and :mod:`surrodyn.analysis.cna`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from ..errors import ConfigError, param_error

__all__ = ["FCC_SHELL_MIDPOINT", "nearest_neighbour_cutoff", "neighbor_pairs"]

FCC_SHELL_MIDPOINT = 0.5 * (1.0 + math.sqrt(2.0))
"""Ratio of the first-shell cutoff to the nearest-neighbour distance: midway between √1 and √2 shells."""

_CU_CUTOFF_A = FCC_SHELL_MIDPOINT * 3.615 / math.sqrt(2.0)  # ≈ 3.085 Å, used when no cutoff is given

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
