"""Batching: deterministic, resumable, rank-sharded index streams and tensor datasets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Sequence as SequenceABC
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate

from .errors import ConfigError, DataError


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def global_batch(n: int, batch_size: int, seed: int, index: int) -> list[int]:
    """Sample indices of global batch number ``index``.

    The stream is the concatenation of one seeded permutation per epoch, so batch
    ``index`` can be computed directly: that is what makes resume exact.
    """
    out: list[int] = []
    pos = index * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n)
        perm = _epoch_permutation(n, seed, epoch)
        take = min(batch_size - len(out), n - offset)
        out += perm[offset:offset + take].tolist()
        pos += take
    return out


class ShardedBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of global batches ``start, start + 1, ...`` forever."""

    def __init__(self, n: int, global_batch_size: int, seed: int, start: int = 0,
                 rank: int = 0, world: int = 1):
        if global_batch_size % world:
            raise DataError(f"batch size {global_batch_size} is not divisible by the "
                            f"{world} data-parallel processes")
        self.n, self.bs, self.seed, self.start = n, global_batch_size, seed, start
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[list[int]]:
        per = self.bs // self.world
        i = self.start
        while True:
            batch = global_batch(self.n, self.bs, self.seed, i)
            yield batch[self.rank * per:(self.rank + 1) * per]
            i += 1

    def __len__(self) -> int:  # pragma: no cover - infinite stream
        return 2**62


class StackedSamples(SequenceABC):
    """A batch a dataset fetched already stacked (``batch``: a dict of ``[B, ...]``
    tensors) that still reads as the sequence of its ``B`` sample dicts, so that any
    ``collate_fn`` (torch's ``default_collate`` included) gets what it got before;
    :func:`collate` takes ``batch`` as it is."""

    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return int(self.batch["x"].shape[0])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return {k: v[i] for k, v in self.batch.items()}


def collate(samples: list[dict[str, Any]] | StackedSamples) -> dict[str, Any]:
    """Stack a list of sample dicts into a batch dict; a batch a dataset fetched
    already stacked (:meth:`ArrayDataset.__getitems__`) passes through."""
    if isinstance(samples, StackedSamples):
        return dict(samples.batch)
    return default_collate(samples)


def train_loader(dataset: Dataset, global_batch_size: int, seed: int, start: int,
                 rank: int = 0, world: int = 1,
                 num_workers: int = 0) -> DataLoader | Iterable[dict[str, Any]]:
    """This rank's batches of global batches ``start, start + 1, ...``, forever.

    A map-style dataset is batched by :class:`ShardedBatchSampler`. A dataset with a
    ``stream`` method (the streaming ``shards`` dataset) supplies its own batches instead:
    ``dataset.stream(global_batch_size, seed, start, rank, world, num_workers)`` returns
    an iterable of this rank's ``global_batch_size / world``-sample batches from global
    batch ``start`` on, endless on every rank, and the very batches an uninterrupted run
    yields from there (that is what resume relies on).
    """
    stream = getattr(dataset, "stream", None)
    if callable(stream):
        return stream(global_batch_size, seed, start, rank, world, num_workers)
    if isinstance(dataset, IterableDataset):
        raise ConfigError(f"{type(dataset).__name__} is an iterable dataset without a "
                          "stream(global_batch_size, seed, start, rank, world, num_workers) "
                          "method, so its batches cannot resume exactly; give it one")
    sampler = ShardedBatchSampler(len(dataset), global_batch_size, seed, start, rank, world)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      collate_fn=collate, persistent_workers=num_workers > 0)


def training_subset(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """The share ``fraction`` of ``dataset`` that pre-training draws from (``train.data_fraction``).

    The samples are a seeded choice (the same for a run and its resume), kept in dataset
    order; ``fraction = 1`` returns ``dataset`` itself. At least one sample is kept. A
    streaming dataset cannot be subset this way.
    """
    if fraction >= 1:
        return dataset
    if callable(getattr(dataset, "stream", None)) or isinstance(dataset, IterableDataset):
        raise ConfigError(f"train.data_fraction = {fraction}: {type(dataset).__name__} "
                          "streams its samples, so a share of them cannot be chosen; "
                          "point the run at fewer shards instead")
    n = len(dataset)
    k = max(1, round(n * fraction))
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 7_919)
    keep = sorted(torch.randperm(n, generator=g)[:k].tolist())
    return torch.utils.data.Subset(dataset, keep)


def eval_loader(dataset: Dataset, batch_size: int, indices: list[int] | None = None,
                num_workers: int = 0) -> DataLoader:
    """Sequential batches over the dataset (or a subset), in order."""
    ds = dataset if indices is None else torch.utils.data.Subset(dataset, indices)
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


class ArrayDataset(Dataset):
    """Samples from in-memory arrays: ``x [N, ...]`` plus optional ``y``, ``valid``, ``group``.

    Checks what a reader should always check: non-empty, matching lengths, finite values.
    ``source`` names the file the arrays came from, for error messages.
    """

    def __init__(self, x: np.ndarray | torch.Tensor, y: Any = None, valid: Any = None,
                 group: Any = None, source: str = "<array>"):
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        if x.dim() == 0 or x.shape[0] == 0:
            raise DataError(f"{source}: no samples (shape {tuple(x.shape)})")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).reshape(x.shape[0], -1).any(1).nonzero()[0, 0])
            raise DataError(f"{source}: NaN or infinite values (first in sample {bad})")
        self.x = x.float() if not x.is_floating_point() else x
        self.source = source
        self.extras: dict[str, torch.Tensor] = {}
        for key, arr in (("y", y), ("valid", valid), ("group", group)):
            if arr is None:
                continue
            t = torch.as_tensor(np.asarray(arr))
            if t.shape[0] != x.shape[0]:
                raise DataError(f"{source}: {key} has {t.shape[0]} entries for "
                                f"{x.shape[0]} samples")
            self.extras[key] = t.bool() if key == "valid" else t
        self.encoder_hints: dict[str, Any] = {}
        self.state: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"x": self.x[i]}
        for key, arr in self.extras.items():
            item[key] = arr[i]
        return item

    def __getitems__(self, indices: list[int]) -> StackedSamples | list[Any]:
        """A whole batch in one indexing per array instead of one item per sample.

        torch's ``DataLoader`` calls this when a dataset has it and hands the result to
        ``collate_fn``; the stacked batch holds, byte for byte, what :func:`collate`
        makes of the items, and :func:`collate` passes it through. A subclass that
        overrides ``__getitem__`` gets its own items, one per index, as before.
        """
        if type(self).__getitem__ is not ArrayDataset.__getitem__:
            return [self[i] for i in indices]
        return self.stacked(indices)

    def stacked(self, indices: list[int]) -> StackedSamples:
        """The samples at ``indices`` as one stacked batch: what :meth:`__getitem__` and
        :func:`collate` make of them, for a subclass whose items are its arrays' rows
        (its ``__getitems__`` can return this)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        index = torch.where(index < 0, index + len(self), index)
        # index_select copies whole rows (several times faster than x[index])
        batch = {"x": torch.index_select(self.x, 0, index).contiguous()}
        for key, arr in self.extras.items():
            batch[key] = torch.index_select(arr, 0, index).contiguous()
        return StackedSamples(batch)
