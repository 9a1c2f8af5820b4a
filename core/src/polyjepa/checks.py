"""Checking components against the contract once, on the first batch of a run.

A plugin encoder, masker or dataset that breaks the contract would otherwise fail deep
inside torch (an index out of bounds, a reshape) naming neither the component nor its
plugin. These checks run once per run, before the first step, and raise a
:class:`~polyjepa.PluginError` (or a :class:`~polyjepa.ConfigError` where two settings
disagree) that names the component, the plugin that provides it and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .errors import ConfigError, PluginError, PolyjepaError


def _provider(kind: str, name: str | None) -> str:
    from .components import component_entry

    if not name:
        return f"{kind[:-1]} (unnamed)"
    try:
        return f"{kind[:-1]} {name!r} from plugin {component_entry(kind, name).provider!r}"
    except PolyjepaError:
        return f"{kind[:-1]} {name!r}"


def check_tokens(encoder: Any, batch: Any, config: dict[str, Any]) -> tuple[int, ...]:
    """The encoder's grid for ``batch`` after checking ``grid``, ``tokenize`` and the
    batch's ``valid`` mask agree: ``[B, prod(grid), embed_dim]`` tokens, ``[B, N]`` valid."""
    from .tokens import batch_valid

    who = _provider("encoders", (config.get("encoder") or {}).get("name"))
    grid = encoder.grid(batch)
    if (not isinstance(grid, (tuple, list)) or not grid
            or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)):
        raise PluginError(f"{who}: grid(batch) must return a tuple of positive ints, got "
                          f"{grid!r}")
    n = math.prod(grid)
    with torch.no_grad():
        tokens = encoder.tokenize(batch)
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise PluginError(f"{who}: tokenize(batch) must return [batch, tokens, embed_dim] "
                          f"tokens, got {shape}")
    b = tokens.shape[0]
    if tokens.shape[1] != n or tokens.shape[2] != encoder.embed_dim:
        raise PluginError(f"{who}: tokenize(batch) gave {tuple(tokens.shape)} but grid "
                          f"{tuple(grid)} and embed_dim {encoder.embed_dim} mean "
                          f"[{b}, {n}, {encoder.embed_dim}]")
    valid = batch_valid(batch)
    if valid is not None:
        data = _provider("datasets", (config.get("dataset") or {}).get("name"))
        if not isinstance(valid, torch.Tensor) or valid.shape[0] != b \
                or valid.numel() != b * n:
            shape = tuple(valid.shape) if isinstance(valid, torch.Tensor) else valid
            raise ConfigError(
                f"the {data} gives 'valid' masks of shape {shape}, but the {who} makes a "
                f"grid {tuple(grid)} of {n} tokens for {b} samples; a setting of one was "
                "changed without the other (a patch or window size?)")
    return tuple(grid)


def check_masks(masks: Any, n_tokens: int, batch_size: int, config: dict[str, Any]) -> None:
    """The masker's index sets must be ``[B, K]`` integer tensors inside the grid."""
    who = _provider("maskers", (config.get("masker") or {}).get("name"))
    sets = [("context", getattr(masks, "context", None))]
    sets += [(f"target {i}", t) for i, t in enumerate(getattr(masks, "targets", None) or [])]
    if len(sets) < 2:
        raise PluginError(f"{who} returned no target sets (Masks.targets is empty)")
    for what, idx in sets:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (
                torch.int64, torch.int32):
            shape = (f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor)
                     else type(idx).__name__)
            raise PluginError(f"{who}: the {what} indices must be a [batch, k] integer "
                              f"tensor, got {shape}")
        if idx.shape[0] != batch_size:
            raise PluginError(f"{who}: the {what} indices cover {idx.shape[0]} samples, the "
                              f"batch has {batch_size}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_tokens):
            raise PluginError(f"{who}: the {what} indices run from {int(idx.min())} to "
                              f"{int(idx.max())}, outside the grid of {n_tokens} tokens")
    context = sets[0][1]
    for what, idx in sets[1:]:
        shared = (idx.unsqueeze(-1) == context.unsqueeze(1)).any(dim=-1)
        if bool(shared.any()):
            row = int(shared.any(dim=1).nonzero()[0])
            raise PluginError(f"{who}: the {what} indices share tokens with the context "
                              f"(sample {row}); targets must be hidden from the context")
