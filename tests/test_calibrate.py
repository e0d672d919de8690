"""Calibration to experiment: observables, data input, inference machinery, kMC use layer, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from surrodyn.calibration import (
    bayes_opt_kmc,
    discrepancy_from_store,
    experiment_from_kmc,
    kmc_observable,
    validation_experiments,
    verify,
)
from surrodyn.cli.main import main
from surrodyn.errors import ConfigError
from surrodyn.kmc import KMCConfig, run_ensemble
from surrodyn.kmc.observables import (
    charge_from_density_C_m2,
    current_from_charge_A_m2,
    differential_capacitance_F_m2,
    electrode_charge_C_m2,
)
from surrodyn.surrogate import Surrogate
from surrodyn.surrogate.calibrate import (
    Discrepancy,
    ExtrapolationWarning,
    JointLikelihood,
    SurrogateLikelihood,
    Unknown,
    calibrate,
    fit_discrepancy,
    fit_parameter_error,
    point_estimate,
    posterior_predictive,
    sample_posterior,
)
from surrodyn.surrogate.data import Normalizer
from surrodyn.surrogate.experiment import Experiment, noise_from_replicates, read_experiment, write_experiment
from surrodyn.surrogate.model import FieldTFT, TFTConfig
from surrodyn.units import VACUUM_PERMITTIVITY_F_M

SPEC = {
    "name": "tiny-calibration",
    "seed": 0,
    "sampling": {"method": "sobol", "n_points": 8},
    "parameters": {
        "permittivity": {"min": 50, "max": 500, "scale": "log"},
        "concentration_cm3": {"min": 1e20, "max": 4e20, "scale": "log"},
        "voltage_V": {"min": 0.1, "max": 1.0},
    },
    "kmc": {
        "base": {"nx": 4, "ny": 4, "nz": 11, "record_xz": False},
        "replicas": 2,
        "output_times_s": {"kind": "log", "start": 1e-9, "stop": 1e-6, "num": 12},
    },
}


def tiny_surrogate(seed: int = 0) -> Surrogate:
    """A random-weight surrogate on the tiny system: a fast, smooth, differentiable forward model."""
    torch.manual_seed(seed)
    net = FieldTFT(
        TFTConfig(
            static_names=("log10_permittivity", "log10_concentration_cm3", "voltage_V"),
            d_model=8,
            n_heads=2,
            n_basis=4,
            n_frequencies=3,
            dropout=0.0,
        )
    ).eval()
    t = np.concatenate([[0.0], np.geomspace(1e-9, 1e-6, 12)])
    static = Normalizer(net.config.static_names, (2.2, 20.3, 0.55), (0.3, 0.2, 0.3))
    known = Normalizer(("log10_time",), (-7.5,), (1.0,))
    z = (np.arange(11) + 1) / 12
    return Surrogate(net, ("permittivity", "concentration_cm3", "voltage_V"), static, known, t, z, yaml.safe_dump(SPEC))


def _charge_experiment(model: Surrogate, truth: dict, noise: float, seed: int = 0, **cond) -> Experiment:
    """Data made by the model itself at ``truth`` plus white noise (a self-consistency test)."""
    exp0 = Experiment("charge", model.time_s[1:], np.zeros(12), np.ones(12), truth)
    like = SurrogateLikelihood([model], exp0, ["voltage_offset_V"], Discrepancy())
    with torch.no_grad():
        mean = like.predict(torch.zeros(1, 1, dtype=torch.float64))[0][0].numpy()
    sd = noise * np.abs(mean).max()
    y = mean + np.random.default_rng(seed).normal(0, sd, mean.shape)
    return Experiment("charge", exp0.time_s, y, np.full(y.shape, sd), {"voltage_V": truth["voltage_V"], **cond})


# ----------------------------------------------------------------------------- observables
@pytest.fixture(scope="module")
def kmc_run():
    cfg = KMCConfig(nx=4, ny=4, nz=11, concentration_cm3=2e20, permittivity=60.0, voltage_V=0.5,
                    output_times_s=tuple(np.geomspace(1e-9, 1e-7, 8)))  # fmt: skip
    return cfg, run_ensemble(cfg, replicas=3, seed=1)


def test_charge_from_density_is_the_kmc_electrode_charge(kmc_run):
    cfg, ds = kmc_run
    z = (np.arange(cfg.nz) + 1) * cfg.spacing_m
    q = charge_from_density_C_m2(ds["density"].values, z, cfg.gap_m, cfg.permittivity, cfg.bulk_concentration_m3,
                                 cfg.voltage_V(0.0))  # fmt: skip
    np.testing.assert_allclose(q, ds["electrode_charge"].values, rtol=1e-12, atol=1e-15)
    counts = ds["occupancy"].values * cfg.nx * cfg.ny
    np.testing.assert_allclose(q, electrode_charge_C_m2(counts, cfg, cfg.voltage_V(0.0)), rtol=1e-12, atol=1e-15)
    # a uniform profile carries only the bare capacitor charge
    bare = VACUUM_PERMITTIVITY_F_M * cfg.permittivity * 0.5 / cfg.gap_m
    assert charge_from_density_C_m2(np.ones(cfg.nz), z, cfg.gap_m, cfg.permittivity, 1e26, 0.5) == pytest.approx(bare)


def test_current_from_charge_is_minus_the_ramo_shockley_hop_current(kmc_run):
    _, ds = kmc_run
    q = ds["electrode_charge"].values
    i = current_from_charge_A_m2(q, ds["time"].values, q[:, 0])  # first interval unknown: t=0 state not stored
    np.testing.assert_allclose(i[:, 1:], -ds["current"].values[:, 1:], rtol=1e-10)
    mean, sem = kmc_observable(ds, "current")
    np.testing.assert_allclose(mean, -ds["current"].values.mean(0))
    assert np.all(sem > 0)


def test_observables_in_torch_are_differentiable():
    z = (np.arange(11) + 1) * 1e-9
    eps = torch.tensor(100.0, dtype=torch.float64, requires_grad=True)
    dens = torch.linspace(0.5, 1.5, 11, dtype=torch.float64)
    q = charge_from_density_C_m2(dens, z, 12e-9, eps, 1e26, 0.7)
    q.backward()
    assert eps.grad.item() == pytest.approx(VACUUM_PERMITTIVITY_F_M * 0.7 / 12e-9)
    qn = charge_from_density_C_m2(dens.detach().numpy(), z, 12e-9, 100.0, 1e26, 0.7)
    assert q.item() == pytest.approx(qn, rel=1e-14)
    t = np.array([1.0, 2.0, 4.0])
    cur = current_from_charge_A_m2(torch.tensor([[1.0, 3.0, 4.0]]), t, torch.tensor([0.5]))
    np.testing.assert_allclose(cur.numpy(), [[0.5, 2.0, 0.5]])
    np.testing.assert_allclose(differential_capacitance_F_m2(3 * np.array([0.1, 0.2, 0.4]), [0.1, 0.2, 0.4]), 3.0)
    with pytest.raises(ValueError, match="increasing"):
        differential_capacitance_F_m2([1, 2], [0.2, 0.1])


def test_hop_rate_only_rescales_time():
    """All rates times h is the same Markov chain in time t/h: the basis of `hop_rate_factor`."""
    times = np.geomspace(1e-9, 1e-7, 6)
    cfg = KMCConfig(nx=4, ny=4, nz=11, concentration_cm3=2e20, voltage_V=0.5, output_times_s=tuple(times))
    fast = cfg.replace(attempt_frequency_Hz=cfg.attempt_frequency_Hz * 4, output_times_s=tuple(times / 4))
    a, b = run_ensemble(cfg, replicas=2, seed=3), run_ensemble(fast, replicas=2, seed=3)
    np.testing.assert_allclose(a["electrode_charge"].values, b["electrode_charge"].values, rtol=1e-12)
    np.testing.assert_array_equal(a["events"].values, b["events"].values)


# ----------------------------------------------------------------------------- data in
def test_csv_units_conditions_and_round_trip(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("# voltage_V: 1.5\n# temperature_K = 300\ntime [us], current [mA/cm^2], sigma [mA/cm^2]\n"
                 "0.1, 5, 0.5\n0.2, 4, 0.5\n0.4, 3, 0.5\n")  # fmt: skip
    e = read_experiment(f, {"permittivity": 80})
    assert e.observable == "current" and e.conditions == {"voltage_V": 1.5, "temperature_K": 300.0, "permittivity": 80}
    np.testing.assert_allclose(e.time_s, [1e-7, 2e-7, 4e-7])
    np.testing.assert_allclose(e.value, [50.0, 40.0, 30.0])  # 1 mA/cm^2 = 10 A/m^2
    np.testing.assert_allclose(e.sigma, 5.0)
    g = write_experiment(e, tmp_path / "back.csv", unit="uA/cm^2", time_unit="ns")
    back = read_experiment(g)
    np.testing.assert_allclose(back.value, e.value)
    np.testing.assert_allclose(back.time_s, e.time_s)
    assert back.conditions == e.conditions
    nc = tmp_path / "d.nc"
    coords = {"time": ("time", [1.0, 2.0, 3.0], {"units": "ms"})}
    charge = ("time", [1.0, 2.0, 3.0], {"units": "uC/cm^2"})
    xr.Dataset({"charge": charge}, coords=coords, attrs={"voltage_V": 0.3}).to_netcdf(nc)
    e2 = read_experiment(nc)
    assert e2.observable == "charge" and e2.sigma is None and e2.conditions == {"voltage_V": 0.3}
    np.testing.assert_allclose(e2.value, [0.01, 0.02, 0.03])
    np.testing.assert_allclose(e2.time_s, [1e-3, 2e-3, 3e-3])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time [s], charge [mA/cm^2]\n1,1\n2,2\n3,3\n", "measures current"),
        ("time [s], charge [furlong]\n1,1\n2,2\n3,3\n", "unknown unit"),
        ("time, charge [C/m^2]\n1,1\n2,2\n3,3\n", "has no unit"),
        ("time [s], voltage [V]\n1,1\n2,2\n3,3\n", "observable column"),
        ("time [s], charge [C/m^2]\n1,1\n3,2\n2,3\n", "not strictly increasing at rows 2-3"),
        ("time [s], charge [C/m^2]\n1,1\n2,x\n3,3\n", "not a number"),
        ("time [s], charge [C/m^2], sigma [C/m^2]\n1,1,0\n2,2,1\n3,3,1\n", "noise level"),
        ("time [s], charge [C/m^2]\n0,1\n2,2\n3,3\n", "positive"),
    ],
)
def test_bad_data_gives_clear_errors(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_experiment(f)


def _correlated_noise(n: int, t: np.ndarray, ell: float, sd: np.ndarray, seed: int) -> np.ndarray:
    """(n, N) draws of Gaussian noise with sd ``sd`` and correlation exp(-|Δlog10 t| / ell)."""
    lag = np.abs(np.log10(t)[:, None] - np.log10(t)[None, :])
    chol = np.linalg.cholesky(np.exp(-lag / ell) + 1e-12 * np.eye(t.size))
    return (sd[:, None] * (chol @ np.random.default_rng(seed).standard_normal((t.size, n)))).T


def test_noise_from_replicates_recovers_a_known_covariance():
    t = np.geomspace(1e-7, 1e-4, 40)
    sd = np.linspace(1.0, 3.0, 40)  # a noise level that grows with time, as a charging transient's does
    ells = [noise_from_replicates(5.0 + _correlated_noise(32, t, 0.3, sd, seed), t)[2] for seed in range(8)]
    assert abs(np.median(ells) / 0.3 - 1) < 0.15
    mean, cov, _ = noise_from_replicates(5.0 + _correlated_noise(32, t, 0.3, sd, 0), t)
    # the covariance of the mean: sd^2 / n on the diagonal (sample sd of 32 replicates: ±13 %, smoothed over 5 times)
    assert np.median(np.sqrt(np.diag(cov)) / (sd / np.sqrt(32))) == pytest.approx(1.0, abs=0.1)
    assert np.abs(mean - 5.0).max() < 5 * 3.0 / np.sqrt(32)
    with pytest.raises(ConfigError, match="n >= 2"):
        noise_from_replicates(np.ones((1, 40)), t)
    with pytest.raises(ConfigError, match="identical"):
        noise_from_replicates(np.ones((3, 40)), t)


def test_replicate_columns_give_the_mean_and_its_covariance(tmp_path):
    t = np.geomspace(1e-7, 1e-4, 12)
    reps = 2.0 + _correlated_noise(4, t, 0.5, np.full(12, 0.1), 3)
    f = tmp_path / "reps.csv"
    lines = ["# voltage_V: 1.0", "time [s], " + ", ".join(f"charge_{k + 1} [C/m^2]" for k in range(4))]
    lines += [", ".join(repr(float(v)) for v in [t[i], *reps[:, i]]) for i in range(12)]
    f.write_text("\n".join(lines) + "\n")
    e = read_experiment(f)
    _, cov, _ = noise_from_replicates(reps, t)
    np.testing.assert_allclose(e.value, reps.mean(0))
    np.testing.assert_allclose(e.noise_cov, cov)
    assert e.sigma is None and e.conditions == {"voltage_V": 1.0}
    np.testing.assert_allclose(e.noise_covariance(), cov)
    nc = tmp_path / "reps.nc"
    xr.Dataset({"charge": (("replica", "time"), reps, {"units": "C/m^2"})},
               coords={"time": ("time", t, {"units": "s"})}).to_netcdf(nc)  # fmt: skip
    np.testing.assert_allclose(read_experiment(nc).noise_cov, cov)
    f.write_text("time [s], charge_1 [C/m^2], current_2 [A/m^2]\n1,1,1\n2,2,2\n3,3,3\n")
    with pytest.raises(ConfigError, match="need one observable column"):
        read_experiment(f)
    with pytest.raises(ConfigError, match="not symmetric"):
        Experiment("charge", t, reps[0], None, {}, "x", np.triu(np.ones((12, 12))))
    with pytest.warns(UserWarning, match="not written to CSV"):
        write_experiment(e, tmp_path / "back.csv")
    from surrodyn.plot.calibrate import plot_fit  # noise bars from the covariance's diagonal

    band = {"low": e.value - 0.1, "high": e.value + 0.1, "estimate": e.value, "estimate_sd": np.full(12, 0.05)}
    assert plot_fit(e, band, tmp_path / "fit.png").stat().st_size > 0


def test_likelihood_with_correlated_noise_is_the_full_gaussian():
    """The log-likelihood equals the multivariate normal density with surrogate + independent + correlated noise."""
    from scipy.stats import multivariate_normal

    model = tiny_surrogate()
    truth = {"permittivity": 150.0, "concentration_cm3": 2e20, "voltage_V": 0.6}
    exp = _charge_experiment(model, truth, 0.02, concentration_cm3=2e20)
    noise_cov = np.cov(_correlated_noise(50, exp.time_s, 0.5, np.full(12, 0.01 * np.abs(exp.value).max()), 1).T)
    exp2 = Experiment(exp.observable, exp.time_s, exp.value, exp.sigma, exp.conditions, "test", noise_cov)
    disc = Discrepancy(0.03, 0.01, 0.4)
    like = SurrogateLikelihood([model], exp2, ["permittivity"], disc)
    w = like.working({"permittivity": 120.0})
    with torch.no_grad():
        got = float(like.log_likelihood(torch.from_numpy(w))[0])
        mean, var, signal = like.predict(torch.from_numpy(w))
        surrogate = disc.covariance(disc.sd(var, signal), disc.correlation(exp.time_s), torch.zeros(12))[0].numpy()
    want = multivariate_normal(mean[0].numpy(), surrogate + np.diag(exp.sigma**2) + noise_cov).logpdf(exp.value)
    assert got == pytest.approx(want, rel=1e-9)
    # replicates alone (no sigma) are a complete noise model; without either the data are refused
    Experiment(exp.observable, exp.time_s, exp.value, None, exp.conditions, "test", noise_cov)
    SurrogateLikelihood([model], exp2.__class__(exp.observable, exp.time_s, exp.value, None, exp.conditions, "t",
                        noise_cov), ["permittivity"], disc)  # fmt: skip
    with pytest.raises(ConfigError, match="replicate columns"):
        SurrogateLikelihood([model], Experiment(exp.observable, exp.time_s, exp.value, None, exp.conditions),
                            ["permittivity"], disc)  # fmt: skip


def _grid_interval(like: SurrogateLikelihood, level: float = 0.9) -> tuple[float, float]:
    """Central interval of a one-unknown posterior, exactly, from the likelihood on a fine grid."""
    lo, hi = like.bounds_w[0]
    w = np.linspace(lo, hi, 2001)
    logp = like.log_posterior(w[:, None])
    cdf = np.cumsum(np.exp(logp - logp.max()))
    cdf /= cdf[-1]
    a, b = np.interp([(1 - level) / 2, (1 + level) / 2], cdf, w)
    return tuple(like.values(np.array([[a], [b]]))["permittivity"])


def test_correlated_noise_widens_the_intervals_to_their_nominal_coverage():
    """Strongly correlated noise: the full covariance covers the truth; independent noise is overconfident."""
    model = tiny_surrogate()
    t = model.time_s[1:]
    inside = {"correlated": [], "independent": []}
    width = {"correlated": [], "independent": []}
    for k in range(12):
        truth = {"permittivity": float(10 ** np.random.default_rng(k).uniform(1.9, 2.5)), "concentration_cm3": 2e20,
                 "voltage_V": 0.6}  # fmt: skip
        clean = _charge_experiment(model, truth, 1e-9, concentration_cm3=2e20)
        sd = np.full(t.size, 0.02 * np.abs(clean.value).max())
        mean, cov, _ = noise_from_replicates(clean.value + _correlated_noise(8, t, 2.0, sd, 100 + k), t)
        for kind in inside:
            exp = (Experiment("charge", t, mean, None, clean.conditions, "c", cov) if kind == "correlated"
                   else Experiment("charge", t, mean, np.sqrt(np.diag(cov)), clean.conditions, "i"))  # fmt: skip
            like = SurrogateLikelihood([model], exp, ["permittivity"], Discrepancy(1e-6, 1e-6, 0.1))
            lo, hi = _grid_interval(like)
            inside[kind].append(lo <= truth["permittivity"] <= hi)
            width[kind].append(np.log(hi / lo))
    assert sum(inside["correlated"]) >= 9  # 90 % intervals: P(>= 9 of 12) = 0.97
    assert np.median(width["correlated"]) > 1.5 * np.median(width["independent"])
    assert sum(inside["independent"]) < sum(inside["correlated"])


# ----------------------------------------------------------------------------- inference machinery
class _Gaussian:
    """A 2-D Gaussian 'likelihood' with the interface the optimiser and sampler use."""

    bounds_w = np.array([[-10.0, 10.0], [-10.0, 10.0]])

    def __init__(self):
        self.mu = np.array([1.0, -2.0])
        self.cov = np.array([[1.0, 0.6], [0.6, 0.5]])
        self.prec = torch.from_numpy(np.linalg.inv(self.cov))

    def log_likelihood(self, w):
        d = w - torch.from_numpy(self.mu)
        return -0.5 * torch.einsum("bi,ij,bj->b", d, self.prec, d)

    def log_posterior(self, w):
        with torch.no_grad():
            return self.log_likelihood(torch.from_numpy(np.atleast_2d(w))).numpy()


def test_point_estimate_and_sampler_recover_an_analytic_gaussian():
    g = _Gaussian()
    w, _ = point_estimate(g, starts=4, steps=300, lr=0.05)
    np.testing.assert_allclose(w, g.mu, atol=1e-3)
    chain, info = sample_posterior(g, w, walkers=16, steps=1500, burn=300, seed=1)
    assert 0.3 < info["acceptance"] < 0.9
    np.testing.assert_allclose(chain.mean(0), g.mu, atol=0.1)
    np.testing.assert_allclose(np.cov(chain.T), g.cov, atol=0.12)
    again, _ = sample_posterior(g, w, walkers=16, steps=1500, burn=300, seed=1)
    np.testing.assert_array_equal(chain, again)  # reproducible from the seed
    with pytest.raises(ConfigError, match="walkers"):
        sample_posterior(g, w, walkers=3)


def test_gradient_through_the_surrogate_matches_finite_differences():
    model = tiny_surrogate()
    exp = _charge_experiment(model, {"permittivity": 150.0, "concentration_cm3": 2e20, "voltage_V": 0.6}, 0.01)
    like = SurrogateLikelihood([model, tiny_surrogate(1)], exp, ["permittivity", "concentration_cm3"], Discrepancy())
    w = torch.tensor([[2.1, 20.25]], dtype=torch.float64, requires_grad=True)
    like.log_likelihood(w).sum().backward()
    h = 1e-3  # the network runs in float32: a central difference over 0.001 decades
    for i in range(2):
        e = torch.zeros(1, 2, dtype=torch.float64)
        e[0, i] = h
        with torch.no_grad():
            fd = (like.log_likelihood(w + e) - like.log_likelihood(w - e)).item() / (2 * h)
        assert w.grad[0, i].item() == pytest.approx(fd, rel=1e-2)


def test_calibration_recovers_its_own_forward_model_with_calibrated_intervals():
    """Data made by the surrogate itself: the truth must fall inside the intervals as often as they say."""
    model = tiny_surrogate()
    rng = np.random.default_rng(0)
    inside, errors = [], []
    for k in range(6):
        truth = {"permittivity": float(10 ** rng.uniform(1.9, 2.5)), "concentration_cm3": 2e20, "voltage_V": 0.6}
        exp = _charge_experiment(model, truth, 0.02, seed=k, concentration_cm3=2e20)
        res = calibrate(model, exp, ["permittivity"], discrepancy=Discrepancy(1e-6, 1e-6, 0.1), seed=k,
                        walkers=8, mcmc_steps=200, burn=60, starts=4, steps=80)  # fmt: skip
        lo, hi = res.intervals["permittivity"]
        inside.append(lo <= truth["permittivity"] <= hi)
        errors.append(res.estimate["permittivity"] / truth["permittivity"] - 1)
    assert np.max(np.abs(errors)) < 0.05
    assert sum(inside) >= 4  # 90 % intervals: P(>= 4 of 6) = 0.98


def test_unknowns_conditions_and_extrapolation_are_checked():
    model = tiny_surrogate()
    exp = Experiment("charge", model.time_s[1:], np.linspace(0, 1, 12), np.ones(12), {"voltage_V": 0.5})
    with pytest.raises(ConfigError, match="disorder_eV"):
        SurrogateLikelihood([model], exp, ["disorder_eV"], Discrepancy())
    with pytest.raises(ConfigError, match="concentration_cm3"):
        SurrogateLikelihood([model], exp, ["permittivity"], Discrepancy())  # concentration neither known nor unknown
    with pytest.warns(ExtrapolationWarning, match="outside the surrogate's training domain"):
        SurrogateLikelihood([model], exp.with_conditions(concentration_cm3=1e21), ["permittivity"], Discrepancy())
    with pytest.warns(ExtrapolationWarning, match="horizon"):
        late = Experiment(
            "charge", model.time_s[1:] * 10, exp.value, exp.sigma, {**exp.conditions, "permittivity": 100}
        )
        SurrogateLikelihood([model], late, ["concentration_cm3"], Discrepancy())
    no_noise = Experiment("charge", exp.time_s, exp.value, None, {"voltage_V": 0.5, "permittivity": 100})
    with pytest.raises(ConfigError, match="noise level"):
        SurrogateLikelihood([model], no_noise, ["concentration_cm3"], Discrepancy())
    like = SurrogateLikelihood([model], no_noise, [Unknown("concentration_cm3", 1.5e20, 3e20, True)], Discrepancy(),
                               noise=0.05)  # fmt: skip
    assert np.all(like.log_posterior(np.array([[np.log10(1e20)], [np.log10(2e20)]]))[:1] == -np.inf)


def test_hop_rate_factor_is_a_time_rescaling():
    model = tiny_surrogate()
    truth = {"permittivity": 150.0, "concentration_cm3": 2e20, "voltage_V": 0.6}
    exp = _charge_experiment(model, truth, 1e-6)
    # a system three times slower (Γ / 3) reaches at 3 t what the model reaches at t
    slow = Experiment("charge", exp.time_s * 3, exp.value, exp.sigma, {**exp.conditions, **truth})
    like = SurrogateLikelihood([model], slow, ["hop_rate_factor"], Discrepancy())
    with torch.no_grad():
        pred = like.predict(torch.tensor([[np.log10(1 / 3)]], dtype=torch.float64))[0][0].numpy()
    np.testing.assert_allclose(pred, exp.value, atol=1e-5 * np.abs(exp.value).max())


def _offset_points(model: Surrogate, n: int = 12, offset: float = 0.08, seed: int = 3) -> list[Experiment]:
    """The model's own charge at n points plus a constant offset each (``offset`` × the peak signal)."""
    rng = np.random.default_rng(seed)
    eps = 10 ** rng.uniform(1.9, 2.5, n)
    volt = rng.uniform(0.3, 0.9, n)
    out = []
    for k in range(n):
        truth = {"permittivity": float(eps[k]), "concentration_cm3": 2e20, "voltage_V": float(volt[k])}
        e = _charge_experiment(model, truth, 1e-5, seed=k).with_conditions(**truth)
        like = SurrogateLikelihood([model], e, ["voltage_offset_V"], Discrepancy())
        with torch.no_grad():
            signal = like.predict(torch.zeros(1, 1, dtype=torch.float64))[2][0].numpy()
        biased = e.value + offset * np.abs(signal).max() * rng.standard_normal()
        out.append(Experiment("charge", e.time_s, biased, e.sigma, truth))
    return out


