"""Held-out metrics of a surrogate: accuracy, calibration, crossing, conservation, steady state.

All figures are on the bulk-normalised density scale (1 = bulk concentration).

- ``mae_median``: mean |median − kMC ensemble mean| over records and bins;
  ``mae_mean``: the same for the mean head; ``smape``: symmetric MAPE (%) of the median,
  200·|a − b| / (|a| + |b|) over bins where either is non-zero (the original work's metric).
- ``coverage_10_90``: fraction of kMC replica values inside the predicted 10–90 % band, with the
  counts dequantised (each replica value spread uniformly over ±half an ion per bin, the
  non-random form of the randomised PIT; Czado et al. 2009, doi:10.1111/j.1541-0420.2009.01191.x).
  ``coverage_raw`` counts plain inclusion (biased up by ties of whole-ion counts).
- ``crossings``: number of adjacent quantile pairs out of order (zero by construction).
- ``conservation``: max over records of |mean_z(predicted mean) − 1| (the ion number is
  conserved exactly in the kMC, so the normalised profile averages to one).
- ``steady_mae``: MAE of the predicted mean at the last record against the kMC mean there.
- ``noise_floor``: the MAE a perfect predictor would score against an ensemble mean of R
  replicas, estimated as half the MAE between the means of two halves of the replicas
  (E|ȳ_R − μ| = E|ȳ_{R/2} − ȳ'_{R/2}| / 2 for independent replicas with Gaussian-like noise).
- ``continuum_mae``: MAE of the continuum twin itself (the low-fidelity baseline), when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from .artefact import Surrogate
from .data import FieldData

__all__ = ["Evaluation", "band_coverage", "evaluate", "fit_band_scale", "smape"]


def smape(pred: np.ndarray, ref: np.ndarray) -> float:
    """Symmetric mean absolute percentage error (%) over entries where either is non-zero."""
    den = np.abs(pred) + np.abs(ref)
    ok = den > 0
    return float(200.0 * np.mean(np.abs(pred - ref)[ok] / den[ok])) if ok.any() else 0.0


def band_coverage(lo: np.ndarray, hi: np.ndarray, values: np.ndarray, unit: np.ndarray | float) -> np.ndarray:
    """Fraction of dequantised values inside [lo, hi].

    Parameters
    ----------
    lo, hi : numpy.ndarray
        Band edges, broadcastable against ``values``.
    values : numpy.ndarray
        Observed values, multiples of ``unit`` (whole ions).
    unit : numpy.ndarray or float
        Value of one ion, broadcastable against ``values``.

    Returns
    -------
    numpy.ndarray
        Per value, the length of [v − u/2, v + u/2] ∩ [lo, hi] divided by u (in [0, 1]).
    """
    a, b = values - 0.5 * unit, values + 0.5 * unit
    return np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None) / (b - a)


@dataclass
class Evaluation:
    """Per-point metrics (a Dataset with dim ``point``) and the predictions they came from."""

    table: xr.Dataset
    quantiles: np.ndarray
    mean: np.ndarray

    def summary(self) -> dict[str, Any]:
        """Overall figures: means over points (coverage pooled), worst conservation, total crossings."""
        t = self.table
        return {
            "n_points": int(t.sizes["point"]),
            "mae_median": float(t["mae_median"].mean()),
            "mae_mean": float(t["mae_mean"].mean()),
            "smape": float(t["smape"].mean()),
            "coverage_10_90": float(t["coverage_10_90"].mean()),
            "coverage_raw": float(t["coverage_raw"].mean()),
            "crossings": int(t["crossings"].sum()),
            "conservation_max": float(t["conservation"].max()),
            "steady_mae": float(t["steady_mae"].mean()),
            "continuation_mae": float(t["continuation_mae"].mean()),
            "noise_floor": float(t["noise_floor"].mean()),
            "continuum_mae": float(t["continuum_mae"].mean()),
            "median_conservation_max": float(t["median_conservation"].max()),
        }

    def format(self) -> str:
        """Format a text table, one row per held-out point, then the overall line."""
        t = self.table
        params = [c for c in t.coords if c not in ("point",) and t[c].dims == ("point",)]
        cols = ["mae_median", "mae_mean", "noise_floor", "continuum_mae", "smape", "coverage_10_90", "coverage_raw",
                "conservation", "steady_mae"]  # fmt: skip
        head = " ".join(f"{p[:12]:>12}" for p in params) + " " + " ".join(f"{c[:14]:>14}" for c in cols)
        lines = [f"{'point':>6} " + head]
        for i in range(t.sizes["point"]):
            row = t.isel(point=i)
            vals = " ".join(f"{float(row[p]):12.4g}" for p in params)
            lines.append(f"{int(row['point']):6d} {vals} " + " ".join(f"{float(row[c]):14.4f}" for c in cols))
        s = self.summary()
        lines.append(
            f"overall: MAE(median) {s['mae_median']:.4f}, MAE(mean) {s['mae_mean']:.4f}, sMAPE {s['smape']:.2f} %, "
            f"10-90 coverage {s['coverage_10_90']:.3f} (raw {s['coverage_raw']:.3f}), crossings {s['crossings']}, "
            f"worst conservation {s['conservation_max']:.2e}, continuation MAE {s['continuation_mae']:.4f}, "
            f"noise floor {s['noise_floor']:.4f}, continuum twin MAE {s['continuum_mae']:.4f}"
        )
        return "\n".join(lines)


def evaluate(model: Surrogate, data: FieldData, context_frames: int | None = None) -> Evaluation:
    """Evaluate a surrogate on points with kMC replicas.

    Parameters
    ----------
    model : Surrogate
        Trained model.
    data : FieldData
        Points with ``target`` replicas (normally held out from training), on the model's grid.
    context_frames : int, optional
        Observed frames (of the ensemble mean) for the continuation metric; default the model's.

    Returns
    -------
    Evaluation
    """
    if data.target is None or data.mean is None:
        raise ConfigError("evaluation needs kMC replicas (FieldData.target).")
    if data.time_s.size != model.time_s.size or not np.allclose(data.time_s, model.time_s, rtol=1e-9):
        raise ConfigError("the evaluation data's records differ from the model's training grid.")
    params = {p: data.values[p] for p in model.parameters}
    fields = None if data.fields is None or not model.config.field_names else data.fields[:, 1:]
    quant, mean, _ = model.forward_arrays(params, fields=fields)
    k = context_frames or model.context_frames
    _, mean_c, _ = model.forward_arrays(params, fields=fields, observed=data.mean[:, 1 : k + 1])
    ref = data.mean[:, 1:]
    reps = data.target[:, :, 1:]
    levels = list(model.config.quantiles)
    i_med = levels.index(0.5)
    med = quant[:, i_med]
    unit = data.count_unit[:, None, None, None]
    rows: dict[str, list[float]] = {k_: [] for k_ in (
        "mae_median", "mae_mean", "smape", "coverage_10_90", "coverage_raw", "crossings", "conservation",
        "steady_mae", "continuation_mae", "noise_floor", "continuum_mae", "median_conservation")}  # fmt: skip
    for p in range(data.n_points):
        rows["mae_median"].append(float(np.mean(np.abs(med[p] - ref[p]))))
        rows["mae_mean"].append(float(np.mean(np.abs(mean[p] - ref[p]))))
        rows["smape"].append(smape(med[p], ref[p]))
        if 0.1 in levels and 0.9 in levels:
            lo, hi = quant[p, levels.index(0.1)], quant[p, levels.index(0.9)]
            rows["coverage_10_90"].append(float(band_coverage(lo, hi, reps[p], unit[p]).mean()))
            rows["coverage_raw"].append(float(((reps[p] >= lo) & (reps[p] <= hi)).mean()))
        else:
            rows["coverage_10_90"].append(float("nan"))
            rows["coverage_raw"].append(float("nan"))
        rows["crossings"].append(float(np.sum(np.diff(quant[p], axis=0) < 0)))
        rows["conservation"].append(float(np.max(np.abs(mean[p].mean(-1) - 1.0))))
        rows["median_conservation"].append(float(np.max(np.abs(med[p].mean(-1) - 1.0))))
        half = reps.shape[1] // 2
        floor = np.mean(np.abs(reps[p, :half].mean(0) - reps[p, half : 2 * half].mean(0))) / 2 if half else np.nan
        rows["noise_floor"].append(float(floor))
        cont = np.nan if data.fields is None else float(np.mean(np.abs(data.fields[p, 1:, 0] - ref[p])))
        rows["continuum_mae"].append(cont)
        rows["steady_mae"].append(float(np.mean(np.abs(mean[p, -1] - ref[p, -1]))))
        rows["continuation_mae"].append(float(np.mean(np.abs(mean_c[p, k:] - ref[p, k:]))))
    coords: dict[str, Any] = {"point": data.point}
    coords.update({p: ("point", data.values[p]) for p in model.parameters})
    table = xr.Dataset({k_: ("point", np.asarray(v)) for k_, v in rows.items()}, coords=coords)
    return Evaluation(table, quant, mean)


def fit_band_scale(
    model: Surrogate, data: FieldData, target: float = 0.8, bounds: tuple[float, float] = (0.3, 4.0)
) -> float:
    """Find the spread factor that gives the 10–90 % band the nominal coverage on calibration points.

    Split-conformal-style recalibration of the quantile spread (after Romano, Patterson & Candès
    2019, arXiv:1905.03222): one factor ``s`` scales every quantile's distance from the median in
    the network's space, chosen by bisection so that the dequantised coverage of the 10–90 % band
    on ``data`` (points not used to fit the weights) equals ``target``.

    Parameters
    ----------
    model : Surrogate
        Trained model (its current ``band_scale`` is ignored).
    data : FieldData
        Calibration points with replicas.
    target : float
        Nominal coverage of the 10–90 % band.
    bounds : tuple of float
        Search interval of the factor.

    Returns
    -------
    float
        The factor (``model.band_scale`` is left unchanged).
    """
    levels = list(model.config.quantiles)
    if 0.1 not in levels or 0.9 not in levels:
        return 1.0
    saved = model.band_scale
    params = {p: data.values[p] for p in model.parameters}
    fields = None if data.fields is None or not model.config.field_names else data.fields[:, 1:]
    reps = data.target[:, :, 1:]
    unit = data.count_unit[:, None, None, None]

    def coverage(s: float) -> float:
        model.band_scale = s
        quant, _, _ = model.forward_arrays(params, fields=fields)
        lo, hi = quant[:, None, levels.index(0.1)], quant[:, None, levels.index(0.9)]
        return float(band_coverage(lo, hi, reps, unit).mean())

    try:
        lo_s, hi_s = bounds
        if coverage(lo_s) >= target:
            return lo_s
        if coverage(hi_s) <= target:
            return hi_s
        for _ in range(20):
            mid = 0.5 * (lo_s + hi_s)
            if coverage(mid) < target:
                lo_s = mid
            else:
                hi_s = mid
        return 0.5 * (lo_s + hi_s)
    finally:
        model.band_scale = saved
