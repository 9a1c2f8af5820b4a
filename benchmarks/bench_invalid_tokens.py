"""Invalid tokens cost nothing: a 12-lead ECG grid with 1 valid lead against 12 valid leads.

A single-lead recording read with ``leads='standard'`` becomes a 12-lead token grid whose
other 11 leads are invalid. The dense path runs the transformer on every token and only
masks invalid keys in attention; the sparse path (the default) gathers the valid tokens
first. Prints samples/s of a training step (context encoder + EMA target + predictor +
optimiser) and of ``embed`` (encoder forward and pooling), dense against sparse, then
the same training step eager against ``train.compile`` (torch.compile, dynamic shapes).

Measured once on the development CPU (1 thread, OMP_NUM_THREADS=1), ECG ViT width 192,
depth 4, 12 leads x 50 patches = 600 tokens, batch 8:

    valid leads what          dense /s  sparse /s  speed-up
    1           train step        17.7       96.3     5.44x
    1           embed             20.6      324.2    15.75x
    12          train step         6.4        7.4     1.16x
    12          embed             22.5       22.3     0.99x
    sparse, 1 lead vs 12 leads (train step): 13.07x the samples/s (dense: 2.77x)
    sparse, 1 lead vs 12 leads (embed): 14.53x the samples/s (dense: 0.91x)

With 12 valid leads both paths run the same code (the 1.16x is noise of a shared CPU).
With 1 valid lead the sparse path pays for the 50 valid tokens only: embedding is ~15x
faster and a training step ~5x (the context pass already ran on kept tokens only).

    train.compile, tiny ECG ViT (width 64, depth 2), 6 steps after 3 warm-up steps
    valid leads   eager /s  compiled /s  speed-up  warm-up s
    12                39.1         41.0     1.05x       12.3
    1                460.6        463.5     1.01x        2.4

On this CPU torch.compile does not pay (1.0-1.1x after 2-60 s of compiling; the valid
and kept token counts are data-dependent, so the graph breaks around them), hence
``train.compile = false`` by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch

import polyjepa as pj
from polyjepa.encoder import TokenEncoder

BATCH, LEADS, SAMPLES, PATCH = 8, 12, 1250, 25
DIM, DEPTH, HEADS, PRED_DIM, PRED_DEPTH = 192, 4, 6, 96, 2
STEPS, WARMUP = 4, 2
COMPILE_STEPS, COMPILE_WARMUP = 6, 3


def _encoder(dim: int = DIM, depth: int = DEPTH, heads: int = HEADS) -> Any:
    try:
        return pj.create_encoder("ecg.vit", num_leads=LEADS, patch_size=PATCH, embed_dim=dim,
                                 depth=depth, num_heads=heads)
    except pj.PluginError:
        raise SystemExit("bench_invalid_tokens needs the polyjepa-ecg plugin") from None


def _masker() -> Any:
    return pj.create_masker("ecg.time_blocks")


def _batch(valid_leads: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = SAMPLES // PATCH
    x = torch.randn(BATCH, LEADS, SAMPLES, generator=g)
    valid = torch.zeros(BATCH, LEADS, n, dtype=torch.bool)
    valid[:, :valid_leads] = True
    x[:, valid_leads:] = 0.0
    return {"x": x, "valid": valid.reshape(BATCH, LEADS * n)}


@contextmanager
def dense_path(on: bool):
    """Run encoders the old way (every token, invalid keys masked) while ``on``."""
    saved = TokenEncoder.encode_valid
    if on:
        TokenEncoder.encode_valid = lambda self, x, valid: self.encode_tokens(x, valid)
    try:
        yield
    finally:
        TokenEncoder.encode_valid = saved


def _per_second(fn: Callable[[int], None], steps: int, warmup: int) -> float:
    for i in range(warmup + steps):
        if i == warmup:
            t = time.perf_counter()
        fn(i)
    return BATCH * steps / (time.perf_counter() - t)


def _train_step_fn(batch: dict[str, torch.Tensor], compile_: bool = False,
                   dim: int = DIM, depth: int = DEPTH, heads: int = HEADS
                   ) -> Callable[[int], None]:
    torch.manual_seed(0)
    enc = _encoder(dim, depth, heads)
    pred = pj.TransformerPredictor(dim, dim=min(PRED_DIM, dim), depth=PRED_DEPTH,
                                   num_heads=2)
    jepa = pj.JEPA(enc, pred)
    if compile_:
        from polyjepa.trainer import compile_jepa

        compile_jepa(jepa)
    opt = torch.optim.AdamW([p for p in jepa.parameters() if p.requires_grad], lr=1e-4)
    masker = _masker()
    grid = enc.grid(batch)
    masks = [masker(grid, BATCH, torch.Generator().manual_seed(i), valid=batch["valid"])
             for i in range(8)]

    def step(i: int) -> None:
        out = jepa(batch, masks[i % len(masks)])
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        jepa.update_target(0.996)

    return step


def _embed_fn(batch: dict[str, torch.Tensor]) -> Callable[[int], None]:
    torch.manual_seed(0)
    enc = _encoder().eval()

    @torch.no_grad()
    def run(i: int) -> None:
        pj.pool_tokens(enc(batch).float(), batch["valid"])

    return run


def main() -> None:
    print(f"\n12-lead ECG grid ({LEADS} leads x {SAMPLES // PATCH} patches), ViT width {DIM} "
          f"depth {DEPTH}, batch {BATCH}, CPU threads {torch.get_num_threads()}")
    print(f"{'valid leads':<12}{'what':<12}{'dense /s':>10}{'sparse /s':>11}{'speed-up':>10}")
    rates: dict[tuple[int, str, bool], float] = {}
    for leads in (1, 12):
        batch = _batch(leads)
        for what, make, steps, warm in (("train step", _train_step_fn, STEPS, WARMUP),
                                        ("embed", _embed_fn, STEPS * 3, WARMUP)):
            for dense in (True, False):
                with dense_path(dense):
                    rates[leads, what, dense] = _per_second(make(batch), steps, warm)
            d, s = rates[leads, what, True], rates[leads, what, False]
            print(f"{leads:<12}{what:<12}{d:>10.1f}{s:>11.1f}{s / d:>9.2f}x")
    for what in ("train step", "embed"):
        print(f"sparse, 1 lead vs 12 leads ({what}): "
              f"{rates[1, what, False] / rates[12, what, False]:.2f}x the samples/s "
              f"(dense: {rates[1, what, True] / rates[12, what, True]:.2f}x)")

    # train.compile: a tiny ViT, a few steps after warm-up (the first calls compile)
    print(f"\ntrain.compile, tiny ECG ViT (width 64, depth 2), {COMPILE_STEPS} steps after "
          f"{COMPILE_WARMUP} warm-up steps")
    print(f"{'valid leads':<12}{'eager /s':>10}{'compiled /s':>13}{'speed-up':>10}"
          f"{'warm-up s':>11}")
    for leads in (12, 1):
        batch = _batch(leads)
        eager = _per_second(_train_step_fn(batch, False, 64, 2, 2), COMPILE_STEPS,
                            COMPILE_WARMUP)
        t = time.perf_counter()
        fn = _train_step_fn(batch, True, 64, 2, 2)
        for i in range(COMPILE_WARMUP):
            fn(i)
        warm = time.perf_counter() - t
        comp = _per_second(fn, COMPILE_STEPS, 0)
        print(f"{leads:<12}{eager:>10.1f}{comp:>13.1f}{comp / eager:>9.2f}x{warm:>11.1f}")


if __name__ == "__main__":
    main()
