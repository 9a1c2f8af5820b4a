"""How much of an encoder's output is its own token, and how much the blocks add.

A transformer encoder's output token is its input token embedding plus what the blocks
add (attention over the other tokens, MLPs). Where pre-training does not beat random
init, this tells whether the blocks learnt to change anything: per run, the size of each
block's update relative to the residual stream, and the cosine between each output token
and its own (layer-normed) token embedding, for the trained encoder and for the same
encoder at its random init (averaged over the valid tokens of one batch of the run's
data). A cosine near 1 means the embeddings are still a per-token function of the
token's own content: the context the JEPA's predictor uses never reached the encoder.
It also prints each block's attention entropy over the tokens, divided by its maximum
(1: every token attends to all others equally, so attention adds only the mean token;
lower: attention picks tokens out).

    python benchmarks/token_context.py quality/runs/lidar/las_tile-120-s0 [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F


def attention_entropy(attn: torch.nn.Module, x: torch.Tensor) -> float:
    """Mean entropy of ``attn``'s attention rows over the ``N`` tokens of ``x``, divided
    by ``log N`` (timm's ``Attention``: ``qkv``, ``q_norm``, ``k_norm``, ``scale``)."""
    b, n, c = x.shape
    heads = attn.num_heads
    q, k, _ = attn.qkv(x).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    p = ((attn.q_norm(q) @ attn.k_norm(k).transpose(-2, -1)) * attn.scale).softmax(-1)
    return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean() / math.log(max(n, 2)))


@torch.no_grad()
def token_context(encoder: torch.nn.Module, batch: dict
                  ) -> tuple[list[float], float, list[float]]:
    """(each block's ``|update| / |stream|``, mean cosine of output and own token, each
    block's normalised attention entropy)."""
    from polyjepa.tokens import batch_valid

    encoder.eval()
    x0 = encoder.tokenize(batch)
    x, updates, entropy = x0, [], []
    for blk in encoder.blocks:
        entropy.append(attention_entropy(blk.attn, blk.norm1(x)))
        y = blk(x)
        updates.append(float((y - x).norm() / x.norm()))
        x = y
    cos = F.cosine_similarity(F.layer_norm(x0, x0.shape[-1:]), encoder.norm(x), dim=-1)
    valid = batch_valid(batch)
    return updates, float((cos[valid.bool()] if valid is not None else cos).mean()), entropy


def main(argv: list[str] | None = None) -> int:
    import polyjepa as pj
    from polyjepa.build import build_dataset
    from polyjepa.data import eval_loader
    from polyjepa.quality import random_init_encoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders")
    parser.add_argument("--batch", type=int, default=64, help="samples to average over")
    args = parser.parse_args(argv)
    print(f"{'run':<36} {'encoder':<12} {'cos(out, own token)':>20}  block updates"
          "  /  attention entropy")
    for run in args.runs:
        cfg = json.loads((Path(run) / "run.json").read_text(encoding="utf-8"))["config"]
        dataset = build_dataset(cfg, None, state=cfg.get("dataset_state"))
        batch = next(iter(eval_loader(dataset, args.batch)))
        for name, enc in (("pretrained", pj.load_encoder(run)),
                          ("random init", random_init_encoder(cfg, int(cfg["train"]["seed"])))):
            updates, cos, entropy = token_context(enc, batch)
            print(f"{Path(run).name:<36} {name:<12} {cos:>20.3f}  "
                  + " ".join(f"{u:.3f}" for u in updates) + "  /  "
                  + " ".join(f"{e:.2f}" for e in entropy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
