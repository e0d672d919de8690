"""Lattice kinetic Monte Carlo of mobile ions between blocking electrodes.

See ``docs/kmc.md`` for the model and its equations.
"""

from .config import RATE_RULES, KMCConfig, output_grid, seed_case_config
from .ensemble import replica_seeds, run_ensemble, run_replica
from .green import GreenTable, parallel_plate_green, periodic_green
from .metropolis import MetropolisResult, metropolis_layer_profile, single_site_energies
from .simulation import Frame, Simulation, static_site_energies

__all__ = [
    "RATE_RULES",
    "Frame",
    "GreenTable",
    "KMCConfig",
    "MetropolisResult",
    "Simulation",
    "metropolis_layer_profile",
    "output_grid",
    "parallel_plate_green",
    "periodic_green",
    "replica_seeds",
    "run_ensemble",
    "run_replica",
    "seed_case_config",
    "single_site_energies",
    "static_site_energies",
]
