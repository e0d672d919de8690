"""Molecular dynamics: nanocluster ramps over ASE calculators; alanine dipeptide with OpenMM.

- :mod:`.clusters` and :mod:`.ramp`: heating/cooling ramps of metal clusters (ASE Langevin over
  asap3's or ASE's EMT, or any ASE calculator), checkpointed and resumable.
- :mod:`.sampling`: labelled fixed-temperature configurations of clusters for training potentials.
- :mod:`.openmm_runs`: the shipped alanine dipeptide and an OpenMM data generator for the CV work.

Imports without OpenMM; the functions that run it raise :class:`surrodyn.errors.ConfigError` with
the install hint (``pip install 'surrodyn[md]'``) when it is missing.
"""

from .clusters import SHAPES, ClusterSpec, build_cluster
from .openmm_runs import (
    PHI_ATOMS,
    PSI_ATOMS,
    SOLVENTS,
    alanine_dipeptide_pdb,
    build_system,
    count_transitions,
    run_torsion_metadynamics,
)
from .ramp import CALCULATORS, RampConfig, load_ramp, make_calculator, run_ramp
from .sampling import SamplingCondition, sample_configurations

__all__ = [
    "CALCULATORS",
    "PHI_ATOMS",
    "PSI_ATOMS",
    "SHAPES",
    "SOLVENTS",
    "ClusterSpec",
    "RampConfig",
    "SamplingCondition",
    "alanine_dipeptide_pdb",
    "build_cluster",
    "build_system",
    "count_transitions",
    "load_ramp",
    "make_calculator",
    "run_ramp",
    "run_torsion_metadynamics",
    "sample_configurations",
]
