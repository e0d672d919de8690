"""Trajectory featurisation: geometry against independent formulas, streaming, periodic images, COLVAR."""

from __future__ import annotations

import MDAnalysis as mda
import numpy as np
import pytest

from surrodyn.cv.features import (
    Angles,
    CentreOfMassDistance,
    Contacts,
    Dihedrals,
    Distances,
    FeatureStream,
    Featurizer,
    read_colvar,
)
from surrodyn.errors import ConfigError

NAMES = ["C1", "H1", "C2", "N3", "O4", "H2", "C5"]
MASSES = [12.011, 1.008, 12.011, 14.007, 15.999, 1.008, 12.011]


def _universe(positions_nm: np.ndarray, box_nm: float | None = None):
    n_frames, n_atoms, _ = positions_nm.shape
    u = mda.Universe.empty(n_atoms, trajectory=True)
    u.add_TopologyAttr("names", NAMES[:n_atoms])
    u.add_TopologyAttr("masses", MASSES[:n_atoms])
    u.add_TopologyAttr("resnames", ["ALA"])
    u.add_TopologyAttr("resids", [1])
    from MDAnalysis.coordinates.memory import MemoryReader

    dims = None if box_nm is None else np.tile([10 * box_nm] * 3 + [90.0] * 3, (n_frames, 1))
    u.load_new(positions_nm * 10.0, format=MemoryReader, dimensions=dims)
    return u


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 1.5, (23, 7, 3))


@pytest.fixture(scope="module")
def files(frames, tmp_path_factory):
    d = tmp_path_factory.mktemp("traj")
    u = _universe(frames)
    u.atoms.write(d / "top.pdb")
    with mda.Writer(str(d / "traj.dcd"), n_atoms=7) as w:
        for _ in u.trajectory:
            w.write(u.atoms)
    return d / "top.pdb", d / "traj.dcd"


def test_distances_angles_com_match_direct_formulas(frames):
    u = _universe(frames)
    f = Featurizer(u, [Distances("not name H*"), Angles(((0, 2, 3),)), CentreOfMassDistance("index 0 1", "index 4 5")])
    out = f.compute(frames)
    heavy = [0, 2, 3, 4, 6]
    assert f.n_features == 10 + 1 + 1 and out.shape == (23, 12)
    k = 0
    for a in range(5):
        for b in range(a + 1, 5):
            np.testing.assert_allclose(out[:, k], np.linalg.norm(frames[:, heavy[b]] - frames[:, heavy[a]], axis=-1))
            assert f.names[k] == f"dist {NAMES[heavy[a]]}{heavy[a]}-{NAMES[heavy[b]]}{heavy[b]}"
            k += 1
    u1, v1 = frames[:, 0] - frames[:, 2], frames[:, 3] - frames[:, 2]
    cos = np.sum(u1 * v1, -1) / np.linalg.norm(u1, axis=-1) / np.linalg.norm(v1, axis=-1)
    np.testing.assert_allclose(out[:, 10], np.arccos(cos))
    m = np.array(MASSES)
    com_a = (frames[:, [0, 1]] * m[[0, 1], None]).sum(1) / m[[0, 1]].sum()
    com_b = (frames[:, [4, 5]] * m[[4, 5], None]).sum(1) / m[[4, 5]].sum()
    np.testing.assert_allclose(out[:, 11], np.linalg.norm(com_b - com_a, axis=-1))