def test_discrepancy_fit_finds_an_injected_error():
    d = fit_discrepancy([tiny_surrogate()], _offset_points(tiny_surrogate(), seed=2))
    assert d.corr_decades > 2.0  # a constant offset is fully correlated in time
    assert 0.03 < d.floor + d.relative < 0.16


def _offset_sweep(model: Surrogate, path, n: int = 12, offset: float = 0.08, seed: int = 3):
    """A validation "sweep" export of :func:`_offset_points`."""
    exps = _offset_points(model, n, offset, seed)
    rows = np.array([e.value for e in exps])
    ds = xr.Dataset(
        {
            "electrode_charge_mean": (("point", "time"), rows),
            "electrode_charge_std": (("point", "time"), np.full(rows.shape, 1e-5 * np.abs(rows).max())),
            "point_status": ("point", np.array(["done"] * n, dtype=object)),
        },
        coords={
            "point": np.arange(n),
            "time": model.time_s[1:],
            **{k: ("point", np.array([e.conditions[k] for e in exps])) for k in model.parameters},
        },
    )
    ds.to_netcdf(path)
    return path


def test_discrepancy_from_an_independent_validation_sweep(tmp_path):
    model = tiny_surrogate()
    sweep = _offset_sweep(model, tmp_path / "validation.nc")
    d = discrepancy_from_store([model], validation=[str(sweep)])
    assert d.n_points == 12 and d.corr_decades > 2.0
    assert 0.03 < d.floor + d.relative < 0.16  # the injected 8 % offset
    clean = discrepancy_from_store([model], validation=[str(_offset_sweep(model, tmp_path / "c.nc", offset=0.0))])
    assert clean.floor + clean.relative < 0.01
    with pytest.raises(ConfigError, match="validation sweeps"):
        discrepancy_from_store([model])
    xr.open_dataset(sweep).load().drop_vars("voltage_V").to_netcdf(tmp_path / "novolt.nc")
    with pytest.raises(ConfigError, match="voltage_V"):
        discrepancy_from_store([model], validation=[str(tmp_path / "novolt.nc")])


