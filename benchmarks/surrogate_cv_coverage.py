"""Out-of-fold band coverage: is the test-split coverage a calibration problem or a split effect?

The non-test points of the demo sweep are split into 4 folds; a model is trained without
recalibration on each 3 folds (early stopping on 4 of them) and predicts the held-out fold. The
pooled out-of-fold coverage of the 10-90 % band, and the spread factor that would make it
nominal, are compared with the factor and the coverage of the full model on the fixed test split.

    python benchmarks/surrogate_cv_coverage.py --sweep demo_store --model runs/continuum_s0 --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from surrodyn.surrogate import Surrogate, TrainConfig, evaluate, prepare, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--model", required=True, help="the full model (trained with the same seed and split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--workdir", default="cv_runs")
    args = ap.parse_args()
    base = TrainConfig(sweep=args.sweep, continuum=True, budget_s=180, max_epochs=100_000, patience=10,
                       progress=False, seed=args.seed, calibrate=False)  # fmt: skip
    data, tr, va, te = prepare(base)
    rest = np.sort(np.concatenate([tr, va]))
    folds = np.array_split(np.random.default_rng(args.seed).permutation(rest), args.folds)
    oof = []
    for k, fold in enumerate(folds):
        perm = np.random.default_rng(k).permutation(np.setdiff1d(rest, fold))
        cfg = TrainConfig(**{**base.__dict__, "out": f"{args.workdir}/s{args.seed}_f{k}"})
        model = train(cfg, data, (np.sort(perm[4:]), np.sort(perm[:4]), np.sort(fold)))
        oof.append((model, data.subset(np.sort(fold))))

    def coverage(scale: float) -> float:
        values = []
        for model, d in oof:
            model.band_scale = scale
            values.append(evaluate(model, d).table["coverage_10_90"].values)
        return float(np.mean(np.concatenate(values)))

    lo, hi = 0.5, 3.0
    for _ in range(16):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if coverage(mid) < 0.8 else (lo, mid)
    scale = 0.5 * (lo + hi)
    full = Surrogate.load(args.model)
    pooled = full.band_scale
    test_pooled = evaluate(full, data.subset(te)).summary()["coverage_10_90"]
    full.band_scale = scale
    test_cv = evaluate(full, data.subset(te)).summary()["coverage_10_90"]
    print(f"seed {args.seed}: out-of-fold coverage at factor 1: {coverage(1.0):.3f} over {len(rest)} points; "
          f"factor for 0.80: out-of-fold {scale:.3f}, pooled {pooled:.3f}; "
          f"test coverage {test_pooled:.3f} (pooled factor), {test_cv:.3f} (out-of-fold factor)")  # fmt: skip


if __name__ == "__main__":
    main()
