"""Rates equal the rate law applied to the exact energy changes, on both update paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surrodyn.kmc import KMCConfig, Simulation
from surrodyn.units import thermal_energy_eV


def _expected_rates(sim: Simulation) -> np.ndarray:
    c = sim.config
    kt = thermal_energy_eV(c.temperature_K(sim.time_s))
    pref = c.attempt_frequency_Hz * math.exp(-c.activation_energy_eV / kt)
    de = sim.hop_energy_changes()
    if c.rate_rule == "symmetric":
        r = pref * np.exp(-de / (2 * kt))
    else:
        r = pref * np.minimum(1.0, np.exp(-de / kt))
    return np.where(np.isnan(de), 0.0, r)


@pytest.mark.parametrize("rule", ["symmetric", "metropolis"])
@pytest.mark.parametrize(
    ("permittivity", "spacing_nm", "tabulated"),
    [(10.0, 1.0, True), (1.0, 0.3, False)],  # moderate coupling: Boltzmann-factor table; extreme: exp
)
def test_rates_follow_the_rate_law_after_many_events(rule, permittivity, spacing_nm, tabulated):
    cfg = KMCConfig(
        nx=5,
        ny=5,
        nz=10,
        n_ions=30,
        permittivity=permittivity,
        spacing_nm=spacing_nm,
        voltage_V=0.2,
        disorder_eV=0.03,
        rate_rule=rule,
        recompute_interval=10**9,
        output_times_s=[1.0],
    )
    sim = Simulation(cfg, seed=7)
    sim.step(20_000)  # rate factors updated incrementally 20 000 times, never rebuilt
    assert sim._use_etab is tabulated
    sim.check_invariants()  # a finite clock, no NaN rate
    expected = _expected_rates(sim).ravel()
    got = sim.rates
    scale = expected.max()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * scale)
