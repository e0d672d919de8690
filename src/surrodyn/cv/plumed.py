"""PLUMED inputs for a learned CV, and the numerical check of every export against the model.

- :func:`export_plumed` — a ``plumed.dat`` that computes the same features
  (:func:`plumed_input`) and then the network, as ``PYTORCH_MODEL`` (with the TorchScript file of
  :func:`~surrodyn.cv.export.export_torchscript`), as PLUMED's ``ANN`` action (tanh only), or as
  one Lepton ``CUSTOM`` per unit (small networks).
- :func:`check_export` — values and gradients of a PLUMED export against the model, with the NumPy
  evaluator of :mod:`surrodyn.cv._plumed_eval` (the PyPI ``plumed`` package has no kernel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..data.io import atomic_write_bytes
from ..errors import ConfigError, param_error
from ._plumed_eval import PlumedEvaluator, evaluate_plumed
from .export import NumpyCV, export_torchscript
from .features import Featurizer, _pair_list

__all__ = ["CUSTOM_MAX_WEIGHTS", "PlumedExport", "check_export", "evaluate_plumed", "export_plumed", "plumed_input"]

CUSTOM_MAX_WEIGHTS = 4096  # the largest network (weights, biases excluded) written as CUSTOM expressions
_FORMATS = ("pytorch", "ann", "custom")


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
