"""Use layer: wiring the surrogate to the engines (continuum covariate, kMC checks, the demo story).

The learners never import an engine; what needs both (computing the continuum twin as the
surrogate's multi-fidelity input for new parameters, or comparing a prediction with fresh kMC
runs) lives here, above both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .surrogate.artefact import Surrogate

__all__ = ["continuum_fields", "predict"]


def continuum_fields(
    model: Surrogate,
    params: Mapping[str, Any],
    times_s: Sequence[float] | None = None,
    voltage: Any = None,
    temperature: Any = None,
) -> np.ndarray:
    """Compute the continuum twin's normalised density at the record times, shaped for the surrogate.

    Parameters
    ----------
    model : Surrogate
        Supplies the sweep spec (base config and schedules) and the default time grid.
    params : mapping
        Parameter values (arrays for many points).
    times_s : sequence of float, optional
        Record times (default the model's grid).
    voltage, temperature : optional
        Schedules replacing the sweep's (see :meth:`Surrogate.configs`).

    Returns
    -------
    numpy.ndarray
        (P, T, 1, Z) float32: ``occupancy / θ0`` of :func:`surrodyn.continuum.solve_mpnp`.
    """
    from .continuum import solve_mpnp

    t = model.time_s[1:] if times_s is None else np.asarray(times_s, dtype=float)
    out = []
    for cfg in model.configs(params, voltage, temperature):
        ds = solve_mpnp(cfg.replace(output_times_s=tuple(float(x) for x in t)))
        out.append(ds["occupancy"].transpose("time", "z").values / cfg.filling)
    return np.stack(out)[:, :, None, :].astype(np.float32)


def predict(
    model: Surrogate,
    params: Mapping[str, Any],
    *,
    times_s: Sequence[float] | None = None,
    observed: np.ndarray | None = None,
    voltage: Any = None,
    temperature: Any = None,
) -> xr.Dataset:
    """Predict with a surrogate, computing the continuum covariate when the model uses it.

    Parameters are those of :meth:`Surrogate.predict`.

    Returns
    -------
    xarray.Dataset
        As :meth:`Surrogate.predict`.
    """
    fields = continuum_fields(model, params, times_s, voltage, temperature) if model.config.field_names else None
    return model.predict(
        params, times_s=times_s, observed=observed, fields=fields, voltage=voltage, temperature=temperature
    )
