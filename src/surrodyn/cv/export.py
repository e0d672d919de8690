"""Export a learned CV to MD engines: NumPy (OpenMM ``PythonForce``) and TorchScript.

A CV of a frame is ``encoder_mean(standardise(features(positions)))``. The exports are:

- :class:`NumpyCV` — the whole map from positions (nm) to CVs in NumPy, with the gradient by
  hand (the encoder's backward pass times :meth:`~surrodyn.cv.features.Featurizer.jacobian`).
  It holds arrays only, pickles, and saves as ``.npz``; :class:`CVComponent` wraps one latent as
  the picklable callback of ``openmm.PythonForce``.
- :func:`export_torchscript` — standardisation + encoder mean as a TorchScript module for
  PLUMED's ``PYTORCH_MODEL`` (input: the raw features, (N, F) float32 or float64).

PLUMED inputs (``plumed.dat`` with ``PYTORCH_MODEL``, ``ANN`` or ``CUSTOM``) and the numerical
check of every export against the model are in :mod:`surrodyn.cv.plumed`.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.io import atomic_savez, atomic_write_bytes
from ..errors import ConfigError, OutputError, param_error
from .features import Featurizer

__all__ = ["CVComponent", "NumpyCV", "export_torchscript"]

NUMPY_CV_FORMAT = 1  # of the .npz written by NumpyCV.save
_TORCH_ACTIVATIONS = {"tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus, "silu": nn.SiLU}
_ACTIVATIONS = tuple(_TORCH_ACTIVATIONS)
_JIT_WARNING = r"`torch\.jit\.\w+` is deprecated"


def _target(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir() or not p.parent.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: give a file name in an existing directory.")
    return p


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # never overflows


def _activate(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Activation and its derivative (torch's ``Tanh``, ``ELU(alpha=1)``, ``Softplus(beta=1)``, ``SiLU``)."""
    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if name == "elu":
        e = np.exp(np.minimum(z, 0.0))
        return np.where(z > 0, z, e - 1.0), np.where(z > 0, 1.0, e)
    if name == "softplus":
        return np.logaddexp(0.0, z), _sigmoid(z)
    s = _sigmoid(z)  # silu
    return z * s, s * (1.0 + z * (1.0 - s))


