"""Use layer of the calibration: kMC verification, Bayesian optimisation on the kMC, synthetic data.

The inference itself (:mod:`surrodyn.surrogate.calibrate`) never runs an engine. What needs the
kMC — checking an inferred parameter set with a fresh ensemble, the anchor method that optimises
the kMC directly, turning a kMC run into a synthetic experiment — lives here, above both.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from .errors import ConfigError, param_error
from .surrogate.artefact import Surrogate
from .surrogate.calibrate import CalibrationResult, JointLikelihood, SurrogateLikelihood, Unknown
from .surrogate.experiment import Experiment, noise_from_replicates

__all__ = [
    "BayesOptResult",
    "Verification",
    "bayes_opt_kmc",
    "calibration_report",
    "discrepancy_from_store",
    "experiment_from_kmc",
    "kmc_chi2_objective",
    "kmc_observable",
    "run_calibration",
    "run_kmc_at",
    "validation_experiments",
    "validation_point",
    "verify",
]


def kmc_observable(ds: xr.Dataset, observable: str) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and its standard error of an observable of a kMC dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A kMC ensemble (:func:`surrodyn.kmc.run_ensemble`) or one point of a sweep with replicas.
    observable : {"charge", "current"}
        ``charge``: ``electrode_charge`` (electrode at ``z = L``); ``current``: its charging
        current, minus the Ramo–Shockley ion current counted from the hops.

    Returns
    -------
    mean, sem : numpy.ndarray
        (time,) each.
    """
    x = kmc_replicas(ds, observable)
    if x is not None:
        r = x.shape[-2]
        sem = x.std(-2, ddof=1) / np.sqrt(r) if r > 1 else np.zeros(x.shape[-1])
        return x.mean(-2), sem
    name, sign = _observable_name(observable)
    if f"{name}_mean" in ds:
        r = ds.sizes.get("replica", 1)
        std = ds[f"{name}_std"].values if f"{name}_std" in ds else np.zeros(ds.sizes["time"])
        return sign * ds[f"{name}_mean"].values, std / np.sqrt(max(r, 1))
    raise ConfigError(f"the dataset has no {name!r}: it is not a kMC field dataset.")


def _observable_name(observable: str) -> tuple[str, float]:
    name = {"charge": "electrode_charge", "current": "current"}.get(observable)
    if name is None:
        raise param_error("observable", observable, "'charge' or 'current'")
    return name, (-1.0 if observable == "current" else 1.0)


def kmc_replicas(ds: xr.Dataset, observable: str) -> np.ndarray | None:
    """Return the observable of every replica of a kMC dataset, (..., replica, time), or None if not stored.

    Parameters
    ----------
    ds : xarray.Dataset
        A kMC ensemble or one point of a sweep stored with its replicas.
    observable : {"charge", "current"}
        As in :func:`kmc_observable`.
    """
    name, sign = _observable_name(observable)
    if name in ds and "replica" in ds[name].dims:
        return sign * ds[name].transpose(..., "replica", "time").values
    return None


