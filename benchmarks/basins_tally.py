"""Tally the issue-7 acceptance points over the runs of ``benchmarks/basins_cu.py``.

Reads one or more ``results.json`` and prints, per system, how many runs meet each point:
the expected basin sequence, the solid–solid window (cuboctahedron), the melting windows by
basin switch and by heat-capacity peak, the switch within ±50 K of the peak, ARI ≥ 0.9 and
noise ≤ 5 %.

    python benchmarks/basins_tally.py runs/basins20_a/results.json runs/basins20_b/results.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

EXPECTED = {
    "cu147_cubo": ["fcc-like", "icosahedral", "disordered"],
    "cu147_ih": ["icosahedral", "disordered"],
    "cu55_ih": ["icosahedral", "disordered"],
}
MELTING_WINDOW_K = {"cu147_ih": (950.0, 1100.0), "cu55_ih": (800.0, 950.0)}
SOLID_SOLID_WINDOW_K = (200.0, 350.0)


def _ok(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def tally(runs: dict) -> dict:
    """Counts per system of the runs meeting each acceptance point."""
    by_system: dict = defaultdict(list)
    for key, run in runs.items():
        system = re.sub(r"_s\d+$", "", key)
        if system in EXPECTED:
            by_system[system].append({**run, "seed": int(key.rsplit("_s", 1)[1])})
    out = {}
    for system, rs in by_system.items():
        morph = [[b["morphology"] for b in r["basins"]] for r in rs]
        melt = [r["melting_switch_K"] for r in rs]
        cpeak = [r["heat_capacity_peak_K"] for r in rs]
        row = {
            "runs": len(rs),
            "expected_basins": sum(m == EXPECTED[system] for m in morph),
            "ari_ge_0.9": sum(_ok(r["ari_energy_labels"]) and r["ari_energy_labels"] >= 0.9 for r in rs),
            "noise_le_5pc": sum(r["noise_fraction"] <= 0.05 for r in rs),
            "switch_within_50K_of_cpeak": sum(
                _ok(m) and _ok(c) and abs(m - c) <= 50.0 for m, c in zip(melt, cpeak, strict=True)
            ),
            "seeds_ari_below_0.9": {
                r["seed"]: r["ari_energy_labels"]
                for r in rs
                if not (_ok(r["ari_energy_labels"]) and r["ari_energy_labels"] >= 0.9)
            },
            "seeds_switch_off_cpeak": {
                r["seed"]: [m, c]
                for r, m, c in zip(rs, melt, cpeak, strict=True)
                if not (_ok(m) and _ok(c) and abs(m - c) <= 50.0)
            },
        }
        if system in MELTING_WINDOW_K:
            lo, hi = MELTING_WINDOW_K[system]
            row["melting_switch_in_window"] = sum(_ok(m) and lo <= m <= hi for m in melt)
            row["cpeak_in_window"] = sum(_ok(c) and lo <= c <= hi for c in cpeak)
        if system == "cu147_cubo":
            lo, hi = SOLID_SOLID_WINDOW_K
            ss = [r["solid_solid_K"][0] if r["solid_solid_K"] else None for r in rs]
            row["solid_solid_in_window"] = sum(_ok(t) and lo <= t <= hi for t in ss)
        out[system] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results.json of basins_cu.py")
    args = ap.parse_args()
    runs: dict = {}
    for path in args.results:
        runs.update(json.loads(Path(path).read_text())["runs"])
    print(json.dumps(tally(runs), indent=1))


if __name__ == "__main__":
    main()
