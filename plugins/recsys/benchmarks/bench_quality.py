"""Quality benchmark on MovieLens-100k: leave-last-out next-item ranking.

Pre-trained item tower (``recsys``) and sequence encoder (``recsys_seq``) versus the same
encoders at random init, popularity and item-kNN on co-occurrence: Recall@10 and NDCG@10
over the full catalogue, overall and on long-tail held-out items (outside the top 20%
most popular), with RankMe (Garrido et al., ICML 2023, https://arxiv.org/abs/2210.02885)
beside the embeddings. Data: ``--data``, else ``recsys/ml-100k`` of the shared data.

    python benchmarks/bench_quality.py [--data DIR] [--steps N] [--out DIR] [--set K=V]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_recsys.evaluators import NextItem


def _scores(encoder: torch.nn.Module, dataset, seed: int = 0) -> dict[str, float]:
    emb, _, _ = pj.embed_dataset(encoder.eval(), dataset, 256)
    ctx = pj.EvalContext(emb, encoder=encoder, dataset=dataset, seed=seed,
                         extra={"batch_size": 256})
    out = NextItem(ks=(10,), baselines=("popularity", "itemknn"))(ctx)
    out["rankme"] = pj.effective_rank(emb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="MovieLens-100k folder (default: recsys/ml-100k of the shared data)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--out", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for both recipes, e.g. dataset.audience=32")
    args = ap.parse_args()
    if args.data is None:
        default = shared_data("recsys", "ml-100k")
        if default is None:
            raise SystemExit("MovieLens-100k not found in the shared data (recsys/ml-100k; "
                             "set POLYJEPA_SHARED_DATA): pass --data DIR")
        args.data = str(default)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-recsys-"))
    rows: list[tuple[str, dict[str, float], str]] = []
    baselines: dict[str, float] = {}
    for recipe in ("recsys", "recsys_seq"):
        run = pj.pretrain(recipe, data=args.data, out=out / recipe, steps=args.steps,
                          overrides=list(args.set), progress=False)
        cfg = run.config
        dataset = pj.create_dataset(cfg["dataset"]["name"], args.data,
                                    **{k: v for k, v in cfg["dataset"].items() if k != "name"},
                                    state=cfg["dataset_state"])
        trained = _scores(pj.load_encoder(run.path), dataset)
        enc_args = {k: v for k, v in cfg["encoder"].items() if k != "name"}
        torch.manual_seed(0)
        random = _scores(pj.create_encoder(cfg["encoder"]["name"], **enc_args), dataset)
        rows.append((f"{recipe}: pretrained JEPA", trained, ""))
        rows.append((f"{recipe}: random init", random, ""))
        baselines = trained
    for name, prefix in (("popularity", "pop_"), ("item-kNN (co-occurrence)", "itemknn_")):
        rows.append((name, {k[len(prefix):]: v for k, v in baselines.items()
                            if k.startswith(prefix)}, "-"))
    n, n_tail = int(baselines["n_users"]), int(baselines["n_tail_targets"])
    print(f"MovieLens-100k ({args.data}), leave-last-out, {n} users ({n_tail} with a "
          f"long-tail held-out item), full ranking over the catalogue, training items "
          f"excluded; {args.steps} pre-training steps per recipe")
    head = (f"{'model':30s} {'R@10':>7s} {'NDCG@10':>8s} {'tail R@10':>10s} "
            f"{'tail NDCG@10':>13s} {'RankMe':>7s}")
    print(head)
    print("-" * len(head))
    for name, m, rk in rows:
        rank = rk or f"{m['rankme']:7.1f}"
        print(f"{name:30s} {m['recall@10']:7.4f} {m['ndcg@10']:8.4f} "
              f"{m['tail_recall@10']:10.4f} {m['tail_ndcg@10']:13.4f} {rank:>7s}")

    def se(p: float, k: int) -> float:
        return (p * (1 - p) / max(k, 1)) ** 0.5

    print(f"binomial standard error of a Recall@10: about {se(0.05, n):.4f} near 0.05 "
          f"({n} users), {se(0.02, n_tail):.4f} near 0.02 on the tail ({n_tail} users)")


if __name__ == "__main__":
    main()
