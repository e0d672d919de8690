"""CV jobs end to end: configs, readers (MDAnalysis, mdtraj, ASE), baselines, train/project/explain CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from surrodyn.cli.main import main
from surrodyn.cv import fit_cv, knn_r2, muller_brown_features, muller_brown_samples
from surrodyn.cv.baselines import LinearCV, fit_linear_cv, load_cv
from surrodyn.cv.config import CVConfig, specs_from_list, specs_to_list
from surrodyn.cv.features import Dihedrals, Distances, Featurizer
from surrodyn.cv.learn import FitSettings, LearnedCV
from surrodyn.cv.readers import TrajectoryReader
from surrodyn.cv.workflow import explain
from surrodyn.errors import ConfigError


def _chain(dihedrals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions (nm) of a 4-atom chain (bonds 0.153 nm, angles 111°) with the given dihedrals."""
    n = dihedrals.size
    b, theta = 0.153, np.deg2rad(111.0)
    x = np.zeros((n, 4, 3))
    x[:, 1, 0] = b
    x[:, 2] = x[:, 1] + b * np.array([-np.cos(theta), np.sin(theta), 0.0])
    bc = (x[:, 2] - x[:, 1]) / b
    nrm = np.cross(x[:, 1] - x[:, 0], bc)
    nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True)
    m = np.stack([bc, np.cross(nrm, bc), nrm], axis=-1)
    d2 = b * np.stack([-np.cos(theta) * np.ones(n), np.sin(theta) * np.cos(dihedrals),
                       np.sin(theta) * np.sin(dihedrals)], -1)  # fmt: skip
    x[:, 3] = x[:, 2] + np.einsum("nij,nj->ni", m, d2)
    x += rng.normal(scale=0.004, size=x.shape)  # thermal jitter
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # an arbitrary orientation: features must not care
    return x @ rot.T + 1.0


@pytest.fixture(scope="module")
def butane(tmp_path_factory):
    """A butane-like chain hopping between gauche± and trans: topology PDB + DCD (1500 frames)."""
    import MDAnalysis as mda

    rng = np.random.default_rng(4)
    states = np.repeat(rng.choice(np.deg2rad([-60.0, 60.0, 180.0]), size=30), 50)
    dihedral = states + rng.normal(scale=np.deg2rad(12.0), size=states.size)
    pos = _chain(dihedral, rng)
    d = tmp_path_factory.mktemp("butane")
    u = mda.Universe.empty(4, trajectory=True, atom_resindex=np.zeros(4, dtype=int))
    u.add_TopologyAttr("names", ["C1", "C2", "C3", "C4"])
    u.add_TopologyAttr("elements", ["C"] * 4)
    u.add_TopologyAttr("resnames", ["BUT"])
    u.add_TopologyAttr("resids", [1])
    u.load_new(pos * 10.0, order="fac")  # Å
    u.trajectory[0]
    u.atoms.write(str(d / "top.pdb"))
    with mda.Writer(str(d / "traj.dcd"), n_atoms=4) as w:
        for _ in u.trajectory:
            w.write(u.atoms)
    return d, pos, dihedral


