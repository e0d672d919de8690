"""Numba kernels of the lattice kMC: pure functions over explicit state arrays.

State (all owned by the caller, modified in place):

``occ``      int32[nx*ny*nz]   ion index at each site, -1 if empty; site = (x*ny + y)*nz + z
``pos``      int32[N, 3]       (x, y, z) of each ion
``disp``     int64[N, 3]       unwrapped net hops of each ion (tracer displacement / a)
``phi``      float64[N, 7]     Coulomb potential energy (eV) of ion i at its site (column 0)
                               and at its six neighbours (+x, -x, +y, -y, +z, -z) created by
                               all *other* ions (pair part of U, Green's function of the slab)
``free``     float64[N, 6]     1.0 if the neighbour site exists and is empty, else 0.0
``dstat``    float64[N, 6]     site_energy(neighbour) - site_energy(own site), eV
``rates``    float64[N*6]      hop rates (Hz), 0 for blocked hops
``ion_rate`` float64[N]        sum of each ion's six rates
``counters`` int64[4]          events, net +z hops, events since the last full recompute, spare
``rng``      uint64[4]         xoshiro256** state

Static per-site energies (disorder, background, self-image) live in ``site_energy`` (eV);
the applied field adds ``V (z+1)/(nz+1)`` eV at layer ``z``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rng import next_double, next_open_double

__all__ = [
    "DIRS",
    "advance",
    "all_rates",
    "full_recompute",
    "hop_energies",
    "place",
    "setup_neighbours",
]

# neighbour offsets; column k+1 of phi belongs to DIRS[k]
DIRS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.int64)
_OX = (0, 1, -1, 0, 0, 0, 0)
_OY = (0, 0, 0, 1, -1, 0, 0)
_OZ = (0, 0, 0, 0, 0, 1, -1)

SYMMETRIC = 0
METROPOLIS = 1


@njit(inline="always", cache=True)
def _gd(tab, ny, p, dx, dy, z, zp):
    """Dirichlet Green's function from the periodic table; dx, dy already in [0, n)."""
    base = (dx * ny + dy) * p
    d1 = z - zp
    if d1 < 0:
        d1 += p
    return np.float64(tab[base + d1]) - np.float64(tab[base + z + zp + 2])


@njit(inline="always", cache=True)
def _wrap(d, n):
    """Map d in [-n, 2n) into [0, n) without branches (the sign of d is unpredictable)."""
    return d + n * ((d < 0) - (d >= n))


@njit(cache=True)
def place(occ, pos, nx, ny, nz):
    """Fill ``occ`` from ``pos``; return False on a double occupancy or a site off the lattice."""
    occ[:] = -1
    for i in range(pos.shape[0]):
        x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
        if x < 0 or x >= nx or y < 0 or y >= ny or z < 0 or z >= nz:
            return False
        s = (x * ny + y) * nz + z
        if occ[s] != -1:
            return False
        occ[s] = i
    return True


@njit(cache=True)
def _potentials_of(i, pos, phi, tab, nx, ny, nz, p):
    """Rebuild phi[i, :] from scratch: O(7 N)."""
    n = pos.shape[0]
    x0, y0, z0 = pos[i, 0], pos[i, 1], pos[i, 2]
    for k in range(7):
        phi[i, k] = 0.0
    for j in range(n):
        if j == i:
            continue
        xj, yj, zj = pos[j, 0], pos[j, 1], pos[j, 2]
        dx = _wrap(x0 - xj, nx)
        dy = _wrap(y0 - yj, ny)
        dxp = _wrap(dx + 1, nx)
        dxm = _wrap(dx - 1, nx)
        dyp = _wrap(dy + 1, ny)
        dym = _wrap(dy - 1, ny)
        phi[i, 0] += _gd(tab, ny, p, dx, dy, z0, zj)
        phi[i, 1] += _gd(tab, ny, p, dxp, dy, z0, zj)
        phi[i, 2] += _gd(tab, ny, p, dxm, dy, z0, zj)
        phi[i, 3] += _gd(tab, ny, p, dx, dyp, z0, zj)
        phi[i, 4] += _gd(tab, ny, p, dx, dym, z0, zj)
        phi[i, 5] += _gd(tab, ny, p, dx, dy, z0 + 1, zj)
        phi[i, 6] += _gd(tab, ny, p, dx, dy, z0 - 1, zj)


@njit(cache=True)
def full_recompute(pos, phi, tab, nx, ny, nz):
    """Recompute every ion's kept potentials from scratch: O(7 N²)."""
    p = 2 * (nz + 1)
    for i in range(pos.shape[0]):
        _potentials_of(i, pos, phi, tab, nx, ny, nz, p)


@njit(inline="always", cache=True)
def _rate(de, inv2kt, invkt, pref, rule):
    if rule == SYMMETRIC:
        return pref * math.exp(-de * inv2kt)
    return pref * min(1.0, math.exp(-de * invkt))


