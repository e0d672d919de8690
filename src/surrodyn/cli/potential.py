"""``surrodyn potential``: train and evaluate neural-network potentials; active-learning comparisons.

The YAML configs are read into frozen dataclasses: :class:`TrainJob` for ``train`` and
:class:`ActiveLearningJob` for ``active-learn``; their nested sections are the library's own
configs (:class:`surrodyn.potentials.TrainConfig`, :class:`surrodyn.potentials.ActiveLearningConfig`,
:class:`surrodyn.potentials.AutoencoderConfig`) and the keyword arguments of
:meth:`surrodyn.potentials.SymmetryFunctions.standard` (or of ``SymmetryFunctions.ani`` with
``grid: ani``). Paths in a config are relative to the file;
``out`` is relative to the working directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, OutputError, SurrodynError, param_error, read_yaml_mapping, unknown_keys_error

if TYPE_CHECKING:  # pragma: no cover
    from ..potentials import ActiveLearningConfig, TrainConfig

__all__ = ["ActiveLearningJob", "TrainJob", "add_arguments"]

METRICS = ("energy_rmse_meV_per_atom", "force_rmse_meV_per_A", "force_mae_meV_per_A")
# "auto" = "emt": asap3 if installed, else ASE; the xTB names need tblite (surrodyn[xtb])
REFERENCES = ("auto", "emt", "asap3-emt", "ase-emt", "gfn2-xtb", "gfn1-xtb")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``potential`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="potential_command", metavar="ACTION", required=True)
    tr = sub.add_parser("train", help="train an HDNNP on labelled extended-XYZ data (YAML config)")
    tr.add_argument("config", help="YAML: data, test, descriptor, train, out (examples/potential_train_smoke.yaml)")
    tr.add_argument("--out", help="output directory (default: the config's 'out', else potential_train)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate", help="energy and force errors of a trained potential on labelled data")
    ev.add_argument("model", help="potential directory (or a `potential train` output directory)")
    ev.add_argument("data", nargs="+", help="labelled extended-XYZ file(s)")
    ev.add_argument("--out", help="write metrics.json and parity.png into this directory")
    ev.add_argument(
        "--group-by",
        metavar="KEY",
        help="also break the errors down by this per-frame info key (e.g. condition, temperature_K)",
    )
    ev.set_defaults(func=_evaluate)

    al = sub.add_parser("active-learn", help="compare query strategies over seeds (resumable; YAML config)")
    al.add_argument("config", help="YAML: pool, test, reference, strategies, seeds, active_learning, descriptor, out")
    al.add_argument("--out", help="output directory (default: the config's 'out', else potential_active_learning)")
    al.set_defaults(func=_active_learn)


# ----------------------------------------------------------------------------- configs
def _check_keys(data: Any, cls: type, what: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return ``data`` as a dict, refusing keys that are not fields of dataclass ``cls``."""
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a mapping with keys among {allowed}; got {data!r}.")
    unknown = set(data) - set(allowed)
    if unknown:
        raise unknown_keys_error(unknown, allowed, f"key(s) in {what}")
    return dict(data)


def _section(cls: type, data: Any, what: str, exclude: tuple[str, ...] = (), **given: Any) -> Any:
    """Build dataclass ``cls`` from a YAML mapping (plus ``given`` fields), refusing unknown keys."""
    data = _check_keys(data, cls, what, exclude)
    try:
        return cls(**data, **given)
    except SurrodynError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}; see the fields of surrodyn.potentials.{cls.__name__}.") from None


_GRIDS = ("standard", "ani")


