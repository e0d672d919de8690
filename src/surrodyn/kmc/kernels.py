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
``hf``       float64[N, 6]     exp(-dE / 2kT) of each hop (0 if blocked): rate = nu0 e^{-Ea/kT} f(x)
``rates``    float64[N*6]      hop rates (Hz), 0 for blocked hops
``ion_rate`` float64[N]        sum of each ion's six rates
``counters`` int64[4]          events, net +z hops, events since the last full recompute, spare
``rng``      uint64[4]         xoshiro256** state

Static per-site energies (disorder, background, self-image) live in ``site_energy`` (eV);
the applied field adds ``V (z+1)/(nz+1)`` eV at layer ``z``.

The Green's table ``tge`` is the symmetry-folded periodic table (see
:attr:`surrodyn.kmc.green.GreenTable.folded`) scaled to eV, interleaved with its Boltzmann
factors: ``tge[2k] = G_k``, ``tge[2k+1] = exp(-G_k / 2kT)``. After a hop every other ion's
hop factors ``hf`` are updated by products and quotients of these factors instead of six
exponentials (``exp(-dphi/2kT)`` factorises over the four table entries of ``dphi``); the kept
potentials ``phi`` are updated additively alongside, so energies stay exact, and ``hf`` is rebuilt
from ``phi`` with one exponential of the whole ``dE`` at every kernel entry, full recompute, or
change of a hop's target site, which bounds its round-off (relative ~1e-13). Where ``G/2kT`` is
too large for the factors to stay far from overflow (``use_etab`` false), each ``hf`` is taken
directly as ``exp(-dE/2kT)``.
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
def _fold(d, n):
    """Fold an offset with ``|d| <= n`` of an even, n-periodic function into ``[0, n/2]``."""
    ad = abs(d)
    return min(ad, n - ad)


@njit(inline="always", cache=True)
def _g(tge, k):
    return tge[2 * k]


@njit(inline="always", cache=True)
def _e(tge, k):
    return tge[2 * k + 1]


@njit(inline="always", cache=True)
def _gd(tge, nx, ny, hy, hz, p, dx, dy, z, zp):
    """Dirichlet Green's function (eV) from the folded table; raw offsets with ``|d| <= n``.

    ``Gp`` is even in each offset and periodic, so
    ``G_D = Gp(fold dx, fold dy, |z - z'|) - Gp(fold dx, fold dy, fold_P(z + z' + 2))``.
    """
    base = (_fold(dx, nx) * hy + _fold(dy, ny)) * hz
    return _g(tge, base + abs(z - zp)) - _g(tge, base + _fold(z + zp + 2, p))


@njit(inline="always", cache=True)
def _wrap(d, n):
    """Map d in [-n, 2n) into [0, n) without branches."""
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
def _potentials_of(i, pos, phi, tge, nx, ny, nz):
    """Rebuild phi[i, :] from scratch: O(7 N)."""
    n = pos.shape[0]
    p = 2 * (nz + 1)
    hy = ny // 2 + 1
    hz = nz + 2
    x0, y0, z0 = pos[i, 0], pos[i, 1], pos[i, 2]
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = 0.0
    for j in range(n):
        if j == i:
            continue
        dx = x0 - pos[j, 0]
        dy = y0 - pos[j, 1]
        zj = pos[j, 2]
        c0 += _gd(tge, nx, ny, hy, hz, p, dx, dy, z0, zj)
        c1 += _gd(tge, nx, ny, hy, hz, p, dx + 1, dy, z0, zj)
        c2 += _gd(tge, nx, ny, hy, hz, p, dx - 1, dy, z0, zj)
        c3 += _gd(tge, nx, ny, hy, hz, p, dx, dy + 1, z0, zj)
        c4 += _gd(tge, nx, ny, hy, hz, p, dx, dy - 1, z0, zj)
        c5 += _gd(tge, nx, ny, hy, hz, p, dx, dy, z0 + 1, zj)
        c6 += _gd(tge, nx, ny, hy, hz, p, dx, dy, z0 - 1, zj)
    phi[i, 0] = c0
    phi[i, 1] = c1
    phi[i, 2] = c2
    phi[i, 3] = c3
    phi[i, 4] = c4
    phi[i, 5] = c5
    phi[i, 6] = c6


