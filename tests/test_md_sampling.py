"""Fixed-temperature labelled sampling of clusters (surrodyn.md.sampling).

Cu13 only, with a few hundred to a few thousand MD steps: asap3's EMT when installed ("auto"),
ASE's pure-Python EMT for the label and calculator-object checks.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from surrodyn.errors import ConfigError, ConfigTypeError
from surrodyn.md import ClusterSpec, SamplingCondition, make_calculator, sample_configurations

CU13 = SamplingCondition(ClusterSpec("icosahedron", 2), 500.0)
SHORT = dict(stride_steps=10, equilibration_steps=20)


def test_condition_label_and_normalisation():
    assert CU13.label == "Cu13-icosahedron@500K"
    c = SamplingCondition(ClusterSpec("cuboctahedron", 3), np.int64(300))
    assert c.label == "Cu55-cuboctahedron@300K"
    assert type(c.temperature_K) is float
    assert SamplingCondition(ClusterSpec("icosahedron", 2), 512.5).label == "Cu13-icosahedron@512.5K"


@pytest.mark.parametrize("temperature", [0, -100.0, math.nan, math.inf, "300", True, None])
def test_condition_rejects_bad_temperature(temperature):
    with pytest.raises(ConfigError, match="temperature_K="):
        SamplingCondition(ClusterSpec("icosahedron", 2), temperature)


def test_condition_rejects_non_spec_cluster():
    with pytest.raises(ConfigTypeError, match="ClusterSpec"):
        SamplingCondition({"shape": "icosahedron", "size": 2}, 300.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(n_frames=0), "n_frames"),
        (dict(n_frames=2.0), "n_frames"),
        (dict(stride_steps=0), "stride_steps"),
        (dict(equilibration_steps=-1), "equilibration_steps"),
        (dict(timestep_fs=0.0), "timestep_fs"),
        (dict(timestep_fs=math.nan), "timestep_fs"),
        (dict(friction_per_fs=-0.01), "friction_per_fs"),
        (dict(seed=-1), "seed"),
        (dict(seed=True), "seed"),
        (dict(calculator="lj"), "calculator"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    args = {"n_frames": 1, **kwargs}
    with pytest.raises(ValueError, match=f"^{name}="):
        sample_configurations(CU13, args.pop("n_frames"), **args)


def test_bad_types():
    with pytest.raises(TypeError, match="SamplingCondition"):
        sample_configurations("Cu13@500K", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ASE calculator"):
        sample_configurations(CU13, 1, calculator=object())


def test_same_seed_same_frames_other_seed_other_frames():
    a = sample_configurations(CU13, 3, seed=7, **SHORT)
    b = sample_configurations(CU13, 3, seed=7, **SHORT)
    c = sample_configurations(CU13, 3, seed=8, **SHORT)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.get_momenta(), y.get_momenta())
        assert x.get_potential_energy() == y.get_potential_energy()
    assert not np.allclose(a[-1].positions, c[-1].positions)


def test_frames_carry_info_geometry_and_fresh_labels():
    frames = sample_configurations(CU13, 4, seed=3, calculator="ase-emt", **SHORT)
    assert len(frames) == 4
    assert len({id(f) for f in frames}) == 4
    for k, f in enumerate(frames):
        assert f.info == {"condition": "Cu13-icosahedron@500K", "temperature_K": 500.0, "seed": 3, "frame": k}
        assert not f.pbc.any()
        cell = f.cell.lengths()
        assert np.allclose(cell, cell[0]) and cell[0] > 60.0
        np.testing.assert_allclose(f.get_center_of_mass(), 0.5 * cell, atol=1e-9)
        assert isinstance(f.calc, SinglePointCalculator)
        fresh = f.copy()
        fresh.calc = EMT()
        assert f.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(f.get_forces(), fresh.get_forces(), atol=1e-10)
    # consecutive frames differ: the MD moved between them
    assert not np.allclose(frames[0].positions, frames[1].positions)


def test_auto_labels_match_a_fresh_auto_calculator():
    frames = sample_configurations(CU13, 2, seed=5, **SHORT)
    for f in frames:
        fresh = f.copy()
        fresh.calc = make_calculator("emt")
        assert f.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(f.get_forces(), fresh.get_forces(), atol=1e-9)


def test_calculator_object_gives_the_named_calculators_frames():
    by_name = sample_configurations(CU13, 2, seed=2, calculator="ase-emt", **SHORT)
    by_object = sample_configurations(CU13, 2, seed=2, calculator=EMT(), **SHORT)
    for x, y in zip(by_name, by_object, strict=True):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert x.get_potential_energy() == y.get_potential_energy()


def test_extxyz_round_trip_keeps_labels_and_info():
    frames = sample_configurations(CU13, 2, seed=4, **SHORT)
    buf = io.StringIO()
    write(buf, frames, format="extxyz")
    back = read(io.StringIO(buf.getvalue()), ":", format="extxyz")
    for f, g in zip(frames, back, strict=True):
        assert g.get_potential_energy() == pytest.approx(f.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(g.get_forces(), f.get_forces(), atol=1e-7)
        assert g.info["condition"] == f.info["condition"] and g.info["frame"] == f.info["frame"]


def test_mean_kinetic_temperature_matches_the_thermostat():
    """Mean instantaneous temperature over decorrelated frames is the target, within 4 standard errors.

    With ``fixcm=False`` all 3N momenta are thermalised and ASE's ``get_temperature`` divides by
    3N, so its canonical mean is exactly T. Per frame, 2K/kT is chi-squared with 3N degrees of
    freedom: relative standard deviation sqrt(2/(3N)) = 0.226 for Cu13. We bound it by the
    isolated-cluster count 3N - 6 (sqrt(2/33) = 0.246). Frames 50 steps apart still have a lag-1
    correlation of about 0.1-0.2 (measured on 10^5 steps of Cu13 at 300-1300 K: integrated
    correlation time ~28 steps), so we count only half the frames as independent:
    tolerance = 4 * 0.246 / sqrt(n/2) = 13.9% for n = 100, i.e. about 70 K at 500 K. A correct
    sampler fails with probability < 1e-4; a temperature defined over 3N - 6 degrees of freedom
    (+18% for Cu13) or a thermostat off by a factor of two fails. The frame-to-frame spread is
    checked against sqrt(2/(3N)) within +-40%: a standard deviation from 50 effective samples of a
    chi-squared(39) variable has a relative standard error sqrt((2 + 6/19.5)/200) = 0.107, so the
    band is 3.7 of them (a velocity-rescaling thermostat, with no spread, fails). Over 200 seeds
    the mean deviated by at most 0.62 of the tolerance (standard deviation 0.029, i.e. about 60
    independent frames) and the spread stayed within 0.193-0.265.
    """
    n = 100
    frames = sample_configurations(CU13, n, stride_steps=50, equilibration_steps=500, seed=11)
    temps = np.array([f.get_temperature() for f in frames])
    n_dof = 3 * len(frames[0])
    rel_sigma = math.sqrt(2.0 / (n_dof - 6))
    tolerance = 4.0 * rel_sigma / math.sqrt(n / 2)
    assert abs(temps.mean() / CU13.temperature_K - 1.0) < tolerance, (temps.mean(), tolerance)
    spread = temps.std(ddof=1) / CU13.temperature_K
    assert 0.6 * math.sqrt(2.0 / n_dof) < spread < 1.4 * math.sqrt(2.0 / n_dof), spread
