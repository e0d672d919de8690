"""Nanoclusters and checkpointed Langevin heating ramps (surrodyn.md.clusters, surrodyn.md.ramp).

Everything runs on ASE's pure-Python EMT with Cu13 and a few hundred MD steps, so no optional
dependency is needed; asap3 is only compared against when it is importable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from ase import units
from ase.io import read
from scipy.spatial.distance import pdist

import surrodyn.md.ramp as ramp_mod
from surrodyn.errors import ConfigError, OutputError
from surrodyn.md.clusters import ClusterSpec, build_cluster
from surrodyn.md.ramp import RampConfig, load_ramp, make_calculator, run_ramp
from surrodyn.protocols import Schedule, constant

GOLDEN = (1 + math.sqrt(5)) / 2

# --------------------------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "size", "n"),
    [
        ("icosahedron", 2, 13),
        ("icosahedron", 3, 55),
        ("icosahedron", 4, 147),
        ("cuboctahedron", 2, 13),
        ("cuboctahedron", 3, 55),
        ("cuboctahedron", 4, 147),
        # octahedral numbers n(2n^2 + 1)/3
        ("octahedron", 2, 6),
        ("octahedron", 3, 19),
        ("octahedron", 4, 44),
        # complete (Ino q = 1, r = 0) decahedra 1, 7, 23, 54, 105 and the 75- and 146-atom Marks decahedra
        ("decahedron", (2, 1, 0), 7),
        ("decahedron", (3, 1, 0), 23),
        ("decahedron", (4, 1, 0), 54),
        ("decahedron", (5, 1, 0), 105),
        ("decahedron", [2, 2, 1], 75),
        ("decahedron", (3, 2, 1), 146),
    ],
)
def test_magic_cluster_sizes(shape, size, n):
    atoms = build_cluster(ClusterSpec(shape, size))
    assert len(atoms) == n
    assert set(atoms.get_chemical_symbols()) == {"Cu"}
    assert not atoms.pbc.any() and not atoms.cell.any()
    np.testing.assert_allclose(atoms.positions.mean(axis=0), 0.0, atol=1e-12)
    assert ClusterSpec(shape, size).label == f"Cu{n}-{shape}"


def _distance_histogram(pos: np.ndarray) -> dict[float, int]:
    values, counts = np.unique(np.round(pdist(pos), 6), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_13_atom_shells_have_the_exact_geometry():
    """Centre-to-surface distance a/√2 for both; surface edges a/√2 (fcc) or 2a/√(2(1+φ²)) (icosahedral)."""
    a = 4.0
    r = a / math.sqrt(2.0)
    cubo = build_cluster(ClusterSpec("cuboctahedron", 2, lattice_constant_A=a)).positions
    ico = build_cluster(ClusterSpec("icosahedron", 2, lattice_constant_A=a)).positions
    for pos in (cubo, ico):
        radial = np.sort(np.linalg.norm(pos, axis=1))
        np.testing.assert_allclose(radial, [0.0] + [r] * 12, atol=1e-9)
    # cuboctahedron: 12 radial + 24 surface bonds at r, then 2nd/3rd/4th fcc shells r√2, r√3, 2r
    assert _distance_histogram(cubo) == {
        round(r, 6): 36,
        round(r * 2**0.5, 6): 12,
        round(r * 3**0.5, 6): 24,
        round(2 * r, 6): 6,
    }
    # icosahedron: 30 edges of length 2r/√(1+φ²) (5 % longer than the 12 radial bonds)
    edge = 2 * r / math.sqrt(1 + GOLDEN**2)
    hist = _distance_histogram(ico)
    assert hist[round(r, 6)] == 12 and hist[round(edge, 6)] == 30
    assert edge / r == pytest.approx(1.0515, abs=1e-4)


def _nn_distance(pos: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pos).query(pos, k=2)
    return float(np.median(d[:, 1]))


def _as_subset(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Index in ``whole`` of each row of ``part`` up to one common translation (exact to 1e-9 Å)."""
    # both clusters are centred on their own mean: find the shift from the first atom's candidates
    for shift in whole - part[0]:
        d = np.linalg.norm(part[:, None, :] + shift - whole[None, :, :], axis=2)
        idx = d.argmin(axis=1)
        if np.all(d[np.arange(len(part)), idx] < 1e-9) and len(set(idx.tolist())) == len(part):
            return idx
    raise AssertionError("not a subset of the magic cluster")