def test_correlated_replica_noise_is_not_mistaken_for_surrogate_error(tmp_path):
    """Replica noise correlated in time: described by its covariance, the fitted discrepancy stays small."""
    model = tiny_surrogate()
    exps = _offset_points(model, 12, 0.0, 3)  # the model's own predictions: no surrogate error at all
    t = model.time_s[1:]
    amp = 0.03 * max(np.abs(e.value).max() for e in exps)
    reps = np.stack([e.value + _correlated_noise(8, t, 2.0, np.full(t.size, amp), 50 + i) for i, e in enumerate(exps)])
    ds = xr.Dataset(
        {
            "electrode_charge": (("point", "replica", "time"), reps),
            "point_status": ("point", np.array(["done"] * 12, dtype=object)),
        },
        coords={"point": np.arange(12), "time": t,
                **{k: ("point", np.array([e.conditions[k] for e in exps])) for k in model.parameters}},
    )  # fmt: skip
    ds.to_netcdf(tmp_path / "reps.nc")
    points = validation_experiments([model], validation=[str(tmp_path / "reps.nc")], correlated=True)
    assert all(p.noise_cov is not None and p.noise_cov.shape == (t.size, t.size) for p in points)
    corr = discrepancy_from_store([model], validation=[str(tmp_path / "reps.nc")], correlated=True)
    ind = discrepancy_from_store([model], validation=[str(tmp_path / "reps.nc")])
    # the mean of 8 replicas carries 3 %/sqrt(8) ≈ 1 % of correlated noise: the independent model
    # calls a good part of it surrogate error, the covariance explains it
    assert corr.floor + corr.relative < 0.5 * (ind.floor + ind.relative)


