"""Components of the toyseq plugin."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

import polyjepa as pj


class DigitSequences(pj.ArrayDataset):
    def __init__(self, data: Any = None, limit: int = 256, state: dict | None = None):
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.data[:limit].astype(np.float32)[:, None, :] / 16.0
        super().__init__(x, d.target[:limit], source="sklearn digits")


class ChunkEncoder(pj.TokenEncoder):
    def __init__(self, chunk: int = 4, embed_dim: int = 32, depth: int = 1, num_heads: int = 2):
        super().__init__(embed_dim, depth, num_heads)
        self.chunk = chunk
        self.proj = nn.Linear(chunk, embed_dim)

    def grid(self, batch: Any) -> tuple[int, ...]:
        return (batch["x"].shape[-1] // self.chunk,)

    def tokenize(self, batch: Any) -> torch.Tensor:
        x = batch["x"][:, 0]
        (n,) = self.grid(batch)
        tokens = self.proj(x[:, : n * self.chunk].reshape(x.shape[0], n, self.chunk))
        return tokens + pj.sincos_pos_embed((n,), self.embed_dim).to(tokens.dtype)


class TailMasker:
    """Predict a random window of chunks from everything before it."""

    def __init__(self, width: int = 4):
        self.width = width

    def __call__(self, grid, batch_size, generator, valid=None):
        (n,) = grid
        start = torch.randint(1, n - self.width + 1, (batch_size, 1), generator=generator)
        pos = torch.arange(n).unsqueeze(0)
        target = (pos >= start) & (pos < start + self.width)
        context = ~target
        return pj.Masks(pj.choose(context, int(context.sum(1).min()), generator),
                        [pj.choose(target, self.width, generator)])


class MeanNorm:
    needs_labels = False

    def __call__(self, ctx: pj.EvalContext) -> dict[str, float]:
        return {"mean_norm": float(np.linalg.norm(ctx.embeddings, axis=1).mean())}


def recipe() -> dict[str, Any]:
    return {
        "dataset": {"name": "toyseq.digits"},
        "encoder": {"name": "toyseq.encoder"},
        "masker": {"name": "toyseq.tail"},
        "predictor": {"name": "transformer", "dim": 16, "depth": 1, "num_heads": 2},
        "evaluators": ["rankme", "linear_probe", "knn", "toyseq.mean_norm"],
        "train": {"steps": 6, "batch_size": 8, "warmup_steps": 2, "precision": "fp32",
                  "log_every": 1, "rankme_every": 3, "checkpoint_every": 3},
        "demo": {"kind": "real", "description": "sklearn digits as sequences"},
    }


def command(argv: list[str]) -> int:
    """``polyjepa toyseq describe [--limit N]``: print the toy data set's shape."""
    import argparse

    parser = argparse.ArgumentParser(prog="polyjepa toyseq")
    parser.add_argument("action", choices=["describe"])
    parser.add_argument("--limit", type=int, default=256)
    a = parser.parse_args(argv)
    ds = DigitSequences(limit=a.limit)
    print(f"toyseq: {len(ds)} sequences of length {ds[0]['x'].shape[-1]}")
    return 0