def test_readers_agree(butane, tmp_path):
    import ase
    import ase.io
    import mdtraj

    d, pos, _ = butane
    ref = np.concatenate([x for x, _ in TrajectoryReader(d / "top.pdb", d / "traj.dcd", chunk=400)])
    np.testing.assert_allclose(ref, pos, atol=2e-5)  # DCD stores float32 Å
    frames = [ase.Atoms("C4", positions=p * 10.0) for p in pos[:200]]
    ase.io.write(tmp_path / "t.traj", frames)
    ase.io.write(tmp_path / "t.extxyz", frames)
    t = mdtraj.load(str(d / "traj.dcd"), top=str(d / "top.pdb"))[:200]
    t.unitcell_vectors = np.tile(5.0 * np.eye(3, dtype=np.float32), (t.n_frames, 1, 1))  # Desmond needs a cell
    t.save_dtr(str(tmp_path / "t.dtr"))
    cases = [(tmp_path / "t.traj", "ase"), (tmp_path / "t.extxyz", "ase"), (tmp_path / "t.dtr", "mdtraj"),
             (d / "traj.dcd", "mdtraj")]  # fmt: skip
    for path, reader in cases:
        rd = TrajectoryReader(None if reader == "ase" else d / "top.pdb", path, chunk=64, stride=3,
                              reader="mdtraj" if path.suffix == ".dcd" else "auto")  # fmt: skip
        assert rd.reader == reader
        got = np.concatenate([x for x, _ in rd])
        np.testing.assert_allclose(got, pos[: got.shape[0] * 3 : 3], atol=2e-5)
        assert len(rd) == got.shape[0]
        # selections work on every reader's topology: heavy-atom distances by name
        assert Featurizer(rd.universe, [Distances("name C*")]).n_features == 6
    with pytest.raises(ConfigError, match="needs a topology"):
        TrajectoryReader(None, d / "traj.dcd")
    with pytest.raises(ConfigError, match="reader"):
        TrajectoryReader(d / "top.pdb", d / "traj.dcd", reader="vmd")
    with pytest.raises(ConfigError, match="no such file"):
        TrajectoryReader(d / "top.pdb", d / "missing.dcd")


def test_config_validation_and_spec_round_trip(tmp_path):
    items = [
        {"distances": {"selection": "name C*", "other": None}},
        {"dihedrals": {"quads": [[0, 1, 2, 3]], "labels": ["tau"], "sincos": True}},
        {"contacts": {"selection": "name C1", "other": "name C4", "r0": 0.4, "n": 6, "m": 12, "total": True}},
        {"angles": {"triples": [[0, 1, 2]]}},
        {"com_distance": {"selection": "name C1 C2", "other": "name C3 C4"}},
    ]
    specs = specs_from_list(items)
    assert specs[1] == Dihedrals(((0, 1, 2, 3),), labels=("tau",))
    assert specs_from_list(json.loads(json.dumps(specs_to_list(specs)))) == specs
    base = {"topology": "top.pdb", "trajectory": "traj.dcd", "features": items[:1]}
    cfg = CVConfig.from_dict(base, base=tmp_path)
    assert cfg.trajectory == [str(tmp_path / "traj.dcd")] and cfg.method == "beta-vae"
    assert CVConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="did you mean 'features'"):
        CVConfig.from_dict({**base, "feature": []})
    with pytest.raises(ConfigError, match="feature kind"):
        CVConfig.from_dict({**base, "features": [{"distance": {}}]})
    with pytest.raises(ConfigError, match="method"):
        CVConfig.from_dict({**base, "model": {"method": "umap"}})
    with pytest.raises(ConfigError, match="beta"):
        CVConfig.from_dict({**base, "model": {"method": "ae"}, "training": {"beta": 0.1}})
    with pytest.raises(ConfigError, match="not both"):
        CVConfig.from_dict({**base, "colvar": "COLVAR"})
    with pytest.raises(ConfigError, match="training"):
        CVConfig.from_dict({**base, "training": {"epochs": 3}})
    assert CVConfig.from_dict({**base, "model": {"method": "ae"}}).training.beta == 0.0


def _ou(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n)
    noise = rng.normal(size=n) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + noise[t]
    return x


