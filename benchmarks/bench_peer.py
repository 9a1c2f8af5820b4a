"""Peer benchmark: one I-JEPA training step in polyjepa against pyjepa 0.3.0 (CPU).

The same model in both libraries: ViT-S/16 at 224 px (width 384, depth 12, 6 heads),
predictor 192 wide and 6 deep, batch 16, 4 target blocks of scale 0.15-0.2, a context
block of 0.85-1.0, AdamW (decoupled weight decay, no decay on biases and norms),
gradient clipping at 1.0 and the EMA update of the target encoder. Both steps read the
same masks (drawn by polyjepa's ``MultiBlockMasker``), so both process the same context
and target token counts. fp32 and bf16 autocast steps of the two libraries are
interleaved in one run (warm-up, then alternating repeats, medians reported).

pyjepa's own ``IJEPATrainer.train_step`` cannot run this recipe: with several target
sets its predictor returns ``[K*B, ...]`` predictions while its targets are a list of K
``[B, ...]`` tensors, which its loss does not pair up. Its step is therefore written here
from its public pieces (``IJEPA``, ``JEPALoss``, ``EMA``, ``build_optimizer``) the way its
trainer does it; its own masker (``MultiBlockMaskCollator``) is timed beside ours.

``python benchmarks/bench_peer.py`` (the full size, a few minutes on 2 cores),
``--small`` (96 px, depth 4: a quick check), ``--profile`` (torch.profiler breakdown of
polyjepa's step instead of the comparison).

Measured once on the development CPU (2 threads, OMP_NUM_THREADS=2, AMD EPYC with
avx512_bf16, torch 2.14), full size, 66 context and 4 x 35 target tokens:

    library      fp32 /s   bf16 /s  bf16/fp32  masker ms
    polyjepa        4.73      5.46      1.15x       1.21
    pyjepa          4.83      5.49      1.14x       1.91
    polyjepa/pyjepa samples/s, fp32: 0.979x
    polyjepa/pyjepa samples/s, bf16: 0.994x

Both run the same math (timm-style pre-norm blocks over SDPA, context repeated per
target set in the predictor), so the two steps are within 2-3% of each other; the masker
is under 0.1% of a step in both (polyjepa's draws a batch 1.6x faster).

Where polyjepa's step goes (``--small --profile``: 96 px, depth 4, predictor depth 2,
share of profiled CPU time; the full size has 5x the tokens, so compute shares grow and
the fixed per-parameter costs shrink):

    share of the step               fp32    bf16
    forward (target / context /     45.6%   33.4%  (target 22.8/15.8, context encoder
      predictor)                                    13.3/8.6, predictor 8.9/8.3)
    backward                        42.7%   52.3%
    optimizer (AdamW step)           8.0%   10.7%
    gradient clipping                1.9%    1.9%
    EMA update (foreach lerp)        1.0%    1.1%
    masker / collation               0.5 / 0.2%   0.5 / 0.1%
    by op: matmul (addmm, mm)       64.7%   37.3%
           attention (SDPA f+b)      5.0%   26.3%  (bf16 backward alone 22.4%)
           dtype casts (to/copy)     2.4%    7.6%  (largest: bf16 copies of the fp32
                                                    MLP/qkv weights, each forward)
           optimizer kernels         3.7%    5.9%  (per-parameter sqrt/div/mul_/lerp_)
           GELU / layer norm         3.9 / 1.5%   3.5 / 1.4%

- Attention: in fp32 SDPA is 5% of the step; under bf16 autocast CPU flash-attention's
  backward takes 22% and eats most of the bf16 matmul gain (bf16/fp32 only 1.15x).
- Predictor: fed ``n_sets`` copies of the context; its forward+backward measured alone
  takes 94 ms (fp32) against 40 ms for one pass over context + all targets (86 vs 49 ms
  in bf16), i.e. 15-20% of the small step; at full size it would do half the tokens.
- Float upcasts around the loss and the target layer norm are small: no cast of the
  ``[K*B, Nt, D]`` predictions/targets is among the largest; casts are weight casts.
- Optimizer: ``torch.optim.AdamW`` defaults to its single-tensor loop on CPU (8-11% of the
  small step, a few % at full size); clipping likewise loops per parameter.
- Data collation (``pj.collate``) and masking cost well under 1%.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn as nn

import polyjepa as pj

try:
    import pyjepa
    from pyjepa.optim import build_optimizer
except ImportError:  # the comparison needs pyjepa; polyjepa's own figures still print
    pyjepa = None

PATCH, DIM, HEADS, BATCH, PRED_DIM = 16, 384, 6, 16, 192
FULL = {"img": 224, "depth": 12, "pred_depth": 6, "warmup": 2, "repeats": 5}
SMALL = {"img": 96, "depth": 4, "pred_depth": 2, "warmup": 2, "repeats": 5}
N_SETS, LR, WD, CLIP, MOMENTUM = 4, 1e-4, 0.04, 1.0, 0.996


def polyjepa_model(size: dict[str, int]) -> tuple[Any, torch.optim.Optimizer]:
    """polyjepa through its public component registry, with the trainer's optimizer."""
    torch.manual_seed(0)
    enc = pj.create_encoder("vit", in_chans=3, patch_size=PATCH, embed_dim=DIM,
                            depth=size["depth"], num_heads=HEADS)
    pred = pj.create_predictor("transformer", embed_dim=DIM, dim=PRED_DIM,
                               depth=size["pred_depth"], num_heads=HEADS)
    jepa = pj.JEPA(enc, pred)
    decay, no_decay = [], []
    for name, p in jepa.named_parameters():
        if p.requires_grad:
            flat = p.ndim < 2 or name.endswith(".bias") or "token" in name or "pos" in name
            (no_decay if flat else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    return jepa, opt


def polyjepa_step(jepa: Any, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                  masks: Any, amp: bool) -> float:
    """The trainer's step: forward under autocast, backward, clip, AdamW, EMA."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = jepa(batch, masks)
    out["loss"].backward()
    nn.utils.clip_grad_norm_([p for p in jepa.parameters() if p.requires_grad], CLIP)
    opt.step()
    opt.zero_grad(set_to_none=True)
    jepa.update_target(MOMENTUM)
    return float(out["loss"].detach())


def pyjepa_model(size: dict[str, int]) -> tuple[Any, torch.optim.Optimizer, Any, Any]:
    """pyjepa's ViT, predictor, I-JEPA wrapper, optimizer factory, EMA and loss."""
    torch.manual_seed(0)
    norm = partial(nn.LayerNorm, eps=1e-6)
    enc = pyjepa.VisionTransformer(img_size=size["img"], patch_size=PATCH, embed_dim=DIM,
                                   depth=size["depth"], num_heads=HEADS, qkv_bias=True,
                                   norm_layer=norm)
    pred = pyjepa.VisionTransformerPredictor(
        img_size=size["img"], patch_size=PATCH, embed_dim=DIM, predictor_embed_dim=PRED_DIM,
        depth=size["pred_depth"], num_heads=HEADS, qkv_bias=True, norm_layer=norm)
    model = pyjepa.IJEPA(enc, pred)
    opt = build_optimizer([model.encoder, model.predictor], lr=LR, weight_decay=WD)
    ema = pyjepa.EMA(model.encoder, model.target_encoder, constant_momentum=MOMENTUM)
    return model, opt, ema, pyjepa.JEPALoss()


def pyjepa_step(model: Any, opt: torch.optim.Optimizer, ema: Any, loss_fn: Any,
                x: torch.Tensor, masks: Any, amp: bool) -> float:
    """``IJEPATrainer.train_step`` with the K predictions split to match the K targets."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        preds, targets = model(x, [masks.context], list(masks.targets))
        loss = loss_fn(list(preds.split(x.shape[0])), targets)["loss"]
    loss.backward()
    nn.utils.clip_grad_norm_(list(model.parameters()), CLIP)
    opt.step()
    ema.update()
    return float(loss.detach())


def per_call(fn: Callable[[int], Any], n: int) -> float:
    """Seconds per call of ``fn(i)``, after one untimed call."""
    fn(0)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n


def masker_times(img: int) -> dict[str, float]:
    """Seconds to draw one batch of masks with each library's I-JEPA masker."""
    grid = (img // PATCH, img // PATCH)
    masker = pj.create_masker("multiblock", num_targets=N_SETS)
    out = {"polyjepa": per_call(
        lambda i: masker(grid, BATCH, torch.Generator().manual_seed(i)), 50)}
    if pyjepa is not None:
        collator = pyjepa.MultiBlockMaskCollator(
            cfgs_mask=[{"spatial_scale": (0.15, 0.2), "num_blocks": N_SETS}],
            crop_size=img, patch_size=PATCH)
        out["pyjepa"] = per_call(lambda i: collator.mask_generators[0](BATCH), 50)
    return out


def compare(size: dict[str, int], repeats: int) -> None:
    """Interleaved fp32/bf16 steps of both libraries; medians and ratios."""
    img = size["img"]
    grid = (img // PATCH, img // PATCH)
    x = torch.randn(BATCH, 3, img, img, generator=torch.Generator().manual_seed(0))
    batch = {"x": x}
    masker = pj.create_masker("multiblock", num_targets=N_SETS)
    all_masks = [masker(grid, BATCH, torch.Generator().manual_seed(i)) for i in range(32)]
    libs: dict[str, Callable[[int, bool], float]] = {}
    jepa, opt = polyjepa_model(size)
    libs["polyjepa"] = lambda i, amp: polyjepa_step(jepa, opt, batch, all_masks[i % 32], amp)
    if pyjepa is not None:
        model, popt, ema, loss_fn = pyjepa_model(size)
        libs["pyjepa"] = lambda i, amp: pyjepa_step(model, popt, ema, loss_fn, x,
                                                    all_masks[i % 32], amp)
    else:
        print("pyjepa is not installed (pip install pyjepa==0.3.0): polyjepa alone")

    times: dict[tuple[str, str], list[float]] = {}
    step = 0
    for precision, amp in (("fp32", False), ("bf16", True)):
        for fn in libs.values():
            for _ in range(size["warmup"]):
                fn(step, amp)
                step += 1
        for r in range(repeats):
            order = list(libs) if r % 2 == 0 else list(reversed(libs))
            for name in order:
                t = time.perf_counter()
                libs[name](step, amp)
                times.setdefault((name, precision), []).append(time.perf_counter() - t)
            step += 1
    med = {k: statistics.median(v) for k, v in times.items()}
    masks_s = masker_times(img)

    m = all_masks[0]
    print(f"\nI-JEPA step, {img}x{img} px, patch {PATCH} -> {grid[0]}x{grid[1]} tokens, "
          f"ViT width {DIM} depth {size['depth']} heads {HEADS}, predictor {PRED_DIM}x"
          f"{size['pred_depth']}, batch {BATCH}, {N_SETS} target sets x {m.targets[0].shape[1]}"
          f" tokens, context {m.context.shape[1]} tokens (first batch), "
          f"{torch.get_num_threads()} CPU threads, {repeats} interleaved repeats (median)")
    print(f"{'library':<10}{'fp32 /s':>10}{'bf16 /s':>10}{'bf16/fp32':>11}{'masker ms':>11}")
    for name in libs:
        fp, bf = BATCH / med[(name, "fp32")], BATCH / med[(name, "bf16")]
        print(f"{name:<10}{fp:>10.2f}{bf:>10.2f}{bf / fp:>10.2f}x"
              f"{masks_s[name] * 1e3:>11.2f}")
    if "pyjepa" in libs:
        for precision in ("fp32", "bf16"):
            ratio = med[("pyjepa", precision)] / med[("polyjepa", precision)]
            print(f"polyjepa/pyjepa samples/s, {precision}: {ratio:.3f}x")
        own = pyjepa.MultiBlockMaskCollator(
            cfgs_mask=[{"spatial_scale": (0.15, 0.2), "num_blocks": N_SETS}],
            crop_size=img, patch_size=PATCH).mask_generators[0]
        enc_idx, pred_idx = own(BATCH)
        print(f"(pyjepa's own masker on this grid: context {enc_idx.shape[1]} tokens, one "
              f"target set of {pred_idx.shape[1]}; the steps above both use polyjepa's masks)")


def profile(size: dict[str, int], steps: int) -> None:
    """torch.profiler over polyjepa's step: step phases, op kinds, predictor and collation."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    img = size["img"]
    grid = (img // PATCH, img // PATCH)
    samples = [{"x": torch.randn(3, img, img)} for _ in range(BATCH)]
    batch = pj.collate(samples)
    masker = pj.create_masker("multiblock", num_targets=N_SETS)
    jepa, opt = polyjepa_model(size)
    params = [p for p in jepa.parameters() if p.requires_grad]

    def step(i: int, amp: bool) -> None:
        with record_function("phase: collate"):
            b = pj.collate(samples)
        with record_function("phase: masker"):
            masks = masker(grid, BATCH, torch.Generator().manual_seed(i))
        with record_function("phase: forward"), torch.autocast(
                "cpu", dtype=torch.bfloat16, enabled=amp):
            out = jepa(b, masks)
        with record_function("phase: backward"):
            out["loss"].backward()
        with record_function("phase: clip"):
            nn.utils.clip_grad_norm_(params, CLIP)
        with record_function("phase: optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)
        with record_function("phase: ema"):
            jepa.update_target(MOMENTUM)

    kinds = {
        "attention (sdpa fwd+bwd)": ("scaled_dot_product", "_flash_attention", "_efficient_att"),
        "matmul (linear fwd+bwd)": ("aten::addmm", "aten::mm", "aten::bmm"),
        "layer norm": ("layer_norm",),
        "gelu": ("gelu",),
        "dtype casts (to/copy)": ("aten::to", "aten::_to_copy", "aten::copy_"),
        "gather/cat/repeat": ("gather", "aten::cat", "aten::repeat", "aten::index",
                              "scatter"),
        "optimizer kernels": ("_foreach", "aten::lerp", "addcdiv", "addcmul", "aten::sqrt"),
    }
    for precision, amp in (("fp32", False), ("bf16", True)):
        for i in range(2):
            step(i, amp)
        # forward hooks mark the three networks' forward passes
        handles = []
        for part in ("encoder", "target", "predictor"):
            mod = getattr(jepa, part)
            ctx: list[Any] = []

            def pre(_m, _a, ctx=ctx, part=part):
                ctx.append(record_function(f"forward: {part}"))
                ctx[-1].__enter__()

            def post(_m, _a, _o, ctx=ctx):
                ctx.pop().__exit__(None, None, None)

            handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for i in range(steps):
                step(100 + i, amp)
        for h in handles:
            h.remove()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        print(f"\npolyjepa step, {precision}, {img} px, depth {size['depth']}, predictor "
              f"depth {size['pred_depth']}, batch {BATCH}: {total / steps / 1e3:.0f} ms/step "
              "under the profiler")
        for e in sorted(events, key=lambda e: -e.cpu_time_total):
            if e.key.startswith(("phase:", "forward:")):
                print(f"  {e.key:<28}{e.cpu_time_total / total * 100:>6.1f}%")
        for kind, names in kinds.items():
            t = sum(e.self_cpu_time_total for e in events
                    if any(n in e.key for n in names))
            print(f"  {kind:<28}{t / total * 100:>6.1f}% (self time)")
        casts = [e for e in prof.key_averages(group_by_input_shape=True)
                 if e.key in ("aten::copy_", "aten::_to_copy")]
        print("  largest casts/copies by input shape:")
        for e in sorted(casts, key=lambda e: -e.self_cpu_time_total)[:4]:
            print(f"    {e.key:<16}{str(e.input_shapes)[:60]:<62}"
                  f"{e.self_cpu_time_total / total * 100:>6.1f}%")
        print("  top ops by self time:")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]:
            print(f"    {e.key:<52}{e.self_cpu_time_total / total * 100:>6.1f}%")

    # the predictor repeats the context once per target set; one pass over
    # context + all targets is the lower bound a block-diagonal attention mask would reach
    masks = masker(grid, BATCH, torch.Generator().manual_seed(0))
    nc, nt = masks.context.shape[1], masks.targets[0].shape[1]
    pred = jepa.predictor
    for precision, amp in (("fp32", False), ("bf16", True)):
        def run(rows: int, n_ctx: int, n_tgt: int, amp: bool = amp) -> None:
            ctx = torch.randn(rows, n_ctx, DIM, requires_grad=True)
            cidx = torch.arange(n_ctx).expand(rows, -1)
            tidx = torch.arange(n_tgt).remainder(grid[0] * grid[1]).expand(rows, -1)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                out = pred(ctx, cidx, tidx, grid)
            out.float().sum().backward()

        repeated = per_call(lambda _i: run(N_SETS * BATCH, nc, nt), 3)
        single = per_call(lambda _i: run(BATCH, nc, N_SETS * nt), 3)
        print(f"predictor fwd+bwd, {precision}: context repeated per set {repeated * 1e3:.0f}"
              f" ms, one pass (lower bound) {single * 1e3:.0f} ms "
              f"({nc} context, {N_SETS}x{nt} target tokens)")
    print(f"collate of {BATCH} samples: {per_call(lambda _i: pj.collate(samples), 20) * 1e3:.2f}"
          f" ms; batch {tuple(batch['x'].shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="96 px, depth 4: a quick check")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per case")
    parser.add_argument("--profile", action="store_true",
                        help="profile polyjepa's step instead of comparing")
    args = parser.parse_args()
    size = SMALL if args.small else FULL
    if args.profile:
        profile(size, args.repeats or 3)
    else:
        compare(size, args.repeats or size["repeats"])


if __name__ == "__main__":
    main()
