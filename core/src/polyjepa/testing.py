"""Contract checks for plugin authors: call them from your plugin's tests.

Each ``check_*`` builds a component through the registry (so registration is tested
too), exercises it on a batch you provide, and raises ``AssertionError`` with a message
that says which part of the contract failed. They return what they built, for further
checks of your own.

    from polyjepa import testing

    def test_encoder():
        testing.check_encoder("audio.vit", make_batch(), in_chans=1)
"""

from __future__ import annotations

__all__ = ["check_masks", "check_masker", "check_encoder", "check_token_scale",
           "check_predictor",
           "check_dataset", "check_same_samples", "check_evaluator", "check_recipe",
           "tiny_train",
           "shared_data", "shared_data_or_skip"]

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .components import (
    create_dataset,
    create_encoder,
    create_evaluator,
    create_masker,
    create_predictor,
    get_recipe,
    list_recipes,
)
from .config import component_args
from .data import collate
from .evaluators import EvalContext
from .maskers import Masks
from .posembed import grid_size

SHARED_DATA_ENV = "POLYJEPA_SHARED_DATA"


def shared_data(*parts: str) -> Path | None:
    """A path inside the folder of real test files, or ``None`` where it is absent.

    The folder is ``$POLYJEPA_SHARED_DATA``, else the first ``shared/data`` beside the
    current directory or one of its parents (a checkout with ``../shared`` next to it).
    Tests and benchmarks use it for real files too large to ship; tests that need them
    skip without them (:func:`shared_data_or_skip`)."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        root = Path(env)
    else:
        here = Path.cwd().resolve()
        root = next((p / "shared" / "data" for p in (here, *here.parents)
                     if (p / "shared" / "data").is_dir()), here / "shared" / "data")
    path = root.joinpath(*parts)
    return path if path.exists() else None


def shared_data_or_skip(*parts: str) -> Path:
    """:func:`shared_data`, skipping the calling test when the files are absent."""
    import pytest

    path = shared_data(*parts)
    if path is None:
        pytest.skip(f"shared test data {'/'.join(parts)} not found (set {SHARED_DATA_ENV})")
    return path


def _fail(what: str, msg: str) -> AssertionError:
    return AssertionError(f"{what}: {msg}")


def check_masks(masks: Masks, grid: tuple[int, ...], batch_size: int,
                valid: torch.Tensor | None = None, what: str = "masker") -> None:
    """Index tensors are long ``[B, N]``, inside the grid, unique, disjoint, on valid tokens."""
    n = grid_size(grid)
    if not isinstance(masks, Masks):
        raise _fail(what, f"returned {type(masks).__name__}, expected polyjepa.Masks")
    if not masks.targets:
        raise _fail(what, "returned no target sets")
    sets = [("context", masks.context)] + [(f"target {i}", t) for i, t in enumerate(masks.targets)]
    for name, idx in sets:
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.dim() != 2:
            raise _fail(what, f"{name} must be a long tensor [B, N], got "
                              f"{getattr(idx, 'dtype', type(idx))} {tuple(getattr(idx, 'shape', ()))}")
        if idx.shape[0] != batch_size or idx.shape[1] < 1:
            raise _fail(what, f"{name} has shape {tuple(idx.shape)} for batch size {batch_size}")
        if int(idx.min()) < 0 or int(idx.max()) >= n:
            raise _fail(what, f"{name} indices outside the grid of {n} tokens")
        if (idx.sort(dim=1).values.diff(dim=1) == 0).any():
            raise _fail(what, f"{name} repeats a token within a sample")
        if valid is not None:
            ok = torch.gather(valid.bool().reshape(batch_size, -1), 1, idx)
            if not bool(ok.all()):
                raise _fail(what, f"{name} selects invalid (padding) tokens")
    ctx = torch.zeros(batch_size, n, dtype=torch.bool).scatter(1, masks.context, True)
    for i, t in enumerate(masks.targets):
        if bool(torch.gather(ctx, 1, t).any()):
            raise _fail(what, f"target {i} overlaps the context")


def check_masker(name: str, grid: tuple[int, ...], batch_size: int = 4,
                 valid: torch.Tensor | None = None, **kwargs: Any) -> Any:
    """The masker honours :func:`check_masks` and is reproducible from its generator."""
    masker = create_masker(name, **kwargs)
    a = masker(grid, batch_size, torch.Generator().manual_seed(0), valid=valid)
    check_masks(a, grid, batch_size, valid, what=f"masker {name!r}")
    b = masker(grid, batch_size, torch.Generator().manual_seed(0), valid=valid)
    same = torch.equal(a.context, b.context) and all(
        torch.equal(x, y) for x, y in zip(a.targets, b.targets))
    if not same:
        raise _fail(f"masker {name!r}", "two calls with equally seeded generators differ")
    return masker


def check_encoder(name: str, batch: dict[str, Any], **kwargs: Any) -> Any:
    """Shapes, dtype, kept-token forward, finiteness and seeded determinism of an encoder."""
    what = f"encoder {name!r}"
    torch.manual_seed(0)
    enc = create_encoder(name, **kwargs).eval()
    torch.manual_seed(0)
    enc2 = create_encoder(name, **kwargs).eval()
    for (ka, va), (_, vb) in zip(enc.state_dict().items(), enc2.state_dict().items()):
        if not torch.equal(va, vb):
            raise _fail(what, f"initialisation is not determined by the torch seed ({ka})")
    grid = tuple(enc.grid(batch))
    if not grid or not all(isinstance(g, int) and g > 0 for g in grid):
        raise _fail(what, f"grid() must return positive ints, got {grid}")
    n = math.prod(grid)
    b = _batch_size(batch)
    with torch.no_grad():
        full = enc(batch)
        if tuple(full.shape) != (b, n, enc.embed_dim):
            raise _fail(what, f"forward(batch) gave {tuple(full.shape)}, expected "
                              f"{(b, n, enc.embed_dim)} for grid {grid}")
        if not full.is_floating_point() or not bool(torch.isfinite(full).all()):
            raise _fail(what, "forward(batch) gave non-finite or non-float output")
        masks = create_masker("random", target_ratio=0.5)(
            grid, b, torch.Generator().manual_seed(0), valid=batch.get("valid"))
        kept = enc(batch, keep=masks.context)
        if tuple(kept.shape) != (b, masks.context.shape[1], enc.embed_dim):
            raise _fail(what, f"forward(batch, keep) gave {tuple(kept.shape)}, expected "
                              f"{(b, masks.context.shape[1], enc.embed_dim)}")
        again = enc(batch)
        if not torch.equal(full, again):
            raise _fail(what, "two forward passes in eval mode differ")
    return enc


def check_token_scale(name: str | torch.nn.Module, batch: dict[str, Any],
                      min_ratio: float = 0.25, **kwargs: Any) -> float:
    """An untrained encoder's tokens must vary with the sample, not only with position.

    Content is the spread of a token across the batch's samples at a fixed position,
    position the spread of the per-position mean tokens across the grid (valid tokens
    only, averaged over dimensions). If content is far below position, an untrained
    encoder outputs mostly where a token is, and short pre-training runs cannot make up
    for it (see :func:`polyjepa.init_token_embedding`). ``name`` is a registered
    encoder (built with ``kwargs``) or an encoder instance. Returns the ratio.
    """
    what = f"encoder {name!r}" if isinstance(name, str) else type(name).__name__
    torch.manual_seed(0)
    enc = (create_encoder(name, **kwargs) if isinstance(name, str) else name).eval()
    with torch.no_grad():
        tok = enc.tokenize(batch).float()
    if tok.shape[0] < 2:
        raise _fail(what, "check_token_scale needs a batch of at least 2 samples")
    valid = batch.get("valid")
    w = (torch.ones(tok.shape[:2]) if valid is None
         else valid.reshape(tok.shape[0], -1).float()).unsqueeze(-1)
    n = w.sum(0).clamp(min=1)
    mean = (tok * w).sum(0) / n
    content = (((tok - mean) ** 2 * w).sum(0) / n).sqrt()
    seen = w.sum(0).squeeze(-1) >= 2
    if not bool(seen.any()):
        raise _fail(what, "no position is valid in two samples of the batch")
    ratio = float(content[seen].mean() / mean[seen].std(dim=0).mean().clamp(min=1e-12))
    if ratio < min_ratio:
        raise _fail(what, f"untrained tokens vary {1 / ratio:.1f}x more with position than "
                          f"with the sample (content/position {ratio:.3f} < {min_ratio}); "
                          "initialise the content embedding with "
                          "polyjepa.init_token_embedding")
    return ratio


def check_predictor(name: str, embed_dim: int = 32, grid: tuple[int, ...] = (4, 4),
                    batch_size: int = 2, **kwargs: Any) -> Any:
    """A predictor maps context tokens to ``[B, N_target, out_dim]`` finite predictions."""
    what = f"predictor {name!r}"
    pred = create_predictor(name, embed_dim=embed_dim, out_dim=embed_dim, **kwargs).eval()
    masks = create_masker("random", target_ratio=0.5)(
        grid, batch_size, torch.Generator().manual_seed(0))
    ctx = torch.randn(batch_size, masks.context.shape[1], embed_dim)
    with torch.no_grad():
        out = pred(ctx, masks.context, masks.targets[0], grid)
    expected = (batch_size, masks.targets[0].shape[1], embed_dim)
    if tuple(out.shape) != expected or not bool(torch.isfinite(out).all()):
        raise _fail(what, f"gave {tuple(out.shape)} (expected {expected}) or non-finite values")
    return pred


def check_dataset(name: str, data: Any = None, min_items: int = 1, **kwargs: Any) -> Any:
    """Items are dicts with a float tensor ``x`` and collate into a batch."""
    what = f"dataset {name!r}"
    ds = create_dataset(name, data, **kwargs)
    if len(ds) < min_items:
        raise _fail(what, f"has {len(ds)} items, expected at least {min_items}")
    items = [ds[i] for i in range(min(len(ds), 2))]
    for item in items:
        if not isinstance(item, dict) or "x" not in item:
            raise _fail(what, f"items must be dicts with 'x', got {type(item).__name__}")
        x = item["x"]
        if isinstance(x, torch.Tensor) and x.is_floating_point() and \
                not bool(torch.isfinite(x).all()):
            raise _fail(what, "item 'x' holds NaN or infinite values")
        if "valid" in item and item["valid"].dtype != torch.bool:
            raise _fail(what, "'valid' must be a bool tensor")
    collate(items)
    hints = getattr(ds, "encoder_hints", {}) or {}
    if not isinstance(hints, dict):
        raise _fail(what, "encoder_hints must be a dict")
    return ds


def check_same_samples(a: Any, b: Any) -> None:
    """Two datasets hold the same items, byte for byte: the same length, and for every
    index the same keys and tensors of the same dtype and values. For a reader with two
    paths to one result (streamed and whole, sharded and original)."""
    if len(a) != len(b):
        raise _fail("datasets", f"{len(a)} items against {len(b)}")
    for i in range(len(a)):
        x, y = a[i], b[i]
        if set(x) != set(y):
            raise _fail(f"item {i}", f"keys {sorted(x)} against {sorted(y)}")
        for k in x:
            if x[k].dtype != y[k].dtype or not torch.equal(x[k], y[k]):
                raise _fail(f"item {i}", f"{k!r} differs ({x[k].dtype} vs {y[k].dtype})")


def check_evaluator(name: str, embeddings: np.ndarray | None = None,
                    labels: np.ndarray | None = None, *, groups: np.ndarray | None = None,
                    encoder: Any = None, dataset: Any = None,
                    extra: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """An evaluator returns a non-empty dict of finite floats.

    ``groups``, ``encoder``, ``dataset`` and ``extra`` fill the :class:`EvalContext` for
    evaluators that need more than embeddings (ranking over a catalogue, per-token probes);
    ``kwargs`` go to the evaluator's factory.
    """
    what = f"evaluator {name!r}"
    rng = np.random.default_rng(0)
    if embeddings is None:
        embeddings = rng.normal(size=(80, 16))
        if labels is None:
            labels = (embeddings[:, 0] > 0).astype(np.int64)
    ev = create_evaluator(name, **kwargs)
    out = ev(EvalContext(np.asarray(embeddings), labels, groups, encoder, dataset, seed=0,
                         extra=dict(extra or {})))
    if not isinstance(out, dict) or not out:
        raise _fail(what, f"returned {out!r}, expected a non-empty dict of floats")
    for k, v in out.items():
        if not isinstance(k, str) or not math.isfinite(float(v)):
            raise _fail(what, f"metric {k!r} = {v!r} is not a finite float")
    return out


def check_recipe(name: str) -> dict[str, Any]:
    """A recipe names registered components and a demo labelled real or simulated."""
    what = f"recipe {name!r}"
    if name not in list_recipes():
        raise _fail(what, "is not registered")
    cfg = get_recipe(name)
    from .components import component_entry

    for section, kind in (("dataset", "datasets"), ("encoder", "encoders"),
                          ("masker", "maskers"), ("predictor", "predictors")):
        comp, _ = component_args(cfg[section])
        component_entry(kind, comp)  # raises with suggestions when unknown
    for ev in cfg.get("evaluators") or []:
        component_entry("evaluators", ev if isinstance(ev, str) else ev["name"])
    demo = cfg.get("demo") or {}
    if demo and demo.get("kind") not in ("real", "simulated"):
        raise _fail(what, "demo.kind must be 'real' or 'simulated'")
    return cfg


def _batch_size(batch: Any) -> int:
    x = batch["x"] if isinstance(batch, dict) else batch
    if isinstance(x, torch.Tensor):
        return int(x.shape[0])
    return len(x)


def tiny_train(recipe: str, data: Any, out: Any, steps: int = 3,
               overrides: dict[str, Any] | None = None) -> Any:
    """A few CPU training steps of a recipe (fp32): for plugin end-to-end tests."""
    from .api import pretrain

    ov = {"train.steps": steps, "train.batch_size": 4, "train.warmup_steps": 1,
          "train.log_every": 1, "train.rankme_every": steps, "train.checkpoint_every": steps,
          "train.precision": "fp32", "train.device": "cpu", **(overrides or {})}
    return pretrain(recipe, data=data, out=out, overrides=ov, progress=False)
