"""Observables computed from layer occupancies: planar potential, electrode charge, current.

The same functions serve the kMC, its continuum twin and (later) the surrogate, so an observable
means the same thing whichever model produced the field.
"""

from __future__ import annotations

import numpy as np

from ..units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_M
from .config import KMCConfig
from .green import parallel_plate_green

__all__ = ["current_A_m2", "electrode_charge_C_m2", "planar_potential_V"]


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
