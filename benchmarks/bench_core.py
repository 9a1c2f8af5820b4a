"""Throughput of the generic JEPA on a 14x14 grid, against a plain PyTorch JEPA step.

Prints: training samples/s, achieved FLOP/s as a share of the measured matmul peak
(fp32 and bf16), peak memory, masker batches/s and its share of a step, the framework
overhead against a hand-written step of the same model, and the time `polyjepa plugins`
takes to answer.

The hand-written step uses the kernels the framework uses (polyjepa's attention, which
runs in fp32 on CPU under bf16, and the fused AdamW), so "vs plain" is the framework's
own cost: its wiring, gathers and masks. The framework's predictor skips the context
rows of its last block, which the hand-written one computes and discards.
"""

from __future__ import annotations

import copy
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch.utils.flop_counter import FlopCounterMode

import polyjepa as pj
from polyjepa.attention import Attention
from polyjepa.cpualloc import keep_freed_memory
from polyjepa.trainer import build_optimizer

BATCH, IMG, PATCH, DIM, DEPTH, HEADS = 32, 224, 16, 192, 4, 3
PRED_DIM, PRED_DEPTH = 96, 2
STEPS, WARMUP = 8, 3
torch.manual_seed(0)


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


class PlainJEPA(nn.Module):
    """The same model written directly in PyTorch, without polyjepa."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3 * PATCH * PATCH, DIM)
        self.blocks = nn.ModuleList(Block(DIM, HEADS, qkv_bias=True, norm_layer=nn.LayerNorm,
                                          attn_layer=Attention) for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM)
        self.p_in = nn.Linear(DIM, PRED_DIM)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, PRED_DIM))
        self.p_blocks = nn.ModuleList(Block(PRED_DIM, 4, qkv_bias=True,
                                            norm_layer=nn.LayerNorm, attn_layer=Attention)
                                      for _ in range(PRED_DEPTH))
        self.p_norm = nn.LayerNorm(PRED_DIM)
        self.p_out = nn.Linear(PRED_DIM, DIM)
        g = IMG // PATCH
        self.register_buffer("pos", pj.sincos_pos_embed((g, g), DIM))
        self.register_buffer("ppos", pj.sincos_pos_embed((g, g), PRED_DIM))

    def encode(self, x, keep=None):
        b = x.shape[0]
        g = IMG // PATCH
        t = x.reshape(b, 3, g, PATCH, g, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, -1)
        t = self.embed(t) + self.pos
        if keep is not None:
            t = torch.gather(t, 1, keep[..., None].expand(-1, -1, DIM))
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def predict(self, ctx, cidx, tidx):
        b = ctx.shape[0]
        pos = self.ppos.expand(b, -1, -1)
        x = self.p_in(ctx) + torch.gather(pos, 1, cidx[..., None].expand(-1, -1, PRED_DIM))
        m = self.mask_token + torch.gather(pos, 1, tidx[..., None].expand(-1, -1, PRED_DIM))
        h = torch.cat([x, m], 1)
        for blk in self.p_blocks:
            h = blk(h)
        return self.p_out(self.p_norm(h[:, ctx.shape[1]:]))


def plain_step(model, target, opt, x, masks):
    ctx = model.encode(x, masks.context)
    with torch.no_grad():
        full = F.layer_norm(target.encode(x).float(), (DIM,))
    k = len(masks.targets)
    tidx = torch.cat(masks.targets)
    tgt = torch.cat([torch.gather(full, 1, t[..., None].expand(-1, -1, DIM))
                     for t in masks.targets])
    pred = model.predict(ctx.repeat(k, 1, 1), masks.context.repeat(k, 1), tidx)
    loss = F.smooth_l1_loss(pred.float(), tgt)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        for pt, ps in zip(target.parameters(), model.parameters()):
            pt.lerp_(ps, 0.004)


def interleaved(fns, amp):
    """Median seconds per step of each function, their steps alternating (a shared
    machine slows both alike)."""
    times = [[] for _ in fns]
    for i in range(WARMUP + STEPS):
        order = list(enumerate(fns)) if i % 2 == 0 else list(enumerate(fns))[::-1]
        for k, fn in order:
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                fn(i)
            if i >= WARMUP:
                times[k].append(time.perf_counter() - t)
    return [statistics.median(v) for v in times]


def main() -> None:
    keep_freed_memory()  # what the trainer does on CPU; process-wide, so for both steps
    x = torch.randn(BATCH, 3, IMG, IMG)
    grid = (IMG // PATCH, IMG // PATCH)
    masker = pj.MultiBlockMasker()
    all_masks = [masker(grid, BATCH, torch.Generator().manual_seed(i)) for i in range(64)]

    t = time.perf_counter()
    n_mask = 200
    for i in range(n_mask):
        masker(grid, BATCH, torch.Generator().manual_seed(i))
    mask_s = (time.perf_counter() - t) / n_mask

    rows = []
    for precision, amp in (("fp32", False), ("bf16", True)):
        peak = matmul_peak(torch.bfloat16 if amp else torch.float32)
        torch.manual_seed(0)
        enc = pj.PatchEncoder(in_chans=3, patch_size=PATCH, embed_dim=DIM, depth=DEPTH,
                              num_heads=HEADS)
        pred = pj.TransformerPredictor(DIM, dim=PRED_DIM, depth=PRED_DEPTH, num_heads=4)
        jepa = pj.JEPA(enc, pred)
        opt = build_optimizer(jepa, 1e-4)
        batch = {"x": x}

        def fw_step(i, jepa=jepa, opt=opt, batch=batch):
            out = jepa(batch, all_masks[i % 64])
            out["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            jepa.update_target(0.996)

        with FlopCounterMode(display=False) as fc, torch.autocast("cpu", dtype=torch.bfloat16,
                                                                  enabled=amp):
            fw_step(0)
        flops = fc.get_total_flops()
        plain = PlainJEPA()
        target = copy.deepcopy(plain).requires_grad_(False)
        popt = torch.optim.AdamW(plain.parameters(), lr=1e-4, fused=True)
        def plain_fn(i, plain=plain, target=target, popt=popt):
            plain_step(plain, target, popt, x, all_masks[i % 64])

        fw, pl = interleaved([fw_step, plain_fn], amp)
        rows.append((precision, BATCH / fw, flops / fw / 1e9, flops / fw / peak * 100,
                     peak / 1e9, fw / pl, mask_s / fw * 100))

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "polyjepa", "plugins"], check=True,
                   capture_output=True)
    plugins_s = time.perf_counter() - t

    print(f"\ngeneric JEPA, {IMG}x{IMG} images, patch {PATCH} -> 14x14 grid, ViT width {DIM} "
          f"depth {DEPTH}, predictor {PRED_DIM}x{PRED_DEPTH}, batch {BATCH}, CPU threads "
          f"{torch.get_num_threads()}")
    print(f"{'precision':<10}{'samples/s':>11}{'GFLOP/s':>10}{'% of peak':>11}"
          f"{'peak GFLOP/s':>14}{'vs plain':>10}{'masker %':>10}")
    for r in rows:
        print(f"{r[0]:<10}{r[1]:>11.1f}{r[2]:>10.1f}{r[3]:>10.1f}%{r[4]:>14.0f}"
              f"{r[5]:>9.3f}x{r[6]:>9.2f}%")
    print(f"masker: {1 / mask_s:.0f} batches/s ({mask_s * 1e3:.2f} ms per batch of {BATCH})")
    print(f"peak memory (resident): {peak_rss:.0f} MiB")
    print(f"`polyjepa plugins` answered in {plugins_s:.2f} s")
    print("targets: framework overhead within 3% (vs plain <= 1.03x); masker under 2% of a step")


if __name__ == "__main__":
    main()
