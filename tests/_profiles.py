"""Layer profiles of kMC replicas and Metropolis chains, shared by the equilibrium tests."""

from __future__ import annotations

import numpy as np

from surrodyn.kmc import KMCConfig, Simulation, metropolis_layer_profile


def kmc_profiles(cfg: KMCConfig, seeds, t_equilibrate: float, n_out: int, dt: float = 1.0) -> np.ndarray:
    """Time-averaged layer occupancy of each replica (equally spaced times after equilibration)."""
    out = []
    for seed in seeds:
        sim = Simulation(cfg, seed=seed)
        sim.advance_to(t_equilibrate)
        acc = np.zeros(cfg.nz)
        for k in range(1, n_out + 1):
            sim.advance_to(t_equilibrate + k * dt)
            acc += sim.layer_counts()
        out.append(acc / (n_out * cfg.nx * cfg.ny))
    return np.array(out)


def mc_profiles(cfg: KMCConfig, seeds, n_sweeps: int, n_equilibrate: int = 1000) -> np.ndarray:
    """Chain-averaged layer occupancy of independent Metropolis chains."""
    return np.array(
        [metropolis_layer_profile(cfg, n_sweeps, seed=s, n_equilibrate=n_equilibrate).mean_occupancy for s in seeds]
    )
