"""Atomic Dataset I/O: nothing half-written is ever left at the destination."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import OutputError

__all__ = [
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_writable",
    "read_dataset",
    "strict_json",
    "write_dataset",
]


def check_writable(path: str | Path) -> Path:
    """Fail early, before any work, if ``path`` cannot be written.

    Parameters
    ----------
    path : str or Path
        Destination file.

    Returns
    -------
    Path
        The path, resolved.

    Raises
    ------
    OutputError
        If the parent directory is missing or not writable, or ``path`` is a directory.
    """
    p = Path(path).expanduser().resolve()
    if p.is_dir() and p.suffix != ".zarr":
        raise OutputError(f"output path {str(path)!r} is a directory: give a file name such as {str(p / 'out.nc')!r}.")
    parent = p.parent
    if not parent.is_dir():
        raise OutputError(f"output directory {str(parent)!r} does not exist: create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {str(parent)!r} is not writable.")
    if p.suffix not in (".nc", ".nc4", ".netcdf", ".zarr"):
        raise OutputError(f"output path {str(path)!r} must end in .nc (NetCDF) or .zarr (Zarr).")
    return p


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to NetCDF (``.nc``) or Zarr (``.zarr``) atomically.

    The data go to a temporary name in the destination directory, which is then renamed over
    the destination, so a crash leaves either the old file or the new one, never a mix.

    Parameters
    ----------
    ds : xarray.Dataset
        Data to write.
    path : str or Path
        Destination.

    Returns
    -------
    Path
        The written path.
    """
    p = check_writable(path)
    if p.suffix == ".zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError("writing .zarr needs the 'zarr' package: pip install 'surrodyn[zarr]'.") from None
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
        try:
            ds.to_zarr(tmp, mode="w")
            if p.exists():
                import shutil

                old = p.with_name(p.name + ".old")
                os.replace(p, old)
                os.replace(tmp, p)
                shutil.rmtree(old)
            else:
                os.replace(tmp, p)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return p
    fd, tmpname = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmpname, engine="netcdf4")
        os.chmod(tmpname, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmpname, p)
    except BaseException:
        Path(tmpname).unlink(missing_ok=True)
        raise
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    A crash leaves either the old file or the new one, never a partial file.
    """
    p = Path(path)
    fd, tmpname = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmpname, 0o666 & ~_umask())
        os.replace(tmpname, p)
    except BaseException:
        Path(tmpname).unlink(missing_ok=True)
        raise
    return p


def _json_clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_clean(x) for x in v]
    return v


def strict_json(obj: Any, indent: int | None = 1) -> str:
    """Return the standard JSON text of ``obj``, with NaN and infinities written as ``null``.

    Python's ``json`` writes ``NaN`` by default, which is not JSON and breaks strict readers
    (JavaScript, jq, most other languages). An undefined figure (a transition not found, a score
    that does not apply) becomes ``null``.

    Parameters
    ----------
    obj : Any
        Dicts, lists, tuples, strings, numbers, bools and None.
    indent : int or None
        As for :func:`json.dumps`.

    Returns
    -------
    str
    """
    return json.dumps(_json_clean(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 1) -> Path:
    """Write :func:`strict_json` of ``obj`` (newline-terminated) atomically, as :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, (strict_json(obj, indent) + "\n").encode())


def atomic_torch_save(path: str | Path, obj: object) -> Path:
    """``torch.save`` ``obj`` (e.g. a state dict) to ``path`` atomically (torch is imported only here)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_savez(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez`` ``arrays`` to ``path`` atomically (temporary file + rename)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_dataset(path: str | Path) -> xr.Dataset:
    """Read a Dataset written by :func:`write_dataset` (loaded into memory, file closed)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no dataset at {str(path)!r}.")
    if p.suffix == ".zarr":
        return xr.open_zarr(p).load()
    with xr.open_dataset(p, engine="netcdf4") as ds:
        return ds.load()
