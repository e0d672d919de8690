"""A NumPy evaluator of the PLUMED inputs that :mod:`surrodyn.cv.export` writes (no PLUMED kernel needed).

It reads a ``plumed.dat`` and evaluates its actions on position frames, following PLUMED's
documented semantics, so that an export can be checked value by value and, by finite
differences, gradient by gradient, on machines without a PLUMED build (the PyPI ``plumed``
package is only the Python wrapper). It is written independently of
:class:`~surrodyn.cv.features.Featurizer`, from the PLUMED manual and sources:

- ``DISTANCE``, ``ANGLE`` (three atoms), ``TORSION`` (four atoms) on atoms (1-based) or virtual
  atoms; with a box and without ``NOPBC`` the atoms are made whole along their order first
  (PLUMED's ``makeWhole``), which for a distance is the minimum image;
- ``CENTER ATOMS= [WEIGHTS=] [NOPBC]``: the weighted centre (weights normalised by their sum);
- ``COORDINATION GROUPA= [GROUPB=] (SWITCH={RATIONAL R_0= NN= MM= D_0=} | R_0= NN= MM= D_0=)``: the
  sum of the rational switch over the pairs (no self-pairs; N(N−1)/2 pairs without ``GROUPB``).
  ``SWITCH={RATIONAL ...}`` without ``D_MAX`` is the plain function; the ``R_0=``/``NN=``/``MM=``
  keywords of COORDINATION itself cut it at d_max = d0 + r0·(10⁻⁵)^(1/(n−m)) and stretch it to
  reach 0 there, exactly as PLUMED does;
- ``CUSTOM ARG= VAR= FUNC= PERIODIC=NO``: a Lepton expression (``+ - * / ^``, unary minus, the
  Lepton functions, PLUMED's constants);
- ``ANN``: PLUMED's ``annfunc`` module (weights row-major with one row per node of the next
  layer, activations ``Linear`` and ``Tanh``), components ``label.node-i``;
- ``PYTORCH_MODEL FILE= ARG=``: the TorchScript model, fed float32 arguments of shape
  (1, n) as PLUMED's LibTorch interface does, components ``label.node-i``;
- ``PRINT ARG=``: recorded (:attr:`PlumedEvaluator.printed`), its arguments must exist.

Anything else raises :class:`~surrodyn.errors.ConfigError`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["PlumedEvaluator", "evaluate_plumed", "lepton"]

_EPS = np.finfo(float).eps

# ---------------------------------------------------------------------------------------------
# Lepton expressions


_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "sec": lambda x: 1 / np.cos(x), "csc": lambda x: 1 / np.sin(x), "cot": lambda x: 1 / np.tan(x),
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2, "sinh": np.sinh,
    "cosh": np.cosh, "tanh": np.tanh, "step": lambda x: np.where(x >= 0, 1.0, 0.0),
    "delta": lambda x: np.where(x == 0, np.inf, 0.0), "square": np.square, "cube": lambda x: x**3,
    "recip": lambda x: 1 / x, "min": np.minimum, "max": np.maximum, "abs": np.abs, "floor": np.floor,
    "ceil": np.ceil, "select": lambda x, y, z: np.where(x != 0, y, z), "coth": lambda x: 1 / np.tanh(x),
    "sech": lambda x: 1 / np.cosh(x), "csch": lambda x: 1 / np.sinh(x), "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh, "erf": np.vectorize(math.erf), "erfc": np.vectorize(math.erfc),
}  # fmt: skip
_CONSTANTS = {"e": math.e, "log2e": 1 / math.log(2), "log10e": 1 / math.log(10), "ln2": math.log(2),
              "ln10": math.log(10), "pi": math.pi, "pi_2": math.pi / 2, "pi_4": math.pi / 4,
              "sqrt2": math.sqrt(2), "sqrt1_2": math.sqrt(0.5)}  # fmt: skip
_PRECEDENCE = {"+": 0, "-": 0, "*": 1, "/": 1, "^": 3}  # Lepton's; unary minus binds at 2, ^ is right-associative
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")

Expr = Callable[[dict[str, np.ndarray]], Any]


def lepton(expression: str) -> Expr:
    """Parse a Lepton expression into a function of a ``{variable: array}`` mapping.

    Parameters
    ----------
    expression : str
        E.g. ``"tanh(0.5*x0-1.5e-3*x1+0.1)"``; the grammar of Lepton's ``Parser.cpp``: binary
        ``+ - * / ^`` (``^`` binds tightest and groups to the right), unary minus binding tighter
        than ``*`` but looser than ``^`` (``-x^2`` is ``-(x^2)``), functions, parentheses.

    Returns
    -------
    callable
        ``f(variables) -> array``, evaluated elementwise with NumPy.

    Raises
    ------
    ConfigError
        On a syntax error or an unknown function.
    """
    tokens: list[tuple[str, str]] = []
    for number, name, other in _TOKEN.findall(expression):
        if number:
            tokens.append(("num", number))
        elif name:
            tokens.append(("name", name))
        elif other.strip():
            tokens.append(("op", other))
    pos = 0

    def fail(what: str) -> ConfigError:
        return ConfigError(f"Lepton expression {expression!r}: {what}.")

    def parse(precedence: int) -> Expr:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("unexpected end")
        kind, text = tokens[pos]
        pos += 1
        result: Expr
        if kind == "num":
            value = float(text)
            result = lambda v, c=value: c  # noqa: E731
        elif kind == "name" and pos < len(tokens) and tokens[pos] == ("op", "("):
            if text not in _FUNCTIONS:
                raise fail(f"unknown function {text!r}")
            pos += 1
            args = [parse(0)]
            while pos < len(tokens) and tokens[pos] == ("op", ","):
                pos += 1
                args.append(parse(0))
            if pos >= len(tokens) or tokens[pos] != ("op", ")"):
                raise fail("unbalanced parentheses")
            pos += 1
            func = _FUNCTIONS[text]
            result = lambda v, f=func, a=tuple(args): f(*(g(v) for g in a))  # noqa: E731
        elif kind == "name":
            result = lambda v, n=text: v[n] if n in v else _CONSTANTS[n]  # noqa: E731
        elif text == "(":
            result = parse(0)
            if pos >= len(tokens) or tokens[pos] != ("op", ")"):
                raise fail("unbalanced parentheses")
            pos += 1
        elif text == "-":
            inner = parse(2)
            result = lambda v, g=inner: -g(v)  # noqa: E731
        else:
            raise fail(f"unexpected token {text!r}")
        while pos < len(tokens) and tokens[pos][0] == "op" and tokens[pos][1] in _PRECEDENCE:
            op = tokens[pos][1]
            if _PRECEDENCE[op] < precedence:
                break
            pos += 1
            right = parse(_PRECEDENCE[op] + (0 if op == "^" else 1))
            result = _binary(op, result, right)
        return result

    tree = parse(0)
    if pos != len(tokens):
        raise fail(f"unexpected token {tokens[pos][1]!r}")

    def evaluate(variables: dict[str, np.ndarray]) -> Any:
        unknown = {t for k, t in tokens if k == "name" and t not in _FUNCTIONS} - set(variables) - set(_CONSTANTS)
        if unknown:
            raise fail(f"unknown variable(s) {sorted(unknown)}")
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # C++ semantics: inf and nan, no error
            return tree(variables)

    return evaluate


def _binary(op: str, a: Expr, b: Expr) -> Expr:
    if op == "+":
        return lambda v: a(v) + b(v)
    if op == "-":
        return lambda v: a(v) - b(v)
    if op == "*":
        return lambda v: a(v) * b(v)
    if op == "/":
        return lambda v: a(v) / b(v)
    return lambda v: np.power(a(v), b(v))


# ---------------------------------------------------------------------------------------------
# the input file


def _statements(text: str) -> list[tuple[str | None, str, dict[str, str], set[str]]]:
    """(label, action, keywords, flags) of every action; comments, ``...`` continuations and braces handled."""
    lines: list[str] = []
    block: list[str] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.split()[0] == "ENDPLUMED":
            break
        if block is not None:
            if line.startswith("..."):
                lines.append(" ".join(block))
                block = None
            else:
                block.append(line)
        elif line.endswith("..."):
            block = [line[:-3]]
        else:
            lines.append(line)
    if block is not None:
        raise ConfigError(f"unterminated '...' continuation block starting with {block[0]!r}.")
    out = []
    for line in lines:
        words = re.findall(r"(?:[^\s{]+(?:\{[^}]*\})?)+", line)
        label = None
        if words[0].endswith(":"):
            label, words = words[0][:-1], words[1:]
        action, keywords, flags = words[0], {}, set()
        for word in words[1:]:
            if "=" in word:
                key, value = word.split("=", 1)
                keywords[key] = value[1:-1] if value.startswith("{") and value.endswith("}") else value
            else:
                flags.add(word)
        label = keywords.pop("LABEL", label)
        out.append((label, action, keywords, flags))
    return out


def _numbers(text: str) -> list[float]:
    return [float(t) for t in text.split(",")]


def _mic(d: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    return d if box is None else d - box * np.round(d / box)


class PlumedEvaluator:
    """Parse a PLUMED input once; evaluate it on blocks of frames.

    Parameters
    ----------
    path : str or Path
        The ``plumed.dat``; ``FILE=`` of ``PYTORCH_MODEL`` is read relative to its directory.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such file.")
        self.actions = _statements(self.path.read_text())
        self.printed: list[str] = []
        self._models: dict[str, Any] = {}
        self._custom: dict[int, Expr] = {}
        for k, (label, action, kw, _) in enumerate(self.actions):
            if action == "PRINT":
                self.printed += kw.get("ARG", "").split(",")
            elif action == "CUSTOM":
                self._custom[k] = lepton(kw["FUNC"])
            elif action == "PYTORCH_MODEL":
                import torch

                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
                    self._models[str(label)] = torch.jit.load(str(self.path.parent / kw.get("FILE", "model.ptc")))

    def model(self, label: str) -> Any:
        """Return the TorchScript module of the ``PYTORCH_MODEL`` action ``label``."""
        if label not in self._models:
            raise ConfigError(f"{self.path}: no PYTORCH_MODEL labelled {label!r}.")
        return self._models[label]

    def __call__(self, positions: np.ndarray, box: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Evaluate every action on frames.

        Parameters
        ----------
        positions : numpy.ndarray
            (n_frames, n_atoms, 3) in nm.
        box : numpy.ndarray, optional
            Orthorhombic box lengths in nm, (3,) or (n_frames, 3).

        Returns
        -------
        dict
            Every value by its PLUMED name (``label`` or ``label.component``), each (n_frames,);
            virtual atoms by label, (n_frames, 3).
        """
        x = np.asarray(positions, dtype=float)
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ConfigError(f"positions must be (frames, atoms, 3); got {np.shape(positions)}.")
        bx = None if box is None else np.broadcast_to(np.asarray(box, dtype=float), (len(x), 3))
        values: dict[str, np.ndarray] = {}
        vatoms: dict[str, np.ndarray] = {}

        def atoms(spec: str) -> list[np.ndarray]:
            out = []
            for token in spec.split(","):
                if token in vatoms:
                    out.append(vatoms[token])
                elif re.fullmatch(r"\d+-\d+", token):
                    a, b = map(int, token.split("-"))
                    out += [x[:, i - 1] for i in range(a, b + 1)]
                elif token.isdigit() and 1 <= int(token) <= x.shape[1]:
                    out.append(x[:, int(token) - 1])
                else:
                    raise ConfigError(f"{self.path}: atom {token!r} is neither 1..{x.shape[1]} nor a virtual atom.")
            return out

        def args(spec: str) -> list[np.ndarray]:
            missing = [a for a in spec.split(",") if a not in values]
            if missing:
                raise ConfigError(f"{self.path}: argument(s) {missing} are not defined before use.")
            return [values[a] for a in spec.split(",")]

        for k, (label, action, kw, flags) in enumerate(self.actions):
            pbc = bx if "NOPBC" not in flags else None
            if action in ("DISTANCE", "ANGLE", "TORSION"):
                p = _whole(atoms(kw["ATOMS"]), pbc)
                need = {"DISTANCE": 2, "ANGLE": 3, "TORSION": 4}[action]
                if len(p) != need:
                    raise ConfigError(f"{self.path}: {action} {label} needs {need} atoms here, got {len(p)}.")
                values[str(label)] = _geometry(action, p)
            elif action == "CENTER":
                p = _whole(atoms(kw["ATOMS"]), pbc)
                w = np.asarray(_numbers(kw["WEIGHTS"]) if "WEIGHTS" in kw else [1.0] * len(p))
                if "MASS" in flags or len(w) != len(p):
                    raise ConfigError(f"{self.path}: CENTER {label} needs explicit WEIGHTS, one per atom.")
                vatoms[str(label)] = np.einsum("a,afi->fi", w / w.sum(), np.stack(p))
            elif action == "COORDINATION":
                values[str(label)] = _coordination(kw, atoms, pbc)
            elif action == "CUSTOM":
                names = kw["VAR"].split(",") if "VAR" in kw else ["x", "y", "z"][: len(kw["ARG"].split(","))]
                arrays = args(kw["ARG"])
                if kw.get("PERIODIC", "NO") != "NO" or len(names) != len(arrays):
                    raise ConfigError(f"{self.path}: CUSTOM {label}: VAR must match ARG and PERIODIC must be NO.")
                values[str(label)] = np.broadcast_to(self._custom[k](dict(zip(names, arrays, strict=True))), len(x))
            elif action == "ANN":
                for j, out in enumerate(_ann(kw, np.stack(args(kw["ARG"]), -1)).T):
                    values[f"{label}.node-{j}"] = out
            elif action == "PYTORCH_MODEL":
                import torch

                inp = torch.from_numpy(np.stack(args(kw["ARG"]), -1).astype(np.float32))
                with torch.no_grad():
                    out = torch.cat([self._models[str(label)](row[None]) for row in inp]).double().numpy()
                for j in range(out.shape[1]):
                    values[f"{label}.node-{j}"] = out[:, j]
            elif action == "PRINT":
                args(kw["ARG"])
            else:
                raise ConfigError(f"{self.path}: the evaluator does not know the action {action!r}.")
        return values


def evaluate_plumed(path: str | Path, positions: np.ndarray, box: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Evaluate a PLUMED input on position frames with NumPy (see :class:`PlumedEvaluator`)."""
    return PlumedEvaluator(path)(positions, box)


def _whole(points: list[np.ndarray], box: np.ndarray | None) -> list[np.ndarray]:
    out = [points[0]]
    for p in points[1:]:
        out.append(out[-1] + _mic(p - out[-1], box) if box is not None else p)
    return out


def _geometry(action: str, p: list[np.ndarray]) -> np.ndarray:
    if action == "DISTANCE":
        return np.linalg.norm(p[1] - p[0], axis=-1)
    if action == "ANGLE":  # at the middle atom, between the bonds to the outer ones
        u, v = p[0] - p[1], p[2] - p[1]
        c = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        return np.arccos(np.clip(c, -1.0, 1.0))
    # TORSION: the angle between the projections of the outer bonds on the plane normal to the axis
    b0, axis, b2 = p[0] - p[1], p[2] - p[1], p[3] - p[2]
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * axis, -1, keepdims=True) * axis
    w = b2 - np.sum(b2 * axis, -1, keepdims=True) * axis
    return np.arctan2(np.sum(np.cross(axis, v) * w, -1), np.sum(v * w, -1))


