"""Observables computed from layer occupancies: planar potential, electrode charge, current.

The same functions serve the kMC, its continuum twin and (later) the surrogate, so an observable
means the same thing whichever model produced the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_M
from .config import KMCConfig
from .green import parallel_plate_green

__all__ = [
    "charge_from_density_C_m2",
    "charging_crossing_time_s",
    "current_A_m2",
    "current_from_charge_A_m2",
    "differential_capacitance_F_m2",
    "electrode_charge_C_m2",
    "planar_potential_V",
    "space_charge_layers",
]


def planar_potential_V(layer_counts: np.ndarray, config: KMCConfig, voltage_V: np.ndarray | float) -> np.ndarray:
    """Planar mean electrostatic potential at every layer.

    Parameters
    ----------
    layer_counts : ndarray, shape (..., nz)
        Number of ions in each layer.
    config : KMCConfig
        The simulated system.
    voltage_V : float or ndarray, shape (...)
        Applied voltage at each record.

    Returns
    -------
    ndarray, shape (..., nz)
        ``phi(z) = V (z+1)/(nz+1) + e/(eps a) · sum_z' g_pp(z, z') (N_z' - theta0 A) / A`` in V,
        where ``g_pp`` is :func:`~surrodyn.kmc.green.parallel_plate_green` and A = nx·ny.
        Without Coulomb interaction only the applied part is returned.
    """
    nz = config.nz
    counts = np.asarray(layer_counts, dtype=float)
    v = np.asarray(voltage_V, dtype=float)[..., None]
    applied = v * (np.arange(nz) + 1) / (nz + 1)
    if not config.coulomb:
        return np.broadcast_to(applied, counts.shape).copy()
    area_sites = config.nx * config.ny
    excess = counts - config.filling * area_sites
    g = parallel_plate_green(nz)
    return applied + config.coulomb_scale_V * (excess @ g.T) / area_sites


def electrode_charge_C_m2(layer_counts: np.ndarray, config: KMCConfig, voltage_V: np.ndarray | float) -> np.ndarray:
    """Surface charge density on the electrode at ``z = L`` (held at ``V``), in C/m².

    Parameters
    ----------
    layer_counts : ndarray, shape (..., nz)
        Number of ions in each layer.
    config : KMCConfig
        The simulated system.
    voltage_V : float or ndarray, shape (...)
        Applied voltage.

    Returns
    -------
    ndarray, shape (...)
        ``sigma = eps V / L - (e/A) sum_i [(z_i+1)/(nz+1) - 1/2]`` (the image charge of the
        ions and of the neutralising background, plus the bare capacitor). The electrode at
        ``z = 0`` carries ``-sigma``.
    """
    nz = config.nz
    counts = np.asarray(layer_counts, dtype=float)
    lever = (np.arange(nz) + 1) / (nz + 1) - 0.5
    induced = -ELEMENTARY_CHARGE_C * (counts @ lever) / config.area_m2
    cap = VACUUM_PERMITTIVITY_F_M * config.permittivity * np.asarray(voltage_V, dtype=float) / config.gap_m
    return cap + induced


def charge_from_density_C_m2(
    density: Any,
    z_m: np.ndarray,
    gap_m: float,
    permittivity: Any,
    concentration_m3: Any,
    voltage_V: Any,
) -> Any:
    """Electrode charge (at ``z = L``, held at ``V``) of a normalised density profile, in C/m².

    One formula for every model that gives a profile ``n(z)/c0``: the kMC layers, the continuum
    cells, the surrogate's prediction. It is linear in the density, so it also takes torch
    tensors (then it is differentiable in every argument).

    Parameters
    ----------
    density : ndarray or torch.Tensor, shape (..., z)
        Ion density over the bulk concentration in evenly spaced bins (layers or cells).
    z_m : ndarray, shape (z,)
        Bin centres (m), ``0 < z < L``.
    gap_m : float
        Electrode separation ``L``.
    permittivity, concentration_m3, voltage_V : float, ndarray or tensor, shape (...)
        Relative permittivity, bulk concentration ``c0`` (m⁻³) and applied voltage.

    Returns
    -------
    ndarray or tensor, shape (...)
        ``sigma = eps0 eps_r V / L - e c0 sum_k h (n_k/c0 - 1) (z_k/L - 1/2)`` with ``h`` the bin
        width: the bare capacitor plus the image charge of the ions and their neutralising
        background. On the kMC layers it equals :func:`electrode_charge_C_m2` of the counts.
    """
    z = np.asarray(z_m, dtype=float)
    h = float(z[1] - z[0]) if z.size > 1 else float(gap_m)
    lever = h * (z / gap_m - 0.5)
    if not isinstance(density, np.ndarray | float | int):  # a torch tensor: keep it in torch
        import torch

        lever = torch.as_tensor(lever, dtype=density.dtype)
    else:
        density = np.asarray(density, dtype=float)
    induced = ELEMENTARY_CHARGE_C * concentration_m3 * ((density - 1.0) @ lever)
    return VACUUM_PERMITTIVITY_F_M * permittivity * voltage_V / gap_m - induced


def current_from_charge_A_m2(charge: Any, times_s: np.ndarray, charge_at_zero: Any) -> Any:
    """Mean charging current of the electrode at ``z = L`` between records, in A/m².

    With the voltage held constant this is, record for record, minus the Ramo–Shockley ion
    current the kMC counts from its hops (:func:`current_A_m2`, positive for ions moving towards
    ``z = L``): the electrode gains the image charge the ions take away. Both are averages over
    ``(t_{k-1}, t_k]``.

    Parameters
    ----------
    charge : ndarray or torch.Tensor, shape (..., time)
        Electrode charge at the record times.
    times_s : ndarray, shape (time,)
        Increasing positive record times.
    charge_at_zero : float, ndarray or tensor, shape (...)
        The charge just after the voltage is applied (``t = 0+``, ions not yet moved):
        ``eps0 eps_r V / L`` for a uniform start.

    Returns
    -------
    ndarray or tensor, shape (..., time)
        ``I_k = (Q_k - Q_{k-1}) / (t_k - t_{k-1})`` with ``Q_{-1} = Q(0+)``, ``t_{-1} = 0``.
    """
    t = np.asarray(times_s, dtype=float)
    dt = np.diff(t, prepend=0.0)
    if not isinstance(charge, np.ndarray):
        import torch

        q0 = torch.as_tensor(charge_at_zero, dtype=charge.dtype).reshape(*charge.shape[:-1], 1)
        return torch.diff(charge, dim=-1, prepend=q0) / torch.as_tensor(dt, dtype=charge.dtype)
    q0 = np.broadcast_to(np.asarray(charge_at_zero, dtype=float)[..., None], (*charge.shape[:-1], 1))
    return np.diff(charge, axis=-1, prepend=q0) / dt


def differential_capacitance_F_m2(charge_C_m2: np.ndarray, voltage_V: np.ndarray) -> np.ndarray:
    """Differential capacitance ``dQ/dV`` of steady-state charges at several voltages, in F/m².

    Parameters
    ----------
    charge_C_m2 : ndarray, shape (..., voltage)
        Relaxed electrode charge at each voltage.
    voltage_V : ndarray, shape (voltage,)
        Strictly increasing voltages.

    Returns
    -------
    ndarray, shape (..., voltage)
        Second-order finite differences (:func:`numpy.gradient`; one-sided at the ends).
    """
    v = np.asarray(voltage_V, dtype=float)
    if v.ndim != 1 or v.size < 2 or np.any(np.diff(v) <= 0):
        raise ValueError("differential_capacitance_F_m2 needs at least two strictly increasing voltages.")
    return np.gradient(np.asarray(charge_C_m2, dtype=float), v, axis=-1)


def current_A_m2(net_z_hops: np.ndarray, times_s: np.ndarray, config: KMCConfig) -> np.ndarray:
    """Mean external current density between records (Ramo–Shockley), in A/m².

    Parameters
    ----------
    net_z_hops : ndarray, shape (..., time)
        Cumulative number of +z hops minus -z hops since t = 0.
    times_s : ndarray, shape (time,)
        Record times.
    config : KMCConfig
        The simulated system.

    Returns
    -------
    ndarray, shape (..., time)
        ``I_k = e (a / L) (h_k - h_{k-1}) / ((t_k - t_{k-1}) A)`` with ``h_{-1} = 0`` at
        ``t = 0``; NaN for a record at t = 0. Positive current flows towards ``z = L``.
    """
    h = np.asarray(net_z_hops, dtype=float)
    t = np.asarray(times_s, dtype=float)
    dh = np.diff(h, axis=-1, prepend=0.0)
    dt = np.diff(t, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dt > 0, dh / np.where(dt > 0, dt, 1.0), np.nan)
    return ELEMENTARY_CHARGE_C * (config.spacing_m / config.gap_m) * rate / config.area_m2


def space_charge_layers(
    occupancy: np.ndarray,
    z_m: np.ndarray,
    filling: float,
    spacing_m: float,
    gap_m: float,
    accumulation_at: str = "z0",
) -> dict[str, np.ndarray]:
    """Measure the accumulation and depletion layers of occupancy profiles.

    The profile is split where, walking from the accumulating electrode, the occupancy first
    drops to the bulk filling or below. Works on the kMC layers and on any continuum grid.

    Parameters
    ----------
    occupancy : ndarray, shape (..., z)
        Ions per site in each layer or cell (a replica mean, a continuum field).
    z_m : ndarray, shape (z,)
        Positions of the layers or cell centres (m), evenly spaced.
    filling : float
        Bulk filling ``theta0``.
    spacing_m : float
        Lattice spacing ``a`` (one site per ``a³``).
    gap_m : float
        Electrode separation ``L``.
    accumulation_at : {"z0", "zL"}
        The electrode where cations accumulate (``"z0"`` for a positive voltage).

    Returns
    -------
    dict of ndarray, each of shape (...)
        ``accumulation_excess_m2``: ions per m² above the bulk in the accumulation layer;
        ``depletion_deficit_m2``: ions per m² missing between the split and the far electrode
        (equal to the excess when the ion number is conserved);
        ``depletion_width_m``: charge-equivalent width, deficit / c0;
        ``half_depletion_width_m``: distance from the depleted electrode to the point where
        the occupancy, walking inwards, first reaches ``theta0 / 2`` (linear interpolation;
        0 when the first layer is already above it);
        ``first_layer_enrichment``: occupancy of the layer next to the accumulating electrode
        over ``theta0``.
    """
    if accumulation_at not in ("z0", "zL"):
        raise ValueError(f"accumulation_at={accumulation_at!r} is not allowed: expected 'z0' or 'zL'.")
    n = np.asarray(occupancy, dtype=float)
    z = np.asarray(z_m, dtype=float)
    if accumulation_at == "zL":
        n = n[..., ::-1]
        z = gap_m - z[::-1]
    if z.size < 2:
        raise ValueError("space_charge_layers needs at least two layers.")
    h = float(z[1] - z[0])
    per_area = h / spacing_m**3
    lead = n.shape[:-1]
    flat = n.reshape(-1, n.shape[-1])
    out = {
        k: np.empty(flat.shape[0])
        for k in (
            "accumulation_excess_m2",
            "depletion_deficit_m2",
            "depletion_width_m",
            "half_depletion_width_m",
            "first_layer_enrichment",
        )
    }
    c0 = filling / spacing_m**3
    for r, prof in enumerate(flat):
        below = np.nonzero(prof <= filling)[0]
        split = int(below[0]) if below.size else prof.size
        excess = float(np.sum(prof[:split] - filling)) * per_area
        deficit = float(np.sum(filling - prof[split:])) * per_area
        out["accumulation_excess_m2"][r] = excess
        out["depletion_deficit_m2"][r] = deficit
        out["depletion_width_m"][r] = deficit / c0
        # walk in from the depleted electrode (z = L)
        rev, zr = prof[::-1], gap_m - z[::-1]
        above = np.nonzero(rev >= 0.5 * filling)[0]
        if not above.size:
            width = gap_m
        elif above[0] == 0:
            width = 0.0
        else:
            k = int(above[0])
            y0, y1 = rev[k - 1], rev[k]
            width = float(zr[k - 1] + (0.5 * filling - y0) * (zr[k] - zr[k - 1]) / (y1 - y0))
        out["half_depletion_width_m"][r] = width
        out["first_layer_enrichment"][r] = prof[0] / filling
    return {k: v.reshape(lead) for k, v in out.items()}


def charging_crossing_time_s(
    times_s: np.ndarray, charge: np.ndarray, level: float, final: float | None = None
) -> float:
    """First time at which a charging curve has covered ``level`` of its change.

    Parameters
    ----------
    times_s : ndarray, shape (time,)
        Increasing positive record times.
    charge : ndarray, shape (time,)
        Electrode charge (or any monotone-ish relaxing observable) at those times.
    level : float
        Fraction of the change ``final - charge[0]`` to reach, in (0, 1).
    final : float, optional
        The relaxed value (default: the last record).

    Returns
    -------
    float
        The first record interval where ``(q - q0) / (final - q0)`` reaches ``level``,
        interpolated linearly in log-time; ``times_s[0]`` if it is reached at once, ``nan``
        if never.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is not allowed: expected a fraction strictly between 0 and 1.")
    t = np.asarray(times_s, dtype=float)
    q = np.asarray(charge, dtype=float)
    end = q[-1] if final is None else float(final)
    frac = (q - q[0]) / (end - q[0])
    reached = np.nonzero(frac >= level)[0]
    if not reached.size:
        return float("nan")
    k = int(reached[0])
    if k == 0:
        return float(t[0])
    w = (level - frac[k - 1]) / (frac[k] - frac[k - 1])
    return float(np.exp(np.log(t[k - 1]) + w * (np.log(t[k]) - np.log(t[k - 1]))))
