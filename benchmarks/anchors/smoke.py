"""Smoke test of the anchor adapters on a tiny synthetic task (run in /work/benchvenv).

    /work/benchvenv/bin/python benchmarks/anchors/smoke.py                    # all three, 20 s budget each
    /work/benchvenv/bin/python benchmarks/anchors/smoke.py --budget 5 --only pf:per_bin

    /work/benchvenv/bin/python benchmarks/anchors/smoke.py --isolate --json smoke.json   # one process per run

With ``--sweep /work/stores/demo`` it runs on real sweep points instead (``--train 24 --test 8``). Set
``ANCHOR_THREADS=1`` when anything else is using the CPU: with 2 torch threads and a busy core, steps become
10-50x slower (``train_cpu_per_wall`` and ``load_avg_1min`` in the output show the contention).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from task import QUANTILES, Task, task_from_sweep

RUNS = ("pf:per_bin", "pf:multi_target", "darts:multivariate")


def synthetic_tasks(
    n_train: int = 6, n_test: int = 3, n_replicas: int = 2, n_time: int = 20, n_z: int = 99, seed: int = 0
) -> tuple[Task, Task]:
    """A smooth double layer relaxing towards equilibrium, with Poisson-like replica noise.

    Statics: log10 permittivity, log10 concentration, voltage; knowns: log10 time, voltage (constant).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    log_eps = rng.uniform(2.0, 3.15, n)
    log_c = rng.uniform(18.5, 19.0, n)
    volt = rng.uniform(0.05, 2.0, n)
    t = np.logspace(-7, -4, n_time)
    z = (np.arange(n_z) + 0.5) / n_z
    lam = 0.02 + 0.05 * (log_eps - 2.0) / 1.15  # screening length (fraction of the gap)
    tau = 10.0 ** (-6.0 + 0.8 * (log_eps - 2.0))  # relaxation time
    amp = 5.0 * volt
    shape = np.exp(-z[None, :] / lam[:, None]) - 0.8 * np.exp(-(1 - z[None, :]) / lam[:, None])  # (n, z)
    relax = 1.0 - np.exp(-t[None, :] / tau[:, None])  # (n, t)
    mean = np.clip(1.0 + amp[:, None, None] * relax[:, :, None] * shape[:, None, :], 0.0, None)  # (n, t, z)
    ions_per_layer = 4.0
    y = rng.poisson(mean[:, None] * ions_per_layer, size=(n, n_replicas, n_time, n_z)) / ions_per_layer
    static = np.stack([log_eps, log_c, volt], axis=1)
    known = np.stack([np.broadcast_to(np.log10(t), (n, n_time)), np.broadcast_to(volt[:, None], (n, n_time))], -1)
    task = Task(
        y=y,
        static=static,
        static_names=["log10_permittivity", "log10_concentration_cm3", "voltage_V"],
        known=known,
        known_names=["log10_time_s", "voltage"],
        n_encoder=5,
    )
    return task.subset(range(n_train)), task.subset(range(n_train, n))


