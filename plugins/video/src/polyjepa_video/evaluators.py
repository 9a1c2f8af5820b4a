"""Video evaluators: attentive / mean-pooling clip probes and frame retrieval.

Both probes train a small head on the frozen encoder's token outputs (the evaluation
protocol of V-JEPA, Bardes et al., 2024, https://arxiv.org/abs/2404.08471, scaled down):
the attentive probe pools tokens with a learned cross-attention query, the mean probe
averages them. Frame retrieval embeds each
tubelet time step and retrieves frames of the same video from other, non-overlapping
clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

import polyjepa
from polyjepa import DataError


def token_features(ctx: polyjepa.EvalContext, max_tokens: int = 4096) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Frozen token outputs ``[N, n_tokens, D]`` of the context's encoder and grid.

    Without an encoder or dataset (embeddings only) the pooled embeddings stand in as a
    single token each.
    """
    enc, ds = ctx.encoder, ctx.dataset
    if enc is None or ds is None:
        return np.asarray(ctx.embeddings, np.float32)[:, None, :], None
    device = torch.device(ctx.extra.get("device", "cpu"))
    bs = int(ctx.extra.get("batch_size", 32))
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=False,
                                         collate_fn=polyjepa.collate)
    out, grid = [], None
    with torch.no_grad():
        for batch in loader:
            x = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            grid = tuple(enc.grid(x))
            out.append(enc(x).float().cpu().numpy())
    feats = np.concatenate(out)
    if feats.shape[1] > max_tokens:
        raise DataError(f"{feats.shape[1]} tokens per clip exceed max_tokens={max_tokens}")
    return feats, grid


