"""Feature tokeniser and transformer encoder for tables (one token per feature).

The encoder of T-JEPA (Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised
Learning for Tabular Data", ICLR 2025, https://arxiv.org/abs/2410.05016): every feature a
token, numbers through a per-feature linear map and categories through embedding tables,
with its optional regularisation tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from polyjepa import TokenEncoder, init_weights


class FeatureTokenEncoder(TokenEncoder):
    """Transformer over one token per feature, grid ``(n_features,)``.

    A numeric feature ``j`` with standardised value ``v`` becomes ``v * w_j + b_j``; a
    categorical feature looks its id up in its own embedding table (id 0 = unknown); a
    missing value becomes a learned missing-value embedding whatever the feature's kind.
    Every token then gets a learned feature-identity embedding. ``cardinalities[j]`` is 0
    for numeric features and the table size for categorical ones (the reader passes both
    through ``encoder_hints``).

    ``reg_tokens=k`` adds T-JEPA's regularisation tokens (arXiv:2410.05016, proposed there
    against representation collapse): ``k`` learned tokens that take part in attention
    with the (kept) feature tokens and are dropped from the output.
    ``query_key_scale``: attention's query and key weights at std ``scale / sqrt(width)``
    (:func:`polyjepa.init_query_key`) instead of ViT's 0.02.
    """

    def __init__(self, n_features: int, cardinalities: list[int] | None = None,
                 embed_dim: int = 64, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: float = 2.0, drop_path: float = 0.0, reg_tokens: int = 0,
                 query_key_scale: float | None = None):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        n_features = int(n_features)
        if n_features < 1:
            raise ValueError(f"n_features must be positive, got {n_features}")
        cards = [int(c) for c in (cardinalities or [0] * n_features)]
        if len(cards) != n_features:
            raise ValueError(f"{len(cards)} cardinalities for {n_features} features")
        if any(c < 0 for c in cards):
            raise ValueError("cardinalities must be >= 0")
        self.n_features = n_features
        self.cardinalities = cards
        self.reg_tokens = int(reg_tokens)
        if self.reg_tokens < 0:
            raise ValueError(f"reg_tokens must be >= 0, got {reg_tokens}")
        d = self.embed_dim
        is_cat = torch.tensor([c > 0 for c in cards], dtype=torch.bool)
        offsets = torch.tensor([0, *cards[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("is_cat", is_cat, persistent=False)
        self.register_buffer("cat_offset", offsets, persistent=False)
        self.register_buffer("cat_max", torch.tensor([max(c - 1, 0) for c in cards]),
                             persistent=False)
        self.num_weight = nn.Parameter(torch.zeros(n_features, d))
        self.num_bias = nn.Parameter(torch.zeros(n_features, d))
        self.cat_embed = nn.Embedding(max(sum(cards), 1), d)
        self.missing_token = nn.Parameter(torch.zeros(d))
        self.feature_embed = nn.Parameter(torch.zeros(n_features, d))
        self.reg = nn.Parameter(torch.zeros(1, self.reg_tokens, d)) if self.reg_tokens else None
        init_weights(self, query_key_scale)
        for p in (self.num_weight, self.cat_embed.weight, self.missing_token,
                  self.feature_embed, *( [self.reg] if self.reg is not None else [])):
            nn.init.trunc_normal_(p, std=0.02)
        # weight and bias at the same scale, as FT-Transformer initialises its numerical
        # embeddings: with a zero bias, every value of at least ~1 sd pointed the token
        # the same way and the layer norms kept only its sign (an untrained token for v=1
        # and v=3: cosine 0.98; now 0.88); random init's MLP probe on diabetes 0.20 -> 0.29
        nn.init.trunc_normal_(self.num_weight, std=1.0 / d ** 0.5)
        nn.init.trunc_normal_(self.num_bias, std=1.0 / d ** 0.5)

    def _inputs(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(batch, dict):
            x, missing = batch["x"], batch.get("missing")
        else:
            x, missing = batch, None
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"tabular encoder expects x of shape [B, {self.n_features}], got "
                             f"{tuple(x.shape)}")
        return x, missing

    def grid(self, batch: Any) -> tuple[int, ...]:
        self._inputs(batch)
        return (self.n_features,)

    def tokenize(self, batch: Any) -> torch.Tensor:
        x, missing = self._inputs(batch)
        x = x.float()
        num = x.unsqueeze(-1) * self.num_weight + self.num_bias
        # every feature is looked up (then discarded for numeric ones), so a numeric
        # feature's row must exist too: row 0, not its offset, which for numeric features
        # after the last categorical one is the table's size
        ids = torch.minimum(x.round().long().clamp_min(0), self.cat_max) + self.cat_offset
        ids = torch.where(self.is_cat, ids, torch.zeros_like(ids))
        cat = self.cat_embed(ids)
        tok = torch.where(self.is_cat[:, None], cat, num)
        if missing is not None:
            tok = torch.where(missing.bool().unsqueeze(-1), self.missing_token.to(tok.dtype), tok)
        return tok + self.feature_embed

    def encode_tokens(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        k = self.reg_tokens
        if not k:
            return super().encode_tokens(x, valid)
        b = x.shape[0]
        x = torch.cat([self.reg.to(x.dtype).expand(b, -1, -1), x], dim=1)
        if valid is not None:
            valid = torch.cat([torch.ones(b, k, dtype=torch.bool, device=valid.device),
                               valid.bool()], dim=1)
        return super().encode_tokens(x, valid)[:, k:]