def test_parameter_error_recovers_injected_parameter_shifts():
    model = tiny_surrogate()
    rng = np.random.default_rng(5)
    disc = Discrepancy(1e-4, 1e-4, 0.5)

    def points(shift_sd: float) -> list[Experiment]:
        out = []
        for k in range(40):
            truth = {"permittivity": float(10 ** rng.uniform(1.9, 2.5)), "concentration_cm3": 2e20, "voltage_V": 0.6}
            shifted = {**truth, "permittivity": truth["permittivity"] * 10 ** rng.normal(0.0, shift_sd)}
            e = _charge_experiment(model, shifted, 1e-4, seed=k)  # made at the shifted value ...
            out.append(Experiment("charge", e.time_s, e.value, e.sigma, truth))  # ... labelled with the truth
        return out

    perr = fit_parameter_error([model], points(0.03), ["permittivity"], disc)
    assert perr.names == ("permittivity",) and perr.n_points == 40
    assert 0.022 < np.sqrt(perr.cov[0, 0]) < 0.040  # the injected 0.03 decades
    assert np.sqrt(fit_parameter_error([model], points(0.0), ["permittivity"], disc).cov[0, 0]) < 0.005
    # calibrate convolves the posterior with it: same estimate, wider interval
    exp = _charge_experiment(model, {"permittivity": 150.0, "concentration_cm3": 2e20, "voltage_V": 0.6}, 0.01)
    exp = exp.with_conditions(concentration_cm3=2e20)
    kw = {"discrepancy": disc, "walkers": 8, "mcmc_steps": 150, "burn": 50, "starts": 2, "steps": 40, "seed": 1}
    plain = calibrate(model, exp, ["permittivity"], **kw)
    wide = calibrate(model, exp, ["permittivity"], parameter_error=perr, **kw)
    assert wide.estimate == plain.estimate
    lo, hi = np.log10(plain.intervals["permittivity"])
    lo2, hi2 = np.log10(wide.intervals["permittivity"])
    assert hi2 - lo2 > max(hi - lo, 2 * 1.645 * 0.8 * np.sqrt(perr.cov[0, 0]))
    assert wide.to_dict()["info"]["parameter_error"]["n_points"] == 40
    with pytest.raises(ConfigError, match="measured for"):
        calibrate(model, exp.with_conditions(permittivity=150.0), ["concentration_cm3"], parameter_error=perr, **kw)


