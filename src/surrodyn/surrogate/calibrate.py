"""Calibrate simulation parameters to a measured transient through the surrogate.

The surrogate answers in milliseconds and is differentiable, so the inverse problem — which
material parameters explain a measured charging curve? — is solved on it directly:

1. **Forward model.** For parameters θ, every member of a surrogate ensemble predicts the mean
   density n(t, z)/c0 on its training grid; :func:`~surrodyn.kmc.observables.charge_from_density_C_m2`
   turns it into the electrode charge Q(t), interpolated to the measured times (linear in t
   before the first record, where the ohmic current is constant; linear in log t after), and
   :func:`~surrodyn.kmc.observables.current_from_charge_A_m2` into the charging current. The
   kMC, the continuum twin and the surrogate all use these same two functions.
2. **Unknowns.** Any subset of the surrogate's static parameters (permittivity, concentration,
   voltage, disorder, ... — whatever it was trained on), plus two that need no training:
   ``voltage_offset_V`` (an effective offset added to the applied voltage) and
   ``hop_rate_factor`` (Γ/Γ_model). The latter is exact: multiplying every hop rate by a
   factor h only rescales time, Q(t; hΓ) = Q(h t; Γ), so one surrogate trained at one attempt
   frequency and activation energy infers either (ΔE_a = −k_B T ln h at fixed attempt frequency).
   Priors are uniform on the training domain (log-uniform for parameters swept on a log scale).
3. **Likelihood.** Gaussian, with covariance ``diag(noise²) + D R D``: the measurement noise, and
   the surrogate's own uncertainty ``D² = var_members + discrepancy²`` — the spread of the
   ensemble members plus a discrepancy fitted on held-out kMC points (:func:`fit_discrepancy`)
   — correlated in log-time by ``R_ij = exp(−|log10 t_i − log10 t_j| / ℓ)``, because a surrogate
   that is off at one time is off at the next. The part of the surrogate error that looks like a
   shift of the parameters, measured on the same validation points (:func:`fit_parameter_error`),
   is convolved into the posterior samples.
4. **Point estimate**: multi-start gradient descent through the network (Adam on the
   log-posterior, starts on a Sobol design of the prior box), polished by L-BFGS-B
   (:func:`polish`). **Posterior**: an affine-invariant ensemble sampler (emcee) over the same
   log-posterior, every walker evaluated in one batch; if it finds a higher point than the
   optimiser did, the point estimate is polished from there.

Verification against a fresh kMC ensemble and Bayesian optimisation directly on the kMC (the
anchor) live in the use layer, :mod:`surrodyn.calibration`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, param_error
from ..kmc.observables import charge_from_density_C_m2, current_from_charge_A_m2
from ..units import CM3_TO_M3, VACUUM_PERMITTIVITY_F_M
from .artefact import Surrogate
from .data import LOG_PARAMETERS, covariates_for_configs, inverse_transform
from .experiment import Experiment

__all__ = [
    "CalibrationResult",
    "Discrepancy",
    "ExtrapolationWarning",
    "JointLikelihood",
    "ParameterError",
    "SurrogateLikelihood",
    "Unknown",
    "calibrate",
    "fit_discrepancy",
    "fit_parameter_error",
    "point_estimate",
    "polish",
    "posterior_predictive",
    "sample_posterior",
]

#: Unknowns every surrogate supports without having been trained on them.
EXTRA_UNKNOWNS = ("voltage_offset_V", "hop_rate_factor")


class ExtrapolationWarning(UserWarning):
    """A known condition lies outside the surrogate's training domain."""


@dataclass(frozen=True)
class Unknown:
    """An unknown parameter with a uniform prior on ``[low, high]`` (in log10 when ``log``).

    Parameters
    ----------
    name : str
        Parameter name.
    low, high : float
        Prior bounds in the parameter's own units.
    log : bool
        Uniform in log10 (log-uniform prior) rather than in the value.
    """

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise param_error(f"prior of {self.name}", (self.low, self.high), "finite bounds with low < high")
        if self.log and self.low <= 0:
            raise param_error(f"prior of {self.name}", (self.low, self.high), "positive bounds for a log prior")

    @property
    def bounds_w(self) -> tuple[float, float]:
        """Bounds in the working coordinate (log10 for log priors)."""
        return (np.log10(self.low), np.log10(self.high)) if self.log else (self.low, self.high)

    def to_value(self, w: Any) -> Any:
        """Working coordinate to value (arrays and tensors too)."""
        return 10.0**w if self.log else w

    def to_working(self, value: Any) -> Any:
        """Value to working coordinate (log10 for log priors)."""
        return np.log10(value) if self.log else np.asarray(value, dtype=float)


