"""``surrodyn basins``: t-SNE + DBSCAN basins of ramps, transition temperatures, morphologies."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``basins`` arguments to ``parser``."""
    parser.add_argument("traj", nargs="+", help="ramp directories / ramp.nc of `surrodyn md ramp`, or ASE trajectories")
    parser.add_argument("--out", required=True, help="output directory (one sub-directory per trajectory)")
    parser.add_argument("--perplexity", type=float, default=50.0, help="t-SNE perplexity (default: %(default)s)")
    parser.add_argument("--min-samples", type=int, default=10, help="DBSCAN min_samples (default: %(default)s)")
    parser.add_argument("--clusterer", choices=("dbscan", "hdbscan"), default="dbscan", help="(default: %(default)s)")
    parser.add_argument(
        "--merge",
        choices=("valley", "centroid", "none"),
        default="valley",
        help="merge rule for clusters that are one basin (default: %(default)s)",
    )
    parser.add_argument(
        "--merge-threshold",
        type=float,
        default=None,
        help="valley ratio at or above which clusters merge (default 0.6), or spreads under which they "
        "merge with --merge centroid (default 1)",
    )
    parser.add_argument(
        "--no-split", action="store_true", help="keep DBSCAN's clusters whole (no split at smaller radii)"
    )
    parser.add_argument(
        "--min-basin-fraction", type=float, default=0.05, help="smaller clusters join their neighbour (default: 0.05)"
    )
    parser.add_argument(
        "--descriptors",
        choices=("default", "distributions", "soap"),  # surrodyn.analysis.DESCRIPTOR_PRESETS (imported lazily)
        default="default",
        help="frame descriptors: Steinhardt + CNA (default); 'distributions' adds the coordination "
        "histogram and radial distribution; 'soap' is DScribe's atom-averaged SOAP + CNA "
        "(pip install -e '.[soap]')",
    )
    parser.add_argument("--seed", type=int, default=0, help="t-SNE seed (default: %(default)s)")
    parser.add_argument(
        "--quench",
        choices=("none", "emt", "asap3-emt", "ase-emt"),
        default="none",
        help="minimise the representative frames with this calculator (default: %(default)s)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..analysis import (
        BasinFinder,
        analyse_ramp,
        descriptor_preset,
        nearest_neighbour_cutoff,
        read_frames,
        summarize,
    )
    from ..analysis.basins import SPLIT_FACTORS
    from ..data.io import atomic_write_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, path in enumerate(args.traj):
        finder = BasinFinder(
            perplexity=args.perplexity,
            min_samples=args.min_samples,
            clusterer=args.clusterer,
            merge=None if args.merge == "none" else args.merge,
            merge_threshold=args.merge_threshold,
            split_factors=None if args.no_split else SPLIT_FACTORS,
            min_basin_fraction=args.min_basin_fraction,
            random_state=args.seed,
        )
        frames = read_frames(path)
        desc = descriptor_preset(args.descriptors, nearest_neighbour_cutoff(frames.positions.values[0]))
        result = analyse_ramp(frames, descriptors=desc, finder=finder, progress=True)
        calc = None
        if args.quench != "none":
            from ..md import make_calculator

            calc = make_calculator(args.quench)
        name = Path(path).name if Path(path).name != "ramp.nc" else Path(path).parent.name
        result.save(out / f"{i:02d}_{name}", quench_calculator=calc, figures=not args.no_figures)
        print(f"[{path}]\n{result.to_text()}\n")
        results.append(result)
    if len(results) > 1:
        s = summarize(results)
        atomic_write_json(out / "summary.json", s, indent=2)
        for key in ("melting_switch_K", "heat_capacity_peak_K", "lindemann_K", "solid_solid_K"):
            print(f"{key:22s} {s[key]['mean']:7.0f} ± {s[key]['std']:5.0f} K  (runs: {s[key]['values']})")
    return 0
