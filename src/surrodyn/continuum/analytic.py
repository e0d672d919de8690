"""Closed-form results of mean-field electrostatics for one mobile species on a fixed background.

All functions take SI inputs (concentration in m⁻³) and return SI outputs. ``psi`` is a
dimensionless potential ``q phi / kT`` measured from the neutral bulk. The semi-infinite results
(:func:`voltage_split` and what follows from it) hold when the cell is much wider than the
double layers; for a finite cell use :func:`surrodyn.continuum.steady_state`.

References: ``shared/reference/kmc-physics.md``; Bikerman, Phil. Mag. 33, 384 (1942) for the
lattice-saturated first integral; Bazant, Thornton & Ajdari, PRE 70, 021506 (2004) for the RC
time of a blocking cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..errors import param_error
from ..units import (
    BOLTZMANN_J_K,
    ELEMENTARY_CHARGE_C,
    VACUUM_PERMITTIVITY_F_M,
    bjerrum_length_m,
    thermal_energy_eV,
)

__all__ = [
    "VoltageSplit",
    "bjerrum_length_m",
    "charging_times_s",
    "coupling_parameter",
    "debye_length_m",
    "double_layer_function",
    "mott_schottky_width_m",
    "rc_time_s",
    "surface_charge_C_m2",
    "voltage_split",
]


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise param_error(name, value, "a positive finite number")
    return v


def _filling(filling: float) -> float:
    f = float(filling)
    if not (0.0 <= f < 1.0):
        raise param_error("filling", filling, "a site filling 0 <= theta0 < 1 (0: dilute, Boltzmann)")
    return f


def debye_length_m(permittivity: float, temperature_K: float, concentration_m3: float, filling: float = 0.0) -> float:
    """Return the Debye length of one mobile species on a fixed background.

    Parameters
    ----------
    permittivity : float
        Relative permittivity.
    temperature_K : float
        Temperature in K.
    concentration_m3 : float
        Bulk concentration ``c0`` in m⁻³.
    filling : float
        Site filling ``theta0 = c0 / c_max``; the lattice gas screens with ``c0 (1 - theta0)``.

    Returns
    -------
    float
        ``sqrt(eps kT / (q² c0 (1 - theta0)))`` in m.
    """
    eps = VACUUM_PERMITTIVITY_F_M * _positive("permittivity", permittivity)
    kt = BOLTZMANN_J_K * _positive("temperature_K", temperature_K)
    c0 = _positive("concentration_m3", concentration_m3)
    return math.sqrt(eps * kt / (ELEMENTARY_CHARGE_C**2 * c0 * (1.0 - _filling(filling))))


def coupling_parameter(permittivity: float, temperature_K: float, concentration_m3: float) -> float:
    """Return the plasma coupling ``Gamma_p = l_B / a_ws``, ``a_ws = (3 / (4 pi c0))^(1/3)``.

    Mean field is accurate for ``Gamma_p <~ 0.1``; at ``Gamma_p >~ 1`` the ions correlate
    (over-screening, layering).
    """
    c0 = _positive("concentration_m3", concentration_m3)
    a_ws = (3.0 / (4.0 * math.pi * c0)) ** (1.0 / 3.0)
    return bjerrum_length_m(_positive("permittivity", permittivity), _positive("temperature_K", temperature_K)) / a_ws


def double_layer_function(psi: float | np.ndarray, filling: float = 0.0) -> float | np.ndarray:
    """First integral of the Poisson–Boltzmann equation for one mobile cation species.

    ``(1/2) (d psi / d(z/lambda_D0))^2 = F(psi)`` with ``lambda_D0`` the dilute Debye length.

    Parameters
    ----------
    psi : float or ndarray
        ``q (phi - phi_bulk) / kT``.
    filling : float
        Site filling ``theta0``; 0 gives the dilute (Boltzmann) form ``e^-psi - 1 + psi``, a
        positive value the lattice-saturated (Bikerman) form
        ``psi + ln(1 - theta0 + theta0 e^-psi) / theta0``.

    Returns
    -------
    float or ndarray
        ``F(psi) >= 0``.
    """
    f = _filling(filling)
    p = np.asarray(psi, dtype=float)
    if f == 0.0:
        out = np.expm1(-p) + p
    else:
        # ln(1 - f + f e^-p) / f: log1p keeps the small-f limit exact, logaddexp avoids overflow
        safe = np.minimum(-p, 700.0)
        small = np.log1p(f * np.expm1(safe)) / f
        big = np.logaddexp(math.log1p(-f), math.log(f) - p) / f
        out = p + np.where(-p < 700.0, small, big)
    return float(out) if np.ndim(out) == 0 else out


def surface_charge_C_m2(
    psi: float, permittivity: float, temperature_K: float, concentration_m3: float, filling: float = 0.0
) -> float:
    """Return the magnitude of the diffuse-layer charge per area for a drop ``psi`` (semi-infinite).

    ``sigma = sqrt(2 eps kT c0 F(psi))`` with ``F`` from :func:`double_layer_function`.
    """
    eps = VACUUM_PERMITTIVITY_F_M * _positive("permittivity", permittivity)
    kt = BOLTZMANN_J_K * _positive("temperature_K", temperature_K)
    c0 = _positive("concentration_m3", concentration_m3)
    return math.sqrt(2.0 * eps * kt * c0 * float(double_layer_function(psi, filling)))


def mott_schottky_width_m(drop_V: float, permittivity: float, concentration_m3: float) -> float:
    """Return the full-depletion (Mott–Schottky) width ``sqrt(2 eps dphi / (q c0))``.

    This ignores the thermal tail; :class:`VoltageSplit` gives the exact charge-equivalent width
    ``sigma / (q c0)``, which for large drops equals the Mott–Schottky width at ``dphi - kT/q``.
    """
    eps = VACUUM_PERMITTIVITY_F_M * _positive("permittivity", permittivity)
    if not drop_V >= 0:
        raise param_error("drop_V", drop_V, "a non-negative potential drop in V")
    return math.sqrt(2.0 * eps * drop_V / (ELEMENTARY_CHARGE_C * _positive("concentration_m3", concentration_m3)))


@dataclass(frozen=True)
class VoltageSplit:
    """How an applied voltage divides between the accumulation and depletion layers.

    Attributes
    ----------
    accumulation_drop_V, depletion_drop_V : float
        Magnitudes of the potential drops across the two diffuse layers (they sum to ``|V|``).
    contact_enrichment : float
        ``c(contact) / c0`` at the accumulating electrode.
    surface_charge_C_m2 : float
        Magnitude of the charge per area on each electrode.
    depletion_width_m : float
        Charge-equivalent depletion width ``sigma / (q c0)``: the width a fully depleted slab
        carrying the same charge would have (``lambda_D sqrt(2 F(psi_dep))``).
    debye_length_m : float
        Dilute Debye length ``sqrt(eps kT / (q² c0))``.
    """

    accumulation_drop_V: float
    depletion_drop_V: float
    contact_enrichment: float
    surface_charge_C_m2: float
    depletion_width_m: float
    debye_length_m: float


def voltage_split(
    voltage_V: float,
    permittivity: float,
    temperature_K: float,
    concentration_m3: float,
    filling: float = 0.0,
) -> VoltageSplit:
    """Split a voltage between the accumulation and depletion layers of a semi-infinite cell.

    The two diffuse layers carry equal and opposite charge, so the drops ``x`` (accumulation)
    and ``u - x`` (depletion), in units of kT/q, solve ``F(-x) = F(u - x)``.

    Parameters
    ----------
    voltage_V : float
        Applied voltage (its sign only decides which electrode accumulates).
    permittivity, temperature_K, concentration_m3 : float
        Material and state.
    filling : float
        Site filling ``theta0`` (0: dilute Boltzmann, else lattice-saturated).

    Returns
    -------
    VoltageSplit
    """
    kt_v = thermal_energy_eV(_positive("temperature_K", temperature_K))
    f = _filling(filling)
    u = abs(float(voltage_V)) / kt_v
    lam = debye_length_m(permittivity, temperature_K, concentration_m3)
    if u == 0.0:
        return VoltageSplit(0.0, 0.0, 1.0, 0.0, 0.0, lam)

    def mismatch(x: float) -> float:
        return float(double_layer_function(-x, f)) - float(double_layer_function(u - x, f))

    x = brentq(mismatch, 0.0, u, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)
    # Fermi–Dirac contact value: theta = 1 / (1 + (1-theta0)/theta0 e^{psi}), psi = -x
    enrich = math.exp(x) if f == 0.0 else 1.0 / (f + (1.0 - f) * math.exp(-x))
    sigma = surface_charge_C_m2(-x, permittivity, temperature_K, concentration_m3, f)
    return VoltageSplit(
        accumulation_drop_V=x * kt_v,
        depletion_drop_V=(u - x) * kt_v,
        contact_enrichment=enrich,
        surface_charge_C_m2=sigma,
        depletion_width_m=sigma / (ELEMENTARY_CHARGE_C * float(concentration_m3)),
        debye_length_m=lam,
    )


def rc_time_s(debye_length_m: float, gap_m: float, diffusivity_m2_s: float) -> float:
    """Return the RC charging time ``lambda_D L / (2 D)`` of a blocking cell (thin layers, small V).

    Parameters
    ----------
    debye_length_m : float
        Debye length.
    gap_m : float
        Full electrode separation ``L``.
    diffusivity_m2_s : float
        Ion diffusion coefficient ``D``.
    """
    return (
        _positive("debye_length_m", debye_length_m)
        * _positive("gap_m", gap_m)
        / (2.0 * _positive("diffusivity_m2_s", diffusivity_m2_s))
    )


def charging_times_s(debye_length_m: float, gap_m: float, diffusivity_m2_s: float) -> dict[str, float]:
    """Return the three time scales of a blocking cell: Debye, RC and diffusion times.

    Returns
    -------
    dict
        ``{"debye": lambda_D²/D, "rc": lambda_D L/(2D), "diffusion": L²/D}``.
    """
    lam = _positive("debye_length_m", debye_length_m)
    gap = _positive("gap_m", gap_m)
    d = _positive("diffusivity_m2_s", diffusivity_m2_s)
    return {"debye": lam**2 / d, "rc": lam * gap / (2.0 * d), "diffusion": gap**2 / d}
