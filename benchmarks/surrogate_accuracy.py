"""Held-out accuracy, calibration, physics and speed of the TFT surrogate on a sweep.

Trains on a sweep store (default: the demo sweep, examples/sweep_demo.yaml) with and without the
continuum covariate, same budget, several seeds; evaluates on the held-out points; times one full
prediction against the kMC ensemble of one held-out point.

    python benchmarks/surrogate_accuracy.py --sweep demo_store --budget 300 --seeds 0 1 2 --out acc.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from surrodyn.pipeline import continuum_fields
from surrodyn.surrogate import FieldData, Surrogate, TrainConfig, evaluate, prepare, train
from surrodyn.sweep import open_sweep


def latency(model: Surrogate, params: dict, fields: np.ndarray | None, repeats: int = 30) -> float:
    model.forward_arrays(params, fields=fields)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.forward_arrays(params, fields=fields)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def kmc_time(model: Surrogate, params: dict, replicas: int) -> float:
    from surrodyn.kmc.ensemble import run_ensemble

    cfg = model.configs(params)[0]
    t0 = time.perf_counter()
    run_ensemble(cfg, replicas, seed=1, workers=1)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--budget", type=float, default=300.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=["continuum", "plain"])
    ap.add_argument("--workdir", default="surrogate_runs")
    ap.add_argument("--kmc", action="store_true", help="also time the kMC ensemble of one held-out point")
    ap.add_argument("--out", default="surrogate_accuracy.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {"sweep": args.sweep, "budget_s": args.budget, "runs": []}
    for variant in args.variants:
        base = TrainConfig(sweep=args.sweep, continuum=variant == "continuum", budget_s=args.budget,
                           max_epochs=100_000, patience=10, progress=False)  # fmt: skip
        data, tr, va, te = prepare(base)
        for seed in args.seeds:
            cfg = TrainConfig(**{**base.__dict__, "seed": seed, "out": f"{args.workdir}/{variant}_s{seed}"})
            model = train(cfg, data, (tr, va, te))
            ev = evaluate(model, data.subset(te))
            print(f"--- {variant}, seed {seed}: {model.info['epochs']} epochs, "
                  f"{model.info['train_samples_per_s']} series/s\n{ev.format()}", flush=True)  # fmt: skip
            run = {"variant": variant, "seed": seed, "summary": ev.summary(),
                   "per_point": {k: ev.table[k].values.tolist() for k in ev.table.data_vars},
                   "points": ev.table["point"].values.tolist(), **{k: model.info[k] for k in
                   ("epochs", "train_seconds", "train_samples_per_s", "n_parameters", "best_val_loss")}}  # fmt: skip
            i = int(te[0])
            params = {p: data.values[p][i] for p in model.parameters}
            fields = data.fields[i : i + 1, 1:] if data.fields is not None else None
            run["latency_s"] = latency(model, params, fields)
            if data.fields is not None:
                t0 = time.perf_counter()
                continuum_fields(model, params)
                run["continuum_s"] = time.perf_counter() - t0
            results["runs"].append(run)
            Path(args.out).write_text(json.dumps(results, indent=1))
    if args.kmc:
        model = Surrogate.load(f"{args.workdir}/{args.variants[0]}_s{args.seeds[0]}")
        data = FieldData.from_sweep(open_sweep(args.sweep))
        i = int(te[0])
        params = {p: data.values[p][i] for p in model.parameters}
        results["kmc_point"] = {k: float(v) for k, v in params.items()}
        results["kmc_ensemble_s"] = kmc_time(model, params, data.target.shape[1])
        results["kmc_replicas"] = int(data.target.shape[1])
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
