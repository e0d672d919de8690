#!/usr/bin/env python
"""Parallel efficiency of a sweep on 1 and 2 local Dask workers, and the cost of big sweeps.

Scaling: the same sweep of ``--points`` points of equal cost (a grid over the permittivity at
fixed ion number and voltage on a 10 × 10 × 99 lattice, the simulated time calibrated so that
one point takes about ``--point-seconds`` on one core) runs on a fresh local cluster of 1
worker, then of 2 workers (the settings ``run_sweep`` uses), each into a fresh store, alternating
``--repeats`` times; the best wall time of each counts. Parallel efficiency = T1 / (2 T2), with
and without the cluster's start-up. Also reported: the CPUs the workers kept busy (below the
worker count when other jobs share the machine) and the task utilisation (time the workers
spent computing points over workers × wall time: what start-up, scheduling and the last,
unbalanced points cost). The stores of the two runs must hold identical results.

Estimate (``--estimate``): events per second of one replica at the ion numbers of
``examples/sweep_paper.yaml`` (50 × 50 × 99 sites) and the cost of that sweep and of
``examples/sweep_demo.yaml`` from ``events ≈ N 6 Γ t_end (1 − θ)`` per replica.

Usage::

    python benchmarks/sweep_scaling.py                 # about 5 minutes
    python benchmarks/sweep_scaling.py --quick         # smoke run, well under a minute
    python benchmarks/sweep_scaling.py --estimate      # only the cost estimate (about a minute)
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from surrodyn.kmc import KMCConfig, Simulation  # noqa: E402
from surrodyn.sweep import SweepSpec, open_sweep, parameter_table, point_config, run_sweep  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BASE = dict(
    nx=10,
    ny=10,
    nz=99,
    n_ions=54,
    permittivity=300.0,
    voltage_V=0.5,
    temperature_K=300.0,
    record_xz=False,
)


def events_per_second(cfg: KMCConfig, seconds: float) -> tuple[float, float]:
    """Events per wall second and per CPU second of one replica after a warm-up."""
    sim = Simulation(cfg, seed=1)
    sim.step(2000)
    w0, c0, e0 = time.perf_counter(), time.process_time(), sim.events
    while time.perf_counter() - w0 < seconds:
        sim.step(20_000)
    wall, cpu, ev = time.perf_counter() - w0, time.process_time() - c0, sim.events - e0
    return ev / wall, ev / cpu


def calibrate(point_seconds: float, replicas: int) -> float:
    """Simulated time t_end such that one point (``replicas`` replicas) takes ``point_seconds``."""
    cfg = KMCConfig(**BASE, output_times_s=[1e-7])
    rate, _ = events_per_second(cfg, 2.0)
    per_second = cfg.n_ions_resolved * 6 * cfg.hop_rate_Hz() * (1 - cfg.filling)  # events per simulated s
    return point_seconds * rate / (replicas * per_second)


def scaling_spec(points: int, replicas: int, t_end: float) -> SweepSpec:
    return SweepSpec.from_dict(
        {
            "name": "scaling",
            "seed": 0,
            "sampling": {"method": "grid"},
            "parameters": {"permittivity": [float(x) for x in np.linspace(200, 400, points)]},
            "kmc": {
                "base": {**BASE, "output_times_s": {"kind": "log", "start": t_end / 1000, "stop": t_end, "num": 30}},
                "replicas": replicas,
            },
        }
    )


def _worker_cpu() -> float:
    return time.process_time()


def timed_sweep(spec: SweepSpec, store: Path, workers: int) -> dict:
    """Run ``spec`` on a fresh local cluster of ``workers`` workers; wall times, CPU use, task utilisation."""
    import dask.config
    from distributed import Client, LocalCluster, get_task_stream

    t0 = time.perf_counter()
    with dask.config.set({"distributed.scheduler.worker-ttl": None}):  # as run_sweep's own local cluster
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            startup = time.perf_counter() - t0
            cpu0 = sum(client.run(_worker_cpu).values())
            w0 = time.perf_counter()
            with get_task_stream(client) as stream:
                status = run_sweep(spec, store, scheduler=client, progress=False)
            wall = time.perf_counter() - w0
            cpu = sum(client.run(_worker_cpu).values()) - cpu0
    if not status.complete:
        raise SystemExit(f"sweep with {workers} worker(s) incomplete: {status.summary()}")
    compute = sum(s["stop"] - s["start"] for t in stream.data for s in t["startstops"] if s["action"] == "compute")
    return {
        "wall_s": wall,
        "startup_s": startup,
        "cpus_busy": cpu / wall,
        "task_utilisation": compute / (workers * wall),
    }


def scaling(args: argparse.Namespace) -> dict:
    t_end = calibrate(args.point_seconds, args.replicas)
    spec = scaling_spec(args.points, args.replicas, t_end)
    print(
        f"sweep: {args.points} points × {args.replicas} replica(s), {BASE['n_ions']} ions on 10×10×99, "
        f"t_end = {t_end:.3g} s (≈ {args.point_seconds:g} s per point on one core); "
        f"best of {args.repeats} alternating runs"
    )
    runs: dict[int, list[dict]] = {1: [], 2: []}
    identical = True
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for workers in (1, 2):
                store = Path(tmp) / f"w{workers}_r{rep}"
                runs[workers].append(timed_sweep(spec, store, workers))
                r = runs[workers][-1]
                print(
                    f"  run {rep + 1}, {workers} worker(s): {r['wall_s']:.1f} s (+{r['startup_s']:.1f} s start-up), "
                    f"CPUs busy {r['cpus_busy']:.2f}, load average {os.getloadavg()[0]:.2f}"
                )
            identical &= open_sweep(Path(tmp) / f"w1_r{rep}").identical(open_sweep(Path(tmp) / f"w2_r{rep}"))
    best = {w: min(rs, key=lambda r: r["wall_s"]) for w, rs in runs.items()}
    t1, t2 = best[1]["wall_s"], best[2]["wall_s"]
    t1s, t2s = t1 + best[1]["startup_s"], t2 + best[2]["startup_s"]
    eff, eff_s = t1 / (2 * t2), t1s / (2 * t2s)
    print(f"{'workers':>7} | {'wall (s)':>8} | {'+ start-up':>10} | {'CPUs busy':>9} | {'task utilisation':>16}")
    for w in (1, 2):
        b = best[w]
        print(
            f"{w:>7} | {b['wall_s']:8.1f} | {b['wall_s'] + b['startup_s']:10.1f} | {b['cpus_busy']:9.2f} | "
            f"{100 * b['task_utilisation']:15.1f}%"
        )
    print(
        f"speed-up {t1 / t2:.2f}×, parallel efficiency T1/(2·T2) = {100 * eff:.1f} % "
        f"({100 * eff_s:.1f} % counting the cluster start-up; target ≥ 85 %); results identical: {identical}"
    )
    return {
        "points": args.points,
        "replicas": args.replicas,
        "t_end_s": t_end,
        "runs": runs,
        "efficiency": eff,
        "efficiency_with_startup": eff_s,
        "identical": bool(identical),
    }


def sweep_cost(spec: SweepSpec, rates: dict[int, float]) -> tuple[float, dict[int, float]]:
    """Core-seconds of a sweep from per-N events/s (log-log interpolation), and events per replica by N."""
    table = parameter_table(spec)
    ns = np.array(sorted(rates))
    logr = np.log([rates[n] for n in ns])
    total, events = 0.0, {}
    for i in range(spec.size):
        cfg = point_config(spec, {k: float(v[i]) for k, v in table.items()})
        n = cfg.n_ions_resolved
        ev = n * 6 * cfg.hop_rate_Hz() * cfg.output_times_s[-1] * (1 - cfg.filling)
        rate = float(np.exp(np.interp(np.log(n), np.log(ns), logr))) if len(ns) > 1 else rates[int(ns[0])]
        total += spec.replicas * ev / rate
        events[n] = ev
    return total, events


def estimate(args: argparse.Namespace) -> dict:
    seconds = 1.0 if args.quick else 3.0
    out = {}
    for name, lateral in (("demo", 10), ("paper", 50)):
        spec = SweepSpec.from_yaml(EXAMPLES / f"sweep_{name}.yaml")
        table = parameter_table(spec)
        configs = {}
        for i in range(spec.size):
            cfg = point_config(spec, {k: float(v[i]) for k, v in table.items()})
            configs.setdefault(cfg.n_ions_resolved, cfg)
        probe = sorted(configs) if name == "paper" else [min(configs), sorted(configs)[len(configs) // 2], max(configs)]
        rates, cpu_rates = {}, {}
        for n in probe:
            cfg = configs[n].replace(voltage_V=0.5, output_times_s=[1.0])
            rates[n], cpu_rates[n] = events_per_second(cfg, seconds)
            print(
                f"{name}: N = {n:5d} on {lateral}×{lateral}×99: {rates[n]:.3g} events/s ({cpu_rates[n]:.3g} per CPU s)"
            )
        core_s, events = sweep_cost(spec, cpu_rates)
        print(
            f"{name}: {spec.size} points × {spec.replicas} replicas, events per replica "
            + ", ".join(f"{events[n]:.2g} (N={n})" for n in sorted(events)[:: max(1, len(events) // 3)])
            + f"; {core_s / 3600:.3g} core-hours → {core_s / 2 / 3600:.3g} h on 2 cores "
            f"({core_s / 2 / 86400:.3g} days), {core_s / 100 / 3600:.3g} h on 100 cores"
        )
        out[name] = {"events_per_cpu_s": cpu_rates, "events_per_s": rates, "core_hours": core_s / 3600}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--point-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2, help="alternating 1- and 2-worker runs; the best counts")
    parser.add_argument("--quick", action="store_true", help="4 points of 2 s")
    parser.add_argument("--estimate", action="store_true", help="only the cost estimate of the example sweeps")
    parser.add_argument("--out", help="also write the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.points, args.point_seconds, args.repeats = 4, 2.0, 1
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the start"
    )
    results = {"estimate": estimate(args)} if args.estimate else {"scaling": scaling(args)}
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