def _descriptor_kwargs(data: Any) -> dict[str, Any]:
    """Check a ``descriptor`` section: ``grid`` (``standard`` or ``ani``) and that builder's keywords.

    ``grid: standard`` (the default) takes the keyword arguments of
    :meth:`~surrodyn.potentials.SymmetryFunctions.standard` (G2 + G4/G5), ``grid: ani`` those of
    :meth:`~surrodyn.potentials.SymmetryFunctions.ani` (G2 + ANI angular functions); never
    ``elements``, which come from the data.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"descriptor must be a mapping (grid: standard or ani, and its settings); got {data!r}.")
    data = dict(data)
    grid = data.pop("grid", "standard")
    if grid not in _GRIDS:
        raise ConfigError(f"descriptor.grid={grid!r} is not allowed; expected one of {list(_GRIDS)}.")
    builder = _descriptor_builder(grid)
    allowed = [p for p in inspect.signature(builder).parameters if p != "elements"]
    unknown = set(data) - set(allowed)
    if unknown:
        raise unknown_keys_error(
            unknown, ["grid", *allowed], f"key(s) in descriptor with grid {grid!r} (the elements come from the data)"
        )
    try:  # check the values now, before any data is read
        builder(("H",), **data)
    except SurrodynError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"descriptor: {exc}") from None
    return {"grid": grid, **data}


def _descriptor_builder(grid: str) -> Any:
    from ..potentials import SymmetryFunctions

    return SymmetryFunctions.ani if grid == "ani" else SymmetryFunctions.standard


def _build_descriptor(elements: tuple[str, ...], settings: Mapping[str, Any]) -> Any:
    """Build the job's symmetry functions over ``elements`` (``settings`` from :func:`_descriptor_kwargs`)."""
    kwargs = dict(settings)
    return _descriptor_builder(kwargs.pop("grid", "standard"))(elements, **kwargs)


def _paths(value: Any, name: str, base: Path | None) -> tuple[str, ...]:
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(p, str | Path) for p in items):
        raise param_error(name, value, "a path or a non-empty list of paths to extended-XYZ files")
    out = []
    for p in items:
        q = Path(p).expanduser()
        out.append(str(q if q.is_absolute() or base is None else base / q))
    return tuple(out)