def experiment_from_kmc(
    ds: xr.Dataset,
    observable: str = "charge",
    noise: float = 0.01,
    seed: int = 0,
    conditions: Sequence[str] = ("voltage_V",),
    correlated: bool = False,
) -> Experiment:
    """Make a synthetic experiment: a kMC ensemble mean plus Gaussian noise.

    Parameters
    ----------
    ds : xarray.Dataset
        One kMC point (an ensemble, or ``sweep.isel(point=i)``) carrying its parameters.
    observable : {"charge", "current"}
        What is "measured".
    noise : float
        Noise standard deviation as a fraction of the largest magnitude of the observable.
    seed : int
        Seed of the noise.
    conditions : sequence of str
        Parameters recorded as known conditions (the rest are what a calibration must find).
    correlated : bool
        Describe the finite-ensemble noise of the kMC mean by its covariance in time
        (:func:`~surrodyn.surrogate.experiment.noise_from_replicates` of the stored replicas,
        ``noise_cov``), as a user with repeated measurements would; ``sigma`` is then the added
        noise alone. The data are the same either way.

    Returns
    -------
    Experiment
        With ``sigma`` the whole noise of the data: the added noise and the standard error of the
        kMC ensemble mean, in quadrature (or the added noise and ``noise_cov``, if ``correlated``).
    """
    if not noise >= 0:
        raise param_error("noise", noise, "a non-negative fraction")
    mean, sem = kmc_observable(ds, observable)
    sd = max(noise * float(np.max(np.abs(mean))), 1e-12 * float(np.max(np.abs(mean))))
    y = mean + np.random.default_rng(seed).normal(0.0, sd, mean.shape)
    sigma = np.sqrt(sd**2 + sem**2)  # the added noise and the finite-ensemble noise of the kMC mean
    noise_cov = None
    if correlated:
        reps = kmc_replicas(ds, observable)
        if reps is None or reps.shape[-2] < 2:
            raise ConfigError("correlated noise needs the kMC replicas (a sweep stored with store_replicas: true).")
        noise_cov = noise_from_replicates(reps, ds["time"].values)[1]
        sigma = np.full(mean.shape, sd)
    cond = {}
    for c in conditions:
        if c not in ds and c not in ds.attrs:
            raise ConfigError(f"the kMC dataset has no {c!r} to record as a condition.")
        cond[c] = float(ds[c].values) if c in ds else float(ds.attrs[c])
    return Experiment(observable, ds["time"].values, y, sigma, cond, "kMC", noise_cov)


def run_kmc_at(
    model: Surrogate,
    params: Mapping[str, float],
    times_s: np.ndarray,
    replicas: int = 4,
    seed: int = 0,
    workers: int = 1,
    voltage_offset_V: float = 0.0,
    hop_rate_factor: float = 1.0,
) -> xr.Dataset:
    """Run the kMC ensemble of a parameter set, on the surrogate's training system, at given times.

    Parameters
    ----------
    model : Surrogate
        Supplies the system (its training sweep's base configuration).
    params : mapping
        A value for every parameter of the surrogate.
    times_s : numpy.ndarray
        Record times.
    replicas, seed, workers : int
        Ensemble settings (see :func:`surrodyn.kmc.run_ensemble`).
    voltage_offset_V : float
        Added to the voltage.
    hop_rate_factor : float
        Multiplies the attempt frequency.

    Returns
    -------
    xarray.Dataset
        The ensemble.
    """
    from .kmc import run_ensemble

    p = dict(params)
    if "voltage_V" in p:
        p["voltage_V"] = p["voltage_V"] + voltage_offset_V
    cfg = model.configs(p)[0]
    changes: dict[str, Any] = {"output_times_s": tuple(float(t) for t in times_s)}
    if "voltage_V" not in p and voltage_offset_V:
        changes["voltage_V"] = cfg.voltage_V(0.0) + voltage_offset_V
    if hop_rate_factor != 1.0:
        changes["attempt_frequency_Hz"] = cfg.attempt_frequency_Hz * hop_rate_factor
    return run_ensemble(cfg.replace(**changes), replicas=replicas, seed=seed, workers=workers)


