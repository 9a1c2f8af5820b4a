"""Encoders: tokenise a batch into a grid and run transformer blocks on kept tokens only.

A domain writes a :class:`TokenEncoder` subclass that implements :meth:`~TokenEncoder.grid`
and :meth:`~TokenEncoder.tokenize`; masking, dropping invalid tokens before the
transformer and the transformer stack come from here. :class:`PatchEncoder` is the
generic ViT for N-d arrays (1-D signals, 2-D images, 3-D volumes or clips).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from .attention import Attention
from .posembed import sincos_pos_embed
from .tokens import batch_valid, gather_tokens


def transformer_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                       drop_path: float = 0.0, qkv_bias: bool = True) -> nn.ModuleList:
    """A stack of timm pre-norm transformer blocks with a linear drop-path ramp."""
    if dim % num_heads:
        raise ValueError(f"width {dim} is not divisible by num_heads={num_heads}")
    rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
    # polyjepa's attention (timm's, with fp32 attention on CPU under bf16) where this
    # timm lets a block take its attention class; the weights are the same either way
    extra = {"attn_layer": Attention} if _BLOCK_TAKES_ATTN else {}
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_path=r,
              norm_layer=nn.LayerNorm, **extra)
        for r in rates
    )


_BLOCK_TAKES_ATTN = "attn_layer" in inspect.signature(Block.__init__).parameters


def init_weights(module: nn.Module, query_key_scale: float | None = None) -> None:
    """Truncated-normal linear weights (std 0.02) and unit LayerNorms, the ViT/I-JEPA
    convention; with ``query_key_scale``, attention's query and key maps are drawn by
    :func:`init_query_key` instead."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if query_key_scale is not None:
        init_query_key(module, query_key_scale)


def init_query_key(module: nn.Module, scale: float = 1.0) -> None:
    """Query and key weights of every attention layer (timm's fused ``qkv``) drawn with
    std ``scale / sqrt(width)``: attention logits of order ``scale ** 2`` from the first
    step.

    With ViT's std of 0.02 the logits scale with the square of ``0.02 * sqrt(width)``;
    for a 64-wide encoder that is about 0.03: every token attends to all others equally
    (normalised attention entropy 1.00, ``benchmarks/token_context.py``), and as the
    query and key gradients scale with each other's size, attention can stay uniform for
    hundreds of steps, the blocks adding only the mean token. Values, output projections
    and MLPs keep their init, so the residual branches still start small.
    """
    for m in module.modules():
        qkv = getattr(m, "qkv", None)
        if isinstance(qkv, nn.Linear) and hasattr(m, "num_heads"):
            std = float(scale) / qkv.in_features ** 0.5
            with torch.no_grad():
                nn.init.trunc_normal_(qkv.weight[: 2 * qkv.in_features], std=std,
                                      a=-2 * std, b=2 * std)


