"""Sharded samples: any recipe's decoded dataset as WebDataset ``.tar`` shards.

``write_shards`` (``polyjepa shard``) opens a recipe's dataset exactly as ``pretrain``
does and writes every sample into ``shard-000000.tar``, ``shard-000001.tar``, ... in the
WebDataset layout (one sample = the members ``<key>.<field>.npy`` sharing a key; tensors
as ``.npy`` written without pickle, plain values as ``.json``), plus ``index.json``: the
sample count and SHA-256 of every shard, the field types, the dataset's ``state``,
``encoder_hints``, ``task`` and ``label_names``, and the config it came from. The samples
are stored after decoding (normalised, tokenised), so reading them costs no parsing.

The ``shards`` dataset reads them back from a folder or any fsspec URL (``file://``,
``s3://``, ``gs://``, ``https://``, ...) in one of two modes.

**Map-style** (the default, :class:`ShardDataset`): ``__getitem__`` finds the sample's
shard from the counts in the index, reads and decodes that whole shard once and keeps the
last ``cache_shards`` decoded shards in an LRU cache. The trainer's batch order is then a
pure function of (seed, step) over a map-style dataset (:mod:`polyjepa.data`), so training
on shards sees the very batches it would see on the original data, splits across ranks
and workers as before, and resumes exactly from any step. The price is random access:
when the shards outnumber the cache, a batch may read a shard again, so give it a cache
that holds the data (``cache_shards``) or larger shards.

**Streaming** (``stream=True``, :class:`ShardStream`), for data that does not fit a cache
(object storage, many shards): each shard is read once per epoch, front to back. The
stream of one process is defined as follows; it is a pure function of (seed, epoch, rank,
number of processes, number of loader workers) and nothing else.

- Epoch ``e`` shuffles the shard list with a generator seeded by (seed, e), the same on
  every rank. Rank ``r`` of ``world`` takes ``order[r::world]``, and its loader worker
  ``w`` of ``workers`` takes every ``workers``-th of those (``[w::workers]``); ``workers``
  is ``train.num_workers``, or 1 without workers. Each of these readers streams its shards
  in turn (fsspec ``open``, ``tarfile`` in stream mode) and passes the samples through a
  shuffle buffer of ``shuffle_buffer`` samples seeded by (seed, e, rank, world, worker,
  workers), emptied at the end of the epoch. Across all readers every sample comes once
  per epoch.
- A reader's stream never ends: when its shards of epoch ``e`` are done it goes on with
  its shards of epoch ``e + 1``. Readers whose shards hold fewer samples simply start the
  next epoch sooner, so every rank yields the same number of batches per step however
  unevenly the shards divide, and no rank waits for a batch that never comes (no DDP hang).
  Epochs are therefore per reader; they stay aligned to within one shard per reader.
- Worker ``w`` batches ``train.batch_size / world`` consecutive samples of its stream;
  the data loader takes the batches from its workers in turn, so global batch ``k`` of a
  rank is batch ``k // workers`` of reader ``k % workers``.
- Resume from global batch ``k`` skips what each reader already gave, without reading it:
  whole epochs from the counts in the index, then the shuffle buffer is replayed on sample
  positions alone, which says which samples are still in the buffer and where reading
  goes on; shards wholly before those are not opened, and within the shards that are,
  the samples already used are not decoded. The batches that follow are those an
  uninterrupted run would have seen.

The stream depends on the number of processes and of loader workers, so an exact resume
needs the same ``torchrun`` size and ``train.num_workers``; with others the run goes on
with a different (still complete, once-per-epoch) order. There must be at least
``world * workers`` shards. The checksum of a shard is checked when its end is reached.
Embedding, evaluation and RankMe read a streaming dataset through the map-style view
(sequential reads in shard order; RankMe's few samples are read in sorted order, so each
shard at most once per evaluation).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError, PolyjepaError

FORMAT = "polyjepa-shards"
VERSION = 1
INDEX = "index.json"
SHARD_NAME = "shard-{:06d}.tar"


def _member(name: str, fields: Any) -> tuple[str, str, str]:
    """``(sample key, field, extension)`` of a tar member named ``<key>.<field>.<ext>``
    (the WebDataset convention); a field outside ``fields`` is a ValueError."""
    folder, _, base = name.rpartition("/")
    stem, _, rest = base.partition(".")
    field, _, ext = rest.rpartition(".")
    if field not in fields:
        raise ValueError(f"unexpected member {name!r}")
    return f"{folder}/{stem}", field, ext


def _fs(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path within it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise DataError(f"{url}: cannot open this location: {exc}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _jsonable(value: Any) -> Any:
    """Numbers and arrays of numpy/torch as plain JSON values (for hints and state)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


