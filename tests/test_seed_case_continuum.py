"""The seed case (εr = 100, 3e18 cm⁻³, 0.5 V, 300 K, 100 nm; Γ_p = 0.13): the kMC's steady state
agrees with its continuum twin to 10% in the accumulation excess, both depletion widths and the
electrode charge. Both sides are computed here: an 8-replica kMC ensemble (about 2 minutes on 2
cores) and ``solve_mpnp`` on the same layers and output times.

The steady state is the window of records over the last decade (10-100 µs); the test first
checks that the kMC is stationary there (the halves of the window agree within 3 SE) and that the
continuum's last record is its canonical steady state.
"""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.continuum import solve_mpnp, steady_state
from surrodyn.kmc import run_ensemble, seed_case_config
from surrodyn.kmc.observables import space_charge_layers

LAYER_KEYS = ("accumulation_excess_m2", "depletion_width_m", "half_depletion_width_m")


@pytest.mark.slow
def test_seed_case_steady_state_agrees_with_continuum():
    cfg = seed_case_config()
    ds = run_ensemble(cfg, replicas=8, seed=1, workers=2)
    cont = solve_mpnp(cfg)
    ss = steady_state(cfg)
    times = ds["time"].values
    assert np.allclose(cont["time"].values, times) and np.allclose(cont["z"].values, ds["z"].values)

    # the continuum has reached its canonical steady state at the last record
    n_cont = cont["occupancy"].values[-1]
    assert np.abs(n_cont - ss.occupancy).max() < 1e-6 * cfg.filling

    # the kMC is stationary over the last decade: the halves of the window agree (paired over replicas)
    win = np.nonzero(times >= times[-1] / 10 * (1 - 1e-9))[0]
    assert win.size >= 10
    mid = win[0] + win.size // 2
    q = ds["electrode_charge"].transpose("replica", "time").values
    dq = q[:, mid:].mean(axis=1) - q[:, win[0] : mid].mean(axis=1)
    assert abs(dq.mean()) < 3 * dq.std(ddof=1) / np.sqrt(dq.size)

    # steady state: per-replica averages over the window, numbers of the replica-mean profile
    occ = ds["occupancy"].isel(time=slice(int(win[0]), None)).mean("time").transpose("replica", "z").values
    kmc = space_charge_layers(occ.mean(axis=0), ds["z"].values, cfg.filling, cfg.spacing_m, cfg.gap_m)
    ref = space_charge_layers(n_cont, cont["z"].values, cfg.filling, cfg.spacing_m, cfg.gap_m)
    rel = {k: float(kmc[k] / ref[k] - 1) for k in LAYER_KEYS}
    rel["electrode_charge"] = float(q[:, win[0] :].mean() / cont["electrode_charge"].values[-1] - 1)
    # the last record alone (a noisier estimate) for the electrode charge
    rel["electrode_charge_last"] = float(q[:, -1].mean() / cont["electrode_charge"].values[-1] - 1)
    print("kMC / continuum - 1:", {k: f"{v:+.1%}" for k, v in rel.items()})
    for key, value in rel.items():
        assert abs(value) < 0.10, f"{key}: kMC differs from the continuum by {value:+.1%}"
    # a non-trivial layer: the numbers compared are far from their zero-voltage values
    assert ref["accumulation_excess_m2"] > 0.3 * cfg.filling / cfg.spacing_m**2 * cfg.nz
    assert ref["half_depletion_width_m"] > 0.2 * cfg.gap_m
