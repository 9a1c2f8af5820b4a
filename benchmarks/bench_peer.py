"""Peer benchmark: one I-JEPA training step in polyjepa against pyjepa 0.3.0 (CPU).

The same model in both libraries: ViT-S/16 at 224 px (width 384, depth 12, 6 heads),
predictor 192 wide and 6 deep, batch 16, 4 target blocks of scale 0.15-0.2, a context
block of 0.85-1.0, AdamW (decoupled weight decay, no decay on biases and norms),
gradient clipping at 1.0 and the EMA update of the target encoder. Both steps read the
same masks (drawn by polyjepa's ``MultiBlockMasker``), so both process the same context
and target token counts. fp32 and bf16 autocast steps of the two libraries are
interleaved in one run (warm-up, then rounds of all four cases, medians reported).

pyjepa's own ``IJEPATrainer.train_step`` cannot run this recipe: with several target
sets its predictor returns ``[K*B, ...]`` predictions while its targets are a list of K
``[B, ...]`` tensors, which its loss does not pair up. Its step is therefore written here
from its public pieces (``IJEPA``, ``JEPALoss``, ``EMA``, ``build_optimizer``) the way its
trainer does it; its own masker (``MultiBlockMaskCollator``) is timed beside ours.

``python benchmarks/bench_peer.py`` (the full size, a few minutes on 2 cores),
``--small`` (96 px, depth 4: a quick check), ``--profile`` (torch.profiler breakdown of
polyjepa's step instead of the comparison). The four cases (2 libraries x fp32/bf16) are
interleaved within each round, so ratios hold on a shared machine; absolute figures do
not. The benchmark keeps freed memory in the process (``polyjepa.cpualloc``), as
polyjepa's trainer does on CPU; the setting is process-wide, so pyjepa's steps get it too.

Before the speed work (2 threads, AMD EPYC with avx512_bf16, torch 2.14, full size, 66
context and 4 x 35 target tokens): polyjepa/pyjepa 0.979x fp32 and 0.994x bf16,
bf16/fp32 1.15x for both; the profile then: bf16 attention backward 22% of the step, the
optimizer 8-11% (small size), dtype casts 7.6% under bf16.

Now (one interleaved run, 1 thread on a shared 2-core machine, full size):

    library      fp32 /s   bf16 /s  bf16/fp32  masker ms
    polyjepa        2.10      3.95      1.88x       1.03
    pyjepa          2.02      2.94      1.46x       2.26
    polyjepa/pyjepa samples/s, fp32: 1.041x
    polyjepa/pyjepa samples/s, bf16: 1.341x

(``--small``, six runs on the shared machine: fp32 1.07-1.15x, bf16 1.39-1.66x of pyjepa.)

Alone on the quiet machine, 2 threads, full size (5 interleaved repeats):

    library      fp32 /s   bf16 /s  bf16/fp32  masker ms
    polyjepa        5.93      9.59      1.62x       0.80
    pyjepa          5.74      7.47      1.30x       1.32
    polyjepa/pyjepa samples/s, fp32: 1.034x
    polyjepa/pyjepa samples/s, bf16: 1.283x

This CPU has avx512_bf16 but no AMX tiles, so bf16 matrix products run about 2-2.4x
faster than fp32, not the ~9x of an AMX CPU; that bounds bf16/fp32 for the whole step.

What changed, and what each change bought (measured alone, interleaved):

- Attention under bf16 (``polyjepa.attention``): on CPU the flash-attention kernel is
  2.5-2.7x slower in bf16 than in fp32 for forward + backward (ViT-S encoder block 23 vs
  8.8 ms, predictor block 116 vs 44 ms), and the math kernel is no better in bf16 (66 ms).
  q/k/v layout does not matter (contiguous copies: same times). polyjepa's attention now
  computes softmax(q k^T) v from fp32 copies of q, k, v when a gradient flows (forward
  alone, as for the EMA target, stays bf16: as fast), and returns bf16. Attention fell
  from 24.5% to 7.7% of the small bf16 step; same weights and state-dict keys as timm's.
- Optimizer: the trainer's AdamW is the fused kernel (CPU from torch 2.4): 17 ms instead
  of 85 ms per step for the 24.4M parameters here (``foreach=True`` is slower on CPU, 109
  ms); the same weights to 1 ulp, deterministic. Optimizer share of the small step:
  11.6% -> 2.6% (bf16), 6.9% -> 1.6% (fp32). pyjepa keeps its default AdamW.
- Predictor: the context is still repeated per target set, because it is not the same
  computation otherwise (each set's context tokens attend to that set's mask tokens, so
  after the first block the copies differ; the "one pass" lower bound in ``--profile``
  is a different model). The step already runs the sets as one batched call (no loop).
  What is shared: the last block's context rows only serve as keys and values, so the
  last block now computes queries, attention output and MLP for the mask tokens alone
  (``attention.block_tail``): predictor forward + backward 1.10-1.16x faster in fp32 at
  full size, same predictions up to float rounding. Embedding the context once before
  repeating it (the other shared part) bought 0-3%, within noise: not done.
- Memory: glibc ``malloc`` served each step's large buffers (activations, gradients,
  autocast's bf16 weight copies) with fresh ``mmap`` calls, so every step page-faulted
  its working set in anew; the casts were slow because of it (a 384x1536 weight cast
  took 1.2 ms in the step against 0.06 ms alone). Raising glibc's mmap threshold and
  trim threshold (``polyjepa.cpualloc``, trainer on CPU) took the small bf16 step from
  38 to 58-66 samples/s and bf16/fp32 from 1.3-1.65x to 2.1-2.4x (``--small``).
- Casts: with the above, dtype casts are 4.0% of the full bf16 step: autocast's bf16
  copies of the weights (target and context encoder each forward, gradients back to
  fp32), inherent to mixed precision, and the fp32 q/k/v copies (0.7%). The float
  upcasts around the loss and the target layer norm (``[K*B, Nt, D]``) are not among
  the largest; left as they are (removing them changes numerics for no measurable gain).
- Gradient clipping: ``clip_grad_norm_(foreach=True)`` is no faster on CPU (9.8 vs
  9.4 ms); left at torch's default (foreach on CUDA). The EMA was already one
  ``_foreach_lerp_``.
- Data: ``ArrayDataset`` fetches a batch with one ``index_select`` per array
  (``__getitems__``), the same bytes as per-sample items + ``default_collate``; 3-20x
  faster for small samples (not part of this step: its batch is built once).

The full profile now (``--profile``, full size, 1 thread, share of profiled time):

    share of the step               fp32    bf16
    forward (target / context /     60.2%   57.3%  (target 36.1/34.7, context encoder
      predictor)                                    14.4/11.6, predictor 9.7/10.9)
    backward                        38.8%   41.2%
    optimizer / clip / EMA       0.4/0.2/0.2%   0.7/0.4/0.3%
    by op: matmul (addmm, mm)       79.4%   65.5%
           attention (SDPA f+b)      9.5%   17.3%
           dtype casts (to/copy)     2.3%    4.0%
           GELU / layer norm       2.9/1.0%   4.1/1.7%

What is left, and why:

- fp32 at 1.04x of pyjepa, not 1.25x: both libraries now run the same matmuls (80% of
  the fp32 step), and polyjepa may only drop work whose result is unused. The EMA
  target's forward over all 196 tokens is 36% of the step; in its last block only the
  target tokens' rows are needed (about 1.5% of the step), and gathering the context
  patches before the patch embedding would save about 0.7%: small, not done.
- bf16/fp32 below 2x at full size on this CPU: bf16 matmuls are 2.0-2.4x fp32
  (avx512_bf16, no AMX), and attention (17% of the bf16 step) runs in fp32 because
  the bf16 kernel is slower; GELU and layer norm gain little from bf16.
- A CPU with AMX (``amx_bf16``) makes bf16 matmuls several times faster and shifts every
  share above towards attention and element-wise work.
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
from polyjepa.cpualloc import keep_freed_memory
from polyjepa.trainer import build_optimizer as polyjepa_optimizer

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
    opt = polyjepa_optimizer(jepa, LR)
    for group in opt.param_groups:  # what the trainer's weight-decay schedule sets
        group["weight_decay"] = WD if group.get("apply_wd") else 0.0
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
    keep_freed_memory()  # what polyjepa's trainer does on CPU; process-wide, so for both
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
    # every (library, precision) case in each round, the order reversed every other
    # round, so a shared machine's load slows all four alike
    cases = [(name, precision, amp) for precision, amp in (("fp32", False), ("bf16", True))
             for name in libs]
    for name, _, amp in cases:
        for _ in range(size["warmup"]):
            libs[name](step, amp)
            step += 1
    for r in range(repeats):
        for name, precision, amp in (cases if r % 2 == 0 else cases[::-1]):
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
    keep_freed_memory()
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
