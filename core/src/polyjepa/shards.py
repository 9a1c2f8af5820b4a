"""Sharded samples: any recipe's decoded dataset as WebDataset ``.tar`` shards.

``write_shards`` (``polyjepa shard``) opens a recipe's dataset exactly as ``pretrain``
does and writes every sample into ``shard-000000.tar``, ``shard-000001.tar``, ... in the
WebDataset layout (one sample = the members ``<key>.<field>.npy`` sharing a key; tensors
as ``.npy`` written without pickle, plain values as ``.json``), plus ``index.json``: the
sample count and SHA-256 of every shard, the field types, the dataset's ``state``,
``encoder_hints``, ``task`` and ``label_names``, and the config it came from. The samples
are stored after decoding (normalised, tokenised), so reading them costs no parsing.

The ``shards`` dataset reads them back from a folder or any fsspec URL (``file://``,
``s3://``, ``gs://``, ``https://``, ...). It is a **map-style** view: ``__getitem__``
finds the sample's shard from the counts in the index, reads and decodes that whole
shard once and keeps the last ``cache_shards`` decoded shards in an LRU cache. That is a
deliberate choice over an iterable stream with a shuffle buffer: the trainer's batch order
is a pure function of (seed, step) over a map-style dataset (:mod:`polyjepa.data`), so
training on shards sees the very batches it would see on the original data, splits
across ranks and workers as before, and resumes exactly from any step, with no change to
the trainer. The price is random access: when the shards outnumber the cache, a batch
may read a shard again, so give it a cache that holds the data (``cache_shards``) or
larger shards, or copy remote shards to a local disk first.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from bisect import bisect_right
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError

FORMAT = "polyjepa-shards"
VERSION = 1
INDEX = "index.json"
SHARD_NAME = "shard-{:06d}.tar"


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
                folder, _, base = member.name.rpartition("/")
                stem, _, rest = base.partition(".")
                field, _, ext = rest.rpartition(".")
                if field not in self.fields:
                    raise ValueError(f"unexpected member {member.name!r}")
                handle = tar.extractfile(member)
                body = handle.read() if handle is not None else b""
                if len(body) != member.size:
                    raise EOFError(f"member {member.name!r} is cut short")
                if f"{folder}/{stem}" != key:
                    key = f"{folder}/{stem}"
                    samples.append({})
                samples[-1][field] = _decode(ext, body, self.fields[field])
        for s in samples:
            if set(s) != set(self.fields):
                raise ValueError(f"a sample lacks {sorted(set(self.fields) - set(s))}")
        return samples