@dataclass
class Verification:
    """A kMC ensemble at the inferred parameters against the data and the surrogate.

    Attributes
    ----------
    kmc_mean, kmc_sem : numpy.ndarray
        The kMC observable at the data times.
    surrogate_mean, surrogate_sd : numpy.ndarray
        The surrogate's prediction and its uncertainty at the same parameters.
    chi2_data : float
        ``mean(((kmc - data) / sqrt(noise² + sem²))²)``: about 1 when the kMC reproduces the data
        within its noise.
    chi2_surrogate : float
        The same between the surrogate and the kMC, with the surrogate's correlated uncertainty
        (Mahalanobis distance over the number of points).
    p_surrogate : float
        Probability of a distance at least that large if the two agreed (chi-squared law).
    trusted : bool
        ``p_surrogate >= 0.01``: the surrogate and the verifying kMC agree within their uncertainty.
    reproduces_data : bool
        ``chi2_data <= 1 + 3 sqrt(2 / N)`` (three standard deviations of the reduced chi-squared).
    seconds : float
        Wall time of the kMC.
    parts : list of Verification
        For a joint calibration, each experiment's own verification (the arrays above are theirs
        concatenated, the figures above pool all points); empty for one experiment.
    """

    kmc_mean: np.ndarray
    kmc_sem: np.ndarray
    surrogate_mean: np.ndarray
    surrogate_sd: np.ndarray
    chi2_data: float
    chi2_surrogate: float
    p_surrogate: float
    trusted: bool
    reproduces_data: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    parts: list[Verification] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Scalars as a plain dict (with each part's, for a joint calibration)."""
        out = {
            "chi2_data": self.chi2_data,
            "chi2_surrogate": self.chi2_surrogate,
            "p_surrogate": self.p_surrogate,
            "trusted": self.trusted,
            "reproduces_data": self.reproduces_data,
            "seconds": self.seconds,
            **self.info,
        }
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out


def verify(
    result: CalibrationResult,
    like: SurrogateLikelihood | JointLikelihood,
    replicas: int = 4,
    seed: int = 0,
    workers: int = 1,
) -> Verification:
    """Run the kMC ensemble at the point estimate and compare it with the data and the surrogate.

    Parameters
    ----------
    result : CalibrationResult
        The calibration.
    like : SurrogateLikelihood or JointLikelihood
        Its likelihood (data, surrogate ensemble, discrepancy). For a joint calibration every
        experiment is verified at its own conditions (seeds ``seed``, ``seed + 1``, ...) and the
        figures pool all points; ``parts`` holds each experiment's verification.
    replicas, seed, workers : int
        kMC ensemble settings.

    Returns
    -------
    Verification
        Agreement with the data and with the surrogate.
    """
    parts = like.parts if isinstance(like, JointLikelihood) else [like]
    checks = [_verify_one(result, p, replicas, seed + k, workers) for k, p in enumerate(parts)]
    if len(checks) == 1:
        return checks[0]
    sizes = [v.kmc_mean.size for v in checks]
    return _verification(
        [v.kmc_mean for v in checks],
        [v.kmc_sem for v in checks],
        [v.surrogate_mean for v in checks],
        [v.surrogate_sd for v in checks],
        sum(v.chi2_data * k for v, k in zip(checks, sizes, strict=True)),
        sum(v.chi2_surrogate * k for v, k in zip(checks, sizes, strict=True)),
        sum(sizes),
        sum(v.seconds for v in checks),
        {"replicas": replicas, "seed": seed},
        checks,
    )


def _verification(
    kmc_mean: list[np.ndarray],
    kmc_sem: list[np.ndarray],
    surrogate_mean: list[np.ndarray],
    surrogate_sd: list[np.ndarray],
    chi2_sum: float,
    maha: float,
    n: int,
    seconds: float,
    info: dict[str, Any],
    parts: list[Verification],
) -> Verification:
    """Assemble a verification from its chi-squared sums over ``n`` points (the verdicts follow from them)."""
    from scipy.stats import chi2

    chi2_data = chi2_sum / n
    p = float(chi2.sf(maha, n))
    return Verification(
        kmc_mean=np.concatenate(kmc_mean),
        kmc_sem=np.concatenate(kmc_sem),
        surrogate_mean=np.concatenate(surrogate_mean),
        surrogate_sd=np.concatenate(surrogate_sd),
        chi2_data=float(chi2_data),
        chi2_surrogate=maha / n,
        p_surrogate=p,
        trusted=bool(p >= 0.01),
        reproduces_data=bool(chi2_data <= 1 + 3 * np.sqrt(2 / n)),
        seconds=seconds,
        info=info,
        parts=parts,
    )


def _verify_one(
    result: CalibrationResult, like: SurrogateLikelihood, replicas: int, seed: int, workers: int
) -> Verification:
    """Run the kMC at the estimate for one experiment and compare."""
    exp = like.experiment
    params = {**like._known, **{k: v for k, v in result.estimate.items() if k in like.models[0].parameters}}
    t0 = time.perf_counter()
    ds = run_kmc_at(
        like.models[0],
        params,
        exp.time_s,
        replicas=replicas,
        seed=seed,
        workers=workers,
        voltage_offset_V=result.estimate.get("voltage_offset_V", 0.0),
        hop_rate_factor=result.estimate.get("hop_rate_factor", 1.0),
    )
    seconds = time.perf_counter() - t0
    k_mean, k_sem = kmc_observable(ds, exp.observable)
    k_cov = None  # correlated data noise: the verifying ensemble's own noise is taken as correlated in time too
    reps = kmc_replicas(ds, exp.observable)
    if exp.noise_cov is not None and reps is not None and reps.shape[-2] > 1:
        k_cov = noise_from_replicates(reps, exp.time_s)[1]
    w = like.working(result.estimate)
    with torch.no_grad():
        mean, var, signal = like.predict(torch.from_numpy(w))
        sd_t = like.model_sd(var, signal)[0]
        noise_var = torch.from_numpy(k_sem**2 if k_cov is None else np.zeros_like(k_sem))
        cov = like.discrepancy.covariance(sd_t, like._corr, noise_var + 1e-12 * float(sd_t.max()) ** 2).numpy()
        cov = cov if k_cov is None else cov + k_cov
    s_mean = mean[0].numpy()
    if exp.noise_cov is None:
        chi2_sum = float(np.sum((k_mean - exp.value) ** 2 / (like.noise_sd**2 + k_sem**2)))
    else:
        total = np.diag(like.noise_sd**2) + exp.noise_cov + (np.diag(k_sem**2) if k_cov is None else k_cov)
        d = k_mean - exp.value
        chi2_sum = float(d @ np.linalg.solve(total, d))
    r = k_mean - s_mean
    maha = float(r @ np.linalg.solve(cov, r))
    info = {"replicas": replicas, "seed": seed, "conditions": dict(exp.conditions)}
    return _verification([k_mean], [k_sem], [s_mean], [sd_t.numpy()], chi2_sum, maha, exp.value.size, seconds, info, [])


@dataclass
class BayesOptResult:
    """History of Bayesian optimisation on the kMC.

    Attributes
    ----------
    names : tuple of str
        Unknowns.
    params : numpy.ndarray
        (n, d) evaluated parameter values, in order.
    objective : numpy.ndarray
        (n,) reduced chi-squared of each kMC run against the data.
    seconds : numpy.ndarray
        (n,) cumulative wall time after each evaluation.
    best : numpy.ndarray
        (n, d) best parameters found after each evaluation.
    """

    names: tuple[str, ...]
    params: np.ndarray
    objective: np.ndarray
    seconds: np.ndarray
    best: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {
            "names": list(self.names),
            "params": self.params.tolist(),
            "objective": self.objective.tolist(),
            "seconds": self.seconds.tolist(),
            "best": self.best.tolist(),
        }


def bayes_opt_kmc(
    objective: Callable[[dict[str, float]], float],
    unknowns: Sequence[Unknown],
    n_init: int = 5,
    n_iter: int = 15,
    seed: int = 0,
    candidates: int = 2048,
    callback: Callable[[int, dict[str, float], float], None] | None = None,
) -> BayesOptResult:
    """Minimise an expensive objective by Gaussian-process Bayesian optimisation (expected improvement).

    The anchor method of Kouroudis et al. (J. Phys. Chem. A 127, 5967, 2023), here on the kMC
    itself: a Sobol start, then one evaluation per iteration where a GP (scikit-learn, Matern 5/2
    plus white noise, on the log of the objective) expects the largest improvement.

    Parameters
    ----------
    objective : callable
        Parameters by name -> value to minimise (e.g. a kMC run's reduced chi-squared).
    unknowns : sequence of Unknown
        Search box (log box for log unknowns).
    n_init, n_iter : int
        Sobol start points and BO iterations.
    seed : int
        Seed of the design, the GP and the candidates.
    candidates : int
        Sobol candidates on which expected improvement is maximised.
    callback : callable, optional
        Called with (evaluation index, parameters, objective) after every evaluation.

    Returns
    -------
    BayesOptResult
        The full history.
    """
    from scipy.stats import norm, qmc
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    if n_init < 2 or n_iter < 0:
        raise param_error("n_init, n_iter", (n_init, n_iter), "n_init >= 2 and n_iter >= 0")
    d = len(unknowns)
    lo = np.array([u.bounds_w[0] for u in unknowns])
    hi = np.array([u.bounds_w[1] for u in unknowns])

    def values(x: np.ndarray) -> dict[str, float]:
        w = lo + x * (hi - lo)
        return {u.name: float(u.to_value(w[i])) for i, u in enumerate(unknowns)}

    with warnings.catch_warnings():  # any n_init is allowed; balance needs powers of 2 only
        warnings.simplefilter("ignore", UserWarning)
        xs: list[np.ndarray] = list(qmc.Sobol(d, scramble=True, seed=seed).random(n_init))
    ys: list[float] = []
    secs: list[float] = []
    t0 = time.perf_counter()
    cand = qmc.Sobol(d, scramble=True, seed=seed + 1).random(candidates)
    rng = np.random.default_rng(seed)
    while True:
        for x in xs[len(ys) :]:
            p = values(x)
            ys.append(float(objective(p)))
            secs.append(time.perf_counter() - t0)
            if callback is not None:
                callback(len(ys) - 1, p, ys[-1])
        if len(ys) >= n_init + n_iter:
            break
        kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(d, 0.3), nu=2.5) + WhiteKernel(1e-2)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed, n_restarts_optimizer=2)
        target = np.log(np.maximum(np.array(ys), 1e-12))
        with warnings.catch_warnings():  # a noise level at its bound is expected for a smooth objective
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(np.array(xs), target)
        local = np.clip(np.array(xs)[np.argmin(target)] + 0.05 * rng.standard_normal((256, d)), 0, 1)
        pool = np.concatenate([cand, local])
        mu, sd = gp.predict(pool, return_std=True)
        best = target.min()
        z = (best - mu) / np.maximum(sd, 1e-9)
        ei = (best - mu) * norm.cdf(z) + sd * norm.pdf(z)
        xs.append(pool[int(np.argmax(ei))])
    obj = np.array(ys)
    params = np.array([[values(x)[u.name] for u in unknowns] for x in xs])
    best_idx = [int(np.argmin(obj[: k + 1])) for k in range(obj.size)]
    return BayesOptResult(tuple(u.name for u in unknowns), params, obj, np.array(secs), params[best_idx])


