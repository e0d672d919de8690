"""``surrodyn calibrate``: infer material parameters from a measured transient through the surrogate."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def _conditions(items: list[str]) -> dict[str, float]:
    from ..errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError as exc:
            raise ConfigError(f"--condition {item!r}: write it as NAME=NUMBER, e.g. voltage_V=1.0.") from exc
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``calibrate`` arguments to ``parser``."""
    parser.add_argument(
        "data",
        nargs="+",
        help="CSV ('time [s], current [mA/cm^2], sigma [...]'; '# key: value' conditions) or .nc; "
        "repeated measurements as 'current_1 [...]', 'current_2 [...]', ... give the noise covariance in time; "
        "several files are one sample measured several times (e.g. at several voltages), calibrated jointly",
    )
    parser.add_argument(
        "--model", action="append", required=True, help="surrogate directory; repeat it for an ensemble (recommended)"
    )
    parser.add_argument(
        "--unknown", required=True, help="comma list, e.g. permittivity,concentration_cm3 (also voltage_offset_V, "
        "hop_rate_factor)"
    )  # fmt: skip
    parser.add_argument("--condition", action="append", default=[], help="known condition NAME=VALUE (repeatable)")
    parser.add_argument(
        "--noise", type=float, help="noise sd as a fraction of max |data|, if the data have no sigma or replicates"
    )
    parser.add_argument(
        "--discrepancy-from", help="the models' training sweep: fit the surrogate error on its test points"
    )
    parser.add_argument(
        "--validation-sweep",
        action="append",
        default=[],
        help="an independent kMC sweep over the models' parameters: fit the surrogate error on all its points "
        "too (repeatable; recommended for honest intervals)",
    )
    parser.add_argument("--level", type=float, default=0.9, help="credible level (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inference and the kMC (default: %(default)s)")
    parser.add_argument("--verify", action="store_true", help="run the kMC ensemble at the estimate and compare")
    parser.add_argument(
        "--replicas", type=int, default=4, help="replicas of the verification kMC (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes of the verification kMC (default: %(default)s)"
    )
    parser.add_argument("--out", default="calibration", help="output directory (default: %(default)s)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..calibration import run_calibration

    run_calibration(
        args.data,
        args.model,
        [u.strip() for u in args.unknown.split(",") if u.strip()],
        args.out,
        conditions=_conditions(args.condition),
        noise=args.noise,
        discrepancy_from=args.discrepancy_from,
        validation=args.validation_sweep,
        level=args.level,
        seed=args.seed,
        verify_kmc=args.verify,
        replicas=args.replicas,
        workers=args.workers,
        figures=not args.no_figures,
    )
    print((Path(args.out) / "report.txt").read_text(), end="")
    print(f"written to {args.out}/")
    return 0
