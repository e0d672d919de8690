"""Figures of a calibration: corner plot, data against the fit, kMC verification, BO comparison."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..calibration import Verification
    from ..surrogate.calibrate import CalibrationResult
    from ..surrogate.experiment import Experiment

__all__ = ["plot_corner", "plot_fit", "plot_verification"]

_LABELS = {
    "permittivity": r"$\varepsilon_r$",
    "concentration_cm3": r"$c_0$ (cm$^{-3}$)",
    "voltage_V": "V (V)",
    "voltage_offset_V": r"$\Delta V$ (V)",
    "hop_rate_factor": r"$\Gamma/\Gamma_{model}$",
    "disorder_eV": r"$\sigma$ (eV)",
}
_OBS = {"charge": ("Q", 1e2, r"$\mu$C/cm$^2$"), "current": ("I", 0.1, "mA/cm$^2$")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    import io

    from ..data.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    _plt().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def plot_corner(
    result: CalibrationResult,
    path: str | Path,
    truth: Mapping[str, float] | None = None,
    log: Mapping[str, bool] | None = None,
) -> Path:
    """Corner plot of the posterior: marginals on the diagonal, pairs below, estimate and truth marked.

    Parameters
    ----------
    result : CalibrationResult
        The calibration.
    path : str or Path
        PNG to write.
    truth : mapping, optional
        True values (synthetic experiments).
    log : mapping, optional
        Unknowns shown on a log axis (default: those with a log prior).
    """
    plt = _plt()
    names = result.names
    d = len(names)
    priors = result.info.get("priors", {})
    log = dict(log or {n: priors.get(n, [0, 0, "linear"])[2] == "log" for n in names})
    x = np.array([np.log10(result.samples[:, i]) if log[n] else result.samples[:, i] for i, n in enumerate(names)])

    def tr(n: str, v: float) -> float:
        return float(np.log10(v)) if log[n] else float(v)

    fig, axes = plt.subplots(d, d, figsize=(2.6 * d + 0.6, 2.6 * d + 0.4), squeeze=False, constrained_layout=True)
    lo_q, hi_q = (1 - result.level) / 2, (1 + result.level) / 2
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(x[i], bins=40, color="0.55", histtype="stepfilled")
                for q in np.quantile(x[i], [lo_q, hi_q]):
                    ax.axvline(q, color="0.3", ls=":", lw=1)
                ax.axvline(tr(names[i], result.estimate[names[i]]), color="C0", lw=1.5, label="estimate")
                if truth and names[i] in truth:
                    ax.axvline(tr(names[i], truth[names[i]]), color="C3", lw=1.5, ls="--", label="truth")
                ax.set_yticks([])
            else:
                ax.hist2d(x[j], x[i], bins=40, cmap="Greys")
                ax.plot(
                    tr(names[j], result.estimate[names[j]]), tr(names[i], result.estimate[names[i]]), "o", color="C0"
                )
                if truth and names[i] in truth and names[j] in truth:
                    ax.plot(tr(names[j], truth[names[j]]), tr(names[i], truth[names[i]]), "x", color="C3", ms=9, mew=2)
            if i == d - 1:
                lab = _LABELS.get(names[j], names[j])
                ax.set_xlabel(f"log10 {lab}" if log[names[j]] else lab)
            if j == 0 and i > 0:
                lab = _LABELS.get(names[i], names[i])
                ax.set_ylabel(f"log10 {lab}" if log[names[i]] else lab)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"posterior ({result.level:.0%} intervals dotted)", fontsize=10)
    return _save(fig, path)


def plot_fit(experiment: Experiment, band: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """Plot the data with noise bars against the prediction at the estimate and the posterior predictive band.

    Parameters
    ----------
    experiment : Experiment
        The data.
    band : mapping
        :func:`~surrodyn.surrogate.calibrate.posterior_predictive` output.
    path : str or Path
        PNG to write.
    title : str
        Figure title.
    """
    plt = _plt()
    sym, f, unit = _OBS[experiment.observable]
    t = experiment.time_s
    fig, (a, b) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True, height_ratios=(3, 1.3), constrained_layout=True)
    a.fill_between(
        t, band["low"] * f, band["high"] * f, color="C0", alpha=0.25, lw=0, label="posterior predictive 90 %"
    )
    a.plot(t, band["estimate"] * f, color="C0", lw=1.8, label="surrogate at the estimate")
    cov = experiment.noise_covariance()  # independent and correlated noise, when known
    noise_sd = None if cov is None else np.sqrt(np.diag(cov))
    err = None if noise_sd is None else noise_sd * f
    a.errorbar(t, experiment.value * f, yerr=err, fmt=".", color="k", ms=4, lw=0.8, label="data")
    a.set_xscale("log")
    if experiment.observable == "current" and np.all(experiment.value > 0):
        a.set_yscale("log")
    a.set_ylabel(f"{sym} ({unit})")
    a.legend(fontsize=8)
    scale = np.sqrt(band["estimate_sd"] ** 2 + (0 if noise_sd is None else noise_sd**2))
    b.axhspan(-1, 1, color="0.9")
    b.plot(t, (experiment.value - band["estimate"]) / scale, ".", color="k", ms=4)
    b.axhline(0, color="C0", lw=1)
    b.set_ylabel("residual / sd")
    b.set_xlabel("time (s)")
    if title:
        a.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_verification(experiment: Experiment, verification: Verification, path: str | Path) -> Path:
    """Plot the verifying kMC ensemble against the data and the surrogate at the inferred parameters.

    Parameters
    ----------
    experiment : Experiment
        The data.
    verification : Verification
        :func:`surrodyn.calibration.verify` output.
    path : str or Path
        PNG to write.
    """
    plt = _plt()
    sym, f, unit = _OBS[experiment.observable]
    t = experiment.time_s
    v = verification
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    ax.fill_between(t, (v.surrogate_mean - 1.645 * v.surrogate_sd) * f, (v.surrogate_mean + 1.645 * v.surrogate_sd) * f,
                    color="C0", alpha=0.25, lw=0, label="surrogate ± 1.645 sd")  # fmt: skip
    ax.plot(t, v.surrogate_mean * f, color="C0", lw=1.5)
    ax.errorbar(t, v.kmc_mean * f, yerr=v.kmc_sem * f, fmt="s", ms=3, color="C3", lw=0.8,
                label=f"kMC at the estimate ({v.info.get('replicas', '?')} replicas)")  # fmt: skip
    ax.plot(t, experiment.value * f, ".", color="k", ms=4, label="data")
    ax.set_xscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{sym} ({unit})")
    verdict = "trusted" if v.trusted else "NOT trusted: surrogate and kMC disagree"
    ax.set_title(f"kMC vs data: χ²/N = {v.chi2_data:.2f}; surrogate vs kMC: p = {v.p_surrogate:.2g} ({verdict})",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return _save(fig, path)
