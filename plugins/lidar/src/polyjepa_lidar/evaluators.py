"""LiDAR evaluators: per-pillar semantic probe (accuracy, mIoU) and scene-level probes."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyjepa import DataError, EvalContext, split_indices
from polyjepa import warn as _warn


def pillar_embeddings(encoder: Any, dataset: Any, batch_size: int = 16, device: str = "cpu"
                      ) -> dict[str, np.ndarray]:
    """Token embeddings of every labelled occupied pillar.

    Returns ``embeddings [M, D]``, ``labels [M]``, ``groups [M]`` (the sample's group, else
    its index), ``features [M, F]`` (the input pillar features, for baselines) and
    ``index [M, 2]`` (sample, pillar) of each row.
    """
    import torch

    from polyjepa import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate)
    zs, ys, gs, fs, ix = [], [], [], [], []
    start = 0
    was_training = getattr(encoder, "training", False)
    if hasattr(encoder, "eval"):
        encoder.eval()
    with torch.no_grad():
        for batch in loader:
            if "pillar_labels" not in batch:
                raise DataError("the data has no per-point classes, so no pillar labels")
            b = batch["x"].shape[0]
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            z = encoder(batch).float()
            lab = batch["pillar_labels"].reshape(b, -1)
            ok = lab >= 0
            if "valid" in batch:
                ok &= batch["valid"].reshape(b, -1).bool()
            grp = batch["group"] if "group" in batch else torch.arange(start, start + b)
            grp = grp.reshape(b, 1).expand_as(lab)
            x = batch["x"]
            feats = x.reshape(b, x.shape[1], -1).transpose(1, 2)
            zs.append(z[ok].cpu().numpy())
            ys.append(lab[ok].cpu().numpy())
            gs.append(grp[ok].cpu().numpy())
            fs.append(feats[ok].float().cpu().numpy())
            rows = torch.arange(start, start + b, device=ok.device).reshape(b, 1).expand_as(lab)
            cols = torch.arange(lab.shape[1], device=ok.device).reshape(1, -1).expand_as(lab)
            ix.append(torch.stack([rows[ok], cols[ok]], dim=1).cpu().numpy())
            start += b
    if was_training and hasattr(encoder, "train"):
        encoder.train()
    out = {"embeddings": np.concatenate(zs), "labels": np.concatenate(ys),
           "groups": np.concatenate(gs), "features": np.concatenate(fs),
           "index": np.concatenate(ix)}
    if len(out["labels"]) == 0:
        raise DataError("no occupied pillar carries a label")
    return out


def probe_pillars(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int = 0,
                  max_train: int = 20000, c: float = 1.0, prefix: str = "pillar",
                  hist: np.ndarray | None = None, classes: np.ndarray | None = None
                  ) -> dict[str, float]:
    """Linear (logistic) probe on per-pillar vectors, split by scene: accuracy and mIoU.

    mIoU averages ``TP / (TP + FP + FN)`` over the classes present in the test split.
    With ``hist [M, C]`` (points of each of ``classes`` per pillar) the pillar predictions
    are also scored per point (every point takes its pillar's class): ``point_acc``,
    ``point_miou``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, np.float64)
    y = np.asarray(y)
    if not np.isfinite(x).all():
        raise DataError("the pillar embeddings contain NaN or infinite values")
    tr, te = split_indices(y, groups, seed)
    if len(np.unique(y[tr])) < 2:
        raise DataError("the training split holds a single pillar class; a probe needs two")
    rng = np.random.default_rng(seed)
    if len(tr) > max_train:
        tr = rng.choice(tr, max_train, replace=False)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(x[tr], y[tr])
    pred = model.predict(x[te])
    out = {f"{prefix}_acc": float(np.mean(pred == y[te])),
           f"{prefix}_miou": _miou_from_pairs(y[te], pred)}
    if hist is not None and classes is not None:
        h = np.asarray(hist, np.float64)[te]  # [T, C] points per class
        col = np.searchsorted(classes, pred)
        hit = h[np.arange(len(te)), col]
        total = h.sum(axis=1)
        point_prefix = prefix.replace("pillar", "point")
        out[f"{point_prefix}_acc"] = float(hit.sum() / max(total.sum(), 1.0))
        ious = []
        for j in range(len(classes)):
            gt = h[:, j].sum()
            if gt == 0:
                continue
            tp = h[col == j, j].sum()
            fp = (total[col == j] - h[col == j, j]).sum()
            ious.append(tp / (gt + fp))
        out[f"{point_prefix}_miou"] = float(np.mean(ious))
    return out


