"""``surrodyn cv``: learn collective variables from MD trajectories, explain, project and export them."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``cv`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="cv_command", metavar="ACTION", required=True)

    tr = sub.add_parser("train", help="featurise a trajectory and train a CV (YAML config; see docs/cv.md)")
    tr.add_argument("config", help="CV config YAML")
    tr.add_argument("--out", help="model directory (overrides the config)")
    tr.add_argument("--budget", type=float, help="wall-clock training budget in s")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tr.set_defaults(func=_train)

    ex = sub.add_parser("explain", help="rank geometric variables per latent dimension; figures and a report")
    _frames_arguments(ex)
    ex.add_argument("--out", default="cv_explain", help="output directory")
    ex.add_argument("--plane", nargs=2, metavar=("X", "Y"),
                    help="draw every latent over the plane of these two variables (names as in the report, e.g. "
                    "'phi ALA2' 'psi ALA2'); default: the top variables of the first two latents")  # fmt: skip
    ex.set_defaults(func=_explain)

    pj = sub.add_parser("project", help="write the CVs of every frame of a trajectory (NetCDF)")
    _frames_arguments(pj)
    pj.add_argument("--out", required=True, help="output .nc")
    pj.set_defaults(func=_project)

    xp = sub.add_parser("export", help="export for PLUMED (TorchScript / ANN / CUSTOM) or OpenMM (NumPy)")
    xp.add_argument("model", help="model directory")
    xp.add_argument("--format", choices=("torchscript", "plumed", "numpy"), default="torchscript",
                    help="torchscript: model.ptc + plumed.dat (PYTORCH_MODEL); plumed: text export (ANN or CUSTOM); "
                    "numpy: an evaluator with analytic gradient (.npz) for OpenMM's PythonForce")  # fmt: skip
    xp.add_argument("--plumed-action", choices=("ann", "custom"), default="ann", help="action of --format plumed")
    xp.add_argument("--topology", help="topology (default: the training job's; needed for the atom indices)")
    xp.add_argument("--pbc", action="store_true", help="periodic simulation: minimum-image features in PLUMED")
    xp.add_argument("--out", default="cv_export", help="output directory")
    xp.set_defaults(func=_export)


def _frames_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory")
    p.add_argument("trajectory", nargs="+", help="trajectory file(s) (or the COLVAR of a COLVAR-trained model)")
    p.add_argument("--topology", help="topology (default: the training job's)")
    p.add_argument("--stride", type=int, default=1, help="frame stride")


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from ..cv.config import CVConfig
    from ..cv.workflow import train

    config = CVConfig.from_yaml(args.config)
    if args.out:
        config.out = args.out
    if args.budget is not None:
        config.training = dataclasses.replace(config.training, budget_s=args.budget)
    model = train(config, progress=not args.no_progress)
    info = model.info
    print(f"trained {config.method} CV on {info['n_frames']} frames × {len(model.feature_names)} features "
          f"-> {config.out}")  # fmt: skip
    diag = info.get("diagnostics")
    if diag:
        print(f"  active latent dimensions {diag['n_active']}/{model.n_latent}, KL per dim (nats) "
              + ", ".join(f"{k:.3g}" for k in diag["kl_per_dim"])
              + f", variance explained {diag['variance_explained']:.3f}, {info['epochs']} epochs in "
              f"{info['train_seconds']:.1f} s")  # fmt: skip
    return 0


def _explain(args: argparse.Namespace) -> int:
    from ..cv.workflow import explain

    report = explain(
        args.model, args.trajectory, args.out, topology=args.topology, stride=args.stride, plane=args.plane
    )
    print(report, end="")
    print(f"figures and ranking.nc in {args.out}")
    return 0


def _project(args: argparse.Namespace) -> int:
    from ..cv.workflow import project

    ds = project(args.model, args.trajectory, args.out, topology=args.topology, stride=args.stride)
    print(f"{ds.sizes['frame']} frames × {ds.sizes['latent']} CVs -> {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..cv.workflow import export

    files, check = export(args.model, args.out, fmt=args.format, plumed_action=args.plumed_action,
                          topology=args.topology, pbc=args.pbc)  # fmt: skip
    for path in files:
        print(f"wrote {path}")
    if check:
        print("checked on the topology's frame against the model: "
              + ", ".join(f"max |Δ{k}| {v:.1e}" for k, v in check.items()))  # fmt: skip
    return 0
