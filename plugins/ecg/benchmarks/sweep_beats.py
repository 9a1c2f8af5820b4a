"""Label-free choice of the ``ecg.beats`` pre-training hyper-parameters by RankMe.

Runs ``pj.sweep`` on the same unlabelled beat windows, model size and step count as
``bench_quality.py`` (MIT-BIH record 100), with ``probe=False``: no label is read, the
trials are ranked by the centred RankMe of their embeddings alone (RankMe: Garrido et al.,
"RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
Representations by Their Rank", ICML 2023, https://arxiv.org/abs/2210.02885).

    OMP_NUM_THREADS=1 python plugins/ecg/benchmarks/sweep_beats.py [--steps 300] \
        [--workers 2] [--out sweeps/ecg-beats]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

GRID = {
    "method": "random",
    "trials": 8,
    "seed": 0,
    "metric": "rankme_centered",
    "params": {
        "target.kind": ["ema", "sigreg"],
        "target.momentum": {"low": 0.99, "high": 0.999},
        "train.lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "train.weight_decay": {"low": 0.01, "high": 0.2, "log": True},
        "masker.num_blocks": [1, 2, 3],
        "masker.block_scale": [[0.1, 0.2], [0.15, 0.25], [0.2, 0.3]],
        "masker.num_targets": [1, 2, 4],
        "loss.variance_weight": {"low": 0.0, "high": 1.0},
    },
}


def _data_dir() -> Path:
    """The shared MIT-BIH sample folder; the script stops with a message without it."""
    from polyjepa.testing import shared_data

    root = shared_data("ecg", "wfdb-sample")
    if root is None:
        sys.exit("MIT-BIH record 100 not found: set POLYJEPA_SHARED_DATA to the folder "
                 "holding ecg/wfdb-sample (or run from a checkout with shared/data beside it)")
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="sweeps/ecg-beats")
    a = ap.parse_args()
    import polyjepa as pj

    grid = dict(GRID, set={"train.steps": a.steps})
    # the benchmark's model size and schedule; the searched keys override these
    fixed = {
        "dataset": {"mode": "beats", "fs": 250.0, "window": 2.4, "patch_size": 20,
                    "leads": "record"},
        "encoder": {"embed_dim": 64, "depth": 3, "num_heads": 4},
        "predictor": {"dim": 32, "depth": 2, "num_heads": 4},
        "train": {"steps": a.steps, "batch_size": 32, "warmup_steps": a.steps // 10,
                  "rankme_every": a.steps, "checkpoint_every": a.steps},
    }
    res = pj.sweep("ecg.beats", data=str(_data_dir() / "100.hea"), grid=grid, out=a.out,
                   overrides=fixed, workers=a.workers, probe=False, progress=False)
    print(pj.sweep_table(res))


if __name__ == "__main__":
    main()
