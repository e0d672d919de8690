"""Entry point of the ``surrodyn`` command; sub-commands are imported lazily."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import SurrodynError

__all__ = ["main"]

# sub-command name -> (module, help)
_COMMANDS = {
    "kmc": ("surrodyn.cli.kmc", "lattice kinetic Monte Carlo: run ensembles, plot results"),
    "continuum": ("surrodyn.cli.continuum", "continuum twin (modified PNP): run it, print scales and layers"),
    "sweep": ("surrodyn.cli.sweep", "parameter sweeps on Dask: run (resumable), status, export"),
    "surrogate": ("surrodyn.cli.surrogate", "TFT surrogate: train, predict, evaluate, explain, export, demo"),
    "cv": ("surrodyn.cli.cv", "learned CVs from MD: train (beta-VAE, AE, PCA, TICA), explain, project, export"),
    "md": ("surrodyn.cli.md", "MD of nanoclusters: heating/cooling ramps over ASE calculators (resumable)"),
    "basins": ("surrodyn.cli.basins", "t-SNE + DBSCAN basins of MD ramps: transition temperatures, morphologies"),
    "potential": ("surrodyn.cli.potential", "neural-network potentials: train, evaluate, active-learn (resumable)"),
    "calibrate": ("surrodyn.cli.calibrate", "infer material parameters from a measured transient via the surrogate"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``surrodyn`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 success, 2 bad input).
    """
    from .. import __version__

    parser = argparse.ArgumentParser(prog="surrodyn", description="Fast, trustworthy surrogates of materials dynamics.")
    parser.add_argument("--version", action="version", version=f"surrodyn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    # only the chosen sub-command's module is imported
    for name, (module, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if argv and argv[0] == name:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (SurrodynError, FileNotFoundError) as exc:
        print(f"surrodyn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("surrodyn: interrupted; finished replicas are kept in the checkpoint directory.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