def test_tica_finds_the_slow_process_pca_the_loud_one():
    """Features mix a slow AR(1) (ρ = 0.99, variance 1) with a fast loud one (ρ = 0.3, variance 9)."""
    rng = np.random.default_rng(0)
    slow, fast = _ou(20000, 0.99, rng), 3.0 * _ou(20000, 0.3, rng)
    mix = rng.normal(size=(2, 6))
    x = np.column_stack([slow, fast]) @ mix + 0.05 * rng.normal(size=(20000, 6))
    tica = fit_linear_cv(x, "tica", n_latent=1, lag=5)
    pca = fit_linear_cv(x, "pca", n_latent=1)
    assert abs(np.corrcoef(tica.transform(x)[:, 0], slow)[0, 1]) > 0.97
    assert abs(np.corrcoef(pca.transform(x)[:, 0], fast)[0, 1]) > 0.9
    # implied timescale of an AR(1) with ρ: -1 / ln ρ = 99.5 frames
    assert tica.info["timescales_frames"][0] == pytest.approx(-1 / np.log(0.99), rel=0.2)
    # PCA on standardised features: the component's variance ratio is the top eigenvalue of the correlation matrix
    evals = np.linalg.eigvalsh(np.corrcoef(x, rowvar=False))
    assert pca.info["explained_variance_ratio"][0] == pytest.approx(evals[-1] / evals.sum(), rel=1e-6)
    with pytest.raises(ConfigError, match="method"):
        fit_linear_cv(x, "ica")
    with pytest.raises(ConfigError, match="n_latent"):
        fit_linear_cv(x, "pca", n_latent=7)
    with pytest.raises(ConfigError, match="lag"):
        fit_linear_cv(x[:5], "tica", lag=10)