@pytest.mark.parametrize(
    ("shape", "size", "n"),
    [
        ("icosahedron", 3, 54),
        ("icosahedron", 3, 50),
        ("cuboctahedron", 3, 52),
        ("decahedron", (2, 2, 1), 73),
    ],
)
def test_fewer_atoms_remove_low_coordinated_surface_atoms(shape, size, n):
    magic = build_cluster(ClusterSpec(shape, size)).positions
    r_nn = _nn_distance(magic)
    atoms = build_cluster(ClusterSpec(shape, size, n_atoms=n, seed=3))
    assert len(atoms) == n
    assert pdist(atoms.positions).min() >= 0.8 * r_nn
    kept = _as_subset(atoms.positions, magic)
    removed = np.setdiff1d(np.arange(len(magic)), kept)
    assert len(removed) == len(magic) - n
    if shape == "icosahedron" and n == 54:
        # the 12 vertices of Ico55 are its least-coordinated atoms and the farthest from the centre
        radius = np.linalg.norm(magic, axis=1)
        assert radius[removed[0]] == pytest.approx(radius.max(), abs=1e-9)


@pytest.mark.parametrize(
    ("shape", "size", "n"),
    [("icosahedron", 2, 14), ("icosahedron", 2, 16), ("cuboctahedron", 3, 58), ("decahedron", (2, 1, 0), 10)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_more_atoms_add_adatoms_in_hollow_sites(shape, size, n, seed):
    magic = build_cluster(ClusterSpec(shape, size)).positions
    r_nn = _nn_distance(magic)
    atoms = build_cluster(ClusterSpec(shape, size, n_atoms=n, seed=seed))
    assert len(atoms) == n
    pos = atoms.positions
    assert pdist(pos).min() >= 0.8 * r_nn
    kept = _as_subset(pos[: len(magic)], magic)  # the magic atoms stay where they were
    assert sorted(kept.tolist()) == list(range(len(magic)))
    for k in range(len(magic), n):
        d = np.linalg.norm(pos[:k] - pos[k], axis=1)
        # a three-fold hollow: at least three bonds of about one nearest-neighbour distance
        assert np.sum((d > 0.9 * r_nn) & (d < 1.2 * r_nn)) >= 3
        if k > len(magic):
            # the most coordinated site: later adatoms bond to an earlier one, growing one island
            assert np.any(d[len(magic) :] < 1.2 * r_nn)
            assert np.sum(d < 1.2 * r_nn) >= 4


def test_non_magic_clusters_are_reproducible_and_seeded():
    spec = ClusterSpec("icosahedron", 3, n_atoms=54, seed=5)
    np.testing.assert_array_equal(build_cluster(spec).positions, build_cluster(spec).positions)
    np.testing.assert_array_equal(build_cluster(spec).positions, build_cluster(dataclasses.replace(spec)).positions)
    # the 12 vertices are equivalent, so different seeds pick different ones
    shapes = {build_cluster(ClusterSpec("icosahedron", 3, n_atoms=54, seed=s)).positions.tobytes() for s in range(6)}
    assert len(shapes) > 1
    # n_atoms equal to the magic size is the magic cluster
    np.testing.assert_array_equal(
        build_cluster(ClusterSpec("icosahedron", 3, n_atoms=55)).positions,
        build_cluster(ClusterSpec("icosahedron", 3)).positions,
    )
    assert ClusterSpec("icosahedron", 3, n_atoms=56).label == "Cu56-icosahedron"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"shape": "tetrahedron"}, "cluster.shape"),
        ({"size": 0}, "cluster.size"),
        ({"size": 2.5}, "cluster.size"),
        ({"size": True}, "cluster.size"),
        ({"size": (2, 2)}, "cluster.size"),
        ({"shape": "decahedron", "size": [2, 2]}, "cluster.size"),
        ({"shape": "decahedron", "size": [2.5, 2, 0]}, "cluster.size"),
        ({"shape": "decahedron", "size": [0, 1, 0]}, "cluster.size"),
        ({"shape": "decahedron", "size": "abc"}, "cluster.size"),
        ({"element": "Xx"}, "cluster.element"),
        ({"n_atoms": 1}, "cluster.n_atoms"),
        ({"n_atoms": 54.5}, "cluster.n_atoms"),
        ({"n_atoms": "54"}, "cluster.n_atoms"),
        ({"lattice_constant_A": -3.6}, "cluster.lattice_constant_A"),
        ({"lattice_constant_A": "x"}, "cluster.lattice_constant_A"),
        ({"lattice_constant_A": math.nan}, "cluster.lattice_constant_A"),
        ({"seed": -1}, "cluster.seed"),
        ({"seed": 1.5}, "cluster.seed"),
    ],
)
def test_bad_cluster_specs_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=rf"^{name}="):
        ClusterSpec(**kwargs)
    assert issubclass(ConfigError, ValueError)


