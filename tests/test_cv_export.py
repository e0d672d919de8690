"""CV export: feature Jacobians, the NumPy CV, TorchScript and PLUMED files, each checked against the model.

The model is a randomly initialised beta-VAE (the check is the exactness of the export, not the
quality of the CV) on a small molecule with every kind of feature. The PLUMED files are evaluated
by the NumPy evaluator of ``surrodyn.cv._plumed_eval`` (no PLUMED kernel on these machines).
Targets, from the benchmark protocol: CV values to 1e-5, gradients to 1e-3 per nm.
"""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from types import SimpleNamespace

import MDAnalysis as mda
import numpy as np
import pytest
import torch

from surrodyn.cv._plumed_eval import PlumedEvaluator, lepton
from surrodyn.cv.export import NumpyCV, export_torchscript
from surrodyn.cv.features import Angles, CentreOfMassDistance, Contacts, Dihedrals, Distances, Featurizer
from surrodyn.cv.learn import LearnedCV, Standardizer
from surrodyn.cv.plumed import CUSTOM_MAX_WEIGHTS, check_export, evaluate_plumed, export_plumed, plumed_input
from surrodyn.cv.vae import BetaVAE, BetaVAEConfig
from surrodyn.errors import ConfigError

torch.set_num_threads(1)

NAMES = ["C1", "C2", "N3", "O4", "C5", "H6", "C7", "S8"]
MASSES = [12.011, 12.011, 14.007, 15.999, 12.011, 1.008, 12.011, 32.06]
SPECS = [
    Distances("not name H*"),
    Angles(((0, 1, 2), (1, 2, 3), (5, 4, 6))),
    Dihedrals(((0, 1, 2, 3), (2, 3, 4, 6)), labels=("phi", "psi")),
    Dihedrals(((1, 2, 3, 4),), sincos=False),
    Contacts("index 0 1 2", "index 3 4 5 6 7", r0=0.3),
    Contacts("index 0 1", "index 6 7", r0=0.35, n=8, m=14, total=True),
    CentreOfMassDistance("index 0 1 2", "index 5 6 7"),
]
KINDS = ["dist"] * 21 + ["angle"] * 3 + ["sincos"] * 4 + ["dihedral"] + ["contact"] * 15 + ["total"] + ["com"]
BOX = np.array([2.0, 2.0, 2.0])  # larger than twice any coordinate difference within the molecule


def _universe():
    u = mda.Universe.empty(len(NAMES), trajectory=True)
    u.add_TopologyAttr("names", NAMES)
    u.add_TopologyAttr("masses", MASSES)
    return u


def _fd(func, x, h=1e-5):
    """Fourth-order central differences of func: (N, A, 3) -> (N, K); returns (N, K, A, 3)."""
    out = None
    for a in range(x.shape[1]):
        for k in range(3):
            vals = []
            for s in (-2, -1, 1, 2):
                y = x.copy()
                y[:, a, k] += s * h
                vals.append(func(y))
            d = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
            out = np.zeros((*d.shape, *x.shape[1:])) if out is None else out
            out[:, :, a, k] = d
    return out


@pytest.fixture(scope="module")
def featurizer():
    return Featurizer(_universe(), SPECS)


@pytest.fixture(scope="module")
def frames():
    """Training frames and 100 held-out frames: a zigzag chain with thermal-like noise (nm)."""
    rng = np.random.default_rng(7)
    ref = np.cumsum(rng.normal(0.0, 0.15, (len(NAMES), 3)), axis=0)
    return ref + rng.normal(0.0, 0.03, (300, len(NAMES), 3)), ref + rng.normal(0.0, 0.03, (100, len(NAMES), 3))


def _model(featurizer, train, activation="tanh", encoder=(12, 6), seed=0):
    torch.manual_seed(seed)
    net = BetaVAE(BetaVAEConfig(featurizer.n_features, n_latent=2, encoder=encoder, activation=activation)).eval()
    return LearnedCV(net, Standardizer.fit(featurizer.compute(train)), featurizer.names, {})


def _torch_feature_jacobian(cv, features):
    """d encoder-mean / d raw features by autograd through a float64 copy of the torch encoder: (N, d, F)."""
    net = copy.deepcopy(cv.network).double()
    f = torch.tensor(features, dtype=torch.float64, requires_grad=True)
    mu, _ = net.encode((f - torch.from_numpy(cv.standardizer.mean)) / torch.from_numpy(cv.standardizer.std))
    rows = [torch.autograd.grad(mu[:, d].sum(), f, retain_graph=True)[0] for d in range(mu.shape[1])]
    return torch.stack(rows, 1).numpy()


