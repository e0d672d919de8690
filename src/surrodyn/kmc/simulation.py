"""The :class:`Simulation` driver: one kMC replica, in the style of ASE dynamics.

The driver owns the state arrays and the protocol bookkeeping; the numba kernels in
:mod:`surrodyn.kmc.kernels` do the events. Voltage and temperature breakpoints stop the kernel
and restart it with the new values, which is exact because waiting times are memoryless.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ConfigError, param_error
from ..units import thermal_energy_eV
from . import kernels
from .config import KMCConfig, output_grid
from .green import GreenTable, parallel_plate_green
from .rng import seed_state

__all__ = ["Frame", "Simulation", "green_table", "static_site_energies"]

_RULES = {"symmetric": kernels.SYMMETRIC, "metropolis": kernels.METROPOLIS}


@lru_cache(maxsize=8)
def green_table(nx: int, ny: int, nz: int) -> GreenTable:
    """Return the (cached) Green's table of a lattice shape."""
    return GreenTable(nx, ny, nz)


@dataclass(frozen=True)
class Frame:
    """One record of a replica.

    Attributes
    ----------
    time_s : float
        Record time.
    layer_counts : ndarray of int, shape (nz,)
        Ions per layer.
    xz_counts : ndarray of int, shape (nx, nz), or None
        Ions per (x, z) column summed over y, when ``record_xz``.
    events : int
        Events since t = 0.
    net_z_hops : int
        Cumulative +z minus -z hops since t = 0.
    voltage_V, temperature_K : float
        Protocol values at ``time_s``.
    """

    time_s: float
    layer_counts: np.ndarray
    xz_counts: np.ndarray | None
    events: int
    net_z_hops: int
    voltage_V: float
    temperature_K: float


def static_site_energies(config: KMCConfig, table: GreenTable, disorder: np.ndarray | None) -> np.ndarray:
    """Time-independent part of each site's energy in eV: disorder, background, self-image.

    Parameters
    ----------
    config : KMCConfig
        The system.
    table : GreenTable
        Green's function of its lattice.
    disorder : ndarray, shape (n_sites,), or None
        Gaussian site energies (eV) in site order ``(x*ny + y)*nz + z``.

    Returns
    -------
    ndarray, shape (n_sites,)
        ``eps_s + [-theta0 e/(eps a) sum_z' g_pp(z, z')] + [-(1/2) e/(eps a) Gp(0, 0, 2z+2)]``;
        the bracketed terms only with Coulomb on (the last only with ``self_image``).
    """
    nz = config.nz
    e = np.zeros(config.n_sites) if disorder is None else np.array(disorder, dtype=float)
    if config.coulomb:
        per_layer = -config.filling * config.coulomb_scale_V * parallel_plate_green(nz).sum(axis=1)
        if config.self_image:
            z = np.arange(nz)
            per_layer = per_layer - 0.5 * config.coulomb_scale_V * table.periodic[0, 0, (2 * z + 2) % table.period]
        e += np.tile(per_layer, config.nx * config.ny)
    return e


