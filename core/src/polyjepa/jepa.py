"""The JEPA: context encoder, predictor and target, wired into one loss.

Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture" (I-JEPA), CVPR 2023, https://arxiv.org/abs/2301.08243: the context encoder
sees the context tokens only, a narrow predictor predicts the target tokens' embeddings,
an EMA copy of the encoder gives the targets. The target may instead be SIGReg (LeJEPA,
https://arxiv.org/abs/2511.08544) or a fixed encoder (SAR-JEPA's gradient features).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import covariance_penalty, latent_loss, variance_hinge
from .maskers import Masks
from .sigreg import SIGReg
from .tokens import batch_valid, gather_tokens, pool_tokens

TARGET_KINDS = ("ema", "sigreg", "encoder")


class JEPA(nn.Module):
    """Predict the target representation of masked tokens from the visible context.

    ``target_kind``:

    - ``"ema"``: the target is an exponential moving average of the encoder (I-JEPA);
      call :meth:`update_target` after each optimiser step.
    - ``"sigreg"``: no teacher; targets come from the online encoder and SIGReg keeps
      the embeddings from collapsing (LeJEPA).
    - ``"encoder"``: a fixed target encoder (e.g. SAR-JEPA's gradient features).

    ``variance_weight > 0`` adds a variance hinge on the context embeddings (AD-L-JEPA),
    a further guard against collapse beside any of the three targets;
    ``covariance_weight > 0`` adds VICReg's covariance term against dimensional collapse.
    """

    def __init__(self, encoder: nn.Module, predictor: nn.Module, target_kind: str = "ema",
                 target_encoder: nn.Module | None = None, loss: str = "smooth_l1",
                 normalize_targets: bool = True, sigreg: dict[str, Any] | None = None,
                 variance_weight: float = 0.0, variance_target: float = 1.0,
                 covariance_weight: float = 0.0):
        super().__init__()
        if target_kind not in TARGET_KINDS:
            raise ValueError(f"target kind {target_kind!r}: choose one of {TARGET_KINDS}")
        self.encoder = encoder
        self.predictor = predictor
        self.target_kind = target_kind
        self.loss_name = loss
        self.normalize_targets = bool(normalize_targets)
        self.variance_weight = float(variance_weight)
        self.variance_target = float(variance_target)
        self.covariance_weight = float(covariance_weight)
        self.target: nn.Module | None = None
        if target_kind == "ema":
            self.target = copy.deepcopy(encoder)
        elif target_kind == "encoder":
            if target_encoder is None:
                raise ValueError("target kind 'encoder' needs a target encoder")
            self.target = target_encoder
        if self.target is not None:
            for p in self.target.parameters():
                p.requires_grad_(False)
        sig = dict(sigreg or {})
        self.sigreg_weight = float(sig.pop("weight", 0.05)) if target_kind == "sigreg" else 0.0
        self.sigreg = SIGReg(**sig) if target_kind == "sigreg" else None

    def export_encoder(self) -> nn.Module:
        """The encoder whose embeddings a user gets: the EMA target if there is one."""
        return self.target if self.target_kind == "ema" else self.encoder

    def _targets(self, batch: Any) -> torch.Tensor:
        # a TokenEncoder runs on the batch's valid tokens only (targets are valid tokens);
        # invalid positions come back as zeros, which neither the loss nor pooling reads
        if self.target_kind == "sigreg":
            full = self.encoder(batch)
        else:
            with torch.no_grad():
                self.target.eval()
                full = self.target(batch)
        return full

    def forward(self, batch: Any, masks: Masks,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        grid = tuple(self.encoder.grid(batch))
        context = self.encoder(batch, keep=masks.context)
        full = self._targets(batch)
        n_sets = len(masks.targets)
        target_idx = torch.cat(masks.targets, dim=0)
        tgt = torch.cat([gather_tokens(full, t) for t in masks.targets], dim=0)
        if self.normalize_targets:
            # per-token layer norm, so normalising the gathered targets alone is the same
            tgt = F.layer_norm(tgt.float(), tgt.shape[-1:])
        pred = self.predictor(context.repeat(n_sets, 1, 1), masks.context.repeat(n_sets, 1),
                              target_idx, grid)
        pred_loss = latent_loss(pred, tgt, self.loss_name)
        out = {"pred_loss": pred_loss}
        if self.sigreg is not None:
            reg = self.sigreg(pool_tokens(full, batch_valid(batch)), generator)
            out["sigreg"] = reg
            out["loss"] = (1.0 - self.sigreg_weight) * pred_loss + self.sigreg_weight * reg
        else:
            out["loss"] = pred_loss
        if self.variance_weight > 0 or self.covariance_weight > 0:
            valid = batch_valid(batch)
            kept = gather_tokens(valid, masks.context) if valid is not None else None
            if self.variance_weight > 0:
                var = variance_hinge(context, self.variance_target, kept)
                out["variance"] = var
                out["loss"] = out["loss"] + self.variance_weight * var
            if self.covariance_weight > 0:
                cov = covariance_penalty(context, kept)
                out["covariance"] = cov
                out["loss"] = out["loss"] + self.covariance_weight * cov
        return out

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step ``target = m * target + (1 - m) * encoder`` (no-op without EMA)."""
        if self.target_kind != "ema":
            return
        tgt = [p for p in self.target.parameters()]
        src = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_lerp_(tgt, src, 1.0 - momentum)
