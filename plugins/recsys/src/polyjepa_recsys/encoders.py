"""Encoders: an item tower over feature fields and a sequence encoder over histories."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from polyjepa import TokenEncoder, init_weights, sincos_pos_embed

DEFAULT_FIELDS = [{"name": "item_id", "kind": "hash", "size": 4096}]


class FieldEmbedder(nn.Module):
    """One embedding per feature field: ``[..., F, W]`` codes -> ``[..., F, D]``.

    ``hash``/``cat`` fields look up their first code, ``multi`` fields average the
    embeddings of their non-zero codes, ``num`` fields map ``[value, present]`` linearly.
    Code 0 means missing and embeds to zero.
    """

    def __init__(self, fields: list[dict[str, Any]], dim: int):
        super().__init__()
        if not fields:
            raise ValueError("an item encoder needs at least one feature field")
        self.kinds = [str(f["kind"]) for f in fields]
        self.tables = nn.ModuleList()
        for f in fields:
            if f["kind"] == "num":
                self.tables.append(nn.Linear(2, dim))
            elif f["kind"] in ("hash", "cat", "multi"):
                self.tables.append(nn.Embedding(int(f["size"]) + 1, dim, padding_idx=0))
            else:
                raise ValueError(f"unknown field kind {f['kind']!r} (hash, cat, multi, num)")
        # every field starts at the same small scale, so that no field (a numerical one
        # with a default-initialised linear map, say) dominates the untrained item token
        for t in self.tables:
            nn.init.normal_(t.weight, std=0.02)
            if isinstance(t, nn.Embedding):
                with torch.no_grad():
                    t.weight[0].zero_()
            else:
                nn.init.zeros_(t.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] != len(self.kinds):
            raise ValueError(f"input has {x.shape[-2]} feature fields, the encoder "
                             f"was built for {len(self.kinds)}")
        out = []
        for f, (kind, table) in enumerate(zip(self.kinds, self.tables)):
            v = x[..., f, :]
            if kind == "num":
                out.append(table(v[..., :2].to(table.weight.dtype)))
                continue
            codes = v.long().clamp(0, table.num_embeddings - 1)
            if kind == "multi":
                e = table(codes)  # [..., W, D]; padding rows are zero
                n = (codes > 0).sum(-1, keepdim=True).clamp_min(1)
                out.append(e.sum(-2) / n.to(e.dtype))
            else:
                out.append(table(codes[..., 0]))
        return torch.stack(out, dim=-2)


class ItemTower(TokenEncoder):
    """Item tower: one token per feature field (grid ``(n_fields,)``).

    ``fields`` (normally filled from the dataset's ``encoder_hints``) lists each field's
    ``kind`` and vocabulary ``size``. A token is the field's layer-normed embedding (so
    that every field's content is on the scale of the positional terms from the start)
    plus a learned field-identity embedding and a fixed sin-cos position.

    Adapted from the item tower of Yao et al., "Self-supervised Learning for Large-scale
    Item Recommendations", CIKM 2021, https://arxiv.org/abs/2007.12865 (hashed ids and
    categorical features embedded per field, so that masking works field by field); here
    the fields are tokens of a transformer rather than inputs concatenated into an MLP.
    """

    def __init__(self, fields: list[dict[str, Any]] | None = None, embed_dim: int = 64,
                 depth: int = 2, num_heads: int = 4, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        fields = fields or DEFAULT_FIELDS
        self.n_fields = len(fields)
        self.embed = FieldEmbedder(fields, embed_dim)
        self.field_norm = nn.LayerNorm(embed_dim)
        self.field_embed = nn.Parameter(torch.zeros(self.n_fields, embed_dim))
        nn.init.normal_(self.field_embed, std=0.02)
        self.register_buffer("pos", sincos_pos_embed((self.n_fields,), embed_dim),
                             persistent=False)
        init_weights(self.blocks)
        init_weights(self.norm)

    def _x(self, batch: Any) -> torch.Tensor:
        x = batch["x"] if isinstance(batch, dict) else batch
        if x.dim() != 3 or x.shape[1] != self.n_fields:
            raise ValueError(f"ItemTower expects x [B, {self.n_fields} fields, W], got "
                             f"{tuple(x.shape)}")
        return x

    def grid(self, batch: Any) -> tuple[int, ...]:
        return (int(self._x(batch).shape[1]),)

    def tokenize(self, batch: Any) -> torch.Tensor:
        tok = self.field_norm(self.embed(self._x(batch)))
        return tok + self.field_embed + self.pos.to(tok.dtype)


class SequenceEncoder(TokenEncoder):
    """Sequence encoder over a user's history: one token per position (grid ``(max_len,)``).

    Each position's item is embedded from its feature fields (summed field embeddings,
    so cold-start items still get a token from their features) plus a sin-cos position;
    padding positions are invalid and never attended to.
    """

    def __init__(self, fields: list[dict[str, Any]] | None = None, max_len: int = 50,
                 embed_dim: int = 64, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        fields = fields or DEFAULT_FIELDS
        self.n_fields = len(fields)
        self.max_len = int(max_len)
        self.embed = FieldEmbedder(fields, embed_dim)
        self.item_norm = nn.LayerNorm(embed_dim)
        init_weights(self.blocks)
        init_weights(self.norm)

    def _x(self, batch: Any) -> torch.Tensor:
        x = batch["x"] if isinstance(batch, dict) else batch
        if x.dim() != 4 or x.shape[2] != self.n_fields:
            raise ValueError(f"SequenceEncoder expects x [B, length, {self.n_fields} fields, W],"
                             f" got {tuple(x.shape)}")
        return x

    def grid(self, batch: Any) -> tuple[int, ...]:
        return (int(self._x(batch).shape[1]),)

    def tokenize(self, batch: Any) -> torch.Tensor:
        x = self._x(batch)
        tok = self.item_norm(self.embed(x).sum(dim=-2))
        pos = sincos_pos_embed((x.shape[1],), self.embed_dim).to(tok.device, tok.dtype)
        return tok + pos
