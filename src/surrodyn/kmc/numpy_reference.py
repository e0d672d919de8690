"""A straightforward NumPy implementation of the lattice kMC: the yardstick of the benchmarks.

:class:`NumpyKMC` runs the same model as :class:`~surrodyn.kmc.Simulation` (field
``V (z+1)/(nz+1)``, static site energies, pair Coulomb energy from the same Dirichlet-slab
Green's table, symmetric or Metropolis rates, rejection-free BKL selection with continuous
time) the way one would write it in NumPy without a compiler: every ion keeps the potential
of the other ions at its site and its six neighbours, updated after each hop by vectorised
fancy indexing over all ions (O(N) per event), all ``6N`` rates are recomputed vectorised
and the event is chosen with ``cumsum``/``searchsorted``. Only the loop over events is Python.

It is written for honest timing comparisons and as an independent cross-check of the
incremental bookkeeping of the numba kernels; it draws its own random numbers, so it is
statistically, not event-by-event, equivalent to the engine.
"""

from __future__ import annotations

import math

import numpy as np

from ..units import thermal_energy_eV
from .config import KMCConfig
from .simulation import Simulation, green_table

__all__ = ["DirectSumNumpyKMC", "NumpyKMC"]

# probe offsets: own site, then the neighbours +x, -x, +y, -y, +z, -z (the engine's order)
_OFF = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.int64)
_DZ = _OFF[1:, 2].astype(float)
_CHUNK = 128  # rows per block of the O(N²) recompute (bounds the temporary arrays)


