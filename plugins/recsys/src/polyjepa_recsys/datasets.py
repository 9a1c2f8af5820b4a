"""Datasets: the item catalogue (samples = items) and user histories (samples = users).

Both share one leave-last-out split of the interactions (each user's latest interaction
is held out for evaluation, the rest is training data) and one featurisation of items:
every item becomes ``n_fields`` feature tokens, stored as a float array ``[n_fields, W]``:

- ``hash``: the item id, hashed into ``id_buckets`` (1-based; 0 = unknown). Only items
  seen in the training interactions get an id token; a cold-start item has none and is
  represented by its other features alone.
- ``cat``: a categorical column, code ``1..V`` in a vocabulary of the training catalogue;
  a column with more than ``max_vocab`` distinct values is hashed into ``max_vocab``
  buckets instead (no vocabulary to keep, and values unseen in training still embed).
- ``multi``: a multi-valued column (genres, title words), up to ``W`` codes.
- ``num``: a numerical column, standardised, ``[value, 1]``.
- ``popularity``: ``log1p`` of the item's training interaction count (numerical).
- ``audience`` (when ``audience > 0``): up to that many of the item's training users,
  hashed into ``user_buckets`` (multi-valued; a seeded sample for popular items), so the
  item tower sees who interacted with an item beside what the item is.

Vocabularies, numerical statistics, the training item set and the estimated field
dependence are the dataset's ``state``: saved with the run and reused at evaluate/embed.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from polyjepa import DataError

from .dependence import field_dependence
from .io import RecData, read_interactions


@dataclass
class Split:
    """Leave-last-out split over the catalogue's item indices."""

    n_items: int
    users: list[str]            # users with a held-out item, in dataset order
    histories: list[np.ndarray]  # chronological training items of each such user
    targets: np.ndarray          # the held-out item of each such user
    counts: np.ndarray           # training interactions per item [n_items]
    cold: np.ndarray             # bool [n_items]: item absent from the run's training items


def _hash(text: str, buckets: int) -> int:
    return 1 + zlib.crc32(text.encode("utf-8")) % buckets


