"""Piecewise-constant V(t), T(t) schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surrodyn.errors import ConfigError
from surrodyn.protocols import Schedule, constant, ramp, schedule_from_spec, square_wave, step


def test_evaluation_is_right_continuous():
    s = step(0.0, 1.0, at_s=2.0)
    assert s(1.999) == 0.0 and s(2.0) == 1.0 and s(10.0) == 1.0
    np.testing.assert_array_equal(s(np.array([0.0, 2.0])), [0.0, 1.0])
    assert s.next_breakpoint(0.0) == 2.0 and math.isinf(s.next_breakpoint(2.0))


def test_ramp_steps_follow_the_line():
    r = ramp(0.0, 1.0, 1.0, 2.0, n_steps=4)
    assert r(0.5) == 0.0 and r(2.5) == 1.0
    assert r(1.1) == pytest.approx(0.125) and r(1.9) == pytest.approx(0.875)


def test_square_wave():
    w = square_wave(0.0, 1.0, period_s=2.0, n_periods=2)
    assert [w(t) for t in (0.5, 1.5, 2.5, 3.5, 10.0)] == [1.0, 0.0, 1.0, 0.0, 0.0]


def test_spec_forms():
    assert schedule_from_spec(0.3, "v") == constant(0.3, "v")
    assert schedule_from_spec({"kind": "step", "before": 0, "after": 1, "at_s": 1e-6}, "v")(2e-6) == 1.0
    with pytest.raises(ConfigError, match=r"v\.kind"):
        schedule_from_spec({"kind": "zigzag"}, "v")
    with pytest.raises(ConfigError, match="bad arguments"):
        schedule_from_spec({"kind": "step", "after": 1}, "v")
    with pytest.raises(ConfigError, match=r"times_s\[0\]"):
        Schedule((1.0,), (0.0,))


@given(
    st.lists(st.floats(0.01, 10), min_size=1, max_size=8),
    st.lists(st.floats(-5, 5), min_size=9, max_size=9),
    st.floats(0, 100),
)
def test_value_is_the_last_breakpoint_at_or_before_t(gaps, values, t):
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    s = Schedule(tuple(times), tuple(values[: len(times)]))
    k = np.flatnonzero(times <= t)[-1]
    assert s(t) == values[k]
