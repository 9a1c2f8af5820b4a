"""Label-free choice of the ``sar`` pre-training hyper-parameters by RankMe.

Runs ``pj.sweep`` on the same unlabelled simulated chips (``sar.simulated``: n, size,
patch size, looks and seed as in ``bench_quality.py``), model size, batch size and step
count as the quality benchmark, with ``probe=False``: no label is read, the trials are
ranked by the centred RankMe of their embeddings alone (Garrido et al., "RankMe: Assessing
the Downstream Performance of Pretrained Self-Supervised Representations by Their Rank",
ICML 2023, https://arxiv.org/abs/2210.02885).

    OMP_NUM_THREADS=1 python plugins/sar/benchmarks/sweep_sar.py [--steps 150] \
        [--n-train 600] [--workers 1] [--out sweeps/sar]
"""

from __future__ import annotations

import argparse

GRID = {
    "method": "random",
    "trials": 8,
    "seed": 0,
    "metric": "rankme_centered",
    "params": {
        # "encoder" is SAR-JEPA's own target (multi-scale ROA gradients)
        "target.kind": ["encoder", "ema", "sigreg"],
        "target.momentum": {"low": 0.99, "high": 0.999},
        "train.lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "train.weight_decay": {"low": 0.01, "high": 0.2, "log": True},
        "masker.num_targets": [1, 2, 4],
        "masker.blocks_per_target": [2, 4, 6],
        "masker.block_size": [[1, 2], [1, 3], [2, 3]],
        "loss.variance_weight": {"low": 0.0, "high": 1.0},
    },
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--looks", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="sweeps/sar")
    a = ap.parse_args()
    import polyjepa as pj

    grid = dict(GRID, set={"train.steps": a.steps})
    # the benchmark's pre-training chips, model size and schedule; searched keys override
    fixed = {
        "dataset": {"name": "sar.simulated", "n": a.n_train, "size": 48, "patch_size": 6,
                    "looks": a.looks, "seed": 0},
        "encoder": {"embed_dim": a.embed_dim, "depth": a.depth, "num_heads": 4},
        "predictor": {"dim": a.embed_dim // 2, "depth": 2, "num_heads": 4},
        "train": {"steps": a.steps, "batch_size": a.batch_size, "lr": 1e-3,
                  "warmup_steps": max(1, a.steps // 10), "rankme_every": a.steps,
                  "checkpoint_every": a.steps},
    }
    res = pj.sweep("sar", data=None, grid=grid, out=a.out, overrides=fixed,
                   workers=a.workers, probe=False, progress=False)
    print(pj.sweep_table(res))


if __name__ == "__main__":
    main()
