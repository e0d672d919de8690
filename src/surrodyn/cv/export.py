"""Export a learned CV to MD engines: NumPy (OpenMM ``PythonForce``), TorchScript and PLUMED inputs.

A CV of a frame is ``encoder_mean(standardise(features(positions)))``. The exports are:

- :class:`NumpyCV` — the whole map from positions (nm) to CVs in NumPy, with the gradient by
  hand (the encoder's backward pass times :meth:`~surrodyn.cv.features.Featurizer.jacobian`).
  It holds arrays only, pickles, and saves as ``.npz``; :class:`CVComponent` wraps one latent as
  the picklable callback of ``openmm.PythonForce``.
- :func:`export_torchscript` — standardisation + encoder mean as a TorchScript module for
  PLUMED's ``PYTORCH_MODEL`` (input: the raw features, (N, F) float32 or float64).
- :func:`export_plumed` — a ``plumed.dat`` that computes the same features
  (:func:`plumed_input`) and then the network, as ``PYTORCH_MODEL``, as PLUMED's ``ANN`` action
  (tanh only), or as one Lepton ``CUSTOM`` per unit (small networks).

Every export is checked against the model numerically, values and gradients
(:func:`check_export`; the PLUMED files with the NumPy evaluator of
:mod:`surrodyn.cv._plumed_eval`, since the PyPI ``plumed`` package has no kernel).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..data.io import atomic_savez, atomic_write_bytes
from ..errors import ConfigError, OutputError, param_error
from ._plumed_eval import PlumedEvaluator, evaluate_plumed
from .features import Featurizer, _pair_list

__all__ = [
    "CUSTOM_MAX_WEIGHTS",
    "CVComponent",
    "NumpyCV",
    "PlumedExport",
    "check_export",
    "evaluate_plumed",
    "export_plumed",
    "export_torchscript",
    "plumed_input",
]

NUMPY_CV_FORMAT = 1  # of the .npz written by NumpyCV.save
CUSTOM_MAX_WEIGHTS = 4096  # the largest network (weights, biases excluded) written as CUSTOM expressions
_TORCH_ACTIVATIONS = {"tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus, "silu": nn.SiLU}
_ACTIVATIONS = tuple(_TORCH_ACTIVATIONS)
_FORMATS = ("pytorch", "ann", "custom")
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


class PlumedExport(NamedTuple):
    """What :func:`export_plumed` wrote: the input file, the feature labels, the CV labels."""

    plumed_dat: Path
    features: list[str]
    outputs: list[str]


def _num(value: float) -> str:
    return repr(float(value))  # shortest round-trip text of a double


def _atoms(indices: Any) -> str:
    return ",".join(str(int(i) + 1) for i in np.ravel(indices))  # PLUMED counts atoms from 1


def plumed_input(
    featurizer: Featurizer | dict[str, Any], pbc: bool = False, prefix: str = "f"
) -> tuple[list[str], list[str]]:
    """PLUMED actions that compute a featurizer's features, in order.

    Parameters
    ----------
    featurizer : Featurizer or dict
        The featurizer, or its :meth:`~surrodyn.cv.features.Featurizer.to_dict`.
    pbc : bool
        Whether the simulation is periodic. Without a box every action gets ``NOPBC``, as the
        featurizer without a box computes plain differences; with one, PLUMED's defaults (minimum
        image, groups made whole) are what the featurizer does with a box.
    prefix : str
        Label prefix: the features are ``{prefix}0, {prefix}1, ...``; helper actions are
        ``{prefix}_t3`` (a torsion whose sine and cosine are features) and ``{prefix}_c2a``/``b``
        (centres).

    Returns
    -------
    lines : list of str
        The actions, one per line, each with the feature name as a comment.
    labels : list of str
        The label of every feature, in the featurizer's order.

    Notes
    -----
    Distances, angles and dihedrals are ``DISTANCE``, ``ANGLE`` and ``TORSION``; a dihedral as
    sin/cos adds two ``CUSTOM`` actions. Contacts are ``COORDINATION`` with
    ``SWITCH={RATIONAL R_0= NN= MM=}`` (one per pair, or one over the groups for a total): that
    form is the plain rational function, while COORDINATION's own ``R_0=``/``NN=``/``MM=``
    keywords cut it at d_max and stretch it, a relative difference of about 1e-5 per pair.
    Centre-of-mass distances are ``CENTER`` with the featurizer's mass weights written out (so the
    engine's masses do not matter) and a ``DISTANCE``.
    """
    d = featurizer.to_dict() if isinstance(featurizer, Featurizer) else Featurizer.from_dict(featurizer).to_dict()
    if not prefix or not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
        raise param_error("prefix", prefix, "a PLUMED label: a letter, then letters, digits or underscores")
    nopbc = "" if pbc else " NOPBC"
    names = iter(d["names"])
    lines: list[str] = []
    labels: list[str] = []

    def feature(action: str) -> None:
        label = f"{prefix}{len(labels)}"
        labels.append(label)
        lines.append(f"{label}: {action}  # {next(names)}")

    for k, op in enumerate(d["ops"]):
        kind = op["kind"]
        if kind == "dist":
            for i, j in op["pairs"]:
                feature(f"DISTANCE ATOMS={_atoms([i, j])}{nopbc}")
        elif kind == "contact":
            switch = f"SWITCH={{RATIONAL R_0={_num(op['r0'])} NN={op['n']} MM={op['m']}}}"
            if op["total"]:
                groups = f"GROUPA={_atoms(op['group_a'])}"
                groups += "" if op["group_b"] is None else f" GROUPB={_atoms(op['group_b'])}"
                feature(f"COORDINATION {groups} {switch}{nopbc}")
            else:
                b = None if op["group_b"] is None else np.asarray(op["group_b"])
                for i, j in _pair_list(np.asarray(op["group_a"]), b):
                    feature(f"COORDINATION GROUPA={i + 1} GROUPB={j + 1} {switch}{nopbc}")
        elif kind == "angle":
            for t in op["triples"]:
                feature(f"ANGLE ATOMS={_atoms(t)}{nopbc}")
        elif kind == "dihedral":
            for m, q in enumerate(op["quads"]):
                if not op["sincos"]:
                    feature(f"TORSION ATOMS={_atoms(q)}{nopbc}")
                    continue
                torsion = f"{prefix}_t{k}_{m}"
                lines.append(f"{torsion}: TORSION ATOMS={_atoms(q)}{nopbc}")
                feature(f"CUSTOM ARG={torsion} VAR=x FUNC=sin(x) PERIODIC=NO")
                feature(f"CUSTOM ARG={torsion} VAR=x FUNC=cos(x) PERIODIC=NO")
        else:  # com
            centres = []
            for side in ("a", "b"):
                centre = f"{prefix}_c{k}{side}"
                weights = ",".join(_num(w) for w in op[f"weights_{side}"])
                lines.append(f"{centre}: CENTER ATOMS={_atoms(op[f'group_{side}'])} WEIGHTS={weights}{nopbc}")
                centres.append(centre)
            feature(f"DISTANCE ATOMS={centres[0]},{centres[1]}{nopbc}")
    return lines, labels


_LEPTON = {  # torch's activations in Lepton, overflow-free
    "tanh": "tanh({x})",
    "elu": "max({x},0)+exp(min({x},0))-1",
    "softplus": "max({x},0)+log(1+exp(-abs({x})))",
    "silu": "{x}/(1+exp(-{x}))",
}


def _linear_expression(w: np.ndarray, b: float) -> str:
    return _num(b) + "".join(f"{'-' if v < 0 else '+'}{_num(abs(v))}*x{i}" for i, v in enumerate(w))


def _model_lines(ncv: NumpyCV, fmt: str, features: list[str], label: str) -> tuple[list[str], list[str]]:
    n_out = ncv.n_latent
    if fmt == "pytorch":
        return [f"{label}: PYTORCH_MODEL FILE=model.ptc ARG={','.join(features)}"], [
            f"{label}.node-{j}" for j in range(n_out)
        ]
    if fmt == "ann":
        if ncv.activation != "tanh" and len(ncv.weights) > 1:
            raise param_error(
                "activation", ncv.activation, "tanh for PLUMED's ANN (it has Linear, Tanh and Circular only)",
                "Export with fmt='custom' or fmt='pytorch', or train with activation='tanh'.",
            )  # fmt: skip
        nodes = [ncv.weights[0].shape[1]] + [w.shape[0] for w in ncv.weights]
        acts = ["Tanh"] * (len(ncv.weights) - 1) + ["Linear"]
        lines = [f"{label}: ANN ...", f"  ARG={','.join(features)}", f"  NUM_LAYERS={len(nodes)}",
                 f"  NUM_NODES={','.join(map(str, nodes))}", f"  ACTIVATIONS={','.join(acts)}"]  # fmt: skip
        for k, (w, b) in enumerate(zip(ncv.weights, ncv.biases, strict=True)):
            lines.append(f"  WEIGHTS{k}={','.join(_num(v) for v in w.ravel())}")  # row-major: one row per node
            lines.append(f"  BIASES{k}={','.join(_num(v) for v in b)}")
        return [*lines, "... ANN"], [f"{label}.node-{j}" for j in range(n_out)]
    size = sum(w.size for w in ncv.weights)
    if size > CUSTOM_MAX_WEIGHTS:
        raise param_error(
            "fmt", "custom", f"a network of at most {CUSTOM_MAX_WEIGHTS} weights for CUSTOM (this one has {size})",
            "Use fmt='ann' (tanh) or fmt='pytorch', or a smaller encoder.",
        )  # fmt: skip
    lines, inputs = [], features
    for k, (w, b) in enumerate(zip(ncv.weights, ncv.biases, strict=True)):
        last = k == len(ncv.weights) - 1
        units = []
        for j in range(w.shape[0]):
            unit = f"{label}_{j}" if last else f"{label}_h{k}_{j}"
            expr = _linear_expression(w[j], b[j])
            func = expr if last else _LEPTON[ncv.activation].replace("{x}", f"({expr})")
            var = ",".join(f"x{i}" for i in range(len(inputs)))
            lines.append(f"{unit}: CUSTOM ARG={','.join(inputs)} VAR={var} FUNC={func} PERIODIC=NO")
            units.append(unit)
        inputs = units
    return lines, inputs


def export_plumed(
    cv: Any,
    featurizer: Featurizer | dict[str, Any],
    out_dir: str | Path,
    fmt: str = "pytorch",
    pbc: bool = False,
    label: str = "cv",
    stride: int = 1,
) -> PlumedExport:
    """Write a PLUMED input computing the CV from atom positions.

    Parameters
    ----------
    cv : LearnedCV
        The trained model.
    featurizer : Featurizer or dict
        The featurizer of the model's inputs.
    out_dir : str or Path
        Directory (created) for ``plumed.dat`` and, for ``"pytorch"``, ``model.ptc``.
    fmt : str
        ``"pytorch"``: ``PYTORCH_MODEL FILE=model.ptc`` (needs PLUMED built with LibTorch; outputs
        ``cv.node-0, ...``). ``"ann"``: PLUMED's ``ANN`` action (the ``annfunc`` module; tanh
        networks only; the standardisation folded into the first layer; outputs ``cv.node-i``).
        ``"custom"``: one Lepton ``CUSTOM`` per hidden unit and output (no optional module; at
        most :data:`CUSTOM_MAX_WEIGHTS` weights; outputs ``cv_0, cv_1, ...``).
    pbc : bool
        Periodic simulation (see :func:`plumed_input`).
    label : str
        Label of the model action.
    stride : int
        ``PRINT`` stride (steps) of the CVs to ``COLVAR``.

    Returns
    -------
    PlumedExport
        Paths and labels.

    Raises
    ------
    ConfigError
        Unknown ``fmt``; ``ann`` with another activation than tanh; ``custom`` for a network
        above :data:`CUSTOM_MAX_WEIGHTS` weights.
    """
    if fmt not in _FORMATS:
        raise param_error("fmt", fmt, f"one of {list(_FORMATS)}")
    if not isinstance(stride, int) or stride < 1:
        raise param_error("stride", stride, "a positive integer")
    if not label.replace("_", "").isalnum() or not label[0].isalpha():
        raise param_error("label", label, "a PLUMED label: a letter, then letters, digits or underscores")
    ncv = NumpyCV.from_model(cv, featurizer)
    feature_lines, features = plumed_input(ncv.featurizer_dict, pbc=pbc)
    model_lines, outputs = _model_lines(ncv, fmt, features, label)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "pytorch":
        export_torchscript(cv, out / "model.ptc")
    header = [
        f"# CV exported by surrodyn ({fmt}): {ncv.featurizer.n_features} features -> {ncv.n_latent} CVs.",
        "# Lengths in nm (PLUMED's default UNITS), angles in radians; PLUMED atom numbers start at 1.",
    ]
    printed = f"PRINT ARG={','.join(outputs)} STRIDE={stride} FILE=COLVAR"
    text = "\n".join([*header, *feature_lines, *model_lines, printed])
    path = atomic_write_bytes(out / "plumed.dat", (text + "\n").encode())
    return PlumedExport(path, features, outputs)


def _finite_differences(
    evaluator: PlumedEvaluator, x: np.ndarray, box: np.ndarray | None, labels: list[str], step: float
) -> np.ndarray:
    """Fourth-order central differences of evaluated values: (n_frames, n_labels, n_atoms, 3)."""
    n, a = x.shape[:2]
    shifts = np.array([-2.0, -1.0, 1.0, 2.0]) * step
    coef = np.array([1.0, -8.0, 8.0, -1.0]) / (12.0 * step)
    moved = np.repeat(x[None, None, None], 4, 0).repeat(a, 1).repeat(3, 2)  # (shift, atom, xyz, frame, atom, xyz)
    for i in range(a):
        for k in range(3):
            moved[:, i, k, :, i, k] += shifts[:, None]
    big_box = None if box is None else np.tile(np.broadcast_to(np.asarray(box, dtype=float), (n, 3)), (12 * a, 1))
    values = evaluator(moved.reshape(-1, a, 3), big_box)
    vals = np.stack([values[label] for label in labels], -1).reshape(4, a, 3, n, len(labels))
    return np.einsum("s,saknd->ndak", coef, vals)


def check_export(
    cv: Any,
    featurizer: Featurizer | dict[str, Any],
    export: PlumedExport | str | Path,
    positions: np.ndarray,
    box: np.ndarray | None = None,
    step_nm: float = 1e-5,
) -> dict[str, float]:
    """Compare a PLUMED export with the model on frames: values, and gradients.

    Parameters
    ----------
    cv : LearnedCV
        The model.
    featurizer : Featurizer or dict
        Its featurizer.
    export : PlumedExport or path
        What :func:`export_plumed` returned, or the path of a ``plumed.dat``.
    positions : numpy.ndarray
        (n_frames, n_atoms, 3) held-out frames in nm.
    box : numpy.ndarray, optional
        Box lengths (nm) for periodic exports.
    step_nm : float
        Step of the fourth-order central differences.

    Returns
    -------
    dict
        ``value``: max |CV_plumed − CV_model| (the model's own ``transform`` of the featurizer's
        features); ``gradient``: max |∂CV_plumed/∂x − ∂CV/∂x| in CV units per nm, the reference
        being :meth:`NumpyCV.value_and_gradient`. The PLUMED side is evaluated by
        :class:`~surrodyn.cv._plumed_eval.PlumedEvaluator`; its gradient is the finite difference
        of the whole input, except through ``PYTORCH_MODEL``, which PLUMED feeds float32: there,
        as in PLUMED, the model's autograd Jacobian at the float32 features times the finite
        differences of the feature actions.
    """
    path = export.plumed_dat if isinstance(export, PlumedExport) else Path(export)
    evaluator = PlumedEvaluator(path)
    x = np.asarray(positions, dtype=float)
    if x.ndim != 3:
        raise ConfigError(f"positions must be (frames, atoms, 3); got {x.shape}.")
    ncv = NumpyCV.from_model(cv, featurizer)
    ref = cv.transform(ncv.featurizer.compute(x, box))
    values = evaluator(x, box)
    got = np.stack([values[o] for o in evaluator.printed], -1)
    _, grad = ncv.value_and_gradient(x, box)
    models = [(str(label), kw) for label, action, kw, _ in evaluator.actions if action == "PYTORCH_MODEL"]
    if not models:
        fd = _finite_differences(evaluator, x, box, evaluator.printed, step_nm)
    else:
        label, kw = models[0]
        args = kw["ARG"].split(",")
        feats = torch.tensor(np.stack([values[a] for a in args], -1), dtype=torch.float32, requires_grad=True)
        out = torch.cat([evaluator.model(label)(row[None]) for row in feats])
        rows = [torch.autograd.grad(out[:, j].sum(), feats, retain_graph=True)[0] for j in range(out.shape[1])]
        jac_model = torch.stack(rows, 1).double().numpy()  # (n, d, F)
        fd_feats = _finite_differences(evaluator, x, box, args, step_nm)
        fd = np.einsum("ndf,nfak->ndak", jac_model, fd_feats)
    return {"value": float(np.abs(got - ref).max()), "gradient": float(np.abs(fd - grad).max())}