class NumpyKMC:
    """One kMC replica in plain NumPy (no numba), for benchmarks and cross-checks.

    Parameters
    ----------
    config : KMCConfig
        The system; voltage and temperature are read at the current time at the start of each
        :meth:`step` call (breakpoints inside one call are not honoured).
    seed : int or numpy.random.SeedSequence, optional
        Seed of the event stream; without ``site_energy`` also that of the
        :class:`~surrodyn.kmc.Simulation` whose initial state (disorder, placement) is copied,
        so ``NumpyKMC(cfg, s)`` and ``Simulation(cfg, s)`` start identical.
    positions : array_like of int, shape (N, 3), optional
        Initial (x, y, z) of the ions.
    site_energy : ndarray, shape (n_sites,), optional
        Static site energies in eV (see :func:`~surrodyn.kmc.static_site_energies`); when
        given, ``positions`` is required and no :class:`~surrodyn.kmc.Simulation` is built.

    Attributes
    ----------
    pos : ndarray of int64, shape (N, 3)
        Ion coordinates.
    phi : ndarray, shape (N, 7)
        Potential energy (eV) of each ion at its site and its six neighbours due to all other
        ions.
    rates : ndarray, shape (N, 6)
        Current hop rates in Hz (0 where blocked).
    time_s : float
        Simulated time.
    events, net_z_hops : int
        Events done and net +z hops.
    """

    def __init__(
        self,
        config: KMCConfig,
        seed: int | np.random.SeedSequence | None = 0,
        positions: np.ndarray | None = None,
        site_energy: np.ndarray | None = None,
    ) -> None:
        c = self.config = config
        if site_energy is None:
            sim = Simulation(config, seed=seed, positions=positions)
            positions, site_energy = sim.pos, sim.site_energy
        elif positions is None:
            raise ValueError("positions are required when site_energy is given.")
        self.site_energy = np.array(site_energy, dtype=float)
        self.pos = np.array(positions, dtype=np.int64).reshape(-1, 3)
        n = len(self.pos)
        table = green_table(c.nx, c.ny, c.nz)
        self._tab = table.flat * c.coulomb_scale_V  # eV per unit charge, as the kernels use it
        self._period = table.period
        self.occ = np.full(c.n_sites, -1, dtype=np.int64)
        sites = (self.pos[:, 0] * c.ny + self.pos[:, 1]) * c.nz + self.pos[:, 2]
        if np.unique(sites).size != n:
            raise ValueError("two ions share a site.")
        self.occ[sites] = np.arange(n)
        self.rng = np.random.default_rng(seed)
        self.time_s = 0.0
        self.events = 0
        self.net_z_hops = 0
        self._since_recompute = 0
        self._probe = np.empty((n, 7, 3), dtype=np.int64)
        self._nb = np.empty((n, 6), dtype=np.int64)
        self._inside = np.empty((n, 6), dtype=bool)
        self._dstat = np.empty((n, 6))
        self._set_geometry(np.arange(n))
        self.phi = self._potentials(np.arange(n)) if c.coulomb else np.zeros((n, 7))
        self.rates = np.zeros((n, 6))
        self._cum = np.zeros(6 * n)
        self._update_rates(*self._protocol())

    @classmethod
    def from_simulation(cls, sim: Simulation, seed: int | np.random.SeedSequence | None = 0) -> NumpyKMC:
        """Start from the current positions, site energies and time of a :class:`Simulation`.

        Parameters
        ----------
        sim : Simulation
            Engine replica to copy.
        seed : int or numpy.random.SeedSequence, optional
            Seed of the NumPy event stream.

        Returns
        -------
        NumpyKMC
            A replica in the same state (potentials recomputed from scratch).
        """
        new = cls(sim.config, seed, positions=sim.pos, site_energy=sim.site_energy)
        new.time_s = sim.time_s
        new._update_rates(*new._protocol())
        return new

    # ------------------------------------------------------------------ state
    @property
    def n_ions(self) -> int:
        """Number of mobile ions."""
        return len(self.pos)

    @property
    def total_rate(self) -> float:
        """Sum of all hop rates in Hz."""
        return float(self._cum[-1]) if self._cum.size else 0.0

    def _set_geometry(self, rows: np.ndarray) -> None:
        """Probe sites, neighbour sites and static energy differences of the ions ``rows``."""
        c = self.config
        probe = self.pos[rows, None, :] + _OFF
        probe[..., 0] %= c.nx
        probe[..., 1] %= c.ny
        self._probe[rows] = probe
        sites = (probe[..., 0] * c.ny + probe[..., 1]) * c.nz + np.clip(probe[..., 2], 0, c.nz - 1)
        self._nb[rows] = sites[:, 1:]
        self._inside[rows] = (probe[:, 1:, 2] >= 0) & (probe[:, 1:, 2] < c.nz)
        dstat = self.site_energy[sites[:, 1:]] - self.site_energy[sites[:, :1]]
        self._dstat[rows] = np.where(self._inside[rows], dstat, 0.0)

    def _green(self, probe: np.ndarray, src: np.ndarray) -> np.ndarray:
        """Dirichlet Green's function (eV) between probe sites and sources, broadcasting."""
        c = self.config
        p = self._period
        base = (((probe[..., 0] - src[..., 0]) % c.nx) * c.ny + (probe[..., 1] - src[..., 1]) % c.ny) * p
        z, zp = probe[..., 2], src[..., 2]
        return self._tab[base + (z - zp) % p] - self._tab[base + z + zp + 2]

    def _potentials(self, rows: np.ndarray) -> np.ndarray:
        """Potentials of the ions ``rows`` from scratch, O(7 N) per row."""
        out = np.empty((len(rows), 7))
        for start in range(0, len(rows), _CHUNK):
            blk = rows[start : start + _CHUNK]
            g = self._green(self._probe[blk, :, None, :], self.pos[None, None, :, :])  # (r, 7, N)
            g[np.arange(len(blk)), :, blk] = 0.0  # no self-interaction
            out[start : start + len(blk)] = g.sum(axis=2)
        return out

    def _protocol(self) -> tuple[float, float, float]:
        """Field per layer (eV), kT (eV) and bare rate (Hz) at the current time."""
        c = self.config
        kt = thermal_energy_eV(c.temperature_K(self.time_s))
        field = c.voltage_V(self.time_s) / (c.nz + 1)
        return field, kt, c.attempt_frequency_Hz * math.exp(-c.activation_energy_eV / kt)

    def _energy_changes(self, field: float) -> tuple[np.ndarray, np.ndarray]:
        free = self._inside & (self.occ[self._nb] < 0)
        return self._dstat + field * _DZ + (self.phi[:, 1:] - self.phi[:, :1]), free

    def _update_rates(self, field: float, kt: float, pref: float) -> None:
        de, free = self._energy_changes(field)
        if self.config.rate_rule == "symmetric":
            r = pref * np.exp(-0.5 / kt * de)
        else:
            r = pref * np.minimum(1.0, np.exp(-de / kt))
        self.rates = np.where(free, r, 0.0)
        self._cum = np.cumsum(self.rates.ravel())

    # ------------------------------------------------------------------ dynamics
    def _hop(self, m: int, k: int) -> None:
        c = self.config
        a = self.pos[m].copy()
        b = a + _OFF[k + 1]
        b[0] %= c.nx
        b[1] %= c.ny
        self.occ[(a[0] * c.ny + a[1]) * c.nz + a[2]] = -1
        self.occ[(b[0] * c.ny + b[1]) * c.nz + b[2]] = m
        self.pos[m] = b
        self._set_geometry(np.array([m]))
        self.events += 1
        self.net_z_hops += int(_OFF[k + 1, 2])
        if not c.coulomb:
            return
        self._update_potentials(m, a, b)
        self._since_recompute += 1
        if self._since_recompute >= c.recompute_interval:
            self.recompute()

    def _update_potentials(self, m: int, a: np.ndarray, b: np.ndarray) -> None:
        """Incremental O(N) update of the kept potentials after ion ``m`` hopped ``a -> b``."""
        g = self._green(self._probe, np.stack([b, a])[:, None, None, :])  # (2, N, 7)
        self.phi += g[0] - g[1]
        self.phi[m] = self._potentials(np.array([m]))[0]

    def step(self, n_events: int) -> None:
        """Do ``n_events`` BKL events at the protocol values of the current time.

        Parameters
        ----------
        n_events : int
            Number of events.
        """
        proto = self._protocol()
        self._update_rates(*proto)
        u = self.rng.random((int(n_events), 2))
        for e in range(int(n_events)):
            total = self._cum[-1] if self._cum.size else 0.0
            if not total > 0.0:
                raise RuntimeError("no hop is possible: every ion is blocked")
            self.time_s += -math.log1p(-u[e, 0]) / total
            j = int(np.searchsorted(self._cum, u[e, 1] * total, side="right"))
            self._hop(*divmod(j, 6))
            self._update_rates(*proto)

    def recompute(self) -> float:
        """Recompute the potentials from scratch; return the largest drift found (eV)."""
        self._since_recompute = 0
        if not self.config.coulomb or not self.n_ions:
            return 0.0
        fresh = self._potentials(np.arange(self.n_ions))
        drift = float(np.abs(fresh - self.phi).max())
        self.phi = fresh
        return drift

    def hop_energy_changes(self) -> np.ndarray:
        """Energy change (eV) of every allowed hop, NaN if blocked.

        Returns
        -------
        ndarray, shape (N, 6)
            Directions ``+x, -x, +y, -y, +z, -z``, as :meth:`Simulation.hop_energy_changes`.
        """
        de, free = self._energy_changes(self._protocol()[0])
        return np.where(free, de, np.nan)


class DirectSumNumpyKMC(NumpyKMC):
    """The most direct NumPy kMC: every event recomputes all potentials by direct summation.

    No incremental bookkeeping: after each hop the potential of every ion at its site and its
    six neighbours is summed again over all other ions (vectorised, O(7 N²) per event). This is
    what a first implementation of an exact many-body Coulomb kMC looks like; the benchmark
    reports the engine against it and against the incremental :class:`NumpyKMC`.
    """

    def _update_potentials(self, m: int, a: np.ndarray, b: np.ndarray) -> None:
        self.phi = self._potentials(np.arange(self.n_ions))
