"""Quality benchmark: per-pillar semantic linear probe on frozen BEV pillar embeddings.

Two labelled settings:
  * LAS    - the real ASPRS-classified airborne tile in ../shared/data/lidar/las (ground,
             vegetation, building, noise), cut into 10 ft windows of 16 x 16 pillars;
             pre-trained on overlapping windows, probed on non-overlapping ones.
  * SIM    - SIMULATED ray-cast street scenes (ground, building, vehicle, pole,
             vegetation); pre-trained on one set of scenes, probed on another.

For each: the JEPA-pretrained encoder, the same encoder at random init, and the
hand-crafted height-statistics baseline (count, mean/min/max/std height, intensity of
each pillar), each with the same logistic probe (split by scene / spatial block,
averaged over seeds). RankMe is computed on the pillar vectors.

    python plugins/lidar/benchmarks/bench_quality.py [--steps 600] [--sim-steps 400]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_lidar.datasets import LidarDataset, simulated_dataset
from polyjepa_lidar.evaluators import pillar_embeddings, probe_pillars
from polyjepa_lidar.pillars import HEIGHT_STATS

MODEL = {"encoder.embed_dim": 64, "encoder.depth": 2, "encoder.num_heads": 4,
         "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2}
SEEDS = (0, 1, 2)


def _probe(vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray, hist: np.ndarray,
           classes: np.ndarray) -> tuple[float, float, float, float]:
    res = [probe_pillars(vectors, labels, groups, seed=s, hist=hist, classes=classes)
           for s in SEEDS]
    return tuple(float(np.mean([r[k] for r in res]))  # type: ignore[return-value]
                 for k in ("pillar_acc", "pillar_miou", "point_acc", "point_miou"))


def _rank(vectors: np.ndarray) -> float:
    """RankMe (Garrido et al., ICML 2023, https://arxiv.org/abs/2210.02885) of up to 4096
    of the pillar vectors."""
    rng = np.random.default_rng(0)
    idx = rng.choice(len(vectors), min(len(vectors), 4096), replace=False)
    return pj.effective_rank(vectors[idx])


def _rows(name: str, run: pj.Run, eval_ds: LidarDataset) -> list[tuple]:
    enc = pj.load_encoder(run.path)
    cfg = run.config["encoder"]
    args = {k: v for k, v in cfg.items() if k != "name"}
    torch.manual_seed(0)
    rand = pj.create_encoder(cfg["name"], **args).eval()
    rows = []
    for label, model in (("pretrained (JEPA)", enc), ("random init", rand)):
        arr = pillar_embeddings(model, eval_ds, batch_size=16)
        hist = eval_ds.class_counts(arr["index"])
        scores = _probe(arr["embeddings"], arr["labels"], arr["groups"], hist, eval_ds.classes)
        rows.append((name, label, *scores, _rank(arr["embeddings"]),
                     arr["embeddings"].shape[1], len(arr["labels"])))
    feats = arr["features"][:, list(HEIGHT_STATS)]
    scores = _probe(feats, arr["labels"], arr["groups"], hist, eval_ds.classes)
    rows.append((name, "height statistics", *scores, _rank(feats), feats.shape[1],
                 len(arr["labels"])))
    return rows


def bench_las(out: Path, steps: int) -> list[tuple]:
    folder = shared_data("lidar", "las")
    las = sorted(folder.glob("*.las")) if folder is not None else []
    if not las:
        print("no LAS file in the shared data's lidar/las (set $POLYJEPA_SHARED_DATA); "
              "skipping the LAS benchmark")
        return []
    ov = {**MODEL, "dataset.grid": 16, "dataset.tile": 10.0, "dataset.tile_stride": 2.5,
          "train.batch_size": 16, "train.warmup_steps": steps // 10, "train.lr": 1e-3,
          "train.rankme_every": steps, "train.checkpoint_every": steps}
    run = pj.pretrain("lidar", data=las[0], out=out / "las", steps=steps, overrides=ov,
                      progress=False)
    state = {k: v for k, v in run.config["dataset_state"].items()
             if k not in ("tile", "tile_stride")}
    eval_ds = LidarDataset(las[0], tile=10.0, state=state)
    return _rows("LAS (real)", run, eval_ds)


def bench_sim(out: Path, steps: int) -> list[tuple]:
    ov = {**MODEL, "dataset.name": "lidar.simulated", "dataset.n_scenes": 192,
          "dataset.grid": 16, "dataset.extent": 24.0, "train.batch_size": 16,
          "train.warmup_steps": steps // 10, "train.lr": 1e-3, "train.rankme_every": steps, "train.checkpoint_every": steps}
    run = pj.pretrain("lidar", data=None, out=out / "sim", steps=steps, overrides=ov,
                      progress=False)
    eval_ds = simulated_dataset(n_scenes=64, sim_seed=1, extent=24.0,
                                state=run.config["dataset_state"])
    return _rows("SIM (simulated)", run, eval_ds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="pre-training steps on LAS")
    ap.add_argument("--sim-steps", type=int, default=300, help="pre-training steps, simulated")
    ap.add_argument("--dim", type=int, default=64, help="encoder width")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    out = Path(args.out or tmp.name)
    MODEL["encoder.embed_dim"] = args.dim
    t0 = time.time()
    rows = bench_las(out, args.steps) + bench_sim(out, args.sim_steps)
    print()
    print("semantic linear probe on frozen pillar vectors (mean over 3 group splits); "
          "pt-: every point takes its pillar's class")
    head = (f"{'data':<17}{'features':<20}{'acc':>7}{'mIoU':>7}{'pt-acc':>8}{'pt-mIoU':>9}"
            f"{'RankMe':>8}{'dim':>5}{'pillars':>9}")
    print(head)
    print("-" * len(head))
    for name, label, acc, miou, pacc, pmiou, rank, dim, n in rows:
        print(f"{name:<17}{label:<20}{acc:>7.3f}{miou:>7.3f}{pacc:>8.3f}{pmiou:>9.3f}"
              f"{rank:>8.1f}{dim:>5}{n:>9}")
    print(f"\n({time.time() - t0:.0f} s; encoder width {args.dim}, depth 2; LAS "
          f"{args.steps} steps, simulated {args.sim_steps} steps, batch 16, CPU)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
