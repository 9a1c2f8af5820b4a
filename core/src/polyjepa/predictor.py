"""The narrow transformer predictor with mask tokens (I-JEPA,
https://arxiv.org/abs/2301.08243)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .attention import block_tail
from .encoder import init_weights, transformer_blocks
from .posembed import sincos_pos_embed
from .tokens import gather_tokens


class TransformerPredictor(nn.Module):
    """Predicts target-token embeddings from context tokens and target positions.

    Context tokens are projected to the (narrow) predictor width and given their grid
    positions; each target position gets a shared learned mask token plus its positional
    embedding. Only the outputs at the mask tokens are returned, projected to ``out_dim``.
    ``query_key_scale``: see :func:`polyjepa.init_query_key` (default: ViT's init).
    """

    def __init__(self, embed_dim: int, out_dim: int | None = None, dim: int = 96,
                 depth: int = 3, num_heads: int = 4, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, query_key_scale: float | None = None):
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.out_dim = int(out_dim or embed_dim)
        self.dim = int(dim)
        self.embed = nn.Linear(self.embed_dim, self.dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.dim))
        self.blocks = transformer_blocks(self.dim, depth, num_heads, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(self.dim)
        self.proj = nn.Linear(self.dim, self.out_dim)
        init_weights(self, query_key_scale)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor,
                target_idx: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        b = context.shape[0]
        pos = sincos_pos_embed(grid, self.dim).to(device=context.device, dtype=context.dtype)
        pos = pos.unsqueeze(0).expand(b, -1, -1)
        x = self.embed(context) + gather_tokens(pos, context_idx)
        m = self.mask_token.to(x.dtype) + gather_tokens(pos, target_idx)
        h = torch.cat([x, m], dim=1)
        blocks = list(self.blocks)
        for blk in blocks[:-1]:
            h = blk(h)
        # only the mask tokens' outputs are returned: in the last block the context
        # tokens are keys and values alone (measured: ~10% of the predictor's time)
        n = context.shape[1]
        h = block_tail(blocks[-1], h, n) if blocks else h[:, n:]
        return self.proj(self.norm(h))
