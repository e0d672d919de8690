"""Validation 2: the incremental energy bookkeeping equals brute-force total energies."""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.kmc import KMCConfig, Simulation
from surrodyn.kmc.kernels import DIRS
from surrodyn.kmc.reference import total_energy_eV
from surrodyn.units import thermal_energy_eV


def _moved(cfg, pos, i, k):
    new = pos.copy()
    new[i] = new[i] + DIRS[k]
    new[i, 0] %= cfg.nx
    new[i, 1] %= cfg.ny
    return new


@pytest.mark.parametrize("self_image", [True, False])
@pytest.mark.parametrize("rule", ["symmetric", "metropolis"])
def test_incremental_delta_e_equals_brute_force(small_config, self_image, rule):
    cfg = small_config.replace(self_image=self_image, rate_rule=rule)
    kt = thermal_energy_eV(300.0)
    sim = Simulation(cfg, seed=11)
    rng = np.random.default_rng(5)
    worst = 0.0
    n_wall = 0
    for _ in range(60):
        de = sim.hop_energy_changes()
        u0 = total_energy_eV(cfg, sim.table, sim.pos, 0.3, sim.disorder)
        allowed = np.argwhere(~np.isnan(de))
        for i, k in allowed[rng.choice(len(allowed), size=4, replace=False)]:
            u1 = total_energy_eV(cfg, sim.table, _moved(cfg, sim.pos, i, k), 0.3, sim.disorder)
            worst = max(worst, abs((u1 - u0) - de[i, k]) / kt)
            n_wall += sim.pos[i, 2] in (0, cfg.nz - 1)
        sim.step(7)  # the kept potentials are now incremental, not freshly computed
    assert n_wall > 20, "the check must include hops next to the electrodes"
    assert worst <= 1e-10


def test_blocked_hops_are_exactly_the_occupied_or_electrode_ones(small_config):
    sim = Simulation(small_config, seed=2)
    sim.step(50)
    de = sim.hop_energy_changes()
    occupied = {tuple(p) for p in sim.pos}
    for i, p in enumerate(sim.pos):
        for k, d in enumerate(DIRS):
            q = p + d
            q[0] %= small_config.nx
            q[1] %= small_config.ny
            blocked = not (0 <= q[2] < small_config.nz) or tuple(q) in occupied
            assert np.isnan(de[i, k]) == blocked


def test_drift_after_1e5_events_is_below_1e_9():
    cfg = KMCConfig(
        nx=8,
        ny=8,
        nz=20,
        n_ions=60,
        permittivity=10.0,
        voltage_V=0.2,
        disorder_eV=0.02,
        recompute_interval=10**9,
        output_times_s=[1.0],
    )
    sim = Simulation(cfg, seed=4)
    sim.step(100_000)
    assert sim.events == 100_000
    drift_eV = sim.recompute()
    assert drift_eV / thermal_energy_eV(300.0) <= 1e-9