def test_dihedrals_sign_convention_and_mdanalysis_agree(frames):
    from MDAnalysis.lib.distances import calc_dihedrals

    # a hand-built quadruple at +60 degrees (IUPAC sign, as MDAnalysis and PLUMED use it)
    t = np.deg2rad(60.0)
    quad = np.array([[[1, 0, 0], [0, 0, 0], [0, 0, 1], [np.cos(t), np.sin(t), 1]]], dtype=float)
    full = np.zeros((1, 7, 3))
    full[0, :4] = quad[0]
    full[0, 4:] = [[3, 3, 3], [4, 4, 4], [5, 5, 5]]
    f = Featurizer(_universe(full), [Dihedrals(((0, 1, 2, 3),), labels=("phi",), sincos=False)])
    assert f.names == ["phi"]
    assert f.compute(full)[0, 0] == pytest.approx(t, abs=1e-12)
    ref = calc_dihedrals(*(frames[:, i].astype(np.float64) for i in (0, 2, 3, 4)))
    g = Featurizer(_universe(frames), [Dihedrals(((0, 2, 3, 4),), labels=("psi",))])
    out = g.compute(frames)
    assert g.names == ["sin psi", "cos psi"]
    # MDAnalysis computes in single precision
    np.testing.assert_allclose(out[:, 0], np.sin(ref), atol=2e-6)
    np.testing.assert_allclose(out[:, 1], np.cos(ref), atol=2e-6)


def test_contacts_switching_function_limits():
    pos = np.zeros((3, 7, 3))
    pos[:, :, 0] = np.arange(7)[None] * 10.0  # far apart
    pos[0, 1] = pos[0, 0] + [0.5, 0, 0]  # exactly r0
    pos[1, 1] = pos[1, 0] + [1e-4, 0, 0]  # touching
    u = _universe(pos)
    c = Featurizer(u, [Contacts("index 0", "index 1", r0=0.5, n=6, m=12)]).compute(pos)[:, 0]
    assert c[0] == pytest.approx(0.5) and c[1] == pytest.approx(1.0)
    assert c[2] == pytest.approx((1 - 20.0**6) / (1 - 20.0**12), rel=1e-9)  # r = 20 r0
    tot = Featurizer(u, [Contacts("index 0", "index 1 2 3", r0=0.5, total=True)])
    assert tot.n_features == 1 and tot.compute(pos)[0, 0] == pytest.approx(0.5, abs=1e-9)


def test_minimum_image_in_a_periodic_box():
    pos = np.full((1, 7, 3), 1.0)
    pos[0, :, 0] = [0.05, 3.0, 1.95, 1.0, 1.5, 2.5, 0.5]
    u = _universe(pos, box_nm=2.0)
    f = Featurizer(u, [Distances("index 0 2")])
    assert f.compute(pos)[0, 0] == pytest.approx(1.9)
    assert f.compute(pos, box=np.array([[2.0, 2.0, 2.0]]))[0, 0] == pytest.approx(0.1)


def test_streaming_in_chunks_equals_reading_at_once(files, frames):
    top, traj = files
    specs = [Distances(), Dihedrals(((0, 2, 3, 4),))]
    whole = FeatureStream(top, traj, specs, chunk=1000).array()
    blocks = list(FeatureStream(top, traj, specs, chunk=5))
    assert [len(b) for b in blocks] == [5, 5, 5, 5, 3]
    np.testing.assert_allclose(np.concatenate(blocks), whole)
    # DCD stores float32 Angstrom: the features agree with the in-memory frames to float32 precision
    np.testing.assert_allclose(whole, Featurizer(_universe(frames), specs).compute(frames), atol=2e-5)
    strided = FeatureStream(top, traj, specs, stride=4)
    assert len(strided) == 6 and np.allclose(strided.array(), whole[::4])


def test_colvar_reader(tmp_path):
    p = tmp_path / "COLVAR"
    p.write_text("#! FIELDS time phi psi\n#! SET min_phi -pi\n0 -1.0 2.0\n1 -1.1 2.1\n#! FIELDS time phi psi\n2 1 0\n")
    names, data = read_colvar(p)
    assert names == ["phi", "psi"] and data.shape == (3, 2) and data[2, 0] == 1.0
    assert read_colvar(p, ["psi"])[1][:, 0].tolist() == [2.0, 2.1, 0.0]
    with pytest.raises(ConfigError, match="no column"):
        read_colvar(p, ["chi"])
    p.write_text("#! FIELDS time phi\n0 1 2\n")
    with pytest.raises(ConfigError, match="3 values for 2 fields"):
        read_colvar(p)