def test_baselines_share_the_model_api(tmp_path):
    xy = muller_brown_samples(3000, seed=2)
    f = muller_brown_features(xy, seed=2)
    pca = fit_linear_cv(f, "pca", n_latent=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's own chatter
        ae = fit_cv(f, {"n_latent": 2, "encoder": (32, 16)}, FitSettings(beta=0.0, max_epochs=60, seed=1))
    for model in (pca, ae):
        z = model.transform(f)
        assert knn_r2(z, xy[:, 0]) > 0.95 and knn_r2(z, xy[:, 1]) > 0.95
        back = load_cv(model.save(tmp_path / type(model).__name__))
        assert type(back) is type(model)
        np.testing.assert_allclose(back.transform(f), z, atol=1e-6)
    assert isinstance(load_cv(tmp_path / "LinearCV"), LinearCV)
    assert isinstance(load_cv(tmp_path / "LearnedCV"), LearnedCV)
    # a plain AE is deterministic: no sampling noise enters, so two runs with one seed agree bit for bit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = fit_cv(f, {"n_latent": 2, "encoder": (32, 16)}, FitSettings(beta=0.0, max_epochs=60, seed=1))
    np.testing.assert_array_equal(again.transform(f), ae.transform(f))
    with pytest.raises(ConfigError, match="model directory"):
        load_cv(tmp_path)


def test_cli_train_project_explain(butane, tmp_path):
    d, _, dihedral = butane
    config = tmp_path / "cv.yaml"
    config.write_text(
        f"topology: {d / 'top.pdb'}\ntrajectory: [{d / 'traj.dcd'}]\n"
        "features:\n  - distances: {selection: 'name C1', other: 'name C4'}\n"
        "  - dihedrals: {quads: [[0, 1, 2, 3]], labels: [tau]}\n  - angles: {triples: [[0, 1, 2], [1, 2, 3]]}\n"
        "model: {method: beta-vae, n_latent: 2, encoder: [32, 16]}\n"
        "training: {beta: 0.1, max_epochs: 80, seed: 3}\n"
    )
    assert main(["cv", "train", str(config), "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    model = load_cv(tmp_path / "m")
    assert model.info["job"]["features"][0] == {"distances": {"selection": "name C1", "other": "name C4"}}
    assert main(["cv", "project", str(tmp_path / "m"), str(d / "traj.dcd"), "--out", str(tmp_path / "z.nc")]) == 0
    z = xr.open_dataset(tmp_path / "z.nc")["cv"].values
    assert z.shape == (dihedral.size, 2)
    # the learned CVs resolve the dihedral, gauche+ from gauche- too (mirror images: equal distances)
    assert knn_r2(z, np.cos(dihedral)) > 0.9 and knn_r2(z, np.sin(dihedral)) > 0.9
    out = tmp_path / "explain"
    assert main(["cv", "explain", str(tmp_path / "m"), str(d / "traj.dcd"), "--out", str(out)]) == 0
    report = (out / "report.txt").read_text()
    for name in ("fes.png", "latent_top.png", "latent_on_plane.png", "ranking.png", "ranking.nc"):
        assert (out / name).stat().st_size > 0
    assert "latent_on_plane.png: every latent dimension over (" in report
    # a named plane is drawn and reported; an unknown name is refused with the closest known one
    assert main(["cv", "explain", str(tmp_path / "m"), str(d / "traj.dcd"), "--out", str(tmp_path / "ex2"),
                 "--plane", "dist C10-C43", "dist C10-C32"]) == 0  # fmt: skip
    assert "over (dist C10-C43, dist C10-C32)" in (tmp_path / "ex2" / "report.txt").read_text()
    with pytest.raises(ConfigError, match="did you mean 'dist C10-C43'"):
        explain(tmp_path / "m", d / "traj.dcd", tmp_path / "ex3", plane=("dist C10-C44", "dist C10-C43"))
    assert not (tmp_path / "ex3" / "ranking.nc").exists()  # refused before anything is written
    # the end-to-end C1-C4 distance is the one geometric variable that follows cos(dihedral)
    assert "latent 0: dist C10-C43" in report or "latent 1: dist C10-C43" in report
    assert "active latent dimensions" in report
    assert "training: beta 0.1, mlp decoder, no decorrelation, scaling sqrt, seed 3" in report
    # every export of the trained model, checked against it on the topology's frame
    from surrodyn.cv.workflow import export

    for fmt, action in [("torchscript", "ann"), ("plumed", "ann"), ("plumed", "custom"), ("numpy", "ann")]:
        files, check = export(tmp_path / "m", tmp_path / f"x_{fmt}_{action}", fmt=fmt, plumed_action=action)
        assert all(f.stat().st_size > 0 for f in files)
        assert check["value"] <= 1e-5 and check.get("gradient", 0.0) <= 1e-3, (fmt, action, check)
    assert main(["cv", "export", str(tmp_path / "m"), "--format", "numpy", "--out", str(tmp_path / "xn")]) == 0
    with pytest.raises(SystemExit):  # argparse refuses an unknown format
        main(["cv", "export", str(tmp_path / "m"), "--format", "onnx"])
    # PCA through the same CLI; a wrong topology is refused by the feature names
    config.write_text(config.read_text().replace("beta-vae", "pca"))
    assert main(["cv", "train", str(config), "--out", str(tmp_path / "p")]) == 0
    assert load_cv(tmp_path / "p").method == "pca"
    assert main(["cv", "train", str(tmp_path / "nope.yaml")]) == 2


def test_default_plane_takes_the_first_two_different_top_variables():
    from surrodyn.cv.workflow import default_plane

    assert default_plane({0: [("phi", 0.9), ("a", 0.8)], 1: [("psi", 0.9)]}) == ("phi", "psi")
    assert default_plane({0: [("phi", 0.9)], 1: [("phi", 0.8)], 2: [("psi", -0.7)]}) == ("phi", "psi")
    # every latent led by one variable: the other ranked variable with the largest |score|
    assert default_plane({0: [("phi", 0.9), ("a", 0.3)], 1: [("phi", 0.7), ("b", -0.6)]}) == ("phi", "b")
    assert default_plane({0: [("phi", 0.9)]}) is None


def test_the_shipped_example_config_is_valid():
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "cv_ala2.yaml"
    cfg = CVConfig.from_yaml(path)
    assert cfg.method == "beta-vae" and cfg.features == [Distances("not element H")]
    assert cfg.topology == str(path.parent / "data/ala2_vacuum/topology.pdb")
