"""Tubelet ViT: non-overlapping ``t x p x p`` tubelets, 3-D sin-cos positions, timm blocks.

The encoder of V-JEPA (Bardes et al., "Revisiting Feature Prediction for Learning Visual
Representations from Video", 2024, https://arxiv.org/abs/2404.08471): a clip is cut into
space-time tubelets, each one token of a ViT.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

import polyjepa


class TubeletEncoder(polyjepa.TokenEncoder):
    """V-JEPA's encoder over clips ``[B, C, T, H, W]``.

    Each ``tubelet x patch_size x patch_size`` tubelet becomes one token (a strided 3-D
    convolution); the grid is ``(T // tubelet, H // patch_size, W // patch_size)`` in
    row-major order, inputs are cropped to whole tubelets, and fixed 3-D sin-cos positions
    are added.
    """

    def __init__(self, in_chans: int = 3, patch_size: int = 16, tubelet: int = 2,
                 embed_dim: int = 192, depth: int = 6, num_heads: int = 6,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        self.in_chans, self.patch_size, self.tubelet = int(in_chans), int(patch_size), int(tubelet)
        kernel = (self.tubelet, self.patch_size, self.patch_size)
        self.patch_embed = nn.Conv3d(self.in_chans, embed_dim, kernel_size=kernel, stride=kernel)
        polyjepa.init_weights(self)
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=0.02)
        nn.init.zeros_(self.patch_embed.bias)

    def _input(self, batch: Any) -> torch.Tensor:
        x = batch["x"] if isinstance(batch, dict) else batch
        if x.dim() != 5:
            raise ValueError(f"video.vit expects clips [B, C, T, H, W], got {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"video.vit expects {self.in_chans} channels, got {x.shape[1]}")
        return x

    def grid(self, batch: Any) -> tuple[int, ...]:
        x = self._input(batch)
        t, h, w = x.shape[2:]
        g = (t // self.tubelet, h // self.patch_size, w // self.patch_size)
        if min(g) == 0:
            raise ValueError(f"clip {t}x{h}x{w} is smaller than one tubelet "
                             f"{self.tubelet}x{self.patch_size}x{self.patch_size}")
        return g

    def tokenize(self, batch: Any) -> torch.Tensor:
        x = self._input(batch)
        gt, gh, gw = self.grid(batch)
        x = x[:, :, :gt * self.tubelet, :gh * self.patch_size, :gw * self.patch_size]
        tokens = self.patch_embed(x.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        pos = polyjepa.sincos_pos_embed((gt, gh, gw), self.embed_dim)
        return tokens + pos.to(device=tokens.device, dtype=tokens.dtype)
