"""``surrodyn continuum``: run the continuum twin of a kMC config; print its analytic figures."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``continuum`` sub-commands to ``parser``."""
    from .kmc import _add_config_arguments

    sub = parser.add_subparsers(dest="continuum_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="integrate the modified PNP twin over the config's output times")
    _add_config_arguments(run)
    run.add_argument("--out", default="continuum_seed_case.nc", help="output .nc or .zarr (default: %(default)s)")
    run.add_argument("--refine", type=int, default=1, help="cells per lattice spacing (default: %(default)s)")
    run.add_argument(
        "--contact",
        choices=("lattice", "continuum"),
        default="lattice",
        help="closest approach to the electrodes: one spacing as the kMC, or zero (default: %(default)s)",
    )
    run.add_argument("--plot", action="store_true", help="also draw the figure next to the output (.png)")
    run.set_defaults(func=_run)

    info = sub.add_parser("info", help="print length and time scales, coupling and the steady-state layers")
    _add_config_arguments(info)
    info.set_defaults(func=_info)


def _run(args: argparse.Namespace) -> int:
    from ..continuum import solve_mpnp
    from ..data import check_writable
    from .kmc import _config, _write

    cfg = _config(args)
    out = check_writable(args.out)
    ds = solve_mpnp(cfg, refine=args.refine, contact=args.contact)
    _write(ds, out, args.plot)
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..continuum import charging_times_s, coupling_parameter, debye_length_m, steady_state, voltage_split
    from ..kmc.observables import space_charge_layers
    from ..units import bjerrum_length_m
    from .kmc import _config

    c = _config(args)
    t_end = c.output_times_s[-1]
    volt = float(c.voltage_V(t_end))
    temp = float(c.temperature_K(t_end))
    c0 = c.bulk_concentration_m3
    lam = debye_length_m(c.permittivity, temp, c0)
    diff = c.hop_rate_Hz(temp) * c.spacing_m**2
    times = charging_times_s(lam, c.gap_m, diff)
    split = voltage_split(volt, c.permittivity, temp, c0, filling=c.filling)
    ss = steady_state(c)
    layers = space_charge_layers(
        ss.occupancy, ss.z_m, c.filling, c.spacing_m, c.gap_m, accumulation_at="z0" if volt >= 0 else "zL"
    )
    lines = [
        f"state at t = {t_end:.3g} s: V = {volt:g} V, T = {temp:g} K, theta0 = {c.filling:.4g}, "
        f"c0 = {c0 * 1e-6:.4g} cm^-3",
        f"Debye length      {lam * 1e9:9.3f} nm  ({lam / c.spacing_m:.2f} a; gap {c.gap_m / lam:.1f} lambda_D)",
        f"Bjerrum length    {bjerrum_length_m(c.permittivity, temp) * 1e9:9.3f} nm",
        f"coupling Gamma_p  {coupling_parameter(c.permittivity, temp, c0):9.3f}     (mean field holds for <~ 0.1)",
        f"D = Gamma a^2     {diff:9.3e} m^2/s",
        f"times (s)         Debye {times['debye']:.3e}, RC {times['rc']:.3e}, diffusion {times['diffusion']:.3e}",
        "semi-infinite, analytic:",
        f"  accumulation drop {split.accumulation_drop_V * 1e3:8.2f} mV, contact c/c0 {split.contact_enrichment:.2f}",
        f"  depletion drop    {split.depletion_drop_V * 1e3:8.2f} mV, width {split.depletion_width_m * 1e9:.2f} nm",
        f"  electrode charge  {split.surface_charge_C_m2 * 1e3:8.3f} mC/m^2",
        "finite cell, canonical steady state on the kMC grid:",
        f"  first layer c/c0  {float(layers['first_layer_enrichment']):8.2f}",
        f"  depletion width   {float(layers['depletion_width_m']) * 1e9:8.2f} nm (charge-equivalent), "
        f"{float(layers['half_depletion_width_m']) * 1e9:.2f} nm (to c0/2)",
        f"  electrode charge  {abs(ss.electrode_charge_C_m2) * 1e3:8.3f} mC/m^2",
    ]
    print("\n".join(lines))
    return 0
