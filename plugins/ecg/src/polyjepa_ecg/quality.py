"""Quality task on ECG: PVC detection on unseen patients, real MIT-BIH beats (and the
same on simulated patients, :func:`demo_task`, where no annotated records are at hand).

Data (a folder such as ``shared/data/ecg/mitdb-pvc``): MIT-BIH records 105, 106, 108, 116
and 123, one patient each, lead MLII, 30 min each. Every annotated beat is the centre of
one 2.4-s window, labelled V (PVC) or N (any other beat): 10,281 beats, 690 PVCs. Record
102 of the folder is left out because its only channel is V5, not MLII (the reader skips
it and warns). Pre-training reads every beat window of the five records and no label.
Split by patient: each seed holds out two patients wholly, one of the three PVC-richest
(106, 116, 105) and one of the other two (108, 123), so every test set holds at least 44
PVCs. Seeds 0-2 test each of the three rich patients once. The probe trains on the other
three patients.

Probe: class-balanced logistic regression on standardised features
(:func:`polyjepa_ecg.evaluators.beat_metrics`), scored by macro-F1 over N and V.
Baselines on the same split, each with the same probe: the classic RR-interval +
QRS-morphology features (:func:`rr_qrs_features`, also read by the MIT-BIH 100 benchmark
script), and their RR columns alone. QRS shapes differ between patients, so the QRS
columns carry poorly to unseen patients and the RR columns alone can score higher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj

from .evaluators import beat_metrics
from .io import AAMI_CLASSES, aami_class, read_wfdb

V = AAMI_CLASSES.index("V")


def rr_qrs_features(ds: Any) -> np.ndarray:
    """RR features (pre, post, local mean, ratios) and QRS morphology, one row per beat.

    ``ds`` is an ``ecg.wfdb`` beat dataset read from a record or a folder of records. The
    RR intervals come from every annotated beat of the beat's own record. The morphology
    is taken from the first valid lead of the window, from R-0.1 s to R+0.15 s at 50 Hz,
    with the QRS amplitude, width and energy.
    """
    src = Path(ds.source)
    folder = src if src.is_dir() else src.parent
    fs = ds.fs
    centre = ds.times + ds.length / 2 / fs
    rr_feats = np.zeros((len(ds), 5))
    for r, name in enumerate(ds.state.get("records") or [src.stem]):
        mine = np.nonzero(ds.record_ids == r)[0]
        if not len(mine):
            continue
        rec = read_wfdb(folder / name, lazy=True)
        beats = np.array([s for s, sym in zip(rec.ann_samples, rec.ann_symbols)
                          if aami_class(sym) is not None]) / (rec.ann_fs or rec.fs)
        # the annotated beat nearest each window centre (resampling moves the centre by
        # up to half a sample, so a one-sided search can pick the neighbouring beat)
        hi = np.clip(np.searchsorted(beats, centre[mine]), 1, len(beats) - 1)
        pos = np.where(np.abs(beats[hi - 1] - centre[mine]) <= np.abs(beats[hi] - centre[mine]),
                       hi - 1, hi)
        pre = beats[pos] - beats[np.maximum(pos - 1, 0)]
        post = beats[np.minimum(pos + 1, len(beats) - 1)] - beats[pos]
        rr = np.diff(beats, prepend=beats[0])
        local = np.array([rr[max(1, p - 10):p].mean() if p > 1 else rr[min(1, len(rr) - 1)]
                          for p in pos])
        local = np.maximum(local, 1e-3)
        rr_feats[mine] = np.stack([pre, post, local, pre / local,
                                   post / np.maximum(pre, 1e-3)], 1)
    morph = []
    half = ds.length // 2
    for i in range(len(ds)):
        x, ok = ds.window(i)
        lead = x[int(np.argmax(ok))] if ok.any() else x[0]
        seg = lead[half - int(0.1 * fs): half + int(0.15 * fs)]
        qrs = lead[half - int(0.06 * fs): half + int(0.06 * fs)]
        above = np.nonzero(np.abs(qrs) > 0.3 * np.abs(qrs).max())[0]
        width = (above[-1] - above[0]) / fs if len(above) else 0.0
        morph.append(np.concatenate([seg[:: max(1, int(fs // 50))],
                                     [qrs.max(), qrs.min(), width, (qrs ** 2).sum() / fs]]))
    return np.concatenate([rr_feats, np.stack(morph)], 1)


def rr_qrs(ctx: pj.EvalContext) -> np.ndarray:
    """:func:`rr_qrs_features` of the evaluated dataset: the classic hand-made baseline."""
    return rr_qrs_features(ctx.dataset)


def rr_only(ctx: pj.EvalContext) -> np.ndarray:
    """The five RR-interval columns of :func:`rr_qrs_features`: beat timing alone."""
    return rr_qrs_features(ctx.dataset)[:, :5]


def patient_split(labels: np.ndarray, groups: np.ndarray, seed: int,
                  rare: int = V) -> tuple[np.ndarray, np.ndarray]:
    """Hold out two patients wholly: the ``seed``-th of the ``rare``-richest half and the
    ``seed``-th of the rest (cyclically), so every test set holds rare beats."""
    ids = np.unique(groups)
    if len(ids) < 3:
        raise pj.DataError(f"a patient split needs at least 3 patients, got {len(ids)}")
    counts = np.array([(labels[groups == g] == rare).sum() for g in ids])
    order = ids[np.argsort(-counts, kind="stable")]
    rich, poor = order[: (len(order) + 1) // 2], order[(len(order) + 1) // 2:]
    test = np.isin(groups, [rich[seed % len(rich)], poor[seed % len(poor)]])
    return np.nonzero(~test)[0], np.nonzero(test)[0]


def patient_probe(ctx: pj.EvalContext) -> float:
    """Macro-F1 (N, V) of the balanced logistic probe on two held-out patients."""
    x, y = np.asarray(ctx.embeddings, np.float64), np.asarray(ctx.labels)
    tr, te = patient_split(y, np.asarray(ctx.groups), ctx.seed)
    return beat_metrics(x[tr], y[tr], x[te], y[te])["beat_f1_macro"]


def patient_finetuned(ctx: pj.EvalContext) -> float:
    """Macro-F1 (N, V) on the same two held-out patients of the encoder fine-tuned end to
    end (class-balanced, PVC or not) on the other three."""
    from sklearn.metrics import f1_score

    y = (np.asarray(ctx.labels) == V).astype(np.int64)
    tr, te = patient_split(np.asarray(ctx.labels), np.asarray(ctx.groups), ctx.seed)
    settings = pj.FineTuneSettings(epochs=10, balanced=True)
    pred = pj.finetune_predict(ctx.encoder, ctx.dataset, y, tr, te, "classification",
                               settings, seed=ctx.seed)
    return float(f1_score(y[te], pred, average="macro"))


def pvc_task(data: str | Path, steps: int = 100, name: str = "mitdb-pvc",
             kind: str = "real", finetune: bool = True) -> pj.QualityTask:
    """PVC detection on unseen patients, pre-trained on the beat windows in ``data``;
    with ``finetune``, also fine-tuned end to end (:func:`patient_finetuned`).

    A small encoder and short schedule, so that the whole ECG run fits a few CPU minutes.
    """
    return pj.QualityTask(
        domain="ecg", name=name, recipe="ecg.beats", data=str(data), kind=kind,
        metric="macro-F1 N/V, unseen patients (logreg)", probe=patient_probe, steps=steps,
        finetune=patient_finetuned if finetune else None,
        baselines={"RR + QRS": pj.features_baseline(rr_qrs, patient_probe),
                   "RR only": pj.features_baseline(rr_only, patient_probe)},
        overrides={"dataset.leads": ["II"], "encoder.embed_dim": 64, "encoder.depth": 3,
                   "encoder.num_heads": 4, "predictor.dim": 32, "predictor.depth": 2,
                   "predictor.num_heads": 4, "train.batch_size": 32,
                   "train.warmup_steps": 10, "eval.batch_size": 256})


def simulated_pvc_data() -> Path:
    """Six simulated patients' 5-min records (:func:`~polyjepa_ecg.simulate.write_pvc_records`)
    in the ECG cache (:func:`~polyjepa_ecg.io.demo_cache_dir`), written on first use."""
    from .io import demo_cache_dir
    from .simulate import write_pvc_records

    return write_pvc_records(demo_cache_dir() / "simulated-pvc")


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled ECG comparison: PVC detection on unseen simulated
    patients, as the quality table's MIT-BIH task (no installable package ships annotated
    beats). Not fine-tuned: on these patients fine-tuning scores 1.0 from any start."""
    return pvc_task(simulated_pvc_data(), steps=100, name="simulated-pvc", kind="simulated",
                    finetune=False)