@dataclass(frozen=True)
class Discrepancy:
    """Surrogate-versus-kMC discrepancy of an observable, on top of the ensemble spread.

    ``sd_i = relative · |s_i| + floor · max_j |s_j|``, with ``s`` the signal (the induced part of
    the charge, or the current), correlated over ``corr_decades`` of log-time.

    Parameters
    ----------
    relative, floor : float
        Fractions of the signal and of its largest magnitude.
    corr_decades : float
        Correlation length in decades of time.
    n_points : int
        Held-out kMC points it was fitted on (0: a default guess).
    """

    relative: float = 0.10
    floor: float = 0.05
    corr_decades: float = 0.5
    n_points: int = 0

    def to_dict(self) -> dict[str, float]:
        """Plain dict (YAML/JSON)."""
        return {k: float(v) if k != "n_points" else int(v) for k, v in asdict(self).items()}

    def correlation(self, time_s: np.ndarray) -> torch.Tensor:
        """Correlation ``R_ij = exp(−|log10 t_i − log10 t_j| / ℓ)`` (N, N) of the discrepancy."""
        lt = np.log10(np.asarray(time_s, dtype=float))
        return torch.from_numpy(np.exp(-np.abs(lt[:, None] - lt[None, :]) / self.corr_decades))

    def sd(self, var: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Surrogate standard deviation per point: member variance ``var`` plus the discrepancy.

        Parameters
        ----------
        var, signal : torch.Tensor
            (..., N) ensemble variance and signal of the observable.
        """
        amp = signal.abs().amax(-1, keepdim=True)
        disc = self.relative * signal.abs() + self.floor * amp
        return torch.sqrt(var + disc**2)

    def covariance(self, sd: torch.Tensor, corr: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
        """Total covariance ``diag(noise_var) + D R D`` (..., N, N) from :meth:`sd` and :meth:`correlation`."""
        return sd[..., :, None] * corr * sd[..., None, :] + torch.diag_embed(noise_var)


def _domain(model: Surrogate) -> dict[str, tuple[float, float, bool]]:
    out = {}
    for p in model.spec.parameters:
        vals = p.values if p.values is not None else (p.min, p.max)
        out[p.name] = (float(min(vals)), float(max(vals)), p.scale == "log" or p.name in LOG_PARAMETERS)
    return out


class _BoxPosterior:
    """Prior box and log-posterior of single and joint likelihoods (from ``unknowns`` and ``log_likelihood``)."""

    unknowns: tuple[Unknown, ...]

    def log_likelihood(self, w: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def bounds_w(self) -> np.ndarray:
        """(d, 2) prior bounds in working coordinates."""
        return np.array([u.bounds_w for u in self.unknowns])

    def values(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """Working coordinates (..., d) to parameter values by name."""
        w = np.asarray(w, dtype=float)
        return {u.name: u.to_value(w[..., i]) for i, u in enumerate(self.unknowns)}

    def working(self, values: Mapping[str, Any]) -> np.ndarray:
        """Parameter values by name (scalars or arrays) to working coordinates (B, d)."""
        return np.stack([np.atleast_1d(u.to_working(values[u.name])) for u in self.unknowns], -1)

    def log_posterior(self, w: np.ndarray) -> np.ndarray:
        """Log-posterior of working coordinates (B, d) (NumPy in and out; -inf outside the prior)."""
        w = np.atleast_2d(np.asarray(w, dtype=float))
        b = self.bounds_w
        inside = np.all((w >= b[:, 0]) & (w <= b[:, 1]), axis=1)
        out = np.full(w.shape[0], -np.inf)
        if inside.any():
            with torch.no_grad():
                out[inside] = self.log_likelihood(torch.from_numpy(w[inside])).numpy()
        return out


class SurrogateLikelihood(_BoxPosterior):
    """Log-likelihood of an experiment as a function of the unknowns, through a surrogate ensemble.

    Parameters
    ----------
    models : sequence of Surrogate
        Ensemble members (same parameters and training grid; one model is allowed, then only the
        discrepancy term carries its uncertainty).
    experiment : Experiment
        The data; its conditions must give every model parameter that is not unknown.
    unknowns : sequence of str or Unknown
        What to infer; names get the default prior (the training domain).
    discrepancy : Discrepancy, optional
        Surrogate error model (default: :class:`Discrepancy` defaults, with a warning).
    noise : float, optional
        Measurement noise as a fraction of the largest measured magnitude, used when the data carry
        no per-point ``sigma``.
    """

    def __init__(
        self,
        models: Sequence[Surrogate],
        experiment: Experiment,
        unknowns: Sequence[str | Unknown],
        discrepancy: Discrepancy | None = None,
        noise: float | None = None,
    ) -> None:
        self.models = list(models) if not isinstance(models, Surrogate) else [models]
        if not self.models:
            raise ConfigError("calibration needs at least one surrogate model.")
        ref = self.models[0]
        for m in self.models:
            if m.config.field_names:
                raise ConfigError(
                    f"the surrogate takes field covariates {list(m.config.field_names)} (the continuum twin, about "
                    "0.3 s per evaluation): calibration evaluates it thousands of times, so train it with "
                    "`continuum: false`."
                )
            if m.parameters != ref.parameters or not np.array_equal(m.time_s, ref.time_s):
                raise ConfigError("ensemble members must share their parameters and training time grid.")
            if not np.array_equal(m.z, ref.z):
                raise ConfigError("ensemble members must share their z grid.")
        self.experiment = experiment
        self.domain = _domain(ref)
        self.unknowns = self._unknowns(unknowns)
        self.names = tuple(u.name for u in self.unknowns)
        self.discrepancy = discrepancy or Discrepancy()
        if discrepancy is None:
            warnings.warn(
                "no discrepancy fitted for this surrogate: using the default guess "
                f"{self.discrepancy.to_dict()}; fit one on held-out kMC points with fit_discrepancy "
                "(CLI: --discrepancy-from STORE).",
                UserWarning,
                stacklevel=2,
            )
        self._known = self._known_values()
        self._check_conditions()
        base = ref.spec.base
        self.gap_m = float(base.gap_m)
        self.z_m = ref.z * self.gap_m
        self.t_grid = ref.time_s[1:]
        if experiment.time_s[-1] > self.t_grid[-1] * (1 + 1e-9) and "hop_rate_factor" not in self.names:
            warnings.warn(
                f"the data run to {experiment.time_s[-1]:.3g} s, past the surrogate's horizon "
                f"{self.t_grid[-1]:.3g} s: the last predicted record (the relaxed state) is used there.",
                ExtrapolationWarning,
                stacklevel=2,
            )
        y = experiment.value
        if experiment.sigma is not None:
            self.noise_sd = experiment.sigma
        elif noise is not None:
            if not noise > 0:
                raise param_error("noise", noise, "a positive fraction of the largest measured magnitude")
            self.noise_sd = np.full(y.shape, float(noise) * float(np.max(np.abs(y))))
        elif experiment.noise_cov is not None:
            self.noise_sd = np.zeros(y.shape)  # all the noise is in the covariance (replicates)
        else:
            raise ConfigError(
                "the data carry no noise level: add a 'sigma [unit]' column or replicate columns ('charge_1 [unit]', "
                "'charge_2 [unit]', ...), or give the noise as a fraction of the largest measured value (noise=0.02, "
                "CLI --noise 0.02)."
            )
        self._noise_cov = None if experiment.noise_cov is None else torch.from_numpy(experiment.noise_cov.copy())
        self._corr = self.discrepancy.correlation(experiment.time_s)
        self._y = torch.from_numpy(y.copy())
        self._t_data = torch.from_numpy(experiment.time_s.copy())
        self._noise_var = torch.from_numpy(self.noise_sd**2)
        self._log_tg = torch.from_numpy(np.log(self.t_grid))
        self._zt = torch.from_numpy(ref.z.astype(np.float32))
        self.n_evaluations = 0
        self._known_cov: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ set-up
    def _unknowns(self, unknowns: Sequence[str | Unknown]) -> tuple[Unknown, ...]:
        out = []
        allowed = list(self.models[0].parameters) + list(EXTRA_UNKNOWNS)
        for u in unknowns:
            if isinstance(u, Unknown):
                name = u.name
            else:
                name = str(u)
                if name in self.domain:
                    lo, hi, log = self.domain[name]
                    if lo == hi:
                        raise ConfigError(f"the surrogate was trained at a single {name}={lo}: it cannot infer it.")
                    u = Unknown(name, lo, hi, log)
                elif name == "voltage_offset_V":
                    u = Unknown(name, -0.2, 0.2, False)
                elif name == "hop_rate_factor":
                    u = Unknown(name, 0.1, 10.0, True)
            if name not in allowed:
                raise ConfigError(
                    f"cannot infer {name!r}: this surrogate was trained on {list(self.models[0].parameters)}; "
                    f"besides those, {list(EXTRA_UNKNOWNS)} can be inferred. Train a surrogate whose sweep varies "
                    f"{name} to infer it."
                )
            if not isinstance(u, Unknown):
                raise ConfigError(f"unknown {u!r} is neither a name nor an Unknown.")
            out.append(u)
        names = [u.name for u in out]
        if not out or len(set(names)) != len(names):
            raise param_error("unknowns", names, "one or more distinct parameter names")
        return tuple(out)

    def _known_values(self) -> dict[str, float]:
        cond = self.experiment.conditions
        missing = [p for p in self.models[0].parameters if p not in self.names and p not in cond]
        if missing:
            raise ConfigError(
                f"the experiment's conditions do not give {missing}, and they are not unknowns: add them to the data "
                f"(# {missing[0]}: value) or to --condition, or infer them with --unknown."
            )
        return {p: float(cond[p]) for p in self.models[0].parameters if p not in self.names}

    def _check_conditions(self) -> None:
        for name, value in self._known.items():
            lo, hi, log = self.domain[name]
            if lo <= value <= hi:
                continue
            if log and value > 0:
                dist = max(np.log10(lo / value), np.log10(value / hi))
                how = f"{dist:.2f} decades"
            else:
                dist = max(lo - value, value - hi)
                how = f"{dist:.3g} ({dist / (hi - lo):.0%} of the trained range)"
            warnings.warn(
                f"{name}={value:g} lies outside the surrogate's training domain [{lo:g}, {hi:g}], by {how}: "
                "the prediction is an extrapolation.",
                ExtrapolationWarning,
                stacklevel=3,
            )
        base = self.models[0].spec.base
        for name in ("temperature_K",):
            if name in self.experiment.conditions and name not in self.domain:
                trained = float(base.to_dict().get(name, np.nan))
                value = self.experiment.conditions[name]
                if abs(value - trained) > 1e-6 * abs(trained):
                    warnings.warn(
                        f"{name}={value:g} but the surrogate knows only {name}={trained:g}: the prediction is an "
                        "extrapolation (a temperature change of the hop rate alone is captured by hop_rate_factor).",
                        ExtrapolationWarning,
                        stacklevel=3,
                    )

    # ------------------------------------------------------------------ forward
    def _physical(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        b = w.shape[0]
        out = {p: torch.full((b,), v, dtype=torch.float64) for p, v in self._known.items()}
        for i, u in enumerate(self.unknowns):
            out[u.name] = u.to_value(w[:, i])
        out.setdefault("voltage_offset_V", torch.zeros(b, dtype=torch.float64))
        out.setdefault("hop_rate_factor", torch.ones(b, dtype=torch.float64))
        base = self.models[0].spec.base
        for p, default in (
            ("permittivity", base.permittivity),
            ("concentration_cm3", base.concentration_cm3),
            ("voltage_V", None),
        ):
            if p not in out:
                if default is None:
                    v = self.experiment.conditions.get("voltage_V")
                    if v is None:
                        raise ConfigError("the experiment's conditions must give the applied voltage_V.")
                    default = v
                out[p] = torch.full((b,), float(default), dtype=torch.float64)
        return out

    def _known_covariates(self, model: Surrogate, phys: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised known-future covariates (1, T, K) of this experiment (they do not depend on the unknowns)."""
        key = id(model)
        if key not in self._known_cov:
            known_names = model.config.known_names
            if any(k != "log10_time" for k in known_names) and "voltage_offset_V" in self.names:
                raise ConfigError("voltage_offset_V cannot be inferred with a surrogate that takes V(t) as an input.")
            cfg = model.configs({p: float(phys[p][0].detach()) for p in model.parameters})
            known = model.known_norm(covariates_for_configs(cfg, model.time_s, known_names, model.t_ref_s))
            self._known_cov[key] = torch.from_numpy(known)
        return self._known_cov[key]

    def _member_charge(
        self, model: Surrogate, phys: dict[str, torch.Tensor], known: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Electrode charge (B, T) of one member on its grid (``known`` (B, T, K): default this experiment's)."""
        cols = []
        for p in model.parameters:
            v = phys[p] + (phys["voltage_offset_V"] if p == "voltage_V" else 0.0)
            cols.append(torch.log10(v) if p in LOG_PARAMETERS else v)
        mean = torch.tensor(model.static_norm.mean, dtype=torch.float64)
        scale = torch.tensor(model.static_norm.scale, dtype=torch.float64)
        static = ((torch.stack(cols, -1) - mean) / scale).float()
        b = static.shape[0]
        known_t = self._known_covariates(model, phys).expand(b, -1, -1) if known is None else known
        ctx = torch.full((b, 1, self._zt.numel()), float(np.arcsinh(1.0)))
        out = model.network(static, known_t, ctx, self._zt, None)
        density = inverse_transform(out.mean).double()  # (B, T, Z)
        volt = phys["voltage_V"] + phys["voltage_offset_V"]
        conc = phys["concentration_cm3"] / CM3_TO_M3
        return charge_from_density_C_m2(
            density, self.z_m, self.gap_m, phys["permittivity"][:, None], conc[:, None], volt[:, None]
        )

    def _at_data_times(self, q_grid: torch.Tensor, q0: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        t = self._t_data[None, :] * factor[:, None]  # (B, N) model time
        t1, tn = float(self.t_grid[0]), float(self.t_grid[-1])
        early = q0[:, None] + (q_grid[:, :1] - q0[:, None]) * (t / t1)
        lt = torch.log(t.clamp(t1, tn))
        k = torch.searchsorted(self._log_tg, lt.detach().contiguous()).clamp(1, self.t_grid.size - 1)
        lo, hi = self._log_tg[k - 1], self._log_tg[k]
        wgt = (lt - lo) / (hi - lo)
        mid = torch.gather(q_grid, 1, k - 1) * (1 - wgt) + torch.gather(q_grid, 1, k) * wgt
        return torch.where(t < t1, early, mid)

    def predict(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ensemble prediction of the observable at the data times.

        Parameters
        ----------
        w : torch.Tensor
            (B, d) working coordinates.

        Returns
        -------
        mean, var, signal : torch.Tensor
            (B, N) ensemble mean and member variance of the observable, and its signal (the
            observable minus the bare capacitor charge, for charge).
        """
        phys = self._physical(w.double())
        return self._from_grids(phys, [self._member_charge(m, phys) for m in self.models])

    def _from_grids(
        self, phys: dict[str, torch.Tensor], grids: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ensemble mean, variance and signal at the data times from each member's charge on its grid."""
        volt = phys["voltage_V"] + phys["voltage_offset_V"]
        q0 = VACUUM_PERMITTIVITY_F_M * phys["permittivity"] * volt / self.gap_m
        members = []
        for grid in grids:
            q = self._at_data_times(grid, q0, phys["hop_rate_factor"])
            if self.experiment.observable == "current":
                q = current_from_charge_A_m2(q, self.experiment.time_s, q0)
            members.append(q)
        stack = torch.stack(members)
        mean = stack.mean(0)
        var = stack.var(0) if len(members) > 1 else torch.zeros_like(mean)
        signal = mean - q0[:, None] if self.experiment.observable == "charge" else mean
        self.n_evaluations += volt.shape[0] * len(self.models)
        return mean, var, signal

    def model_sd(self, var: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Surrogate standard deviation per point: member spread and discrepancy."""
        return self.discrepancy.sd(var, signal)

    def covariance(self, var: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Total covariance (..., N, N): the surrogate's (correlated) plus the data noise (independent and correlated).

        Parameters
        ----------
        var, signal : torch.Tensor
            (..., N) ensemble variance and signal, as :meth:`predict` returns them.
        """
        cov = self.discrepancy.covariance(self.model_sd(var, signal), self._corr, self._noise_var)
        return cov if self._noise_cov is None else cov + self._noise_cov

    def log_likelihood(self, w: torch.Tensor) -> torch.Tensor:
        """Gaussian log-likelihood (B,) of working coordinates ``w`` (B, d)."""
        return self._gaussian(*self.predict(w))

    def _gaussian(self, mean: torch.Tensor, var: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Gaussian log-likelihood (B,) of a prediction."""
        cov = self.covariance(var, signal)
        chol = torch.linalg.cholesky(cov)
        r = (self._y - mean)[..., None]
        sol = torch.linalg.solve_triangular(chol, r, upper=False)[..., 0]
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * (sol**2).sum(-1) - 0.5 * logdet - 0.5 * r.shape[1] * np.log(2 * np.pi)


class JointLikelihood(_BoxPosterior):
    """Several experiments on one sample: shared unknowns, independent data, likelihoods multiplied.

    A material's permittivity and concentration do not change with the applied voltage, so the
    charging transients of one sample at several voltages (or other known conditions) constrain
    them together: ``log L(θ) = Σ_k log L_k(θ)``. The experiments' noises are independent
    (separate measurements); each keeps its own known conditions, noise and covariance.

    Parameters
    ----------
    parts : sequence of SurrogateLikelihood
        One likelihood per experiment, with the same unknowns and priors.
    """

    def __init__(self, parts: Sequence[SurrogateLikelihood]) -> None:
        self.parts = list(parts)
        if not self.parts:
            raise ConfigError("a joint calibration needs at least one experiment.")
        first = self.parts[0]
        for k, p in enumerate(self.parts[1:], start=2):
            if p.unknowns != first.unknowns:
                raise ConfigError(
                    f"experiment {k} has unknowns {[u.name for u in p.unknowns]}, experiment 1 "
                    f"{[u.name for u in first.unknowns]}: a joint calibration shares one set of unknowns and priors."
                )
        self.unknowns = first.unknowns
        self.names = first.names
        self.models = first.models
        self.discrepancy = first.discrepancy

    @property
    def experiments(self) -> list[Experiment]:
        """The experiments, in order."""
        return [p.experiment for p in self.parts]

    @property
    def n_evaluations(self) -> int:
        """Network evaluations over all parts."""
        return sum(p.n_evaluations for p in self.parts)

    def predict(self, w: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each experiment's prediction, as :meth:`SurrogateLikelihood.predict`, from one network call per member.

        The experiments differ only in their known conditions, so their batches are stacked and
        every member runs once on all of them (the same numbers as separate calls, fewer calls).
        """
        w = w.double()
        b = w.shape[0]
        phys = [p._physical(w) for p in self.parts]
        stacked = {k: torch.cat([ph[k] for ph in phys]) for k in phys[0]}
        pairs = list(zip(self.parts, phys, strict=True))
        grids = []
        for m in self.models:
            known = torch.cat([p._known_covariates(m, ph).expand(b, -1, -1) for p, ph in pairs])
            grids.append(self.parts[0]._member_charge(m, stacked, known).split(b))
        return [p._from_grids(ph, [g[k] for g in grids]) for k, (p, ph) in enumerate(pairs)]

    def log_likelihood(self, w: torch.Tensor) -> torch.Tensor:
        """Sum of the parts' Gaussian log-likelihoods (B,) at working coordinates ``w`` (B, d)."""
        total = None
        for p, (mean, var, signal) in zip(self.parts, self.predict(w), strict=True):
            ll = p._gaussian(mean, var, signal)
            total = ll if total is None else total + ll
        return total


# ---------------------------------------------------------------------------- inference
@dataclass
class CalibrationResult:
    """Parameter estimates and posterior of one calibration.

    Attributes
    ----------
    names : tuple of str
        Unknowns.
    estimate : dict
        Point estimate (maximum a posteriori) by name.
    samples : numpy.ndarray
        (S, d) posterior samples of the values (not working coordinates).
    intervals : dict
        Equal-tailed credible interval per name at ``level``.
    level : float
        Credible level of ``intervals``.
    timings : dict
        Wall seconds of the point estimate, the sampling, and in total.
    info : dict
        Diagnostics: acceptance fraction, autocorrelation times, evaluations, discrepancy, noise.
    likelihood : SurrogateLikelihood or JointLikelihood or None
        The likelihood it came from (for predictive bands and verification; not serialised).
    """

    names: tuple[str, ...]
    estimate: dict[str, float]
    samples: np.ndarray
    intervals: dict[str, tuple[float, float]]
    level: float
    timings: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    likelihood: SurrogateLikelihood | JointLikelihood | None = field(default=None, repr=False)

    def interval(self, level: float) -> dict[str, tuple[float, float]]:
        """Equal-tailed credible intervals at another level."""
        lo, hi = 0.5 - level / 2, 0.5 + level / 2
        return {n: tuple(np.quantile(self.samples[:, i], [lo, hi]).tolist()) for i, n in enumerate(self.names)}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {
            "unknowns": list(self.names),
            "estimate": self.estimate,
            "posterior_median": {n: float(np.median(self.samples[:, i])) for i, n in enumerate(self.names)},
            "credible_level": self.level,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "timings_s": self.timings,
            "info": self.info,
        }


def _sobol_starts(bounds: np.ndarray, n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    u = qmc.Sobol(bounds.shape[0], scramble=True, seed=seed).random(n)
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def point_estimate(
    like: SurrogateLikelihood | JointLikelihood, starts: int = 8, steps: int = 150, lr: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Maximum a posteriori by multi-start gradient descent through the surrogate.

    Every start runs in one batch; each is a bounded variable ``w = lo + (hi - lo) σ(u)``
    optimised by Adam on the log-posterior (the prior is flat inside the box).

    Parameters
    ----------
    like : SurrogateLikelihood or JointLikelihood
        The likelihood.
    starts : int
        Number of starts (a scrambled Sobol design of the prior box).
    steps : int
        Adam steps.
    lr : float
        Adam learning rate (on the logit scale).
    seed : int
        Seed of the start design.

    Returns
    -------
    w : numpy.ndarray
        (d,) best working coordinates.
    log_post : float
        Its log-posterior.
    """
    b = like.bounds_w
    w0 = _sobol_starts(b, starts, seed)
    lo, span = torch.from_numpy(b[:, 0]), torch.from_numpy(b[:, 1] - b[:, 0])
    frac = np.clip((w0 - b[:, 0]) / (b[:, 1] - b[:, 0]), 1e-3, 1 - 1e-3)
    u = torch.tensor(np.log(frac / (1 - frac)), requires_grad=True)
    opt = torch.optim.Adam([u], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = -like.log_likelihood(lo + span * torch.sigmoid(u)).sum()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        w = (lo + span * torch.sigmoid(u)).numpy()
        lp = like.log_likelihood(torch.from_numpy(w)).numpy()
    best = int(np.argmax(lp))
    return polish(like, w[best], float(lp[best]))


def polish(like: SurrogateLikelihood | JointLikelihood, w: np.ndarray, lp: float) -> tuple[np.ndarray, float]:
    """Refine a posterior mode by L-BFGS-B with the network's gradient, inside the prior box.

    Adam on a decaying schedule stops near, not at, a narrow mode (several experiments make the
    posterior a thin ridge); a quasi-Newton polish reaches it. The result is kept only if its
    log-posterior is higher.

    Parameters
    ----------
    like : SurrogateLikelihood or JointLikelihood
        The likelihood.
    w : numpy.ndarray
        (d,) start, working coordinates.
    lp : float
        Its log-posterior.

    Returns
    -------
    w, lp : numpy.ndarray, float
        The better of the start and the polished point.
    """
    from scipy.optimize import minimize

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(x[None], dtype=torch.float64, requires_grad=True)
        val = -like.log_likelihood(t).sum()
        val.backward()
        return float(val), t.grad[0].numpy().astype(float)

    res = minimize(f, w, jac=True, method="L-BFGS-B", bounds=like.bounds_w, options={"maxiter": 100})
    if np.isfinite(res.fun) and -float(res.fun) > lp:
        return np.asarray(res.x, dtype=float), -float(res.fun)
    return w, lp


def sample_posterior(
    like: SurrogateLikelihood | JointLikelihood,
    w_start: np.ndarray,
    walkers: int = 24,
    steps: int = 500,
    burn: int = 200,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Sample the posterior with emcee's affine-invariant ensemble sampler.

    Parameters
    ----------
    like : SurrogateLikelihood or JointLikelihood
        The likelihood.
    w_start : numpy.ndarray
        (d,) where the walkers start (a small ball around it, inside the prior).
    walkers, steps, burn : int
        Walkers, steps per walker, discarded steps.
    seed : int
        Seed of the initial ball and of the sampler.
    progress : bool
        Show emcee's progress bar.

    Returns
    -------
    samples : numpy.ndarray
        ((steps - burn) · walkers, d) working coordinates.
    info : dict
        Acceptance fraction, integrated autocorrelation time per unknown, and the highest-posterior
        sample (``best_sample``, working coordinates) with its log-posterior.
    """
    import emcee

    d = w_start.size
    if walkers < 2 * d:
        raise param_error("walkers", walkers, f"at least {2 * d} (twice the number of unknowns)")
    if not 0 <= burn < steps:
        raise param_error("burn", burn, f"0 <= burn < steps={steps}")
    rng = np.random.default_rng(seed)
    b = like.bounds_w
    width = 0.01 * (b[:, 1] - b[:, 0])
    p0 = np.clip(w_start + width * rng.standard_normal((walkers, d)), b[:, 0] + 1e-9, b[:, 1] - 1e-9)
    sampler = emcee.EnsembleSampler(walkers, d, like.log_posterior, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()  # emcee's own generator, seeded
    sampler.run_mcmc(p0, steps, progress=progress)
    chain = sampler.get_chain(discard=burn, flat=True)
    log_prob = sampler.get_log_prob(discard=burn, flat=True)
    import logging

    emcee_log = logging.getLogger("emcee")
    level = emcee_log.level
    emcee_log.setLevel(logging.ERROR)  # a chain < 50 tau gives a rough estimate, reported in info, not logged
    try:
        tau = sampler.get_autocorr_time(discard=burn, quiet=True)
    finally:
        emcee_log.setLevel(level)
    top = int(np.argmax(log_prob))
    info = {
        "best_sample": chain[top].tolist(),  # the highest-posterior sample (working coordinates)
        "best_sample_log_posterior": float(log_prob[top]),
        "acceptance": float(np.mean(sampler.acceptance_fraction)),
        "autocorr_steps": [float(x) for x in np.atleast_1d(tau)],
        "walkers": walkers,
        "steps": steps,
        "burn": burn,
    }
    return chain, info


def _likelihood(
    models: Sequence[Surrogate] | Surrogate,
    experiment: Experiment | Sequence[Experiment],
    unknowns: Sequence[str | Unknown],
    discrepancy: Discrepancy | None,
    noise: float | None,
) -> SurrogateLikelihood | JointLikelihood:
    """One likelihood for one experiment, a joint one for several."""
    if isinstance(experiment, Experiment):
        return SurrogateLikelihood(models, experiment, unknowns, discrepancy, noise)
    experiments = list(experiment)
    if not experiments or not all(isinstance(e, Experiment) for e in experiments):
        raise param_error("experiment", experiment, "an Experiment or a non-empty sequence of Experiments")
    if len({e.observable for e in experiments}) > 1:
        raise ConfigError(
            f"the experiments measure {sorted({e.observable for e in experiments})}: a joint calibration "
            "needs one observable (calibrate each separately, or convert them)."
        )
    parts = [SurrogateLikelihood(models, e, unknowns, discrepancy, noise) for e in experiments]
    return parts[0] if len(parts) == 1 else JointLikelihood(parts)


def _noise_info(parts: Sequence[SurrogateLikelihood]) -> dict[str, float | None]:
    """Median noise levels over all experiments: the independent part and the covariance's."""
    cov = [np.sqrt(np.diag(p.experiment.noise_cov)) for p in parts if p.experiment.noise_cov is not None]
    return {
        "noise_sd_median": float(np.median(np.concatenate([p.noise_sd for p in parts]))),
        "noise_cov_sd_median": float(np.median(np.concatenate(cov))) if cov else None,
    }


def calibrate(
    models: Sequence[Surrogate] | Surrogate,
    experiment: Experiment | Sequence[Experiment],
    unknowns: Sequence[str | Unknown],
    *,
    discrepancy: Discrepancy | None = None,
    parameter_error: ParameterError | None = None,
    noise: float | None = None,
    level: float = 0.9,
    starts: int = 8,
    steps: int = 150,
    walkers: int = 24,
    mcmc_steps: int = 500,
    burn: int = 200,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
) -> CalibrationResult:
    """Infer unknown parameters from a measured transient through a surrogate ensemble.

    Parameters
    ----------
    models : Surrogate or sequence of Surrogate
        The ensemble (trained without field covariates).
    experiment : Experiment or sequence of Experiment
        The data and its known conditions; several experiments on the same sample (for example
        at several voltages) are calibrated jointly (:class:`JointLikelihood`): the unknowns are
        shared, each experiment keeps its own conditions and noise.
    unknowns : sequence of str or Unknown
        What to infer (see the module docstring).
    discrepancy : Discrepancy, optional
        Surrogate error model, best from :func:`fit_discrepancy`.
    parameter_error : ParameterError, optional
        The part of the surrogate error that shifts the answer (:func:`fit_parameter_error`, for
        these unknowns): added to the posterior samples, which then carry it into the intervals.
    noise : float, optional
        Noise level as a fraction of the largest measured magnitude, when the data have no sigma.
    level : float
        Credible level of the reported intervals.
    starts, steps : int
        Multi-start gradient descent: starts and Adam steps.
    walkers, mcmc_steps, burn : int
        Ensemble sampler settings.
    seed : int
        Seed of the starts and the sampler: the same seed gives the same result.
    threads : int, optional
        Torch threads during the calibration (default: unchanged).
    progress : bool
        Show the sampler's progress bar.

    Returns
    -------
    CalibrationResult
        Point estimate, posterior samples, credible intervals, timings and diagnostics.
    """
    if not 0 < level < 1:
        raise param_error("level", level, "a credible level strictly between 0 and 1")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ExtrapolationWarning)
            like = _likelihood(models, experiment, unknowns, discrepancy, noise)
        t0 = time.perf_counter()
        w_hat, lp = point_estimate(like, starts=starts, steps=steps, seed=seed)
        t1 = time.perf_counter()
        chain, info = sample_posterior(like, w_hat, walkers=walkers, steps=mcmc_steps, burn=burn, seed=seed,
                                       progress=progress)  # fmt: skip
        if info["best_sample_log_posterior"] > lp:  # the sampler saw higher ground: the mode is there
            w_s, lp_s = polish(like, np.asarray(info.pop("best_sample")), info["best_sample_log_posterior"])
            info["point_estimate_from"] = "sampler"
            w_hat, lp = (w_s, lp_s) if lp_s > lp else (w_hat, lp)
        else:
            info.pop("best_sample")
            info["point_estimate_from"] = "optimiser"
        t2 = time.perf_counter()
    finally:
        torch.set_num_threads(old_threads)
    if parameter_error is not None:
        if tuple(parameter_error.names) != like.names:
            raise ConfigError(
                f"the parameter error was measured for {list(parameter_error.names)}, not for {list(like.names)}."
            )
        rng = np.random.default_rng([seed, 7])
        shift = rng.multivariate_normal(np.zeros(len(like.names)), parameter_error.cov, size=chain.shape[0],
                                        method="eigh")  # fmt: skip
        bounds = like.bounds_w
        chain = np.clip(chain + shift, bounds[:, 0], bounds[:, 1])
    parts = like.parts if isinstance(like, JointLikelihood) else [like]
    values = like.values(chain)
    samples = np.stack([values[n] for n in like.names], 1)
    estimate = {n: float(v) for n, v in like.values(w_hat).items()}
    result = CalibrationResult(
        names=like.names,
        estimate=estimate,
        samples=samples,
        intervals={},
        level=level,
        timings={"point_estimate": t1 - t0, "posterior": t2 - t1, "total": t2 - t0},
        info={
            **info,
            "log_posterior_at_estimate": lp,
            "evaluations": like.n_evaluations,
            "members": len(like.models),
            "discrepancy": like.discrepancy.to_dict(),
            "parameter_error": None if parameter_error is None else parameter_error.to_dict(),
            **_noise_info(parts),
            "observable": parts[0].experiment.observable,
            "known": dict(parts[0]._known) if len(parts) == 1 else [dict(p._known) for p in parts],
            "priors": {u.name: [u.low, u.high, "log" if u.log else "linear"] for u in like.unknowns},
        },
        likelihood=like,
    )
    result.intervals = result.interval(level)
    return result


def posterior_predictive(
    like: SurrogateLikelihood, result: CalibrationResult, draws: int = 200, level: float = 0.9, seed: int = 0
) -> dict[str, np.ndarray]:
    """Predictive band of the observable at the data times from posterior draws.

    Each draw takes a posterior sample, the ensemble prediction there and one realisation of the
    surrogate's uncertainty (member spread and discrepancy; the measurement noise is not added).

    Parameters
    ----------
    like : SurrogateLikelihood
        The likelihood the result came from.
    result : CalibrationResult
        The calibration.
    draws : int
        Posterior draws.
    level : float
        Central level of the band.
    seed : int
        Seed of the draws.

    Returns
    -------
    dict of numpy.ndarray
        ``estimate`` (prediction at the point estimate), ``estimate_sd``, ``low``, ``high``
        (band), each (N,).
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(result.samples.shape[0], size=min(draws, result.samples.shape[0]), replace=False)
    w = like.working({n: result.samples[idx, i] for i, n in enumerate(result.names)})
    w_hat = like.working(result.estimate)
    with torch.no_grad():
        mean, var, signal = like.predict(torch.from_numpy(np.concatenate([w_hat, w])))
        sd = like.model_sd(var, signal).numpy()
    mean = mean.numpy()
    chol = np.linalg.cholesky(like._corr.numpy() + 1e-9 * np.eye(mean.shape[1]))
    eps = rng.standard_normal((mean.shape[0] - 1, mean.shape[1])) @ chol.T
    draws_y = mean[1:] + sd[1:] * eps
    lo, hi = np.quantile(draws_y, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return {"estimate": mean[0], "estimate_sd": sd[0], "low": lo, "high": hi}


def fit_discrepancy(
    models: Sequence[Surrogate] | Surrogate,
    experiments: Sequence[Experiment],
) -> Discrepancy:
    """Fit the surrogate discrepancy on held-out kMC points by maximum likelihood.

    Each experiment is a kMC ensemble mean at parameters the surrogates never trained on, with
    those parameters in its conditions. The residuals (kMC minus ensemble mean) are modelled as
    the :class:`Discrepancy` covariance plus the experiments' own noise; ``relative``, ``floor``
    and ``corr_decades`` maximise their joint likelihood.

    Parameters
    ----------
    models : Surrogate or sequence of Surrogate
        The ensemble.
    experiments : sequence of Experiment
        Held-out points (conditions = all parameters; ``sigma`` = the standard error of the kMC
        mean, or omitted).

    Returns
    -------
    Discrepancy
        The fitted error model.
    """
    from scipy.optimize import minimize

    if len(experiments) < 3:
        raise param_error("experiments", len(experiments), "at least 3 held-out points")
    cached = []
    for exp in experiments:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            like = SurrogateLikelihood(models, exp, ["voltage_offset_V"], Discrepancy(), noise=1e-12)
            with torch.no_grad():
                mean, var, signal = like.predict(torch.zeros(1, 1, dtype=torch.float64))
        noise_var = torch.zeros(exp.value.size, dtype=torch.float64)
        if exp.sigma is not None:
            noise_var = torch.from_numpy(exp.sigma**2)
        jitter = 1e-12 * float(signal.abs().max()) ** 2  # keeps a zero-noise, zero-discrepancy point factorable
        noise_cov = None if exp.noise_cov is None else torch.from_numpy(exp.noise_cov.copy())
        cached.append(
            (torch.from_numpy(exp.value) - mean[0], var[0], signal[0], noise_var + jitter, noise_cov, exp.time_s)
        )

    def nll(x: np.ndarray) -> float:
        rel, floor, ell = np.exp(x)
        disc = Discrepancy(float(rel), float(floor), float(ell))
        total = 0.0
        for r, var, signal, nv, ncov, t in cached:
            cov = disc.covariance(disc.sd(var, signal), disc.correlation(t), nv)
            cov = cov if ncov is None else cov + ncov
            c, info = torch.linalg.cholesky_ex(cov)
            if int(info) != 0:
                return 1e30
            sol = torch.linalg.solve_triangular(c, r[:, None], upper=False)[:, 0]
            total += float(0.5 * sol @ sol + torch.log(torch.diagonal(c)).sum())
        return total

    best = None
    for x0 in ([np.log(0.05), np.log(0.02), np.log(0.5)], [np.log(0.2), np.log(0.05), np.log(1.0)]):
        res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-4, "maxiter": 600})
        if best is None or res.fun < best.fun:
            best = res
    rel, floor, ell = np.exp(best.x)
    return Discrepancy(float(rel), float(floor), float(ell), len(experiments))


@dataclass(frozen=True)
class ParameterError:
    """Surrogate error that shows up as a shift of the answer, measured on validation points.

    A surrogate's error is not white: much of it looks like the transient of slightly different
    parameters, and a stationary discrepancy model under-weights exactly that direction. On each
    validation point (kMC at known parameters) the residual of the ensemble at the truth is
    projected onto the parameter sensitivities, ``δ = (JᵀΣ⁻¹J)⁻¹ JᵀΣ⁻¹ r``; what the covariance of
    those shifts holds beyond the posterior's own ``(JᵀΣ⁻¹J)⁻¹`` is this extra spread, added to
    the posterior samples (a convolution) by :func:`calibrate`.

    Parameters
    ----------
    names : tuple of str
        The unknowns, in order.
    cov : numpy.ndarray
        (d, d) covariance in working coordinates (log10 for log-scale unknowns).
    n_points : int
        Validation points it was measured on.
    """

    names: tuple[str, ...]
    cov: np.ndarray
    n_points: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON): names, the covariance and the standard deviations in working units."""
        return {"names": list(self.names), "cov": self.cov.tolist(), "sd": np.sqrt(np.diag(self.cov)).tolist(),
                "n_points": self.n_points}  # fmt: skip


def fit_parameter_error(
    models: Sequence[Surrogate] | Surrogate,
    experiments: Sequence[Experiment | Sequence[Experiment]],
    unknowns: Sequence[str | Unknown],
    discrepancy: Discrepancy,
) -> ParameterError:
    """Measure the parameter-space part of the surrogate error on validation points.

    Parameters
    ----------
    models : Surrogate or sequence of Surrogate
        The ensemble.
    experiments : sequence of Experiment or of groups of Experiment
        Validation points, as for :func:`fit_discrepancy` (conditions = every parameter's true
        value; ``hop_rate_factor`` and ``voltage_offset_V`` are 1 and 0 there). A group (a
        sequence) is one sample measured several times, for joint calibrations
        (:class:`JointLikelihood`): its shift is that of the joint fit, so the error is measured
        for the design it will serve.
    unknowns : sequence of str or Unknown
        The unknowns of the calibrations it will serve.
    discrepancy : Discrepancy
        The fitted observable-space error model.

    Returns
    -------
    ParameterError
        ``mean(δ δᵀ − (JᵀΣ⁻¹J)⁻¹)`` over the points (or groups), with negative eigenvalues set to zero.
    """
    if len(experiments) < 3:
        raise param_error("experiments", len(experiments), "at least 3 validation points")
    total, names = None, None
    for group in experiments:
        fisher, score = None, None
        for exp in [group] if isinstance(group, Experiment) else list(group):
            like, truth = _blind_likelihood(models, exp, unknowns, discrepancy)
            a, b = _whitened_sensitivity(like, truth)
            fisher = a.T @ a if fisher is None else fisher + a.T @ a
            score = a.T @ b if score is None else score + a.T @ b
            if names is not None and like.names != names:
                raise ConfigError("validation points must share the unknowns.")
            names = like.names
        if fisher is None or score is None:
            raise param_error("experiments", group, "a validation point or a non-empty group of them")
        post = torch.linalg.inv(fisher)
        delta = (post @ score)[:, 0]
        term = torch.outer(delta, delta) - post
        total = term if total is None else total + term
    mean_cov = (total / len(experiments)).numpy()
    evals, evecs = np.linalg.eigh(0.5 * (mean_cov + mean_cov.T))
    cov = (evecs * np.clip(evals, 0.0, None)) @ evecs.T
    return ParameterError(tuple(names), cov, len(experiments))


def _blind_likelihood(
    models: Sequence[Surrogate] | Surrogate,
    exp: Experiment,
    unknowns: Sequence[str | Unknown],
    discrepancy: Discrepancy,
) -> tuple[SurrogateLikelihood, dict[str, float]]:
    """Hide the unknowns of a validation point; return its likelihood and their true values."""
    extras = {"voltage_offset_V": 0.0, "hop_rate_factor": 1.0}
    names_u = {u.name if isinstance(u, Unknown) else u for u in unknowns}
    known = {k: v for k, v in exp.conditions.items() if k not in names_u}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blind = Experiment(exp.observable, exp.time_s, exp.value, exp.sigma, known, exp.source, exp.noise_cov)
        like = SurrogateLikelihood(models, blind, unknowns, discrepancy)
    truth = {n: exp.conditions.get(n, extras.get(n)) for n in like.names}
    if any(v is None for v in truth.values()):
        raise ConfigError(f"validation point {exp.source!r} lacks the true value of {like.names}.")
    return like, truth


def _whitened_sensitivity(like: SurrogateLikelihood, truth: Mapping[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sensitivities ``L⁻¹J`` (N, d) and residual ``L⁻¹r`` (N, 1) at the truth, whitened by the total covariance."""
    w = torch.from_numpy(like.working(truth)[0])
    d = w.numel()
    step = 1e-3 * torch.eye(d, dtype=torch.float64)
    with torch.no_grad():  # central differences, all 2d + 1 evaluations in one batch
        mean_all, var_all, signal_all = like.predict(torch.cat([w[None], w + step, w - step]))
        jac = ((mean_all[1 : d + 1] - mean_all[d + 1 :]) / 2e-3).T  # (N, d)
        cov = like.covariance(var_all[:1], signal_all[:1])[0]
        chol = torch.linalg.cholesky(cov)
        a = torch.linalg.solve_triangular(chol, jac, upper=False)
        b = torch.linalg.solve_triangular(chol, (like._y - mean_all[0])[:, None], upper=False)
    return a, b