@njit(cache=True, nogil=True)
def full_recompute(pos, phi, tge, nx, ny, nz):
    """Recompute every ion's kept potentials from scratch: O(7 N²)."""
    for i in range(pos.shape[0]):
        _potentials_of(i, pos, phi, tge, nx, ny, nz)


@njit(inline="always", cache=True)
def _hop_factor(i, k, phi, free, dstat, hf, field, inv2kt, coulomb):
    """``hf[i, k] = exp(-dE/2kT)`` from the whole energy change in one exponential; 0 if blocked."""
    if free[i, k] > 0.0:
        de = dstat[i, k] + field * _OZ[k + 1]
        if coulomb:
            de += phi[i, k + 1] - phi[i, 0]
        hf[i, k] = math.exp(-de * inv2kt)
    else:
        hf[i, k] = 0.0


@njit(inline="always", cache=True)
def _ion_rates(i, hf, rates, ion_rate, pref, rule):
    """Rates of ion i's six hops: ``pref·f(x)``, f(x) = x (symmetric) or min(1, x²) (Metropolis)."""
    tot = 0.0
    for k in range(6):
        xk = hf[i, k]
        r = pref * xk if rule == SYMMETRIC else pref * min(1.0, xk * xk)
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


@njit(cache=True, nogil=True)
def all_rates(phi, free, dstat, hf, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb):
    """Recompute every hop factor and rate from scratch (new voltage or temperature, or drift)."""
    field = voltage / (nz + 1)
    inv2kt = 0.5 / kt
    for i in range(ion_rate.shape[0]):
        for k in range(6):
            _hop_factor(i, k, phi, free, dstat, hf, field, inv2kt, coulomb)
        _ion_rates(i, hf, rates, ion_rate, pref, rule)


