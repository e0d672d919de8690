"""Solid–liquid coexistence in basin analyses: do frames labelled liquid below the melting switch hold more energy?

A small cluster near melting flips between solid and liquid, so its basin sequence interleaves
over a window of temperatures, while the energy-based reference labels (a contiguous piecewise
fit of the caloric curve) cannot. This reads the ``basins.nc`` of ``benchmarks/basins_cu.py``
runs and, for the melting pair of basins (the last ordered basin and the first disordered one),
takes the window from the first liquid-labelled frame to the last solid-labelled frame. Inside
it the potential energy is detrended by one straight line in temperature; if the labels follow
real flips, the liquid-labelled frames sit higher (by part of the latent heat) than the
solid-labelled frames at the same temperature. Welch's t of the difference is reported. This is
consistent with coexistence but does not prove it: structural labels correlate with energy even
within one state. Sarle's bimodality coefficient of the detrended energies (labels aside) is
the label-free check.

    python benchmarks/basins_coexistence.py runs/basins20_a/cu55_ih --out runs/coexistence_cu55.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.stats import kurtosis, skew, ttest_ind

from surrodyn.data.io import atomic_write_json


def coexistence(path: Path) -> dict:
    """Energy offset of liquid- against solid-labelled frames in the overlap window of one run."""
    with xr.open_dataset(path) as ds:
        report = json.loads(ds.attrs["report"])
        lab = ds.basin.values
        t = ds.target_temperature.values
        e = ds.potential_energy.values
    morph = [b["morphology"] for b in report["basins"]]
    out: dict = {"run": str(path.parent), "ari": report["ari_energy_labels"], "morphologies": morph}
    liquid = [i for i, m in enumerate(morph) if m == "disordered"]
    if not liquid or liquid[0] == 0:
        return {**out, "window_K": None}
    s, q = liquid[0] - 1, liquid[0]
    first_q, last_s = np.flatnonzero(lab == q)[0], np.flatnonzero(lab == s)[-1]
    if first_q > last_s:
        return {**out, "window_K": None}
    idx = np.arange(first_q, last_s + 1)
    idx = idx[np.isin(lab[idx], (s, q))]
    res = e[idx] - np.polyval(np.polyfit(t[idx], e[idx], 1), t[idx])
    rs, rq = res[lab[idx] == s], res[lab[idx] == q]
    welch = ttest_ind(rq, rs, equal_var=False) if min(len(rs), len(rq)) >= 2 else None
    n = len(res)
    # Sarle's bimodality coefficient of the detrended energies, labels aside: 1/3 for a Gaussian,
    # above 5/9 suggests two modes
    bc = (skew(res, bias=False) ** 2 + 1) / (kurtosis(res, bias=False) + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return {
        **out,
        "window_K": [float(t[first_q]), float(t[last_s])],
        "frames_solid_liquid": [len(rs), len(rq)],
        "energy_offset_eV": float(rq.mean() - rs.mean()) if len(rq) and len(rs) else None,
        "welch_t": None if welch is None else float(welch.statistic),
        "energy_bimodality_coefficient": float(bc),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="system directories of basins_cu.py (holding s0/, s1/, ...)")
    ap.add_argument("--out", help="write the table as JSON")
    args = ap.parse_args()
    rows = []
    for d in args.dirs:
        for nc in sorted(Path(d).glob("s*/basins.nc"), key=lambda p: int(p.parent.name[1:])):
            r = coexistence(nc)
            rows.append(r)
            if r["window_K"] is None:
                print(f"{r['run']}: no overlap of the solid and liquid basins")
                continue
            ari = "n/a" if r["ari"] is None else f"{r['ari']:.3f}"
            if r["welch_t"] is None:
                print(f"{r['run']}: ARI {ari}; overlap window with fewer than 2 frames of a basin")
                continue
            print(
                f"{r['run']}: ARI {ari}; window {r['window_K'][0]:.0f}-{r['window_K'][1]:.0f} K, "
                f"{r['frames_solid_liquid'][0]} solid / {r['frames_solid_liquid'][1]} liquid frames, "
                f"liquid - solid energy {r['energy_offset_eV']:+.2f} eV (Welch t {r['welch_t']:.1f}); "
                f"energy bimodality coefficient {r['energy_bimodality_coefficient']:.2f}"
            )
    if args.out:
        atomic_write_json(Path(args.out), {"runs": rows}, indent=1)


if __name__ == "__main__":
    main()
