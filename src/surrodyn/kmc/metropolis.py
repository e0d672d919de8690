"""Canonical Metropolis Monte Carlo of the kMC energy: the equilibrium reference of the kMC.

Both kMC rate rules obey detailed balance with respect to the total energy ``U`` of
:func:`surrodyn.kmc.reference.total_energy_eV`, so the long-time kMC state is the canonical
(fixed N) Boltzmann distribution of ``U``. This module samples that distribution directly with
non-local swap moves (any ion to any empty site), sharing nothing with the kMC kernels but the
periodic Green's table: its single-site energies are built from the table here, and the pair
energy change of a move is summed afresh in O(N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .config import KMCConfig
from .green import GreenTable
from .rng import next_double, seed_state

__all__ = ["MetropolisResult", "metropolis_layer_profile", "single_site_energies"]


@dataclass(frozen=True)
class MetropolisResult:
    """Samples of one Metropolis chain.

    Attributes
    ----------
    occupancy : ndarray, shape (n_samples, nz)
        Mean site occupancy of each layer (ions in the layer / ``nx·ny``) at each sample.
    acceptance : float
        Fraction of accepted moves during the sampling sweeps.
    positions : ndarray of int, shape (N, 3)
        Final (x, y, z) of the ions, to continue the chain.
    """

    occupancy: np.ndarray
    acceptance: float
    positions: np.ndarray

    @property
    def mean_occupancy(self) -> np.ndarray:
        """Chain average of the layer occupancy, shape (nz,)."""
        return self.occupancy.mean(axis=0)


def single_site_energies(
    config: KMCConfig, table: GreenTable, voltage_V: float, disorder_eV: np.ndarray | None = None
) -> np.ndarray:
    """One-ion part of ``U`` at every site: field, disorder, background and self-image.

    Parameters
    ----------
    config : KMCConfig
        The system.
    table : GreenTable
        Green's table of its lattice.
    voltage_V : float
        Applied voltage.
    disorder_eV : ndarray, shape (n_sites,), optional
        Site energies in site order ``(x*ny + y)*nz + z``.

    Returns
    -------
    ndarray, shape (n_sites,)
        ``V (z+1)/(nz+1) + eps_s + K [-theta0 sum_s' G_D(s, s') + 1/2 (G_D(s, s) - Gp(0))]`` in
        eV, ``K = e/(eps a)``; the bracket only with Coulomb on (its last term only with
        ``self_image``). The lateral sum of ``G_D`` is taken from the planar sums of ``Gp``.
    """
    c = config
    z = np.arange(c.nz)
    per_layer = voltage_V * (z + 1) / (c.nz + 1)
    if c.coulomb:
        planar = table.periodic.sum(axis=(0, 1))  # sum over dx, dy of Gp(dx, dy, dz)
        zz, zp = np.meshgrid(z, z, indexing="ij")
        lateral = planar[np.mod(zz - zp, table.period)] - planar[np.mod(zz + zp + 2, table.period)]
        per_layer = per_layer - c.filling * c.coulomb_scale_V * lateral.sum(axis=1)
        if c.self_image:
            own = table.dirichlet(0, 0, z, z) - table.periodic[0, 0, 0]
            per_layer = per_layer + 0.5 * c.coulomb_scale_V * own
    e = np.tile(per_layer, c.nx * c.ny)
    if disorder_eV is not None:
        e = e + disorder_eV
    return e


@njit(cache=True)
def _pair(tab, nx, ny, nz, xs, ys, zs, skip, x, y, z):
    """Sum of ``G_D((x, y, z), r_j)`` over the ions ``j != skip`` (dimensionless)."""
    p = 2 * (nz + 1)
    acc = 0.0
    for j in range(xs.shape[0]):
        if j == skip:
            continue
        base = (((x - xs[j]) % nx) * ny + (y - ys[j]) % ny) * p
        acc += tab[base + (z - zs[j]) % p] - tab[base + z + zs[j] + 2]
    return acc


@njit(cache=True)
def _delta_energy(i, b, xs, ys, zs, e1, tab, nx, ny, nz, k, coulomb):
    """Energy change (eV) of moving ion ``i`` to the empty site ``b``."""
    bx, by, bz = b // (ny * nz), (b // nz) % ny, b % nz
    ax, ay, az = xs[i], ys[i], zs[i]
    de = e1[b] - e1[(ax * ny + ay) * nz + az]
    if coulomb:
        de += k * (
            _pair(tab, nx, ny, nz, xs, ys, zs, i, bx, by, bz) - _pair(tab, nx, ny, nz, xs, ys, zs, i, ax, ay, az)
        )
    return de


@njit(cache=True)
def _sweeps(xs, ys, zs, empty, e1, tab, nx, ny, nz, k, beta, coulomb, n_sweeps, sample_every, out, rng):
    """Run ``n_sweeps`` sweeps of N swap attempts; record layer counts into ``out`` rows."""
    n, m = xs.shape[0], empty.shape[0]
    accepted = 0
    row = 0
    for sweep in range(n_sweeps):
        for _ in range(n):
            if m == 0:
                break
            i = min(int(next_double(rng) * n), n - 1)
            e = min(int(next_double(rng) * m), m - 1)
            b = empty[e]
            de = _delta_energy(i, b, xs, ys, zs, e1, tab, nx, ny, nz, k, coulomb)
            if de <= 0.0 or next_double(rng) < math.exp(-beta * de):
                empty[e] = (xs[i] * ny + ys[i]) * nz + zs[i]
                xs[i], ys[i], zs[i] = b // (ny * nz), (b // nz) % ny, b % nz
                accepted += 1
        if row < out.shape[0] and (sweep + 1) % sample_every == 0:
            for j in range(n):
                out[row, zs[j]] += 1.0
            row += 1
    return accepted


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: expected an integer >= {minimum}.")
    return int(value)


def metropolis_layer_profile(
    config: KMCConfig,
    n_sweeps: int,
    seed: int | np.random.SeedSequence | None = 0,
    n_equilibrate: int = 1000,
    positions: np.ndarray | None = None,
    disorder_eV: np.ndarray | None = None,
    sample_every: int = 1,
    voltage_V: float | None = None,
    temperature_K: float | None = None,
) -> MetropolisResult:
    """Sample the canonical layer occupancy of the kMC energy with swap-move Metropolis MC.

    Parameters
    ----------
    config : KMCConfig
        The system; its energy ``U`` is that of :func:`surrodyn.kmc.reference.total_energy_eV`.
    n_sweeps : int
        Sampling sweeps of N move attempts each (N = number of ions).
    seed : int or numpy.random.SeedSequence, optional
        Seed of the chain (initial placement and moves).
    n_equilibrate : int
        Sweeps discarded before sampling.
    positions : ndarray of int, shape (N, 3), optional
        Initial (x, y, z) of the ions instead of a uniform random placement.
    disorder_eV : ndarray, shape (n_sites,), optional
        Site-energy realisation (e.g. ``Simulation(config, seed).disorder``); required when
        ``config.disorder_eV > 0``.
    sample_every : int
        Record the layer occupancy after every ``sample_every``-th sampling sweep.
    voltage_V, temperature_K : float, optional
        Protocol values; default the final (long-time) values of the config's schedules.

    Returns
    -------
    MetropolisResult
        ``n_sweeps // sample_every`` occupancy samples, the acceptance and final positions.

    Raises
    ------
    ValueError
        On a bad count, positions that are not N distinct lattice sites, a disorder array of
        the wrong shape or missing, or a non-positive temperature.

    Notes
    -----
    A move picks an ion ``i`` and an empty site ``b`` uniformly (a symmetric proposal) and
    accepts with probability ``min(1, exp(-ΔU/kT))``, where ``ΔU = e1(b) - e1(a_i) +
    K sum_{j != i} [G_D(b, r_j) - G_D(a_i, r_j)]`` (see :func:`single_site_energies`). The
    stationary distribution is ``exp(-U/kT)`` at fixed N. Independent seeds give independent
    chains, from whose spread the caller estimates standard errors.
    """
    from ..units import thermal_energy_eV
    from .simulation import green_table

    if not isinstance(config, KMCConfig):
        raise TypeError(f"config must be a KMCConfig, got {type(config).__name__}.")
    c = config
    n_sweeps = _count("n_sweeps", n_sweeps, 1)
    n_equilibrate = _count("n_equilibrate", n_equilibrate, 0)
    sample_every = _count("sample_every", sample_every, 1)
    if sample_every > n_sweeps:
        raise ValueError(f"sample_every={sample_every} is not allowed: expected at most n_sweeps={n_sweeps}.")
    v = float(c.voltage_V.values[-1] if voltage_V is None else voltage_V)
    temp = float(c.temperature_K.values[-1] if temperature_K is None else temperature_K)
    if not (math.isfinite(v) and math.isfinite(temp) and temp > 0):
        raise ValueError(f"voltage_V={v!r}, temperature_K={temp!r}: expected finite values and T > 0.")
    if disorder_eV is not None:
        disorder_eV = np.asarray(disorder_eV, dtype=float)
        if disorder_eV.shape != (c.n_sites,) or not np.all(np.isfinite(disorder_eV)):
            raise ValueError(f"disorder_eV must be a finite array of shape ({c.n_sites},), got {disorder_eV.shape}.")
    elif c.disorder_eV > 0:
        raise ValueError("config.disorder_eV > 0: pass the realisation as disorder_eV (e.g. Simulation.disorder).")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    ss_place, ss_chain = ss.spawn(2)
    n = c.n_ions_resolved
    if positions is None:
        sites = np.random.default_rng(ss_place).choice(c.n_sites, size=n, replace=False)
    else:
        pos = np.asarray(positions)
        if pos.shape != (n, 3) or not np.issubdtype(pos.dtype, np.integer):
            raise ValueError(f"positions must be an integer array of shape ({n}, 3), got {pos.dtype} {pos.shape}.")
        if np.any(pos < 0) or np.any(pos >= np.array([c.nx, c.ny, c.nz])):
            raise ValueError("positions must lie inside the lattice (0 <= x < nx, 0 <= y < ny, 0 <= z < nz).")
        sites = (pos[:, 0] * c.ny + pos[:, 1]) * c.nz + pos[:, 2]
        if np.unique(sites).size != n:
            raise ValueError("positions must be distinct sites (one ion per site).")
    xs, ys, zs = (np.ascontiguousarray(a, dtype=np.int64) for a in np.unravel_index(sites, (c.nx, c.ny, c.nz)))
    empty = np.setdiff1d(np.arange(c.n_sites, dtype=np.int64), sites)
    table = green_table(c.nx, c.ny, c.nz)
    e1 = single_site_energies(c, table, v, disorder_eV)
    args = (
        e1,
        np.ascontiguousarray(table.flat),
        c.nx,
        c.ny,
        c.nz,
        c.coulomb_scale_V,
        1.0 / thermal_energy_eV(temp),
        c.coulomb,
    )
    rng = seed_state(ss_chain)
    _sweeps(xs, ys, zs, empty, *args, n_equilibrate, 1, np.zeros((0, c.nz)), rng)
    out = np.zeros((n_sweeps // sample_every, c.nz))
    accepted = _sweeps(xs, ys, zs, empty, *args, n_sweeps, sample_every, out, rng)
    return MetropolisResult(
        occupancy=out / (c.nx * c.ny),
        acceptance=accepted / (n_sweeps * n),
        positions=np.stack([xs, ys, zs], axis=1),
    )