@njit(inline="always", cache=True)
def _ion_rates(i, phi, free, dstat, rates, ion_rate, field, inv2kt, invkt, pref, rule, coulomb):
    """Rates of ion i's six hops from its kept potentials (branch-free over directions)."""
    p0 = phi[i, 0] if coulomb else 0.0
    tot = 0.0
    for k in range(6):
        de = dstat[i, k] + field * _OZ[k + 1]
        if coulomb:
            de += phi[i, k + 1] - p0
        r = free[i, k] * _rate(de, inv2kt, invkt, pref, rule)
        rates[6 * i + k] = r
        tot += r
    ion_rate[i] = tot


@njit(cache=True)
def setup_neighbours(i, pos, occ, site_energy, free, dstat, nx, ny, nz):
    """Fill ``free[i]`` and ``dstat[i]`` from the occupancy and the static site energies."""
    x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
    s0 = (x * ny + y) * nz + z
    for k in range(6):
        zn = z + _OZ[k + 1]
        if 0 <= zn < nz:
            xn = _wrap(x + _OX[k + 1], nx)
            yn = _wrap(y + _OY[k + 1], ny)
            s1 = (xn * ny + yn) * nz + zn
            free[i, k] = 1.0 if occ[s1] < 0 else 0.0
            dstat[i, k] = site_energy[s1] - site_energy[s0]
        else:
            free[i, k] = 0.0
            dstat[i, k] = 0.0


@njit(cache=True)
def all_rates(phi, free, dstat, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb):
    """Recompute every rate (after a change of voltage, temperature or a full recompute)."""
    field = voltage / (nz + 1)
    for i in range(ion_rate.shape[0]):
        _ion_rates(i, phi, free, dstat, rates, ion_rate, field, 0.5 / kt, 1.0 / kt, pref, rule, coulomb)


@njit(cache=True)
def _update_and_rates(
    m,
    ax,
    ay,
    az,
    bx,
    by,
    bz,
    pos,
    phi,
    free,
    dstat,
    rates,
    ion_rate,
    tab,
    nx,
    ny,
    nz,
    p,
    field,
    inv2kt,
    invkt,
    pref,
    rule,
):
    """Update every other ion's kept potentials for ion m's hop a -> b, and its rates.

    One fused O(N) pass: 14 Green's-function differences and 6 exponentials per ion.
    """
    n = pos.shape[0]
    for i in range(n):
        if i == m:
            continue
        x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
        dxa = _wrap(x - ax, nx)
        dya = _wrap(y - ay, ny)
        dxb = _wrap(x - bx, nx)
        dyb = _wrap(y - by, ny)
        # centre and +-z neighbours share the lateral offset
        phi[i, 0] += _gd(tab, ny, p, dxb, dyb, z, bz) - _gd(tab, ny, p, dxa, dya, z, az)
        phi[i, 1] += _gd(tab, ny, p, _wrap(dxb + 1, nx), dyb, z, bz) - _gd(tab, ny, p, _wrap(dxa + 1, nx), dya, z, az)
        phi[i, 2] += _gd(tab, ny, p, _wrap(dxb - 1, nx), dyb, z, bz) - _gd(tab, ny, p, _wrap(dxa - 1, nx), dya, z, az)
        phi[i, 3] += _gd(tab, ny, p, dxb, _wrap(dyb + 1, ny), z, bz) - _gd(tab, ny, p, dxa, _wrap(dya + 1, ny), z, az)
        phi[i, 4] += _gd(tab, ny, p, dxb, _wrap(dyb - 1, ny), z, bz) - _gd(tab, ny, p, dxa, _wrap(dya - 1, ny), z, az)
        phi[i, 5] += _gd(tab, ny, p, dxb, dyb, z + 1, bz) - _gd(tab, ny, p, dxa, dya, z + 1, az)
        phi[i, 6] += _gd(tab, ny, p, dxb, dyb, z - 1, bz) - _gd(tab, ny, p, dxa, dya, z - 1, az)
        _ion_rates(i, phi, free, dstat, rates, ion_rate, field, inv2kt, invkt, pref, rule, True)


@njit(cache=True)
def hop_energies(pos, phi, free, dstat, nz, voltage, coulomb):
    """Energy change (eV) of every allowed hop, NaN where the hop is blocked; shape (N, 6)."""
    n = pos.shape[0]
    out = np.full((n, 6), np.nan)
    field = voltage / (nz + 1)
    for i in range(n):
        for k in range(6):
            if free[i, k] > 0.0:
                de = dstat[i, k] + field * _OZ[k + 1]
                if coulomb:
                    de += phi[i, k + 1] - phi[i, 0]
                out[i, k] = de
    return out