def kmc_chi2_objective(
    model: Surrogate,
    experiment: Experiment,
    known: Mapping[str, float],
    replicas: int = 1,
    seed: int = 0,
    workers: int = 1,
) -> Callable[[dict[str, float]], float]:
    """Reduced chi-squared of a kMC run against the data, as a function of the unknowns.

    Parameters
    ----------
    model : Surrogate
        Supplies the system (the kMC runs on the surrogate's training system).
    experiment : Experiment
        The data (its ``sigma`` is the noise).
    known : mapping
        Known parameter values.
    replicas, seed, workers : int
        kMC ensemble settings per evaluation.

    Returns
    -------
    callable
        Parameters by name -> reduced chi-squared.
    """
    if experiment.sigma is None:
        raise ConfigError("Bayesian optimisation on the kMC needs the data's noise level (sigma).")

    def objective(p: dict[str, float]) -> float:
        params = {**known, **{k: v for k, v in p.items() if k in model.parameters}}
        ds = run_kmc_at(model, params, experiment.time_s, replicas, seed, workers,
                        p.get("voltage_offset_V", 0.0), p.get("hop_rate_factor", 1.0))  # fmt: skip
        mean, sem = kmc_observable(ds, experiment.observable)
        return float(np.mean((mean - experiment.value) ** 2 / (experiment.sigma**2 + sem**2)))

    return objective


