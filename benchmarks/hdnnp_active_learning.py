"""Active learning of an HDNNP on EMT Cu13/Cu55: autoencoder query vs random vs committee.

Protocol (``../shared/reference/md-mlff.md``): start from 10 random labels, query batches of 10 for
9 rounds, score every round on the balanced test set; imbalanced pool (60% Cu55-Ih at 300 K) and
balanced pool; 3 seeds. The reference is the same EMT that made the data (asap3 when installed),
called through the label cache, so every label the loop uses is paid for in the loop.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/hdnnp_data.py                   # data, ~1 min
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_active_learning.py --pools imbalanced
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_active_learning.py --pools balanced
    python benchmarks/hdnnp_active_learning.py --summarize              # tables + figures
    # convergence check of the per-round training (docs/potentials.md)
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_active_learning.py --out /work/runs/hdnnp_al5 \
        --pools imbalanced --strategies random --max-epochs 4000
    # the worst-atom structure score (docs/potentials.md: worse than the mean)
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_active_learning.py --out /work/runs/hdnnp_al6 \
        --pools imbalanced --strategies autoencoder --rounds 4 --ae-score max

Runs are resumable (``surrodyn.potentials.active_learn``); rerunning skips finished rounds.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read

from surrodyn.data.io import atomic_write_json
from surrodyn.md import make_calculator
from surrodyn.potentials import ActiveLearningConfig, AutoencoderConfig, TrainConfig, active_learn

METRICS = {"energy": "energy_rmse_meV_per_atom", "forces": "force_rmse_meV_per_A"}
# No hold-out: at 10-100 labels a 10 % validation set is 1-10 structures and early stopping on it
# stops at random (300 epochs with patience 50 on 4 held-out structures: 4.3-9.2 meV/atom over three
# training seeds of one 40-label set; all 40 for 1500 epochs: 0.5-1.3). Every strategy trains alike.
# 1500 epochs is the documented protocol, but it is not converged (the best loss comes in the last
# epochs); --max-epochs 4000 is the convergence check of docs/potentials.md.
AL_TRAIN = {"validation_fraction": 0.0, "max_epochs": 1500, "refit_output": True}
# the committee (about 1,300 CPU s per run) was first run before the diversity pool widened from 5
# to the library default of 20 (which the autoencoder uses); its later seeds keep 5 so that all six
# runs are alike (--committee-pool 20 for the library default)
COMMITTEE_POOL = 5


def run(args: argparse.Namespace) -> None:
    """Run every (pool, strategy, seed) not finished yet."""
    torch.set_num_threads(1)
    data = Path(args.data)
    test = read(data / "test.extxyz", ":")
    manifest = json.loads((data / "manifest.json").read_text())
    # label with exactly the EMT implementation that made the data (asap3's and ASE's differ by ~5 meV/atom)
    calc = "asap3-emt" if "asap3" in manifest["calculator"]["class"] else "ase-emt"
    for pool_name in args.pools:
        pool = read(data / f"pool_{pool_name}.extxyz", ":")
        for seed in args.seeds:
            for strategy in args.strategies:
                cfg = ActiveLearningConfig(
                    strategy=strategy,
                    seed=seed,
                    committee_size=args.committee_size,
                    n_rounds=args.rounds,
                    train=TrainConfig(**{**AL_TRAIN, "max_epochs": args.max_epochs}),
                    **({"diversity_pool": args.committee_pool} if strategy == "committee" else {}),
                    **({"autoencoder": AutoencoderConfig(score=args.ae_score)} if strategy == "autoencoder" else {}),
                )
                out = Path(args.out) / pool_name / strategy / f"seed{seed}"
                t0, c0 = time.perf_counter(), time.process_time()
                tag = f"{pool_name:10s} {strategy:11s} s{seed}"
                res = active_learn(
                    pool,
                    functools.partial(make_calculator, calc),
                    cfg,
                    out,
                    test=test,
                    on_round=functools.partial(_report, tag),
                )
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                print(f"done {tag}: cost {res.cost_s:.0f} s, wall {wall:.0f} s, cpu {cpu:.0f} s", flush=True)


def _report(tag: str, r: dict) -> None:
    m = r["metrics"]
    print(
        f"{tag} n={r['n_labels']:3d} E={m['energy_rmse_meV_per_atom']:6.2f} F={m['force_rmse_meV_per_A']:6.1f} "
        f"train {r['train_s']:5.1f}s query {r['query_s']:5.1f}s",
        flush=True,
    )


def _labels_to_reach(n: np.ndarray, err: np.ndarray, level: float) -> float:
    """Smallest label count at which the curve is at or below ``level`` (linear interpolation)."""
    below = np.nonzero(err <= level)[0]
    if len(below) == 0:
        return float("nan")
    k = below[0]
    if k == 0:
        return float(n[0])
    # interpolate in log(error) between the last point above and the first below
    x0, x1, y0, y1 = n[k - 1], n[k], np.log(err[k - 1]), np.log(err[k])
    return float(x0 + (np.log(level) - y0) * (x1 - x0) / (y1 - y0))


def finished_runs(root: Path) -> list[tuple[Path, list[dict]]]:
    """``(run directory, rounds)`` of every finished run ``POOL/STRATEGY/seedN`` under ``root``."""
    out = []
    for state_path in sorted(root.glob("*/*/seed*/state.json")):
        state = json.loads(state_path.read_text())
        if len(state["rounds"]) == state["config"]["n_rounds"] + 1:
            out.append((state_path.parent, state["rounds"]))
    return out


def _entries_from_runs(root: Path) -> dict:
    """Per pool and strategy: label counts, per-seed curves and costs of the finished runs under ``root``."""
    grouped: dict = {}
    for run_dir, rounds in finished_runs(root):
        grouped.setdefault(run_dir.parts[-3], {}).setdefault(run_dir.parts[-2], []).append(rounds)
    found: dict = {}
    for pool_name, strategies in grouped.items():
        for strategy, runs in strategies.items():
            found.setdefault(pool_name, {})[strategy] = {
                "n_labels": [r["n_labels"] for r in runs[0]],
                "seeds": len(runs),
                "source": str((root / pool_name / strategy).resolve()),  # the run directory, not a symlink to it
                **{
                    key: {"per_seed": [[r["metrics"][metric] for r in rounds] for rounds in runs]}
                    for key, metric in METRICS.items()
                },
                "cost_s": [float(sum(r["train_s"] + r["query_s"] for r in rounds)) for rounds in runs],
                "query_s": [float(sum(r["query_s"] for r in rounds)) for rounds in runs],
            }
    return found


def summarize(args: argparse.Namespace) -> dict:
    """Mean ± sd curves, labels to reach random's mean 100-label error (mean curve and per seed), cost ratio.

    Strategies with no finished run under ``--out`` are taken from the ``--with-summary`` files
    (an earlier summary's per-seed curves and costs), and marked with their source and the file
    they were merged from. CPU time compares within one machine only, so the autoencoder/committee
    cost ratio is written only when both costs have one origin (both run under ``--out``, or both
    from the same earlier summary); otherwise it is ``null`` with a ``cost_ratio_note``.
    """
    from surrodyn.plot.potentials import plot_learning_curves

    root = Path(args.out)
    summary: dict = {"machine": platform.processor() or platform.machine(), "python": sys.version.split()[0]}
    found = _entries_from_runs(root)
    for path in args.with_summary or []:
        stored = json.loads(Path(path).read_text())
        for pool_name, pool in stored.items():
            if not isinstance(pool, dict):
                continue
            for strategy, entry in pool.items():
                if not (isinstance(entry, dict) and "n_labels" in entry) or strategy in found.get(pool_name, {}):
                    continue
                found.setdefault(pool_name, {})[strategy] = {
                    "n_labels": entry["n_labels"],
                    "seeds": entry["seeds"],
                    "source": entry.get("source", str(path)),  # keep the original run directory
                    "merged_from": entry.get("merged_from", str(path)),
                    **{key: {"per_seed": entry[key]["per_seed"]} for key in METRICS},
                    "cost_s": entry["cost_s"],
                    "query_s": entry["query_s"],
                }
    for pool_name, pool in sorted(found.items()):
        curves: dict = {m: {} for m in METRICS}
        for name, entry in pool.items():
            n = np.array(entry["n_labels"])
            for key in METRICS:
                err = np.array(entry[key]["per_seed"])
                entry[key]["mean"] = err.mean(0).tolist()
                entry[key]["sd"] = err.std(0, ddof=1 if len(err) > 1 else 0).tolist()
                curves[key][name] = [(n, e) for e in err]
        if "random" in pool:
            for key in METRICS:
                level = pool["random"][key]["mean"][-1]
                for entry in pool.values():
                    mean, n = np.array(entry[key]["mean"]), np.array(entry["n_labels"])
                    entry[key]["labels_to_reach_random_final"] = _labels_to_reach(n, mean, level)
                    entry[key]["labels_to_reach_per_seed"] = [
                        _labels_to_reach(n, np.array(e), level) for e in entry[key]["per_seed"]
                    ]
                    entry[key]["final_vs_random"] = float(mean[-1] / level)
        if "autoencoder" in pool and "committee" in pool:
            # CPU time is comparable within one machine only: no ratio across runs of different origins
            origins = sorted({pool[s].get("merged_from", f"runs under {root}") for s in ("autoencoder", "committee")})
            ratio = np.mean(pool["autoencoder"]["cost_s"]) / np.mean(pool["committee"]["cost_s"])
            pool["cost_ratio_autoencoder_over_committee"] = float(ratio) if len(origins) == 1 else None
            if len(origins) > 1:
                pool["cost_ratio_note"] = "not computed: the costs come from " + " and ".join(origins)
        for key in METRICS:
            if curves[key]:
                level = pool.get("random", {}).get(key, {}).get("mean", [None])[-1]
                label = "energy RMSE (meV/atom)" if key == "energy" else "force RMSE (meV/Å)"
                fig = plot_learning_curves(
                    curves[key], metric_label=label, reference_level=level, reference_label="random, final round"
                )
                fig.axes[0].set_title(f"{pool_name} pool")
                fig.savefig(root / f"learning_{pool_name}_{key}.png", dpi=120, bbox_inches="tight")
        summary[pool_name] = pool
    atomic_write_json(root / "summary.json", summary)  # NaN (a level never reached) -> null
    print(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/runs/hdnnp_data")
    p.add_argument("--out", default="/work/runs/hdnnp_al")
    p.add_argument("--pools", nargs="+", default=["imbalanced", "balanced"])
    p.add_argument("--strategies", nargs="+", default=["autoencoder", "random", "committee"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--committee-size", type=int, default=4)
    p.add_argument("--max-epochs", type=int, default=AL_TRAIN["max_epochs"], help="training epochs per round")
    p.add_argument(
        "--rounds",
        type=int,
        default=ActiveLearningConfig().n_rounds,
        help="query rounds after the initial labels (default %(default)s: 10 -> 100 labels)",
    )
    p.add_argument(
        "--committee-pool",
        type=int,
        default=COMMITTEE_POOL,
        help="diversity pool of the committee (default %(default)s, the documented runs; the library default is 20)",
    )
    p.add_argument(
        "--ae-score",
        choices=["mean", "max"],
        default=AutoencoderConfig().score,
        help="how the autoencoder query turns per-atom errors into a structure score (default %(default)s)",
    )
    p.add_argument("--summarize", action="store_true")
    p.add_argument(
        "--with-summary",
        nargs="+",
        metavar="JSON",
        help="with --summarize: take strategies that have no finished run under --out from these earlier summaries",
    )
    args = p.parse_args()
    summarize(args) if args.summarize else run(args)


if __name__ == "__main__":
    main()
