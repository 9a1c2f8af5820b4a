"""SAR encoders: a ViT over H x W patches, and SAR-JEPA's fixed gradient-feature target.

The gradient target follows SAR-JEPA (Li et al., "Predicting Gradient is Better: Exploring
Self-Supervised Learning for SAR ATR with a Joint-Embedding Predictive Architecture",
2023, https://arxiv.org/abs/2311.15153): the predictor regresses multi-scale SAR gradient
features of the masked patches instead of a learnt teacher's embeddings.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polyjepa import PatchEncoder


def _image(batch: Any) -> torch.Tensor:
    x = batch["x"] if isinstance(batch, dict) else batch
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"SAR encoders expect x [B, C, H, W], got "
                         f"{tuple(getattr(x, 'shape', ()))}")
    return x


class SARViT(PatchEncoder):
    """ViT over non-overlapping ``patch_size`` patches of ``[B, C, H, W]`` SAR images.

    The token grid is ``(H / p, W / p)`` in row-major order with fixed 2-D sin-cos
    positions; inputs are normalised dB images from the ``sar.*`` readers. The context
    encoder of I-JEPA (Assran et al., CVPR 2023, https://arxiv.org/abs/2301.08243) and of
    SAR-JEPA (arXiv:2311.15153).
    """

    def __init__(self, in_chans: int = 1, patch_size: int = 8, embed_dim: int = 192,
                 depth: int = 6, num_heads: int = 6, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__(in_chans=in_chans, patch_size=patch_size, ndim=2,
                         embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                         mlp_ratio=mlp_ratio, drop_path=drop_path)


class GradientTarget(nn.Module):
    """SAR-JEPA target: multi-scale ratio-of-averages (ROA) gradient features per patch
    (Li et al., 2023, https://arxiv.org/abs/2311.15153).

    For each scale ``r`` the horizontal gradient is ``log(mean_right / mean_left)`` over
    ``(2r+1) x r`` windows on either side of a pixel (vertical likewise); ratios rather
    than differences make the operator robust to multiplicative speckle. Per patch and
    scale, gradient magnitudes are binned by unsigned orientation (``num_bins`` bins,
    linear soft assignment, optionally ``cells x cells`` sub-cells): a HOG of ROA
    gradients. The feature size is ``C * len(scales) * num_bins * cells**2``.

    ``input="log"`` (default) means ``x`` is on a log scale (the readers' normalised dB),
    so averages are taken of ``exp(x)``; ``input="linear"`` takes ``x`` as amplitude.
    ``compress="log"`` takes ``log(h + 0.01)`` of the histograms; ``standardize=True``
    scales each feature to zero mean and unit variance over the batch's valid tokens
    (the ``sar`` recipe uses it instead of a per-token layer norm, which would erase how
    strong each patch's gradients are). Computed on the fly on the batch's device; no
    trainable parameters.
    """

    def __init__(self, in_chans: int = 1, patch_size: int = 8,
                 scales: tuple[int, ...] | list[int] = (1, 2, 4), num_bins: int = 8,
                 cells: int = 1, input: str = "log", eps: float = 1e-4,
                 compress: str = "none", standardize: bool = False):
        super().__init__()
        if input not in ("log", "linear"):
            raise ValueError(f"input must be 'log' or 'linear', got {input!r}")
        self.in_chans = int(in_chans)
        self.patch_size = int(patch_size)
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f"scales must be positive ints, got {scales}")
        self.num_bins = int(num_bins)
        self.cells = int(cells)
        if self.patch_size % self.cells:
            raise ValueError(f"patch_size {patch_size} is not divisible by cells={cells}")
        self.input = input
        if compress not in ("none", "log"):
            raise ValueError(f"compress must be 'none' or 'log', got {compress!r}")
        self.compress = compress
        self.standardize = bool(standardize)
        self.eps = float(eps)
        self.embed_dim = self.in_chans * len(self.scales) * self.num_bins * self.cells ** 2

    def grid(self, batch: Any) -> tuple[int, int]:
        x = _image(batch)
        g = (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        if 0 in g:
            raise ValueError(f"input {tuple(x.shape[2:])} is smaller than patch "
                             f"{self.patch_size}")
        return g

    def _roa(self, a: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-ratio gradients (horizontal, vertical) of positive ``a [B, C, H, W]``."""
        h, w = a.shape[-2:]
        mode = "reflect" if min(h, w) > r else "replicate"
        p = F.pad(a, (r, r, r, r), mode=mode)
        horiz = F.avg_pool2d(p, kernel_size=(2 * r + 1, r), stride=1)  # [.., H, W + r + 1]
        vert = F.avg_pool2d(p, kernel_size=(r, 2 * r + 1), stride=1)   # [.., H + r + 1, W]
        left, right = horiz[..., :, :w], horiz[..., :, r + 1:r + 1 + w]
        above, below = vert[..., :h, :], vert[..., r + 1:r + 1 + h, :]
        gx = torch.log(right + self.eps) - torch.log(left + self.eps)
        gy = torch.log(below + self.eps) - torch.log(above + self.eps)
        return gx, gy

    def features(self, batch: Any) -> torch.Tensor:
        """Per-token features ``[B, N, embed_dim]`` over the full grid."""
        x = _image(batch)
        if x.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} channels, got {x.shape[1]}")
        gh, gw = self.grid(batch)
        p = self.patch_size
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x[:, :, :gh * p, :gw * p].float()
            a = torch.exp(x.clamp(-20.0, 20.0)) if self.input == "log" else x.clamp_min(0.0)
            b, c = a.shape[:2]
            feats = []
            centres = torch.arange(self.num_bins, device=x.device, dtype=x.dtype)
            for r in self.scales:
                gx, gy = self._roa(a, r)
                mag = torch.sqrt(gx * gx + gy * gy)
                theta = torch.remainder(torch.atan2(gy, gx), math.pi)  # unsigned orientation
                pos = theta / math.pi * self.num_bins - 0.5               # bin coordinate
                # circular linear soft-binning: weight 1 - distance to each bin centre
                d = (pos.unsqueeze(2) - centres.view(1, 1, -1, 1, 1)).abs()
                d = torch.minimum(d, self.num_bins - d)
                wts = (1.0 - d).clamp_min(0.0) * mag.unsqueeze(2)          # [B,C,K,H,W]
                cell = p // self.cells
                hist = F.avg_pool2d(wts.reshape(b, c * self.num_bins, gh * p, gw * p), cell)
                # [B, C*K, gh*cells, gw*cells] -> [B, gh, gw, C*K*cells*cells]
                hist = hist.reshape(b, c * self.num_bins, gh, self.cells, gw, self.cells)
                hist = hist.permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, -1)
                feats.append(hist)
            out = torch.cat(feats, dim=-1)
            if self.compress == "log":
                out = torch.log(out + 0.01)
            if self.standardize:
                out = self._standardize(out, batch)
            return out

    @staticmethod
    def _standardize(f: torch.Tensor, batch: Any) -> torch.Tensor:
        """Zero mean, unit variance per feature over the batch's valid tokens.

        Unlike a per-token layer norm this keeps how strong a patch's gradients are
        relative to the others (targets versus flat clutter).
        """
        valid = batch.get("valid") if isinstance(batch, dict) else None
        flat = f.reshape(-1, f.shape[-1])
        if valid is not None and valid.shape == f.shape[:2] and bool(valid.any()):
            flat = flat[valid.reshape(-1).to(torch.bool)]
        mean = flat.mean(0)
        std = flat.std(0, unbiased=False) if flat.shape[0] > 1 else torch.ones_like(mean)
        return (f - mean) / std.clamp_min(1e-6)

    def forward(self, batch: Any, keep: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(batch)
        if keep is not None:
            f = torch.gather(f, 1, keep.unsqueeze(-1).expand(-1, -1, f.shape[-1]))
        return f
