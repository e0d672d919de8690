"""Active learning: label cache, queries, and a loop that resumes without re-paying for labels."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron

from surrodyn.errors import ConfigError
from surrodyn.potentials import (
    ActiveLearningConfig,
    AutoencoderConfig,
    AutoencoderQuery,
    FingerprintSet,
    LabelCache,
    QueryContext,
    SymmetryFunctions,
    TrainConfig,
    active_learn,
    select,
)

SF = SymmetryFunctions.standard(["Cu"], n_radial=6, zetas=(1.0, 4.0))
TINY = TrainConfig(hidden=(8,), max_epochs=15, patience_epochs=15)


class CountingEMT(EMT):
    """ASE's EMT that counts its calculations (the price of a reference label)."""

    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        super().calculate(*args, **kwargs)


def clusters(n: int, seed: int, sigma: float = 0.08) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = Icosahedron("Cu", 2)
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        out.append(atoms)
    return out


def test_label_cache_pays_once_and_survives_a_new_session(tmp_path):
    CountingEMT.calls = 0
    frames = clusters(3, seed=0)
    cache = LabelCache(tmp_path, CountingEMT)
    energies, forces = cache.label(frames)
    again = LabelCache(tmp_path, CountingEMT).label(frames)  # a later session reads the files
    assert CountingEMT.calls == 3 and cache.n_computed == 3
    assert again[0] == energies
    work = frames[1].copy()
    work.calc = EMT()
    assert energies[1] == pytest.approx(work.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(forces[1], work.get_forces(), atol=1e-12)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npz"] * 3  # no temp files left


def test_label_cache_pads_a_cell_for_calculators_that_need_one(tmp_path):
    asap3 = pytest.importorskip("asap3")
    (atoms,) = clusters(1, seed=1)
    assert atoms.cell.rank == 0
    energy, forces = LabelCache(tmp_path, asap3.EMT).get(atoms)  # asap3 alone refuses a cell-less cluster
    boxed = atoms.copy()
    boxed.center(vacuum=20.0)
    boxed.calc = asap3.EMT()
    assert energy == pytest.approx(boxed.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(forces, boxed.get_forces(), atol=1e-9)


def test_autoencoder_scores_unfamiliar_environments_higher():
    familiar = clusters(8, seed=2, sigma=0.05)
    data = FingerprintSet(familiar, SF, labelled=False)
    pool = FingerprintSet(clusters(6, seed=3, sigma=0.05) + clusters(6, seed=4, sigma=0.35), SF, labelled=False)
    ae = AutoencoderQuery(AutoencoderConfig(epochs=300)).fit_autoencoder(data, seed=0)
    score = np.array([ae.errors(it.G, it.species).mean().item() for it in pool.items])
    assert score[6:].min() > score[:6].max()


def _context(labelled_atoms, candidate_atoms, seed=0) -> QueryContext:
    n_lab = len(labelled_atoms)
    pool = FingerprintSet(labelled_atoms + candidate_atoms, SF, labelled=False)
    lab = np.arange(n_lab)
    energies = [0.0] * n_lab
    forces = [np.zeros((len(a), 3)) for a in labelled_atoms]
    train = pool.labelled_subset(lab, energies, forces)
    return QueryContext(pool, lab, np.arange(n_lab, len(pool)), train, None, TINY, seed)


def test_relative_score_is_zero_for_a_labelled_environment_and_keeps_novel_ones_on_top():
    common = clusters(8, seed=2, sigma=0.05)
    rare = clusters(1, seed=8, sigma=0.3)  # one hot cluster among cold ones: reconstructed worse
    fresh = clusters(1, seed=10, sigma=0.05)  # unlabelled, but like the common ones
    novel = clusters(2, seed=9, sigma=0.5)
    ctx = _context(common + rare, rare + fresh + novel)  # candidate 0 repeats the labelled rare cluster
    cfg = AutoencoderConfig(epochs=300)
    raw = AutoencoderQuery(dataclasses.replace(cfg, relative=False)).scores(ctx)
    rel = AutoencoderQuery(cfg).scores(ctx)
    assert raw[0] > raw[1]  # the raw error rates a labelled structure above a new familiar one
    assert rel[0] == 0.0  # its nearest labelled atoms are its own
    assert np.all(rel <= raw + 1e-12) and rel[2:].min() > max(rel[0], rel[1])
    worst = AutoencoderQuery(dataclasses.replace(cfg, score="max")).scores(ctx)
    assert worst[0] == 0.0 and np.all(worst >= rel)


def test_select_spreads_a_batch_over_clusters_of_structures():
    rng = np.random.default_rng(0)
    feats = np.vstack([rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (10, 2))])
    scores = np.r_[np.linspace(2.0, 1.0, 10), np.linspace(0.9, 0.5, 10)]  # cluster A scores all higher
    assert set(select(scores, 2)) == {0, 1}
    spread = select(scores, 2, features=feats, seed=0, pool_factor=10)
    assert {int(k) // 10 for k in spread} == {0, 1} and 0 in spread


def _config(strategy: str = "autoencoder", **kw) -> ActiveLearningConfig:
    base = {"n_initial": 4, "batch_size": 3, "n_rounds": 2, "committee_size": 2, "train": TINY}
    return ActiveLearningConfig(strategy=strategy, autoencoder=AutoencoderConfig(epochs=50), **{**base, **kw})


@pytest.fixture(scope="module")
def pool_and_test():
    pool = clusters(10, seed=5, sigma=0.05) + clusters(10, seed=6, sigma=0.2)
    return pool, clusters(5, seed=7, sigma=0.15)


@pytest.mark.parametrize("strategy", ["autoencoder", "random", "committee"])
def test_loop_grows_the_labelled_set_and_records_its_curve(tmp_path, pool_and_test, strategy):
    pool, test = pool_and_test
    CountingEMT.calls = 0
    res = active_learn(pool, CountingEMT, _config(strategy), tmp_path, test=test, descriptor=SF)
    n, err = res.curve("force_rmse_meV_per_A")
    assert list(n) == [4, 7, 10] and np.all(np.isfinite(err))
    final = res.rounds[-1]["labelled"]
    assert len(set(final)) == 10 and set(res.rounds[0]["labelled"]) < set(final)
    assert CountingEMT.calls == 10 + len(test)  # every label once, the test set's included
    assert (tmp_path / "potential" / "model.json").is_file()


def test_interrupted_loop_resumes_to_the_same_choices_without_relabelling(tmp_path, pool_and_test):
    pool, test = pool_and_test
    whole = active_learn(pool, CountingEMT, _config(), tmp_path / "whole", test=test, descriptor=SF)

    class Stop(Exception):
        pass

    def crash(record):
        if record["round"] == 0:
            raise Stop

    with pytest.raises(Stop):
        active_learn(pool, CountingEMT, _config(), tmp_path / "cut", test=test, descriptor=SF, on_round=crash)
    CountingEMT.calls = 0
    resumed = active_learn(pool, CountingEMT, _config(), tmp_path / "cut", test=test, descriptor=SF)
    assert CountingEMT.calls == 3 + 3  # the two queried batches; round 0's labels and the test set are cached
    for a, b in zip(resumed.rounds, whole.rounds, strict=True):
        assert (a["labelled"], a["queried"]) == (b["labelled"], b["queried"])
        assert a["metrics"] == pytest.approx(b["metrics"])
    more = dataclasses.replace(_config(), n_rounds=3)  # a finished run can be extended in place
    extended = active_learn(pool, CountingEMT, more, tmp_path / "cut", test=test, descriptor=SF)
    assert [r["n_labels"] for r in extended.rounds] == [4, 7, 10, 13]
    assert extended.rounds[2]["labelled"] == whole.rounds[2]["labelled"]


def test_a_directory_of_another_run_is_refused(tmp_path, pool_and_test):
    pool, _ = pool_and_test
    active_learn(pool, CountingEMT, _config("random"), tmp_path, descriptor=SF)
    assert len(json.loads((tmp_path / "state.json").read_text())["rounds"]) == 3
    with pytest.raises(ConfigError, match="another digest"):
        active_learn(pool, CountingEMT, _config("random", seed=1), tmp_path, descriptor=SF)
    with pytest.raises(ConfigError, match="another pool"):
        active_learn(pool[::-1], CountingEMT, _config("random"), tmp_path, descriptor=SF)


def test_bad_settings_are_refused(pool_and_test):
    pool, _ = pool_and_test
    with pytest.raises(ConfigError, match="strategy"):
        ActiveLearningConfig(strategy="uncertainty")
    with pytest.raises(ConfigError, match="pool"):
        active_learn(pool[:5], CountingEMT, ActiveLearningConfig(), "unused")


def test_diversity_pool_is_validated_and_keeps_the_digest_of_older_runs():
    with pytest.raises(ConfigError, match="diversity_pool"):
        ActiveLearningConfig(diversity_pool=0)
    old = ActiveLearningConfig(diversity_pool=5)
    spec = {k: v for k, v in old.to_dict().items() if k not in ("n_rounds", "diversity_pool")}
    # the digest of runs made when the pool was fixed at 5, before the option existed
    assert old.digest() == hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    assert ActiveLearningConfig().digest() != old.digest()  # the default (20) chooses differently
    # random never clusters, so the pool does not change its choices or its digest
    assert ActiveLearningConfig("random").digest() == ActiveLearningConfig("random", diversity_pool=5).digest()


def test_the_loop_hands_its_diversity_pool_to_the_batch_selection(tmp_path, pool_and_test, monkeypatch):
    import surrodyn.potentials.active as active

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["pool_factor"])
        return select(*args, **kwargs)

    monkeypatch.setattr(active, "select", spy)
    pool, _ = pool_and_test
    active_learn(pool, CountingEMT, _config(diversity_pool=3, n_rounds=1), tmp_path, descriptor=SF)
    assert seen == [3]
