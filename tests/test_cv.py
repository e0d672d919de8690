"""beta-VAE collective variables: loss, training, collapse diagnostics, persistence (Müller–Brown toy)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from surrodyn.cv import (
    BetaVAE,
    BetaVAEConfig,
    CollapseWarning,
    FitSettings,
    LearnedCV,
    fit_cv,
    knn_r2,
    lagged_pairs,
    muller_brown,
    muller_brown_features,
    muller_brown_samples,
)
from surrodyn.cv.metrics import basin_accuracy
from surrodyn.cv.vae import kl_per_dim
from surrodyn.errors import ConfigError

FAST = {"max_epochs": 60, "patience": 10, "batch_size": 128}


@pytest.fixture(scope="module")
def toy():
    pos = muller_brown_samples(2000, seed=0)
    return pos, muller_brown_features(pos, seed=1)


def test_muller_brown_minima_and_exact_sampling():
    # the three minima of the literature (Müller & Brown 1979)
    for (x, y), v in [((-0.558, 1.442), -146.70), ((0.623, 0.028), -108.17), ((-0.050, 0.467), -80.77)]:
        assert muller_brown(x, y) == pytest.approx(v, abs=0.05)
    pos = muller_brown_samples(20000, kT=20.0, seed=3)
    # basin A (x < -0.25, y > 1) against basin B (x > 0.25, y < 0.5): the ratio of Boltzmann
    # weights integrated on a fine grid, within 4 sigma of the sampling noise
    g = np.linspace(-1.7, 1.2, 600), np.linspace(-0.4, 2.1, 600)
    xx, yy = np.meshgrid(*g, indexing="ij")
    w = np.exp(-(muller_brown(xx, yy) - muller_brown(xx, yy).min()) / 20.0)
    in_a, in_b = (xx < -0.25) & (yy > 1.0), (xx > 0.25) & (yy < 0.5)
    ratio = w[in_a].sum() / w[in_b].sum()
    na = np.sum((pos[:, 0] < -0.25) & (pos[:, 1] > 1.0))
    nb = np.sum((pos[:, 0] > 0.25) & (pos[:, 1] < 0.5))
    assert abs(na / nb - ratio) < 4 * ratio * np.sqrt(1 / na + 1 / nb)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(50, 3), torch.randn(50, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(kl_per_dim(mu, logvar), torch.distributions.kl_divergence(q, p))


def test_knn_r2_sees_smooth_maps_and_angles():
    rng = np.random.default_rng(0)
    t = rng.uniform(-np.pi, np.pi, 3000)
    assert knn_r2(np.column_stack([np.sin(t), np.cos(t)]), t, periodic=True) > 0.98
    assert knn_r2(np.tanh(t), t) > 0.98  # any monotone map, not only a linear one
    assert knn_r2(rng.standard_normal((3000, 2)), t, periodic=True) < 0.05


def test_basin_accuracy_is_one_for_a_separating_latent_and_chance_for_noise():
    rng = np.random.default_rng(1)
    t = rng.uniform(-np.pi, np.pi, 3000)
    basin = t > 0
    assert basin_accuracy(np.column_stack([np.sin(t), np.cos(t)]), basin) > 0.98
    assert abs(basin_accuracy(rng.standard_normal((3000, 2)), basin) - 0.5) < 0.05
    with pytest.raises(ConfigError, match="single basin"):
        basin_accuracy(t, np.ones(3000))


def test_beta_vae_learns_the_two_slow_coordinates(toy):
    pos, feats = toy
    cv = fit_cv(feats, {"n_latent": 2}, FitSettings(beta=0.1, **FAST))
    z = cv.transform(feats)
    d = cv.info["diagnostics"]
    assert d["n_active"] == 2 and d["variance_explained"] > 0.95
    assert knn_r2(z, pos[:, 0]) > 0.95 and knn_r2(z, pos[:, 1]) > 0.95


def test_a_surplus_latent_dimension_is_reported_as_collapsed(toy):
    # two degrees of freedom, three latents, strong beta: one dimension must be found empty
    _, feats = toy
    with pytest.warns(CollapseWarning, match="inactive"):
        cv = fit_cv(feats, {"n_latent": 3}, FitSettings(beta=1.0, **FAST))
    d = cv.info["diagnostics"]
    assert d["n_active"] == 2
    empty = int(np.argmin(d["latent_variance"]))
    assert d["kl_per_dim"][empty] < 0.05 < min(k for i, k in enumerate(d["kl_per_dim"]) if i != empty)


def test_standardisation_makes_the_feature_unit_irrelevant(toy):
    _, feats = toy
    settings = FitSettings(beta=0.1, **{**FAST, "max_epochs": 15})
    a = fit_cv(feats, {"n_latent": 2}, settings).transform(feats)
    b = fit_cv(feats * 1e-3, {"n_latent": 2}, settings).transform(feats * 1e-3)  # nm -> um
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_persistence_and_reproducibility(toy, tmp_path):
    _, feats = toy
    names = [f"d{i}" for i in range(feats.shape[1])]
    settings = FitSettings(beta=0.1, lag=2, warmup_epochs=3, **{**FAST, "max_epochs": 8})
    cv = fit_cv([feats[:1000], feats[1000:]], {"n_latent": 2}, settings, feature_names=names)
    assert cv.info["n_frames"] == 2000 - 2 * 2  # lagged pairs never cross trajectories
    loaded = LearnedCV.load(cv.save(tmp_path / "cv"))
    assert loaded.feature_names == names and loaded.info["settings"]["lag"] == 2
    np.testing.assert_array_equal(loaded.transform(feats[:50]), cv.transform(feats[:50]))
    meta = (tmp_path / "cv" / "model.json").read_text().replace('"format_version": 1', '"format_version": 99')
    (tmp_path / "cv" / "model.json").write_text(meta)
    with pytest.raises(ConfigError, match="format 99"):
        LearnedCV.load(tmp_path / "cv")
    again = fit_cv([feats[:1000], feats[1000:]], {"n_latent": 2}, settings, feature_names=names)
    for v1, v2 in zip(cv.network.state_dict().values(), again.network.state_dict().values(), strict=True):
        assert torch.equal(v1, v2)


def test_bad_input_is_named():
    x = np.zeros((100, 3))
    with pytest.raises(ConfigError, match="lag"):
        lagged_pairs([x[:3]], lag=5)
    with pytest.raises(ConfigError, match="NaN"):
        fit_cv(np.full((100, 3), np.nan))
    with pytest.raises(ConfigError, match="too few"):
        fit_cv(np.ones((5, 3)))
    with pytest.raises(ConfigError, match="beta"):
        FitSettings(beta=-1)
    with pytest.raises(ConfigError, match="activation"):
        BetaVAEConfig(n_features=3, activation="sigmoid!")
    with pytest.raises(ConfigError, match="n_features"):
        fit_cv(np.random.default_rng(0).random((100, 3)), BetaVAEConfig(n_features=4))
    with pytest.warns(UserWarning, match="constant"), warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        rng = np.random.default_rng(0)
        fit_cv(np.column_stack([rng.random(100), np.ones(100)]), settings=FitSettings(max_epochs=2))
    net = BetaVAE(BetaVAEConfig(n_features=4, n_latent=2))
    out = net(torch.zeros(7, 4), sample=False)
    assert out.recon.shape == (7, 4) and torch.equal(out.z, out.mu)


def test_latent_on_plane_figure_and_its_input_checks(tmp_path):
    from surrodyn.plot.cv import plot_latent_on_plane

    rng = np.random.default_rng(0)
    phi, psi = rng.uniform(-np.pi, np.pi, (2, 500))
    z = np.column_stack([np.cos(phi), psi, phi + psi])  # three latents: four panels
    path = plot_latent_on_plane(z, phi, psi, tmp_path / "plane.png", names=("phi", "psi"))
    assert path.stat().st_size > 0
    with pytest.raises(ConfigError, match="499 and 500 frames, the latent 500"):
        plot_latent_on_plane(z, phi[:-1], psi, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_variable_ranking_on_exact_relations():
    from surrodyn.cv.interpret import latent_correlation, rank_variables, top_variables

    rng = np.random.default_rng(1)
    x, y, t, noise = rng.normal(size=(4, 3000))
    t = np.angle(np.exp(1j * 3 * t))  # an angle spread over the whole circle
    latent = np.column_stack([x, y**3, np.cos(t - 0.7)])
    table = rank_variables(latent, {"x": x, "y": y, "t": t, "noise": noise}, periodic=["t"])
    assert list(table["variable"].values) == ["x", "y", "t", "noise"]
    assert float(table["pearson"].sel(latent=0, variable="x")) == pytest.approx(1.0)
    # y**3 is monotone in y: Spearman sees a perfect relation, Pearson a weaker one
    assert float(table["spearman"].sel(latent=1, variable="y")) == pytest.approx(1.0)
    assert float(table["pearson"].sel(latent=1, variable="y")) < 0.8
    # cos(t - 0.7) is a perfect circular-linear relation, though its correlations with sin t and cos t
    # alone are only sin 0.7 = 0.64 and cos 0.7 = 0.76
    assert float(table["pearson"].sel(latent=2, variable="t")) == pytest.approx(1.0)
    assert np.corrcoef(latent[:, 2], np.cos(t))[0, 1] == pytest.approx(np.cos(0.7), abs=0.02)
    top = top_variables(table, n=2)
    assert top[0][0][0] == "x" and top[1][0][0] == "y" and top[2][0][0] == "t"
    mi = table["mutual_information"]
    assert float(mi.sel(latent=0, variable="x")) > 2.0 and float(mi.sel(latent=0, variable="noise")) < 0.05
    c = latent_correlation(latent)
    assert c.shape == (3, 3) and np.abs(c - np.eye(3)).max() < 0.05


def test_a_function_of_one_torsion_never_outranks_the_torsion():
    """A distance across a rotatable bond is monotone in cos(θ − θ0): its Spearman ≤ that of θ."""
    from surrodyn.cv.interpret import rank_variables

    rng = np.random.default_rng(2)
    t = rng.uniform(-np.pi, np.pi, 4000)
    latent = np.column_stack([np.exp(2.0 * np.cos(t - 0.7)), np.cos(t - 0.7) + 0.3 * rng.normal(size=t.size)])
    distance = np.sqrt(1.5 - np.cos(t - 0.7))  # law of cosines: monotone in cos(t - 0.7)
    table = rank_variables(latent, {"t": t, "d": distance}, periodic=["t"], mutual_information=False)
    rho = np.abs(table["spearman"].values)
    # a monotone function of cos(t - 0.7) is a perfect rank relation with t (not seen by ranking
    # sin t and cos t separately)
    assert rho[0, 0] > 0.9999 and rho[0, 1] > 0.9999
    assert np.all(rho[:, 0] >= rho[:, 1] - 1e-4), rho
    assert 0.8 < rho[1, 0] < 0.99


def test_feature_scalings():
    from surrodyn.cv import Standardizer

    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3)) * [1.0, 4.0, 0.0] + [0.0, 2.0, 5.0]
    rms = np.sqrt((1.0 + 16.0) / 2)  # over the varying features
    for scaling, expected in [("standard", [1.0, 4.0]), ("global", [rms, rms]), ("sqrt", np.sqrt([rms, 4 * rms]))]:
        std = Standardizer.fit(x, scaling)
        np.testing.assert_allclose(std.std[:2], expected, rtol=0.02)
        assert std.std[2] == 1.0  # a constant feature keeps scale 1
        np.testing.assert_allclose(std(x).mean(0), 0.0, atol=1e-6)
    with pytest.raises(ConfigError, match="scaling"):
        Standardizer.fit(x, "minmax")
    with pytest.raises(ConfigError, match="scaling"):
        FitSettings(scaling="minmax")


def test_learned_latents_are_named_by_the_geometry(toy):
    from surrodyn.cv.interpret import latent_correlation, rank_variables, top_variables

    pos, feats = toy
    cv = fit_cv(feats, {"n_latent": 2}, FitSettings(beta=0.1, **FAST))
    z = cv.transform(feats)
    noise = np.random.default_rng(5).standard_normal(len(z))
    table = rank_variables(z, {"x": pos[:, 0], "y": pos[:, 1], "noise": noise})
    for d, ranked in top_variables(table, by="mutual_information", n=3).items():
        assert ranked[-1][0] == "noise", (d, ranked)  # both coordinates carry more than noise
    assert np.abs(table["spearman"].sel(variable="noise").values).max() < 0.1
    assert latent_correlation(z).shape == (2, 2)


def test_decorrelation_penalty_sums_the_squared_off_diagonal_correlations():
    from surrodyn.cv.vae import decorrelation_penalty

    rng = np.random.default_rng(2)
    mu = rng.standard_normal((500, 3)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    r = np.corrcoef(mu, rowvar=False)
    expected = (r**2).sum() - 3.0
    got = decorrelation_penalty(torch.tensor(mu))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # scale-free up to the 1e-6 guard added to each standard deviation (here 1e-5 of the smallest)
    assert float(decorrelation_penalty(torch.tensor(mu * [0.1, 10.0, 1.0]))) == pytest.approx(expected, rel=1e-4)
    assert float(decorrelation_penalty(torch.tensor(mu[:, :1]))) == 0.0


def test_nonlinear_decorrelation_sees_dependence_without_correlation():
    from surrodyn.cv.vae import decorrelation_penalty

    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 20000))
    independent = torch.tensor(np.column_stack([a, b]))
    spread = torch.tensor(np.column_stack([a, b * (0.2 + np.abs(a))]))  # z2's width follows z1: r = 0
    folded = torch.tensor(np.column_stack([a, a**2 + 0.3 * c]))  # z2 a function of |z1|: r = 0
    noise = float(decorrelation_penalty(independent, "nonlinear"))
    for mu in (spread, folded):
        assert float(decorrelation_penalty(mu)) < 1e-3  # the linear penalty is blind to both
        assert float(decorrelation_penalty(mu, "nonlinear")) > 50 * noise
    # independent latents: only the sampling noise of 9 correlations per ordered pair, ~ 2·9 / (3 N)
    assert noise < 20 * 6 / 20000
    # the linear part is included: correlated Gaussians are penalised, and the value is scale-free
    mixed = independent @ torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64)
    value = float(decorrelation_penalty(mixed, "nonlinear"))
    assert value > 2 * (0.5**2 / 1.25) / 3
    assert float(decorrelation_penalty(mixed * torch.tensor([100.0, 0.01]) + 3.0, "nonlinear")) == pytest.approx(
        value, rel=1e-4
    )
    assert float(decorrelation_penalty(independent[:, :1], "nonlinear")) == 0.0
    with pytest.raises(ConfigError, match="kind"):
        decorrelation_penalty(independent, "quadratic")
    with pytest.raises(ConfigError, match="decorrelation_kind"):
        FitSettings(decorrelation_kind="quadratic")


def test_early_stopping_waits_for_the_full_objective(toy):
    from surrodyn.cv.learn import full_weight_epoch, weights_at_epoch

    settings = FitSettings(beta=0.1, decorrelation=1.0, warmup_epochs=20, max_epochs=60, patience=1, batch_size=128)
    first = full_weight_epoch(settings)
    assert weights_at_epoch(settings, first) == (0.1, 1.0) and weights_at_epoch(settings, first - 1)[1] < 1.0
    assert full_weight_epoch(FitSettings(warmup_epochs=6)) == 5 and full_weight_epoch(FitSettings()) == 0
    # with patience 1 the validation loss, computed at the full weights, would stop training
    # during the warm-up; the stopping rule only starts counting at the first full-weight epoch
    cv = fit_cv(toy[1], {"n_latent": 2}, settings)
    assert cv.info["epochs"] >= first + 1


def test_weights_schedule_decorrelates_only_after_the_beta_warmup():
    from surrodyn.cv.learn import weights_at_epoch

    s = FitSettings(beta=0.2, decorrelation=1.0, warmup_epochs=10)
    assert [weights_at_epoch(s, e)[0] for e in (0, 4, 9, 30)] == pytest.approx([0.02, 0.1, 0.2, 0.2])
    assert [weights_at_epoch(s, e)[1] for e in (0, 9, 10, 12, 15, 40)] == pytest.approx([0, 0, 0, 0.4, 1, 1])
    assert weights_at_epoch(FitSettings(beta=0.2, decorrelation=0.5), 0) == (0.2, 0.5)
    with pytest.raises(ConfigError, match="decorrelation"):
        FitSettings(decorrelation=-1.0)


def test_an_additive_decoder_cannot_couple_latents(tmp_path):
    torch.manual_seed(0)
    additive = BetaVAE(BetaVAEConfig(n_features=5, n_latent=2, encoder=(8,), decoder_kind="additive"))
    mlp = BetaVAE(BetaVAEConfig(n_features=5, n_latent=2, encoder=(8,)))
    z = torch.randn(2, dtype=torch.float64)

    def mixed(net: BetaVAE) -> torch.Tensor:  # d²x̂_f / dz0 dz1 for every feature f
        net = net.double()
        rows = []
        for f in range(5):
            rows.append(torch.autograd.functional.hessian(lambda v, f=f: net.decoder(v)[f], z)[0, 1])
        return torch.stack(rows)

    assert torch.all(mixed(additive).abs() < 1e-12)
    assert mixed(mlp).abs().max() > 1e-4  # an ordinary decoder does couple them
    parts = additive.decoder.components(z)
    torch.testing.assert_close(parts.sum(0), additive.decoder(z))
    with pytest.raises(ConfigError, match="decoder_kind"):
        BetaVAEConfig(n_features=5, decoder_kind="product")


def test_decorrelation_penalty_decorrelates_correlated_factors(toy, tmp_path):
    # the Müller–Brown samples' x and y correlate (-0.67); the additive decoder alone leaves the
    # latents correlated, the penalty after the warm-up removes it without losing either coordinate
    pos, feats = toy
    arch = {"n_latent": 2, "decoder_kind": "additive"}
    corr = {}
    for weight in (0.0, 1.0):
        cv = fit_cv(feats, arch, FitSettings(beta=0.1, decorrelation=weight, warmup_epochs=4, **FAST))
        z = cv.transform(feats)
        corr[weight] = abs(np.corrcoef(z, rowvar=False)[0, 1])
        assert knn_r2(z, pos[:, 0]) > 0.98 and knn_r2(z, pos[:, 1]) > 0.98
    assert corr[1.0] < 0.05 and corr[1.0] < corr[0.0] / 2, corr
    loaded = LearnedCV.load(cv.save(tmp_path / "cv"))
    assert loaded.network.config.decoder_kind == "additive"
    np.testing.assert_array_equal(loaded.transform(feats[:20]), z[:20])


def test_cpu_budget_stops_training(toy):
    _, feats = toy
    cv = fit_cv(feats, {"n_latent": 2}, FitSettings(beta=0.1, budget_s=1e-9, **FAST))
    assert cv.info["epochs"] <= 1 < FAST["max_epochs"]
