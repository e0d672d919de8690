"""Brute-force references of the kMC model, written for clarity, not speed.

They share no code with the numba kernels beyond the Green's table, so agreement between the
two is a real check of the incremental bookkeeping.
"""

from __future__ import annotations

import numpy as np

from .config import KMCConfig
from .green import GreenTable

__all__ = ["total_energy_eV"]


def total_energy_eV(
    config: KMCConfig,
    table: GreenTable,
    positions: np.ndarray,
    voltage_V: float,
    disorder_eV: np.ndarray | None = None,
) -> float:
    """Total energy of a configuration by direct O(N² + N·n_sites) summation.

    Parameters
    ----------
    config : KMCConfig
        The system (lattice, permittivity, filling, switches).
    table : GreenTable
        Green's table of the lattice.
    positions : ndarray of int, shape (N, 3)
        Ion coordinates (x, y, z).
    voltage_V : float
        Applied voltage.
    disorder_eV : ndarray, shape (n_sites,), optional
        Site energies in site order ``(x*ny + y)*nz + z``.

    Returns
    -------
    float
        ``U = sum_i [V (z_i+1)/(nz+1) + eps_i] + K [ 1/2 sum_{i != j} G_D(i, j)
        - theta0 sum_i sum_s G_D(i, s) + 1/2 sum_i (G_D(i, i) - Gp(0)) ]`` in eV, with
        ``K = e/(eps a)``; the Coulomb terms only when ``config.coulomb`` (the last only with
        ``self_image``). The background self-energy, a constant, is left out.
    """
    c = config
    pos = np.asarray(positions, dtype=np.int64)
    x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
    u = float(np.sum(voltage_V * (z + 1) / (c.nz + 1)))
    if disorder_eV is not None:
        u += float(np.sum(np.asarray(disorder_eV)[(x * c.ny + y) * c.nz + z]))
    if not c.coulomb:
        return u
    k = c.coulomb_scale_V
    g = table.dirichlet(x[:, None] - x[None, :], y[:, None] - y[None, :], z[:, None], z[None, :])
    pair = 0.5 * (g.sum() - np.trace(g))
    sx, sy, sz = np.meshgrid(np.arange(c.nx), np.arange(c.ny), np.arange(c.nz), indexing="ij")
    sx, sy, sz = sx.ravel(), sy.ravel(), sz.ravel()
    background = 0.0
    for i in range(len(pos)):
        background -= c.filling * table.dirichlet(x[i] - sx, y[i] - sy, z[i], sz).sum()
    u += k * (pair + background)
    if c.self_image:
        u += k * 0.5 * float(np.sum(np.diag(g) - table.periodic[0, 0, 0]))
    return u
