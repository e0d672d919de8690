"""TFT surrogate: blocks, causality, non-crossing quantiles, data windows, training, persistence, export, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from surrodyn.cli.main import main
from surrodyn.errors import ConfigError
from surrodyn.surrogate import (
    FieldData,
    FieldTFT,
    Surrogate,
    TFTConfig,
    TrainConfig,
    band_coverage,
    evaluate,
    pinball_loss,
    smape,
    split_points,
    train,
)
from surrodyn.surrogate.blocks import InterpretableMultiHeadAttention, VariableSelectionNetwork, causal_mask
from surrodyn.surrogate.export import ExportableTFT, example_inputs, export_program, load_program, to_torchscript
from surrodyn.sweep import export_sweep, open_sweep, run_sweep

TINY_SWEEP = {
    "name": "tiny-surrogate",
    "seed": 5,
    "sampling": {"method": "sobol", "n_points": 8},
    "parameters": {
        "permittivity": {"min": 20, "max": 200, "scale": "log"},
        "voltage_V": {"min": 0.05, "max": 1.0},
        "voltage_rise_time_s": {"min": 1e-9, "max": 1e-7, "scale": "log"},
    },
    "kmc": {
        "base": {"nx": 4, "ny": 4, "nz": 11, "concentration_cm3": 2e20, "record_xz": False},
        "replicas": 2,
        "output_times_s": {"kind": "log", "start": 1e-9, "stop": 1e-6, "num": 12},
    },
    "continuum": True,
    "store_replicas": True,
    "protocol_steps": 5,
}


def _net(**kw) -> FieldTFT:
    torch.manual_seed(0)
    cfg = {"static_names": ("a", "b"), "known_names": ("t", "v"), "field_names": ("c",), "d_model": 16}
    cfg.update(kw)
    return FieldTFT(TFTConfig(**cfg)).eval()


def _inputs(b=3, t=10, z=13, n_enc=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, 2, generator=g),
        torch.randn(b, t, 2, generator=g),
        torch.rand(b, n_enc, z, generator=g),
        torch.linspace(0.05, 0.95, z),
        torch.rand(b, t, 1, z, generator=g),
    )


# ----------------------------------------------------------------------------- blocks and model
def test_variable_selection_weights_are_a_distribution():
    vsn = VariableSelectionNetwork(4, 8, d_context=8)
    out, w = vsn(torch.randn(5, 7, 4, 8), torch.randn(5, 1, 8))
    assert out.shape == (5, 7, 8) and w.shape == (5, 7, 4)
    assert torch.allclose(w.sum(-1), torch.ones(5, 7), atol=1e-6) and (w >= 0).all()


def test_attention_is_causal_and_heads_share_values():
    attn = InterpretableMultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 9, 16)
    _out, w = attn(x[:, 3:], x, x, causal_mask(3, 9))
    assert w.shape == (2, 6, 9)
    assert torch.allclose(w.sum(-1), torch.ones(2, 6), atol=1e-6)
    blocked = causal_mask(3, 9).expand(2, -1, -1)
    assert float(w[blocked].abs().max().detach()) == 0.0  # no weight on later steps
    assert attn.v.out_features == 4  # one value projection of one head's width, shared by all heads


def test_forecast_is_causal_in_the_known_future_inputs():
    """Changing the covariates of a later step must not change any earlier forecast."""
    net = _net()
    s, k, past, z, f = _inputs()
    base = net(s, k, past, z, f)
    k2, f2 = k.clone(), f.clone()
    k2[:, 7:] += 3.0
    f2[:, 7:] += 1.0
    out = net(s, k2, past, z, f2)
    n_enc = past.shape[1]
    early = 7 - n_enc  # decoder index of step 7
    assert torch.allclose(out.quantiles[:, :, :early], base.quantiles[:, :, :early], atol=1e-6)
    assert not torch.allclose(out.quantiles[:, :, early:], base.quantiles[:, :, early:], atol=1e-3)


def test_quantiles_never_cross_and_parameters_do_not_grow_with_bins():
    net = _net()
    for z_bins in (7, 99, 250):
        for seed in range(3):
            s, k, past, z, f = _inputs(z=z_bins, seed=seed)
            out = net(s * 5, k * 5, past * 20, z, f * 20)
            assert out.quantiles.shape == (3, 7, 8, z_bins)
            assert (out.quantiles.diff(dim=1) >= 0).all()
    n = net.n_parameters()
    assert n == _net().n_parameters() and n < 60_000


def test_config_validation_names_the_problem():
    with pytest.raises(ConfigError, match="quantiles"):
        TFTConfig(static_names=("a",), quantiles=(0.1, 0.9))
    with pytest.raises(ConfigError, match="n_heads"):
        TFTConfig(static_names=("a",), d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="each name once"):
        TFTConfig(static_names=("a",), known_names=("a",))


def test_pinball_loss_is_minimised_by_the_sample_quantile():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.gamma(2.0, size=4000)).float()
    for q in (0.1, 0.5, 0.9):
        true = float(np.quantile(y.numpy(), q))
        grid = np.linspace(true - 1.0, true + 1.0, 201)
        losses = [float(pinball_loss(torch.full((4000, 1), g), y, (q,))) for g in grid]
        assert abs(grid[int(np.argmin(losses))] - true) <= 0.011


def test_band_coverage_of_dequantised_counts():
    unit = 0.5
    values = np.array([0.0, 0.5, 1.0, 1.5])
    cov = band_coverage(np.full(4, 0.25), np.full(4, 1.0), values, unit)
    np.testing.assert_allclose(cov, [0.0, 1.0, 0.5, 0.0])
    assert smape(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert smape(np.array([2.0]), np.array([1.0])) == pytest.approx(200.0 / 3.0)


def test_split_is_by_point_and_reproducible():
    a = split_points(32, seed=3)
    b = split_points(32, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    allp = np.concatenate(a)
    assert sorted(allp.tolist()) == list(range(32)) and len(a[2]) == 8
    with pytest.raises(ConfigError):
        split_points(2)


# ----------------------------------------------------------------------------- data, training, use
@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    store = tmp_path_factory.mktemp("surrogate") / "sweep"
    run_sweep(TINY_SWEEP, store, workers=1, progress=False)
    return store


@pytest.fixture(scope="module")
def trained(tiny_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    cfg = TrainConfig(
        sweep=str(tiny_sweep), out=str(out), continuum=True, max_epochs=12, patience=50, progress=False,
        model={"d_model": 16, "n_basis": 8}, threads=1, test_fraction=0.25, val_fraction=0.15, context_frames=3,
        samples_per_epoch=64,
    )  # fmt: skip
    return train(cfg), cfg


def test_field_data_from_sweep(tiny_sweep):
    ds = open_sweep(tiny_sweep)
    data = FieldData.from_sweep(ds, continuum=True)
    assert data.static_names == ("log10_permittivity", "voltage_V", "log10_voltage_rise_time_s")
    assert data.known_names == ("log10_time", "voltage")  # the ramps make V(t) a known-future input
    assert data.target.shape == (8, 2, 13, 11) and data.fields.shape == (8, 13, 1, 11)
    assert data.time_s[0] == 0.0 and np.all(data.target[:, :, 0] == 1.0)
    # ion number is conserved exactly in the kMC: every normalised profile averages to one
    np.testing.assert_allclose(data.target.mean(-1), 1.0, atol=1e-5)
    # the voltage covariate is the ramp (5 fine steps): at most a fifth of V at t = 0, V at the end
    iv = data.known_names.index("voltage")
    assert np.all(data.known[:, 0, iv] <= data.values["voltage_V"] / 5 + 1e-12)
    assert np.all(np.diff(data.known[:, :, iv], axis=1) >= 0)
    np.testing.assert_allclose(data.known[:, -1, iv], data.values["voltage_V"])
    with pytest.raises(ConfigError, match="store_replicas"):
        FieldData.from_sweep(ds.drop_vars("occupancy"))
    # an exported sweep (one NetCDF) gives the same arrays as the store
    exported = export_sweep(tiny_sweep, tiny_sweep.parent / "export.nc")
    again = FieldData.from_sweep(open_sweep(exported), continuum=True)
    np.testing.assert_array_equal(again.target, data.target)
    np.testing.assert_array_equal(again.known, data.known)


def test_training_persistence_and_reproducibility(trained, tmp_path):
    model, cfg = trained
    info = model.info
    assert info["epochs"] >= 1 and info["metrics"]["crossings"] == 0
    assert set(info["split"]["test"]).isdisjoint(info["split"]["train"])
    for name in ("weights.pt", "config.yaml", "normalisation.yaml", "metrics.yaml", "fingerprint.txt"):
        assert Path(cfg.out, name).is_file()
    assert Path(cfg.out, "logs", "metrics.csv").is_file() and Path(cfg.out, "checkpoints", "best.ckpt").is_file()
    # the configured AdamW weight decay is the one the optimiser ran with
    groups = torch.load(Path(cfg.out, "checkpoints", "best.ckpt"), weights_only=False)["optimizer_states"][0]
    assert [g["weight_decay"] for g in groups["param_groups"]] == [cfg.weight_decay] and cfg.weight_decay > 0
    loaded = Surrogate.load(cfg.out)
    params = {"permittivity": [30.0, 150.0], "voltage_V": [0.2, 0.9], "voltage_rise_time_s": [2e-9, 5e-8]}
    fields = np.ones((2, 12, 1, 11), dtype=np.float32)
    a = model.predict(params, fields=fields)
    b = loaded.predict(params, fields=fields)
    xr.testing.assert_allclose(a, b)
    assert (a["density_quantile"].diff("quantile") >= 0).all()
    # same seed, same data: bit-identical weights
    cfg2 = type(cfg)(**{**cfg.__dict__, "out": str(tmp_path / "again")})
    again = train(cfg2)
    for (k1, v1), (k2, v2) in zip(model.network.state_dict().items(), again.network.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    assert again.info["fingerprint"] == info["fingerprint"]


def test_prediction_modes_and_rollout(trained):
    model, _ = trained
    params = {"permittivity": 50.0, "voltage_V": 0.5, "voltage_rise_time_s": 1e-8}
    fields = np.ones((1, 12, 1, 11), dtype=np.float32)
    obs = np.ones((1, 3, 11), dtype=np.float32)
    cont = model.predict(params, fields=fields, observed=obs)
    assert cont.sizes == {"point": 1, "quantile": 7, "time": 12, "z": 11}
    np.testing.assert_array_equal(cont["density_mean"].values[0, :3], obs[0])  # observed frames kept
    long_t = np.geomspace(1e-9, 1e-4, 40)  # 100x past the trained horizon: rolled out in windows
    roll = model.predict(params, times_s=long_t, fields=np.ones((1, 40, 1, 11), dtype=np.float32))
    assert roll.sizes["time"] == 40 and np.isfinite(roll["density_quantile"]).all()
    assert (roll["density_quantile"].diff("quantile") >= 0).all()
    with pytest.raises(ConfigError, match="missing"):
        model.predict({"permittivity": 50.0}, fields=fields)
    with pytest.raises(ConfigError, match="fields"):
        model.predict(params)
    ex = model.explain(params, fields=fields)
    np.testing.assert_allclose(ex["static_importance"].sum("static"), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ex["attention"].sum("position"), 1.0, rtol=1e-5)


def test_export_round_trip(trained, tmp_path):
    model, _ = trained
    args = example_inputs(model, batch=3)
    ref = ExportableTFT(model)(*args)
    export_program(model, tmp_path / "n.pt2")
    prog = load_program(tmp_path / "n.pt2")
    for batch in (3, 1, 5):
        a = example_inputs(model, batch=batch)
        for x, y in zip(ExportableTFT(model)(*a), prog.module()(*a), strict=True):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)
    to_torchscript(model, tmp_path / "n.ts")
    for x, y in zip(ref, torch.jit.load(str(tmp_path / "n.ts"))(*args), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_cli_predict_evaluate_explain(trained, tiny_sweep, tmp_path, capsys):
    _, cfg = trained
    out = tmp_path / "pred.nc"
    argv = ["surrogate", "predict", cfg.out, "--permittivity", "40,120", "--voltage", "0.3,0.8",
            "--rise-time", "1e-8", "--out", str(out), "--plot", str(tmp_path / "p.png")]  # fmt: skip
    assert main(argv) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes["point"] == 2 and (tmp_path / "p.png").stat().st_size > 10_000
    assert main(["surrogate", "evaluate", cfg.out, str(tiny_sweep), "--plot", str(tmp_path / "ev")]) == 0
    assert len(list((tmp_path / "ev").glob("point*.png"))) == 2
    assert "overall: MAE(median)" in capsys.readouterr().out
    assert main(["surrogate", "explain", cfg.out, "--out", str(tmp_path / "ex"), "--points", "4"]) == 0
    assert (tmp_path / "ex" / "explanation.png").is_file()
    assert main(["surrogate", "predict", cfg.out, "--permittivity", "40", "--out", str(out)]) == 2
    assert "voltage" in capsys.readouterr().err
    assert main(["surrogate", "predict", str(tmp_path), "--voltage", "1", "--out", str(out)]) == 2


def test_mean_field_conserves_the_ion_number_by_construction():
    s, k, past, z, f = _inputs(z=31)
    on = _net(conserve=True)(s * 3, k * 3, past * 10, z, f)
    np.testing.assert_allclose(torch.sinh(on.mean).mean(-1).detach().numpy(), 1.0, rtol=1e-5)
    off = _net(conserve=False)(s * 3, k * 3, past * 10, z, f)
    assert float((torch.sinh(off.mean).mean(-1) - 1).abs().max()) > 1e-3  # only learned when off


def test_example_training_config_parses():
    root = Path(__file__).resolve().parents[1]
    cfg = TrainConfig.from_yaml(root / "examples" / "surrogate_demo.yaml")
    assert cfg.continuum and Path(cfg.sweep).name == "demo_store" and Path(cfg.sweep).parent.resolve() == root
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(sweep="x", max_epochs=0)
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig(sweep="x", model={"width": 3})
    with pytest.raises(ConfigError, match="weight_decay"):
        TrainConfig(sweep="x", weight_decay=-0.1)


def test_demo_story_runs_at_smoke_size(tmp_path, capsys):
    from surrodyn.demo import run_demo

    spec = {**TINY_SWEEP, "sampling": {"method": "sobol", "n_points": 8}}
    result = run_demo(tmp_path / "demo", workers=1, budget_s=5.0, sweep=spec, progress=False)
    assert (tmp_path / "demo" / "prediction.png").is_file() and (tmp_path / "demo" / "model" / "weights.pt").is_file()
    assert result["metrics"]["crossings"] == 0
    assert "held-out points" in capsys.readouterr().out


def test_band_recalibration_reaches_the_nominal_coverage(trained, tiny_sweep):
    from surrodyn.surrogate.metrics import fit_band_scale

    model, _ = trained
    data = FieldData.from_sweep(open_sweep(tiny_sweep), continuum=True)
    saved = model.band_scale
    try:
        s = fit_band_scale(model, data)
        assert s > 0 and model.band_scale == saved  # the model is left as it was
        model.band_scale = s
        ev = evaluate(model, data)
        assert abs(ev.summary()["coverage_10_90"] - 0.8) < 0.01 and ev.summary()["crossings"] == 0
        model.band_scale = 2 * s
        assert evaluate(model, data).summary()["coverage_10_90"] > 0.81  # wider band, more coverage
    finally:
        model.band_scale = saved


def test_first_order_indices_find_the_parameter_that_matters():
    from surrodyn.surrogate.interpret import first_order_indices, importance_consistency

    rng = np.random.default_rng(1)
    x = rng.uniform(size=(128, 3))
    z = np.linspace(0, 1, 20)
    fields = 1 + 5 * x[:, :1, None] * np.exp(-z / 0.1)[None, None, :] + 0.2 * x[:, 1:2, None]
    fields = np.repeat(fields, 4, axis=1) + 0.01 * rng.normal(size=(128, 4, 20))
    idx = first_order_indices(x, ["a", "b", "c"], fields)
    assert idx["a"] > 0.8 and idx["b"] < 0.1 and idx["c"] < 0.02 and idx["b"] > idx["c"]
    cmp = importance_consistency({"a": 0.7, "b": 0.2, "c": 0.1}, idx)
    assert cmp["same_top"] and cmp["same_order"] and cmp["spearman"] == pytest.approx(1.0)


def test_charge_loss_term_is_the_relative_error_of_the_induced_charge(tiny_sweep):
    from surrodyn.kmc.observables import charge_from_density_C_m2
    from surrodyn.surrogate.data import Normalizer, inverse_transform, transform
    from surrodyn.surrogate.train import SurrogateModule, _Arrays, induced_moment, prepare

    cfg = TrainConfig(sweep=str(tiny_sweep), continuum=True, progress=False, charge_weight=0.7)
    data, tr, _, _ = prepare(cfg)
    # the moment is the induced charge: charge_from_density = bare capacitor - e c0 h nz * moment
    rho = np.random.default_rng(0).uniform(0, 3, (4, data.z.size))
    gap, c0, eps, volt = 1e-8, 1e26, 50.0, 0.4
    q = charge_from_density_C_m2(rho, data.z * gap, gap, eps, c0, volt)
    moment = induced_moment(torch.from_numpy(rho), torch.from_numpy(data.z - 0.5)).numpy()
    h = (data.z[1] - data.z[0]) * gap
    bare = 8.8541878128e-12 * eps * volt / gap
    np.testing.assert_allclose(q, bare - 1.602176634e-19 * c0 * h * data.z.size * moment, rtol=1e-9)
    # the module adds weight × mean((moment error / largest |moment| of the point)²) to the field loss
    sub = data.subset(tr)
    norm_s, norm_k = Normalizer.fit(data.static_names, sub.static), Normalizer.fit(data.known_names, sub.known)
    arrays = _Arrays(sub, norm_s, norm_k)
    torch.manual_seed(0)
    net = FieldTFT(TFTConfig(static_names=data.static_names, known_names=data.known_names,
                             field_names=data.field_names, d_model=8, n_basis=4)).eval()  # fmt: skip
    idx = torch.arange(arrays.n_samples)
    jitter = torch.rand(idx.shape[0], *arrays.target.shape[2:]) - 0.5
    with torch.no_grad():
        plain = SurrogateModule(net, arrays, arrays, 1e-3, 3)._loss(arrays, idx, 1, jitter)
        weighted = SurrogateModule(net, arrays, arrays, 1e-3, 3, charge_weight=0.7)._loss(arrays, idx, 1, jitter)
        p = idx // arrays.n_replicas
        fields = None if arrays.fields is None else arrays.fields[p]
        out = net(arrays.static[p], arrays.known[p], transform(arrays.target[p, idx % arrays.n_replicas][:, :1]),
                  arrays.z, fields)  # fmt: skip
        pred = induced_moment(inverse_transform(out.mean), arrays.lever)
        true = induced_moment(torch.from_numpy(sub.mean[:, 1:]).float(), arrays.lever)[p]
        scale = induced_moment(torch.from_numpy(sub.mean).float(), arrays.lever).abs().amax(-1)[p]
        expected = 0.7 * (((pred - true) / scale[:, None]) ** 2).mean()
    assert float(weighted - plain) == pytest.approx(float(expected), rel=1e-4)
    assert float(expected) > 0
    with pytest.raises(ConfigError, match="charge_weight"):
        TrainConfig(sweep="x", charge_weight=-1.0)
