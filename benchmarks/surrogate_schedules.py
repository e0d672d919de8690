"""Known-future covariates: train on voltage ramps, predict a schedule never seen, check against fresh kMC.

The surrogate is trained on a sweep whose points ramp the voltage linearly over different rise
times (examples/sweep_schedules.yaml), with the schedule entering only as the known-future
covariate V(t) (the rise time is *not* a static input). It then predicts, for held-out parameter
sets, a two-step staircase (V/2 until t_switch, then V) that no training point had, and fresh kMC
ensembles of that staircase are the reference. As a control the same model predicts with the
schedule replaced by a plain step: if V(t) carries information, the right schedule must score
better.

    python benchmarks/surrogate_schedules.py --sweep schedules_store --budget 300 --out sched.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from surrodyn.kmc.ensemble import run_ensemble
from surrodyn.pipeline import continuum_fields
from surrodyn.protocols import Schedule
from surrodyn.surrogate import TrainConfig, band_coverage, evaluate, prepare, smape, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--budget", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--points", type=int, default=3, help="held-out parameter sets run with the staircase")
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--switch", type=float, default=2e-6, help="staircase switch time (s)")
    ap.add_argument("--continuum", action="store_true", help="train with the continuum twin as a covariate")
    ap.add_argument("--workdir", default="surrogate_runs")
    ap.add_argument("--out", default="surrogate_schedules.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    variant = "continuum" if args.continuum else "plain"  # one directory per variant: runs may overlap
    cfg = TrainConfig(
        sweep=args.sweep, out=f"{args.workdir}/schedules_{variant}_s{args.seed}", parameters=("permittivity",
        "concentration_cm3", "voltage_V"), known=("log10_time", "voltage"), budget_s=args.budget,
        max_epochs=100_000, patience=10, progress=False, seed=args.seed, continuum=args.continuum,
    )  # fmt: skip
    data, tr, va, te = prepare(cfg)
    model = train(cfg, data, (tr, va, te))
    ev = evaluate(model, data.subset(te))
    print("held-out ramps (rise times not seen in training):\n" + ev.format(), flush=True)
    result = {"continuum": args.continuum, "held_out_ramps": ev.summary(), "epochs": model.info["epochs"],
              "band_scale": model.band_scale, "staircase": []}  # fmt: skip
    for i in te[: args.points]:
        params = {p: float(data.values[p][i]) for p in model.parameters}
        volts = params["voltage_V"]
        stair = Schedule((0.0, args.switch), (volts / 2, volts), "voltage_V")
        kcfg = model.configs(params, voltage=stair)[0]
        ds = run_ensemble(kcfg, args.replicas, seed=1000 + int(i), workers=2)
        occ = ds["occupancy"].transpose("replica", "time", "z").values / kcfg.filling
        unit = 1.0 / (kcfg.nx * kcfg.ny * kcfg.filling)
        entry = {"point": int(data.point[i]), "params": params}
        if args.continuum:  # the low-fidelity twin alone, as a baseline
            twin = continuum_fields(model, params, voltage=stair)[0, :, 0]
            entry["continuum_twin_mae"] = float(np.mean(np.abs(twin - occ.mean(0))))
        for label, sched in (("staircase", stair), ("control_step", volts)):
            fields = continuum_fields(model, params, voltage=sched) if args.continuum else None
            quant, mean, _ = model.forward_arrays(params, voltage=sched, fields=fields)
            levels = list(model.config.quantiles)
            med = quant[0, levels.index(0.5)]
            ref = occ.mean(0)
            lo, hi = quant[0, levels.index(0.1)], quant[0, levels.index(0.9)]
            entry[label] = {
                "mae_median": float(np.mean(np.abs(med - ref))),
                "mae_mean": float(np.mean(np.abs(mean[0] - ref))),
                "smape": smape(med, ref),
                "coverage_10_90": float(band_coverage(lo, hi, occ, unit).mean()),
                "mae_mean_before_switch": float(np.mean(np.abs(mean[0] - ref)[model.time_s[1:] < args.switch])),
            }
        print(json.dumps(entry), flush=True)
        result["staircase"].append(entry)
        Path(args.out).write_text(json.dumps(result, indent=1))
    for label in ("staircase", "control_step"):
        result[f"{label}_mean_mae"] = float(np.mean([e[label]["mae_mean"] for e in result["staircase"]]))
        result[f"{label}_mean_coverage"] = float(np.mean([e[label]["coverage_10_90"] for e in result["staircase"]]))
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "staircase"}, indent=1))


if __name__ == "__main__":
    main()
