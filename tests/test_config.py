"""Configuration: validation with errors that name the parameter, YAML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from surrodyn.errors import ConfigError, ConfigTypeError
from surrodyn.kmc import KMCConfig, seed_case_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_yaml_is_the_builtin_seed_case():
    assert KMCConfig.from_yaml(EXAMPLES / "kmc_seed_case.yaml") == seed_case_config()


def test_seed_case_numbers():
    cfg = seed_case_config()
    assert cfg.gap_m == pytest.approx(100e-9)
    assert cfg.n_ions_resolved == 119  # 3e18 cm^-3 × 20·20·99 nm³
    assert cfg.filling == pytest.approx(0.003, rel=0.01)


def test_yaml_round_trip_with_schedules():
    cfg = KMCConfig(
        voltage_V={"kind": "square_wave", "low": 0.0, "high": 0.5, "period_s": 1e-6, "n_periods": 3},
        temperature_K={"times_s": [0, 1e-6], "values": [300, 350]},
        output_times_s={"kind": "linear", "start": 0, "stop": 1e-6, "num": 5},
    )
    import yaml

    back = KMCConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert back == cfg


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"temperature_K": -5}, ConfigError, "temperature_K"),
        ({"permittivity": 0}, ConfigError, "permittivity"),
        ({"spacing_nm": float("nan")}, ConfigError, "spacing_nm"),
        ({"disorder_eV": -0.1}, ConfigError, "disorder_eV"),
        ({"nx": 0}, ConfigError, "nx"),
        ({"nz": 2.5}, ConfigTypeError, "nz"),
        ({"coulomb": "yes"}, ConfigTypeError, "coulomb"),
        ({"rate_rule": "glauber"}, ConfigError, "rate_rule"),
        ({"output_times_s": [1e-6, 1e-7]}, ConfigError, "strictly increasing"),
        ({"output_times_s": [-1.0]}, ConfigError, "non-negative"),
        ({"output_times_s": {"kind": "log", "start": 0, "stop": 1, "num": 3}}, ConfigError, "positive time"),
        ({"concentration_cm3": 5e22, "spacing_nm": 1.0}, ConfigError, "at most one ion per site"),
        ({"concentration_cm3": 1e10}, ConfigError, "at least one ion"),
        ({"n_ions": 0}, ConfigError, "n_ions"),
        ({"voltage_V": {"kind": "sawtooth"}}, ConfigError, "voltage_V.kind"),
        ({"voltage_V": {"times_s": [0, 2, 1], "values": [0, 1, 2]}}, ConfigError, "strictly increasing"),
        ({"temperature_K": "hot"}, ConfigError, "temperature_K"),
    ],
)
def test_bad_values_are_rejected_by_name(changes, error, words):
    with pytest.raises(error) as info:
        KMCConfig(**changes)
    assert words in str(info.value)


def test_unknown_keys_are_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"'temperature'.*did you mean 'temperature_K'"):
        KMCConfig.from_dict({"temperature": 300})


def test_wrong_units_in_yaml_are_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("voltage_V: 500 mV\n")
    with pytest.raises(ConfigError, match="voltage_V"):
        KMCConfig.from_yaml(path)


def test_missing_or_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        KMCConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("nx: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        KMCConfig.from_yaml(bad)


def test_config_is_frozen():
    cfg = KMCConfig()
    with pytest.raises(AttributeError):
        cfg.nx = 3