# ----------------------------------------------------------------------------- joint calibration
def test_joint_likelihood_is_the_sum_and_sharpens_the_posterior():
    """One sample at two voltages: the joint log-likelihood is the parts' sum, and it knows more than either."""
    model = tiny_surrogate()
    truth = {"permittivity": 150.0, "concentration_cm3": 2e20}
    exps = [_charge_experiment(model, {**truth, "voltage_V": v}, 0.01, seed=k) for k, v in enumerate((0.3, 0.9))]
    unknowns = ["permittivity", "concentration_cm3"]
    disc = Discrepancy(1e-3, 1e-3, 0.5)
    parts = [SurrogateLikelihood([model], e, unknowns, disc) for e in exps]
    joint = JointLikelihood(parts)
    w = torch.from_numpy(np.random.default_rng(0).uniform(joint.bounds_w[:, 0], joint.bounds_w[:, 1], (7, 2)))
    with torch.no_grad():
        # one batched network call against one per part: the float32 network's rounding differs with the batch
        np.testing.assert_allclose(joint.log_likelihood(w).numpy(),
                                   sum(p.log_likelihood(w) for p in parts).numpy(), rtol=1e-8)  # fmt: skip
    kw = {"discrepancy": disc, "walkers": 8, "mcmc_steps": 250, "burn": 80, "starts": 4, "steps": 100, "seed": 0}
    res = calibrate(model, exps, unknowns, **kw)
    assert isinstance(res.likelihood, JointLikelihood) and len(res.info["known"]) == 2
    assert [k["voltage_V"] for k in res.info["known"]] == [0.3, 0.9]
    for name, value in truth.items():
        lo, hi = res.intervals[name]
        assert abs(res.estimate[name] / value - 1) < 0.05 and lo <= value <= hi
    det_joint = np.linalg.det(np.cov(np.log(res.samples).T))
    for e in exps:  # each voltage alone leaves a larger posterior (generalised variance; about 0.3 and 0.08 here)
        single = calibrate(model, e, unknowns, **kw)
        assert det_joint < 0.6 * np.linalg.det(np.cov(np.log(single.samples).T))
    # one experiment in a list is the single calibration
    one = calibrate(model, exps[:1], unknowns, discrepancy=disc, walkers=8, mcmc_steps=20, burn=5, starts=2, steps=10)
    assert isinstance(one.likelihood, SurrogateLikelihood)