class _Head(nn.Module):
    def __init__(self, dim: int, out: int, pooling: str, num_heads: int):
        super().__init__()
        self.pooling = pooling
        if pooling == "attentive":
            heads = num_heads if dim % num_heads == 0 else 1
            self.query = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.trunc_normal_(self.query, std=0.02)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc = nn.Linear(dim, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens
        if self.pooling == "attentive":
            q = self.query.expand(x.shape[0], -1, -1)
            x = self.attn(q, x, x, need_weights=False)[0][:, 0]
        else:
            x = x.mean(dim=1)
        return self.fc(x)


class ClipProbe:
    """Train a pooling head + linear layer on frozen tokens; report held-out metrics.

    Classification (class labels): accuracy and macro-F1; regression (continuous labels,
    e.g. ``label="position"``): R^2 and RMSE, as :func:`polyjepa.label_task` tells them
    apart (a dataset's ``task`` wins). The split is :func:`polyjepa.split_indices` (by
    group where the data has groups).
    """

    needs_labels = True

    def __init__(self, pooling: str = "attentive", epochs: int = 100, lr: float = 1e-2,
                 weight_decay: float = 1e-2, batch_size: int = 64, num_heads: int = 4,
                 test_size: float = 0.25):
        if pooling not in ("attentive", "mean"):
            raise ValueError(f"pooling must be 'attentive' or 'mean', got {pooling!r}")
        self.pooling, self.epochs, self.lr = pooling, int(epochs), float(lr)
        self.weight_decay, self.batch_size = float(weight_decay), int(batch_size)
        self.num_heads, self.test_size = int(num_heads), float(test_size)

    def __call__(self, ctx: polyjepa.EvalContext) -> dict[str, float]:
        if ctx.labels is None:
            raise DataError("the clip probe needs labels and the data has none")
        y = np.asarray(ctx.labels)
        if y.ndim != 1:
            raise DataError(f"the clip probe needs one label per clip, got shape {y.shape}")
        feats, _ = token_features(ctx)
        if len(feats) != len(y):
            raise DataError(f"{len(feats)} clips but {len(y)} labels")
        if not np.isfinite(feats).all():
            raise DataError("the encoder's tokens contain NaN or infinite values")
        regression = polyjepa.label_task(y, ctx.dataset) == "regression"
        tr, te = polyjepa.split_indices(y, ctx.groups, ctx.seed, self.test_size)
        return self.fit_score(feats, y, tr, te, ctx.seed, regression)

    def fit_score(self, feats: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray,
                  seed: int, regression: bool = False) -> dict[str, float]:
        """Train the head on tokens ``feats [N, n_tokens, D]`` of rows ``tr``, score ``te``."""
        from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

        prefix = f"{self.pooling}_probe"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x = torch.from_numpy(np.ascontiguousarray(feats, np.float32))
            # standardise every channel with training-split statistics
            flat = x[torch.from_numpy(tr)].reshape(-1, x.shape[2])
            x = (x - flat.mean(0)) / flat.std(0).clamp_min(1e-6)
            if regression:
                mu, sd = float(y[tr].mean()), float(y[tr].std()) or 1.0
                target = torch.from_numpy(((y - mu) / sd).astype(np.float32))
                out_dim = 1
            else:
                classes = np.unique(y[tr])
                if len(classes) < 2:
                    raise DataError("the probe's training split holds a single class")
                lookup = {c: i for i, c in enumerate(classes.tolist())}
                target = torch.tensor([lookup.get(v, -1) for v in y.tolist()])
                out_dim = len(classes)
            head = _Head(x.shape[2], out_dim, self.pooling, self.num_heads)
            opt = torch.optim.AdamW(head.parameters(), lr=self.lr,
                                    weight_decay=self.weight_decay)
            g = torch.Generator().manual_seed(seed)
            tr_t = torch.from_numpy(tr)
            for _ in range(self.epochs):
                order = tr_t[torch.randperm(len(tr_t), generator=g)]
                for s in range(0, len(order), self.batch_size):
                    idx = order[s:s + self.batch_size]
                    pred = head(x[idx])
                    if regression:
                        loss = nn.functional.mse_loss(pred[:, 0], target[idx])
                    else:
                        loss = nn.functional.cross_entropy(pred, target[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            head.eval()
            with torch.no_grad():
                pred = head(x[torch.from_numpy(te)])
        if regression:
            p = pred[:, 0].numpy() * sd + mu
            return {f"{prefix}_r2": float(r2_score(y[te], p)),
                    f"{prefix}_rmse": float(np.sqrt(mean_squared_error(y[te], p)))}
        p = classes[pred.argmax(dim=1).numpy()]
        return {f"{prefix}_acc": float(accuracy_score(y[te], p)),
                f"{prefix}_f1_macro": float(f1_score(y[te], p, average="macro"))}


def attentive_probe(**kwargs: Any) -> ClipProbe:
    """Clip probe with attentive pooling (a learned query attends over frozen tokens)."""
    return ClipProbe(pooling="attentive", **kwargs)


def mean_probe(**kwargs: Any) -> ClipProbe:
    """Clip probe with mean pooling of frozen tokens."""
    return ClipProbe(pooling="mean", **kwargs)


def _normalise(z: np.ndarray) -> np.ndarray:
    """Rows centred on the mean embedding, then scaled to unit length: cosine similarity
    around the mean, so that an offset shared by every frame does not dominate."""
    return polyjepa.l2_normalise(z - z.mean(axis=0, keepdims=True))


class FrameRetrieval:
    """Retrieve frames of the same video (or class) from other, non-overlapping clips.

    Every tubelet time step of every clip is a frame embedding (tokens averaged over the
    H x W plane). For each query frame the candidates are the frames of all clips that do
    not overlap the query's clip in time. Reports ``recall@k`` (a top-k candidate comes
    from the same video, or the same class when the data has class labels; only with two
    or more identities), ``temporal_recall@k`` (a top-k candidate is from the same video
    within ``tolerance`` source frames; default: one clip length) and the MRR of the
    first same-identity candidate. With embeddings and labels only (no clip dataset),
    clips are the items and labels the identities.
    """

    needs_labels = False

    def __init__(self, ks: tuple[int, ...] = (1, 5), tolerance: int | None = None,
                 chunk: int = 1024):
        self.ks, self.tolerance, self.chunk = tuple(int(k) for k in ks), tolerance, int(chunk)

    def __call__(self, ctx: polyjepa.EvalContext) -> dict[str, float]:
        ds = ctx.dataset
        meta = ds is not None and hasattr(ds, "clip_frames") and hasattr(ds, "clip_video")
        if meta and ctx.encoder is not None:
            feats, grid = token_features(ctx)
            n = feats.shape[0]
            gt = grid[0] if grid else 1
            z = feats.reshape(n, gt, -1, feats.shape[-1]).mean(axis=2)  # [N, gt, D]
            frames = np.asarray(ds.clip_frames)
            per = max(1, frames.shape[1] // gt)
            slot_frame = frames[:, ::per][:, :gt]  # first source frame of each time step
            video = np.asarray(ds.clip_video)
            labels = ctx.labels if ctx.labels is not None and \
                np.issubdtype(np.asarray(ctx.labels).dtype, np.integer) and \
                getattr(ds, "state", {}).get("classes") else None
            ident = np.asarray(labels) if labels is not None else video
            lo, hi = frames.min(axis=1), frames.max(axis=1)
            tol = self.tolerance if self.tolerance is not None else int(hi[0] - lo[0] + 1)
            item_clip = np.repeat(np.arange(n), gt)
            item_video = video[item_clip]
            item_frame = slot_frame.reshape(-1)
            item_ident = ident[item_clip]
            zf = _normalise(z.reshape(n * gt, -1).astype(np.float64))
            # clip-level exclusion: same video and overlapping frame ranges (self included)
            clash = (video[:, None] == video[None, :]) & (lo[:, None] <= hi[None, :]) & \
                    (lo[None, :] <= hi[:, None])
        else:
            if ctx.labels is None:
                raise DataError("frame retrieval needs a video.clips dataset (with its "
                                "encoder) or labels naming each clip's video")
            zf = _normalise(np.asarray(ctx.embeddings, np.float64))
            n = len(zf)
            item_clip = np.arange(n)
            item_ident = np.asarray(ctx.labels)
            item_video, item_frame, tol = item_ident, np.zeros(n, np.int64), 0
            clash = np.eye(n, dtype=bool)
        if not np.isfinite(zf).all():
            raise DataError("frame retrieval: the embeddings contain NaN or infinite values")
        kmax = max(self.ks)
        hits = {k: [] for k in self.ks}
        thits = {k: [] for k in self.ks}
        rr = []
        for s in range(0, len(zf), self.chunk):
            q = np.arange(s, min(s + self.chunk, len(zf)))
            sim = zf[q] @ zf.T
            excl = clash[item_clip[q]][:, item_clip]
            sim[excl] = -np.inf
            order = np.argsort(-sim, axis=1)
            usable = (~excl).sum(axis=1) > 0
            same = item_ident[order] == item_ident[q, None]
            same &= np.isfinite(np.take_along_axis(sim, order, axis=1))
            near = (item_video[order] == item_video[q, None]) & \
                (np.abs(item_frame[order] - item_frame[q, None]) <= tol) & \
                np.isfinite(np.take_along_axis(sim, order, axis=1))
            for k in self.ks:
                hits[k].append(same[usable, :min(k, kmax)].any(axis=1))
                thits[k].append(near[usable, :min(k, kmax)].any(axis=1))
            first = np.where(same.any(axis=1), same.argmax(axis=1) + 1, np.inf)
            rr.append((1.0 / first)[usable])
        if not np.concatenate(rr).size:
            raise DataError("frame retrieval: no query has a non-overlapping clip to match")
        out: dict[str, float] = {}
        if len(np.unique(item_ident)) >= 2:
            for k in self.ks:
                out[f"frame_retrieval_recall@{k}"] = float(np.concatenate(hits[k]).mean())
            out["frame_retrieval_mrr"] = float(np.concatenate(rr).mean())
        if tol > 0:
            for k in self.ks:
                out[f"frame_retrieval_temporal_recall@{k}"] = float(
                    np.concatenate(thits[k]).mean())
        if not out:
            raise DataError("frame retrieval needs two or more videos or labels")
        return out
