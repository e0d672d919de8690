"""The shipped alanine dipeptide, its OpenMM systems, the torsion-metadynamics generator, transition counting."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from surrodyn.data.io import read_dataset
from surrodyn.errors import ConfigError, OutputError
from surrodyn.md import (
    PHI_ATOMS,
    PSI_ATOMS,
    SOLVENTS,
    alanine_dipeptide_pdb,
    build_system,
    count_transitions,
    openmm_runs,
    run_torsion_metadynamics,
)

openmm = pytest.importorskip("openmm")

# ---------------------------------------------------------------- topology and systems


@pytest.mark.parametrize("solvent", sorted(SOLVENTS))
def test_pdb_builds_a_system_for_each_solvent(solvent):
    topology, system, positions = build_system(solvent)
    assert topology.getNumAtoms() == system.getNumParticles() == 22
    assert [r.name for r in topology.residues()] == ["ACE", "ALA", "NME"]
    assert positions.shape == (22, 3)
    assert system.getNumConstraints() == 12  # every bond to hydrogen
    gb = [f for f in system.getForces() if isinstance(f, openmm.GBSAOBCForce)]
    assert len(gb) == (1 if solvent == "obc" else 0)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.NoCutoff


def test_unknown_solvent_names_the_allowed_values():
    with pytest.raises(ConfigError, match="'vacuum', 'obc'"):
        build_system("tip3p")


def _dihedrals_mdtraj(topology, positions_nm, quads):
    import mdtraj as md

    traj = md.Trajectory(np.asarray(positions_nm)[None], md.Topology.from_openmm(topology))
    return md.compute_dihedrals(traj, np.array(quads))[0]


@pytest.mark.parametrize("solvent", sorted(SOLVENTS))
def test_energy_minimised_structure_is_in_the_phi_negative_basin(solvent):
    topology, system, positions = build_system(solvent)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(positions)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1.0, 0)
    x = ctx.getState(positions=True).getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
    phi, psi = _dihedrals_mdtraj(topology, x, [PHI_ATOMS, PSI_ATOMS])
    assert -math.pi < phi < -0.5  # C7eq in vacuum (φ ≈ -75°, ψ ≈ 54°), αR with OBC (ψ ≈ -15°)
    assert -math.pi < psi < math.pi


def test_phi_psi_atoms_agree_with_mdtraj_and_the_featurizer():
    import MDAnalysis as mda
    import mdtraj as md

    from surrodyn.cv.features import Dihedrals, Featurizer

    path = alanine_dipeptide_pdb()
    traj = md.load(str(path))
    (phi_idx, phi_md), (psi_idx, psi_md) = md.compute_phi(traj), md.compute_psi(traj)
    assert [tuple(q) for q in phi_idx] == [PHI_ATOMS]
    assert [tuple(q) for q in psi_idx] == [PSI_ATOMS]
    u = mda.Universe(str(path))
    x = u.atoms.positions[None].astype(float) / 10.0
    ours = Featurizer(u, [Dihedrals(quads=(PHI_ATOMS, PSI_ATOMS), sincos=False)]).compute(x)[0]
    np.testing.assert_allclose(ours, [phi_md[0, 0], psi_md[0, 0]], atol=1e-6)
    np.testing.assert_allclose(openmm_runs._torsions(x[0], np.array([PHI_ATOMS, PSI_ATOMS])), ours, atol=1e-12)
    names = [a.name for a in u.atoms]
    assert [names[i] for i in PHI_ATOMS] == ["C", "N", "CA", "C"]
    assert [names[i] for i in PSI_ATOMS] == ["N", "CA", "C", "N"]


# ---------------------------------------------------------------- runs

RUN = {"ns": 0.004, "frame_ps": 0.5, "progress": False}  # 8 frames, 8 Gaussians (one every 0.5 ps)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ala2")
    return {
        name: run_torsion_metadynamics(root / name, seed=seed, **RUN)
        for name, seed in (("a", 0), ("a_again", 0), ("b", 1))
    }


def test_run_writes_the_frames_colvar_and_topology(runs):
    import mdtraj as md

    out = runs["a"]
    assert sorted(p.name for p in out.iterdir()) == ["colvar.nc", "topology.pdb", "traj.dcd"]  # no temporaries
    assert out.joinpath("topology.pdb").read_bytes() == alanine_dipeptide_pdb().read_bytes()
    ds = read_dataset(out / "colvar.nc")
    assert ds.sizes["frame"] == 8
    np.testing.assert_allclose(ds["time_ps"], 0.5 * np.arange(1, 9))
    for var, unit in (("phi", "rad"), ("psi", "rad"), ("bias_kJmol", "kJ/mol")):
        assert ds[var].dims == ("frame",) and ds[var].attrs["units"] == unit
    attrs = ds.attrs
    assert attrs["solvent"] == "vacuum" and attrs["biased"] == "phi" and attrs["seed"] == 0
    assert attrs["openmm_version"] == openmm.__version__
    assert attrs["timestep_fs"] == 2.0 and attrs["temperature_K"] == 300.0 and attrs["metad_bias_factor"] == 8.0
    assert attrs["wall_s"] > 0 and attrs["cpu_s"] > 0 and attrs["ns_per_day"] > 0
    assert attrs["start_phi_rad"] < 0
    # the colvar is the DCD's φ, ψ (float32 coordinates)
    traj = md.load(str(out / "traj.dcd"), top=str(out / "topology.pdb"))
    assert traj.n_frames == 8
    np.testing.assert_allclose(md.compute_phi(traj)[1][:, 0], ds["phi"], atol=1e-4)
    np.testing.assert_allclose(md.compute_psi(traj)[1][:, 0], ds["psi"], atol=1e-4)
    # the final free energy on OpenMM's periodic grid over [-π, π]
    grid = ds["grid_phi"].values
    assert grid[0] == pytest.approx(-math.pi) and grid[-1] == pytest.approx(math.pi)
    assert ds["free_energy_kJmol"].dims == ("grid_phi",) and float(ds["free_energy_kJmol"].min()) < 0


def test_bias_is_recorded_before_each_deposit_and_bounded_by_the_heights(runs):
    bias = read_dataset(runs["a"] / "colvar.nc")["bias_kJmol"].values
    # frame k is at step 250 (k + 1), where the (k + 1)-th Gaussian is about to be deposited: k are in the bias,
    # each at most 1 kJ/mol high (well-tempered heights only shrink)
    assert bias[0] == 0.0
    assert np.all(bias >= 0.0)
    assert np.all(bias <= np.arange(8) * 1.0 + 1e-9)
    assert bias[-1] > 0.5


def test_same_seed_same_trajectory_different_seed_different(runs):
    import mdtraj as md

    a, a2, b = (read_dataset(runs[k] / "colvar.nc") for k in ("a", "a_again", "b"))
    np.testing.assert_array_equal(a["phi"], a2["phi"])
    np.testing.assert_array_equal(a["bias_kJmol"], a2["bias_kJmol"])
    xyz = [md.load(str(runs[k] / "traj.dcd"), top=str(runs[k] / "topology.pdb")).xyz for k in ("a", "a_again")]
    np.testing.assert_array_equal(*xyz)  # the DCD headers differ only in their creation date
    assert np.max(np.abs(a["phi"].values - b["phi"].values)) > 1e-3
    assert a.attrs["integrator_seed"] != b.attrs["integrator_seed"]


def test_unbiased_run_has_zero_bias(tmp_path):
    out = run_torsion_metadynamics(tmp_path / "md", ns=0.002, seed=3, biased=(), progress=False)
    ds = read_dataset(out / "colvar.nc")
    assert ds.sizes["frame"] == 2 and ds.attrs["biased"] == ""
    np.testing.assert_array_equal(ds["bias_kJmol"], 0.0)
    assert "free_energy_kJmol" not in ds


def test_obc_and_two_biased_torsions(tmp_path):
    out = run_torsion_metadynamics(tmp_path / "md", ns=0.002, solvent="obc", biased=("phi", "psi"), progress=False)
    ds = read_dataset(out / "colvar.nc")
    assert ds.attrs["force_field"] == "amber99sb.xml + amber99_obc.xml" and ds.attrs["biased"] == "phi,psi"
    assert ds["free_energy_kJmol"].dims == ("grid_phi", "grid_psi")
    assert ds.sizes["grid_phi"] == ds.sizes["grid_psi"] == 100


@pytest.mark.parametrize(
    "bad",
    [
        {"ns": 0},
        {"ns": -1.0},
        {"ns": float("nan")},
        {"ns": 0.0015},  # 1.5 frames
        {"frame_ps": 0.003},  # not a multiple of 2 fs
        {"frame_ps": 0.0},
        {"seed": -1},
        {"seed": 1.5},
        {"seed": True},
        {"solvent": "water"},
        {"biased": ("omega",)},
        {"biased": ("phi", "phi")},
        {"biased": 3},
    ],
)
def test_bad_settings_raise_before_anything_is_written(tmp_path, bad):
    kwargs = {"ns": 0.002, "progress": False, **bad}
    with pytest.raises(ConfigError, match=next(iter(bad))):
        run_torsion_metadynamics(tmp_path / "md", **kwargs)
    assert not (tmp_path / "md").exists()


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run_torsion_metadynamics(tmp_path / "f", ns=0.002, progress=False)


def test_a_failed_run_leaves_the_old_outputs_and_no_partial_files(tmp_path, monkeypatch):
    out = tmp_path / "md"
    out.mkdir()
    (out / "traj.dcd").write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(openmm_runs, "_colvar_dataset", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_torsion_metadynamics(out, ns=0.002, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["traj.dcd"]
    assert (out / "traj.dcd").read_bytes() == b"old"


def test_missing_openmm_is_a_config_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "openmm", None)
    with pytest.raises(ConfigError, match=r"surrodyn\[md\]"):
        build_system()


def test_the_package_imports_without_openmm():
    code = "import sys; sys.modules['openmm'] = None; import surrodyn.md as m; print(m.PHI_ATOMS)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == str(PHI_ATOMS)


# ---------------------------------------------------------------- transitions


def test_count_transitions_clean_switches_and_trivial_series():
    assert count_transitions(np.array([])) == 0
    assert count_transitions(np.array([-1.3])) == 0
    assert count_transitions(np.array([-1.3, 1.1, -1.3, 1.1])) == 3
    # any branch of the angle
    assert count_transitions(np.array([-1.3, 1.1, -1.3, 1.1]) + 2 * np.pi) == 3


def test_count_transitions_hysteresis_at_both_boundaries():
    # jitter across φ = 0 that never reaches the other core is no transition
    assert count_transitions(np.array([-1.3, -0.1, 0.1, -0.2, 0.25, -0.1, -1.3])) == 0
    assert count_transitions(np.array([-1.3, -0.1, 0.1, 0.2, 1.0])) == 1
    # the same across ±π
    assert count_transitions(np.array([-2.0, -3.1, 3.1, -3.0, 3.0, -2.5])) == 0
    assert count_transitions(np.array([-2.0, -3.1, 3.1, 2.5])) == 1
    # a frame outside both cores before any commitment changes nothing
    assert count_transitions(np.array([0.1, -0.1, 1.0])) == 0
    # wider cores count the jitter
    assert count_transitions(np.array([-1.3, -0.1, 0.1, -0.2, 0.25, -1.3]), lower=0.0) == 4


def test_count_transitions_on_a_noisy_two_state_series():
    rng = np.random.default_rng(7)
    dwell = rng.integers(5, 40, size=60)
    centres = np.where(np.arange(60) % 2 == 0, -1.3, 1.1)
    series = np.repeat(centres, dwell) + rng.uniform(-0.25, 0.25, dwell.sum())
    assert count_transitions(series) == 59


@pytest.mark.parametrize(
    ("phi", "kwargs"),
    [(np.zeros((3, 2)), {}), (np.array([0.1, np.nan]), {}), (np.zeros(3), {"lower": 1.0, "upper": 0.5})],
)
def test_count_transitions_rejects_bad_input(phi, kwargs):
    with pytest.raises(ConfigError):
        count_transitions(phi, **kwargs)