def test_bad_specs_are_named(files, frames):
    top, traj = files
    u = _universe(frames)
    with pytest.raises(ConfigError, match="matches no atom"):
        Featurizer(u, [Distances("name XYZ")])
    with pytest.raises(ConfigError, match="failed"):
        Featurizer(u, [Distances("this is not a selection ((")])
    with pytest.raises(ConfigError, match="indices"):
        Featurizer(u, [Angles(((0, 1, 99),))])
    with pytest.raises(ConfigError, match="no features"):
        Featurizer(u, [])
    with pytest.raises(ConfigError, match="no such file"):
        FeatureStream(top, traj.with_name("missing.dcd"), [Distances()])
    with pytest.raises(ConfigError, match="positions"):
        Featurizer(u, [Distances()]).compute(frames[:, :3])


def _capped_serine(n_frames: int = 9):
    """ACE-SER-NME heavy atoms plus two hydrogens, with bonds; random frames."""
    names = ["CH3", "C", "O", "N", "H", "CA", "CB", "OG", "HG", "C", "O", "N", "C"]
    res = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]
    u = mda.Universe.empty(len(names), n_residues=3, atom_resindex=res, trajectory=True)
    u.add_TopologyAttr("names", names)
    u.add_TopologyAttr("resnames", ["ACE", "SER", "NME"])
    u.add_TopologyAttr("resids", [1, 2, 3])
    u.add_TopologyAttr("segids", ["A"])
    u.add_TopologyAttr("masses", [12.0] * len(names))
    bonds = [(0, 1), (1, 2), (1, 3), (3, 4), (3, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (9, 11), (11, 12)]
    u.add_TopologyAttr("bonds", bonds)
    from MDAnalysis.coordinates.memory import MemoryReader

    pos = np.random.default_rng(2).uniform(0.0, 1.0, (n_frames, len(names), 3))
    u.load_new(pos * 10.0, format=MemoryReader)
    return u, pos


def test_geometric_library_from_a_topology(tmp_path):
    from surrodyn.cv.interpret import geometric_library, geometric_variables

    u, pos = _capped_serine()
    specs, periodic = geometric_library(u)
    assert periodic == ["phi SER2", "psi SER2", "chi1 SER2"]
    f = Featurizer(u, specs)
    heavy = [i for i, n in enumerate(u.atoms.names) if not n.startswith("H")]
    n_dist = len(heavy) * (len(heavy) - 1) // 2
    # bond angles between heavy-atom bonds: at C1 (3 neighbours: 3 angles), N3 (2: 1), CA5 (3: 3), CB6 (1),
    # C9 (3: 3), N11 (1)
    assert f.n_features == n_dist + 3 + 1 + 3 + 1 + 3 + 1 + 3
    assert f.names[-3:] == periodic
    out = f.compute(pos)
    direct = Featurizer(u, [Dihedrals(((1, 3, 5, 9), (3, 5, 9, 11), (3, 5, 6, 7)), sincos=False)]).compute(pos)
    np.testing.assert_allclose(out[:, -3:], direct)  # phi = C-N-CA-C, psi = N-CA-C-N', chi1 = N-CA-CB-OG
    # the same through files (PDB with CONECT records for the bonds, DCD frames)
    u.atoms.write(tmp_path / "top.pdb", bonds="all")
    with mda.Writer(str(tmp_path / "t.dcd"), n_atoms=len(u.atoms)) as w:
        for _ in u.trajectory:
            w.write(u.atoms)
    values, per = geometric_variables(tmp_path / "top.pdb", tmp_path / "t.dcd", stride=2)
    assert per == periodic and len(values) == f.n_features
    np.testing.assert_allclose(values["psi SER2"], direct[::2, 1], atol=1e-5)
    with pytest.raises(ConfigError, match="no such file"):
        geometric_variables(tmp_path / "nope.pdb", None)
