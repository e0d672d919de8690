"""The resumable directory store of a sweep, its status, and the combined sweep Dataset.

Layout of a store ``STORE/``::

    spec.yaml            canonical spec (base kMC config inlined)
    points.nc            the parameter table: a ``point`` dim with the parameters as coordinates
    points/p00000.nc     one NetCDF per finished point, written atomically by the worker
    failed/p00000.json   error type, message and traceback of a failed point
    partial/p00000/      finished replicas of a point in progress (removed when the point is written)

A point is *done* when its file exists, *failed* when only its failure record does, *missing*
otherwise. Everything is written to a temporary name and renamed, so a killed sweep leaves only
complete files behind (and temporary files that the next run removes).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, OutputError
from .spec import SweepSpec

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["Failure", "SweepStatus", "SweepStore", "compress", "sweep_status"]

STORE_FORMAT = 1
_POINT_RE = re.compile(r"^p(\d{5,})\.(nc|json)$")


def point_name(index: int) -> str:
    """File stem of point ``index``: ``p00000``."""
    return f"p{int(index):05d}"


def write_json_atomic(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` as JSON to a temporary name in ``path``'s directory, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Failure:
    """The record of a failed point.

    Attributes
    ----------
    index : int
        Point index.
    error_type : str
        Exception class name.
    message : str
        Exception message.
    traceback : str
        Formatted traceback ('' when the error was raised before the point was submitted).
    params : dict
        The point's parameters.
    """

    index: int
    error_type: str
    message: str
    traceback: str
    params: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "point": self.index,
            "error_type": self.error_type,
            "message": self.message,
            "traceback": self.traceback,
            "params": dict(self.params),
        }

    @classmethod
    def from_exception(cls, index: int, exc: BaseException, params: Mapping[str, float], tb: str = "") -> Failure:
        """Build the record of ``exc``."""
        return cls(int(index), type(exc).__name__, str(exc), tb, {k: float(v) for k, v in params.items()})


@dataclass(frozen=True)
class SweepStatus:
    """Which points of a store are done, failed or missing.

    Attributes
    ----------
    n_points : int
        Points in the design.
    done, missing : tuple of int
        Indices of finished and of not-yet-run points.
    failed : tuple of Failure
        Records of failed points (retried by the next run).
    computed : tuple of int
        Points attempted by the run that returned this status (empty for a status query).
    """

    n_points: int
    done: tuple[int, ...]
    failed: tuple[Failure, ...]
    missing: tuple[int, ...]
    computed: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every point is done."""
        return len(self.done) == self.n_points

    def summary(self) -> str:
        """One line: points done / failed / missing."""
        return f"{self.n_points} points: {len(self.done)} done, {len(self.failed)} failed, {len(self.missing)} missing"


