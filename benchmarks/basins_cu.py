"""Basins of Cu nanocluster heating ramps: t-SNE + DBSCAN against the caloric curve (issue 7).

Runs (or resumes) the EMT Langevin ramps of the protocol in ``../shared/reference/md-mlff.md`` with
asap3's EMT when installed (ASE's otherwise: ~25 min per Cu147 ramp), analyses every ramp with the
defaults of ``surrodyn.analysis.analyse_ramp`` and writes per-run reports, figures of seed 0 and
``results.json`` with the acceptance figures and the analysis CPU time per 1000 frames.

    OMP_NUM_THREADS=1 python benchmarks/basins_cu.py --ramps runs/ramps --out runs/basins
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # unpinned t-SNE is 10x slower on a shared 2-core machine

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from surrodyn.analysis import DESCRIPTOR_PRESETS, analyse_ramp, descriptor_preset, nearest_neighbour_cutoff, summarize
from surrodyn.data.io import atomic_write_json
from surrodyn.md import ClusterSpec, RampConfig, run_ramp

SYSTEMS = {
    "cu147_cubo": dict(cluster=ClusterSpec("cuboctahedron", 4), start_K=100.0),
    "cu147_ih": dict(cluster=ClusterSpec("icosahedron", 4)),
    "cu55_ih": dict(cluster=ClusterSpec("icosahedron", 3)),
    "cu54_ih": dict(cluster=ClusterSpec("icosahedron", 3, n_atoms=54)),
    "cu56_ih": dict(cluster=ClusterSpec("icosahedron", 3, n_atoms=56)),
    # a three times slower ramp (2.2 K/ps instead of 6.5) for the ramp-rate spread
    "cu147_cubo_slow": dict(cluster=ClusterSpec("cuboctahedron", 4), start_K=100.0, steps=300_000),
    "cu55_ih_slow": dict(cluster=ClusterSpec("icosahedron", 3), steps=300_000),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ramps", default="runs/basins_ramps", help="ramp directories (resumed if present)")
    ap.add_argument("--out", default="runs/basins", help="reports, figures and results.json")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--descriptors",
        choices=DESCRIPTOR_PRESETS,
        default="default",
        help="frame descriptors (surrodyn.analysis.descriptor_preset): Steinhardt + CNA (default), with the "
        "distributions, or DScribe's atom-averaged SOAP + CNA (needs `pip install dscribe`)",
    )
    args = ap.parse_args()
    ramps, out = Path(args.ramps), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS="
        + os.environ["OMP_NUM_THREADS"],
        "descriptors": args.descriptors,
        "runs": {},
        "summary": {},
    }
    for name in args.systems.split(","):
        analyses = []
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = RampConfig(seed=seed, **SYSTEMS[name])
            rdir = ramps / f"{name}_s{seed}"
            t0 = time.process_time()
            # resumes a finished or interrupted ramp; refuses one made with other settings
            ds = run_ramp(cfg, rdir, progress=False)
            md_s = time.process_time() - t0
            cutoff = nearest_neighbour_cutoff(ds.positions.values[0])
            res = analyse_ramp(ds, descriptors=descriptor_preset(args.descriptors, cutoff))
            res.save(out / name / f"s{seed}", figures=seed == 0)
            d = res.to_dict()
            frames = d["n_frames"]
            d["analysis_cpu_s_per_1000_frames"] = (
                1000.0 * (res.timings_s["descriptors"] + res.timings_s["embedding_clustering"]) / frames
            )
            d["md_cpu_s"] = md_s
            d["ramp_rate_K_per_ps"] = float(ds.attrs["ramp_rate_K_per_ps"])
            d["calculator"] = str(ds.attrs["calculator"])
            results["runs"][f"{name}_s{seed}"] = d
            analyses.append(res)
            print(
                f"{name} s{seed}: {res.to_text()}\n"
                f"  analysis {d['analysis_cpu_s_per_1000_frames']:.1f} CPU-s/1000 frames"
            )
        s = summarize(analyses)
        s["morphologies"] = [[b["morphology"] for b in a.to_dict()["basins"]] for a in analyses]
        results["summary"][name] = s
        print(
            f"== {name}: melting {s['melting_switch_K']['mean']:.0f} ± {s['melting_switch_K']['std']:.0f} K, "
            f"Cv peak {s['heat_capacity_peak_K']['mean']:.0f} ± {s['heat_capacity_peak_K']['std']:.0f} K, "
            f"basins {s['n_basins']}, ARI {np.round(s['ari'], 3).tolist()}"
        )
        atomic_write_json(out / "results.json", results)  # NaN (a transition not found) -> null


if __name__ == "__main__":
    main()
