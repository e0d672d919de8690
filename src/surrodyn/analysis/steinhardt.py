"""Steinhardt bond-orientational order: q_l and the normalised third-order invariants ŵ_l."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from ..errors import param_error
from .neighbours import _cell, _half_bonds, _positions, _positive

try:
    from scipy.special import sph_harm_y as _sph_harm_y
except ImportError:  # pragma: no cover - scipy < 1.15
    from scipy.special import sph_harm as _sph_harm_legacy

    def _sph_harm_y(n, m, theta, phi):  # same argument order as scipy's sph_harm_y
        return _sph_harm_legacy(m, n, phi, theta)


__all__ = ["steinhardt"]

_Q_ZERO = 1e-8  # q_l below this is treated as 0 and its ŵ_l set to 0

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
