"""Where the test error of the active-learning runs comes from: errors per test condition.

For every finished run under ``--runs`` (``POOL/STRATEGY/seedN`` as written by
``hdnnp_active_learning.py``) the last round's potential is scored on the balanced test set with
:func:`surrodyn.potentials.errors_by_group`, grouped by the frames' ``condition``. The summary gives,
per (pool, strategy), the mean over seeds of the whole-set energy RMSE, the RMSE without the
``--exclude`` conditions, and the energy bias of the excluded ones.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/hdnnp_error_breakdown.py --runs /work/runs/hdnnp_al3 \\
        --out docs/img/potentials/error_breakdown.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from ase.io import read

from surrodyn.potentials import HDNNP, FingerprintSet, errors_by_group

HOT_CU13 = ["Cu13-icosahedron@1100K", "Cu13-icosahedron@1300K"]


def _pooled_rmse(groups: list[dict]) -> float:
    """Energy RMSE over the structures of several groups (each group's mean square, weighted by its size)."""
    n = np.array([m["n_structures"] for m in groups])
    ms = np.array([m["energy_rmse_meV_per_atom"] ** 2 for m in groups])
    return float(np.sqrt((n * ms).sum() / n.sum()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="/work/runs/hdnnp_al3")
    p.add_argument("--data", default="/work/runs/hdnnp_data")
    p.add_argument("--exclude", nargs="+", default=HOT_CU13, help="conditions reported apart")
    p.add_argument("--out", help="write the per-run breakdown here (JSON)")
    args = p.parse_args()
    test = read(Path(args.data) / "test.extxyz", ":")
    groups = [a.info["condition"] for a in test]
    sets: dict = {}
    runs = sorted(Path(args.runs).glob("*/*/seed*/potential"))
    if not runs:
        raise SystemExit(f"no finished runs (POOL/STRATEGY/seedN/potential) under {args.runs}")
    results = {}
    for path in runs:
        pot = HDNNP.load(path)
        key = json.dumps(pot.descriptor.to_dict(), sort_keys=True)
        if key not in sets:
            sets[key] = FingerprintSet(test, pot.descriptor)
        by = errors_by_group(pot, sets[key], groups)
        pool, strategy, seed = path.parts[-4:-1]
        n_labels = json.loads((path.parent / "state.json").read_text())["rounds"][-1]["n_labels"]
        rest = [g for g in by if g not in args.exclude]
        rmse_rest, rmse_all = (_pooled_rmse([by[g] for g in names]) for names in (rest, list(by)))
        results[f"{pool}/{strategy}/{seed}"] = {
            "n_labels": n_labels,
            "energy_rmse_meV_per_atom": rmse_all,
            "energy_rmse_without_excluded": rmse_rest,
            "excluded_bias_meV_per_atom": {g: by[g]["energy_bias_meV_per_atom"] for g in args.exclude if g in by},
            "by_condition": by,
        }
    print(f"excluded: {args.exclude}")
    print(f"{'pool/strategy':28s} {'labels':>6s} {'E all':>6s} {'E rest':>6s}  excluded bias (meV/atom)")
    for ps in sorted({k.rsplit("/", 1)[0] for k in results}):
        rows = [v for k, v in results.items() if k.rsplit("/", 1)[0] == ps]
        bias = [np.mean(list(r["excluded_bias_meV_per_atom"].values())) for r in rows]
        print(
            f"{ps:28s} {rows[0]['n_labels']:6d} {np.mean([r['energy_rmse_meV_per_atom'] for r in rows]):6.2f} "
            f"{np.mean([r['energy_rmse_without_excluded'] for r in rows]):6.2f}  "
            f"{np.mean(bias):+.2f} (seeds {', '.join(f'{b:+.2f}' for b in bias)})"
        )
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"runs": str(args.runs), "excluded": args.exclude, "results": results}
        with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as fh:
            json.dump(payload, fh, indent=1)
        os.replace(fh.name, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
