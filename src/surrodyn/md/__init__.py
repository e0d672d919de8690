"""Molecular dynamics for the CV work: the shipped alanine dipeptide and an OpenMM data generator.

Imports without OpenMM; the functions that run it raise :class:`surrodyn.errors.ConfigError` with
the install hint (``pip install 'surrodyn[md]'``) when it is missing.
"""

from .openmm_runs import (
    PHI_ATOMS,
    PSI_ATOMS,
    SOLVENTS,
    alanine_dipeptide_pdb,
    build_system,
    count_transitions,
    run_torsion_metadynamics,
)

__all__ = [
    "PHI_ATOMS",
    "PSI_ATOMS",
    "SOLVENTS",
    "alanine_dipeptide_pdb",
    "build_system",
    "count_transitions",
    "run_torsion_metadynamics",
]