@dataclass(frozen=True)
class TrainJob:
    """What ``surrodyn potential train`` does.

    Parameters
    ----------
    data : tuple of str
        Labelled extended-XYZ files to train on (energy and forces).
    test : tuple of str, optional
        Labelled files to test on.
    descriptor : dict
        ``grid`` (``standard``, default, or ``ani``) and the keyword arguments of
        :meth:`surrodyn.potentials.SymmetryFunctions.standard` or ``.ani``; the elements are those
        of ``data``.
    train : TrainConfig, optional
        Default: ``TrainConfig()``.
    out : str, optional
        Output directory.
    """

    data: tuple[str, ...]
    test: tuple[str, ...] | None = None
    descriptor: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None
    out: str | None = None

    def __post_init__(self) -> None:
        if self.train is None:
            from ..potentials import TrainConfig

            object.__setattr__(self, "train", TrainConfig())

    @classmethod
    def from_dict(cls, data: Any, base: Path | None = None) -> TrainJob:
        """Validate a config mapping; relative data paths are taken relative to ``base``."""
        from ..potentials import TrainConfig

        d = _check_keys(data, cls, "the training config")
        if "data" not in d:
            raise ConfigError("the training config needs 'data': a labelled extended-XYZ file or a list of them.")
        test = d.get("test")
        return cls(
            data=_paths(d["data"], "data", base),
            test=_paths(test, "test", base) if test is not None else None,
            descriptor=_descriptor_kwargs(d.get("descriptor")),
            train=_section(TrainConfig, d.get("train"), "train"),
            out=None if d.get("out") is None else str(d["out"]),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainJob:
        """Read and validate a YAML config."""
        return cls.from_dict(read_yaml_mapping(path, "training config"), base=Path(path).parent)


@dataclass(frozen=True)
class ActiveLearningJob:
    """What ``surrodyn potential active-learn`` does: every (strategy, seed) run, then the summary.

    Parameters
    ----------
    pool : tuple of str
        Candidate structures (extended XYZ; labels in them are ignored).
    test : tuple of str
        Structures scored every round (their own labels are used when present).
    reference : {"auto", "emt", "asap3-emt", "ase-emt", "gfn2-xtb", "gfn1-xtb"}
        Reference calculator of :func:`surrodyn.md.make_calculator`; ``auto`` is ``emt``; the
        xTB methods (tblite) are the quantum tier.
    strategies : tuple of str
        Query strategies, among ``surrodyn.potentials.STRATEGIES``.
    seeds : tuple of int
    active_learning : ActiveLearningConfig, optional
        Settings shared by the runs; ``strategy`` and ``seed`` are set per run. Default:
        ``ActiveLearningConfig()``.
    descriptor : dict
        ``grid`` (``standard`` or ``ani``) and that builder's keyword arguments, as for
        :class:`TrainJob`.
    out : str, optional
    """

    pool: tuple[str, ...]
    test: tuple[str, ...]
    reference: str = "auto"
    strategies: tuple[str, ...] = ("autoencoder", "random", "committee")
    seeds: tuple[int, ...] = (0,)
    active_learning: ActiveLearningConfig | None = None
    descriptor: dict[str, Any] = field(default_factory=dict)
    out: str | None = None

    def __post_init__(self) -> None:
        if self.active_learning is None:
            from ..potentials import ActiveLearningConfig

            object.__setattr__(self, "active_learning", ActiveLearningConfig())

    @classmethod
    def from_dict(cls, data: Any, base: Path | None = None) -> ActiveLearningJob:
        """Validate a config mapping; relative data paths are taken relative to ``base``."""
        from ..potentials import STRATEGIES, ActiveLearningConfig, AutoencoderConfig, TrainConfig

        d = _check_keys(data, cls, "the active-learning config")
        for key in ("pool", "test"):
            if key not in d:
                raise ConfigError(f"the active-learning config needs {key!r}: an extended-XYZ file or a list of them.")
        reference = d.get("reference", "auto")
        if reference not in REFERENCES:
            raise param_error("reference", reference, f"one of {list(REFERENCES)}")
        strategies = d.get("strategies", list(STRATEGIES))
        strategies = [strategies] if isinstance(strategies, str) else strategies
        if not isinstance(strategies, list) or not strategies or not all(isinstance(s, str) for s in strategies):
            raise param_error("strategies", strategies, f"a non-empty list of names from {list(STRATEGIES)}")
        for s in strategies:
            if s not in STRATEGIES:
                raise param_error("strategies", s, f"names from {list(STRATEGIES)}")
        if len(set(strategies)) != len(strategies):
            raise param_error("strategies", strategies, "distinct names")
        seeds = d.get("seeds", [0])
        seeds = [seeds] if isinstance(seeds, int) else seeds
        ints = isinstance(seeds, list) and all(isinstance(k, int) and not isinstance(k, bool) for k in seeds)
        if not ints or not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
            raise param_error("seeds", seeds, "a non-empty list of distinct integers >= 0")
        al = _check_keys(d.get("active_learning"), ActiveLearningConfig, "active_learning", ("strategy", "seed"))
        train = _section(TrainConfig, al.pop("train", None), "active_learning.train")
        autoencoder = _section(AutoencoderConfig, al.pop("autoencoder", None), "active_learning.autoencoder")
        template = _section(
            ActiveLearningConfig,
            al,
            "active_learning",
            exclude=("strategy", "seed"),
            train=train,
            autoencoder=autoencoder,
        )
        return cls(
            pool=_paths(d["pool"], "pool", base),
            test=_paths(d["test"], "test", base),
            reference=reference,
            strategies=tuple(strategies),
            seeds=tuple(seeds),
            active_learning=template,
            descriptor=_descriptor_kwargs(d.get("descriptor")),
            out=None if d.get("out") is None else str(d["out"]),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> ActiveLearningJob:
        """Read and validate a YAML config."""
        return cls.from_dict(read_yaml_mapping(path, "active-learning config"), base=Path(path).parent)


# ----------------------------------------------------------------------------- helpers
def _require_ase() -> None:
    try:
        import ase  # noqa: F401
    except ImportError:  # pragma: no cover - ase ships with the md extra
        raise ImportError("surrodyn potential needs ASE: pip install 'surrodyn[md]'") from None


def _read(paths: tuple[str, ...], name: str) -> list[Any]:
    from ase.io import read

    frames: list[Any] = []
    for p in paths:
        if not Path(p).is_file():
            raise param_error(name, p, "an existing extended-XYZ file", "Check the path (relative to the config file).")
        try:
            got = read(p, ":")
        except Exception as exc:  # ASE raises many kinds on a malformed file
            raise ConfigError(f"cannot read {name} file {p!r}: {exc}") from None
        frames += got if isinstance(got, list) else [got]
    if not frames:
        raise param_error(name, list(paths), "files holding at least one structure")
    return frames


def _elements(frames: list[Any]) -> list[str]:
    return sorted({s for a in frames for s in a.get_chemical_symbols()})


def _out_dir(path: str | Path) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {str(out)!r}: {exc.strerror}.") from None
    return out


def _write_json(path: Path, obj: Any) -> None:
    from ..data.io import atomic_write_json  # lazy: xarray is not needed to parse the command line

    atomic_write_json(path, obj)


def _model_dir(path: str) -> Path:
    p = Path(path)
    return p / "potential" if not (p / "model.json").is_file() and (p / "potential" / "model.json").is_file() else p


def _parity(potential: Any, data: Any, title: str) -> Any:
    from ..plot.potentials import plot_parity

    energy, forces = potential.predict_set(data)
    ref_forces = [f.numpy() for f in data.forces]
    return plot_parity(data.energy / data.n_atoms, energy / data.n_atoms, ref_forces, forces, title=title)


def _errors_line(m: Mapping[str, float]) -> str:
    return (
        f"energy RMSE {m['energy_rmse_meV_per_atom']:.2f} meV/atom, force RMSE {m['force_rmse_meV_per_A']:.1f} "
        f"meV/Å (MAE {m['force_mae_meV_per_A']:.1f})"
    )


# ----------------------------------------------------------------------------- commands
def _train(args: argparse.Namespace) -> int:
    _require_ase()
    from ..plot.potentials import plot_training_history, save_figure
    from ..potentials import FingerprintSet, errors, fit

    job = TrainJob.from_yaml(args.config)
    out = _out_dir(args.out or job.out or "potential_train")
    structures = _read(job.data, "data")
    test = _read(job.test, "test") if job.test else None
    descriptor = _build_descriptor(_elements(structures), job.descriptor)
    print(
        f"featurising {len(structures)} training structures{f' and {len(test)} test structures' if test else ''} "
        f"({descriptor.n_features} symmetry functions per atom, elements {list(descriptor.elements)})"
    )
    train_set = FingerprintSet(structures, descriptor)
    test_set = FingerprintSet(test, descriptor) if test else None
    result = fit(train_set, config=job.train, progress=not args.no_progress)
    potential = result.potential
    metrics = {
        "train": errors(potential, train_set),  # all of `data`, the early-stopping split included
        "test": errors(potential, test_set) if test_set is not None else None,
        "n_train_structures": len(train_set),
        "n_validation_structures": potential.metadata.get("n_validation"),
        "n_test_structures": len(test_set) if test_set is not None else 0,
        "best_epoch": result.best_epoch,
        "epochs": len(result.history.get("epoch", [])),
        "seconds": result.seconds,
        "output_refit": potential.metadata.get("output_refit"),
    }
    potential.metadata.update({"data": list(job.data), "test": list(job.test or []), "metrics": metrics})
    potential.save(out / "potential")
    _write_json(out / "history.json", result.history)
    _write_json(out / "metrics.json", metrics)
    save_figure(plot_training_history(result.history), out / "training.png")
    shown, which = (test_set, "test") if test_set is not None else (train_set, "training")
    save_figure(_parity(potential, shown, f"{which} set ({len(shown)} structures)"), out / "parity.png")
    print(f"trained {metrics['epochs']} epochs in {result.seconds:.1f} s (best epoch {result.best_epoch})")
    refit = metrics["output_refit"]
    if refit is not None and refit["updated"]:
        print(f"  output-layer refit: training loss {100 * (refit['loss_after'] / refit['loss_before'] - 1):+.1f} %")
    elif refit is not None:
        print("  output-layer refit not kept: it did not lower the training loss or it raised the validation loss")
    print(f"  train: {_errors_line(metrics['train'])}")
    if metrics["test"] is not None:
        print(f"  test:  {_errors_line(metrics['test'])}")
    print(f"wrote {out}/potential, history.json, metrics.json, training.png, parity.png")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    _require_ase()
    from ..plot.potentials import save_figure
    from ..potentials import HDNNP, FingerprintSet, errors, errors_by_group

    potential = HDNNP.load(_model_dir(args.model))
    frames = _read(tuple(args.data), "data")
    groups = None
    if args.group_by:
        missing = [k for k, a in enumerate(frames) if args.group_by not in a.info]
        if missing:
            keys = sorted(frames[missing[0]].info)
            raise ConfigError(
                f"--group-by {args.group_by!r}: {len(missing)} of {len(frames)} frames lack that info key "
                f"(first: frame {missing[0]}, whose keys are {keys})."
            )
        groups = [a.info[args.group_by] for a in frames]
    data = FingerprintSet(frames, potential.descriptor)
    metrics = errors(potential, data)
    print(f"{len(data)} structures: {_errors_line(metrics)}")
    by_group = errors_by_group(potential, data, groups) if groups is not None else None
    if by_group is not None:
        width = max(len(args.group_by), *(len(g) for g in by_group))
        print(f"{args.group_by:<{width}}  {'n':>4}  {'E bias':>8}  {'E RMSE':>8}  {'F RMSE':>7}  (meV/atom, meV/Å)")
        for g, m in by_group.items():
            print(
                f"{g:<{width}}  {m['n_structures']:>4d}  {m['energy_bias_meV_per_atom']:>+8.2f}  "
                f"{m['energy_rmse_meV_per_atom']:>8.2f}  {m['force_rmse_meV_per_A']:>7.1f}"
            )
    if args.out:
        out = _out_dir(args.out)
        extra = {"group_by": args.group_by, "by_group": by_group} if by_group is not None else {}
        _write_json(out / "metrics.json", {**metrics, **extra, "model": str(args.model), "data": list(args.data)})
        save_figure(_parity(potential, data, f"{len(data)} structures"), out / "parity.png")
        print(f"wrote {out}/metrics.json and parity.png")
    return 0


def _round_line(strategy: str, seed: int, record: Mapping[str, Any]) -> str:
    m = record["metrics"]
    return (
        f"{strategy:>11s} seed {seed} round {record['round']:2d}: {record['n_labels']:4d} labels, "
        f"E {m.get('energy_rmse_meV_per_atom', math.nan):7.2f} meV/atom, "
        f"F {m.get('force_rmse_meV_per_A', math.nan):7.1f} meV/Å, "
        f"{record['train_s'] + record['query_s'] + record['label_s']:6.1f} s"
    )


def _summary(results: Mapping[str, list[tuple[int, Any]]]) -> dict[str, Any]:
    from ..plot.potentials import curve_statistics

    out: dict[str, Any] = {}
    for strategy, runs in results.items():
        entry: dict[str, Any] = {"seeds": [seed for seed, _ in runs]}
        for metric in METRICS:
            n, mean, sd, count = curve_statistics([r.curve(metric) for _, r in runs], strategy)
            entry["n_labels"] = n.tolist()
            entry[metric] = {"mean": mean.tolist(), "sd": sd.tolist(), "n_seeds": count.tolist()}
        entry["cost_s"] = float(sum(r.cost_s for _, r in runs))
        entry["cost_s_per_seed"] = [r.cost_s for _, r in runs]
        entry["label_s"] = float(sum(rec["label_s"] for _, r in runs for rec in r.rounds))
        out[strategy] = entry
    return out


def _active_learn(args: argparse.Namespace) -> int:
    _require_ase()
    from ..md import make_calculator
    from ..plot.potentials import plot_learning_curves, save_figure
    from ..potentials import active_learn

    job = ActiveLearningJob.from_yaml(args.config)
    out = _out_dir(args.out or job.out or "potential_active_learning")
    pool, test = _read(job.pool, "pool"), _read(job.test, "test")
    descriptor = _build_descriptor(_elements(pool), job.descriptor)
    name = "emt" if job.reference == "auto" else job.reference
    reference = functools.partial(make_calculator, name)  # the label cache pads cell-less clusters
    cfg0 = job.active_learning
    print(
        f"{len(pool)} candidates, {len(test)} test structures, reference {job.reference}; "
        f"{cfg0.n_initial} + {cfg0.n_rounds} x {cfg0.batch_size} labels per run, "
        f"strategies {list(job.strategies)}, seeds {list(job.seeds)}"
    )
    results: dict[str, list[tuple[int, Any]]] = {s: [] for s in job.strategies}
    for strategy in job.strategies:
        for seed in job.seeds:
            config = dataclasses.replace(cfg0, strategy=strategy, seed=seed)
            run_dir = out / strategy / f"seed{seed}"
            new: list[int] = []

            def report(record: dict[str, Any], strategy: str = strategy, seed: int = seed, new: list = new) -> None:
                new.append(record["round"])
                print(_round_line(strategy, seed, record), flush=True)

            result = active_learn(pool, reference, config, run_dir, test=test, descriptor=descriptor, on_round=report)
            resumed = len(result.rounds) - len(new)
            if resumed:
                print(f"{strategy:>11s} seed {seed}: {resumed} round(s) resumed from {run_dir}/state.json")
            results[strategy].append((seed, result))
    summary = _summary(results)
    _write_json(out / "summary.json", {"reference": job.reference, "strategies": summary})
    level = label = None
    for metric, name, unit in (
        ("energy_rmse_meV_per_atom", "energy", "meV/atom"),
        ("force_rmse_meV_per_A", "forces", "meV/Å"),
    ):
        if "random" in summary and summary["random"]["n_labels"]:
            level = summary["random"][metric]["mean"][-1]
            label = f"random at {summary['random']['n_labels'][-1]} labels"
        curves = {s: [r.curve(metric) for _, r in runs] for s, runs in results.items()}
        fig = plot_learning_curves(
            curves,
            metric_label=f"test {metric.split('_')[0]} RMSE ({unit})",
            reference_level=level if level is not None and math.isfinite(level) else None,
            reference_label=label,
        )
        save_figure(fig, out / f"learning_curves_{name}.png")
    for strategy, entry in summary.items():
        final = {m: entry[m]["mean"][-1] for m in METRICS}
        print(
            f"{strategy:>11s}: {entry['n_labels'][-1]} labels -> E {final['energy_rmse_meV_per_atom']:.2f} meV/atom, "
            f"F {final['force_rmse_meV_per_A']:.1f} meV/Å (mean of {len(entry['seeds'])} seed(s)); "
            f"cost {entry['cost_s']:.1f} s"
        )
    print(f"wrote {out}/summary.json, learning_curves_energy.png, learning_curves_forces.png")
    return 0
