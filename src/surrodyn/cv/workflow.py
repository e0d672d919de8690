"""The CV jobs behind the CLI: train from a config, project a trajectory, explain a model.

A trained model directory records the job that made it (``info["job"]``: topology, feature
specs, reader, method and settings) and the resolved featurizer (``info["featurizer"]``: atom
indices of every feature), so that a new trajectory is featurised exactly as the training one
was, and exports can write the same features for PLUMED.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..data.io import atomic_write_bytes, write_dataset
from ..errors import ConfigError, unknown_keys_error
from .baselines import LinearCV, fit_linear_cv, load_cv
from .config import CVConfig, specs_from_list
from .features import Featurizer, read_colvar
from .interpret import geometric_library, latent_correlation, rank_variables, top_variables
from .learn import LearnedCV, fit_cv
from .readers import TrajectoryReader

__all__ = ["EXPORT_FORMATS", "default_plane", "explain", "export", "featurize", "project", "train"]

EXPORT_FORMATS = ("torchscript", "plumed", "numpy")

CV = LearnedCV | LinearCV


def _featurize(featurizer: Featurizer, reader: TrajectoryReader) -> np.ndarray:
    blocks = [featurizer.compute(x, box) for x, box in reader]
    if not blocks:
        raise ConfigError(f"no frames in {[str(t) for t in reader.trajectories] or reader.topology}.")
    return np.concatenate(blocks)


def _job_features(config: CVConfig, trajectories: Sequence[str]) -> tuple[list[np.ndarray], list[str], Any]:
    """Features of each trajectory of a job, their names and the featurizer (None for COLVAR input)."""
    if config.colvar is not None:
        names, values = read_colvar(config.colvar, config.columns)
        return [values[:: config.stride]], names, None
    trajs: list[str | None] = list(trajectories) or [None]
    arrays, featurizer = [], None
    for traj in trajs:
        reader = TrajectoryReader(config.topology, traj, chunk=config.chunk, stride=config.stride,
                                  reader=config.reader)  # fmt: skip
        featurizer = featurizer or Featurizer(reader.universe, config.features)
        arrays.append(_featurize(featurizer, reader))
    return arrays, featurizer.names, featurizer


def train(config: CVConfig, progress: bool = True) -> CV:
    """Featurise the job's trajectories, fit the CV and save it to ``config.out``.

    Parameters
    ----------
    config : CVConfig
        The job.
    progress : bool
        Show the training progress bar (beta-VAE/AE).

    Returns
    -------
    LearnedCV or LinearCV
        The saved model.
    """
    import dataclasses

    t0 = time.perf_counter()
    arrays, names, featurizer = _job_features(config, config.trajectory)
    seconds_features = time.perf_counter() - t0
    if config.method in ("pca", "tica"):
        model: CV = fit_linear_cv(arrays, config.method, n_latent=int(config.model.get("n_latent", 2)),
                                  lag=max(config.training.lag, 1), feature_names=names)  # fmt: skip
    else:
        settings = dataclasses.replace(config.training, progress=progress)
        model = fit_cv(arrays, config.model, settings, feature_names=names)
    model.info["job"] = config.to_dict()
    model.info["featurize_seconds"] = round(seconds_features, 3)
    if featurizer is not None and hasattr(featurizer, "to_dict"):
        model.info["featurizer"] = featurizer.to_dict()
    model.save(config.out)
    return model


def featurize(
    model: CV,
    trajectory: str | Path | Sequence[str | Path],
    topology: str | Path | None = None,
    stride: int = 1,
    reader: str | None = None,
) -> np.ndarray:
    """Features of a trajectory, computed as for the model's training frames.

    Parameters
    ----------
    model : LearnedCV or LinearCV
        A model trained by :func:`train` (its job records the features).
    trajectory : path or list of paths
        Trajectory file(s), or a COLVAR file for a model trained on COLVAR columns.
    topology : path, optional
        Topology (default: the training job's).
    stride : int
        Frame stride.
    reader : str, optional
        Trajectory reader (default: the training job's).

    Returns
    -------
    numpy.ndarray
        (n_frames, n_features).
    """
    if _job(model).get("colvar") is not None:
        files = [trajectory] if isinstance(trajectory, str | Path) else list(trajectory)
        return np.concatenate([read_colvar(str(f), model.feature_names)[1][::stride] for f in files])
    rd, featurizer = _open(model, trajectory, topology, stride, reader)
    return _featurize(featurizer, rd)


def _job(model: CV) -> dict[str, Any]:
    job = model.info.get("job")
    if job is None:
        raise ConfigError("this model does not record its features (it was not trained by `surrodyn cv train`).")
    return job


def _open(
    model: CV,
    trajectory: str | Path | Sequence[str | Path] | None,
    topology: str | Path | None,
    stride: int = 1,
    reader: str | None = None,
) -> tuple[TrajectoryReader, Featurizer]:
    """Open frames with the model's recorded features resolved on the topology (refused if they differ)."""
    job = _job(model)
    top = topology or job.get("topology")
    rd = TrajectoryReader(top, trajectory, chunk=int(job.get("chunk", 1000)), stride=stride,
                          reader=reader or job.get("reader", "auto"))  # fmt: skip
    featurizer = Featurizer(rd.universe, specs_from_list(job["features"]))
    if featurizer.names != list(model.feature_names):
        raise ConfigError(
            f"the topology {top} gives features {featurizer.names[:3]}..., the model was trained on "
            f"{list(model.feature_names)[:3]}...: not the same system."
        )
    return rd, featurizer


def project(
    model_dir: str | Path,
    trajectory: str | Path | Sequence[str | Path],
    out: str | Path,
    topology: str | Path | None = None,
    stride: int = 1,
) -> xr.Dataset:
    """Write the CVs of every frame of a trajectory to a NetCDF (dims frame, latent)."""
    model = load_cv(model_dir)
    z = model.transform(featurize(model, trajectory, topology, stride))
    ds = xr.Dataset(
        {"cv": (("frame", "latent"), z)},
        coords={"frame": np.arange(z.shape[0]) * stride, "latent": np.arange(z.shape[1])},
        attrs={"model": str(Path(model_dir).resolve()), "trajectory": str(trajectory), "stride": stride},
    )
    write_dataset(ds, out)
    return ds


def explain(
    model_dir: str | Path,
    trajectory: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    topology: str | Path | None = None,
    stride: int = 1,
    weights: np.ndarray | None = None,
    kT: float = 2.494,
    n_top: int = 3,
    plane: tuple[str, str] | None = None,
) -> str:
    """Rank geometric variables per latent dimension, draw the figures, write a text report.

    Parameters
    ----------
    model_dir : path
        Model directory.
    trajectory : path or list of paths
        Frames to analyse (a COLVAR file for a COLVAR-trained model: its columns are the variables).
    out_dir : path
        Output directory: ``report.txt``, ``ranking.nc``, ``fes.png``, ``latent_top.png``,
        ``latent_on_plane.png``, ``ranking.png``.
    topology : path, optional
        Topology (default: the training job's).
    stride : int
        Frame stride.
    weights : numpy.ndarray, optional
        Per-frame statistical weights (e.g. from reweighting a biased run) for the free energy.
    kT : float
        Thermal energy (kJ/mol) of the free-energy plot.
    n_top : int
        Top variables per latent dimension in the report and the coloured plot.
    plane : tuple of str, optional
        Two variables (names as in the report, e.g. ``("phi ALA2", "psi ALA2")``) whose plane
        ``latent_on_plane.png`` colours by each latent dimension. Default: :func:`default_plane`
        of the ranking.

    Returns
    -------
    str
        The report text.
    """
    from ..plot.cv import plot_latent_colored, plot_latent_fes, plot_latent_on_plane, plot_ranking

    model = load_cv(model_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = _job(model)
    if plane is not None:
        plane = tuple(plane)
        if len(plane) != 2 or plane[0] == plane[1]:
            raise ConfigError(f"plane must name two different variables; got {plane!r}.")
    if job.get("colvar") is not None:
        _check_plane(plane, model.feature_names)
        features = featurize(model, trajectory, stride=stride)
        variables = {n: features[:, k] for k, n in enumerate(model.feature_names)}
        periodic: list[str] = []
    else:  # one pass over the frames for the model's features and the geometric library
        rd, featurizer = _open(model, trajectory, topology, stride)
        specs, periodic = geometric_library(rd.universe)
        library = Featurizer(rd.universe, specs)
        _check_plane(plane, library.names)  # before the pass over the frames
        blocks = [(featurizer.compute(x, box), library.compute(x, box)) for x, box in rd]
        if not blocks:
            raise ConfigError(f"no frames in {trajectory}.")
        features = np.concatenate([b[0] for b in blocks])
        values = np.concatenate([b[1] for b in blocks])
        variables = {n: values[:, k] for k, n in enumerate(library.names)}
    z = model.transform(features)
    table = rank_variables(z, variables, periodic=periodic)
    write_dataset(table, out / "ranking.nc")
    top = top_variables(table, by="spearman", n=n_top)
    plane = plane or default_plane(top)
    corr = latent_correlation(z)
    lines = [
        f"model: {Path(model_dir)} ({job.get('model', {}).get('method', 'beta-vae')}, {z.shape[1]} latent dims)",
        f"frames: {z.shape[0]} from {trajectory}",
    ]
    settings = model.info.get("settings") or {}
    network = getattr(model, "network", None)
    if settings and network is not None:  # a learned CV: how it was trained, so the report can be reproduced
        penalty = (
            f"{settings.get('decorrelation_kind', 'linear')} decorrelation {settings['decorrelation']:g}"
            if settings.get("decorrelation")
            else "no decorrelation"
        )
        lines.append(
            f"training: beta {settings.get('beta', 0):g}, {network.config.decoder_kind} decoder, {penalty}, "
            f"scaling {settings.get('scaling')}, seed {settings.get('seed')}, {model.info.get('epochs')} epochs"
        )
    diag = model.info.get("diagnostics")
    if diag:
        lines.append(f"active latent dimensions: {diag['n_active']} of {z.shape[1]}; KL per dimension (nats): "
                     + ", ".join(f"{k:.3g}" for k in diag["kl_per_dim"])
                     + f"; variance explained by the reconstruction: {diag['variance_explained']:.3f}")  # fmt: skip
    for d, items in top.items():
        mi = table["mutual_information"].sel(latent=d)
        ranked = ", ".join(f"{name} (ρ={value:+.2f}, MI={float(mi.sel(variable=name)):.2f})" for name, value in items)
        lines.append(f"latent {d}: {ranked}")
    if z.shape[1] > 1:
        off = corr[np.triu_indices(z.shape[1], 1)]
        lines.append(f"max |correlation| between latent dimensions: {np.abs(off).max():.3f} (disentangled: ≈ 0)")
    if plane is not None:
        lines.append(f"latent_on_plane.png: every latent dimension over ({plane[0]}, {plane[1]})")
    report = "\n".join(lines) + "\n"
    atomic_write_bytes(out / "report.txt", report.encode())
    plot_latent_fes(z, out / "fes.png", kT=kT, weights=weights)
    shown: dict[str, np.ndarray] = {}
    for items in top.values():
        for name, _ in items:
            shown.setdefault(name, variables[name])
    plot_latent_colored(z, shown, out / "latent_top.png")
    if plane is not None:
        plot_latent_on_plane(z, variables[plane[0]], variables[plane[1]], out / "latent_on_plane.png", names=plane)
    plot_ranking(table, out / "ranking.png")
    return report


def _check_plane(plane: tuple[str, ...] | None, names: Sequence[str]) -> None:
    """Refuse a plane that names a variable the analysis does not have, suggesting the closest."""
    if plane is not None and (missing := [name for name in plane if name not in names]):
        raise unknown_keys_error(missing, names, "plane variable(s)")


def default_plane(top: Mapping[int, Sequence[tuple[str, float]]]) -> tuple[str, str] | None:
    """Choose the plane to draw the latents over: the top variables of the first two latents that differ.

    Parameters
    ----------
    top : mapping
        Ranked ``(name, score)`` pairs per latent dimension, as :func:`~surrodyn.cv.top_variables` gives.

    Returns
    -------
    tuple of str or None
        The top variable of latent 0 and the top variable of the next latent led by another one;
        if every latent is led by the same variable, the other ranked variable with the largest
        absolute score. ``None`` if fewer than two variables are ranked.
    """
    dims = [d for d in sorted(top) if top[d]]
    if not dims:
        return None
    first = top[dims[0]][0][0]
    second = next((top[d][0][0] for d in dims[1:] if top[d][0][0] != first), None)
    if second is None:
        others = [(abs(score), name) for d in dims for name, score in top[d] if name != first]
        second = max(others)[1] if others else None
    return None if second is None else (first, second)


def _featurizer_of(model: CV, topology: str | Path | None) -> Featurizer:
    """Return the model's featurizer: recorded at training, else rebuilt from its job and topology."""
    if _job(model).get("colvar") is not None:
        raise ConfigError("this model was trained on COLVAR columns: it has no atom-level features to export.")
    if "featurizer" in model.info and topology is None:
        return Featurizer.from_dict(model.info["featurizer"])
    return _open(model, None, topology, reader="mdanalysis")[1]


def export(
    model_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "torchscript",
    plumed_action: str = "ann",
    topology: str | Path | None = None,
    pbc: bool = False,
) -> tuple[list[Path], dict[str, float]]:
    """Export a model for an MD engine and check the export on the topology's frame.

    Parameters
    ----------
    model_dir : path
        Model directory.
    out_dir : path
        Output directory.
    fmt : str
        ``"torchscript"``: ``model.ptc`` + ``plumed.dat`` (``PYTORCH_MODEL``); ``"plumed"``: a
        ``plumed.dat`` with the network as ``ANN`` or ``CUSTOM`` (``plumed_action``); ``"numpy"``:
        ``cv.npz`` for :class:`~surrodyn.cv.export.NumpyCV` (OpenMM's ``PythonForce``).
    plumed_action : str
        ``"ann"`` or ``"custom"`` for ``fmt="plumed"``.
    topology : path, optional
        Topology (default: the features recorded with the model).
    pbc : bool
        Periodic simulation (PLUMED exports).

    Returns
    -------
    tuple
        The written files, and the check on the reference frame of the topology: the largest
        value and gradient deviations from the model (``{"value": ..., "gradient": ...}``).
    """
    from .export import NumpyCV
    from .plumed import check_export, export_plumed

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {EXPORT_FORMATS}.")
    model = load_cv(model_dir)
    featurizer = _featurizer_of(model, topology)
    top = topology or _job(model).get("topology")
    frame = None
    if top is not None and Path(top).is_file():
        rd = TrajectoryReader(top, None, reader="mdanalysis")
        frame, box = next(iter(rd))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "numpy":
        ncv = NumpyCV.from_model(model, featurizer)
        path = ncv.save(out / "cv.npz")
        check: dict[str, float] = {}
        if frame is not None:
            check["value"] = float(np.abs(ncv(frame) - model.transform(featurizer.compute(frame))).max())
        return [path], check
    written = export_plumed(model, featurizer, out, "pytorch" if fmt == "torchscript" else plumed_action, pbc=pbc)
    files = [written.plumed_dat] + ([out / "model.ptc"] if fmt == "torchscript" else [])
    check = {} if frame is None else check_export(model, featurizer, written, frame, box if pbc else None)
    return files, check