def test_unbuildable_clusters_raise_config_errors():
    # ASE has no lattice constant for a noble gas: ask for one ...
    with pytest.raises(ConfigError, match=r"cluster\.lattice_constant_A.*He"):
        build_cluster(ClusterSpec(element="He", size=2))
    assert len(build_cluster(ClusterSpec(element="He", size=2, lattice_constant_A=4.2))) == 13
    # ... and a single atom has no hollow site to grow from
    with pytest.raises(ConfigError, match=r"cluster\.n_atoms=3 .*1-atom"):
        build_cluster(ClusterSpec("icosahedron", 1, n_atoms=3))


def test_cluster_from_dict():
    spec = ClusterSpec.from_dict({"shape": "decahedron", "size": [2, 2, 1], "n_atoms": 74, "seed": 2})
    assert spec == ClusterSpec("decahedron", (2, 2, 1), n_atoms=74, seed=2)
    assert ClusterSpec.from_dict({}) == ClusterSpec()
    with pytest.raises(ConfigError, match=r"'sizes' \(did you mean 'size'\?\)"):
        ClusterSpec.from_dict({"shape": "icosahedron", "sizes": 3})
    with pytest.raises(ConfigError, match=r"cluster\.size"):
        ClusterSpec.from_dict({"shape": "icosahedron", "size": [3]})


# --------------------------------------------------------------------------------------------
# ramp: configuration
# --------------------------------------------------------------------------------------------


def _small(**kw) -> RampConfig:
    """Cu13 heated 300 → 900 K over 240 steps of 2 fs: 13 frames in 4 segments (4 + 4 + 4 + 1)."""
    base = {
        "cluster": ClusterSpec("icosahedron", 2),
        "start_K": 300.0,
        "stop_K": 900.0,
        "steps": 240,
        "stride": 20,
        "timestep_fs": 2.0,
        "friction_per_fs": 0.02,
        "equilibration_steps": 40,
        "seed": 7,
        "calculator": "ase-emt",
        "checkpoint_frames": 4,
    }
    return RampConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 250}, "steps"),  # not a multiple of stride
        ({"steps": 240.0}, "steps"),
        ({"stride": -20}, "stride"),
        ({"checkpoint_frames": 0}, "checkpoint_frames"),
        ({"equilibration_steps": -1}, "equilibration_steps"),
        ({"equilibration_steps": 10.5}, "equilibration_steps"),
        ({"seed": -1}, "seed"),
        ({"timestep_fs": 0.0}, "timestep_fs"),
        ({"friction_per_fs": -0.01}, "friction_per_fs"),
        ({"start_K": math.nan}, "start_K"),
        ({"stop_K": math.inf}, "stop_K"),
        ({"stop_K": True}, "stop_K"),
        ({"calculator": "lammps"}, "calculator"),
        ({"temperature_K": constant(-5.0)}, "temperature_K"),
        ({"temperature_K": "hot"}, "temperature_K"),
    ],
)
def test_bad_ramp_configs_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=rf"^{name}="):
        _small(**kwargs)


