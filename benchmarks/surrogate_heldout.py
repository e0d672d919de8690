"""Accuracy and calibration of trained surrogates on an independent held-out sweep.

The demo split holds out 8 of 32 points; coverage averaged over 8 points has a sampling spread
of a few hundredths between splits, comparable to the 77-83 % window. This benchmark evaluates
already-trained models (e.g. those of ``surrogate_accuracy.py``) on the demo sweep's own test
points *and* on a second sweep drawn independently over the same parameter box
(``examples/sweep_demo_heldout.yaml``: other Sobol points, other kMC seeds), and reports each set
and the pool of all held-out points (every point weighted equally).

    python benchmarks/surrogate_heldout.py --sweep demo_store --heldout demo_heldout_store \
        --models surrogate_runs/continuum_s0 surrogate_runs/plain_s0 --out heldout.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from surrodyn.surrogate import FieldData, Surrogate, evaluate
from surrodyn.sweep import open_sweep

KEYS = ("mae_median", "mae_mean", "noise_floor", "continuum_mae", "coverage_10_90", "continuation_mae", "steady_mae",
        "crossings")  # fmt: skip


def load(sweep: str, model: Surrogate) -> FieldData:
    return FieldData.from_sweep(
        open_sweep(sweep),
        parameters=model.parameters,
        known_names=model.config.known_names,
        continuum=bool(model.config.field_names),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True, help="the sweep the models were trained on")
    ap.add_argument("--heldout", required=True, help="an independent sweep over the same parameter box")
    ap.add_argument("--models", nargs="+", required=True, help="model directories")
    ap.add_argument("--out", default="surrogate_heldout.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results: dict = {"sweep": args.sweep, "heldout": args.heldout, "runs": []}
    for path in args.models:
        model = Surrogate.load(path)
        own = load(args.sweep, model)
        ids = list(own.point)
        test = own.subset(np.array([ids.index(p) for p in model.info["split"]["test"]]))
        fresh = load(args.heldout, model)
        tables = {"test": evaluate(model, test).table, "fresh": evaluate(model, fresh).table}
        run: dict = {"model": path, "band_scale": model.band_scale, "epochs": model.info.get("epochs")}
        for name, t in tables.items():
            run[name] = {k: float(t[k].mean()) for k in KEYS}
            run[name]["n_points"] = int(t.sizes["point"])
            run[name]["coverage_per_point"] = [round(float(v), 4) for v in t["coverage_10_90"].values]
        pooled = np.concatenate([tables["test"]["coverage_10_90"].values, tables["fresh"]["coverage_10_90"].values])
        mae = np.concatenate([tables["test"]["mae_median"].values, tables["fresh"]["mae_median"].values])
        run["pooled"] = {"n_points": int(pooled.size), "coverage_10_90": float(pooled.mean()),
                         "coverage_se": float(pooled.std(ddof=1) / np.sqrt(pooled.size)),
                         "mae_median": float(mae.mean())}  # fmt: skip
        print(f"{path}: test {run['test']['coverage_10_90']:.3f} ({run['test']['n_points']} pts), "
              f"fresh {run['fresh']['coverage_10_90']:.3f} ({run['fresh']['n_points']} pts), pooled "
              f"{run['pooled']['coverage_10_90']:.3f} ± {run['pooled']['coverage_se']:.3f}; MAE(median) test "
              f"{run['test']['mae_median']:.3f} fresh {run['fresh']['mae_median']:.3f} (floor "
              f"{run['fresh']['noise_floor']:.3f}, twin {run['fresh']['continuum_mae']:.3f})", flush=True)  # fmt: skip
        results["runs"].append(run)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