@njit(cache=True)
def _hop(
    m,
    k,
    pos,
    occ,
    disp,
    phi,
    free,
    dstat,
    site_energy,
    rates,
    ion_rate,
    tab,
    nx,
    ny,
    nz,
    field,
    inv2kt,
    invkt,
    pref,
    rule,
    coulomb,
):
    p = 2 * (nz + 1)
    ax, ay, az = pos[m, 0], pos[m, 1], pos[m, 2]
    bx = _wrap(ax + _OX[k + 1], nx)
    by = _wrap(ay + _OY[k + 1], ny)
    bz = az + _OZ[k + 1]
    occ[(ax * ny + ay) * nz + az] = -1
    occ[(bx * ny + by) * nz + bz] = m
    pos[m, 0] = bx
    pos[m, 1] = by
    pos[m, 2] = bz
    disp[m, 0] += _OX[k + 1]
    disp[m, 1] += _OY[k + 1]
    disp[m, 2] += _OZ[k + 1]
    # neighbours of the vacated site may now hop into it; those of the new site may not
    for q in range(6):
        opp = q ^ 1
        zn = az + _OZ[q + 1]
        if 0 <= zn < nz:
            j = occ[(_wrap(ax + _OX[q + 1], nx) * ny + _wrap(ay + _OY[q + 1], ny)) * nz + zn]
            if j >= 0 and j != m:
                free[j, opp] = 1.0
                if not coulomb:
                    _ion_rates(j, phi, free, dstat, rates, ion_rate, field, inv2kt, invkt, pref, rule, False)
        zn = bz + _OZ[q + 1]
        if 0 <= zn < nz:
            j = occ[(_wrap(bx + _OX[q + 1], nx) * ny + _wrap(by + _OY[q + 1], ny)) * nz + zn]
            if j >= 0 and j != m:
                free[j, opp] = 0.0
                if not coulomb:
                    _ion_rates(j, phi, free, dstat, rates, ion_rate, field, inv2kt, invkt, pref, rule, False)
    setup_neighbours(m, pos, occ, site_energy, free, dstat, nx, ny, nz)
    if coulomb:
        _update_and_rates(
            m,
            ax,
            ay,
            az,
            bx,
            by,
            bz,
            pos,
            phi,
            free,
            dstat,
            rates,
            ion_rate,
            tab,
            nx,
            ny,
            nz,
            p,
            field,
            inv2kt,
            invkt,
            pref,
            rule,
        )
        _potentials_of(m, pos, phi, tab, nx, ny, nz, p)
    _ion_rates(m, phi, free, dstat, rates, ion_rate, field, inv2kt, invkt, pref, rule, coulomb)
    return _OZ[k + 1]


@njit(cache=True)
def advance(
    t,
    t_stop,
    max_events,
    pos,
    occ,
    disp,
    phi,
    free,
    dstat,
    site_energy,
    rates,
    ion_rate,
    counters,
    rng,
    tab,
    nx,
    ny,
    nz,
    voltage,
    kt,
    pref,
    rule,
    coulomb,
    recompute_interval,
):
    """Run BKL events at fixed protocol values until ``t_stop`` or ``max_events`` events.

    All rates are recomputed on entry (the voltage or temperature may have changed). The
    waiting time is drawn as ``-ln(u)/R``; if it would pass ``t_stop`` the clock is set to
    ``t_stop`` and no event happens (exact, the waiting time being memoryless).

    Returns
    -------
    t : float
        The new time.
    status : int
        0 reached ``t_stop``; 1 did ``max_events`` events; 2 no hop is possible (clock set
        to ``t_stop``).
    """
    n = pos.shape[0]
    field = voltage / (nz + 1)
    inv2kt = 0.5 / kt
    invkt = 1.0 / kt
    all_rates(phi, free, dstat, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb)
    done = 0
    while done < max_events:
        total = 0.0
        for i in range(n):
            total += ion_rate[i]
        if total <= 0.0:
            return t_stop, 2
        dt = -math.log(next_open_double(rng)) / total
        if t + dt >= t_stop:
            return t_stop, 0
        t += dt
        # select ion by its total rate, then the direction
        target = next_double(rng) * total
        acc = 0.0
        m = -1
        for i in range(n):
            acc += ion_rate[i]
            if ion_rate[i] > 0.0:
                m = i
                if acc > target:
                    break
        target -= acc - ion_rate[m]
        k = -1
        acc = 0.0
        for q in range(6):
            r = rates[6 * m + q]
            if r > 0.0:
                k = q
                acc += r
                if acc > target:
                    break
        dz = _hop(
            m,
            k,
            pos,
            occ,
            disp,
            phi,
            free,
            dstat,
            site_energy,
            rates,
            ion_rate,
            tab,
            nx,
            ny,
            nz,
            field,
            inv2kt,
            invkt,
            pref,
            rule,
            coulomb,
        )
        counters[0] += 1
        counters[1] += dz
        counters[2] += 1
        done += 1
        if coulomb and counters[2] >= recompute_interval:
            full_recompute(pos, phi, tab, nx, ny, nz)
            all_rates(phi, free, dstat, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb)
            counters[2] = 0
    return t, 1