def test_ramp_config_from_dict_forms():
    pair = RampConfig.from_dict({"temperature_K": [300, 900], "steps": 240, "stride": 20})
    assert (pair.start_K, pair.stop_K) == (300.0, 900.0)
    # the [start, stop] pair, ints or floats, is the default ramp: same digest, same schedule values
    plain = RampConfig(start_K=300, stop_K=900, steps=240, stride=20)
    assert pair.digest() == plain.digest()
    assert pair.temperature_K.values == plain.temperature_K.values
    assert (
        RampConfig.from_dict({"steps": np.int64(240), "stride": np.int64(20)}).digest()
        == RampConfig(steps=240, stride=20).digest()
    )

    const = RampConfig.from_dict({"temperature_K": 600})
    assert const.temperature_K.values == (600.0,) and const.temperature_K.is_constant
    steps = RampConfig.from_dict({"temperature_K": {"times_s": [0, 1e-12], "values": [300, 700]}})
    assert steps.temperature_K == Schedule((0.0, 1e-12), (300.0, 700.0), "temperature_K")
    kind = RampConfig.from_dict(
        {
            "temperature_K": {
                "kind": "ramp",
                "start": 300,
                "stop": 900,
                "t_start_s": 0.0,
                "t_stop_s": 4e-13,
                "n_steps": 3,
            }
        }
    )
    assert kind.temperature_K.values == (400.0, 600.0, 800.0, 900.0)

    with pytest.raises(ConfigError, match=r"'stpes' \(did you mean 'steps'\?\)"):
        RampConfig.from_dict({"stpes": 100})
    with pytest.raises(ConfigError, match=r"'shap' \(did you mean 'shape'\?\)"):
        RampConfig.from_dict({"cluster": {"shap": "icosahedron"}})
    with pytest.raises(ConfigError, match=r"temperature_K\.kind"):
        RampConfig.from_dict({"temperature_K": {"kind": "sawtooth"}})
    with pytest.raises(ConfigError, match=r"^temperature_K="):
        RampConfig.from_dict({"temperature_K": {"times_s": [0, 1e-12], "values": [300, -1]}})


@pytest.mark.parametrize(
    "config",
    [
        _small(),
        _small(temperature_K=constant(600.0)),
        _small(cluster=ClusterSpec("decahedron", (2, 2, 1), element="Ag", n_atoms=74, lattice_constant_A=4.1, seed=3)),
    ],
    ids=["default-ramp", "constant", "decahedron"],
)
def test_ramp_config_round_trips(config, tmp_path):
    d = config.to_dict()
    again = RampConfig.from_dict(json.loads(json.dumps(d)))
    assert again.digest() == config.digest()
    assert again.temperature_K.values == config.temperature_K.values
    assert again.cluster == config.cluster
    path = tmp_path / "ramp.yaml"
    path.write_text(yaml.safe_dump({**d, "out": "somewhere"}))
    assert RampConfig.from_yaml(path).digest() == config.digest()
    # a setting that changes changes the digest
    assert dataclasses.replace(config, seed=config.seed + 1).digest() != config.digest()