def _load_jit(path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
        return torch.jit.load(str(path))


# ---------------------------------------------------------------------------------------------
# features


def test_jacobian_matches_finite_differences_for_every_kind(featurizer, frames):
    x = frames[1]
    values, jac = featurizer.jacobian(x)
    assert values.shape == (100, 46) and jac.shape == (100, 46, 8, 3)
    assert len(KINDS) == featurizer.n_features
    np.testing.assert_array_equal(values, featurizer.compute(x))
    err = np.abs(_fd(featurizer.compute, x) - jac).max(axis=(0, 2, 3))
    worst = {k: float(err[[i for i, kk in enumerate(KINDS) if kk == k]].max()) for k in dict.fromkeys(KINDS)}
    assert max(worst.values()) < 1e-6, worst
    # translation invariance: the derivatives of every feature sum to zero over the atoms
    np.testing.assert_allclose(jac.sum(axis=2), 0.0, atol=1e-9)


def test_jacobian_in_a_periodic_box_uses_the_minimum_image(featurizer, frames):
    x = frames[1][:30]
    wrapped = np.mod(x + np.random.default_rng(3).uniform(0, 2.0, (30, 1, 3)), BOX)  # molecules cut by the box
    assert np.abs(featurizer.compute(wrapped) - featurizer.compute(x)).max() > 0.1  # broken without the box
    values, jac = featurizer.jacobian(wrapped, BOX)
    ref_values, ref_jac = featurizer.jacobian(x)
    np.testing.assert_allclose(values, ref_values, atol=1e-12)
    np.testing.assert_allclose(jac, ref_jac, atol=1e-9)
    per_frame = np.tile(BOX, (30, 1))
    np.testing.assert_array_equal(featurizer.jacobian(wrapped, per_frame)[1], jac)
    fd = _fd(lambda y: featurizer.compute(y, BOX), wrapped)
    assert np.abs(fd - jac).max() < 1e-6


def test_contact_switch_through_its_removable_singularity():
    u = _universe()
    f = Featurizer(u, [Contacts("index 0", "index 1", r0=0.4, n=6, m=10)])
    r = 0.4 + np.array([0.0, 1e-12, -1e-9, 1e-7, 2e-3])
    x = np.zeros((len(r), 8, 3))
    x[:, :, 1] = np.arange(8) * 3.0
    x[:, 1, 0] = r
    x[:, 1, 1] = x[:, 0, 1]
    values, jac = f.jacobian(x)
    assert values[0, 0] == pytest.approx(0.6, abs=1e-15)  # n/m exactly at r0
    slope = 6 * (6 - 10) / (2 * 10) / 0.4  # s'(r0) = n(n − m)/(2m r0)
    np.testing.assert_allclose(jac[:4, 0, 1, 0], slope, rtol=1e-5)
    np.testing.assert_allclose(jac[:, 0, 0, 0], -jac[:, 0, 1, 0])
    assert np.abs(_fd(f.compute, x, h=1e-5) - jac).max() < 1e-7


def test_degenerate_geometry_gives_finite_derivatives():
    u = _universe()
    f = Featurizer(u, [Angles(((0, 1, 2),)), Dihedrals(((0, 1, 2, 3),))])
    x = np.zeros((1, 8, 3))
    x[0, :, 0] = np.arange(8) * 0.15  # all collinear: θ = π, dihedrals undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, jac = f.jacobian(x)
    assert values[0, 0] == pytest.approx(np.pi) and np.isfinite(jac).all()


def test_featurizer_round_trips_through_a_json_dict(featurizer, frames):
    d = featurizer.to_dict()
    text = json.dumps(d)
    again = Featurizer.from_dict(json.loads(text))
    assert again.to_dict() == d and again.names == featurizer.names and again.n_atoms == 8
    x = frames[1][:10]
    np.testing.assert_array_equal(again.compute(x), featurizer.compute(x))
    np.testing.assert_array_equal(again.jacobian(x, BOX)[1], featurizer.jacobian(x, BOX)[1])
    com = d["ops"][-1]
    assert com["group_a"] == [0, 1, 2] and com["weights_b"][2] == pytest.approx(32.06 / (1.008 + 12.011 + 32.06))
    assert d["ops"][4]["group_b"] == [3, 4, 5, 6, 7] and d["ops"][4]["r0"] == 0.3 and d["ops"][4]["m"] == 12
    with pytest.raises(ConfigError, match="format"):
        Featurizer.from_dict({**d, "format": 99})
    with pytest.raises(ConfigError, match="indices"):
        Featurizer.from_dict({**d, "ops": [{"kind": "angle", "triples": [[0, 1, 8]]}], "names": ["a"]})
    with pytest.raises(ConfigError, match="unknown"):
        Featurizer.from_dict({**d, "ops": [{"kind": "rmsd"}]})
    with pytest.raises(ConfigError, match="feature names"):
        Featurizer.from_dict({**d, "names": ["only one"]})


# ---------------------------------------------------------------------------------------------
# the NumPy CV


@pytest.mark.parametrize("activation", ["tanh", "elu", "softplus", "silu"])
def test_numpy_cv_matches_the_model_and_torch_autograd(featurizer, frames, activation):
    cv = _model(featurizer, frames[0], activation)
    ncv = NumpyCV.from_model(cv, featurizer)
    x = frames[1]
    feats = featurizer.compute(x)
    assert np.abs(ncv(x) - cv.transform(feats)).max() < 1e-5
    values, grad = ncv.value_and_gradient(x)
    assert values.shape == (100, 2) and grad.shape == (100, 2, 8, 3)
    # reference: torch autograd of the encoder (float64 copy) chained with the feature Jacobian
    ref = np.einsum("ndf,nfak->ndak", _torch_feature_jacobian(cv, feats), featurizer.jacobian(x)[1])
    assert np.abs(grad - ref).max() < 1e-9
    # and the whole map by finite differences of the NumPy values
    assert np.abs(_fd(ncv, x) - grad).max() < 1e-3
    # one frame in, one frame out
    v1, g1 = ncv.value_and_gradient(x[5])
    assert v1.shape == (2,) and g1.shape == (2, 8, 3) and np.allclose(g1, grad[5]) and np.allclose(ncv(x[5]), values[5])
    np.testing.assert_allclose(ncv.features(x[5]), feats[5])


def test_numpy_cv_pickles_and_saves(featurizer, frames, tmp_path):
    ncv = NumpyCV.from_model(_model(featurizer, frames[0]), featurizer)
    x = frames[1][:5]
    again = pickle.loads(pickle.dumps(ncv))
    np.testing.assert_array_equal(again.value_and_gradient(x, BOX)[1], ncv.value_and_gradient(x, BOX)[1])
    path = ncv.save(tmp_path / "cv.npz")
    loaded = NumpyCV.load(path)
    np.testing.assert_array_equal(loaded(x), ncv(x))
    assert loaded.featurizer_dict == featurizer.to_dict() and loaded.activation == "tanh"
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match="not a NumpyCV"):
        NumpyCV.load(tmp_path / "bad.npz")


