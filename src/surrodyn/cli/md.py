"""``surrodyn md``: heating and cooling ramps of nanoclusters (ASE Langevin over any EMT)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``md`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="md_command", metavar="ACTION", required=True)
    ramp = sub.add_parser("ramp", help="run (or resume) a heating/cooling ramp of a cluster from a YAML config")
    ramp.add_argument(
        "config", help="YAML: cluster, temperature_K, steps, stride, seed, ... (examples/ramp_cu147.yaml)"
    )
    ramp.add_argument("--out", help="output directory (default: the config's 'out', else ramp_<cluster>_s<seed>)")
    ramp.add_argument("--seed", type=int, help="override the config's seed")
    ramp.add_argument("--no-progress", action="store_true", help="no progress bar")
    ramp.set_defaults(func=_ramp)


def _ramp(args: argparse.Namespace) -> int:
    import dataclasses

    from ..errors import ConfigError, read_yaml_mapping
    from ..md import RampConfig, run_ramp

    data = read_yaml_mapping(args.config, "ramp config")
    if not isinstance(data, dict):
        raise ConfigError(f"{args.config!r}: a ramp config is a mapping, e.g. {{cluster: {{shape: icosahedron}}}}.")
    yaml_out = data.pop("out", None)
    cfg = RampConfig.from_dict(data)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    out = args.out or yaml_out or f"ramp_{cfg.cluster.label}_s{cfg.seed}"
    ds = run_ramp(cfg, out, progress=not args.no_progress)
    print(
        f"{ds.attrs['cluster']}: {ds.sizes['frame']} frames, {ds.target_temperature.values[0]:.0f} -> "
        f"{ds.target_temperature.values[-1]:.0f} K at {ds.attrs['ramp_rate_K_per_ps']:.2f} K/ps "
        f"({ds.attrs['calculator']}); written to {out}/ramp.nc and {out}/frames.extxyz"
    )
    return 0