def test_joint_calibration_refuses_inconsistent_experiments():
    model = tiny_surrogate()
    exp = _charge_experiment(model, {"permittivity": 150.0, "concentration_cm3": 2e20, "voltage_V": 0.6}, 0.01)
    current = Experiment("current", exp.time_s, exp.value, exp.sigma, exp.conditions)
    with pytest.raises(ConfigError, match="one observable"):
        calibrate(model, [exp, current], ["permittivity", "concentration_cm3"], discrepancy=Discrepancy())
    a = SurrogateLikelihood([model], exp, ["permittivity", "concentration_cm3"], Discrepancy())
    b = SurrogateLikelihood([model], exp.with_conditions(concentration_cm3=2e20), ["permittivity"], Discrepancy())
    with pytest.raises(ConfigError, match="shares one set of unknowns"):
        JointLikelihood([a, b])
    with pytest.raises(ConfigError, match="non-empty"):
        calibrate(model, [], ["permittivity"], discrepancy=Discrepancy())


def test_parameter_error_of_groups_is_that_of_the_joint_fit():
    """A sample measured twice: a shift shared by both measurements stays, independent shifts average down."""
    model = tiny_surrogate()
    disc = Discrepancy(1e-4, 1e-4, 0.5)
    rng = np.random.default_rng(11)
    truths = [float(10 ** rng.uniform(1.9, 2.5)) for _ in range(60)]
    shifts = rng.normal(0.0, 0.03, (60, 2))

    def groups(shared: bool) -> list[list[Experiment]]:
        out = []
        for k, eps in enumerate(truths):
            truth = {"permittivity": eps, "concentration_cm3": 2e20, "voltage_V": 0.6}
            group = []
            for j in range(2):  # the same measurement repeated
                made = {**truth, "permittivity": eps * 10 ** shifts[k, 0 if shared else j]}
                e = _charge_experiment(model, made, 1e-4, seed=100 * k + j)
                group.append(Experiment("charge", e.time_s, e.value, e.sigma, truth))
            out.append(group)
        return out

    shared, independent = groups(True), groups(False)
    sd_shared = np.sqrt(fit_parameter_error([model], shared, ["permittivity"], disc).cov[0, 0])
    sd_indep = np.sqrt(fit_parameter_error([model], independent, ["permittivity"], disc).cov[0, 0])
    assert 0.024 < sd_shared < 0.037  # the injected 0.03 decades, common to the pair
    assert 0.016 < sd_indep < 0.027 and sd_indep < 0.85 * sd_shared  # the mean of two: 0.03 / sqrt(2)
    # a group of one is the single point
    singles = [g[0] for g in shared[:10]]
    grouped = fit_parameter_error([model], [[e] for e in singles], ["permittivity"], disc).cov
    np.testing.assert_allclose(grouped, fit_parameter_error([model], singles, ["permittivity"], disc).cov, rtol=1e-10)


