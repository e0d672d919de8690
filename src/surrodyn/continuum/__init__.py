"""The continuum twin: modified Poisson–Nernst–Planck dynamics, canonical steady state, formulas.

See ``docs/continuum.md`` for the equations and the validation against the kMC.
"""

from .analytic import (
    VoltageSplit,
    bjerrum_length_m,
    charging_times_s,
    coupling_parameter,
    debye_length_m,
    double_layer_function,
    mott_schottky_width_m,
    rc_time_s,
    surface_charge_C_m2,
    voltage_split,
)
from .mpnp import CONTACTS, LatticeGrid, SteadyState, mpnp_rhs, solve_mpnp, steady_state

__all__ = [
    "CONTACTS",
    "LatticeGrid",
    "SteadyState",
    "VoltageSplit",
    "bjerrum_length_m",
    "charging_times_s",
    "coupling_parameter",
    "debye_length_m",
    "double_layer_function",
    "mott_schottky_width_m",
    "mpnp_rhs",
    "rc_time_s",
    "solve_mpnp",
    "steady_state",
    "surface_charge_C_m2",
    "voltage_split",
]