def validation_experiments(
    models: Sequence[Surrogate],
    store: str | None = None,
    observable: str = "charge",
    *,
    validation: Sequence[str] = (),
    correlated: bool = False,
) -> list[Experiment]:
    """Gather kMC points the ensemble never trained on, as experiments at their true parameters.

    Two sources, either or both: the points the models' split set aside for testing in their
    training sweep ``store`` (never trained on, never used for early stopping), and every point
    of independent ``validation`` sweeps over the same parameters. The kMC ensemble mean of each
    point carries its standard error as noise. A few test points give the error's scale only
    roughly; an independent validation sweep of a dozen points or more makes the credible
    intervals more honest (see ``docs/calibration.md``).

    Parameters
    ----------
    models : sequence of Surrogate
        The ensemble; every member must share the split.
    store : str, optional
        The sweep store (or exported NetCDF) the members were trained on.
    observable : {"charge", "current"}
        The observable of the experiment.
    validation : sequence of str
        Independent sweep stores (or NetCDF exports) over the models' parameters: all their
        finished points are used.
    correlated : bool
        Describe the noise of each kMC mean by its covariance in time, from the stored replicas
        (``noise_cov``; :func:`~surrodyn.surrogate.experiment.noise_from_replicates`), instead of
        independent standard errors. Points stored without replicas keep the standard errors.

    Returns
    -------
    list of Experiment
        One per point: the kMC ensemble mean, its standard error as ``sigma`` (or its covariance) and every parameter
        as a condition (for :func:`~surrodyn.surrogate.calibrate.fit_discrepancy` and
        :func:`~surrodyn.surrogate.calibrate.fit_parameter_error`).
    """
    from .sweep.dataset import open_sweep

    if store is None and not validation:
        raise ConfigError("give the models' training sweep, or independent validation sweeps, to fit the discrepancy.")
    sources: list[tuple[str, xr.Dataset, list[int]]] = []
    if store is not None:
        splits = [tuple(m.info.get("split", {}).get("test", ())) for m in models]
        if not splits[0] or len(set(splits)) != 1:
            raise ConfigError("the ensemble members must carry one common test split (train them on the same sweep).")
        ds = open_sweep(store)
        idx = list(splits[0])
        if max(idx) >= ds.sizes["point"]:
            raise ConfigError(
                f"{store} has {ds.sizes['point']} points; the models' test split refers to point {max(idx)}."
            )
        sources.append((store, ds, idx))
    for v in validation:
        ds = open_sweep(v, missing="drop")
        missing = [p for p in models[0].parameters if p not in ds.coords]
        if missing:
            raise ConfigError(f"validation sweep {v} does not vary or record {missing}, which the models take.")
        sources.append((v, ds, list(range(ds.sizes["point"]))))
    exps = []
    for name, ds, idx in sources:
        for i in idx:
            p = ds.isel(point=i)
            cond = {k: float(p[k].values) for k in models[0].parameters}
            exps.append(validation_point(p, cond, observable, correlated=correlated, source=f"{name}#{i}"))
    return exps


