"""EMT Cu13/Cu55 data sets for the neural-network potential benchmark: a balanced test set and two pools.

Nineteen conditions (Cu13 and Cu55 icosahedra at 100-1300 K, the Cu55 cuboctahedron at 100-900 K),
each sampled by Langevin MD (2 fs, friction 0.01/fs, 2000 equilibration steps, a frame every 50
steps) with ``surrodyn.md.sample_configurations`` and labelled with EMT energies and forces:

- ``test.extxyz``: 15 frames per condition (285);
- ``pool_balanced.extxyz``: 960 frames, 50 or 51 per condition;
- ``pool_imbalanced.extxyz``: 960 frames, 60% (576) Cu55 icosahedron at 300 K, the other 384 spread
  over the other 18 conditions (21 or 22 each);
- ``manifest.json``: counts, seeds, calculator and version, command, timings and the per-condition
  summary printed at the end.

Every (file, condition) pair is sampled by its own MD runs with their own seeds, so the files share
no frame. ``--runs-per-condition K`` (default 5) splits each into K independent runs (own seeds,
own equilibration), so a condition is sampled from K starting points rather than one trajectory:
with one run, the test set and the pools saw a fluxional hot Cu13 in different states
(``docs/potentials.md``). ``--runs-per-condition 1`` reproduces the earlier one-run data. The
frames of a file are ordered by condition, run and time; ``info`` carries ``condition``, ``temperature_K``, ``seed``,
``run``, ``frame`` (within its run), ``pool`` (the file) and ``index`` (the position in the file).
Each file is written atomically; ``manifest.json`` is written last.

    OMP_NUM_THREADS=1 python benchmarks/hdnnp_data.py                 # ~1 min with asap3
    python benchmarks/hdnnp_data.py --smoke --out /tmp/hdnnp_smoke   # a few seconds with asap3
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_data.py --runs-per-condition 1 --out /work/runs/hdnnp_data_k1
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import io
import json
import shlex
import sys
import time
from pathlib import Path

import ase
import numpy as np
from ase.io import write

from surrodyn.analysis import CNAFractions, classify_cna, nearest_neighbour_cutoff, quench
from surrodyn.data.io import atomic_write_bytes
from surrodyn.md import (
    CALCULATORS,
    ClusterSpec,
    SamplingCondition,
    build_cluster,
    make_calculator,
    sample_configurations,
)

ICO13, ICO55, CUBO55 = ClusterSpec("icosahedron", 2), ClusterSpec("icosahedron", 3), ClusterSpec("cuboctahedron", 3)
HOT = (100.0, 300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0)
CONDITIONS = (
    [SamplingCondition(ICO13, t) for t in HOT]
    + [SamplingCondition(ICO55, t) for t in HOT]
    + [SamplingCondition(CUBO55, t) for t in HOT[:5]]
)
MAJORITY = SamplingCondition(ICO55, 300.0)
POOLS = ("test", "pool_balanced", "pool_imbalanced")  # the position is part of every run's seed
MD = dict(stride_steps=50, timestep_fs=2.0, friction_per_fs=0.01)
FULL = dict(test_per_condition=15, pool_size=960, majority_fraction=0.6, equilibration_steps=2000)
SMOKE = dict(test_per_condition=1, pool_size=57, majority_fraction=0.6, equilibration_steps=100)
QUENCHES_PER_CONDITION = 5


def split_evenly(total: int, n: int) -> list[int]:
    """``total`` items over ``n`` bins, the first ``total % n`` bins one more."""
    return [total // n + (k < total % n) for k in range(n)]


def plan(test_per_condition: int, pool_size: int, majority_fraction: float) -> dict[str, list[int]]:
    """Frames per condition (in the order of CONDITIONS) of every file."""
    majority = round(majority_fraction * pool_size)
    i_major = CONDITIONS.index(MAJORITY)
    rest = split_evenly(pool_size - majority, len(CONDITIONS) - 1)
    rest.insert(i_major, majority)
    return {
        "test": [test_per_condition] * len(CONDITIONS),
        "pool_balanced": split_evenly(pool_size, len(CONDITIONS)),
        "pool_imbalanced": rest,
    }


def run_seed(base: int, pool: int, condition: int, run: int = 0) -> int:
    """Seed of one MD run; distinct for every (file, condition, run) of a given base seed.

    Run 0 keeps the seeds of the one-run-per-condition data sets.
    """
    return 1000 * base + 100 * pool + condition + 1_000_000 * run


def calculator_identity(name: str) -> dict[str, str]:
    calc = make_calculator("emt" if name == "auto" else name)
    module = type(calc).__module__
    if module.startswith("asap3"):
        import asap3

        version = asap3.__version__
    else:
        version = ase.__version__
    return {"requested": name, "class": f"{module}.{type(calc).__name__}", "version": version, "ase": ase.__version__}


def lag1(runs: list[np.ndarray]) -> float:
    """Lag-1 autocorrelation pooled over runs, each about its own mean."""
    num = den = 0.0
    for x in runs:
        d = x - x.mean()
        num += float(np.dot(d[:-1], d[1:]))
        den += float(np.dot(d, d))
    return num / den if den > 0 else float("nan")


def summarize(frames_by_condition: dict[str, list[ase.Atoms]], calculator: str) -> dict[str, dict]:
    """Energy, temperature, decorrelation and morphology of every condition over all files."""
    quench_calc = make_calculator("emt" if calculator == "auto" else calculator)
    out = {}
    for cond in CONDITIONS:
        frames = frames_by_condition[cond.label]
        n_atoms = len(frames[0])
        e = np.array([f.get_potential_energy() for f in frames]) / n_atoms
        runs: dict[tuple[str, int], list[float]] = {}
        for f, ei in zip(frames, e, strict=True):
            runs.setdefault((f.info["pool"], f.info["seed"]), []).append(ei)
        cna = CNAFractions(nearest_neighbour_cutoff(build_cluster(cond.cluster).positions))
        morph = [classify_cna(dict(zip(cna.names, cna(f.positions, f.numbers), strict=True))) for f in frames]
        balanced = [f for f in frames if f.info["pool"] == "pool_balanced"] or frames
        picks = np.linspace(0, len(balanced) - 1, min(QUENCHES_PER_CONDITION, len(balanced))).round().astype(int)
        inherent = [quench(balanced[i], quench_calc) for i in picks]
        is_morph = [classify_cna(dict(zip(cna.names, cna(q.positions, q.numbers), strict=True))) for q in inherent]
        r_max = max(float(np.linalg.norm(f.positions - f.get_center_of_mass(), axis=1).max()) for f in frames)
        out[cond.label] = {
            "n_frames": len(frames),
            "energy_mean_eV_per_atom": float(e.mean()),
            "energy_std_meV_per_atom": float(1000 * e.std(ddof=1)) if len(e) > 1 else 0.0,
            "kinetic_temperature_mean_K": float(np.mean([f.get_temperature() for f in frames])),
            "energy_lag1_autocorrelation": lag1([np.asarray(v) for v in runs.values() if len(v) > 2]),
            "thermal_morphology": {m: morph.count(m) / len(morph) for m in sorted(set(morph))},
            "inherent_morphology": {m: is_morph.count(m) for m in sorted(set(is_morph))},
            "inherent_energy_eV_per_atom": [q.info["energy"] / n_atoms for q in inherent],
            "max_distance_from_com_A": r_max,
        }
    return out


def print_table(counts: dict[str, list[int]], summary: dict[str, dict]) -> None:
    head = (
        f"{'condition':<26}{'test':>5}{'bal':>5}{'imb':>5}{'E/atom eV':>11}{'sd meV':>8}{'T_kin K':>9}"
        f"{'r1(E)':>7}{'r_max A':>8}  thermal CNA  |  quenched (E_IS/atom eV)"
    )
    print(head)
    print("-" * len(head))
    for k, cond in enumerate(CONDITIONS):
        s = summary[cond.label]
        thermal = " ".join(f"{m[:3]} {v:.2f}" for m, v in s["thermal_morphology"].items())
        inherent = " ".join(f"{m[:3]} {v}" for m, v in s["inherent_morphology"].items())
        e_is = s["inherent_energy_eV_per_atom"]
        print(
            f"{cond.label:<26}{counts['test'][k]:>5}{counts['pool_balanced'][k]:>5}{counts['pool_imbalanced'][k]:>5}"
            f"{s['energy_mean_eV_per_atom']:>11.4f}{s['energy_std_meV_per_atom']:>8.1f}"
            f"{s['kinetic_temperature_mean_K']:>9.0f}{s['energy_lag1_autocorrelation']:>7.2f}"
            f"{s['max_distance_from_com_A']:>8.2f}  {thermal}  |  {inherent} ({min(e_is):.4f}-{max(e_is):.4f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="output directory (default /work/runs/hdnnp_data, _smoke with --smoke)")
    ap.add_argument("--calculator", default="auto", choices=("auto", *CALCULATORS))
    ap.add_argument(
        "--seed", type=int, default=0, help="base seed; run seeds are 1000*seed + 100*file + condition + 1000000*run"
    )
    ap.add_argument("--smoke", action="store_true", help="1 test frame per condition, pools of 57, 100 eq. steps")
    ap.add_argument(
        "--runs-per-condition",
        type=int,
        default=5,
        help="independent MD runs per (file, condition), the frames split evenly over them (default 5; "
        "1 gives the earlier one-run data)",
    )
    args = ap.parse_args()
    if args.seed < 0:
        ap.error(f"--seed={args.seed} is not allowed: expected an integer >= 0.")
    if args.runs_per_condition < 1:
        ap.error(f"--runs-per-condition={args.runs_per_condition} is not allowed: expected an integer >= 1.")
    sizes = SMOKE if args.smoke else FULL
    out = Path(args.out or ("/work/runs/hdnnp_data_smoke" if args.smoke else "/work/runs/hdnnp_data"))
    out.mkdir(parents=True, exist_ok=True)
    counts = plan(sizes["test_per_condition"], sizes["pool_size"], sizes["majority_fraction"])

    t_start, cpu_start = time.perf_counter(), time.process_time()
    files, runs, by_condition = {}, [], {c.label: [] for c in CONDITIONS}
    for p, pool in enumerate(POOLS):
        frames = []
        for c, (cond, n) in enumerate(zip(CONDITIONS, counts[pool], strict=True)):
            if n == 0:
                continue
            for r, n_run in enumerate(split_evenly(n, min(args.runs_per_condition, n))):
                seed = run_seed(args.seed, p, c, r)
                t0 = time.perf_counter()
                new = sample_configurations(
                    cond,
                    n_run,
                    equilibration_steps=sizes["equilibration_steps"],
                    seed=seed,
                    calculator=args.calculator,
                    **MD,
                )
                runs.append(
                    {
                        "pool": pool,
                        "condition": cond.label,
                        "run": r,
                        "seed": seed,
                        "frames": n_run,
                        "wall_s": time.perf_counter() - t0,
                    }
                )
                for f in new:
                    f.info["pool"], f.info["run"] = pool, r
                frames += new
                by_condition[cond.label] += new
        for i, f in enumerate(frames):
            f.info["index"] = i
        text = io.StringIO()
        write(text, frames, format="extxyz")
        data = text.getvalue().encode()
        atomic_write_bytes(out / f"{pool}.extxyz", data)
        files[f"{pool}.extxyz"] = {"frames": len(frames), "sha256": hashlib.sha256(data).hexdigest()}
        print(f"{pool}.extxyz: {len(frames)} frames, {time.perf_counter() - t_start:.1f} s so far", flush=True)
    md_wall, md_cpu = time.perf_counter() - t_start, time.process_time() - cpu_start

    summary = summarize(by_condition, args.calculator)
    print_table(counts, summary)
    elapsed = time.perf_counter() - t_start
    manifest = {
        "command": shlex.join(sys.orig_argv),
        "smoke": bool(args.smoke),
        "seed": args.seed,
        "calculator": calculator_identity(args.calculator),
        "md": {
            **MD,
            "equilibration_steps": sizes["equilibration_steps"],
            "runs_per_condition": args.runs_per_condition,
        },
        "files": files,
        "counts": {pool: {c.label: n for c, n in zip(CONDITIONS, counts[pool], strict=True)} for pool in POOLS},
        "runs": runs,
        "summary": summary,
        "elapsed_s": {"md_and_labels_wall": md_wall, "md_and_labels_cpu": md_cpu, "total_wall": elapsed},
        "omp_num_threads": os.environ["OMP_NUM_THREADS"],
    }
    atomic_write_bytes(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    print(f"wrote {', '.join(files)} and manifest.json to {out} in {elapsed:.1f} s (MD + labels {md_wall:.1f} s)")


if __name__ == "__main__":
    main()