class Simulation:
    """One replica of the lattice kMC.

    Parameters
    ----------
    config : KMCConfig
        The system and protocol.
    seed : int or numpy.random.SeedSequence, optional
        Seed of this replica; the disorder, the initial placement and the event stream are
        drawn from three children of it. Identical seeds give identical trajectories.
    positions : array_like of int, shape (N, 3), optional
        Initial (x, y, z) of the ions instead of a uniform random placement.

    Examples
    --------
    >>> from surrodyn.kmc import KMCConfig, Simulation
    >>> cfg = KMCConfig(nx=6, ny=6, nz=20, n_ions=20, output_times_s=[1e-7, 1e-6])
    >>> sim = Simulation(cfg, seed=1)
    >>> ds = sim.run()
    >>> ds.sizes["time"]
    2
    """

    def __init__(
        self,
        config: KMCConfig,
        seed: int | np.random.SeedSequence | None = 0,
        positions: np.ndarray | Sequence[Sequence[int]] | None = None,
    ) -> None:
        if not isinstance(config, KMCConfig):
            raise TypeError(f"config must be a KMCConfig, got {type(config).__name__}.")
        self.config = config
        self.seed_sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        ss_disorder, ss_place, ss_kernel = self.seed_sequence.spawn(3)
        c = config
        self.table = green_table(c.nx, c.ny, c.nz)
        # the kernels read the folded table scaled to eV, interleaved with its Boltzmann factors
        folded = self.table.folded.ravel() * c.coulomb_scale_V
        self._tge = np.empty(2 * folded.size)
        self._tge[0::2] = folded
        self._tge_kt = math.nan
        self._use_etab = False
        n = c.n_ions_resolved

        disorder = None
        if c.disorder_eV > 0:
            disorder = c.disorder_eV * np.random.default_rng(ss_disorder).standard_normal(c.n_sites)
        self.disorder = disorder
        self.site_energy = static_site_energies(c, self.table, disorder)

        if positions is None:
            sites = np.random.default_rng(ss_place).choice(c.n_sites, size=n, replace=False)
            pos = np.stack(np.unravel_index(np.sort(sites), (c.nx, c.ny, c.nz)), axis=1)
        else:
            pos = np.asarray(positions)
            if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != n:
                raise param_error("positions", f"array of shape {pos.shape}", f"an integer array of shape ({n}, 3)")
        self.pos = np.ascontiguousarray(pos, dtype=np.int32)
        self.initial_pos = self.pos.copy()
        self.occ = np.empty(c.n_sites, dtype=np.int32)
        if not kernels.place(self.occ, self.pos, c.nx, c.ny, c.nz):
            raise param_error("positions", "given array", "distinct sites inside the lattice, one ion per site")
        self.disp = np.zeros((n, 3), dtype=np.int64)
        self.phi = np.zeros((n, 7))
        self.free = np.zeros((n, 6))
        self.dstat = np.zeros((n, 6))
        self.hf = np.zeros((n, 6))
        self.rates = np.zeros(6 * n)
        self.ion_rate = np.zeros(n)
        for i in range(n):
            kernels.setup_neighbours(i, self.pos, self.occ, self.site_energy, self.free, self.dstat, c.nx, c.ny, c.nz)
        self.counters = np.zeros(4, dtype=np.int64)
        self.rng_state = seed_state(ss_kernel)
        self.time_s = 0.0
        if c.coulomb:
            kernels.full_recompute(self.pos, self.phi, self._tge, c.nx, c.ny, c.nz)
        self._observers: list[tuple[Callable[..., Any], int, tuple, dict]] = []
        self.n_records = 0

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        """Leave the context: detach the observers; check the state if no error occurred."""
        self._observers.clear()
        if exc[0] is None:
            self.check_invariants()

    # ------------------------------------------------------------------ properties
    @property
    def n_ions(self) -> int:
        """Number of mobile ions."""
        return self.pos.shape[0]

    @property
    def events(self) -> int:
        """Events done since t = 0."""
        return int(self.counters[0])

    @property
    def net_z_hops(self) -> int:
        """Cumulative +z minus -z hops."""
        return int(self.counters[1])

    def layer_counts(self) -> np.ndarray:
        """Return the number of ions in each layer, shape (nz,)."""
        return np.bincount(self.pos[:, 2], minlength=self.config.nz)

    def xz_counts(self) -> np.ndarray:
        """Return the number of ions per (x, z) column summed over y, shape (nx, nz)."""
        c = self.config
        return np.bincount(self.pos[:, 0] * c.nz + self.pos[:, 2], minlength=c.nx * c.nz).reshape(c.nx, c.nz)

    # ------------------------------------------------------------------ observers
    def attach(self, observer: Callable[..., Any], interval: int = 1, *args: Any, **kwargs: Any) -> None:
        """Call ``observer(frame, *args, **kwargs)`` at every ``interval``-th record.

        Parameters
        ----------
        observer : callable
            Receives the :class:`Frame` just recorded.
        interval : int
            Call at records ``interval, 2·interval, ...`` (counted from 1).
        """
        if int(interval) < 1:
            raise param_error("interval", interval, "an integer >= 1")
        self._observers.append((observer, int(interval), args, kwargs))

    # ------------------------------------------------------------------ time stepping
    def _kernel(self, t_stop: float, max_events: int) -> int:
        c = self.config
        v = c.voltage_V(self.time_s)
        temp = c.temperature_K(self.time_s)
        kt = thermal_energy_eV(temp)
        pref = c.attempt_frequency_Hz * math.exp(-c.activation_energy_eV / kt)
        before = self.counters[0]
        if c.coulomb and kt != self._tge_kt:
            self._set_boltzmann_factors(kt)
        self.time_s, _status = kernels.advance(
            self.time_s, t_stop, max_events,
            self.pos, self.occ, self.disp, self.phi, self.free, self.dstat, self.hf, self.site_energy,
            self.rates, self.ion_rate, self.counters, self.rng_state, self._tge, c.nx, c.ny, c.nz,
            v, kt, pref, _RULES[c.rate_rule], c.coulomb, self._use_etab, c.recompute_interval,
        )  # fmt: skip
        return int(self.counters[0] - before)

    def _set_boltzmann_factors(self, kt: float) -> None:
        """Fill the table's Boltzmann factors exp(-G/2kT) for this temperature."""
        g = self._tge[0::2]
        # an update multiplies and divides up to eight factors e^{±G/2kT}: with |G|/2kT < 80 no
        # intermediate product leaves e^{±640}; beyond that, exponentials of the whole dE are used
        self._use_etab = bool(np.abs(g).max(initial=0.0) * 0.5 / kt < 80.0)
        self._tge[1::2] = np.exp(-0.5 / kt * g) if self._use_etab else 1.0
        self._tge_kt = kt

    def _next_break(self) -> float:
        c = self.config
        return min(c.voltage_V.next_breakpoint(self.time_s), c.temperature_K.next_breakpoint(self.time_s))

    def advance_to(self, time_s: float) -> None:
        """Run events until ``time_s``, stopping at every protocol breakpoint on the way."""
        if time_s < self.time_s:
            raise param_error("time_s", time_s, f"a time >= the current time {self.time_s!r} s")
        while self.time_s < time_s:
            stop = min(time_s, self._next_break())
            self._kernel(stop, np.iinfo(np.int64).max)

    def step(self, n_events: int) -> None:
        """Do exactly ``n_events`` events (honouring protocol breakpoints on the way)."""
        left = int(n_events)
        while left > 0:
            brk = self._next_break()
            if not np.any(self.free):
                raise RuntimeError("no hop is possible: every ion is blocked (the lattice is full)")
            left -= self._kernel(brk, left)

    def record(self) -> Frame:
        """Record a :class:`Frame` at the current time and call the due observers."""
        c = self.config
        frame = Frame(
            time_s=self.time_s,
            layer_counts=self.layer_counts(),
            xz_counts=self.xz_counts() if c.record_xz else None,
            events=self.events,
            net_z_hops=self.net_z_hops,
            voltage_V=c.voltage_V(self.time_s),
            temperature_K=c.temperature_K(self.time_s),
        )
        self.n_records += 1
        for obs, interval, args, kwargs in self._observers:
            if self.n_records % interval == 0:
                obs(frame, *args, **kwargs)
        return frame

    def irun(self, times_s: Sequence[float] | None = None) -> Iterator[Frame]:
        """Advance through the output times, yielding a :class:`Frame` at each.

        Parameters
        ----------
        times_s : sequence of float, optional
            Output times (default: ``config.output_times_s``); must not lie before the current
            time.
        """
        times = self.config.output_times_s if times_s is None else output_grid(times_s, "times_s")
        if times[0] < self.time_s:
            raise ConfigError(f"times_s starts at {times[0]!r} s, before the current time {self.time_s!r} s.")
        for t in times:
            self.advance_to(t)
            yield self.record()
        self.check_invariants()

    def run(self, times_s: Sequence[float] | None = None) -> Any:
        """Run through the output times and return this replica as an xarray Dataset.

        Returns
        -------
        xarray.Dataset
            Dims ``replica`` (length 1), ``time``, ``z``; see :func:`surrodyn.data.kmc_dataset`.
        """
        from ..data import kmc_dataset

        frames = list(self.irun(times_s))
        return kmc_dataset([frames], self.config, seeds=[_seed_repr(self.seed_sequence)])

    # ------------------------------------------------------------------ checks
    def check_invariants(self) -> None:
        """Check the state: ions conserved, one ion per site, inside the slab, tracers consistent.

        Cheap (O(N + n_sites)); run after every :meth:`irun`.

        Raises
        ------
        RuntimeError
            Describing the first broken invariant (a bug, never a user error).
        """
        c = self.config
        pos = self.pos
        if not math.isfinite(self.time_s) or np.isnan(self.rates).any():
            raise RuntimeError(f"the clock ({self.time_s!r} s) or a rate is not a number")
        if pos.shape[0] != c.n_ions_resolved:
            raise RuntimeError(f"ion number changed: {pos.shape[0]} != {c.n_ions_resolved}")
        if pos[:, 2].min(initial=0) < 0 or pos[:, 2].max(initial=0) >= c.nz:
            raise RuntimeError("an ion left the slab (hopped into an electrode)")
        sites = (pos[:, 0] * c.ny + pos[:, 1]) * c.nz + pos[:, 2]
        if np.unique(sites).size != sites.size:
            raise RuntimeError("two ions share a site")
        if np.count_nonzero(self.occ >= 0) != sites.size or np.any(self.occ[sites] != np.arange(sites.size)):
            raise RuntimeError("the occupancy map disagrees with the ion positions")
        moved = self.initial_pos.astype(np.int64) + self.disp
        if (
            np.any(moved[:, 2] != pos[:, 2])
            or np.any(moved[:, 0] % c.nx != pos[:, 0])
            or np.any(moved[:, 1] % c.ny != pos[:, 1])
        ):
            raise RuntimeError("tracer displacements disagree with the positions")

    def hop_energy_changes(self) -> np.ndarray:
        """Energy change (eV) of every allowed hop from the kept potentials, NaN if blocked.

        Returns
        -------
        ndarray, shape (N, 6)
            Directions ``+x, -x, +y, -y, +z, -z``.
        """
        c = self.config
        return kernels.hop_energies(
            self.pos, self.phi, self.free, self.dstat, c.nz, c.voltage_V(self.time_s), c.coulomb
        )

    def recompute(self) -> float:
        """Recompute the kept potentials from scratch; return the largest drift found (eV)."""
        c = self.config
        if not c.coulomb:
            return 0.0
        fresh = np.zeros_like(self.phi)
        kernels.full_recompute(self.pos, fresh, self._tge, c.nx, c.ny, c.nz)
        drift = float(np.abs(fresh - self.phi).max()) if self.n_ions else 0.0
        self.phi[:] = fresh
        self.counters[2] = 0
        return drift


def _seed_repr(ss: np.random.SeedSequence) -> str:
    return f"entropy={ss.entropy} spawn_key={tuple(ss.spawn_key)}"
