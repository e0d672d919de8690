"""Our field TFT against the anchors' TFTs: same sweep, same split, same wall-clock budget, 3 seeds.

Anchors: pytorch-forecasting's TemporalFusionTransformer (one series per z-bin, and multi-target)
and darts' TFTModel (multivariate). The task is the original work's: given the first 5 kMC
records of a held-out point (replica mean), forecast the remaining 45 records of the profile with
the 10/50/90 % quantiles. Our model is trained without the continuum covariate here (the anchors
do not get it). Run it in the benchmark venv (benchmarks/anchors/install.sh), which holds the
anchors and our package on the same torch 2.13.0:

    /work/benchvenv/bin/python benchmarks/tft_vs_anchors.py --sweep demo_store --budget 240 --seeds 0 1 2

Metrics (bulk-normalised density; forecast records only):
- MAE of the median vs the kMC ensemble mean; sMAPE of the median;
- coverage of the dequantised replica values by the 10-90 % band (surrodyn.surrogate.band_coverage);
- crossing rate: fraction of (record, bin) with q10 > q50 or q50 > q90;
- training throughput in field windows per second (one (point, replica) window over all bins;
  a per-bin layout counts n_z of its samples as one);
- latency of one full prediction (one point, all bins), median of repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "anchors"))

from task import task_from_sweep

from surrodyn.surrogate import FieldData, TrainConfig, band_coverage, smape, split_points, train
from surrodyn.sweep import open_sweep

LEVELS = (0.1, 0.5, 0.9)


def score(quant: np.ndarray, y: np.ndarray, unit: np.ndarray, n_enc: int) -> dict:
    """quant (P, 3, T_dec, Z); y (P, R, T, Z) replicas; unit (P,) one ion in normalised units."""
    ref = y[:, :, n_enc:].mean(1)
    reps = y[:, :, n_enc:]
    med = quant[:, 1]
    cov = band_coverage(quant[:, None, 0], quant[:, None, 2], reps, unit[:, None, None, None])
    crossing = np.mean((quant[:, 0] > quant[:, 1]) | (quant[:, 1] > quant[:, 2]))
    return {
        "mae_median": float(np.mean(np.abs(med - ref))),
        "smape": float(np.mean([smape(med[p], ref[p]) for p in range(len(med))])),
        "coverage_10_90": float(cov.mean()),
        "crossing_rate": float(crossing),
    }


def ours(sweep: str, data: FieldData, split, budget: float, seed: int, workdir: str, n_enc: int) -> dict:
    tr, va, te = split
    cfg = TrainConfig(sweep=sweep, out=f"{workdir}/ours_s{seed}", budget_s=budget, max_epochs=100_000,
                      patience=10_000, progress=False, seed=seed, context_frames=n_enc,
                      batch_size=64, model={"quantiles": LEVELS})  # fmt: skip
    t0 = time.perf_counter()
    model = train(cfg, data, (tr, va, te))
    seconds = time.perf_counter() - t0
    test = data.subset(te)
    params = {p: test.values[p] for p in model.parameters}
    observed = test.target[:, :, 1 : n_enc + 1].mean(1)  # replica mean of the first n_enc records
    quant, _, _ = model.forward_arrays(params, observed=observed)
    one = {p: test.values[p][:1] for p in model.parameters}
    model.forward_arrays(one, observed=observed[:1])
    lat = []
    for _ in range(20):
        t1 = time.perf_counter()
        model.forward_arrays(one, observed=observed[:1])
        lat.append(time.perf_counter() - t1)
    return {
        "quantiles": quant[:, :, n_enc:],
        "train_samples": model.info["train_samples_per_s"] * model.info["train_seconds"],
        "train_seconds": seconds,
        "epochs": model.info["epochs"],
        "latency_s": float(np.median(lat)),
        "n_parameters": model.info["n_parameters"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--budget", type=float, default=240.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["ours", "pf_per_bin", "pf_multi_target", "darts"])
    ap.add_argument("--workdir", default="anchor_runs")
    ap.add_argument("--out", default="tft_vs_anchors.json")
    args = ap.parse_args()
    n_enc = 5
    ds = open_sweep(args.sweep)
    data = FieldData.from_sweep(ds)
    tr, va, te = split_points(data.n_points, seed=0)
    train_ids = np.sort(data.point[np.concatenate([tr, va])])
    test_ids = data.point[te]
    train_task = task_from_sweep(ds, train_ids, n_encoder=n_enc)
    test_task = task_from_sweep(ds, test_ids, n_encoder=n_enc)
    unit = data.subset(te).count_unit
    results = {"sweep": args.sweep, "budget_s": args.budget, "test_points": test_ids.tolist(), "runs": []}
    try:
        import darts
        import lightning
        import pytorch_forecasting
        import torch

        results["versions"] = {"torch": torch.__version__, "lightning": lightning.__version__,
                               "pytorch_forecasting": pytorch_forecasting.__version__,
                               "darts": darts.__version__}  # fmt: skip
    except ImportError as err:
        results["versions"] = {"error": str(err)}
    for seed in args.seeds:
        for name in args.models:
            t0 = time.perf_counter()
            try:
                if name == "ours":
                    out = ours(args.sweep, data, (tr, va, te), args.budget, seed, args.workdir, n_enc)
                elif name.startswith("pf_"):
                    import pf_adapter

                    out = pf_adapter.fit_predict(train_task, test_task, budget_s=args.budget, seed=seed,
                                                 layout=name.removeprefix("pf_"))  # fmt: skip
                else:
                    import darts_adapter

                    out = darts_adapter.fit_predict(train_task, test_task, budget_s=args.budget, seed=seed,
                                                    layout="multivariate")  # fmt: skip
            except Exception as err:  # record the failure, go on with the others
                results["runs"].append({"model": name, "seed": seed, "error": f"{type(err).__name__}: {err}"})
                print(f"{name} seed {seed}: FAILED {type(err).__name__}: {err}", flush=True)
                continue
            quant = np.asarray(out["quantiles"], dtype=float)
            run = {
                "model": name,
                "seed": seed,
                "wall_s": time.perf_counter() - t0,
                **score(quant, test_task.y, unit, n_enc),
            }
            run["train_samples_per_s"] = float(out["train_samples"]) / float(out["train_seconds"])
            for key in ("latency_s", "epochs", "n_parameters", "train_seconds"):
                run[key] = out.get(key)
            print(json.dumps(run), flush=True)
            results["runs"].append(run)
            Path(args.out).write_text(json.dumps(results, indent=1))
    table = {}
    for name in args.models:
        rows = [r for r in results["runs"] if r["model"] == name and "error" not in r]
        if rows:
            table[name] = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
                           for k in ("mae_median", "smape", "coverage_10_90", "crossing_rate",
                                     "train_samples_per_s", "latency_s")}  # fmt: skip
    results["summary"] = table
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
