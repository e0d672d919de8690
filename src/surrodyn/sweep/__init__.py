"""Parameter sweeps of kMC ensembles (and their continuum twins) on Dask, in resumable stores.

See ``docs/sweep.md``. A :class:`SweepSpec` (YAML) names the swept parameters and how points are
drawn (grid, Latin hypercube, Sobol); :func:`run_sweep` runs the missing points on a local Dask
cluster or any scheduler, each point written atomically to the store; :func:`open_sweep`
combines the store into one Dataset with a ``point`` dim.
"""

from .dataset import export_sweep, open_sweep
from .design import parameter_table, point_config, point_seed, unit_samples
from .run import CONTINUUM_VARIABLES, FIELD_VARIABLES, PointTask, compute_point, dask_client, execute_point, run_sweep
from .spec import FIXED_PER_SWEEP, PROTOCOL_DESCRIPTORS, SAMPLING_METHODS, SWEEPABLE, Parameter, SweepSpec
from .store import Failure, SweepStatus, SweepStore, sweep_status

__all__ = [
    "CONTINUUM_VARIABLES",
    "FIELD_VARIABLES",
    "FIXED_PER_SWEEP",
    "PROTOCOL_DESCRIPTORS",
    "SAMPLING_METHODS",
    "SWEEPABLE",
    "Failure",
    "Parameter",
    "PointTask",
    "SweepSpec",
    "SweepStatus",
    "SweepStore",
    "compute_point",
    "dask_client",
    "execute_point",
    "export_sweep",
    "open_sweep",
    "parameter_table",
    "point_config",
    "point_seed",
    "run_sweep",
    "sweep_status",
    "unit_samples",
]
