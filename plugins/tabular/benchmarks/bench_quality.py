"""Quality benchmark of polyjepa-tabular on every scikit-learn bundled real table.

For breast_cancer, wine, iris, digits, diabetes and linnerud: T-JEPA pre-training with
the ``tabular`` recipe, then logistic/ridge ("lin") and MLP models on frozen embeddings
of the pretrained encoder and of the same encoder at random init, beside the same models
on the raw features and HistGradientBoosting (GBDT), all on one held-out split (25%),
with RankMe (Garrido et al., ICML 2023, https://arxiv.org/abs/2210.02885) of both
encoders. Metric: accuracy (classification) or R^2 (diabetes, linnerud). linnerud has
20 rows (5 held out), so its figures are very noisy.

    python plugins/tabular/benchmarks/bench_quality.py [--steps 600] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import polyjepa as pj
from polyjepa_tabular.evaluators import Downstream

DATASETS = ["breast_cancer", "wine", "iris", "digits", "diabetes", "linnerud"]
HEAD = ["dataset", "metric", "pre lin", "pre mlp", "rand lin", "rand mlp", "raw lin",
        "raw mlp", "GBDT", "RankMe pre", "RankMe rand", "max", "time s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--datasets", nargs="*", default=DATASETS)
    parser.add_argument("--out", default=None, help="run folders (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_tabular_"))
    rows = []
    for name in args.datasets:
        t0 = time.perf_counter()
        run = pj.pretrain("tabular", data=name, out=root / name, progress=False,
                          overrides={"train.seed": args.seed},
                          steps=args.steps, batch_size=args.batch_size,
                          warmup_steps=max(1, args.steps // 10))
        cfg = run.config
        ds = pj.create_dataset(cfg["dataset"]["name"], name, state=cfg["dataset_state"])
        enc_args = dict(cfg["encoder"])
        enc_name = enc_args.pop("name")
        torch.manual_seed(args.seed)
        random_enc = pj.create_encoder(enc_name, **enc_args).eval()
        ev = Downstream()
        rankme = pj.create_evaluator("rankme")
        res = {}
        for label, enc in (("pre", pj.load_encoder(run)), ("rand", random_enc)):
            emb, y, groups = pj.embed_dataset(enc, ds)
            ctx = pj.EvalContext(emb, y, groups, enc, ds, args.seed)
            res[label] = {**ev(ctx), **rankme(ctx)}
        metric = "r2" if ds.task == "regression" else "acc"
        pre, rand = res["pre"], res["rand"]
        rows.append([
            name, metric,
            pre[f"downstream_emb_linear_{metric}"], pre[f"downstream_emb_mlp_{metric}"],
            rand[f"downstream_emb_linear_{metric}"], rand[f"downstream_emb_mlp_{metric}"],
            pre[f"downstream_raw_linear_{metric}"], pre[f"downstream_raw_mlp_{metric}"],
            pre[f"downstream_raw_gbdt_{metric}"],
            pre["rankme"], rand["rankme"], pre["rankme_max"], time.perf_counter() - t0])
        print(f"{name}: " + ", ".join(
            f"{h}={v:.3f}" if isinstance(v, float) else f"{h}={v}"
            for h, v in zip(HEAD[1:], rows[-1][1:])), flush=True)
    head = HEAD
    widths = [14, 6] + [9] * 7 + [10, 11, 5, 6]
    print(f"\npolyjepa-tabular quality ({args.steps} pre-training steps, batch "
          f"{args.batch_size}, seed {args.seed}; held-out 25%)")
    print(" ".join(h.rjust(w) for h, w in zip(head, widths)))
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1])]
        cells += [f"{v:.3f}".rjust(w) for v, w in zip(row[2:9], widths[2:9])]
        cells += [f"{row[9]:.1f}".rjust(widths[9]), f"{row[10]:.1f}".rjust(widths[10]),
                  f"{row[11]:.0f}".rjust(widths[11]), f"{row[12]:.0f}".rjust(widths[12])]
        print(" ".join(cells))


if __name__ == "__main__":
    main()
