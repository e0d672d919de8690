"""``surrodyn potential``: train, evaluate and active-learn end to end on rattled EMT Cu13 clusters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("ase")

from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cluster import Icosahedron
from ase.io import write

from surrodyn.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_DESCRIPTOR = {"n_radial": 4, "zetas": [1], "lambdas": [-1, 1], "angular_eta_per_A2": [0.01]}
TINY_TRAIN = {"hidden": [8], "max_epochs": 5, "batch_size": 4}


def rattled_cu13(n: int, seed: int, labelled: bool = True) -> list:
    """``n`` Cu13 icosahedra rattled by 0.1 Å (Gaussian), labelled with ASE's EMT; no cell."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = Icosahedron("Cu", 2)
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        if labelled:
            atoms.calc = EMT()
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cu13")
    for name, n, seed in (("train", 10, 1), ("test", 4, 2), ("pool", 12, 3)):
        write(root / f"{name}.extxyz", rattled_cu13(n, seed), format="extxyz")
    return root


def write_yaml(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run(*argv: str) -> int:
    return main(["potential", *map(str, argv)])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A `potential train` run: config next to the data (relative paths), `out` from the YAML."""
    work = tmp_path_factory.mktemp("work")
    config = {
        "data": ["train.extxyz"],
        "test": "test.extxyz",
        "descriptor": TINY_DESCRIPTOR,
        "train": TINY_TRAIN,
        "out": str(work / "model"),
    }
    assert run("train", write_yaml(data / "train.yaml", config), "--no-progress") == 0
    return work / "model"


def test_train_writes_potential_metrics_and_figures(trained):
    for name in ("potential/model.json", "potential/weights.pt", "history.json", "metrics.json"):
        assert (trained / name).is_file(), name
    for name in ("training.png", "parity.png"):
        assert (trained / name).read_bytes()[:8] == PNG_MAGIC
    history = json.loads((trained / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2, 3, 4]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["n_train_structures"] == 10 and metrics["n_test_structures"] == 4
    for split in ("train", "test"):
        values = metrics[split]
        assert set(values) == {"energy_rmse_meV_per_atom", "force_rmse_meV_per_A", "force_mae_meV_per_A"}
        assert all(np.isfinite(v) and v > 0 for v in values.values())
        assert values["force_mae_meV_per_A"] <= values["force_rmse_meV_per_A"]
    refit = metrics["output_refit"]  # on by default; its training-loss record is in metrics.json
    assert refit["loss_after"] <= refit["loss_before"]
    model = json.loads((trained / "potential/model.json").read_text())
    assert model["metadata"]["metrics"]["test"] == metrics["test"]
    assert model["descriptor"]["radial"]["rs_A"] and len(model["descriptor"]["radial"]["rs_A"]) == 4


def test_train_with_the_ani_grid(data, tmp_path):
    ani = {"grid": "ani", "n_radial": 4, "n_angular_shifts": 2, "n_sections": 3, "angular_cutoff_A": 4.0}
    config = {"data": ["train.extxyz"], "descriptor": ani, "train": TINY_TRAIN, "out": str(tmp_path / "m")}
    assert run("train", write_yaml(data / "train_ani.yaml", config), "--no-progress") == 0
    model = json.loads((tmp_path / "m/potential/model.json").read_text())
    angular = model["descriptor"]["angular"]
    assert angular["kind"] == "ANI" and len(angular["theta_s"]) == 2 * 3
    assert len(model["descriptor"]["radial"]["rs_A"]) == 4


def test_evaluate_reproduces_the_test_metrics(trained, data, tmp_path, capsys):
    capsys.readouterr()
    # the train output directory is accepted for its potential/ sub-directory
    assert run("evaluate", trained, data / "test.extxyz", "--out", tmp_path / "eval") == 0
    out = capsys.readouterr().out
    expected = json.loads((trained / "metrics.json").read_text())["test"]
    got = json.loads((tmp_path / "eval/metrics.json").read_text())
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6)
    assert f"{expected['energy_rmse_meV_per_atom']:.2f} meV/atom" in out
    assert (tmp_path / "eval/parity.png").read_bytes()[:8] == PNG_MAGIC


def test_evaluate_group_by_breaks_the_errors_down_and_recombines(trained, data, tmp_path, capsys):
    frames = rattled_cu13(6, seed=5)
    for k, atoms in enumerate(frames):
        atoms.info["condition"] = "hot" if k % 3 == 0 else "cold"
    write(tmp_path / "grouped.extxyz", frames, format="extxyz")
    capsys.readouterr()
    args = ("--group-by", "condition", "--out")
    assert run("evaluate", trained, tmp_path / "grouped.extxyz", *args, tmp_path / "e") == 0
    out = capsys.readouterr().out
    got = json.loads((tmp_path / "e/metrics.json").read_text())
    groups = got["by_group"]
    assert got["group_by"] == "condition" and sorted(groups) == ["cold", "hot"]
    assert [groups[g]["n_structures"] for g in ("cold", "hot")] == [4, 2]
    # the groups partition the structures (13 atoms each), so their mean squares recombine exactly
    for key in ("energy_rmse_meV_per_atom", "force_rmse_meV_per_A"):
        total = sum(m["n_structures"] * m[key] ** 2 for m in groups.values()) / 6
        assert np.sqrt(total) == pytest.approx(got[key], rel=1e-9)
    assert all(abs(m["energy_bias_meV_per_atom"]) <= m["energy_rmse_meV_per_atom"] + 1e-12 for m in groups.values())
    assert "hot" in out and "E bias" in out
    # a frame without the key is named, and nothing is written
    frames[2].info.pop("condition")
    write(tmp_path / "partial.extxyz", frames, format="extxyz")
    assert run("evaluate", trained, tmp_path / "partial.extxyz", *args, tmp_path / "p") == 2
    err = capsys.readouterr().err
    assert "1 of 6 frames lack" in err and "frame 2" in err
    assert not (tmp_path / "p").exists()


def al_config(data: Path, out: Path, strategies: list[str]) -> dict:
    return {
        "pool": str(data / "pool.extxyz"),
        "test": str(data / "test.extxyz"),
        "reference": "ase-emt",  # the labels of the test file come from ASE's EMT too
        "strategies": strategies,
        "seeds": [0],
        "descriptor": TINY_DESCRIPTOR,
        "active_learning": {
            "n_initial": 4,
            "batch_size": 2,
            "n_rounds": 1,
            "committee_size": 2,
            "autoencoder": {"hidden": 8, "latent": 2, "epochs": 20},
            "train": TINY_TRAIN,
        },
        "out": str(out),
    }


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def test_active_learn_runs_every_strategy_resumes_and_continues(data, tmp_path, capsys, monkeypatch):
    import surrodyn.cli.potential as cli

    full = tmp_path / "full"
    cfg = write_yaml(tmp_path / "al.yaml", al_config(data, full, ["autoencoder", "random", "committee"]))
    assert run("active-learn", cfg) == 0
    out = capsys.readouterr().out
    assert out.count(" round ") == 6  # 3 strategies x (round 0 + 1 query round)
    summary = json.loads((full / "summary.json").read_text())["strategies"]
    assert list(summary) == ["autoencoder", "random", "committee"]
    for entry in summary.values():
        assert entry["n_labels"] == [4, 6]
        assert all(np.isfinite(entry["force_rmse_meV_per_A"]["mean"])) and entry["cost_s"] > 0
        assert entry["energy_rmse_meV_per_atom"]["n_seeds"] == [1, 1]
    for name in ("learning_curves_energy.png", "learning_curves_forces.png"):
        assert (full / name).read_bytes()[:8] == PNG_MAGIC
    first = {s: state(full / s / "seed0") for s in summary}
    assert all(len(st["rounds"]) == 2 for st in first.values())
    assert len(list((full / "random/seed0/labels").glob("*.npz"))) == 6

    # a finished run re-run in place: nothing is trained or labelled again
    assert run("active-learn", cfg) == 0
    out = capsys.readouterr().out
    assert " round " not in out and out.count("2 round(s) resumed") == 3
    assert {s: state(full / s / "seed0") for s in summary} == first

    # interrupted after round 0 (Ctrl-C while printing its line), then continued
    part = tmp_path / "part"
    cfg = write_yaml(tmp_path / "al_part.yaml", al_config(data, part, ["autoencoder"]))
    line = cli._round_line

    def interrupt(*args):
        print(line(*args))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_round_line", interrupt)
    assert run("active-learn", cfg) == 130
    assert len(state(part / "autoencoder/seed0")["rounds"]) == 1
    monkeypatch.setattr(cli, "_round_line", line)
    assert run("active-learn", cfg) == 0
    assert "1 round(s) resumed" in capsys.readouterr().out
    resumed = state(part / "autoencoder/seed0")["rounds"]
    assert len(resumed) == 2
    assert resumed[1]["labels_computed"] == 2  # only the queried batch was paid for
    for a, b in zip(resumed, first["autoencoder"]["rounds"], strict=True):  # same choices as uninterrupted
        assert (a["labelled"], a["queried"]) == (b["labelled"], b["queried"])
        assert a["metrics"] == pytest.approx(b["metrics"])


@pytest.mark.parametrize(
    ("command", "change", "message"),
    [
        ("train", {"epochs": 3}, r"unknown key\(s\) in the training config: 'epochs'.*Allowed: data, test"),
        ("train", {"train": {"max_epoch": 3}}, r"'max_epoch' \(did you mean 'max_epochs'\?\)"),
        ("train", {"train": {"max_epochs": 0}}, r"max_epochs=0 is not allowed"),
        ("train", {"train": {"hidden": [0]}}, r"hidden=\[0\] is not allowed"),
        ("train", {"descriptor": {"elements": ["Cu"]}}, r"descriptor.*the elements come from the data"),
        ("train", {"descriptor": {"n_radial": 0}}, r"n_radial=0 is not allowed"),
        ("train", {"descriptor": {"grid": "soap"}}, r"descriptor.grid='soap' is not allowed.*'standard', 'ani'"),
        ("train", {"descriptor": {"grid": "ani", "zetas": [1]}}, r"'ani'.*'zetas' \(did you mean 'zeta'\?\)"),
        ("train", {"descriptor": {"grid": "ani", "n_sections": 0}}, r"n_sections=0 is not allowed"),
        ("train", {"data": "missing.extxyz"}, r"data=.*missing.extxyz.*existing extended-XYZ file"),
        ("train", {"data": None}, r"data=None is not allowed"),
        ("active-learn", {"strategies": ["greedy"]}, r"strategies='greedy' is not allowed.*autoencoder"),
        ("active-learn", {"seeds": [0, 0]}, r"seeds=\[0, 0\] is not allowed"),
        ("active-learn", {"seeds": ["a"]}, r"seeds=\['a'\] is not allowed"),
        ("active-learn", {"strategies": [["random"]]}, r"strategies=\[\['random'\]\] is not allowed"),
        ("active-learn", {"reference": "dft"}, r"reference='dft' is not allowed"),
        ("active-learn", {"active_learning": {"strategy": "random"}}, r"'strategy'.*Allowed: n_initial"),
        ("active-learn", {"active_learning": {"autoencoder": {"latnet": 2}}}, r"did you mean 'latent'"),
        ("active-learn", {"active_learning": {"n_initial": 10, "n_rounds": 2}}, r"pool=.*n_labels=14"),
    ],
)
def test_bad_configs_exit_2_with_a_clear_message(data, tmp_path, capsys, command, change, message):
    import re

    if command == "train":
        config = {"data": "train.extxyz", "train": TINY_TRAIN}
        path = data / f"bad_{tmp_path.name}.yaml"
    else:
        config = al_config(data, tmp_path / "out", ["random"])
        path = tmp_path / "bad.yaml"
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    assert run(command, write_yaml(path, config)) == 2
    err = capsys.readouterr().err
    assert re.search(message, err, flags=re.S), err


def test_train_requires_data(tmp_path, capsys):
    assert run("train", write_yaml(tmp_path / "c.yaml", {"train": TINY_TRAIN})) == 2
    assert "needs 'data'" in capsys.readouterr().err


def test_example_configs_parse():
    from surrodyn.cli.potential import ActiveLearningJob, TrainJob

    job = TrainJob.from_yaml(ROOT / "examples/potential_train_smoke.yaml")
    assert job.data == (str(ROOT / "examples/data/hdnnp_smoke/pool_balanced.extxyz"),)
    al = ActiveLearningJob.from_yaml(ROOT / "examples/potential_al_smoke.yaml")
    assert al.strategies == ("autoencoder", "random", "committee")
    assert al.active_learning.n_labels <= 57  # the smoke pool of benchmarks/hdnnp_data.py


@pytest.mark.slow
def test_examples_run_on_the_benchmark_smoke_data(tmp_path):
    """The two example configs, on `benchmarks/hdnnp_data.py --smoke` data (about a minute)."""
    data = tmp_path / "data/hdnnp_smoke"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/hdnnp_data.py"), "--smoke", "--out", str(data)], check=True)
    for name, command in (("potential_train_smoke.yaml", "train"), ("potential_al_smoke.yaml", "active-learn")):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
        assert run(command, tmp_path / name, "--out", tmp_path / name.removesuffix(".yaml")) == 0
    assert (tmp_path / "potential_al_smoke/summary.json").is_file()