def test_ramp_config_from_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        RampConfig.from_yaml(bad)
    bad.write_text("cluster: {shape: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RampConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        RampConfig.from_yaml(tmp_path / "missing.yaml")


def test_replace_rederives_the_default_ramp_but_keeps_a_given_schedule():
    config = _small()
    longer = dataclasses.replace(config, stop_K=1000.0, steps=480)
    # 24 intervals from 300 to 1000 K, valued at their middles, ending at 2 fs * 480
    assert longer.temperature_K.times_s[-1] == pytest.approx(480 * 2e-15, rel=1e-12)
    np.testing.assert_allclose(longer.temperature_K.values[:-1], 300 + 700 * (np.arange(24) + 0.5) / 24, rtol=1e-12)
    given = _small(temperature_K=constant(600.0))
    assert dataclasses.replace(given, stop_K=1000.0).temperature_K.values == (600.0,)


# --------------------------------------------------------------------------------------------
# calculators
# --------------------------------------------------------------------------------------------


def test_make_calculator(monkeypatch):
    from ase.calculators.emt import EMT

    assert type(make_calculator("ase-emt")) is EMT
    assert make_calculator("ase-emt") is not make_calculator("ase-emt")
    with pytest.raises(ConfigError, match=r"^calculator='lammps'"):
        make_calculator("lammps")

    try:
        import asap3
    except ImportError:
        asap3 = None
    if asap3 is None:
        assert type(make_calculator("emt")) is EMT
    else:
        fast = make_calculator("emt")
        assert isinstance(fast, asap3.EMT) and isinstance(make_calculator("asap3-emt"), asap3.EMT)
        # the same EMT parametrisation: Cu13 energies agree to a few meV
        energies = []
        for calc in (fast, EMT()):
            atoms = build_cluster(ClusterSpec("icosahedron", 2))
            atoms.set_cell([30.0] * 3)
            atoms.center()
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
        assert energies[0] == pytest.approx(energies[1], abs=0.02)

    monkeypatch.setitem(sys.modules, "asap3", None)  # as if asap3 were not installed
    assert type(make_calculator("emt")) is EMT
    with pytest.raises(ImportError, match="pip install asap3"):
        make_calculator("asap3-emt")


# --------------------------------------------------------------------------------------------
# ramp: one reference run
# --------------------------------------------------------------------------------------------


class _Spy:
    """Count _Runner.start/advance calls and record the thermostat temperature of each interval."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.starts = 0
        self.thermostat_K: list[float] = []
        start, advance = ramp_mod._Runner.start, ramp_mod._Runner.advance

        def spy_start(runner):
            self.starts += 1
            start(runner)

        def spy_advance(runner, step):
            advance(runner, step)
            self.thermostat_K.append(runner.dyn.temp / units.kB)

        monkeypatch.setattr(ramp_mod._Runner, "start", spy_start)
        monkeypatch.setattr(ramp_mod._Runner, "advance", spy_advance)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted small ramp: (config, output directory, Dataset, thermostat temperatures)."""
    config = _small()
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        spy = _Spy(mp)
        ds = run_ramp(config, out, progress=False)
    assert spy.starts == 1
    return config, out, ds, np.array(spy.thermostat_K)


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_ramp_dataset_layout(reference):
    config, out, ds, _ = reference
    n = config.steps // config.stride + 1
    assert config.n_frames == n == 13
    assert dict(ds.sizes) == {"frame": n, "atom": 13, "xyz": 3}
    np.testing.assert_array_equal(ds.step, np.arange(n) * config.stride)
    np.testing.assert_allclose(ds.time, np.arange(n) * config.stride * config.timestep_fs / 1000.0, rtol=1e-15)
    units_ = {k: ds[k].attrs.get("units") for k in ("positions", "potential_energy", "kinetic_energy", "time")}
    assert units_ == {"positions": "angstrom", "potential_energy": "eV", "kinetic_energy": "eV", "time": "ps"}
    assert ds.temperature.attrs["units"] == ds.target_temperature.attrs["units"] == "K"
    assert list(ds.symbol.values) == ["Cu"] * 13
    assert ds.attrs["cluster"] == "Cu13-icosahedron" and ds.attrs["n_atoms"] == 13 and ds.attrs["seed"] == 7
    assert ds.attrs["calculator"] == "ase.calculators.emt.EMT"
    assert RampConfig.from_dict(json.loads(ds.attrs["config"])).digest() == config.digest()
    # the whole output directory: four segments, the state, the two outputs, and nothing else
    segments = [f"segments/seg_{k:05d}.npz" for k in range(4)]
    assert _files(out) == sorted([*segments, "state.npz", "ramp.nc", "frames.extxyz"])


def test_ramp_physics_of_the_frames(reference):
    _, _, ds, _ = reference
    # instantaneous temperature is the kinetic energy over (3/2) N kB: 3N degrees of freedom, no COM constraint
    np.testing.assert_allclose(ds.temperature, 2 * ds.kinetic_energy / (3 * 13 * units.kB), rtol=1e-12)
    assert np.all(np.isfinite(ds.potential_energy)) and np.all(ds.kinetic_energy > 0)
    # the cluster stays one bound cluster: no atom flies off, none overlap
    for pos in ds.positions.values:
        assert np.linalg.norm(pos - pos.mean(axis=0), axis=1).max() < 4.0
        assert pdist(pos).min() > 1.8


def test_target_temperature_follows_the_linear_ramp(reference):
    config, _, ds, thermostat = reference
    n_int = config.steps // config.stride  # 12 intervals, each at the ramp's value at its middle
    middles = config.start_K + (config.stop_K - config.start_K) * (np.arange(n_int) + 0.5) / n_int
    target = ds.target_temperature.values
    np.testing.assert_allclose(target[1:], middles, rtol=1e-12)
    assert target[0] == target[1] == pytest.approx(325.0)  # frame 0: the equilibration temperature
    assert target[-1] == pytest.approx(875.0)
    assert np.all(np.diff(target[1:]) > 0) and np.all(np.diff(target) >= 0)
    # the thermostat really ran at these temperatures, one interval per frame
    np.testing.assert_allclose(thermostat, target[1:], rtol=1e-12)
    duration_ps = config.steps * config.timestep_fs / 1000.0
    assert ds.attrs["ramp_rate_K_per_ps"] == pytest.approx((config.stop_K - config.start_K) / duration_ps, rel=1e-9)


def test_cooling_ramp_rate_is_negative(tmp_path):
    config = _small(start_K=900.0, stop_K=300.0, steps=80, equilibration_steps=0, checkpoint_frames=100)
    ds = run_ramp(config, tmp_path, progress=False)
    np.testing.assert_allclose(ds.target_temperature[1:], [825.0, 675.0, 525.0, 375.0], rtol=1e-12)
    assert ds.attrs["ramp_rate_K_per_ps"] == pytest.approx(-600.0 / 0.16, rel=1e-9)


def test_outputs_on_disk_match_the_dataset(reference):
    _, out, ds, _ = reference
    for path in (out, out / "ramp.nc"):
        xr.testing.assert_identical(load_ramp(path), ds)
    frames = read(out / "frames.extxyz", index=":")
    assert len(frames) == ds.sizes["frame"]
    for f, atoms in enumerate(frames):
        assert atoms.get_chemical_symbols() == ["Cu"] * 13
        np.testing.assert_allclose(atoms.positions, ds.positions[f], rtol=0, atol=1e-7)  # 8 decimals in the text
        assert atoms.get_potential_energy() == float(ds.potential_energy[f])
        assert atoms.info["frame"] == f
        assert atoms.info["temperature_K"] == float(ds.temperature[f])
        assert atoms.info["target_temperature_K"] == float(ds.target_temperature[f])
    with pytest.raises(FileNotFoundError, match="no ramp"):
        load_ramp(out / "nowhere")


def test_same_seed_is_bit_identical_other_seed_differs(reference, tmp_path):
    config, out, ds, _ = reference
    again = run_ramp(config, tmp_path / "again", progress=False)
    xr.testing.assert_identical(again, ds)
    for name in ds.data_vars:
        np.testing.assert_array_equal(again[name].values, ds[name].values)
    assert (tmp_path / "again" / "frames.extxyz").read_bytes() == (out / "frames.extxyz").read_bytes()
    other = run_ramp(dataclasses.replace(config, seed=8), tmp_path / "other", progress=False)
    np.testing.assert_array_equal(other.target_temperature, ds.target_temperature)
    assert not np.allclose(other.positions, ds.positions, atol=1e-3)
    assert not np.allclose(other.temperature, ds.temperature, rtol=1e-3)


def test_a_calculator_object_overrides_the_name(reference, tmp_path):
    from ase.calculators.emt import EMT

    config, _, ds, _ = reference
    given = run_ramp(dataclasses.replace(config, calculator="emt"), tmp_path, calculator=EMT(), progress=False)
    assert given.attrs["calculator"] == "ase.calculators.emt.EMT"
    np.testing.assert_array_equal(given.positions, ds.positions)


def test_finished_directory_is_returned_without_running_md(reference, monkeypatch):
    config, out, ds, _ = reference
    spy = _Spy(monkeypatch)
    xr.testing.assert_identical(run_ramp(config, out, progress=False), ds)
    assert spy.starts == 0 and spy.thermostat_K == []


# --------------------------------------------------------------------------------------------
# ramp: crash and resume
# --------------------------------------------------------------------------------------------


def _crash_in_save_state(monkeypatch):
    """The process dies after segment 1 is written, before its state: state.npz still says frame 4."""
    calls = []
    save = ramp_mod._Runner.save_state

    def dying(runner, path, next_frame):
        calls.append(next_frame)
        if len(calls) == 2:
            raise RuntimeError("killed")
        save(runner, path, next_frame)

    monkeypatch.setattr(ramp_mod._Runner, "save_state", dying)
    return RuntimeError


def _write_partial(target, data):
    """Half-write ``data`` to a path or an open buffer, as a crash during the write would."""
    if isinstance(target, str | Path):
        Path(target).write_bytes(data if isinstance(data, bytes) else data.encode())
    else:
        target.write(data)


def _savez_dies(monkeypatch, which, exc):
    """np.savez leaves a partial temporary file, then fails, on the matching write."""
    calls = []
    savez = np.savez

    def dying(file, **arrays):
        if which(arrays):
            calls.append(file)
            if len(calls) == 1:
                _write_partial(file, b"PK\x03\x04 truncated")
                raise exc
        savez(file, **arrays)

    monkeypatch.setattr(np, "savez", dying)
    return type(exc)


def _disk_full_writing_state_2(monkeypatch):
    """The second state write fails half-way (disk full): state.npz keeps frame 4."""
    seen = []

    def second_state(arrays):
        if "momenta" in arrays:
            seen.append(1)
        return len(seen) == 2 and "momenta" in arrays

    return _savez_dies(monkeypatch, second_state, OSError(28, "No space left on device"))


def _interrupt_writing_segment_2(monkeypatch):
    """Ctrl-C while segment 2 is written: segments 0, 1 and the state after them (frame 8) exist."""
    return _savez_dies(monkeypatch, lambda a: "first_frame" in a and int(a["first_frame"]) == 8, KeyboardInterrupt())


def _crash_writing_extxyz(monkeypatch):
    """All MD is done; writing frames.extxyz fails half-way."""
    import ase.io

    def dying(filename, images, **kw):
        _write_partial(filename, "13\npartial\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ase.io, "write", dying)
    return OSError


@pytest.mark.parametrize(
    ("crash", "segments_left", "next_frame"),
    [
        (_crash_in_save_state, 2, 4),
        (_disk_full_writing_state_2, 2, 4),
        (_interrupt_writing_segment_2, 2, 8),
        (_crash_writing_extxyz, 4, 13),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else str(v),
)
def test_resume_after_a_crash_is_bit_identical(reference, tmp_path, monkeypatch, crash, segments_left, next_frame):
    config, ref_out, ref, _ = reference
    out = tmp_path / "run"
    with monkeypatch.context() as mp:
        error = crash(mp)
        with pytest.raises(error):
            run_ramp(config, out, progress=False)

    # what was written is complete and exact; no partial or temporary file is left behind
    segments = [f"segments/seg_{k:05d}.npz" for k in range(segments_left)]
    finished = ["ramp.nc"] if next_frame == config.n_frames else []
    assert _files(out) == sorted([*segments, "state.npz", *finished])
    per = config.checkpoint_frames
    for k in range(segments_left):
        with np.load(out / segments[k]) as seg:
            assert int(seg["first_frame"]) == k * per
            sl = slice(k * per, (k + 1) * per)
            np.testing.assert_array_equal(seg["positions"], ref.positions.values[sl])
            np.testing.assert_array_equal(seg["potential_energy"], ref.potential_energy.values[sl])
            np.testing.assert_array_equal(seg["temperature"], ref.temperature.values[sl])
    with np.load(out / "state.npz") as state:
        assert int(state["next_frame"]) == next_frame
        assert str(state["digest"]) == config.digest()

    # other settings may not resume this directory, and trying changes nothing
    before = {name: (out / name).read_bytes() for name in _files(out)}
    with pytest.raises(ConfigError, match="other settings"):
        run_ramp(dataclasses.replace(config, stop_K=1000.0), out, progress=False)
    assert {name: (out / name).read_bytes() for name in _files(out)} == before

    spy = _Spy(monkeypatch)
    ds = run_ramp(config, out, progress=False)
    # it resumed (no new equilibration, only the missing intervals) and gave the uninterrupted run
    assert spy.starts == 0
    assert len(spy.thermostat_K) == config.n_frames - next_frame
    xr.testing.assert_identical(ds, ref)
    for name in ref.data_vars:
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    xr.testing.assert_identical(load_ramp(out), ref)
    assert (out / "frames.extxyz").read_bytes() == (ref_out / "frames.extxyz").read_bytes()
    assert _files(out) == _files(ref_out)


def test_resuming_a_finished_run_with_other_settings_fails(reference):
    config, out, _, _ = reference
    with pytest.raises(ConfigError, match="other settings"):
        run_ramp(dataclasses.replace(config, seed=8), out, progress=False)


def test_out_must_be_a_directory(tmp_path):
    file = tmp_path / "ramp.nc"
    file.write_text("not a directory")
    with pytest.raises(OutputError, match="is a file"):
        run_ramp(_small(), file, progress=False)
    with pytest.raises(OutputError, match="cannot create"):
        run_ramp(_small(), file / "sub", progress=False)
    assert issubclass(OutputError, OSError)
    assert file.read_text() == "not a directory"


# --------------------------------------------------------------------------------------------
# thermostat
# --------------------------------------------------------------------------------------------


def test_langevin_holds_a_constant_temperature(tmp_path):
    r"""Mean and spread of the instantaneous temperature of Cu13 at 600 K.

    With the centre of mass free (``fixcm=False``) the kinetic energy of N atoms is canonical with
    3N quadratic degrees of freedom, :math:`K \sim \Gamma(3N/2, k_B T)`, so the instantaneous
    temperature has mean T and standard deviation :math:`\sigma = T\sqrt{2/(3N)}` (136 K here).
    Its autocorrelation decays on :math:`\tau \approx 1/(2\gamma)` = 10 fs under friction γ; a
    200,000-step run gave an integrated time of 11 fs, and τ = 12 fs is used. For n frames Δ = 20 fs
    apart with :math:`\rho_k = e^{-k\Delta/\tau}` the variance of the mean is
    :math:`\sigma^2 \coth(\Delta/2\tau)/n`, i.e. ``n_eff = n / coth`` ≈ 340 independent samples and a
    standard error ≈ 7.4 K. Mean within 4 standard errors of T (5 %); the sample variance within 4
    of its standard errors, :math:`\sigma^2\sqrt{(2 + 6/k)/n_\mathrm{eff}}` with k = 3N/2 (Gamma's
    excess kurtosis 6/k). Over 100 seeds (asap3's EMT, same settings) the two z-scores had standard
    deviations 0.96 and 0.95, so these errors are neither under- nor overestimated. The
    integrator's own bias at 2 fs is ≈ 0.2 % (1 K); momenta 3 % too small (6 % in temperature) fail.
    """
    temperature, n_atoms, friction, dt_fs, stride = 600.0, 13, 0.05, 2.0, 10
    config = RampConfig(
        cluster=ClusterSpec("icosahedron", 2),
        temperature_K=constant(temperature),
        steps=5000,
        stride=stride,
        timestep_fs=dt_fs,
        friction_per_fs=friction,
        equilibration_steps=500,
        seed=0,
        calculator="ase-emt",
        checkpoint_frames=1000,
    )
    ds = run_ramp(config, tmp_path, progress=False)
    np.testing.assert_array_equal(ds.target_temperature, temperature)
    t_inst = ds.temperature.values
    n = len(t_inst)
    sigma = temperature * math.sqrt(2.0 / (3 * n_atoms))
    tau_fs, delta_fs = 12.0, stride * dt_fs
    n_eff = n / (1.0 / math.tanh(delta_fs / (2 * tau_fs)))
    se_mean = sigma / math.sqrt(n_eff)
    assert 7.0 < se_mean < 8.0
    assert abs(t_inst.mean() - temperature) < 4 * se_mean
    k = 3 * n_atoms / 2
    se_var = sigma**2 * math.sqrt((2 + 6 / k) / n_eff)
    assert abs(t_inst.var(ddof=1) - sigma**2) < 4 * se_var
