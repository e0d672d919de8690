"""The ``surrodyn cv train`` configuration (YAML) and the feature specs it names.

Example (see ``examples/cv_ala2.yaml``)::

    topology: ala2.pdb
    trajectory: [traj.dcd]          # or: colvar: COLVAR (+ columns: [...]) for ready-made CV columns
    stride: 1
    features:
      - distances: {selection: "not name H*"}
      - dihedrals: {quads: [[4, 6, 8, 14]], labels: [phi]}
    model: {method: beta-vae, n_latent: 2, encoder: [64, 32], activation: tanh}
    training: {beta: 0.1, lag: 0, seed: 0, max_epochs: 300}
    out: cv_model

``method`` is ``beta-vae`` (default), ``ae`` (a plain autoencoder: beta = 0), ``pca`` or ``tica``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, param_error, read_yaml_mapping, unknown_keys_error
from .features import Angles, CentreOfMassDistance, Contacts, Dihedrals, Distances, Spec
from .learn import FitSettings
from .readers import READERS

__all__ = ["METHODS", "CVConfig", "specs_from_list", "specs_to_list"]

METHODS = ("beta-vae", "ae", "pca", "tica")
_SPECS: dict[str, type] = {
    "distances": Distances,
    "angles": Angles,
    "dihedrals": Dihedrals,
    "contacts": Contacts,
    "com_distance": CentreOfMassDistance,
}
_TUPLE_FIELDS = {"triples", "quads", "labels"}


def specs_from_list(items: list[Any]) -> list[Spec]:
    """Build feature specs from ``[{kind: {field: value}}, ...]`` (the YAML ``features`` list)."""
    if not isinstance(items, list) or not items:
        raise ConfigError("'features' must be a non-empty list, e.g. [{distances: {selection: 'not name H*'}}].")
    specs: list[Spec] = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"each feature entry is one mapping {{kind: {{...}}}}; got {item!r}.")
        ((kind, fields),) = item.items()
        if kind not in _SPECS:
            raise unknown_keys_error([kind], _SPECS, "feature kind")
        cls = _SPECS[kind]
        fields = dict(fields or {})
        allowed = [f.name for f in dataclasses.fields(cls)]
        if set(fields) - set(allowed):
            raise unknown_keys_error(set(fields) - set(allowed), allowed, f"field(s) of {kind}")
        for name in _TUPLE_FIELDS & set(fields):
            value = fields[name]
            fields[name] = None if value is None else tuple(
                tuple(int(i) for i in v) if isinstance(v, list | tuple) else v for v in value)  # fmt: skip
        try:
            specs.append(cls(**fields))
        except TypeError as err:
            raise ConfigError(f"feature {kind}: {err}") from None
    return specs


def specs_to_list(specs: list[Spec]) -> list[dict[str, Any]]:
    """Turn feature specs back into the YAML list form (the inverse of :func:`specs_from_list`)."""
    kinds = {cls: kind for kind, cls in _SPECS.items()}

    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, tuple | list) else v

    return [{kinds[type(s)]: {k: plain(v) for k, v in dataclasses.asdict(s).items()}} for s in specs]


@dataclass
class CVConfig:
    """A CV training job: where the frames come from, the features, the model and its training.

    Parameters
    ----------
    topology : str or None
        Topology file (not needed with ``colvar``, or for ASE trajectories).
    trajectory : list of str
        Trajectory files (one continuous trajectory each).
    colvar : str or None
        A PLUMED COLVAR file used directly as features (instead of topology + trajectory).
    columns : list of str or None
        COLVAR columns to use (default all but ``time``).
    reader : str
        Trajectory reader (``auto``, ``mdanalysis``, ``mdtraj``, ``ase``).
    stride, chunk : int
        Frame stride and streaming block size.
    features : list of Spec
        Feature specs.
    method : str
        One of :data:`METHODS`.
    model : dict
        Architecture (``n_latent``, ``encoder``, ``decoder``, ``activation``).
    training : FitSettings
        Training settings (``lag`` is also TICA's lag).
    out : str
        Model directory.
    """

    topology: str | None = None
    trajectory: list[str] = field(default_factory=list)
    colvar: str | None = None
    columns: list[str] | None = None
    reader: str = "auto"
    stride: int = 1
    chunk: int = 1000
    features: list[Spec] = field(default_factory=list)
    method: str = "beta-vae"
    model: dict[str, Any] = field(default_factory=dict)
    training: FitSettings = field(default_factory=FitSettings)
    out: str = "cv_model"

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> CVConfig:
        """Validate a config mapping; relative paths are taken relative to ``base``."""
        if not isinstance(data, dict):
            raise ConfigError("a CV config must be a mapping.")
        allowed = [f.name for f in dataclasses.fields(cls)]
        if set(data) - set(allowed):
            raise unknown_keys_error(set(data) - set(allowed), allowed, "key(s) in the CV config")
        d = dict(data)

        def path(p: Any) -> str:
            q = Path(str(p)).expanduser()
            return str(q if q.is_absolute() or base is None else base / q)

        if d.get("topology") is not None:
            d["topology"] = path(d["topology"])
        traj = d.get("trajectory") or []
        d["trajectory"] = [path(t) for t in ([traj] if isinstance(traj, str) else traj)]
        if d.get("colvar") is not None:
            d["colvar"] = path(d["colvar"])
            if d["trajectory"] or d.get("features"):
                raise ConfigError("give either 'colvar' or 'trajectory' with 'features', not both.")
        elif not d["trajectory"] and d.get("topology") is None:
            raise ConfigError("the config needs 'trajectory' (and 'topology') or 'colvar'.")
        else:
            d["features"] = specs_from_list(d.get("features") or [])
        method = d.get("method") or (d.get("model") or {}).get("method", "beta-vae")
        model = dict(d.get("model") or {})
        model.pop("method", None)
        if method not in METHODS:
            raise param_error("method", method, f"one of {METHODS}")
        d["method"], d["model"] = method, model
        training = dict(d.get("training") or {})
        allowed_t = [f.name for f in dataclasses.fields(FitSettings)]
        if set(training) - set(allowed_t):
            raise unknown_keys_error(set(training) - set(allowed_t), allowed_t, "key(s) in training")
        if method == "ae":
            if training.get("beta", 0) != 0:
                raise param_error("training.beta", training["beta"], "0 (or absent) for method 'ae'")
            training["beta"] = 0.0
        d["training"] = FitSettings(**training)
        if d.get("reader", "auto") not in READERS:
            raise param_error("reader", d["reader"], f"one of {READERS}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CVConfig:
        """Read and validate a YAML config; paths in it are relative to the file."""
        p = Path(path)
        return cls.from_dict(read_yaml_mapping(p, "CV config"), base=p.parent)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able form (stored in the model directory)."""
        d = dataclasses.asdict(self)
        d["features"] = specs_to_list(self.features)
        d["model"] = {"method": self.method, **self.model}
        d.pop("method")
        return d
