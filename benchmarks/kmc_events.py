#!/usr/bin/env python
"""Events per second of the numba kMC engine against a straightforward NumPy implementation.

For N = 100, 500 and 2000 ions on lattices of nz = 99 layers at a = 1 nm whose lateral size
puts the bulk concentration at the two ends of the seed range c0 = 3e18 - 1e19 cm^-3
(filling 0.003 - 0.01), with the seed case's physics (epsr = 100, 300 K, 0.5 V, Ea = 0.3 eV,
nu0 = 1e13 Hz, Coulomb on), it measures on one core:

* the events/s of ``Simulation.step`` (after a JIT warm-up; median of repeats of a fixed wall
  time each),
* the events/s of :class:`surrodyn.kmc.numpy_reference.NumpyKMC`, started from the same state
  (the same incremental O(N) algorithm, vectorised over ions: the strongest NumPy we could write),
* the events/s of :class:`surrodyn.kmc.numpy_reference.DirectSumNumpyKMC` (every event sums all
  potentials again, O(N²): the straightforward implementation),
* the ratios,

then the throughput of ``run_ensemble`` with 2 worker processes against 1, and prints a table
with the requirements of the issue (>= 1e5 / 2e4 / 5e3 events/s at N = 100 / 500 / 2000,
>= 20x NumPy at N = 500, ensemble speed-up >= 1.7x).

Usage::

    python benchmarks/kmc_events.py            # full run, a few minutes
    python benchmarks/kmc_events.py --quick    # smoke run, well under a minute
    python benchmarks/kmc_events.py --out results.json

The "busy" column is the CPU time of this process over the wall time of the engine
measurement; well below 100 % means the machine was loaded and the numbers are pessimistic
("ev/cpu-s", events per CPU second, is then the better estimate; requirements use wall time).
"""

from __future__ import annotations

import os

# one core: set before numpy/numba are imported (inherited by the ensemble's worker processes)
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from surrodyn.kmc import KMCConfig, Simulation, run_ensemble  # noqa: E402
from surrodyn.kmc.numpy_reference import DirectSumNumpyKMC, NumpyKMC  # noqa: E402

NZ = 99
SPACING_NM = 1.0
THETA_RANGE = (0.003, 0.01)  # c0 = 3e18 .. 1e19 cm^-3 at a = 1 nm
IONS = (100, 500, 2000)
REQUIRED = {100: 1e5, 500: 2e4, 2000: 5e3}
REQUIRED_RATIO = (500, 20.0)
REQUIRED_ENSEMBLE = 1.7
SEED_CASE = dict(
    nz=NZ,
    spacing_nm=SPACING_NM,
    permittivity=100.0,
    temperature_K=300.0,
    voltage_V=0.5,
    activation_energy_eV=0.3,
    attempt_frequency_Hz=1e13,
    coulomb=True,
    self_image=True,
)


def lattice(n_ions: int, end: str) -> int:
    """nx = ny putting the filling inside THETA_RANGE, at its dense or dilute end."""
    if end == "dense":
        return math.ceil(math.sqrt(n_ions / (THETA_RANGE[1] * NZ)))
    return math.floor(math.sqrt(n_ions / (THETA_RANGE[0] * NZ)))


def make_config(n_ions: int, nx: int, **kw) -> KMCConfig:
    c0 = n_ions / (nx * nx * NZ * (SPACING_NM * 1e-7) ** 3)
    return KMCConfig(nx=nx, ny=nx, n_ions=n_ions, concentration_cm3=c0, **SEED_CASE, **kw)


def events_per_second(step: Callable[[int], None], min_time: float, repeats: int) -> dict:
    """Median events/s of ``step(chunk)`` over ``repeats`` runs of at least ``min_time`` s each."""
    chunk, dt = 16, 0.0
    while dt < 0.02:  # calibrate (and warm up): one call should take ~0.1 s
        chunk = int(chunk * min(16.0, 0.1 / dt)) if dt > 0 else chunk * 4
        t = time.perf_counter()
        step(chunk)
        dt = time.perf_counter() - t
    chunk = max(1, int(chunk * 0.1 / dt))
    wall, cpu = [], []
    for _ in range(repeats):
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while (el := time.perf_counter() - t0) < min_time:
            step(chunk)
            n += chunk
        el = time.perf_counter() - t0
        wall.append(n / el)
        cpu.append(n / (time.process_time() - c0))
    return {"median": statistics.median(wall), "runs": wall, "cpu_time_median": statistics.median(cpu)}


def slow_events_per_second(step: Callable[[int], None], min_time: float) -> float:
    """Events/s of a slow stepper: one timed event, then enough events to fill ``min_time``."""
    t = time.process_time()
    step(1)
    n = max(2, int(min_time / max(time.process_time() - t, 1e-6)))
    t0 = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - t0)