def summarise(result: dict, test: Task, wall_s: float) -> dict:
    q = result["quantiles"]
    truth = test.y[:, :, test.n_encoder :].mean(axis=1)  # replica mean (n_p, n_dec, n_z)
    persist = np.repeat(test.context()[:, -1:], test.n_decoder, axis=1)
    reps = test.y[:, :, test.n_encoder :]
    cover = ((reps >= q[:, None, 0]) & (reps <= q[:, None, 2])).mean()
    return {
        "quantiles_shape": list(q.shape),
        "quantiles_dtype": str(q.dtype),
        "finite": bool(np.isfinite(q).all()),
        "crossing_frac": float((np.diff(q, axis=1) < 0).mean()),
        "mae_median_vs_replica_mean": float(np.abs(q[:, 1] - truth).mean()),
        "mae_persistence": float(np.abs(persist - truth).mean()),
        "coverage_10_90_of_replicas": float(cover),
        "train_samples": result["train_samples"],
        "train_seconds": round(result["train_seconds"], 2),
        "samples_per_s": round(result["train_samples"] / max(result["train_seconds"], 1e-9), 1),
        "epochs": round(result["epochs"], 2),
        "latency_s": round(result["latency_s"], 4),
        "n_parameters": result["n_parameters"],
        "optimizer_steps": result.get("optimizer_steps"),
        "prep_seconds": round(result.get("prep_seconds", float("nan")), 2),
        "peak_rss_mb": round(result.get("peak_rss_mb", float("nan"))),
        "threads": result.get("threads"),
        "train_cpu_per_wall": round(result.get("train_cpu_per_wall", float("nan")), 2),
        "load_avg_1min": result.get("load_avg_1min"),
        "n_targets": result.get("n_targets"),
        "wall_s": round(wall_s, 1),
    }


def run(name: str, train: Task, test: Task, budget: float, seed: int, **kwargs) -> dict:
    lib, layout = name.split(":")
    if lib == "pf":
        from pf_adapter import fit_predict
    else:
        from darts_adapter import fit_predict
    t0 = time.perf_counter()
    result = fit_predict(train, test, budget_s=budget, seed=seed, layout=layout, **kwargs)
    wall = time.perf_counter() - t0
    assert result["quantiles"].shape == (test.n_points, len(QUANTILES), test.n_decoder, test.n_z)
    return summarise(result, test, wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=20.0, help="training budget per run (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", choices=RUNS, help="run only these (repeatable)")
    parser.add_argument("--n-targets", type=int, default=None, help="pf multi_target: coarsen z to this many")
    parser.add_argument("--sweep", help="use real points of this sweep store instead of the synthetic task")
    parser.add_argument("--train", type=int, default=24, help="with --sweep: first N done points train")
    parser.add_argument("--test", type=int, default=8, help="with --sweep: next M done points test")
    parser.add_argument("--json", help="also write the summaries to this JSON file")
    parser.add_argument("--isolate", action="store_true", help="run each adapter in its own process (clean peak RSS)")
    args = parser.parse_args(argv)

    if args.isolate:
        return isolated(args, argv if argv is not None else sys.argv[1:])
    if args.sweep:
        from surrodyn.sweep import open_sweep

        ds = open_sweep(args.sweep, missing="drop")
        ids = ds["point"].values
        train = task_from_sweep(ds, ids[: args.train])
        test = task_from_sweep(ds, ids[args.train : args.train + args.test])
    else:
        train, test = synthetic_tasks(seed=args.seed)
    print(
        f"train y {train.y.shape} static {train.static_names} known {train.known_names}; "
        f"test y {test.y.shape}; n_encoder {train.n_encoder}",
        flush=True,
    )
    summaries = {}
    for name in args.only or RUNS:
        kwargs = {"n_targets": args.n_targets} if name == "pf:multi_target" and args.n_targets else {}
        try:
            summaries[name] = run(name, train, test, args.budget, args.seed, **kwargs)
        except Exception as exc:  # report and go on with the others
            summaries[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(name, json.dumps(summaries[name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2))
    return int(any("error" in s for s in summaries.values()))


def isolated(args: argparse.Namespace, argv: list[str]) -> int:
    """Run every selected adapter in a fresh interpreter (same options) and gather their summaries."""
    import subprocess
    import tempfile

    base = [a for a in argv if a != "--isolate"]
    base = [a for i, a in enumerate(base) if a != "--only" and (i == 0 or base[i - 1] != "--only")]
    summaries, status = {}, 0
    for name in args.only or RUNS:
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = [sys.executable, __file__, *base, "--only", name, "--json", tmp.name]
            status |= subprocess.run(cmd, check=False).returncode
            summaries.update(json.loads(Path(tmp.name).read_text() or "{}"))
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
