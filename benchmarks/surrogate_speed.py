"""Speed of the surrogate against the kMC ensemble it replaces, for one held-out point.

    python benchmarks/surrogate_speed.py --model MODEL_DIR --sweep demo_store --out speed.json

Times (one core, torch and numba single-threaded): the kMC ensemble of the point (the sweep's
replica count, 1 worker); one full prediction from parameters alone (covariates, network, back
transform), with the continuum twin's solve counted separately when the model uses it; and the
per-point cost of a batch of 1024 parameter sets.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from surrodyn.kmc.ensemble import run_ensemble
from surrodyn.pipeline import continuum_fields
from surrodyn.surrogate import FieldData, Surrogate
from surrodyn.sweep import open_sweep


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--out", default="surrogate_speed.json")
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    torch.set_num_threads(1)
    model = Surrogate.load(args.model)
    data = FieldData.from_sweep(open_sweep(args.sweep), parameters=model.parameters)
    pid = model.info["split"]["test"][0]
    i = data.point.tolist().index(pid)
    params = {p: float(data.values[p][i]) for p in model.parameters}
    uses_twin = bool(model.config.field_names)
    fields = continuum_fields(model, params) if uses_twin else None
    res = {"model": args.model, "point": pid, "params": params, "replicas": int(data.target.shape[1])}
    res["predict_s"] = median_time(lambda: model.forward_arrays(params, fields=fields), 50)
    if uses_twin:
        res["continuum_twin_s"] = median_time(lambda: continuum_fields(model, params), 5)
    rng = np.random.default_rng(0)
    batch = {p: rng.uniform(data.values[p].min(), data.values[p].max(), 1024) for p in model.parameters}
    bf = np.repeat(fields, 1024, 0) if uses_twin else None
    res["batch_1024_s"] = median_time(lambda: model.forward_arrays(batch, fields=bf), 3)
    cfg = model.configs(params)[0]
    t0 = time.perf_counter()
    run_ensemble(cfg, res["replicas"], seed=11, workers=1)
    res["kmc_ensemble_s"] = time.perf_counter() - t0
    res["ratio_network"] = res["kmc_ensemble_s"] / res["predict_s"]
    if uses_twin:
        res["ratio_with_twin"] = res["kmc_ensemble_s"] / (res["predict_s"] + res["continuum_twin_s"])
    res["ratio_batched_per_point"] = res["kmc_ensemble_s"] / (res["batch_1024_s"] / 1024)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
