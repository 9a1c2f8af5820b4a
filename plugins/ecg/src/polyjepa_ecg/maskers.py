"""Maskers on the ECG (lead, time) grid: time blocks across all leads, whole leads.

ECG-JEPA (Kim, "Learning General Representation of 12-Lead Electrocardiogram with a
Joint-Embedding Predictive Architecture", 2024, https://arxiv.org/abs/2410.08559) hides
the same time patches in every lead, since the leads record one heartbeat at once and a
patch visible in one lead would give its neighbours away. :class:`TimeBlockMasker` is
adapted from its multi-block masking; :class:`LeadMasker` hides whole leads instead, an
addition of this plugin. Both keep I-JEPA's scheme of one context and several target
sets predicted from it (Assran et al., "Self-Supervised Learning from Images with a
Joint-Embedding Predictive Architecture", CVPR 2023, https://arxiv.org/abs/2301.08243),
and use only valid tokens, so records lacking leads are masked among the leads they have.
"""

from __future__ import annotations

import torch

from polyjepa import Masks, choose, valid_rows


def _finish(targets: torch.Tensor, ok: torch.Tensor, num_targets: int,
            generator: torch.Generator) -> Masks:
    """Context = valid non-target tokens; equal counts by random subsampling."""
    targets = targets & ok
    context = ok & ~targets
    n_ctx = int(context.sum(dim=1).min())
    if n_ctx < 1:
        # some sample lost every valid token to the targets: give one back
        back = choose(targets, 1, generator)
        targets = targets.scatter(1, back, False)
        context = ok & ~targets
        n_ctx = int(context.sum(dim=1).min())
    n_tgt = int(targets.sum(dim=1).min())
    if n_tgt < num_targets:
        raise ValueError("a sample has too few valid tokens to mask (need at least "
                         f"{num_targets + 1})")
    per = n_tgt // num_targets
    # split each sample's targets into num_targets disjoint sets of equal size
    scores = torch.rand(targets.shape, generator=generator).masked_fill(~targets, 2.0)
    order = scores.argsort(dim=1)[:, : per * num_targets]
    sets = [order[:, k * per:(k + 1) * per].sort(dim=1).values for k in range(num_targets)]
    return Masks(choose(context, n_ctx, generator), sets)


class TimeBlockMasker:
    """Contiguous time blocks masked across all leads.

    Adapted from ECG-JEPA's multi-block masking (arXiv:2410.08559), which draws one set of
    blocks for the whole batch; here ``num_blocks`` blocks per sample, each ``block_scale`` of the time axis long, drawn
    with independent positions per sample; their union (``target_ratio`` is reached by
    the block sizes) is the target, split into ``num_targets`` equal sets. Only valid
    tokens are used.
    """

    def __init__(self, num_blocks: int = 2, block_scale: tuple[float, float] = (0.15, 0.25),
                 num_targets: int = 1):
        if num_blocks < 1 or num_targets < 1:
            raise ValueError("num_blocks and num_targets must be at least 1")
        lo, hi = block_scale
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"block_scale must satisfy 0 < low <= high < 1, got {block_scale}")
        self.num_blocks, self.num_targets = int(num_blocks), int(num_targets)
        self.block_scale = (float(lo), float(hi))

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        leads, n = (int(g) for g in grid)
        ok = valid_rows(valid, batch_size, leads * n)
        lo, hi = self.block_scale
        s = lo + float(torch.rand(1, generator=generator)) * (hi - lo)
        width = max(1, min(n - 1, round(s * n)))
        start = (torch.rand(batch_size, self.num_blocks, generator=generator)
                 * (n - width + 1)).long()
        t = torch.arange(n).view(1, 1, n)
        in_time = ((t >= start[..., None]) & (t < (start + width)[..., None])).any(dim=1)
        if bool(in_time.all(dim=1).any()):
            in_time[:, -1] = False  # blocks never cover the whole recording
        targets = in_time[:, None, :].expand(batch_size, leads, n).reshape(batch_size, -1)
        return _finish(targets, ok, self.num_targets, generator)


class LeadMasker:
    """Whole leads as targets, among valid leads only.

    ECG-JEPA (arXiv:2410.08559) masks time alone; hiding whole leads asks the encoder to
    infer a lead from the others (the leads are projections of one cardiac dipole).

    Each sample hides the same number of leads, ``lead_ratio`` of the fewest valid leads
    in the batch (at least one, never all), chosen among its own valid leads, and
    optionally a time block of ``time_scale`` on the remaining leads as well. Batches
    with a single valid lead get :class:`TimeBlockMasker` masks (``num_blocks``,
    ``block_scale``) instead.
    """

    def __init__(self, lead_ratio: float = 0.5, num_targets: int = 1,
                 time_scale: float = 0.0, num_blocks: int = 1,
                 block_scale: tuple[float, float] = (0.3, 0.5)):
        if not 0.0 < lead_ratio < 1.0:
            raise ValueError(f"lead_ratio must be in (0, 1), got {lead_ratio}")
        self.lead_ratio, self.num_targets = float(lead_ratio), int(num_targets)
        self.time_scale = float(time_scale)
        # samples with a single valid lead fall back to time blocks of this shape
        self.fallback = TimeBlockMasker(num_blocks, tuple(block_scale), self.num_targets)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        leads, n = (int(g) for g in grid)
        ok = valid_rows(valid, batch_size, leads * n)
        lead_ok = ok.view(batch_size, leads, n).any(dim=2)  # [B, L]
        counts = lead_ok.sum(dim=1)
        if leads < 2 or bool((counts < 2).any()):
            # a single (valid) lead: fall back to a time block on it
            return self.fallback(grid, batch_size, generator, valid)
        # the same number of hidden leads in every sample keeps whole leads whole
        low = int(counts.min())
        k = max(1, min(low - 1, round(low * self.lead_ratio)))
        scores = torch.rand(batch_size, leads, generator=generator).masked_fill(~lead_ok, 2.0)
        rank = scores.argsort(dim=1).argsort(dim=1)
        hidden = rank < k  # [B, L]
        targets = hidden[:, :, None].expand(batch_size, leads, n).clone()
        if self.time_scale > 0:
            width = max(1, min(n - 1, round(self.time_scale * n)))
            start = (torch.rand(batch_size, generator=generator) * (n - width + 1)).long()
            t = torch.arange(n).view(1, n)
            block = (t >= start[:, None]) & (t < (start + width)[:, None])
            targets |= block[:, None, :]
        return _finish(targets.reshape(batch_size, -1), ok, self.num_targets, generator)
