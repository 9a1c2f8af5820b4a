"""Throughput where the per-step and per-sample costs of the framework show: a small
tabular model trained by polyjepa's trainer against a plain PyTorch loop, data loading
included, and ``embed`` on 100k table rows and on ECG windows.

- Tabular training: the ``tabular`` recipe's model (64 wide, 2 deep, predictor 32x2,
  batch 128, fp32) on generated rows (16 numeric and 4 categorical columns), once
  through ``pj.pretrain`` (the trainer: sharded sampler, batched fetch, masks, schedules,
  clipping, EMA, loss read-back) and once as a plain loop a user would write (a
  ``DataLoader`` over the same tensors with shuffling, the same masker, model, fused
  AdamW, clipping and EMA). Runs alternate; the figure is the median step time over the
  steady steps of all runs (the trainer's set-up, first step and final export excluded).
  Target: the trainer at >= 0.9x the plain loop's samples/s.
- ``embed``: samples/s of ``pj.embed`` end to end (reading the data, loading the
  encoder, embedding) and of the embedding loop alone, for 100k generated table rows and
  for the ECG windows of ``$POLYJEPA_SHARED_DATA/ecg/mitdb-pvc`` (or, without it, of
  WFDB records generated with wfdb in a temporary folder), untrained encoders of each
  recipe's size.
- Streamed tables (``stream=True``: rows read from an on-disk cache with ``pread``): rows/s
  of the batched fetch (one read per run of consecutive rows of each cache file) against
  one row per index + collate, for random and in-order batches of 256 of 100k rows.

``python benchmarks/bench_throughput.py`` (about two minutes on 2 cores), ``--quick``
(fewer steps and rows).

Alone on a quiet 2-core machine (2 threads): the trainer at 4,696 samples/s against
4,661 for the plain loop (1.008x); ``embed`` 21,543 table rows/s end to end (25,254/s
for the loop alone; tables fetch whole batches), ECG 10-s 12-lead windows 180/s. Streamed
table fetch: 208,809 rows/s batched against 79,956 row by row for random batches (2.6x),
1,889,735 against 86,778 in order (21.8x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import polyjepa as pj
from polyjepa.api import embed_dataset
from polyjepa.build import build_dataset, build_jepa, build_masker, resolve_components
from polyjepa.cpualloc import keep_freed_memory

BATCH = 128
TABULAR = {"train.batch_size": BATCH, "train.precision": "fp32", "train.device": "cpu",
           "train.rankme_every": 0, "train.log_every": 10**9,
           "train.checkpoint_every": 10**9, "train.warmup_steps": 5,
           "evaluators": ["rankme"]}


def table(n: int, seed: int = 0) -> Any:
    """``n`` generated rows: 16 numeric columns (a few missing), 4 categorical, a label."""
    import pandas as pd

    g = np.random.default_rng(seed)
    z = g.normal(size=(n, 4))
    cols: dict[str, Any] = {}
    for j in range(16):
        v = z @ g.normal(size=4) + 0.3 * g.normal(size=n)
        v[g.random(n) < 0.02] = np.nan
        cols[f"num{j}"] = v
    for j in range(4):
        cols[f"cat{j}"] = np.array(list("abcdefgh"))[(z[:, j] > g.normal(size=(n, 1)))
                                                     .sum(1) % 8]
    cols["label"] = (z[:, 0] + z[:, 1] > 0).astype(int)
    return pd.DataFrame(cols)


def trainer_steps(df: Any, steps: int, out: Path) -> list[float]:
    """Seconds of each steady training step of ``pj.pretrain`` (data loading included)."""
    stamps: list[float] = []
    pj.pretrain("tabular", data=df, out=out, progress=False,
                overrides={**TABULAR, "train.steps": steps, "dataset.target": "label"},
                callbacks=[lambda step, row: stamps.append(time.perf_counter())])
    gaps = np.diff(stamps)
    return list(gaps[3:-1])  # past warm-up; the last step also exports


def plain_steps(df: Any, steps: int) -> list[float]:
    """Seconds of each step of a hand-written loop over the same model and tensors."""
    cfg = pj.resolve_config("tabular", data=df, overrides={**TABULAR, "train.steps": steps,
                                                           "dataset.target": "label"})
    torch.manual_seed(0)
    ds = build_dataset(cfg)
    resolved = resolve_components(cfg, ds)
    jepa, masker = build_jepa(resolved), build_masker(resolved)
    params = [p for p in jepa.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True)
    loader = DataLoader(TensorDataset(ds.x, ds.missing), batch_size=BATCH, shuffle=True,
                        drop_last=True)
    times, it, gen = [], iter(loader), torch.Generator().manual_seed(0)
    for _ in range(steps):
        t = time.perf_counter()
        try:
            x, missing = next(it)
        except StopIteration:
            it = iter(loader)
            x, missing = next(it)
        batch = {"x": x, "missing": missing}
        masks = masker(jepa.encoder.grid(batch), BATCH, gen)
        out = jepa(batch, masks)
        out["loss"].backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        jepa.update_target(0.996)
        float(out["loss"].detach())
        times.append(time.perf_counter() - t)
    return times[3:]


def tabular_compare(rows: int, steps: int, rounds: int, tmp: Path) -> None:
    df = table(rows)
    got: dict[str, list[float]] = {"polyjepa trainer": [], "plain loop": []}
    for r in range(rounds):
        order = ["polyjepa trainer", "plain loop"][:: 1 if r % 2 == 0 else -1]
        for name in order:
            if name == "plain loop":
                got[name] += plain_steps(df, steps)
            else:
                got[name] += trainer_steps(df, steps, tmp / f"tab{r}")
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"\ntabular training: {rows} rows x 20 features, encoder 64x2, predictor 32x2, "
          f"batch {BATCH}, fp32, {torch.get_num_threads()} CPU threads, {rounds} alternating "
          f"runs of {steps} steps (median step)")
    for name, s in med.items():
        print(f"  {name:<18}{BATCH / s:>9.0f} samples/s  {s * 1e3:>7.2f} ms/step")
    ratio = med["plain loop"] / med["polyjepa trainer"]
    print(f"  trainer / plain loop samples/s: {ratio:.3f}x (target >= 0.9x)")


def embed_rate(recipe: str, data: Any, out: Path, overrides: dict[str, Any],
               label: str) -> None:
    """samples/s of ``pj.embed`` end to end and of its embedding loop alone."""
    run = pj.pretrain(recipe, data=data, out=out, progress=False, steps=0,
                      overrides={"train.device": "cpu", "evaluators": ["rankme"],
                                 **overrides})
    t = time.perf_counter()
    emb = pj.embed(run, data=data)
    whole = time.perf_counter() - t
    encoder = pj.load_encoder(run)
    ds = build_dataset(run.config, data, state=run.config.get("dataset_state") or None)
    bs = int(run.config["train"].get("eval_batch_size", 256))
    embed_dataset(encoder, torch.utils.data.Subset(ds, range(min(len(ds), bs))), bs)
    t = time.perf_counter()
    embed_dataset(encoder, ds, bs)
    loop = time.perf_counter() - t
    n = emb.shape[0]
    print(f"  {label:<40}{n:>8} samples {n / whole:>10.0f}/s end to end "
          f"{n / loop:>10.0f}/s embedding loop (batch {bs}, dim {emb.shape[1]})")


def streamed_fetch(df: Any, tmp: Path, batches: int = 200, batch: int = 256) -> None:
    """rows/s of a streamed table's batched fetch against one row per index + collate."""
    path = tmp / "stream.parquet"
    df.to_parquet(path, index=False)
    ds = pj.create_dataset("tabular.table", str(path), stream=True, target="label",
                           cache_dir=str(tmp / "table-cache"))
    g = np.random.default_rng(0)
    draws = {"random": [g.integers(0, len(ds), batch).tolist() for _ in range(batches)],
             "in order": [list(range(s, s + batch))
                          for s in range(0, min(len(ds), batches * batch) - batch + 1, batch)]}
    for name, idx in draws.items():
        rates = {}
        for how, fetch in (("batched", lambda i: ds.__getitems__(i)),
                           ("row by row", lambda i: pj.collate([ds[j] for j in i]))):
            fetch(idx[0])
            t = time.perf_counter()
            for i in idx:
                fetch(i)
            rates[how] = len(idx) * batch / (time.perf_counter() - t)
        print(f"  streamed table, {name} batches of {batch}: {rates['batched']:>9.0f} rows/s "
              f"batched, {rates['row by row']:>9.0f} rows/s row by row "
              f"({rates['batched'] / rates['row by row']:.1f}x)")