# ----------------------------------------------------------------------------- use layer and CLI
@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "model"
    tiny_surrogate().save(path)
    return path


def test_verify_and_bayes_opt_on_the_kmc(tiny_model_dir):
    model = Surrogate.load(tiny_model_dir)
    cfg = model.configs({"permittivity": 100.0, "concentration_cm3": 2e20, "voltage_V": 0.8})[0]
    ds = run_ensemble(cfg, replicas=4, seed=7)
    exp = experiment_from_kmc(ds.assign(voltage_V=0.8), "charge", noise=0.01, seed=0)
    exp = exp.with_conditions(concentration_cm3=2e20)
    with pytest.warns(UserWarning, match="discrepancy"):
        res = calibrate(model, exp, ["permittivity"], walkers=8, mcmc_steps=60, burn=20, starts=2, steps=30)
    ver = verify(res, res.likelihood, replicas=2, seed=1)
    assert ver.kmc_mean.shape == exp.value.shape and np.isfinite(ver.chi2_data) and 0 <= ver.p_surrogate <= 1
    # the same data with the kMC's finite-ensemble noise as a covariance in time (its 4 replicas)
    corr = experiment_from_kmc(ds.assign(voltage_V=0.8), "charge", noise=0.01, seed=0, correlated=True)
    np.testing.assert_array_equal(corr.value, exp.value)
    assert corr.noise_cov.shape == (exp.value.size,) * 2 and np.all(corr.sigma < exp.sigma)
    with pytest.warns(UserWarning, match="discrepancy"):
        res_c = calibrate(model, corr.with_conditions(concentration_cm3=2e20), ["permittivity"], walkers=8,
                          mcmc_steps=60, burn=20, starts=2, steps=30)  # fmt: skip
    ver_c = verify(res_c, res_c.likelihood, replicas=2, seed=1)
    assert np.isfinite(ver_c.chi2_data) and 0 <= ver_c.p_surrogate <= 1
    with pytest.raises(ConfigError, match="replicas"):
        experiment_from_kmc(ds.mean("replica").assign(voltage_V=0.8), "charge", correlated=True)
    band = posterior_predictive(res.likelihood, res, draws=20)
    assert np.all(band["low"] <= band["high"])
    # the same sample at a second voltage, calibrated and verified jointly
    cfg2 = model.configs({"permittivity": 100.0, "concentration_cm3": 2e20, "voltage_V": 0.4})[0]
    exp2 = experiment_from_kmc(run_ensemble(cfg2, replicas=4, seed=8).assign(voltage_V=0.4), "charge", seed=1)
    with pytest.warns(UserWarning, match="discrepancy"):
        both = calibrate(model, [exp, exp2.with_conditions(concentration_cm3=2e20)], ["permittivity"], walkers=8,
                         mcmc_steps=60, burn=20, starts=2, steps=30)  # fmt: skip
    ver_j = verify(both, both.likelihood, replicas=2, seed=1)
    assert len(ver_j.parts) == 2 and [v.info["conditions"]["voltage_V"] for v in ver_j.parts] == [0.8, 0.4]
    n = [v.kmc_mean.size for v in ver_j.parts]
    assert ver_j.chi2_data == pytest.approx(sum(v.chi2_data * k for v, k in zip(ver_j.parts, n, strict=True)) / sum(n))
    assert ver_j.kmc_mean.size == sum(n) and len(ver_j.to_dict()["parts"]) == 2

    seen = []
    bowl = lambda p: (np.log10(p["permittivity"]) - 2.0) ** 2 + 0.01  # noqa: E731
    bo = bayes_opt_kmc(bowl, [Unknown("permittivity", 50, 500, True)], n_init=3, n_iter=6, seed=0,
                       callback=lambda i, p, y: seen.append(i))  # fmt: skip
    assert seen == list(range(9)) and bo.params.shape == (9, 1)
    assert abs(np.log10(bo.best[-1, 0]) - 2.0) < 0.1  # BO finds the minimum of a smooth bowl


