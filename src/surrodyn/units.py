"""Physical constants (CODATA 2018, SI) and unit conversions.

SI inside ``kmc`` and ``continuum``; energies of single charges are handled in eV
(a charge ``e`` at potential ``phi`` volts has energy ``phi`` eV).
"""

from __future__ import annotations

__all__ = [
    "BOLTZMANN_EV_K",
    "BOLTZMANN_J_K",
    "CM3_TO_M3",
    "ELEMENTARY_CHARGE_C",
    "VACUUM_PERMITTIVITY_F_M",
    "bjerrum_length_m",
    "debye_length_m",
    "thermal_energy_eV",
]

ELEMENTARY_CHARGE_C = 1.602176634e-19
BOLTZMANN_J_K = 1.380649e-23
BOLTZMANN_EV_K = BOLTZMANN_J_K / ELEMENTARY_CHARGE_C
VACUUM_PERMITTIVITY_F_M = 8.8541878128e-12
CM3_TO_M3 = 1e-6
"""One cm^3 in m^3; a concentration in cm^-3 times 1e6 is in m^-3."""


def thermal_energy_eV(temperature_K: float) -> float:
    """Return kT in eV.

    Parameters
    ----------
    temperature_K : float
        Temperature in kelvin.

    Returns
    -------
    float
        Thermal energy in eV.
    """
    return BOLTZMANN_EV_K * temperature_K


def bjerrum_length_m(permittivity: float, temperature_K: float) -> float:
    """Return the Bjerrum length ``l_B = e^2 / (4 pi eps0 epsr kT)`` in metres.

    Parameters
    ----------
    permittivity : float
        Relative permittivity ``epsr``.
    temperature_K : float
        Temperature in kelvin.

    Returns
    -------
    float
        Bjerrum length in m (56.0 nm / epsr at 298 K).
    """
    import math

    return ELEMENTARY_CHARGE_C**2 / (
        4 * math.pi * VACUUM_PERMITTIVITY_F_M * permittivity * BOLTZMANN_J_K * temperature_K
    )


def debye_length_m(permittivity: float, temperature_K: float, concentration_m3: float) -> float:
    """Return the Debye length of one mobile species on a fixed background.

    Parameters
    ----------
    permittivity : float
        Relative permittivity ``epsr``.
    temperature_K : float
        Temperature in kelvin.
    concentration_m3 : float
        Bulk concentration of the mobile species in m^-3.

    Returns
    -------
    float
        ``sqrt(eps kT / (q^2 c0))`` in m.
    """
    import math

    eps = VACUUM_PERMITTIVITY_F_M * permittivity
    return math.sqrt(eps * BOLTZMANN_J_K * temperature_K / (ELEMENTARY_CHARGE_C**2 * concentration_m3))