def init_token_embedding(module: nn.Module, scale: float = 0.5) -> None:
    """Fan-in-scaled weights and zero biases for the linear and convolutional maps that
    turn a sample's content into tokens: unit-scale inputs give content of std ``scale``,
    the sin-cos positions' own scale (about 0.5), whatever the number of inputs.

    ViT's std of 0.02 is calibrated for 16 x 16 x 3 pixel patches (768 inputs), where the
    content part of a token has about the positions' scale. With few inputs per token (a
    20-sample ECG patch, nine pillar features, a 2 x 2 image patch) the same std makes the
    content 5-100x smaller than the position, so an untrained encoder outputs mostly where
    a token is, not what it holds. Every layer gets std ``1 / sqrt(fan_in)`` (LeCun), the
    last one ``scale / sqrt(fan_in)``.

    Measured, frozen encoders, 3 seeds (``benchmarks/QUALITY.md``): it pays where a probe
    reads what each token holds (LiDAR's per-pillar probe on the real LAS tile: random init
    0.362 -> 0.447; beats of unseen ECG patients: 0.656 -> 0.735, pretrained 0.718 ->
    0.758). It does not where the probe pools tokens whose small linear content term
    was what it read (one-pixel digit tokens; SAR's speckled patches: 0.690 -> 0.644 at
    100 steps), so encoders opt in (``PatchEncoder(token_scale=...)``).
    """
    layers = [m for m in module.modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    for i, m in enumerate(layers):
        std = (scale if i == len(layers) - 1 else 1.0) / m.weight[0].numel() ** 0.5
        nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def key_padding_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """Attention mask ``[B, 1, 1, N]`` (True = attend) from a valid-token mask.

    Rows without any valid token attend to everything rather than produce NaNs; their
    pooled embedding is zero anyway.
    """
    if valid is None:
        return None
    valid = valid.bool()
    if bool(valid.all()):
        return None
    valid = valid | ~valid.any(dim=1, keepdim=True)
    return valid[:, None, None, :]


class TokenEncoder(nn.Module):
    """Base class for encoders over a token grid.

    Subclasses implement ``grid(batch)`` (the token layout, e.g. ``(leads, time)``) and
    ``tokenize(batch)`` (``[B, N, embed_dim]`` tokens with positional information, in the
    row-major order of the grid). ``forward(batch, keep)`` gathers the kept tokens and runs
    the transformer on them alone, honouring the batch's ``valid`` mask.
    """

    def __init__(self, embed_dim: int = 192, depth: int = 6, num_heads: int = 6,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.depth = int(depth)
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(embed_dim)

    def grid(self, batch: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def tokenize(self, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def encode_tokens(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Run the transformer stack on already-gathered tokens."""
        mask = key_padding_mask(valid)
        for blk in self.blocks:
            x = blk(x, attn_mask=mask)
        return self.norm(x)

    def forward(self, batch: Any, keep: torch.Tensor | None = None,
                dense: bool = False) -> torch.Tensor:
        """Token embeddings: ``[B, K, D]`` for the ``keep`` indices, else ``[B, N, D]``.

        Without ``keep``, a batch whose ``valid`` mask drops tokens runs the transformer on
        its valid tokens only (:meth:`encode_valid`); invalid positions come back as zeros.
        ``dense=True`` runs every token instead and only masks invalid keys in attention,
        which gives the same numbers at valid positions at a higher cost.
        """
        x = self.tokenize(batch)
        valid = batch_valid(batch)
        if keep is not None:
            x = gather_tokens(x, keep)
            valid = gather_tokens(valid, keep) if valid is not None else None
        elif valid is not None and not dense:
            return self.encode_valid(x, valid)
        return self.encode_tokens(x, valid)

    def encode_valid(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Run the stack on the valid tokens of ``x [B, N, D]`` only, so that invalid
        tokens (absent leads, empty pillars, sequence padding) cost nothing.

        Each sample's valid tokens are gathered, in grid order, into ``[B, M, D]`` with
        ``M`` the largest valid count of the batch (shorter samples are padded and the
        padding is masked in attention), and the outputs are scattered back to
        ``[B, N, D]`` with zeros at invalid positions. Positional information is already
        in the tokens, so attention over the gathered valid tokens is exactly the
        key-padded attention of the dense path.
        """
        valid = valid.to(device=x.device, dtype=torch.bool)
        if bool(valid.all()):
            return self.encode_tokens(x, None)
        m = max(int(valid.sum(dim=1).max()), 1)
        # a stable sort puts each row's valid positions first, in their grid order
        index = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :m]
        kept = gather_tokens(valid, index)
        out = self.encode_tokens(gather_tokens(x, index), kept)
        out = out * kept.unsqueeze(-1).to(out.dtype)
        full = out.new_zeros(x.shape[0], x.shape[1], out.shape[-1])
        return full.scatter(1, index.unsqueeze(-1).expand(-1, -1, out.shape[-1]), out)


def _as_tuple(value: int | tuple[int, ...] | list[int], ndim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(int(v) for v in value)
    if len(value) != ndim:
        raise ValueError(f"patch size {value} does not match {ndim} spatial dims")
    return value


class PatchEncoder(TokenEncoder):
    """Generic ViT over ``[B, C, *spatial]`` arrays: non-overlapping N-d patches.

    ``patch_size`` is an int (same on every axis) or one size per spatial axis; inputs are
    cropped to a whole number of patches. Positional embeddings are fixed N-d sin-cos.

    ``token_scale=None`` keeps ViT's std of 0.02 for the patch embedding, so that small
    patches start as a small linear term beside their positions; a number sets the
    untrained patch content's std for unit-scale inputs (:func:`init_token_embedding`).
    On scikit-learn's digits (one pixel per token, mean-pooled, linear probe) the small
    term is what works: 0.5 gave 0.693 at random init and 0.540 after 300 steps against
    0.847 and 0.924 with the default.
    """

    def __init__(self, in_chans: int = 1, patch_size: int | tuple[int, ...] = 16,
                 ndim: int = 2, embed_dim: int = 192, depth: int = 6, num_heads: int = 6,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 token_scale: float | None = None):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        self.ndim = int(ndim)
        self.in_chans = int(in_chans)
        self.patch_size = _as_tuple(patch_size, self.ndim)
        self.patch_embed = nn.Linear(self.in_chans * math.prod(self.patch_size), embed_dim)
        init_weights(self)
        if token_scale is not None:
            init_token_embedding(self.patch_embed, token_scale)

    def _input(self, batch: Any) -> torch.Tensor:
        x = batch["x"] if isinstance(batch, dict) else batch
        if x.dim() != self.ndim + 2:
            raise ValueError(f"PatchEncoder(ndim={self.ndim}) expects [B, C, {self.ndim} "
                             f"spatial dims], got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} channels, got {x.shape[1]}")
        return x

    def grid(self, batch: Any) -> tuple[int, ...]:
        x = self._input(batch)
        g = tuple(s // p for s, p in zip(x.shape[2:], self.patch_size))
        if any(v == 0 for v in g):
            raise ValueError(f"input {tuple(x.shape[2:])} is smaller than patch {self.patch_size}")
        return g

    def tokenize(self, batch: Any) -> torch.Tensor:
        x = self._input(batch)
        g = self.grid(batch)
        b, c = x.shape[:2]
        crop = tuple(slice(0, gi * pi) for gi, pi in zip(g, self.patch_size))
        x = x[(slice(None), slice(None), *crop)]
        shape = [b, c]
        for gi, pi in zip(g, self.patch_size):
            shape += [gi, pi]
        x = x.reshape(shape)
        d = self.ndim
        # [B, C, g1, p1, ..., gd, pd] -> [B, g1..gd, C, p1..pd]
        perm = [0, *[2 + 2 * i for i in range(d)], 1, *[3 + 2 * i for i in range(d)]]
        x = x.permute(perm).reshape(b, math.prod(g), -1)
        tokens = self.patch_embed(x)
        pos = sincos_pos_embed(g, self.embed_dim).to(device=tokens.device, dtype=tokens.dtype)
        return tokens + pos