@njit(inline="always", cache=True)
def _pair(tge, row, d, im):
    """``G_D`` (eV) and ``exp(-G_D/2kT)`` = E(direct)/E(image) on one table row."""
    return _g(tge, row + d) - _g(tge, row + im), _e(tge, row + d), _e(tge, row + im)


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
    hf,
    rates,
    ion_rate,
    tge,
    nx,
    ny,
    nz,
    field,
    kt,
    pref,
    rule,
    use_etab,
):
    """Update every other ion's kept potentials and rate factors for ion m's hop a -> b.

    One fused O(N) pass; per ion 28 table look-ups (each with its Boltzmann factor beside it)
    and 7 divisions instead of 6 exponentials. The mover's own potentials are rebuilt in the
    same pass: by the symmetry ``G_D(dx, dy, z, z') = G_D(-dx, -dy, z', z)`` its lateral
    values are the other ions' opposite-neighbour values already computed, and its two
    z-neighbours need two more look-ups per ion.
    """
    n = pos.shape[0]
    p = 2 * (nz + 1)
    hy = ny // 2 + 1
    hz = nz + 2
    inv2kt = 0.5 / kt
    fxt = np.empty(2 * nx + 3, dtype=np.int64)
    fyt = np.empty(2 * ny + 3, dtype=np.int64)
    fxt[0] = fxt[2 * nx + 2] = 0  # offsets |d| = n + 1 never occur
    fyt[0] = fyt[2 * ny + 2] = 0
    for d in range(-nx, nx + 1):
        fxt[d + nx + 1] = _fold(d, nx) * hy * hz
    for d in range(-ny, ny + 1):
        fyt[d + ny + 1] = _fold(d, ny) * hz
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = 0.0
    for i in range(n):
        if i == m:
            continue
        x, y, z = pos[i, 0], pos[i, 1], pos[i, 2]
        # folded row offsets from small look-up tables (index shifted by n + 1)
        kxb = x - bx + nx + 1
        kyb = y - by + ny + 1
        kxa = x - ax + nx + 1
        kya = y - ay + ny + 1
        rb0 = fxt[kxb] + fyt[kyb]
        rbxp = fxt[kxb + 1] + fyt[kyb]
        rbxm = fxt[kxb - 1] + fyt[kyb]
        rbyp = fxt[kxb] + fyt[kyb + 1]
        rbym = fxt[kxb] + fyt[kyb - 1]
        ra0 = fxt[kxa] + fyt[kya]
        raxp = fxt[kxa + 1] + fyt[kya]
        raxm = fxt[kxa - 1] + fyt[kya]
        rayp = fxt[kxa] + fyt[kya + 1]
        raym = fxt[kxa] + fyt[kya - 1]
        db = abs(z - bz)
        ib = _fold(z + bz + 2, p)
        da = abs(z - az)
        ia = _fold(z + az + 2, p)
        # site k of ion i: G_D to b and a, and the factor exp(-dphi_k/2kT) as num/den
        g0, bd, bi = _pair(tge, rb0, db, ib)
        h0, ad, ai = _pair(tge, ra0, da, ia)
        n0 = bd * ai
        d0 = bi * ad
        g1, bd, bi = _pair(tge, rbxp, db, ib)
        h1, ad, ai = _pair(tge, raxp, da, ia)
        n1 = bd * ai
        d1 = bi * ad
        g2, bd, bi = _pair(tge, rbxm, db, ib)
        h2, ad, ai = _pair(tge, raxm, da, ia)
        n2 = bd * ai
        d2 = bi * ad
        g3, bd, bi = _pair(tge, rbyp, db, ib)
        h3, ad, ai = _pair(tge, rayp, da, ia)
        n3 = bd * ai
        d3 = bi * ad
        g4, bd, bi = _pair(tge, rbym, db, ib)
        h4, ad, ai = _pair(tge, raym, da, ia)
        n4 = bd * ai
        d4 = bi * ad
        g5, bd, bi = _pair(tge, rb0, abs(z + 1 - bz), _fold(z + bz + 3, p))
        h5, ad, ai = _pair(tge, ra0, abs(z + 1 - az), _fold(z + az + 3, p))
        n5 = bd * ai
        d5 = bi * ad
        g6, bd, bi = _pair(tge, rb0, abs(z - 1 - bz), _fold(z + bz + 1, p))
        h6, ad, ai = _pair(tge, ra0, abs(z - 1 - az), _fold(z + az + 1, p))
        n6 = bd * ai
        d6 = bi * ad
        phi[i, 0] += g0 - h0
        phi[i, 1] += g1 - h1
        phi[i, 2] += g2 - h2
        phi[i, 3] += g3 - h3
        phi[i, 4] += g4 - h4
        phi[i, 5] += g5 - h5
        phi[i, 6] += g6 - h6
        if use_etab:
            # hf_k *= exp(-(dphi_k - dphi_0)/2kT) = (n_k/d_k) / (n_0/d_0)
            c = d0 / n0
            hf[i, 0] *= n1 * c / d1
            hf[i, 1] *= n2 * c / d2
            hf[i, 2] *= n3 * c / d3
            hf[i, 3] *= n4 * c / d4
            hf[i, 4] *= n5 * c / d5
            hf[i, 5] *= n6 * c / d6
        else:
            for k in range(6):
                _hop_factor(i, k, phi, free, dstat, hf, field, inv2kt, True)
        _ion_rates(i, hf, rates, ion_rate, pref, rule)
        # the mover at b, seen from ion i (symmetry of G_D)
        m0 += g0
        m1 += g2
        m2 += g1
        m3 += g4
        m4 += g3
        m5 += _g(tge, rb0 + abs(z - bz - 1)) - _g(tge, rb0 + _fold(z + bz + 3, p))
        m6 += _g(tge, rb0 + abs(z - bz + 1)) - _g(tge, rb0 + _fold(z + bz + 1, p))
    phi[m, 0] = m0
    phi[m, 1] = m1
    phi[m, 2] = m2
    phi[m, 3] = m3
    phi[m, 4] = m4
    phi[m, 5] = m5
    phi[m, 6] = m6


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