def _miou_from_pairs(y: np.ndarray, pred: np.ndarray) -> float:
    ious = []
    for cls in np.unique(y):
        tp = np.sum((pred == cls) & (y == cls))
        denom = np.sum(y == cls) + np.sum(pred == cls) - tp
        ious.append(tp / denom)
    return float(np.mean(ious))


class PillarProbe:
    """Per-pillar semantic classification with a linear probe on frozen token embeddings.

    Runs ``ctx.encoder`` over ``ctx.dataset`` to get one embedding per occupied pillar,
    labels each with the majority class of its points and fits a logistic regression on
    the scenes of a group-wise training split. Reports ``pillar_acc`` and ``pillar_miou``,
    and ``point_acc``/``point_miou`` (each point takes its pillar's predicted class);
    with ``baseline=True`` also the same probe on the raw pillar features
    (``pillar_feat_acc``/``pillar_feat_miou``, ``point_feat_acc``/``point_feat_miou``). Skipped (empty result, with a warning) on
    data without per-point classes.
    """

    needs_labels = False

    def __init__(self, batch_size: int = 16, max_train: int = 20000, c: float = 1.0,
                 baseline: bool = False):
        self.batch_size, self.max_train, self.c = int(batch_size), int(max_train), float(c)
        self.baseline = bool(baseline)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        if ctx.encoder is None or ctx.dataset is None:
            raise DataError("lidar.pillar_probe needs the encoder and the dataset")
        if getattr(ctx.dataset, "pillar_labels", None) is None and \
                "pillar_labels" not in ctx.dataset[0]:
            _warn("lidar.pillar_probe skipped: the points carry no classes")
            return {}
        device = str(ctx.extra.get("device", "cpu"))
        arr = pillar_embeddings(ctx.encoder, ctx.dataset, self.batch_size, device)
        classes = getattr(ctx.dataset, "classes", None)
        hist = None
        if classes is not None and getattr(ctx.dataset, "pillar_hist", None) is not None:
            hist = ctx.dataset.class_counts(arr["index"])
        out = probe_pillars(arr["embeddings"], arr["labels"], arr["groups"], ctx.seed,
                            self.max_train, self.c, hist=hist, classes=classes)
        if self.baseline:
            out.update(probe_pillars(arr["features"], arr["labels"], arr["groups"], ctx.seed,
                                     self.max_train, self.c, prefix="pillar_feat", hist=hist,
                                     classes=classes))
        return out


def class_composition(dataset: Any) -> np.ndarray | None:
    """Share of occupied pillars of each class, per sample ``[S, C]`` (None: no labels)."""
    labels = getattr(dataset, "pillar_labels", None)
    if labels is None:
        return None
    lab = np.asarray(labels)
    classes = np.unique(lab[lab >= 0])
    counts = np.stack([(lab == c).sum(axis=1) for c in classes], axis=1).astype(np.float64)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


class SceneProbe:
    """Scene-level probes on pooled embeddings.

    ``scene_acc``/``scene_f1_macro``: logistic regression on the scene label (the
    simulator's scene type, or the dominant non-ground class of a LAS tile), split by
    group. ``scene_composition_r2``: ridge regression of the per-class share of occupied
    pillars (when points carry classes).
    """

    needs_labels = False

    def __init__(self, c: float = 1.0, alpha: float = 1.0):
        self.c, self.alpha = float(c), float(alpha)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.metrics import accuracy_score, f1_score, r2_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = np.asarray(ctx.embeddings, np.float64)
        if not np.isfinite(x).all():
            raise DataError("the embeddings contain NaN or infinite values")
        out: dict[str, float] = {}
        if ctx.labels is not None and len(np.unique(ctx.labels)) >= 2 and len(x) >= 4:
            y = np.asarray(ctx.labels)
            tr, te = split_indices(y, ctx.groups, ctx.seed)
            if len(np.unique(y[tr])) >= 2:
                m = make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=2000))
                pred = m.fit(x[tr], y[tr]).predict(x[te])
                out["scene_acc"] = float(accuracy_score(y[te], pred))
                out["scene_f1_macro"] = float(f1_score(y[te], pred, average="macro"))
        comp = class_composition(ctx.dataset) if ctx.dataset is not None else None
        if comp is not None and len(comp) == len(x) and len(x) >= 4:
            tr, te = split_indices(np.arange(len(x)), ctx.groups, ctx.seed)
            m = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(x[tr], comp[tr])
            out["scene_composition_r2"] = float(r2_score(comp[te], m.predict(x[te])))
        if not out:
            _warn("lidar.scene_probe skipped: no scene labels or point classes")
        return out
