"""Figures of neural-network potentials, built from small synthetic arrays."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrodyn.errors import ConfigError
from surrodyn.plot import (
    curve_statistics,
    plot_learning_curves,
    plot_parity,
    plot_training_history,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_parity_two_panels_with_rmse_in_legend():
    rng = np.random.default_rng(0)
    e_ref = -3.5 + 0.01 * rng.standard_normal(6)
    e_pred = e_ref + 0.002  # 2 meV/atom off everywhere
    f_ref = [rng.standard_normal((13, 3)) for _ in range(6)]  # a list of per-structure arrays
    f_pred = [f + 0.05 for f in f_ref]  # 50 meV/Å off everywhere
    fig = plot_parity(e_ref, e_pred, f_ref, f_pred, title="synthetic")
    a, b = fig.axes
    assert "meV/atom" in a.get_xlabel() and "eV/Å" in b.get_xlabel()
    assert _legend_texts(a) == ["RMSE 2.00 meV/atom (n=6)"]
    assert _legend_texts(b) == ["RMSE 50.0 meV/Å (n=234)"]
    assert fig._suptitle.get_text() == "synthetic"
    # energies are shifted by the reference mean and drawn in meV/atom
    x = a.collections[0].get_offsets()[:, 0]
    np.testing.assert_allclose(x, 1e3 * (e_ref - e_ref.mean()))


def test_parity_accepts_flat_and_stacked_forces():
    f = np.arange(12.0).reshape(4, 3)
    fig = plot_parity([1.0, 2.0], [1.0, 2.0], f, f.ravel())
    assert len(fig.axes) == 2


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (([1.0, 2.0], [1.0], np.zeros(3), np.zeros(3)), "pred_energy_per_atom"),
        (([1.0], [1.0], np.zeros((2, 3)), np.zeros((3, 3))), "pred_forces"),
        (([], [], np.zeros(3), np.zeros(3)), "ref_energy_per_atom"),
        ((["a"], [1.0], np.zeros(3), np.zeros(3)), "ref_energy_per_atom"),
    ],
)
def test_parity_bad_shapes_name_the_argument(args, name):
    with pytest.raises(ConfigError, match=name):
        plot_parity(*args)


def _history(n=20):
    epoch = np.arange(n)
    return {
        "epoch": epoch.tolist(),
        "train_loss": (1.0 / (1 + epoch)).tolist(),
        "val_loss": (1.2 / (1 + epoch) + 0.1 * (epoch > 15)).tolist(),  # best at epoch 15
        "lr": [3e-3] * 10 + [1.5e-3] * (n - 10),
    }


def test_training_history_loss_and_learning_rate():
    fig = plot_training_history(_history())
    loss, lr = fig.axes
    assert loss.get_yscale() == "log" and lr.get_yscale() == "log"
    assert lr.get_xlabel() == "epoch" and lr.get_ylabel() == "learning rate"
    assert _legend_texts(loss) == ["train", "validation", "best epoch 15"]


def test_training_history_refuses_bad_input():
    h = _history()
    del h["lr"]
    with pytest.raises(ConfigError, match=r"history.*'lr'"):
        plot_training_history(h)
    h = _history()
    h["val_loss"] = h["val_loss"][:-1]
    with pytest.raises(ConfigError, match="one value per epoch"):
        plot_training_history(h)
    with pytest.raises(ConfigError, match="history"):
        plot_training_history([1, 2, 3])


def test_curve_statistics_mean_sd_and_ragged_runs():
    runs = [
        (np.array([10, 20, 30]), np.array([3.0, 2.0, 1.0])),
        (np.array([10, 20, 30]), np.array([5.0, 4.0, np.nan])),
        (np.array([10, 20]), np.array([4.0, 3.0])),  # stopped early
    ]
    n, mean, sd, count = curve_statistics(runs)
    np.testing.assert_array_equal(n, [10, 20, 30])
    np.testing.assert_allclose(mean, [4.0, 3.0, 1.0])
    np.testing.assert_allclose(sd, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(count, [3, 3, 1])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(0.1, 1e3), min_size=3, max_size=3), min_size=1, max_size=5))
def test_curve_statistics_mean_lies_between_the_runs(values):
    runs = [(np.array([1, 2, 3]), np.array(v)) for v in values]
    _, mean, sd, _ = curve_statistics(runs)
    arr = np.array(values)
    assert np.all(mean >= arr.min(0) - 1e-9) and np.all(mean <= arr.max(0) + 1e-9)
    assert np.all(sd >= 0)


@pytest.mark.parametrize(
    "runs",
    [
        [],
        [(np.arange(3), np.arange(4))],
        [(np.arange(3).reshape(3, 1), np.arange(3))],
        [(np.arange(3),)],
    ],
)
def test_curve_statistics_refuses_malformed_runs(runs):
    with pytest.raises(ConfigError, match="curves"):
        curve_statistics(runs)


def test_learning_curves_one_line_per_strategy_and_reference():
    n = np.array([10, 20, 40])
    curves = {
        "autoencoder": [(n, np.array([30.0, 15.0, 8.0])), (n, np.array([28.0, 17.0, 9.0]))],
        "random": [(n, np.array([30.0, 22.0, 14.0]))],
    }
    fig = plot_learning_curves(
        curves, metric_label="test force RMSE (meV/Å)", reference_level=14.0, reference_label="random at 40 labels"
    )
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "test force RMSE (meV/Å)"
    assert _legend_texts(ax) == ["autoencoder (2 seeds)", "random (1 seed)", "random at 40 labels"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [29.0, 16.0, 8.5])
    fig = plot_learning_curves(curves, metric_label="x", log_y=False)
    assert fig.axes[0].get_yscale() == "linear"


def test_learning_curves_refuses_bad_input():
    with pytest.raises(ConfigError, match="curves"):
        plot_learning_curves({}, metric_label="x")
    with pytest.raises(ConfigError, match=r"curves\['random'\]"):
        plot_learning_curves({"random": [(np.arange(3), np.arange(2))]}, metric_label="x")
    with pytest.raises(ConfigError, match="reference_level"):
        plot_learning_curves({"random": [(np.arange(3), np.ones(3))]}, metric_label="x", reference_level=np.nan)


def test_save_figure_writes_png_and_closes(tmp_path):
    fig = plot_parity([1.0], [1.0], np.zeros(3), np.zeros(3))
    path = save_figure(fig, tmp_path / "sub" / "parity.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert not plt.fignum_exists(fig.number)
    with pytest.raises(ConfigError, match="Figure"):
        save_figure(object(), tmp_path / "x.png")