def validation_point(
    ds: xr.Dataset,
    conditions: Mapping[str, float],
    observable: str = "charge",
    *,
    correlated: bool = False,
    source: str = "kMC",
) -> Experiment:
    """One kMC ensemble at known parameters as an experiment, its own noise the only noise.

    Parameters
    ----------
    ds : xarray.Dataset
        A kMC ensemble or one point of a sweep.
    conditions : mapping
        Every parameter's true value (the experiment's conditions).
    observable : {"charge", "current"}
        The observable.
    correlated : bool
        The noise of the mean as its covariance in time, from the replicas (if stored).
    source : str
        A label.

    Returns
    -------
    Experiment
        The ensemble mean with its standard error as ``sigma`` (or its covariance).
    """
    mean, sem = kmc_observable(ds, observable)
    sigma = np.maximum(sem, 1e-6 * np.max(np.abs(mean)))
    reps = kmc_replicas(ds, observable) if correlated else None
    cov = None
    if reps is not None and reps.shape[-2] > 1:
        cov = noise_from_replicates(reps, ds["time"].values)[1]
        sigma = np.full(mean.shape, 1e-6 * np.max(np.abs(mean)))  # a floor; the noise is in cov
    return Experiment(observable, ds["time"].values, mean, sigma, dict(conditions), source, cov)


