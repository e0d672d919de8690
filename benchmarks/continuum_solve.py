"""Benchmark: the continuum twin of the seed case over 1000 output times (target: under 1 s).

Run: ``python benchmarks/continuum_solve.py``. Prints the median wall time of repeated solves
(after one warm-up), the solver's work counters and the accuracy of the final frame against the
direct steady-state solver.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from surrodyn.continuum import solve_mpnp, steady_state
from surrodyn.kmc import seed_case_config


def main(repeats: int = 7) -> None:
    cfg = seed_case_config().replace(output_times_s={"kind": "log", "start": 1e-8, "stop": 1e-4, "num": 1000})
    solve_mpnp(cfg)  # warm-up (imports, caches)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ds = solve_mpnp(cfg)
        walls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ss = steady_state(cfg)
    t_ss = time.perf_counter() - t0
    err = float(np.abs(ds["occupancy"].values[-1] - ss.occupancy).max() / ss.occupancy.max())
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"seed case, {cfg.nz} cells, 1000 log-spaced outputs 1e-8..1e-4 s")
    print(f"solve_mpnp: median {np.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f}) over {repeats}")
    print(f"  right-hand-side evaluations {ds.attrs['solver_nfev']}")
    print(f"steady_state: {t_ss * 1e3:.1f} ms; final frame vs steady state, max relative deviation {err:.1e}")


if __name__ == "__main__":
    main()