def test_numpy_cv_drives_an_openmm_python_force(featurizer, frames):
    openmm = pytest.importorskip("openmm")
    unit = pytest.importorskip("openmm.unit")
    if not hasattr(openmm, "PythonForce"):
        pytest.skip("openmm.PythonForce needs OpenMM >= 8.5")
    ncv = NumpyCV.from_model(_model(featurizer, frames[0]), featurizer)
    system = openmm.System()
    for m in MASSES:
        system.addParticle(m)
    system.addForce(openmm.PythonForce(ncv.component(1)))
    # the callback pickles: the System serialises and deserialises with it
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    platform = openmm.Platform.getPlatformByName("Reference")
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
    context.setPositions(frames[1][7] * unit.nanometer)
    state = context.getState(getEnergy=True, getForces=True)
    value, grad = ncv.value_and_gradient(frames[1][7])
    assert state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) == pytest.approx(value[1], abs=1e-12)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    np.testing.assert_allclose(forces, -grad[1], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# TorchScript and PLUMED


def test_torchscript_round_trip(featurizer, frames, tmp_path):
    cv = _model(featurizer, frames[0], "silu")
    module = _load_jit(export_torchscript(cv, tmp_path / "model.ptc"))
    feats = featurizer.compute(frames[1])
    ref = cv.transform(feats)
    out64 = module(torch.from_numpy(feats))
    out32 = module(torch.from_numpy(feats.astype(np.float32)))  # as PLUMED's PYTORCH_MODEL feeds it
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32 and out32.shape == (100, 2)
    assert np.abs(out64.detach().numpy() - ref).max() < 1e-5
    assert np.abs(out32.detach().numpy() - ref).max() < 1e-5
    f = torch.tensor(feats, requires_grad=True)
    y = module(f)
    rows = [torch.autograd.grad(y[:, d].sum(), f, retain_graph=True)[0] for d in range(2)]
    np.testing.assert_allclose(torch.stack(rows, 1).numpy(), _torch_feature_jacobian(cv, feats), atol=1e-9)


@pytest.mark.parametrize(
    ("fmt", "activation"),
    [("pytorch", "tanh"), ("ann", "tanh"), ("custom", "tanh"), ("custom", "elu"), ("custom", "softplus"),
     ("custom", "silu")],
)  # fmt: skip
def test_plumed_export_reproduces_the_cv(featurizer, frames, tmp_path, fmt, activation):
    cv = _model(featurizer, frames[0], activation)
    export = export_plumed(cv, featurizer, tmp_path, fmt)
    errors = check_export(cv, featurizer, export, frames[1])
    assert errors["value"] < 1e-5 and errors["gradient"] < 1e-3, errors
    text = export.plumed_dat.read_text()
    assert "f0: DISTANCE ATOMS=1,2 NOPBC" in text  # PLUMED numbers atoms from 1
    assert "GROUPA=1,2 GROUPB=7,8 SWITCH={RATIONAL R_0=0.35 NN=8 MM=14}" in text
    assert export.features == [f"f{i}" for i in range(46)]
    assert export.outputs == (["cv_0", "cv_1"] if fmt == "custom" else ["cv.node-0", "cv.node-1"])
    assert (tmp_path / "model.ptc").is_file() == (fmt == "pytorch")


@pytest.mark.parametrize("fmt", ["ann", "pytorch"])
def test_periodic_plumed_export(featurizer, frames, tmp_path, fmt):
    cv = _model(featurizer, frames[0])
    x = frames[1][:20]
    wrapped = np.mod(x + np.random.default_rng(4).uniform(0, 2.0, (20, 1, 3)), BOX)
    periodic = export_plumed(cv, featurizer, tmp_path / "pbc", fmt, pbc=True)
    assert "NOPBC" not in periodic.plumed_dat.read_text()
    errors = check_export(cv, featurizer, periodic, wrapped, BOX)
    assert errors["value"] < 1e-5 and errors["gradient"] < 1e-3, errors
    plain = export_plumed(cv, featurizer, tmp_path / "plain", fmt)  # NOPBC everywhere: wrong on wrapped frames
    assert check_export(cv, featurizer, plain, wrapped, BOX)["value"] > 1e-2


def test_linear_cv_exports_through_the_same_path(featurizer, frames, tmp_path):
    feats = featurizer.compute(frames[0])
    std = Standardizer.fit(feats)
    rng = np.random.default_rng(5)
    mean, comp = rng.normal(size=46), rng.normal(size=(46, 2))

    def transform(f):
        return (std(f).astype(np.float64) - mean) @ comp

    lin = SimpleNamespace(standardizer=std, mean=mean, components=comp, feature_names=featurizer.names,
                          transform=transform)  # fmt: skip
    for fmt in ("ann", "custom", "pytorch"):
        errors = check_export(lin, featurizer, export_plumed(lin, featurizer, tmp_path / fmt, fmt), frames[1][:20])
        assert errors["value"] < 1e-5 and errors["gradient"] < 1e-3, (fmt, errors)


def test_evaluator_follows_lepton_and_plumed_semantics(tmp_path):
    v = {"x": np.array([3.0]), "y": np.array([2.0])}
    assert lepton("-x^2")(v)[0] == -9.0  # unary minus binds looser than ^
    assert lepton("2^3^2")(v) == 512.0  # ^ groups to the right
    assert lepton("x-y-1")(v)[0] == 0.0 and lepton("x/y/3")(v)[0] == 0.5  # the others to the left
    assert lepton("1.5e-1*x+step(y-2)+max(x,y)-min(x,y)+pi-pi")(v)[0] == pytest.approx(0.45 + 1 + 1)
    with pytest.raises(ConfigError, match="unknown function"):
        lepton("relu(x)")
    with pytest.raises(ConfigError, match="unbalanced"):
        lepton("tanh(x")
    # the ANN example of PLUMED's manual: NUM_NODES=2,3,1, WEIGHTS0=1..6 means [[1,2],[3,4],[5,6]]
    pos = np.zeros((2, 4, 3))
    pos[:, 1, 0] = [0.3, 0.5]
    pos[:, 3, 0] = [0.2, 0.1]
    (tmp_path / "plumed.dat").write_text(
        "d1: DISTANCE ATOMS=1,2\nd2: DISTANCE ATOMS=3,4  # comment\n"
        "ann: ANN ...\n ARG=d1,d2 NUM_LAYERS=3 NUM_NODES=2,3,1 ACTIVATIONS=Tanh,Tanh\n"
        " WEIGHTS0=0.1,0.2,0.3,0.4,0.5,0.6 WEIGHTS1=0.7,0.8,0.9 BIASES0=0.01,0.02,0.03 BIASES1=0.04\n... ANN\n"
        "c1: COORDINATION GROUPA=1 GROUPB=2 R_0=0.3 NN=6 MM=12\n"
        "c2: COORDINATION GROUPA=1 GROUPB=2 SWITCH={RATIONAL R_0=0.3 NN=6 MM=12}\n"
        "PRINT ARG=ann.node-0,c1,c2 FILE=COLVAR\n"
    )
    out = evaluate_plumed(tmp_path / "plumed.dat", pos)
    d1, d2 = pos[:, 1, 0], pos[:, 3, 0]
    h = np.tanh(np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]) @ np.stack([d1, d2]) + [[0.01], [0.02], [0.03]])
    np.testing.assert_allclose(out["ann.node-0"], np.tanh(np.array([0.7, 0.8, 0.9]) @ h + 0.04))
    plain = 1 / (1 + (d1 / 0.3) ** 6)
    np.testing.assert_allclose(out["c2"], plain)
    # COORDINATION's own R_0/NN/MM stretch the switch to vanish at d_max (a ~1e-5 relative change)
    assert 0 < np.abs(out["c1"] - plain).max() < 2e-5
    assert PlumedEvaluator(tmp_path / "plumed.dat").printed == ["ann.node-0", "c1", "c2"]


