"""``surrodyn sweep``: run a parameter sweep on Dask, report its status, export it to one NetCDF."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sweep`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run the missing and failed points of a sweep (resumable)")
    run.add_argument("spec", nargs="?", help="sweep spec YAML (default: the spec kept in an existing --store)")
    run.add_argument("--store", required=True, help="store directory (created if needed; rerun to resume)")
    run.add_argument(
        "--scheduler",
        help="a running Dask scheduler: its address (tcp://host:8786) or scheduler file (.json); "
        "default: a local cluster",
    )
    run.add_argument("--workers", type=int, help="worker processes of the local cluster (default: the cores)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="count done / failed / missing points and list the failures")
    status.add_argument("store", help="store directory")
    status.add_argument("--traceback", action="store_true", help="also print the failures' tracebacks")
    status.set_defaults(func=_status)

    export = sub.add_parser("export", help="write the whole sweep as one NetCDF with a 'point' dim")
    export.add_argument("store", help="store directory")
    export.add_argument("--out", required=True, help="output .nc file")
    export.add_argument(
        "--drop-missing",
        action="store_true",
        help="leave out failed and missing points (default: keep them, NaN-filled, with point_status)",
    )
    export.set_defaults(func=_export)


def _print_failures(status, store, tracebacks: bool = False, limit: int | None = None, file=None) -> None:
    from ..sweep.store import point_name

    shown = status.failed if limit is None else status.failed[:limit]
    for f in shown:
        params = ", ".join(f"{k}={v:.4g}" for k, v in f.params.items())
        print(f"  {point_name(f.index)} ({params}): {f.error_type}: {f.message}", file=file)
        if tracebacks and f.traceback:
            print("    " + f.traceback.rstrip().replace("\n", "\n    "), file=file)
    if len(shown) < len(status.failed):
        print(f"  ... and {len(status.failed) - len(shown)} more: surrodyn sweep status {store}", file=file)


def _run(args: argparse.Namespace) -> int:
    from ..sweep import SweepSpec, SweepStore, run_sweep

    spec = SweepSpec.from_yaml(args.spec) if args.spec else SweepStore(args.store).spec
    base = spec.base
    if args.scheduler:
        where = f"the Dask scheduler {args.scheduler}"
    else:
        where = f"a local Dask cluster of {args.workers or 'one worker per core'}"
    print(
        f"sweep {spec.name!r}: {spec.size} points ({spec.sampling}, seed {spec.seed}) × {spec.replicas} replica(s) "
        f"on {base.nx}×{base.ny}×{base.nz} sites, {len(base.output_times_s)} records to "
        f"{base.output_times_s[-1]:.3g} s{', with the continuum twin' if spec.continuum else ''}; "
        f"store {args.store}, on {where}",
        file=sys.stderr,
    )
    status = run_sweep(spec, args.store, scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress)
    print(f"{status.summary()} (this run attempted {len(status.computed)})", file=sys.stderr)
    if status.failed:
        print("failed points (retried by the next run):", file=sys.stderr)
        _print_failures(status, args.store, limit=10, file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..sweep import SweepStore

    store = SweepStore(args.store)
    spec = store.spec
    status = store.status()
    print(f"store {store.path}: sweep {spec.name!r} ({spec.sampling}, seed {spec.seed}), {spec.replicas} replica(s)")
    print(status.summary())
    if status.failed:
        print("failed points (retried by the next 'surrodyn sweep run'):")
        _print_failures(status, args.store, tracebacks=args.traceback)
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..sweep import export_sweep

    out = export_sweep(args.store, args.out, missing="drop" if args.drop_missing else "nan")
    print(f"wrote {out}", file=sys.stderr)
    return 0
