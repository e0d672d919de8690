"""The built-in default story: small kMC sweep → train a TFT surrogate → predict an unseen point → figure.

``surrodyn surrogate demo`` (the README's main command) runs it. Every stage is resumable: the
sweep store keeps finished points, and a rerun retrains from the finished sweep.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEMO_SWEEP", "run_demo"]

#: The demo's sweep: 16 Sobol points over permittivity, concentration and voltage, 2 replicas,
#: the demo lattice (10 × 10 × 99 sites, 100 nm gap), 40 records from 0.1 µs to 100 µs.
DEMO_SWEEP: dict[str, Any] = {
    "name": "surrogate-demo",
    "seed": 7,
    "sampling": {"method": "sobol", "n_points": 16},
    "parameters": {
        "permittivity": {"min": 100, "max": 1400, "scale": "log"},
        "concentration_cm3": {"min": 3.0e18, "max": 1.0e19, "scale": "log"},
        "voltage_V": {"min": 0.05, "max": 2.0},
    },
    "kmc": {
        "base": {"nx": 10, "ny": 10, "nz": 99, "spacing_nm": 1.0, "temperature_K": 300.0},
        "replicas": 2,
        "output_times_s": {"kind": "log", "start": 1.0e-7, "stop": 1.0e-4, "num": 40},
    },
    "continuum": True,
    "store_replicas": True,
}


def run_demo(
    out: str | Path = "surrogate_demo",
    workers: int = 2,
    budget_s: float = 120.0,
    sweep: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole story and write everything under ``out``.

    Parameters
    ----------
    out : str or Path
        Output directory: ``sweep/`` (store), ``model/`` (trained surrogate),
        ``prediction.nc`` and ``prediction.png`` (an unseen point, surrogate vs kMC).
    workers : int
        Sweep worker processes.
    budget_s : float
        Training wall-clock budget.
    sweep : dict, optional
        Sweep spec replacing :data:`DEMO_SWEEP` (it must store replicas and the continuum).
    progress : bool
        Progress bars of the sweep and the training.

    Returns
    -------
    dict
        Held-out metrics and timings.
    """
    from .pipeline import predict
    from .plot.surrogate import plot_prediction
    from .surrogate import FieldData, TrainConfig, train
    from .sweep import open_sweep, run_sweep

    spec = DEMO_SWEEP if sweep is None else sweep
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n, r = spec["sampling"]["n_points"], spec["kmc"]["replicas"]
    print(f"[1/4] kMC sweep ({n} points, {r} replicas, continuum twin) -> {out / 'sweep'}")
    run_sweep(spec, out / "sweep", workers=workers, progress=progress)
    t_sweep = time.perf_counter() - t0
    print(f"[2/4] training the TFT surrogate (budget {budget_s:.0f} s) -> {out / 'model'}")
    cfg = TrainConfig(
        sweep=str(out / "sweep"), out=str(out / "model"), continuum=True, budget_s=budget_s, progress=progress
    )
    model = train(cfg)
    test_ids = model.info["split"]["test"]
    data = FieldData.from_sweep(open_sweep(out / "sweep"), continuum=True)
    i = data.point.tolist().index(test_ids[0])
    params = {p: data.values[p][i] for p in model.parameters}
    print(f"[3/4] predicting held-out point {test_ids[0]}: " + ", ".join(f"{k}={v:.4g}" for k, v in params.items()))
    t1 = time.perf_counter()
    pred = predict(model, params)
    t_pred = time.perf_counter() - t1
    from .data.io import write_dataset

    write_dataset(pred, out / "prediction.nc")
    print("[4/4] figure: kMC (top) vs surrogate (middle), profiles with the replica range and the 10-90 % band")
    png = plot_prediction(pred, out / "prediction.png", kmc_replicas=data.target[i, :, 1:])
    m = model.info["metrics"]
    print(
        f"done in {time.perf_counter() - t0:.0f} s (sweep {t_sweep:.0f} s, "
        f"training {model.info['train_seconds']:.0f} s, "
        f"prediction {t_pred * 1e3:.0f} ms incl. the continuum twin)\n"
        f"held-out points {test_ids}: MAE(median) {m['mae_median']:.3f} (bulk = 1), "
        f"10-90 % coverage {m['coverage_10_90']:.2f}, crossings {m['crossings']}\n"
        f"wrote {out / 'prediction.nc'} and {png}"
    )
    return {"metrics": m, "sweep_s": t_sweep, "predict_s": t_pred, "max_density": float(np.max(pred["density_mean"]))}