# -- encoding one field -------------------------------------------------------------------
def _field_type(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor:{str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (np.ndarray, np.generic)):
        return "ndarray"
    if isinstance(value, (bool, int, float, str)) or value is None:
        return "json"
    raise DataError(f"sample field of type {type(value).__name__} cannot be stored in "
                    "shards (tensors, numpy arrays, numbers and strings can)")


def _encode(value: Any, kind: str) -> tuple[str, bytes]:
    """``(extension, bytes)`` of one field: ``.npy`` without pickle, or ``.json``."""
    if kind == "json":
        return "json", json.dumps(value).encode()
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        arr = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
    else:
        arr = np.asarray(value)
    buf = io.BytesIO()
    try:
        np.save(buf, arr, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"array of dtype {arr.dtype} cannot be stored without pickle") from exc
    return "npy", buf.getvalue()


def _decode(ext: str, raw: bytes, kind: str) -> Any:
    if ext == "json":
        return json.loads(raw)
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    if kind == "ndarray":
        return arr
    t = torch.from_numpy(np.array(arr, copy=True) if not arr.flags.writeable else arr)
    dtype = getattr(torch, kind.partition(":")[2], None)
    return t.to(dtype) if isinstance(dtype, torch.dtype) and t.dtype != dtype else t


# -- writing ------------------------------------------------------------------------------
def _prepare_out(fs: Any, root: str, out: str) -> None:
    """Create ``out``; refuse a folder holding anything but earlier shards."""
    if fs.exists(root):
        names = [Path(p.rstrip("/")).name for p in fs.ls(root, detail=False)]
        other = [n for n in names if n != INDEX and not (n.startswith("shard-")
                                                          and n.endswith(".tar"))]
        if other:
            raise ConfigError(f"{out} holds other files ({', '.join(sorted(other)[:3])}); "
                              "give a new or empty folder for the shards")
        for n in names:  # earlier shards: replaced, none left over
            fs.rm(f"{root}/{n}")
    fs.makedirs(root, exist_ok=True)


def _tar_bytes(samples: list[tuple[str, dict[str, tuple[str, bytes]]]]) -> bytes:
    from webdataset import TarWriter

    buf = io.BytesIO()
    writer = TarWriter(buf, encoder=False, mtime=0)  # mtime=0: same data, same bytes
    for key, fields in samples:
        writer.write({"__key__": key, **{f"{name}.{ext}": raw
                                         for name, (ext, raw) in fields.items()}})
    writer.close()
    return buf.getvalue()


def write_shards(recipe: str | None = None, data: Any = None, out: str | Path = "shards",
                 config: str | Path | dict[str, Any] | None = None,
                 overrides: dict[str, Any] | list[str] | None = None,
                 shard_size: int = 1000, state: dict[str, Any] | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Write the recipe's dataset on ``data`` as WebDataset shards in ``out`` (a folder
    or an fsspec URL); returns the index written as ``<out>/index.json``.

    The dataset is opened as ``pretrain`` opens it (same recipe, config and overrides);
    ``state`` is passed to it like a run's saved state (e.g. to write evaluation data
    with the statistics of the training data). Train on the result with
    ``dataset.name=shards`` and ``data=out``.

    >>> write_shards("array", data="images.npz", out="shards/images", shard_size=500)
    """
    try:
        import webdataset  # noqa: F401
    except ImportError as exc:
        raise ConfigError('writing shards needs the webdataset package: '
                          'pip install "polyjepa[shards]"') from exc
    from .api import resolve_config
    from .build import build_dataset
    from .config import data_for_json

    if int(shard_size) < 1:
        raise ConfigError(f"shard_size must be above 0, got {shard_size}")
    cfg = resolve_config(recipe, data, config, overrides)
    dataset = build_dataset(cfg, state=state)
    out = str(out)
    fs, root = _fs(out)
    root = root.rstrip("/")
    _prepare_out(fs, root, out)
    n = len(dataset)
    fields: dict[str, str] = {}
    shards: list[dict[str, Any]] = []
    pending: list[tuple[str, dict[str, tuple[str, bytes]]]] = []

    def flush() -> None:
        raw = _tar_bytes(pending)
        name = SHARD_NAME.format(len(shards))
        with fs.open(f"{root}/{name}", "wb") as f:
            f.write(raw)
        shards.append({"name": name, "count": len(pending), "bytes": len(raw),
                       "sha256": hashlib.sha256(raw).hexdigest()})
        pending.clear()

    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="shard", unit="sample")
    for i in indices:
        item = dataset[i]
        if not isinstance(item, dict):
            raise DataError(f"sample {i} is a {type(item).__name__}, not a dict of tensors")
        kinds = {}
        for k, v in item.items():
            if "." in str(k) or str(k).startswith("_"):
                raise DataError(f"sample field {k!r} cannot be a shard member name "
                                "(no dots, no leading underscore)")
            kinds[str(k)] = _field_type(v)
        if not fields:
            fields = kinds
        elif kinds != fields:
            raise DataError(f"sample {i} has fields {kinds}, sample 0 had {fields}; "
                            "every sample needs the same fields and types")
        pending.append((f"{i:09d}", {k: _encode(v, fields[str(k)]) for k, v in item.items()}))
        if len(pending) >= shard_size:
            flush()
    if pending:
        flush()
    index = {
        "format": FORMAT, "version": VERSION, "count": n, "shards": shards, "fields": fields,
        "state": dict(getattr(dataset, "state", None) or {}),
        "encoder_hints": dict(getattr(dataset, "encoder_hints", None) or {}),
        "task": getattr(dataset, "task", None),
        "label_names": getattr(dataset, "label_names", None),
        "config": {**cfg, "data": data_for_json(cfg.get("data"))},
    }
    text = json.dumps(index, indent=1, default=_jsonable)
    with fs.open(f"{root}/{INDEX}", "w") as f:  # last: a folder without it is unfinished
        f.write(text)
    return json.loads(text)


# -- reading ------------------------------------------------------------------------------
def read_index(data: str | Path) -> tuple[str, dict[str, Any]]:
    """``(root URL, index)`` of the shards in ``data`` (a folder, a URL or its index.json)."""
    url = str(data).rstrip("/")
    if url.endswith("/" + INDEX) or url == INDEX:
        url = url[:-len(INDEX)].rstrip("/") or "."
    fs, root = _fs(url)
    where = f"{url}/{INDEX}"
    try:
        with fs.open(f"{root.rstrip('/')}/{INDEX}", "rb") as f:
            index = json.loads(f.read())
    except FileNotFoundError as exc:
        raise DataError(f"{where}: no such file (not shards `polyjepa shard` wrote, or "
                        "the writing did not finish)") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read the shard index: {_one_line(exc)}") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DataError(f"{where}: not a polyjepa shard index")
    if int(index.get("version", 0)) > VERSION:
        raise DataError(f"{where}: shard format version {index['version']} is newer than "
                        f"this polyjepa reads ({VERSION}); upgrade polyjepa")
    return url, index


class ShardDataset(torch.utils.data.Dataset):
    """The samples of shards ``polyjepa shard`` wrote, by index (see the module docstring).

    ``data``: the shard folder or fsspec URL. ``cache_shards``: decoded shards kept in
    memory. ``verify``: check each shard's SHA-256 against the index when it is read.
    ``state``: the state a run saved; the samples are stored decoded, so it is only
    compared with the shards' own (a different one means other normalisation).
    """

    def __init__(self, data: Any = None, cache_shards: int = 8, verify: bool = True,
                 state: dict[str, Any] | None = None):
        if data is None:
            raise DataError("the 'shards' dataset needs data: the folder or URL "
                            "`polyjepa shard` wrote")
        if int(cache_shards) < 1:
            raise ConfigError(f"dataset.cache_shards must be above 0, got {cache_shards}")
        self.url, index = read_index(data)
        self.shards: list[dict[str, Any]] = list(index.get("shards") or [])
        self.fields: dict[str, str] = dict(index.get("fields") or {})
        self.state: dict[str, Any] = dict(index.get("state") or {})
        self.encoder_hints: dict[str, Any] = dict(index.get("encoder_hints") or {})
        self.task = index.get("task")
        self.label_names = index.get("label_names")
        self.source_config: dict[str, Any] = dict(index.get("config") or {})
        self.cache_shards, self.verify = int(cache_shards), bool(verify)
        self._starts = [0]
        for s in self.shards:
            self._starts.append(self._starts[-1] + int(s["count"]))
        if self._starts[-1] != int(index.get("count", -1)):
            raise DataError(f"{self.url}/{INDEX}: the shard counts add up to "
                            f"{self._starts[-1]}, the index says {index.get('count')}")
        if state and self.state and json.loads(json.dumps(state)) != self.state:
            from .errors import warn

            warn(f"{self.url}: these shards were written with another dataset state than "
                 "the run's; write them with the run's state (write_shards(state=...))")
        self._cache: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        i = int(index) + n if int(index) < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"sample {index} of {n}")
        j = bisect_right(self._starts, i) - 1
        return dict(self._shard(j)[i - self._starts[j]])

    def _shard(self, j: int) -> list[dict[str, Any]]:
        if j in self._cache:
            self._cache.move_to_end(j)
            return self._cache[j]
        samples = self._read(j)
        self._cache[j] = samples
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return samples

    def _read(self, j: int) -> list[dict[str, Any]]:
        meta = self.shards[j]
        url = f"{self.url}/{meta['name']}"
        fs, path = _fs(url)
        try:
            with fs.open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise DataError(f"shard {url}: cannot read it: {_one_line(exc)}") from exc
        if self.verify and meta.get("sha256") and \
                hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            raise DataError(f"shard {url}: checksum mismatch ({len(raw)} bytes, "
                            f"{meta.get('bytes')} written): corrupt, truncated or replaced; "
                            "write the shards again")
        try:
            samples = self._parse(raw)
        except (tarfile.TarError, EOFError, ValueError, KeyError, OSError) as exc:
            raise DataError(f"shard {url}: corrupt or truncated: {_one_line(exc)}") from exc
        if len(samples) != int(meta["count"]):
            raise DataError(f"shard {url}: holds {len(samples)} samples, the index says "
                            f"{meta['count']} (truncated?)")
        return samples

    def _parse(self, raw: bytes) -> list[dict[str, Any]]:
        """Samples in member order; a sample's members share the key before the first dot
        of their file name (the WebDataset convention)."""
        samples: list[dict[str, Any]] = []
        key = None
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, field, ext = _member(member.name, self.fields)
                handle = tar.extractfile(member)
                body = handle.read() if handle is not None else b""
                if len(body) != member.size:
                    raise EOFError(f"member {member.name!r} is cut short")
                if member_key != key:
                    key = member_key
                    samples.append({})
                samples[-1][field] = _decode(ext, body, self.fields[field])
        for s in samples:
            if set(s) != set(self.fields):
                raise ValueError(f"a sample lacks {sorted(set(self.fields) - set(s))}")
        return samples


# -- streaming ----------------------------------------------------------------------------
def shards(data: Any = None, stream: bool = False, shuffle_buffer: int = 1000,
           cache_shards: int = 8, verify: bool = True,
           state: dict[str, Any] | None = None) -> ShardDataset:
    """The ``shards`` dataset: a map-style :class:`ShardDataset`, or with ``stream=True``
    a :class:`ShardStream` that trains on a stream read shard by shard (module docstring).

    ``shuffle_buffer``: samples held to shuffle the stream (stream mode only; 0 or 1 keep
    the order of the shards' samples).
    """
    if stream:
        return ShardStream(data, shuffle_buffer=shuffle_buffer, cache_shards=cache_shards,
                           verify=verify, state=state)
    return ShardDataset(data, cache_shards=cache_shards, verify=verify, state=state)


def _rng(*parts: Any) -> random.Random:
    """A generator seeded by ``parts`` (stable across processes, machines and versions)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


class _Buffer:
    """A seeded shuffle buffer: holds ``size`` items and lets a random one out per push."""

    def __init__(self, size: int, rng: random.Random):
        self.size, self.rng = max(1, int(size)), rng
        self.items: list[Any] = []

    def push(self, item: Any) -> Any:
        """Take ``item``; return the item let out, or ``None`` while the buffer fills."""
        self.items.append(item)
        if len(self.items) < self.size:
            return None
        k = self.rng.randrange(len(self.items))
        self.items[k], self.items[-1] = self.items[-1], self.items[k]
        return self.items.pop()

    def drain(self) -> list[Any]:
        """The items left, shuffled (the end of an epoch)."""
        items, self.items = self.items, []
        self.rng.shuffle(items)
        return items


class _Hashing:
    """A read-only file wrapper that feeds what is read to a SHA-256 (or nothing)."""

    def __init__(self, f: Any, digest: Any):
        self.f, self.digest = f, digest

    def read(self, size: int = -1) -> bytes:
        chunk = self.f.read(size)
        if self.digest is not None:
            self.digest.update(chunk)
        return chunk


class _Failure:
    """An error raised in a loader worker, sent to the main process as a value so that it
    is raised there as the one line it is (DataLoader would wrap it in a traceback)."""

    def __init__(self, exc: PolyjepaError):
        self.kind, self.message = type(exc), str(exc)


class _StreamLoader:
    """One rank's batches from the workers' streams, failures raised as they were."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader = loader

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            if isinstance(batch, _Failure):
                raise batch.kind(batch.message)
            yield batch


class _RankStream(torch.utils.data.IterableDataset):
    """This rank's batches from global batch ``start`` on, forever; in each loader worker
    the batches of one reader (see the module docstring for who reads what)."""

    def __init__(self, source: ShardStream, per_rank: int, seed: int, start: int, rank: int,
                 world: int, workers: int):
        super().__init__()
        self.source, self.per_rank, self.seed, self.start = source, per_rank, seed, start
        self.rank, self.world, self.workers = rank, world, workers

    def __iter__(self) -> Iterator[Any]:
        from .data import collate

        info = torch.utils.data.get_worker_info()
        # the loader starts with its worker 0, so that worker plays the reader of batch start
        reader = ((info.id if info else 0) + self.start) % self.workers
        given = max(0, -(-(self.start - reader) // self.workers))  # its batches before start
        samples = self.source.samples(self.seed, self.rank, self.world, reader, self.workers,
                                      skip=given * self.per_rank)
        try:
            while True:
                yield collate([next(samples) for _ in range(self.per_rank)])
        except PolyjepaError as exc:
            if info is None:
                raise
            yield _Failure(exc)


class ShardStream(ShardDataset):
    """Shards read as a stream with a shuffle buffer (``shards(..., stream=True)``).

    :meth:`stream` gives the trainer this rank's batches (see :func:`polyjepa.data.
    train_loader`); indexing works as in :class:`ShardDataset` (embedding, evaluation and
    RankMe read through it). The stream's definition is in the module docstring.
    """

    def __init__(self, data: Any = None, shuffle_buffer: int = 1000, cache_shards: int = 8,
                 verify: bool = True, state: dict[str, Any] | None = None):
        super().__init__(data, cache_shards=cache_shards, verify=verify, state=state)
        if int(shuffle_buffer) < 0:
            raise ConfigError(f"dataset.shuffle_buffer must be 0 or more, got {shuffle_buffer}")
        self.shuffle_buffer = int(shuffle_buffer)

    # -- what the trainer calls ----------------------------------------------------------
    def stream(self, global_batch_size: int, seed: int, start: int = 0, rank: int = 0,
               world: int = 1, num_workers: int = 0) -> Iterable[dict[str, Any]]:
        """This rank's batches (``global_batch_size / world`` samples each) of global
        batches ``start, start + 1, ...``, forever: those an uninterrupted run yields."""
        if global_batch_size % world:
            raise DataError(f"batch size {global_batch_size} is not divisible by the "
                            f"{world} data-parallel processes")
        workers = max(1, int(num_workers))
        if len(self.shards) < world * workers:
            raise ConfigError(
                f"{self.url}: {len(self.shards)} shards cannot feed {world} processes x "
                f"{workers} loader workers (each reads whole shards); write smaller shards "
                "(--shard-size) or use fewer train.num_workers")
        ranked = _RankStream(self, global_batch_size // world, int(seed), int(start), rank,
                             world, workers)
        return _StreamLoader(torch.utils.data.DataLoader(ranked, batch_size=None,
                                                         num_workers=int(num_workers)))

    # -- the stream of one reader --------------------------------------------------------
    def epoch_shards(self, seed: int, epoch: int, rank: int = 0, world: int = 1,
                     worker: int = 0, workers: int = 1) -> list[int]:
        """The shards (numbers in the index) one reader streams in ``epoch``, in order."""
        order = list(range(len(self.shards)))
        _rng("shards", seed, epoch).shuffle(order)
        return order[rank::world][worker::workers]

    def epoch_order(self, seed: int, epoch: int, rank: int = 0, world: int = 1,
                    worker: int = 0, workers: int = 1) -> list[int]:
        """The sample numbers (as in ``dataset[i]``) one reader yields in ``epoch``, in
        order; computed from the index alone, nothing is read."""
        numbers = [self._starts[j] + i for j in self.epoch_shards(seed, epoch, rank, world,
                                                                  worker, workers)
                   for i in range(int(self.shards[j]["count"]))]
        buf = _Buffer(self.shuffle_buffer, _rng("buffer", seed, epoch, rank, world, worker,
                                                workers))
        out = [p for p in (buf.push(p) for p in range(len(numbers))) if p is not None]
        return [numbers[p] for p in out + buf.drain()]

    def samples(self, seed: int, rank: int = 0, world: int = 1, worker: int = 0,
                workers: int = 1, skip: int = 0) -> Iterator[dict[str, Any]]:
        """One reader's endless sample stream, less its first ``skip`` samples."""
        if not 0 <= rank < world or not 0 <= worker < workers:
            raise ConfigError(f"no reader {worker} of {workers} on rank {rank} of {world}")
        epoch = 0
        while True:
            shards = self.epoch_shards(seed, epoch, rank, world, worker, workers)
            n = sum(int(self.shards[j]["count"]) for j in shards)
            if n == 0:
                raise ConfigError(f"{self.url}: no shards for loader worker {worker} of "
                                  f"{workers} on rank {rank} of {world}")
            if skip >= n:  # a whole epoch already consumed: nothing to read
                skip -= n
            else:
                rng = _rng("buffer", seed, epoch, rank, world, worker, workers)
                yield from self._epoch_samples(shards, rng, skip)
                skip = 0
            epoch += 1

    def _epoch_samples(self, shards: list[int], rng: random.Random,
                       skip: int) -> Iterator[dict[str, Any]]:
        """The samples of ``shards`` through the shuffle buffer, less the first ``skip``.

        The buffer works on sample positions in the epoch; skipping replays it on
        positions alone, then reads only the shards that hold what it still holds."""
        counts = [int(self.shards[j]["count"]) for j in shards]
        n = sum(counts)
        buf = _Buffer(self.shuffle_buffer, rng)
        pos = out = 0
        while out < skip and pos < n:
            if buf.push(pos) is not None:
                out += 1
            pos += 1
        tail = buf.drain()[skip - out:] if out < skip else None
        needed = set(buf.items if tail is None else tail)
        marks = sorted(needed)
        held: dict[int, dict[str, Any]] = {}
        end = 0
        for j, count in zip(shards, counts):
            lo, end = end, end + count
            k = bisect_left(marks, lo)
            if end <= pos and not (k < len(marks) and marks[k] < end):
                continue  # used up before the resume point: not opened
            def wanted(i: int, lo: int = lo) -> bool:
                return lo + i >= pos or lo + i in needed

            for i, sample in self._stream_shard(j, wanted):
                p = lo + i
                if sample is not None:
                    held[p] = sample
                if p >= pos:
                    let_out = buf.push(p)
                    if let_out is not None:
                        yield held.pop(let_out)
        for p in buf.drain() if tail is None else tail:
            yield held.pop(p)

    def _stream_shard(self, j: int, wanted: Callable[[int], bool],
                      ) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """``(i, sample)`` for the samples of shard ``j`` in order, read front to back;
        ``sample`` is ``None`` where ``wanted(i)`` is false (its tensors are not decoded)."""
        meta = self.shards[j]
        url = f"{self.url}/{meta['name']}"
        digest = hashlib.sha256() if self.verify and meta.get("sha256") else None
        i, key, fields, sample = -1, None, set(), None

        def done() -> tuple[int, dict[str, Any] | None]:
            if fields != set(self.fields):
                raise ValueError(f"a sample lacks {sorted(set(self.fields) - fields)}")
            return i, sample

        try:
            fs, path = _fs(url)
            with fs.open(path, "rb") as raw:
                f = _Hashing(raw, digest)
                with tarfile.open(fileobj=f, mode="r|") as tar:
                    for member in tar:
                        if not member.isfile():
                            continue
                        member_key, field, ext = _member(member.name, self.fields)
                        if member_key != key:
                            if key is not None:
                                yield done()
                            i, key, fields = i + 1, member_key, set()
                            sample = {} if wanted(i) else None
                        fields.add(field)
                        if sample is None:
                            continue  # not read here: the tar stream skips its bytes
                        handle = tar.extractfile(member)
                        body = handle.read() if handle is not None else b""
                        if len(body) != member.size:
                            raise EOFError(f"member {member.name!r} is cut short")
                        sample[field] = _decode(ext, body, self.fields[field])
                    if key is not None:
                        yield done()
                while f.read(1 << 20):  # the padding after the archive, for the checksum
                    pass
        except DataError:
            raise
        except (tarfile.TarError, EOFError, ValueError, KeyError) as exc:
            raise DataError(f"shard {url}: corrupt or truncated: {_one_line(exc)}") from exc
        except OSError as exc:
            raise DataError(f"shard {url}: cannot read it: {_one_line(exc)}") from exc
        if i + 1 != int(meta["count"]):
            raise DataError(f"shard {url}: holds {i + 1} samples, the index says "
                            f"{meta['count']} (truncated?)")
        if digest is not None and digest.hexdigest() != meta["sha256"]:
            raise DataError(f"shard {url}: checksum mismatch (corrupt, truncated or "
                            "replaced); write the shards again")
