"""``surrodyn kmc``: run a kMC ensemble from a YAML config, plot a result, print a template."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``kmc`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="kmc_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run an ensemble and write a NetCDF (or Zarr) dataset")
    _add_config_arguments(run)
    run.add_argument("--out", default="kmc_seed_case.nc", help="output .nc or .zarr (default: %(default)s)")
    run.add_argument("--replicas", type=int, default=4, help="independent replicas (default: %(default)s)")
    run.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    run.add_argument("--plot", action="store_true", help="also draw the figure next to the output (.png)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(func=_run)

    plot = sub.add_parser("plot", help="draw the time × z density heatmap and profiles of a dataset")
    plot.add_argument("dataset", help="a .nc/.zarr written by 'surrodyn kmc run'")
    plot.add_argument("--times", type=float, nargs="+", help="times (s) of the profiles")
    plot.add_argument("--out", help="figure path (default: DATASET with .png)")
    plot.add_argument("--variable", choices=("density", "occupancy"), default="density")
    plot.set_defaults(func=_plot)

    tpl = sub.add_parser("template", help="print the built-in seed-case config as YAML")
    tpl.set_defaults(func=_template)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the positional CONFIG and the repeatable ``--set KEY=VALUE`` override."""
    parser.add_argument("config", nargs="?", help="YAML config (default: the built-in seed case)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config parameter (YAML value), e.g. --set voltage_V=1.0; repeatable",
    )


def _config(args: argparse.Namespace):
    import yaml

    from ..errors import ConfigError
    from ..kmc import KMCConfig, seed_case_config

    base = seed_case_config().to_dict() if args.config is None else None
    if base is None:
        cfg = KMCConfig.from_yaml(args.config)
        base = cfg.to_dict()
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not allowed: expected KEY=VALUE, e.g. --set voltage_V=1.0.")
        base[key.strip()] = yaml.safe_load(value)
    return KMCConfig.from_dict(base)


def _run(args: argparse.Namespace) -> int:
    from ..data import check_writable
    from ..kmc import run_ensemble

    cfg = _config(args)
    out = check_writable(args.out)  # fail before any work
    parts = out.with_name(out.name + ".parts")
    print(
        f"kMC: {cfg.n_ions_resolved} ions on {cfg.nx}×{cfg.ny}×{cfg.nz} sites, {args.replicas} replica(s), "
        f"{len(cfg.output_times_s)} records to {cfg.output_times_s[-1]:.3g} s, seed {args.seed}",
        file=sys.stderr,
    )
    ds = run_ensemble(
        cfg,
        replicas=args.replicas,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        checkpoint_dir=parts,
    )
    _write(ds, out, args.plot)
    shutil.rmtree(parts, ignore_errors=True)
    return 0


def _write(ds, out: Path, plot: bool) -> None:
    """Write a field dataset atomically and, if asked, its figure next to it (``.png``)."""
    from ..data import write_dataset

    write_dataset(ds, out)
    print(f"wrote {out}", file=sys.stderr)
    if plot:
        from ..plot import plot_kmc

        fig_path = out.with_suffix(".png")
        plot_kmc(ds, path=fig_path)
        print(f"wrote {fig_path}", file=sys.stderr)


def _plot(args: argparse.Namespace) -> int:
    from ..data import read_dataset
    from ..plot import plot_kmc

    ds = read_dataset(args.dataset)
    fig_path = Path(args.out) if args.out else Path(args.dataset).with_suffix(".png")
    plot_kmc(ds, times_s=args.times, path=fig_path, variable=args.variable)
    print(f"wrote {fig_path}", file=sys.stderr)
    return 0


def _template(args: argparse.Namespace) -> int:
    from ..kmc import seed_case_config

    sys.stdout.write(seed_case_config().to_yaml())
    return 0