def _rational(r: np.ndarray, r0: float, d0: float, n: int, m: int) -> np.ndarray:
    """PLUMED's RATIONAL: 1 below d0, (1 − q^n)/(1 − q^m) with q = (r − d0)/r0, its Taylor expansion near q = 1."""
    q = (r - d0) / r0
    x = q - 1.0
    near = np.abs(x) < 5.0e10 * _EPS
    qs = np.where(near | (q <= 0), 2.0, q)
    s = (1.0 - qs**n) / (1.0 - qs**m)
    d1 = 0.5 * n * (n - m) / m
    d2 = n * (m * m - 3.0 * m * (n - 1) + n * (2 * n - 3)) / (6.0 * m)
    s = np.where(near, n / m + x * (d1 + 0.5 * x * d2), s)
    return np.where(q <= 0, 1.0, s)


def _coordination(kw: dict[str, str], atoms: Callable[[str], list[np.ndarray]], box: np.ndarray | None) -> np.ndarray:
    a_ids = kw["GROUPA"].split(",")
    b_ids = kw["GROUPB"].split(",") if "GROUPB" in kw else None
    if "SWITCH" in kw:
        words = kw["SWITCH"].split()
        sw = dict(w.split("=", 1) for w in words[1:])
        if words[0] != "RATIONAL" or "D_MAX" in sw or set(sw) - {"R_0", "NN", "MM", "D_0"}:
            raise ConfigError(f"the evaluator knows SWITCH={{RATIONAL R_0= NN= MM= D_0=}} only; got {kw['SWITCH']!r}.")
        stretch = False
    else:
        sw, stretch = kw, True
    r0, d0 = float(sw["R_0"]), float(sw.get("D_0", 0.0))
    n = int(sw.get("NN", 6))
    m = int(sw.get("MM", 0)) or 2 * n
    pos_a = atoms(kw["GROUPA"])
    pairs = (
        list(combinations(range(len(a_ids)), 2))
        if b_ids is None
        else [(i, len(a_ids) + j) for i in range(len(a_ids)) for j in range(len(b_ids)) if a_ids[i] != b_ids[j]]
    )
    pos = pos_a + ([] if b_ids is None else atoms(kw["GROUPB"]))
    total = np.zeros(len(pos[0]))
    for i, j in pairs:
        r = np.linalg.norm(_mic(pos[j] - pos[i], box), axis=-1)
        s = _rational(r, r0, d0, n, m)
        if stretch:  # COORDINATION's own R_0/NN/MM: cut at d_max and stretch (SwitchingFunction::set)
            dmax = d0 + r0 * 0.00001 ** (1.0 / (n - m))
            s0, sd = _rational(np.zeros(1), r0, d0, n, m)[0], _rational(np.array([dmax]), r0, d0, n, m)[0]
            s = np.where(r > dmax, 0.0, (s - sd) / (s0 - sd))
        total = total + s
    return total


def _ann(kw: dict[str, str], inputs: np.ndarray) -> np.ndarray:
    nodes = [int(v) for v in kw["NUM_NODES"].split(",")]
    acts = kw["ACTIVATIONS"].split(",")
    if int(kw["NUM_LAYERS"]) != len(nodes) or len(acts) != len(nodes) - 1 or inputs.shape[1] != nodes[0]:
        raise ConfigError("ANN: NUM_LAYERS, NUM_NODES, ACTIVATIONS and ARG disagree.")
    h = inputs
    for i, act in enumerate(acts):
        w = np.asarray(_numbers(kw[f"WEIGHTS{i}"])).reshape(nodes[i + 1], nodes[i])  # row-major, row = next node
        h = h @ w.T + np.asarray(_numbers(kw[f"BIASES{i}"]))
        if act == "Tanh":
            h = np.tanh(h)
        elif act != "Linear":
            raise ConfigError(f"ANN activation {act!r}: the evaluator knows Linear and Tanh.")
    return h