class SweepStore:
    """A sweep's directory store (see the module docstring for the layout).

    Parameters
    ----------
    path : str or Path
        An existing store; use :meth:`create` to make one.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "spec.yaml").is_file():
            raise FileNotFoundError(f"no sweep store at {str(path)!r} (it has no spec.yaml).")
        self._spec: SweepSpec | None = None
        self._table: xr.Dataset | None = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | Path, spec: SweepSpec) -> SweepStore:
        """Open the store at ``path`` for ``spec``, creating it if needed.

        Raises
        ------
        ConfigError
            If the store holds another spec (the message shows the difference).
        OutputError
            If ``path`` is a file or a non-empty directory that is not a store.
        """
        p = Path(path).expanduser().resolve()
        if p.exists() and not p.is_dir():
            raise OutputError(f"sweep store {str(path)!r} is a file: give a directory path.")
        if (p / "spec.yaml").is_file():
            store = cls(p)
            store._check_same_spec(spec)
        else:
            if p.is_dir() and any(not c.name.startswith(".") for c in p.iterdir()):
                raise OutputError(
                    f"{str(path)!r} is a non-empty directory but not a sweep store: choose a new or empty directory."
                )
            p.mkdir(parents=True, exist_ok=True)
            text = f"# surrodyn sweep spec (canonical); fingerprint {spec.fingerprint()}\n" + spec.to_yaml()
            fd, tmp = tempfile.mkstemp(prefix=".spec.yaml.", suffix=".tmp", dir=p)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, p / "spec.yaml")
            store = cls(p)
        for sub in ("points", "failed", "partial"):
            (p / sub).mkdir(exist_ok=True)
        if not (p / "points.nc").is_file():
            store._write_table(spec)
        return store

    def _check_same_spec(self, spec: SweepSpec) -> None:
        old = self.spec
        if old.fingerprint() == spec.fingerprint():
            return
        diff = difflib.unified_diff(
            old.to_yaml().splitlines(), spec.to_yaml().splitlines(), "store spec.yaml", "given spec", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[2:22])
        raise ConfigError(
            f"the store {str(self.path)!r} holds a sweep of another spec (differences, store -> given):\n{shown}\n"
            "Use a new store for the new spec, or finish this one with its own spec "
            f"(surrodyn sweep run --store {self.path})."
        )

    def _write_table(self, spec: SweepSpec) -> None:
        import xarray as xr

        from .. import __version__
        from ..data.io import write_dataset
        from .design import parameter_table, point_seed

        table = parameter_table(spec)
        n = len(next(iter(table.values())))
        coords: dict[str, Any] = {"point": ("point", np.arange(n))}
        for name, values in table.items():
            coords[name] = ("point", values, {"units": _units(name)})
        seeds = np.array([point_seed(spec.seed, i) for i in range(n)], dtype=np.int64)
        ds = xr.Dataset(
            {"point_seed": ("point", seeds, {"long_name": "root seed of the point's replica ensemble"})},
            coords=coords,
            attrs={
                "title": "surrodyn sweep parameter table",
                "store_format": STORE_FORMAT,
                "sweep_name": spec.name,
                "sweep_fingerprint": spec.fingerprint(),
                "sweep_spec_yaml": spec.to_yaml(),
                "seed": spec.seed,
                "sampling": spec.sampling,
                "parameters": list(spec.parameter_names),
                "surrodyn_version": __version__,
            },
        )
        write_dataset(ds, self.path / "points.nc")

    # ------------------------------------------------------------------ contents
    @property
    def spec(self) -> SweepSpec:
        """The store's spec (read from ``spec.yaml``)."""
        if self._spec is None:
            self._spec = SweepSpec.from_yaml(self.path / "spec.yaml")
        return self._spec

    @property
    def table(self) -> xr.Dataset:
        """The parameter table (``points.nc``): the design as it was drawn when the store was made."""
        if self._table is None:
            from ..data.io import read_dataset

            self._table = read_dataset(self.path / "points.nc")
        return self._table

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the spec recorded when the store was made (point files carry it)."""
        return str(self.table.attrs["sweep_fingerprint"])

    @property
    def n_points(self) -> int:
        """Number of points of the design."""
        return int(self.table.sizes["point"])

    def params(self, index: int) -> dict[str, float]:
        """Parameter values of point ``index``."""
        return {n: float(self.table[n].values[index]) for n in self.spec.parameter_names}

    def point_seed(self, index: int) -> int:
        """Root seed of point ``index``'s ensemble."""
        return int(self.table["point_seed"].values[index])

    def point_path(self, index: int) -> Path:
        """Return the NetCDF file of a finished point."""
        return self.path / "points" / f"{point_name(index)}.nc"

    def failure_path(self, index: int) -> Path:
        """Return the JSON record of a failed point."""
        return self.path / "failed" / f"{point_name(index)}.json"

    def partial_dir(self, index: int) -> Path:
        """Checkpoint directory of a point's finished replicas."""
        return self.path / "partial" / point_name(index)

    def _indices(self, sub: str, ext: str) -> set[int]:
        folder = self.path / sub
        if not folder.is_dir():
            return set()
        out = set()
        for entry in os.scandir(folder):
            m = _POINT_RE.match(entry.name)
            if m and m.group(2) == ext and int(m.group(1)) < self.n_points:
                out.add(int(m.group(1)))
        return out

    def read_failure(self, index: int) -> Failure:
        """Read the failure record of point ``index``."""
        try:
            d = json.loads(self.failure_path(index).read_text())
            return Failure(int(d["point"]), d["error_type"], d["message"], d.get("traceback", ""), d.get("params", {}))
        except (OSError, ValueError, KeyError) as exc:
            return Failure(index, "UnreadableFailureRecord", str(exc), "", self.params(index))

    def record_failure(self, failure: Failure) -> None:
        """Write a failure record atomically (unless the point is already done)."""
        if not self.point_path(failure.index).exists():
            write_json_atomic(failure.to_dict(), self.failure_path(failure.index))

    def status(self, verify: bool = False) -> SweepStatus:
        """Which points are done, failed and missing.

        Parameters
        ----------
        verify : bool
            Open every point file and check that it belongs to this sweep; an unreadable or
            foreign file is renamed to ``pNNNNN.nc.corrupt`` and its point counts as missing.
        """
        done = self._indices("points", "nc")
        if verify:
            for i in sorted(done):
                if not self._point_file_ok(i):
                    p = self.point_path(i)
                    os.replace(p, p.with_name(p.name + ".corrupt"))
                    done.discard(i)
        failed = self._indices("failed", "json") - done
        missing = set(range(self.n_points)) - done - failed
        return SweepStatus(
            n_points=self.n_points,
            done=tuple(sorted(done)),
            failed=tuple(self.read_failure(i) for i in sorted(failed)),
            missing=tuple(sorted(missing)),
        )

    def _point_file_ok(self, index: int) -> bool:
        import netCDF4

        try:
            with netCDF4.Dataset(self.point_path(index)) as nc:
                return str(getattr(nc, "sweep_fingerprint", "")) == self.fingerprint and int(nc.point) == index
        except (OSError, AttributeError, ValueError, RuntimeError):
            return False

    def clean(self) -> None:
        """Remove leftovers of a killed run: temporary files, and records made stale by a finished point."""
        for folder in (self.path, self.path / "points", self.path / "failed"):
            if folder.is_dir():
                for f in folder.glob(".*.tmp"):
                    f.unlink(missing_ok=True)
        partial = self.path / "partial"
        if partial.is_dir():
            for f in partial.glob("*/.replica_*.tmp.npz"):
                f.unlink(missing_ok=True)
        for i in self._indices("points", "nc"):
            self.failure_path(i).unlink(missing_ok=True)
            shutil.rmtree(self.partial_dir(i), ignore_errors=True)


def _units(name: str) -> str:
    for suffix, units in (
        ("_cm3", "cm-3"),
        ("_V_s", "V s-1"),
        ("_K_s", "K s-1"),
        ("_V", "V"),
        ("_K", "K"),
        ("_eV", "eV"),
        ("_Hz", "Hz"),
        ("_s", "s"),
    ):
        if name.endswith(suffix):
            return units
    return "1"


def sweep_status(path: str | Path) -> SweepStatus:
    """Status of the sweep store at ``path`` (done, failed with their records, missing)."""
    return SweepStore(path).status()


def compress(ds: xr.Dataset) -> xr.Dataset:
    """Ask for zlib compression (with byte shuffling) of every numeric array of ``ds``; in place."""
    for var in ds.variables.values():
        if var.ndim >= 1 and var.dtype.kind in "fiu" and var.size > 64:
            var.encoding = {"zlib": True, "complevel": 4, "shuffle": True}
    return ds