@njit(inline="always", cache=True)
def _set_free(
    m, d, cx, cy, cz, val, occ, phi, free, dstat, hf, rates, ion_rate, nx, ny, nz, field, inv2kt, pref, rule, coulomb
):
    """Mark the site c as free (val 1) or taken (val 0) for the ion beside it in direction d."""
    zn = cz + _OZ[d + 1]
    if 0 <= zn < nz:
        j = occ[(_wrap(cx + _OX[d + 1], nx) * ny + _wrap(cy + _OY[d + 1], ny)) * nz + zn]
        if j >= 0 and j != m:
            opp = d ^ 1
            free[j, opp] = val
            _hop_factor(j, opp, phi, free, dstat, hf, field, inv2kt, coulomb)
            if not coulomb:
                _ion_rates(j, hf, rates, ion_rate, pref, rule)


# fmt: off
@njit(cache=True)
def _hop(m, k, pos, occ, disp, phi, free, dstat, hf, site_energy, rates, ion_rate, tge, nx, ny, nz, field, kt, pref,
         rule, coulomb, use_etab):
    """Move ion m in direction k and bring every kept quantity up to date."""
    inv2kt = 0.5 / kt
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
    # neighbours of the vacated site may now hop into it; those of the new site may not (their
    # factors use the potentials before this hop; the fused pass below then updates them)
    for d in range(6):
        _set_free(m, d, ax, ay, az, 1.0, occ, phi, free, dstat, hf, rates, ion_rate, nx, ny, nz, field, inv2kt,
                  pref, rule, coulomb)
        _set_free(m, d, bx, by, bz, 0.0, occ, phi, free, dstat, hf, rates, ion_rate, nx, ny, nz, field, inv2kt,
                  pref, rule, coulomb)
    setup_neighbours(m, pos, occ, site_energy, free, dstat, nx, ny, nz)
    if coulomb:
        _update_and_rates(m, ax, ay, az, bx, by, bz, pos, phi, free, dstat, hf, rates, ion_rate, tge, nx, ny, nz,
                          field, kt, pref, rule, use_etab)
    for d in range(6):
        _hop_factor(m, d, phi, free, dstat, hf, field, inv2kt, coulomb)
    _ion_rates(m, hf, rates, ion_rate, pref, rule)
    return _OZ[k + 1]


@njit(cache=True, nogil=True)
def advance(t, t_stop, max_events, pos, occ, disp, phi, free, dstat, hf, site_energy, rates, ion_rate, counters, rng,
            tge, nx, ny, nz, voltage, kt, pref, rule, coulomb, use_etab, recompute_interval):
    """Run BKL events at fixed protocol values until ``t_stop`` or ``max_events`` events.

    All rates are recomputed on entry (the voltage or temperature may have changed); ``tge``
    must hold the Boltzmann factors of this ``kt``. The waiting time is drawn as
    ``-ln(u)/R``; if it would pass ``t_stop`` the clock is set to ``t_stop`` and no event
    happens (exact, the waiting time being memoryless).

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
    all_rates(phi, free, dstat, hf, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb)
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
        # select the ion by its total rate, then the direction
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
        for d in range(6):
            r = rates[6 * m + d]
            if r > 0.0:
                k = d
                acc += r
                if acc > target:
                    break
        dz = _hop(m, k, pos, occ, disp, phi, free, dstat, hf, site_energy, rates, ion_rate, tge, nx, ny, nz, field, kt,
                  pref, rule, coulomb, use_etab)
        counters[0] += 1
        counters[1] += dz
        counters[2] += 1
        done += 1
        if coulomb and counters[2] >= recompute_interval:
            full_recompute(pos, phi, tge, nx, ny, nz)
            all_rates(phi, free, dstat, hf, rates, ion_rate, nz, voltage, kt, pref, rule, coulomb)
            counters[2] = 0
    return t, 1
# fmt: on