def test_cli_calibrate_writes_report_and_figures(tiny_model_dir, tmp_path):
    model = Surrogate.load(tiny_model_dir)
    exp = _charge_experiment(model, {"permittivity": 120.0, "concentration_cm3": 2e20, "voltage_V": 0.6}, 0.02)
    data = write_experiment(exp, tmp_path / "q.csv", unit="uC/cm^2", time_unit="us")
    out = tmp_path / "out"
    argv = ["calibrate", str(data), "--model", str(tiny_model_dir), "--unknown", "permittivity",
            "--condition", "concentration_cm3=2e20", "--out", str(out)]  # fmt: skip
    with pytest.warns(UserWarning, match="discrepancy"):
        assert main(argv) == 0
    summary = json.loads((out / "calibration.json").read_text())
    assert summary["unknowns"] == ["permittivity"] and summary["info"]["members"] == 1
    assert abs(summary["estimate"]["permittivity"] / 120.0 - 1) < 0.1
    for f in ("report.txt", "samples.npz", "corner.png", "fit.png"):
        assert (out / f).stat().st_size > 0
    sweep = _offset_sweep(model, tmp_path / "validation.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a fitted discrepancy: no default-guess warning
        assert main([*argv, "--validation-sweep", str(sweep), "--no-figures", "--out", str(tmp_path / "v")]) == 0
    fitted = json.loads((tmp_path / "v" / "calibration.json").read_text())["info"]["discrepancy"]
    assert fitted["n_points"] == 12
    # the same sample at a second voltage: both files calibrated jointly, a figure per file
    exp2 = _charge_experiment(model, {"permittivity": 120.0, "concentration_cm3": 2e20, "voltage_V": 0.9}, 0.02, 1)
    data2 = write_experiment(exp2, tmp_path / "q2.csv", unit="uC/cm^2", time_unit="us")
    with pytest.warns(UserWarning, match="discrepancy"):
        assert main([argv[0], argv[1], str(data2), *argv[2:-1], str(tmp_path / "j")]) == 0
    joint = json.loads((tmp_path / "j" / "calibration.json").read_text())
    assert joint["data"] == [str(data), str(data2)] and [k["voltage_V"] for k in joint["info"]["known"]] == [0.6, 0.9]
    assert abs(joint["estimate"]["permittivity"] / 120.0 - 1) < 0.1
    assert "joint calibration of 2 experiments" in (tmp_path / "j" / "report.txt").read_text()
    for f in ("fit_1.png", "fit_2.png", "corner.png"):
        assert (tmp_path / "j" / f).stat().st_size > 0
    assert (
        main(["calibrate", str(data), "--model", str(tiny_model_dir), "--unknown", "nonsense", "--out", str(out)]) == 2
    )
    assert main(["calibrate", str(data), "--model", str(tiny_model_dir), "--unknown", "permittivity",
                 "--condition", "concentration_cm3:2e20"]) == 2  # fmt: skip