def machine_info() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def bench_point(n_ions: int, end: str, args: argparse.Namespace) -> dict:
    nx = lattice(n_ions, end)
    cfg = make_config(n_ions, nx)
    sim = Simulation(cfg, seed=1)
    ref = NumpyKMC(cfg, seed=1)  # identical initial state
    assert np.allclose(sim.hop_energy_changes(), ref.hop_energy_changes(), atol=1e-10, equal_nan=True)
    sim.step(2000)  # warm-up: JIT (or cache load) and leave the initial transient
    eng = events_per_second(sim.step, args.min_time, args.repeats)
    sim_t0, sim_events = sim.time_s, sim.events
    npy = events_per_second(ref.step, args.numpy_time, args.repeats)
    direct = slow_events_per_second(DirectSumNumpyKMC(cfg, seed=1).step, args.numpy_time)
    return {
        "n_ions": n_ions,
        "end": end,
        "lattice": [nx, nx, NZ],
        "filling": cfg.filling,
        "c0_cm3": cfg.bulk_concentration_m3 * 1e-6,
        "engine": eng,
        "numpy": npy,
        "ratio": eng["median"] / npy["median"],
        "direct_numpy": direct,
        "ratio_direct": eng["median"] / direct,
        "busy": eng["median"] / eng["cpu_time_median"],
        "required": REQUIRED[n_ions],
        "pass": eng["median"] >= REQUIRED[n_ions],
        "engine_sim_time_s": sim_t0,
        "engine_events": sim_events,
    }


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_ensemble(args: argparse.Namespace) -> dict:
    n_ions, replicas = 500, 4
    nx = lattice(n_ions, "dilute")
    # calibrate the simulated time so that one replica takes target/replicas s in one process
    probe = Simulation(make_config(n_ions, nx), seed=0)
    probe.step(1000)
    t_wall, t_sim = time.perf_counter(), probe.time_s
    probe.step(int(max(2000, 0.5 * args.ensemble_seconds / replicas * 2e4)))
    speed = (probe.time_s - t_sim) / (time.perf_counter() - t_wall)  # simulated s per wall s
    t_end = speed * args.ensemble_seconds / replicas
    cfg = make_config(n_ions, nx, output_times_s={"kind": "linear", "start": t_end / 10, "stop": t_end, "num": 10})
    out = {"n_ions": n_ions, "lattice": [nx, nx, NZ], "replicas": replicas, "t_end_s": t_end}
    # a fresh process, as a worker is, so that the on-disk JIT cache is current (the workers
    # measure start-up + cache load, not compilation)
    t = time.perf_counter()
    code = "from surrodyn.kmc import KMCConfig as C, Simulation as S; S(C(nx=6, ny=6, nz=12, n_ions=10)).step(10)"
    subprocess.run([sys.executable, "-c", code], check=True)
    out["fresh_process_start_s"] = time.perf_counter() - t
    results = {}
    for workers in (1, 2):
        t, c = time.perf_counter(), _cpu_seconds()
        results[workers] = run_ensemble(cfg, replicas=replicas, seed=0, workers=workers)
        out[f"wall_s_{workers}"] = time.perf_counter() - t
        # CPU time of this process and its finished workers: ~ workers x wall on an idle machine
        out[f"cpus_used_{workers}"] = (_cpu_seconds() - c) / out[f"wall_s_{workers}"]
    out["speedup"] = out["wall_s_1"] / out["wall_s_2"]
    # fixed cost of the worker pool (process start-up, imports, JIT-cache load): near-empty replicas
    t = time.perf_counter()
    run_ensemble(cfg.replace(output_times_s=[1e-15]), replicas=replicas, seed=0, workers=2)
    out["pool_overhead_s"] = time.perf_counter() - t
    out["speedup_net_of_overhead"] = out["wall_s_1"] / max(out["wall_s_2"] - out["pool_overhead_s"], 1e-9)
    out["identical"] = bool(results[1].equals(results[2]))
    out["pass"] = out["speedup"] >= REQUIRED_ENSEMBLE
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (noisy numbers)")
    ap.add_argument("--out", help="write the results as JSON to this file")
    ap.add_argument("--min-time", type=float, default=3.0, help="wall time per engine repeat (s)")
    ap.add_argument("--numpy-time", type=float, default=1.5, help="wall time per NumPy repeat (s)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per point (median reported)")
    ap.add_argument(
        "--ends",
        choices=("both", "dense", "dilute"),
        default="both",
        help="lattice(s) per N: filling 0.01 (dense), 0.003 (dilute) or both",
    )
    ap.add_argument("--ensemble-seconds", type=float, default=60.0, help="target wall time of 1-worker ensemble")
    ap.add_argument("--no-ensemble", action="store_true", help="skip the ensemble measurement")
    ap.add_argument("--pin", type=int, metavar="CPU", help="pin the single-core measurements to this CPU")
    ap.add_argument("--strict", action="store_true", help="exit with status 1 if a requirement fails")
    args = ap.parse_args(argv)
    if args.quick:
        args.min_time, args.numpy_time, args.repeats, args.ensemble_seconds = 0.3, 0.3, 1, 3.0
        if args.ends == "both":
            args.ends = "dilute"
    ends = ("dense", "dilute") if args.ends == "both" else (args.ends,)

    info = machine_info()
    print(f"machine: {info['cpu']} ({info['logical_cpus']} logical CPUs), {info['platform']}")
    print(
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}; load average {info['loadavg_start']}"
    )
    print(
        f"seed case: epsr=100, T=300 K, V=0.5 V, Ea=0.3 eV, nu0=1e13 Hz, Coulomb on; nz={NZ}, a={SPACING_NM} nm; "
        f"engine {args.min_time} s x {args.repeats}, NumPy {args.numpy_time} s x {args.repeats}\n"
    )
    Simulation(make_config(10, 6), seed=0).step(10)  # JIT warm-up (or cache load)

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    head = (
        f"{'N':>5} {'lattice':>10} {'c0 [cm^-3]':>10} {'engine ev/s':>12} {'busy':>5} {'ev/cpu-s':>9} "
        f"{'NumPy ev/s':>11} {'ratio':>6} {'direct ev/s':>11} {'ratio':>7} {'required':>9}  ok"
    )
    print(head)
    print("-" * len(head))
    points = []
    for n in IONS:
        for end in ends:
            p = bench_point(n, end, args)
            points.append(p)
            eng = p["engine"]
            print(
                f"{n:>5} {'x'.join(map(str, p['lattice'])):>10} {p['c0_cm3']:>10.2e} {eng['median']:>12.4g} "
                f"{p['busy']:>5.0%} {eng['cpu_time_median']:>9.4g} {p['numpy']['median']:>11.4g} "
                f"{p['ratio']:>5.1f}x {p['direct_numpy']:>11.3g} {p['ratio_direct']:>6.0f}x "
                f"{p['required']:>9.0e}  {'yes' if p['pass'] else 'NO'}",
                flush=True,
            )
    if args.pin is not None and affinity is not None:
        os.sched_setaffinity(0, affinity)

    checks = {
        f"engine >= {REQUIRED[n]:.0e} ev/s at N={n}": all(p["pass"] for p in points if p["n_ions"] == n) for n in IONS
    }
    n_ratio, req_ratio = REQUIRED_RATIO
    ratio = min(p["ratio"] for p in points if p["n_ions"] == n_ratio)
    ratio_direct = min(p["ratio_direct"] for p in points if p["n_ions"] == n_ratio)
    checks[f"engine >= {req_ratio:g}x direct-summation NumPy at N={n_ratio} (worst {ratio_direct:.0f}x)"] = (
        ratio_direct >= req_ratio
    )
    checks[f"engine >= {req_ratio:g}x incremental NumPy at N={n_ratio} (worst {ratio:.1f}x)"] = ratio >= req_ratio
    ens = None
    if not args.no_ensemble:
        ens = bench_ensemble(args)
        print(
            f"\nensemble: {ens['replicas']} replicas of N={ens['n_ions']} on {'x'.join(map(str, ens['lattice']))} "
            f"to t={ens['t_end_s']:.3g} s (identical results: {ens['identical']})"
        )
        print(f"  1 worker {ens['wall_s_1']:.1f} s, 2 workers {ens['wall_s_2']:.1f} s: speed-up {ens['speedup']:.2f}x")
        print(
            f"  CPUs kept busy {ens['cpus_used_1']:.2f} / {ens['cpus_used_2']:.2f}; "
            f"start-up of a fresh process {ens['fresh_process_start_s']:.1f} s"
        )
        print(
            f"  fixed cost of a 2-worker pool {ens['pool_overhead_s']:.1f} s; "
            f"speed-up net of it {ens['speedup_net_of_overhead']:.2f}x"
        )
        checks[f"ensemble speed-up with 2 workers >= {REQUIRED_ENSEMBLE}x ({ens['speedup']:.2f}x)"] = ens["pass"]
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print(f"\nrequirements (load average at end {info['loadavg_end']}):")
    for name, ok in checks.items():
        print(f"  [{'pass' if ok else 'FAIL'}] {name}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {"machine": info, "settings": vars(args), "points": points, "ensemble": ens, "checks": checks},
                fh,
                indent=2,
            )
        print(f"results written to {args.out}")
    return 1 if args.strict and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
