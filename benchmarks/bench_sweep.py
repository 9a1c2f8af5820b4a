"""Does RankMe pick the right hyper-parameters without labels? A sweep on real tables.

Runs a random search of T-JEPA hyper-parameters (``polyjepa-tabular``) on one of
scikit-learn's bundled real data sets, ranks the trials by RankMe, and prints how well
that label-free ranking agrees with each trial's linear probe: Spearman correlation
across trials and the probe gap between the RankMe choice and the best trial.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polyjepa as pj

GRID = {
    "method": "random",
    "seed": 0,
    "params": {
        "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "target.momentum": {"low": 0.9, "high": 0.999},
        "masker.num_targets": [1, 2, 4],
        "predictor.depth": [1, 2, 3],
        "target.kind": ["ema", "sigreg"],
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="breast_cancer",
                    help="breast_cancer, wine, digits, iris or diabetes")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=None, help="sweep folder (default: a temporary one)")
    args = ap.parse_args()
    if "tabular" not in pj.list_recipes():
        print("polyjepa-tabular is not installed; skipping the sweep benchmark")
        return
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    out = Path(args.out or tmp.name) / f"sweep-{args.data}"
    grid = {**GRID, "trials": args.trials,
            "set": {"dataset.name": "tabular.sklearn", "train.batch_size": 64,
                    "train.warmup_steps": args.steps // 10,
                    "train.rankme_every": max(1, args.steps // 3),
                    "train.checkpoint_every": args.steps}}
    t0 = time.time()
    result = pj.sweep("tabular", data=args.data, grid=grid, out=out, steps=args.steps,
                      workers=args.workers, progress=False)
    print(f"\nRankMe sweep on scikit-learn's {args.data} (real, labelled): {args.trials} "
          f"random trials of {args.steps} steps, {time.time() - t0:.0f} s on CPU\n")
    print(pj.sweep_table(result))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
