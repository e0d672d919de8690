"""How much of an active-learning curve's last point is the labels and how much the training seed.

Each round of ``hdnnp_active_learning.py`` trains one potential, so the test error at 100 labels
is a single draw: the label set (what the query chose) plus the scatter of one training run on it.
At 100 labels on the balanced pool that scatter is as large as the difference between two
strategies. This script retrains ``--fits`` more potentials on the final label set of every
finished run (the same training settings, other training seeds, the labels read from the run's
own cache: no reference call is made) and scores them on the test set, so a strategy's labels
are judged by the mean over training seeds. The per-run results go to ``retrain.json`` in the run
directory, written after every fit; rerunning skips finished fits.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/hdnnp_retrain.py --runs /work/runs/hdnnp_al9 \\
        --data /work/runs/hdnnp_data_k5 --pools balanced --strategies autoencoder random
    python benchmarks/hdnnp_retrain.py --runs /work/runs/hdnnp_al9 --pools balanced --summarize \\
        --out docs/img/potentials/retrain_k5_balanced.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read

# the sibling benchmark (its directory is on sys.path when this file runs as a script)
from hdnnp_active_learning import METRICS, finished_runs

from surrodyn.data.io import atomic_write_bytes
from surrodyn.potentials import FingerprintSet, SymmetryFunctions, TrainConfig, errors, fit
from surrodyn.potentials.labels import LabelCache

# training seeds of the extra fits: far from the loop's own (1000 * seed + round)
SEED_OFFSET = 100_000


def _no_reference() -> None:
    raise RuntimeError("a label is missing from the run's cache; this script never pays for a new one")


def _selected_runs(root: Path, pools: list[str] | None, strategies: list[str] | None) -> list[Path]:
    """Finished runs under ``root`` of the chosen pools and strategies (all when ``None``)."""
    return [
        run_dir
        for run_dir, _ in finished_runs(root)
        if (not pools or run_dir.parts[-3] in pools) and (not strategies or run_dir.parts[-2] in strategies)
    ]


def run(args: argparse.Namespace) -> None:
    """Retrain on the final label set of every finished run."""
    torch.set_num_threads(1)
    data = Path(args.data)
    test = read(data / "test.extxyz", ":")
    pools = {}
    test_sets = {}
    runs = _selected_runs(Path(args.runs), args.pools, args.strategies)
    if not runs:
        raise SystemExit(f"no finished runs (POOL/STRATEGY/seedN/state.json) under {args.runs}")
    for run_dir in runs:
        state = json.loads((run_dir / "state.json").read_text())
        pool_name = run_dir.parts[-3]
        if pool_name not in pools:
            pools[pool_name] = read(data / f"pool_{pool_name}.extxyz", ":")
        key = json.dumps(state["descriptor"], sort_keys=True)
        descriptor = SymmetryFunctions.from_dict(state["descriptor"])
        if key not in test_sets:
            test_sets[key] = FingerprintSet(test, descriptor)
        last = state["rounds"][-1]
        labelled = last["labelled"]
        out_path = run_dir / "retrain.json"
        done = json.loads(out_path.read_text()) if out_path.is_file() else {"n_labels": len(labelled), "fits": []}
        if done["n_labels"] != len(labelled):
            raise SystemExit(f"{out_path} was made for {done['n_labels']} labels, the run now has {len(labelled)}")
        structures = [pools[pool_name][k] for k in labelled]
        cache = LabelCache(run_dir / "labels", _no_reference)
        energies, forces = cache.label(structures)
        train_set = FingerprintSet(structures, descriptor, labelled=False).labelled_subset(
            range(len(structures)), energies, forces
        )
        base = TrainConfig(**state["config"]["train"])
        for j in range(len(done["fits"]), args.fits):
            c0 = time.process_time()
            cfg = dataclasses.replace(base, seed=SEED_OFFSET + j)
            metrics = errors(fit(train_set, config=cfg).potential, test_sets[key])
            done["fits"].append({"train_seed": cfg.seed, "cpu_s": time.process_time() - c0, **metrics})
            atomic_write_bytes(out_path, json.dumps(done, indent=1).encode())
            m = done["fits"][-1]
            print(
                f"{'/'.join(run_dir.parts[-3:])} fit {j}: E={m[METRICS['energy']]:.3f} meV/atom "
                f"F={m[METRICS['forces']]:.2f} meV/Å ({m['cpu_s']:.0f} CPU-s)",
                flush=True,
            )


def summarize(args: argparse.Namespace) -> dict:
    """Per (pool, strategy): the loop's own fit and the retrained ones, per seed and pooled; ratio to random."""
    root = Path(args.runs)
    summary: dict = {}
    for run_dir in _selected_runs(root, args.pools, args.strategies):
        path = run_dir / "retrain.json"
        if not path.is_file():
            continue
        pool, strategy, seed = run_dir.parts[-3:]
        retrain = json.loads(path.read_text())
        own = json.loads((run_dir / "state.json").read_text())["rounds"][-1]["metrics"]
        entry = summary.setdefault(pool, {}).setdefault(strategy, {"seeds": {}})
        entry["seeds"][seed] = {
            key: {"loop_fit": own[m], "retrained": [f[m] for f in retrain["fits"]]} for key, m in METRICS.items()
        }
    for pool in summary.values():
        for entry in pool.values():
            for key in METRICS:
                # a seed's label set is judged by the mean over all its fits (the loop's own included)
                per_seed = [np.mean([s[key]["loop_fit"], *s[key]["retrained"]]) for s in entry["seeds"].values()]
                fits = [len(s[key]["retrained"]) + 1 for s in entry["seeds"].values()]
                scatter = [np.std([s[key]["loop_fit"], *s[key]["retrained"]], ddof=1) for s in entry["seeds"].values()]
                sem = float(np.std(per_seed, ddof=1) / np.sqrt(len(per_seed))) if len(per_seed) > 1 else None
                entry[key] = {
                    "loop_fit_mean": float(np.mean([s[key]["loop_fit"] for s in entry["seeds"].values()])),
                    "per_seed_mean": [float(v) for v in per_seed],
                    "fits_per_seed": fits,
                    "mean": float(np.mean(per_seed)),
                    "sem_over_seeds": sem,
                    "training_scatter_sd": float(np.mean(scatter)),
                }
        if "random" in pool:
            for entry in pool.values():
                for key in METRICS:
                    ref = pool["random"][key]
                    entry[key]["vs_random"] = entry[key]["mean"] / ref["mean"]
                    entry[key]["loop_fit_vs_random"] = entry[key]["loop_fit_mean"] / ref["loop_fit_mean"]
    for pool_name, pool in summary.items():
        for strategy, entry in pool.items():
            e, f = entry["energy"], entry["forces"]
            print(
                f"{pool_name:10s} {strategy:11s} E {e['mean']:.3f} ± {e['sem_over_seeds'] or 0:.3f} "
                f"(loop fit {e['loop_fit_mean']:.3f}; training sd {e['training_scatter_sd']:.3f}) "
                f"x{e.get('vs_random', float('nan')):.2f} | F {f['mean']:.2f} ± {f['sem_over_seeds'] or 0:.2f} "
                f"x{f.get('vs_random', float('nan')):.2f}  fits/seed {e['fits_per_seed']}"
            )
    if args.out:
        atomic_write_bytes(Path(args.out), json.dumps(summary, indent=1).encode())
    return summary


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="/work/runs/hdnnp_al", help="the --out of hdnnp_active_learning.py")
    p.add_argument("--data", default="/work/runs/hdnnp_data", help="the data the runs were made on")
    p.add_argument("--pools", nargs="+")
    p.add_argument("--strategies", nargs="+")
    p.add_argument("--fits", type=int, default=3, help="extra training seeds per run (default %(default)s)")
    p.add_argument("--summarize", action="store_true")
    p.add_argument("--out", help="with --summarize: write the summary here (JSON)")
    args = p.parse_args()
    if args.fits < 1:
        p.error("--fits must be >= 1")
    summarize(args) if args.summarize else run(args)


if __name__ == "__main__":
    main()