def _split_values(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    return [t for t in text.replace("|", " ").split() if t]


class RecsysData:
    """Interactions, leave-last-out split and item features (shared by both datasets)."""

    def __init__(self, data: Any = None, state: dict[str, Any] | None = None,
                 items: str | None = None, min_rating: float | None = None,
                 id_buckets: int = 4096, max_values: int = 8, max_vocab: int = 5000,
                 popularity: bool = True, item_features: list[str] | None = None,
                 audience: int = 0, user_buckets: int = 4096):
        if data is None:
            from .demo import movielens_100k_path

            data = movielens_100k_path()
        rec = read_interactions(data, items=items)
        self.source = rec.source
        inter = rec.interactions
        if min_rating is not None:
            inter = inter[inter["rating"] >= float(min_rating)]
            if len(inter) == 0:
                raise DataError(f"{rec.source}: no interaction has rating >= {min_rating}")
        inter = inter.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
        self.rec = rec
        state = dict(state or {})
        # catalogue: the item table first, then items only seen in interactions
        ids = list(rec.items["item"]) if rec.items is not None else []
        known = set(ids)
        ids += sorted(set(inter["item"]) - known)
        self.item_ids = ids
        self.item_index = {v: i for i, v in enumerate(ids)}
        n_items = len(ids)
        item_idx = inter["item"].map(self.item_index).to_numpy()
        user_codes, user_ids = pd.factorize(inter["user"], sort=False)
        last = np.r_[user_codes[1:] != user_codes[:-1], True]
        counts_per_user = np.bincount(user_codes, minlength=len(user_ids))
        hold = last & (counts_per_user[user_codes] >= 2)
        train_mask = ~hold
        counts = np.bincount(item_idx[train_mask], minlength=n_items).astype(np.int64)
        if "train_items" in state:
            train_items = set(state["train_items"])
        else:
            train_items = {ids[i] for i in np.flatnonzero(counts > 0)}
        cold = np.array([v not in train_items for v in ids])
        users, hist, targets = [], [], []
        starts = np.r_[0, np.flatnonzero(last)[:-1] + 1]
        ends = np.flatnonzero(last) + 1
        for _u, (s, e) in enumerate(zip(starts, ends)):
            if e - s < 2:
                continue
            users.append(str(user_ids[user_codes[s]]))
            hist.append(item_idx[s:e - 1])
            targets.append(item_idx[e - 1])
        self.split = Split(n_items, users, hist, np.asarray(targets, np.int64), counts, cold)
        for spec in state.get("fields", []):
            if spec.get("hashed"):  # the run's audience field: the same number of users
                audience = int(spec["max_users"])
        self.audience_k = int(audience)
        self.audience = self._audience(inter, item_idx, train_mask, n_items, self.audience_k)
        self._featurize(rec, state, counts, cold, id_buckets, max_values, max_vocab,
                        popularity, item_features, sorted(train_items), int(user_buckets))

    @staticmethod
    def _audience(inter: pd.DataFrame, item_idx: np.ndarray, train_mask: np.ndarray,
                  n_items: int, k: int) -> list[list[str]]:
        """Up to ``k`` training users of every item (a seeded sample where there are more)."""
        out: list[list[str]] = [[] for _ in range(n_items)]
        if k <= 0:
            return out
        users = inter["user"].to_numpy()[train_mask]
        items = item_idx[train_mask]
        order = np.argsort(items, kind="stable")
        bounds = np.flatnonzero(np.diff(items[order])) + 1
        rng = np.random.default_rng(0)
        for chunk in np.split(order, bounds):
            if len(chunk) == 0:
                continue
            who = sorted(set(users[chunk]))
            if len(who) > k:
                who = sorted(rng.choice(who, size=k, replace=False).tolist())
            out[int(items[chunk[0]])] = [str(u) for u in who]
        return out

    def _featurize(self, rec: RecData, state: dict[str, Any], counts: np.ndarray,
                   cold: np.ndarray, id_buckets: int, max_values: int, max_vocab: int,
                   popularity: bool, item_features: list[str] | None,
                   train_items: list[str], user_buckets: int = 4096) -> None:
        n = len(self.item_ids)
        table = None
        if rec.items is not None:
            table = rec.items.set_index("item").reindex(self.item_ids)
        if "fields" in state:
            fields = state["fields"]
            max_values = int(state.get("max_values", max_values))
        else:
            fields = [{"name": "item_id", "kind": "hash", "size": int(id_buckets)}]
            cols = list(rec.item_types) if table is not None else []
            if item_features is not None:
                missing = sorted(set(item_features) - set(cols))
                if missing:
                    raise DataError(f"{rec.source}: item feature(s) {missing} not in the item "
                                    f"table (has {cols})")
                cols = list(item_features)
            train_rows = ~cold
            for col in cols:
                kind = rec.item_types[col]
                if kind == "float":
                    v = table[col].to_numpy(np.float64)[train_rows]
                    v = v[np.isfinite(v)]
                    if len(v) == 0:
                        continue
                    fields.append({"name": col, "kind": "num", "mean": float(v.mean()),
                                   "std": float(max(v.std(), 1e-6))})
                    continue
                if kind == "token_seq":
                    values = [t for s in table[col][train_rows] for t in _split_values(s)]
                else:
                    values = [s for s in table[col][train_rows] if isinstance(s, str) and s]
                if not values:
                    continue
                vc = pd.Series(values).value_counts(sort=True)
                fkind = "multi" if kind == "token_seq" else "cat"
                if len(vc) > max_vocab:  # high cardinality: hash values into max_vocab buckets
                    fields.append({"name": col, "kind": fkind, "size": int(max_vocab),
                                   "hash_values": True})
                    continue
                vocab = [str(v) for v in vc.index]
                fields.append({"name": col, "kind": fkind, "size": len(vocab), "vocab": vocab})
            if popularity:
                pop = np.log1p(counts[~cold]) if (~cold).any() else np.zeros(1)
                fields.append({"name": "popularity", "kind": "num", "mean": float(pop.mean()),
                               "std": float(max(pop.std(), 1e-6))})
            n_aud = max((len(a) for a in self.audience), default=0)
            if n_aud:
                fields.append({"name": "audience", "kind": "multi", "size": int(user_buckets),
                               "hashed": True, "max_users": self.audience_k})
                max_values = max(int(max_values), self.audience_k)
        w = max(2, int(max_values))
        x = np.zeros((n, len(fields), w), np.float32)
        valid = np.zeros((n, len(fields)), bool)
        for f, spec in enumerate(fields):
            kind, name = spec["kind"], spec["name"]
            if kind == "hash":
                for i, item in enumerate(self.item_ids):
                    if not cold[i]:
                        x[i, f, 0] = _hash(item, int(spec["size"]))
                valid[:, f] = ~cold
                continue
            if spec.get("hashed"):  # the item's training users, hashed
                for i, who in enumerate(self.audience):
                    codes = [_hash(u, int(spec["size"])) for u in who[:w]]
                    x[i, f, :len(codes)] = codes
                    valid[i, f] = bool(codes)
                continue
            if name == "popularity" and kind == "num":
                raw = np.log1p(counts).astype(np.float64)
            else:
                if table is None or name not in table.columns:
                    raise DataError(f"{rec.source}: the run was trained with item feature "
                                    f"{name!r}, which this data lacks")
                col = table[name]
                if kind == "num":
                    raw = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
            if kind == "num":
                ok = np.isfinite(raw)
                x[ok, f, 0] = (raw[ok] - spec["mean"]) / spec["std"]
                x[ok, f, 1] = 1.0
                valid[:, f] = ok
                continue
            hashed = bool(spec.get("hash_values"))
            lookup = {} if hashed else {v: k + 1 for k, v in enumerate(spec["vocab"])}
            for i, s in enumerate(col.to_numpy()):
                toks = _split_values(s) if kind == "multi" else (
                    [s.strip()] if isinstance(s, str) and s.strip() else [])
                if hashed:
                    codes = [_hash(t, int(spec["size"])) for t in toks][:w]
                else:
                    codes = [lookup[t] for t in toks if t in lookup][:w]
                if codes:
                    x[i, f, :len(codes)] = codes
                    valid[i, f] = True
        self.fields = fields
        self.item_x = torch.from_numpy(x)
        self.item_valid = torch.from_numpy(valid)
        if "dependence" in state:
            dep = np.asarray(state["dependence"], np.float64)
        else:
            dep = field_dependence(x, valid, [s["kind"] for s in fields])
        self.dependence = dep
        self.state = {"fields": fields, "max_values": w, "train_items": train_items,
                      "dependence": np.round(dep, 4).tolist()}
        self.field_hints = [{k: v for k, v in s.items() if k in ("name", "kind", "size")}
                            for s in fields]


# every argument of RecsysData, which both datasets take and pass on unchanged
_DATA_ARGS = tuple(inspect.signature(RecsysData).parameters)


def right_aligned(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    """Item-index rows ``[len(histories), max_len]``: each history's latest ``max_len``
    items with the latest in the last slot, ``-1`` padding before them."""
    seq = np.full((len(histories), max_len), -1, np.int64)
    for r, h in enumerate(histories):
        h = h[-max_len:]
        seq[r, max_len - len(h):] = h
    return seq


class _RecsysDataset(torch.utils.data.Dataset):
    """What the item and sequence datasets share: the :class:`RecsysData` they read."""

    data: RecsysData

    def _read(self, args: dict[str, Any]) -> RecsysData:
        """Read the data from a dataset's own arguments (its ``__init__``'s ``locals()``)."""
        self.data = RecsysData(**{k: args[k] for k in _DATA_ARGS})
        self.state = self.data.state
        self.source = self.data.source
        return self.data


class ItemDataset(_RecsysDataset):
    """Samples are catalogue items: ``x [n_fields, W]`` feature codes, ``valid [n_fields]``.

    ``group`` is the item's index in the catalogue. Evaluation uses the users' histories.
    The arguments after ``state`` are :class:`RecsysData`'s (see the module docstring).
    """

    kind = "items"

    def __init__(self, data: Any = None, state: dict[str, Any] | None = None,
                 items: str | None = None, min_rating: float | None = None,
                 id_buckets: int = 4096, max_values: int = 8, max_vocab: int = 5000,
                 popularity: bool = True, item_features: list[str] | None = None,
                 audience: int = 0, user_buckets: int = 4096):
        self.split = self._read(locals()).split
        self.encoder_hints = {"fields": self.data.field_hints}
        from .maskers import publish_dependence

        publish_dependence(self.data.dependence)

    def __len__(self) -> int:
        return self.data.item_x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.data.item_x[i], "valid": self.data.item_valid[i],
                "group": torch.tensor(i)}


class SequenceDataset(_RecsysDataset):
    """Samples are users: their chronological training history (latest ``max_len`` items).

    ``x [max_len, n_fields, W]`` holds each history item's feature codes, right-aligned
    (the latest item at the last position); padding positions have ``valid`` False.
    Users with fewer than ``min_history`` training items are left out (too short to mask).
    The held-out latest item of each user is the evaluation target.
    """

    kind = "sequences"

    def __init__(self, data: Any = None, state: dict[str, Any] | None = None,
                 max_len: int = 50, min_history: int = 3,
                 items: str | None = None, min_rating: float | None = None,
                 id_buckets: int = 4096, max_values: int = 8, max_vocab: int = 5000,
                 popularity: bool = True, item_features: list[str] | None = None,
                 audience: int = 0, user_buckets: int = 4096):
        split = self._read(locals()).split
        keep = [u for u, h in enumerate(split.histories) if len(h) >= int(min_history)]
        if not keep:
            raise DataError(f"{self.data.source}: no user has at least {min_history} training "
                            f"interactions plus one held out")
        self.split = Split(split.n_items, [split.users[u] for u in keep],
                           [split.histories[u] for u in keep], split.targets[keep],
                           split.counts, split.cold)
        self.max_len = int(max_len)
        self.seq = torch.from_numpy(right_aligned(self.split.histories, self.max_len))
        self.encoder_hints = {"fields": self.data.field_hints, "max_len": self.max_len}

    def __len__(self) -> int:
        return self.seq.shape[0]

    def _gather(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        valid = seq >= 0
        x = self.data.item_x[seq.clamp_min(0)] * valid[..., None, None]
        return {"x": x, "valid": valid}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = self._gather(self.seq[i])
        out["group"] = torch.tensor(i)
        return out

    def item_batch(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each item as a one-item history (at the latest position): for item embeddings."""
        seq = torch.full((len(items), self.max_len), -1, dtype=torch.long)
        seq[:, -1] = items
        return self._gather(seq)


# the registered factories: the classes themselves, so that their arguments are checked
# against a config's keys (a misspelt one is an error, not silently ignored)
items = ItemDataset
sequences = SequenceDataset