def _layers(cv: Any) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Float64 weights and biases of the encoder mean, with the standardisation folded into the first layer."""
    std = cv.standardizer
    if hasattr(cv, "network"):
        modules, activation = list(cv.network.encoder), cv.network.config.activation
        expected = [nn.Linear, _TORCH_ACTIVATIONS.get(activation)] * (len(modules) // 2) + [nn.Linear]
        if [type(m) for m in modules] != expected:
            raise ConfigError(f"the encoder is not an MLP of Linear and {activation} layers: {cv.network.encoder}.")
        linears = modules[::2]
        weights = [m.weight.detach().double().numpy().copy() for m in linears]
        biases = [m.bias.detach().double().numpy().copy() for m in linears]
        weights[-1], biases[-1] = weights[-1][: cv.n_latent], biases[-1][: cv.n_latent]  # the mean, not log σ²
    elif hasattr(cv, "components"):  # a linear CV: z = (standardise(x) − mean) · components
        comp = np.asarray(cv.components, dtype=float).T
        weights, biases, activation = [comp], [-comp @ np.asarray(cv.mean, dtype=float)], "tanh"
    else:
        raise ConfigError(f"cannot export {type(cv).__name__}: a LearnedCV (or a linear CV) is expected.")
    # (W (x − μ)/σ + b) = (W/σ) x + (b − (W/σ) μ)
    w0 = weights[0] / np.asarray(std.std, dtype=float)
    biases[0] = biases[0] - w0 @ np.asarray(std.mean, dtype=float)
    weights[0] = w0
    return weights, biases, activation


class NumpyCV:
    """A CV as NumPy arrays: positions (nm) → features → encoder mean, with an analytic gradient.

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        Layer weights, (out, in) each; the first acts on the *raw* features (the standardisation
        folded in), the last gives the CVs.
    biases : sequence of numpy.ndarray
        Layer biases, (out,) each.
    activation : str
        Activation of the hidden layers: ``"tanh"``, ``"elu"``, ``"softplus"`` or ``"silu"``.
    featurizer : dict
        :meth:`Featurizer.to_dict <surrodyn.cv.features.Featurizer.to_dict>` of the features.

    Notes
    -----
    With hidden activations a_l and weights W_l, the Jacobian of the CVs with respect to the
    features is W_L · diag(a'_{L−1}) · W_{L−1} ⋯ diag(a'_0) · W_0, and the gradient with respect
    to the positions is its product with the feature Jacobian, in CV units per nm. The object
    holds arrays only, so it pickles (``openmm.PythonForce`` pickles its callback).
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
        activation: str,
        featurizer: dict[str, Any],
    ) -> None:
        if activation not in _ACTIVATIONS:
            raise param_error("activation", activation, f"one of {list(_ACTIVATIONS)}")
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.biases = [np.array(b, dtype=np.float64) for b in biases]
        self.activation = activation
        self.featurizer_dict = json.loads(json.dumps(featurizer))  # a private, JSON-clean copy
        self.featurizer = Featurizer.from_dict(self.featurizer_dict)
        widths = [self.featurizer.n_features] + [w.shape[0] for w in self.weights]
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or w.shape[1] != widths[k] or b.shape != (w.shape[0],):
                raise ConfigError(f"layer {k}: weights {w.shape} and biases {b.shape} do not chain from {widths[k]}.")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ConfigError(f"layer {k} has non-finite weights or biases.")

    @classmethod
    def from_model(cls, cv: Any, featurizer: Featurizer | dict[str, Any]) -> NumpyCV:
        """Build from a trained model and the featurizer of its inputs.

        Parameters
        ----------
        cv : LearnedCV
            The trained model (a linear CV with ``standardizer``, ``mean`` and ``components`` works too).
        featurizer : Featurizer or dict
            The featurizer (or its :meth:`~surrodyn.cv.features.Featurizer.to_dict`) whose features the
            model was trained on.

        Raises
        ------
        ConfigError
            If the featurizer does not give the model's features.
        """
        fdict = featurizer.to_dict() if isinstance(featurizer, Featurizer) else featurizer
        names, given = list(getattr(cv, "feature_names", [])), list(fdict.get("names", []))
        if len(names) != len(given):
            raise ConfigError(f"the model takes {len(names)} features, the featurizer gives {len(given)}.")
        default = [f"f{i}" for i in range(len(names))]
        if names not in (default, given):
            raise ConfigError(
                f"the model was trained on features {names[:3]}..., the featurizer gives {given[:3]}...: "
                "pass the featurizer the model's features came from."
            )
        weights, biases, activation = _layers(cv)
        return cls(weights, biases, activation, fdict)

    @property
    def n_latent(self) -> int:
        """Number of CVs."""
        return self.weights[-1].shape[0]

    @property
    def n_atoms(self) -> int:
        """Number of atoms the positions must have."""
        return self.featurizer.n_atoms

    def _frames(self, positions: np.ndarray) -> tuple[np.ndarray, bool]:
        x = np.asarray(positions, dtype=float)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (self.n_atoms, 3):
            want = f"({self.n_atoms}, 3) or (frames, {self.n_atoms}, 3)"
            raise ConfigError(f"positions must be {want} in nm; got {x.shape}.")
        return x, np.ndim(positions) == 2

    def features(self, positions: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """Features of one frame (n_atoms, 3) → (F,), or of frames (N, n_atoms, 3) → (N, F); nm."""
        x, single = self._frames(positions)
        f = self.featurizer.compute(x, box)
        return f[0] if single else f

    def _network(self, features: np.ndarray, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        h, slopes = features, []
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T + b
            if k < len(self.weights) - 1:
                h, slope = _activate(self.activation, h)
                slopes.append(slope)
        if not grad:
            return h, None
        g = np.broadcast_to(self.weights[-1], (len(h), *self.weights[-1].shape))
        for k in range(len(self.weights) - 2, -1, -1):
            g = (g * slopes[k][:, None, :]) @ self.weights[k]
        return h, g

    def transform(self, features: np.ndarray) -> np.ndarray:
        """CVs of feature frames (N, F) → (N, n_latent), as ``LearnedCV.transform`` (in float64)."""
        f = np.asarray(features, dtype=float)
        if f.ndim != 2 or f.shape[1] != self.featurizer.n_features:
            raise ConfigError(f"features must be (frames, {self.featurizer.n_features}); got {f.shape}.")
        return self._network(f, False)[0]

    def __call__(self, positions: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """CVs of one frame (n_atoms, 3) → (n_latent,), or of frames (N, n_atoms, 3) → (N, n_latent)."""
        x, single = self._frames(positions)
        z = self._network(self.featurizer.compute(x, box), False)[0]
        return z[0] if single else z

    def value_and_gradient(self, positions: np.ndarray, box: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CVs and their gradients with respect to the positions.

        Parameters
        ----------
        positions : numpy.ndarray
            (n_atoms, 3) or (n_frames, n_atoms, 3), nm.
        box : numpy.ndarray, optional
            Orthorhombic box lengths (3,) or (n_frames, 3) in nm, for minimum images.

        Returns
        -------
        cv : numpy.ndarray
            (n_latent,) or (n_frames, n_latent).
        grad : numpy.ndarray
            (n_latent, n_atoms, 3) or (n_frames, n_latent, n_atoms, 3): ∂CV/∂x in CV units per nm.
            A bias V(CV) exerts the force −V'(CV) · grad, in kJ/mol/nm when V is in kJ/mol.
        """
        x, single = self._frames(positions)
        values, jac = self.featurizer.jacobian(x, box)
        z, g = self._network(values, True)
        grad = (g @ jac.reshape(len(x), jac.shape[1], -1)).reshape(len(x), self.n_latent, self.n_atoms, 3)
        return (z[0], grad[0]) if single else (z, grad)

    def component(self, index: int, pbc: bool = False) -> CVComponent:
        """Return the picklable ``openmm.PythonForce`` callback of CV ``index`` (see :class:`CVComponent`)."""
        return CVComponent(self, index, pbc)

    def save(self, path: str | Path) -> Path:
        """Write the arrays and the featurizer to an ``.npz`` file (atomically); read it back with :meth:`load`."""
        p = _target(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(NUMPY_CV_FORMAT),
            "activation": np.array(self.activation),
            "featurizer": np.array(json.dumps(self.featurizer_dict)),
            "n_layers": np.array(len(self.weights)),
        }
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"weight_{k}"], arrays[f"bias_{k}"] = w, b
        return atomic_savez(p, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> NumpyCV:
        """Read a file written by :meth:`save` (no pickles are loaded)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such file.")
        try:
            with np.load(p, allow_pickle=False) as data:
                if int(data["format"]) != NUMPY_CV_FORMAT:
                    raise ConfigError(f"{p}: NumpyCV format {int(data['format'])}, this code reads {NUMPY_CV_FORMAT}.")
                n = int(data["n_layers"])
                return cls(
                    [data[f"weight_{k}"] for k in range(n)],
                    [data[f"bias_{k}"] for k in range(n)],
                    str(data["activation"]),
                    json.loads(str(data["featurizer"])),
                )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{p} is not a NumpyCV file: {err}") from None


class CVComponent:
    """One CV as an ``openmm.PythonForce`` callback: energy = the CV, forces = −∂CV/∂x.

    Use it as the collective variable of ``openmm.app.Metadynamics`` (``BiasVariable`` takes a
    force whose energy is the CV) or inside a ``CustomCVForce``. It is a top-level class holding
    a :class:`NumpyCV`, so it pickles as ``PythonForce`` requires.

    Parameters
    ----------
    cv : NumpyCV
        The CV model.
    index : int
        Which latent dimension.
    pbc : bool
        Read the (orthorhombic) box from the State for minimum images; also call
        ``force.setUsesPeriodicBoundaryConditions(True)`` on the ``PythonForce``.
    """

    def __init__(self, cv: NumpyCV, index: int, pbc: bool = False) -> None:
        if not isinstance(index, int | np.integer) or not 0 <= index < cv.n_latent:
            raise param_error("index", index, f"a latent dimension in [0, {cv.n_latent})")
        self.cv, self.index, self.pbc = cv, int(index), bool(pbc)

    def __call__(self, state: Any) -> tuple[float, np.ndarray]:
        """Return the CV (as kJ/mol) and −∂CV/∂x (as kJ/mol/nm, (n_atoms, 3)) of an OpenMM State."""
        from openmm import unit

        pos = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        box = None
        if self.pbc:
            vectors = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
            if np.count_nonzero(vectors - np.diag(np.diag(vectors))):
                raise ConfigError("only orthorhombic boxes are supported for minimum-image CVs.")
            box = np.diag(vectors)
        value, grad = self.cv.value_and_gradient(pos, box)
        return float(value[self.index]), -grad[self.index]


# ---------------------------------------------------------------------------------------------
# TorchScript


class _TorchCV(nn.Module):
    """The encoder mean, standardisation folded into the first layer, in float64; output in the input's dtype."""

    def __init__(self, cv: Any) -> None:
        super().__init__()
        weights, biases, activation = _layers(cv)
        layers: list[nn.Module] = []
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            linear = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear] if k == len(weights) - 1 else [linear, _TORCH_ACTIVATIONS[activation]()]
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """CVs (N, n_latent) of raw features (N, F)."""
        return self.encoder(x.to(torch.float64)).to(x.dtype)


def export_torchscript(cv: Any, path: str | Path) -> Path:
    """Save the standardisation and encoder mean as a TorchScript module (for PLUMED's ``PYTORCH_MODEL``).

    Parameters
    ----------
    cv : LearnedCV
        The trained model (or a linear CV). The standardisation is folded into the first layer,
        (W (x − μ)/σ + b) = (W/σ) x + (b − (W/σ) μ), as in every other export.
    path : str or Path
        Output file, conventionally ``model.ptc``; written atomically.

    Returns
    -------
    Path
        The file. ``torch.jit.load`` reads it back; the module maps raw features (N, F), float32
        (as PLUMED passes them) or float64, to CVs (N, n_latent) of the same dtype, computing in
        float64 inside.
    """
    p = _target(path)
    module = _TorchCV(cv).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, which PLUMED still needs
        warnings.filterwarnings("ignore", _JIT_WARNING, DeprecationWarning)
        torch.jit.save(torch.jit.script(module), buf)
    return atomic_write_bytes(p, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# PLUMED