def ecg_folder(tmp: Path) -> Path:
    """The shared MIT-BIH records, or generated WFDB records where they are absent."""
    shared = Path(os.environ.get("POLYJEPA_SHARED_DATA", "../shared/data")) / "ecg" / "mitdb-pvc"
    if shared.is_dir():
        return shared
    import wfdb

    folder = tmp / "wfdb"
    folder.mkdir()
    fs, g = 360, np.random.default_rng(0)
    t = np.arange(fs * 600) / fs
    for r in range(3):
        beats = np.sin(2 * np.pi * 1.2 * t) ** 63  # narrow peaks, 72 beats a minute
        sig = np.stack([beats + 0.05 * g.normal(size=t.size),
                        0.6 * beats + 0.05 * g.normal(size=t.size)], 1)
        wfdb.wrsamp(f"rec{r}", fs=fs, units=["mV", "mV"], sig_name=["MLII", "V1"],
                    p_signal=sig, fmt=["16", "16"], write_dir=str(folder))
    return folder


def main() -> None:
    keep_freed_memory()  # what the trainer does on CPU; process-wide, so for both loops
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rows")
    args = parser.parse_args()
    steps, rounds = (15, 2) if args.quick else (40, 3)
    n_embed = 20_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tabular_compare(5_000, steps, rounds, tmp)
        print(f"\nembed throughput (untrained encoders of the recipes' size, "
              f"{torch.get_num_threads()} CPU threads)")
        embed_rate("tabular", table(n_embed, seed=1), tmp / "tab_embed",
                   {"dataset.target": "label"}, f"tabular, {n_embed} rows x 20 features")
        streamed_fetch(table(n_embed, seed=1), tmp)
        folder = ecg_folder(tmp)
        embed_rate("ecg", str(folder), tmp / "ecg_embed", {},
                   f"ECG 10-s windows ({folder.name})")


if __name__ == "__main__":
    main()
