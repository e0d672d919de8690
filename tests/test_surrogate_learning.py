"""The surrogate learns the kMC: a small real sweep, held-out points, physics-based baselines (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.surrogate import FieldData, TrainConfig, evaluate, prepare, train
from surrodyn.sweep import run_sweep

SWEEP = {
    "name": "learning",
    "seed": 3,
    "sampling": {"method": "sobol", "n_points": 16},
    "parameters": {
        "permittivity": {"min": 100, "max": 1400, "scale": "log"},
        "voltage_V": {"min": 0.05, "max": 2.0},
    },
    "kmc": {
        "base": {"nx": 10, "ny": 10, "nz": 49, "concentration_cm3": 1e19, "record_xz": False},
        "replicas": 4,
        "output_times_s": {"kind": "log", "start": 1e-8, "stop": 3e-5, "num": 25},
    },
    "continuum": True,
    "store_replicas": True,
}


@pytest.mark.slow
def test_surrogate_beats_baselines_on_held_out_points(tmp_path):
    """Held-out: the mean beats the uniform initial state, the quantile band is calibrated, N is conserved."""
    run_sweep(SWEEP, tmp_path / "sweep", workers=2, progress=False)
    cfg = TrainConfig(sweep=str(tmp_path / "sweep"), out=str(tmp_path / "m"), continuum=True, budget_s=120,
                      progress=False, test_fraction=0.25, val_fraction=0.2)  # fmt: skip
    data, tr, va, te = prepare(cfg)
    model = train(cfg, data, (tr, va, te))
    test: FieldData = data.subset(te)
    ev = evaluate(model, test).summary()
    uniform = float(np.mean(np.abs(1.0 - test.mean[:, 1:])))  # "nothing happens" baseline
    print(f"held-out: {ev}; uniform-state baseline MAE {uniform:.4f}")
    assert ev["mae_mean"] < 0.6 * uniform
    assert ev["mae_mean"] < ev["noise_floor"] * 1.5  # within 50 % of what 4 replicas can resolve
    assert 0.7 <= ev["coverage_10_90"] <= 0.9 and ev["crossings"] == 0
    assert ev["conservation_max"] < 1e-5