def test_bad_inputs_are_config_errors(featurizer, frames, tmp_path):
    cv = _model(featurizer, frames[0], "elu")
    with pytest.raises(ConfigError, match="fmt"):
        export_plumed(cv, featurizer, tmp_path, "lammps")
    with pytest.raises(ConfigError, match="tanh"):
        export_plumed(cv, featurizer, tmp_path, "ann")
    big = _model(featurizer, frames[0], encoder=(64, 64))
    assert sum(p.numel() for n, p in big.network.encoder.named_parameters() if "weight" in n) > CUSTOM_MAX_WEIGHTS
    with pytest.raises(ConfigError, match="at most"):
        export_plumed(big, featurizer, tmp_path, "custom")
    ncv = NumpyCV.from_model(cv, featurizer)
    for shape in [(7, 3), (8,), (2, 8, 2), (1, 1, 8, 3)]:
        with pytest.raises(ConfigError, match="positions"):
            ncv.value_and_gradient(np.zeros(shape))
    with pytest.raises(ConfigError, match="positions"):
        featurizer.jacobian(np.zeros((8, 3)))
    with pytest.raises(ConfigError, match="box"):
        featurizer.jacobian(frames[1][:2], np.array([1.0, 1.0]))
    with pytest.raises(ConfigError, match="index"):
        ncv.component(2)
    other = Featurizer(_universe(), [Distances("name C*")])
    with pytest.raises(ConfigError, match="features"):
        NumpyCV.from_model(cv, other)
    with pytest.raises(ConfigError, match="activation"):
        NumpyCV(ncv.weights, ncv.biases, "relu", ncv.featurizer_dict)
    with pytest.raises(ConfigError, match="prefix"):
        plumed_input(featurizer, prefix="1f")
    (tmp_path / "odd.dat").write_text("d: DISTANCE ATOMS=1,2\nr: RMSD REFERENCE=ref.pdb\n")
    with pytest.raises(ConfigError, match="RMSD"):
        evaluate_plumed(tmp_path / "odd.dat", frames[1][:2])
