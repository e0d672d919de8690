"""``surrodyn surrogate``: train, predict, evaluate and explain TFT surrogates; run the demo story."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments"]

# flag -> swept parameter name
_ALIASES = {
    "permittivity": "permittivity",
    "concentration": "concentration_cm3",
    "voltage": "voltage_V",
    "temperature": "temperature_K",
    "disorder": "disorder_eV",
    "rise_time": "voltage_rise_time_s",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``surrogate`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="surrogate_command", metavar="ACTION", required=True)

    tr = sub.add_parser("train", help="train a surrogate on a sweep (YAML config)")
    tr.add_argument("config", help="training config YAML (see docs/surrogate.md)")
    tr.add_argument("--out", help="model directory (overrides the config)")
    tr.add_argument("--budget", type=float, help="wall-clock training budget in s (overrides the config)")
    tr.add_argument("--threads", type=int, help="torch threads (overrides the config)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tr.set_defaults(func=_train)

    pr = sub.add_parser("predict", help="predict the density evolution of parameter sets")
    pr.add_argument("model", help="model directory")
    pr.add_argument("--permittivity", help="relative permittivity (comma list for several points)")
    pr.add_argument("--concentration", help="bulk concentration in cm^-3 (comma list)")
    pr.add_argument("--voltage", help="applied voltage in V (comma list)")
    pr.add_argument("--temperature", help="temperature in K (comma list)")
    pr.add_argument("--disorder", help="site-energy disorder in eV (comma list)")
    pr.add_argument("--rise-time", help="voltage rise time in s (comma list)")
    pr.add_argument("--param", action="append", default=[], metavar="NAME=V[,V...]", help="any swept parameter")
    pr.add_argument("--voltage-schedule", help="YAML file with a voltage schedule (as in a kMC config)")
    pr.add_argument("--temperature-schedule", help="YAML file with a temperature schedule (as in a kMC config)")
    pr.add_argument("--times", help="record times 'log:START:STOP:NUM' or a comma list (s); default the training grid")
    pr.add_argument("--out", required=True, help="output .nc")
    pr.add_argument("--plot", help="also write a figure of the first point (.png)")
    pr.set_defaults(func=_predict)

    ev = sub.add_parser("evaluate", help="metrics per held-out point of a sweep")
    ev.add_argument("model", help="model directory")
    ev.add_argument("sweep", help="sweep store or exported .nc (with replicas)")
    ev.add_argument("--points", default="test", help="'test' (the model's held-out points), 'all', or ids 3,7,11")
    ev.add_argument("--out", help="write the per-point table as .nc")
    ev.add_argument("--plot", help="directory for one figure per point: kMC vs surrogate (profiles with bands)")
    ev.set_defaults(func=_evaluate)

    ex = sub.add_parser("explain", help="variable importances and attention (plots)")
    ex.add_argument("model", help="model directory")
    ex.add_argument("--out", default="explain", help="output directory (PNG + NetCDF)")
    ex.add_argument("--points", type=int, default=64, help="parameter sets drawn over the training ranges")
    ex.set_defaults(func=_explain)

    ex2 = sub.add_parser("export", help="export the network with torch.export (.pt2) and TorchScript (.ts)")
    ex2.add_argument("model", help="model directory")
    ex2.set_defaults(func=_export)

    demo = sub.add_parser("demo", help="the whole story: small sweep -> train -> predict an unseen point -> figure")
    demo.add_argument("--out", default="surrogate_demo", help="output directory (rerun to resume the sweep)")
    demo.add_argument("--workers", type=int, default=2, help="sweep worker processes")
    demo.add_argument("--budget", type=float, default=120.0, help="training budget in s")
    demo.set_defaults(func=_demo)


def _values(text: str) -> list[float]:
    from ..errors import param_error

    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise param_error("value list", text, "numbers separated by commas, e.g. 0.5,1.0") from None


def _times(text: str | None) -> list[float] | None:
    from ..errors import param_error

    if text is None:
        return None
    if text.startswith("log:"):
        try:
            start, stop, num = text[4:].split(":")
            import numpy as np

            return np.geomspace(float(start), float(stop), int(num)).tolist()
        except ValueError:
            raise param_error("--times", text, "log:START:STOP:NUM, e.g. log:1e-7:1e-3:60") from None
    return _values(text)


def _params(args: argparse.Namespace, model) -> dict[str, list[float]]:
    from ..errors import param_error

    params: dict[str, list[float]] = {}
    for flag, name in _ALIASES.items():
        value = getattr(args, flag, None)
        if value is not None:
            params[name] = _values(value)
    for item in args.param:
        if "=" not in item:
            raise param_error("--param", item, "NAME=VALUE[,VALUE...]")
        name, value = item.split("=", 1)
        params[name.strip()] = _values(value)
    missing = [p for p in model.parameters if p not in params]
    if missing:
        flags = {v: k.replace("_", "-") for k, v in _ALIASES.items()}
        hint = ", ".join(f"--{flags[p]}" if p in flags else f"--param {p}=..." for p in missing)
        raise param_error("parameters", sorted(params), f"all of {list(model.parameters)}", f"add {hint}")
    return params


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from ..surrogate import TrainConfig, train

    cfg = TrainConfig.from_yaml(args.config)
    changes = {}
    if args.out:
        changes["out"] = args.out
    if args.budget:
        changes["budget_s"] = args.budget
    if args.threads:
        changes["threads"] = args.threads
    if args.no_progress:
        changes["progress"] = False
    cfg = dataclasses.replace(cfg, **changes)
    model = train(cfg)
    m = model.info["metrics"]
    print(
        f"trained {model.info['epochs']} epochs in {model.info['train_seconds']} s "
        f"({model.info['train_samples_per_s']} series/s); model written to {cfg.out}\n"
        f"held-out ({m['n_points']} points): MAE(median) {m['mae_median']:.4f}, sMAPE {m['smape']:.1f} %, "
        f"10-90 coverage {m['coverage_10_90']:.3f}, crossings {m['crossings']}, "
        f"worst conservation {m['conservation_max']:.4f}"
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..data.io import check_writable, write_dataset
    from ..pipeline import predict
    from ..surrogate import Surrogate

    model = Surrogate.load(args.model)
    params = _params(args, model)
    check_writable(args.out)
    schedules = {}
    for key, arg in (("voltage", args.voltage_schedule), ("temperature", args.temperature_schedule)):
        if arg:
            from ..errors import read_yaml_mapping
            from ..protocols import schedule_from_spec

            schedules[key] = schedule_from_spec(read_yaml_mapping(arg, f"{key} schedule"), f"{key} schedule")
    ds = predict(model, params, times_s=_times(args.times), **schedules)
    write_dataset(ds, args.out)
    print(f"wrote {args.out}: {ds.sizes['point']} point(s), {ds.sizes['time']} records, {ds.sizes['z']} bins")
    if args.plot:
        from ..plot.surrogate import plot_prediction

        print(f"wrote {plot_prediction(ds, args.plot)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import param_error
    from ..surrogate import FieldData, Surrogate, evaluate
    from ..sweep import open_sweep

    model = Surrogate.load(args.model)
    data = FieldData.from_sweep(
        open_sweep(args.sweep),
        parameters=model.parameters,
        known_names=model.config.known_names,
        continuum=bool(model.config.field_names),
    )
    if args.points == "test":
        ids = model.info.get("split", {}).get("test", [])
    elif args.points == "all":
        ids = data.point.tolist()
    else:
        ids = [int(v) for v in _values(args.points)]
    index = [i for i, p in enumerate(data.point.tolist()) if p in set(ids)]
    if not index:
        raise param_error("--points", args.points, f"point ids present in the sweep: {data.point.tolist()}")
    sub = data.subset(np.array(index))
    ev = evaluate(model, sub)
    print(ev.format())
    if args.plot:
        from ..plot.surrogate import plot_prediction

        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        for i, pid in enumerate(sub.point.tolist()):
            params = {p: sub.values[p][i : i + 1] for p in model.parameters}
            fields = None if sub.fields is None or not model.config.field_names else sub.fields[i : i + 1, 1:]
            pred = model.predict(params, fields=fields)
            png = plot_prediction(pred, out / f"point{pid:05d}.png", kmc_replicas=sub.target[i, :, 1:])
            print(f"wrote {png}")
    if args.out:
        from ..data.io import write_dataset

        write_dataset(ev.table, args.out)
    return 0


def _explain(args: argparse.Namespace) -> int:

    from ..data.io import write_dataset
    from ..pipeline import continuum_fields
    from ..plot.surrogate import plot_explanation
    from ..surrogate import Surrogate
    from ..surrogate.interpret import surrogate_sensitivity, training_design

    model = Surrogate.load(args.model)
    params = training_design(model, args.points, seed=1)
    fields = continuum_fields(model, params) if model.config.field_names else None
    ex = model.explain(params, fields=fields)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(ex, out / "explanation.nc")
    plot_explanation(ex, out / "explanation.png")
    s = ex["static_importance"].mean("point")
    print("static importance (mean selection weight):")
    for name, w in zip(s["static"].values, s.values, strict=True):
        print(f"  {name:28s} {w:6.3f}")
    d = ex["decoder_importance"].mean(("point", "time"))
    print("known-future importance:")
    for name, w in zip(d["decoder"].values, d.values, strict=True):
        print(f"  {name:28s} {w:6.3f}")
    sens = surrogate_sensitivity(model, args.points, fields_fn=continuum_fields if model.config.field_names else None)
    print("first-order sensitivity of the predicted fields (variance-based, same design):")
    for name, v in sens.items():
        print(f"  {name:28s} {v:6.3f}")
    print(f"wrote {out / 'explanation.png'} and {out / 'explanation.nc'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..surrogate import Surrogate
    from ..surrogate.export import export_program, to_torchscript

    model = Surrogate.load(args.model)
    path = Path(args.model)
    export_program(model, path / "network.pt2")
    print(f"wrote {path / 'network.pt2'} (torch.export, batch dynamic)")
    to_torchscript(model, path / "network.ts")
    print(f"wrote {path / 'network.ts'} (TorchScript trace, shapes of the example)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.out, workers=args.workers, budget_s=args.budget)
    return 0
