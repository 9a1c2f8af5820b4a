"""Quality benchmark: MIT-BIH record 100, normal (N) vs supraventricular ectopic (S) beats.

Record-internal time split (the first 70 % of the recording trains the probe, the last
30 % tests it). Compared: a frozen ECG-JEPA encoder pre-trained (self-supervised, no
labels) on the record's beat windows, the same encoder at random initialisation, and
the classic hand-made features (RR intervals and QRS morphology). Each gets the same
class-balanced logistic probe; RankMe is printed beside each.

    python plugins/ecg/benchmarks/bench_quality.py [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _data_dir() -> Path:
    root = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                               Path(__file__).resolve().parents[3].parent / "shared" / "data"))
    return root / "ecg" / "wfdb-sample"


def rr_qrs_features(ds, rec_fs: float = 360.0) -> np.ndarray:
    """RR features (pre, post, local mean, ratios) and QRS morphology of lead MLII."""
    from polyjepa_ecg.io import read_wfdb

    rec = read_wfdb(Path(ds.source))
    fs = ds.fs
    # beat times (s) of every annotated beat, to compute RR around the kept ones
    from polyjepa_ecg.io import aami_class

    beats = np.array([s for s, sym in zip(rec.ann_samples, rec.ann_symbols)
                      if aami_class(sym) is not None]) / rec.fs
    centre = ds.times + ds.length / 2 / fs
    pos = np.searchsorted(beats, centre - 1e-3)
    pre = beats[pos] - beats[np.maximum(pos - 1, 0)]
    post = beats[np.minimum(pos + 1, len(beats) - 1)] - beats[pos]
    rr = np.diff(beats, prepend=beats[0])
    local = np.array([rr[max(1, p - 10):p].mean() if p > 1 else rr[1] for p in pos])
    feats = [pre, post, local, pre / local, post / pre]
    # QRS morphology: MLII from s to R+0.15 s at 50 Hz, amplitude, width, energy
    morph = []
    half = ds.length // 2
    for i in range(len(ds)):
        x, _ = ds.window(i)
        seg = x[0, half - int(0.1 * fs): half + int(0.15 * fs)]
        qrs = x[0, half - int(0.06 * fs): half + int(0.06 * fs)]
        above = np.nonzero(np.abs(qrs) > 0.3 * np.abs(qrs).max())[0]
        width = (above[-1] - above[0]) / fs if len(above) else 0.0
        morph.append(np.concatenate([seg[:: max(1, int(fs // 50))],
                                     [qrs.max(), qrs.min(), width, (qrs ** 2).sum() / fs]]))
    return np.concatenate([np.stack(feats, 1), np.stack(morph)], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import polyjepa as pj
    import torch
    from polyjepa_ecg.evaluators import beat_metrics, time_split

    hea = _data_dir() / "100.hea"
    out = Path(a.out or tempfile.mkdtemp(prefix="ecg-bench-"))
    ds_kw = {"mode": "beats", "fs": 250.0, "window": 2.4, "patch_size": 20, "leads": "record"}
    t0 = time.time()
    run = pj.pretrain("ecg.beats", data=str(hea), out=out / "run", progress=False,
                      overrides={"dataset": ds_kw,
                                 "encoder": {"embed_dim": 64, "depth": 3, "num_heads": 4},
                                 "predictor": {"dim": 32, "depth": 2, "num_heads": 4},
                                 "train": {"steps": a.steps, "batch_size": 32,
                                           "warmup_steps": a.steps // 10, "lr": 1e-3,
                                           "rankme_every": a.steps,
                                           "checkpoint_every": a.steps}})
    train_s = time.time() - t0
    ds = pj.create_dataset("ecg.wfdb", str(hea), beat_classes=["N", "S"], **ds_kw)
    y = ds.labels
    tr, te = time_split(ds.groups, ds.times, 0.3)
    enc = pj.load_encoder(run.path)
    torch.manual_seed(0)
    rnd = pj.create_encoder("ecg.vit", **run.config["encoder"]).eval()
    rows = []
    for name, z in (("ECG-JEPA pretrained", pj.embed_dataset(enc, ds)[0]),
                    ("same encoder, random init", pj.embed_dataset(rnd, ds)[0]),
                    ("RR + QRS features", rr_qrs_features(ds))):
        m = beat_metrics(z[tr], y[tr], z[te], y[te])
        rows.append((name, z.shape[1], pj.effective_rank(z), m))
    print(f"\nMIT-BIH 100, N vs S beats, record-internal time split "
          f"(train {np.bincount(y[tr]).tolist()}, test {np.bincount(y[te]).tolist()}); "
          f"pretraining {a.steps} steps took {train_s:.0f} s")
    print(f"{'method':28s} {'dim':>4s} {'RankMe':>7s} {'macroF1':>8s} {'bal.acc':>8s} "
          f"{'AUC':>6s}")
    for name, d, rank, m in rows:
        print(f"{name:28s} {d:4d} {rank:7.1f} {m['beat_f1_macro']:8.3f} "
              f"{m['beat_balanced_acc']:8.3f} {m.get('beat_auc', float('nan')):6.3f}")


if __name__ == "__main__":
    main()