def discrepancy_from_store(
    models: Sequence[Surrogate],
    store: str | None = None,
    observable: str = "charge",
    *,
    validation: Sequence[str] = (),
    correlated: bool = False,
) -> Any:
    """Fit the surrogate discrepancy on kMC points the ensemble never trained on.

    Parameters are those of :func:`validation_experiments`.

    Returns
    -------
    Discrepancy
        See :func:`surrodyn.surrogate.calibrate.fit_discrepancy`.
    """
    from .surrogate.calibrate import fit_discrepancy

    points = validation_experiments(models, store, observable, validation=validation, correlated=correlated)
    return fit_discrepancy(models, points)


def run_calibration(
    data: str | Sequence[str],
    models: Sequence[str],
    unknowns: Sequence[str],
    out: str,
    *,
    conditions: Mapping[str, float] | None = None,
    noise: float | None = None,
    discrepancy_from: str | None = None,
    validation: Sequence[str] = (),
    level: float = 0.9,
    seed: int = 0,
    verify_kmc: bool = False,
    replicas: int = 4,
    workers: int = 1,
    truth: Mapping[str, float] | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Calibrate from files: read the data, load the ensemble, infer, verify, write a report.

    Parameters
    ----------
    data : str or sequence of str
        CSV or NetCDF of the measured transient (:func:`~surrodyn.surrogate.experiment.read_experiment`);
        several files are measurements of one sample (for example at several voltages), calibrated
        jointly (:class:`~surrodyn.surrogate.calibrate.JointLikelihood`).
    models : sequence of str
        Surrogate directories (an ensemble).
    unknowns : sequence of str
        Parameters to infer.
    out : str
        Output directory: ``report.txt``, ``calibration.json``, ``samples.npz``, ``corner.png``,
        ``fit.png`` and, with ``verify_kmc``, ``verification.png`` (with several data files,
        ``fit_1.png``, ``fit_2.png``, ... and ``verification_1.png``, ... in the files' order).
    conditions : mapping, optional
        Known conditions adding to those in the file.
    noise : float, optional
        Noise fraction when the data carry no sigma.
    discrepancy_from : str, optional
        The training sweep store, to fit the surrogate's error on the models' test points: the
        discrepancy and its parameter-space part (:func:`validation_experiments`).
    validation : sequence of str
        Independent kMC sweeps to fit the same on (all their points), with or instead of
        ``discrepancy_from``.
    level : float
        Credible level.
    seed : int
        Seed of the inference and of the verification kMC.
    verify_kmc : bool
        Run the kMC ensemble at the estimate.
    replicas, workers : int
        Verification ensemble settings.
    truth : mapping, optional
        Known true values (synthetic tests), marked in the figures.
    figures : bool
        Write the PNG figures.

    Returns
    -------
    dict
        What ``calibration.json`` holds.
    """
    import json
    from pathlib import Path

    from .data.io import atomic_savez, atomic_write_bytes
    from .surrogate.calibrate import calibrate, fit_discrepancy, fit_parameter_error, posterior_predictive
    from .surrogate.experiment import read_experiment

    files = [data] if isinstance(data, str | Path) else list(data)
    if not files:
        raise param_error("data", data, "one or more data files")
    experiments = [read_experiment(f, conditions) for f in files]
    ensemble = [Surrogate.load(m) for m in models]
    disc = perr = None
    if discrepancy_from or validation:
        # data with a noise covariance (replicates): the held-out kMC points get theirs too, so that the
        # discrepancy is not fitted to absorb the correlated part of their noise
        points = validation_experiments(ensemble, discrepancy_from, experiments[0].observable, validation=validation,
                                        correlated=any(e.noise_cov is not None for e in experiments))  # fmt: skip
        disc = fit_discrepancy(ensemble, points)
        perr = fit_parameter_error(ensemble, points, unknowns, disc)
    result = calibrate(ensemble, experiments if len(experiments) > 1 else experiments[0], unknowns, discrepancy=disc,
                       parameter_error=perr, noise=noise, level=level, seed=seed)  # fmt: skip
    like = result.likelihood
    parts = like.parts if isinstance(like, JointLikelihood) else [like]
    bands = [posterior_predictive(p, result, level=level, seed=seed) for p in parts]
    summary: dict[str, Any] = {"data": [str(f) for f in files] if len(files) > 1 else str(files[0]),
                               "models": list(models), **result.to_dict()}  # fmt: skip
    ver = None
    if verify_kmc:
        ver = verify(result, like, replicas=replicas, seed=seed, workers=workers)
        summary["verification"] = ver.to_dict()
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_savez(outdir / "samples.npz", samples=result.samples, names=np.array(result.names))
    atomic_write_bytes(outdir / "calibration.json", json.dumps(summary, indent=1).encode())
    atomic_write_bytes(outdir / "report.txt", calibration_report(result, ver, experiments).encode())
    if figures:
        from .plot.calibrate import plot_corner, plot_fit, plot_verification

        plot_corner(result, outdir / "corner.png", truth=truth)
        vers = [ver] if ver is None or not ver.parts else ver.parts
        for k, (f, exp, band) in enumerate(zip(files, experiments, bands, strict=True)):
            suffix = "" if len(files) == 1 else f"_{k + 1}"
            plot_fit(exp, band, outdir / f"fit{suffix}.png", title=Path(f).name)
            if ver is not None:
                plot_verification(exp, vers[k], outdir / f"verification{suffix}.png")
    return summary


def calibration_report(
    result: CalibrationResult, ver: Verification | None, experiment: Experiment | Sequence[Experiment]
) -> str:
    """Plain-text report of a calibration (and its verification); several experiments for a joint one."""
    exps = [experiment] if isinstance(experiment, Experiment) else list(experiment)
    known = result.info.get("known", {})
    known = known if isinstance(known, list) else [known]
    lines = [
        f"surrodyn calibration of {e.source or 'data'} ({e.observable}, {e.value.size} points); known: {k}"
        for e, k in zip(exps, known, strict=False)
    ]
    if len(exps) > 1:
        lines.insert(0, f"joint calibration of {len(exps)} experiments on one sample (shared unknowns):")
    lines += [
        f"ensemble of {result.info['members']} surrogate(s); discrepancy {result.info['discrepancy']}",
        "",
        f"{'parameter':<22}{'estimate':>14}{'median':>14}   {result.level:.0%} credible interval",
    ]
    for i, n in enumerate(result.names):
        lo, hi = result.intervals[n]
        lines.append(
            f"{n:<22}{result.estimate[n]:>14.5g}{np.median(result.samples[:, i]):>14.5g}   [{lo:.5g}, {hi:.5g}]"
        )
    t = result.timings
    lines += [
        "",
        f"time: {t['total']:.1f} s (point estimate {t['point_estimate']:.1f} s, posterior {t['posterior']:.1f} s); "
        f"{result.info['evaluations']} network evaluations; acceptance {result.info['acceptance']:.2f}; "
        f"autocorrelation {', '.join(f'{x:.0f}' for x in result.info['autocorr_steps'])} steps",
    ]
    if ver is not None:
        data_ok = "reproduces the data within its noise" if ver.reproduces_data else "DOES NOT reproduce the data"
        trust = "trusted" if ver.trusted else "NOT TRUSTED: the surrogate and the kMC disagree beyond their uncertainty"
        lines += [
            "",
            f"verification kMC ({ver.info['replicas']} replicas, {ver.seconds:.0f} s): chi2/N against the data "
            f"{ver.chi2_data:.2f} ({data_ok})",
            f"surrogate against the verifying kMC: chi2/N {ver.chi2_surrogate:.2f}, "
            f"p = {ver.p_surrogate:.3g} -> {trust}",
        ]
        for k, (e, v) in enumerate(zip(exps, ver.parts, strict=False), start=1):
            lines.append(
                f"  experiment {k} ({e.source or 'data'}): kMC vs data chi2/N {v.chi2_data:.2f}, "
                f"surrogate vs kMC p = {v.p_surrogate:.3g}"
            )
    return "\n".join(lines) + "\n"
