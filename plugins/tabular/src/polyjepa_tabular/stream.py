"""Large CSV/Parquet files read in record batches, encoded into memory-mapped arrays.

Reading a whole table into pandas costs several times the file in memory. Here a file is
read with Arrow in record batches (``pyarrow.csv.open_csv``,
``pyarrow.parquet.ParquetFile.iter_batches``) and never held whole:

1. the column kinds (numeric or categorical, :func:`~polyjepa_tabular.schema.column_kind`)
   are inferred on the first ``SAMPLE_ROWS`` rows, read as the in-memory reader reads
   them (pandas); a CSV column is converted batch by batch as pandas typed it there
   (numbers, booleans or text);
2. one pass over all batches gathers what the encoding needs: the statistics of numeric
   columns (:class:`~polyjepa_tabular.schema.Moments`, the same numbers whatever the
   batching), category counts, stray words, the rows to drop (missing target) and the
   target's classes;
3. a second pass encodes every batch with the in-memory reader's own functions and
   appends ``x``, ``missing``, ``y`` and ``group`` to ``.npy`` files in a cache folder,
   written under a temporary name and renamed when complete.

The dataset then memory-maps those files: it stays map-style (exact resume and rank
sharding work as for any dataset), and only the rows a batch touches are paged in. The
cache folder's name is a hash of the file (resolved path, size, modification time) and
of the reading settings, so a second open reuses it without reading the table; an
unreadable cache folder is rebuilt, with a warning.

Differences from the in-memory reader: messages name the row (0-based, after rows with
a missing target are dropped) rather than the line of the file, except for ragged CSV
rows, whose line Arrow reports; a CSV column typed as numbers in the sample whose later
entries are words has those entries missing (a stray word), where pandas would have read
the whole column as text; a separator of several characters (a pandas regular
expression) and ``.zip`` files are not streamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import ConfigError, DataError, warn

from .io import CSV_SUFFIXES, PARQUET_SUFFIXES, _check_names, table_suffix
from .schema import (
    MAX_CLASSES,
    SCHEMA_VERSION,
    STRAY_FRACTION,
    Moments,
    categorical_feature,
    category_strings,
    class_key,
    column_kind,
    saved_schema,
)

STREAM_BYTES = 256 * 2**20  # stream="auto" streams files larger than this
SAMPLE_ROWS = 50_000  # rows the column kinds are inferred on
BATCH_ROWS = 65_536  # rows per Parquet record batch (CSV: about 64 bytes a row)
CACHE_FORMAT = 1
# what pandas reads as missing in a CSV (its default na_values)
PANDAS_NA = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
TRUE_WORDS, FALSE_WORDS = ("True", "TRUE", "true"), ("False", "FALSE", "false")


def default_cache_dir() -> Path:
    """``$POLYJEPA_TABLE_CACHE``, else ``~/.cache/polyjepa/tables``."""
    env = os.environ.get("POLYJEPA_TABLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "polyjepa" / "tables"


def use_stream(data: Any, stream: Any, sep: str | None) -> bool:
    """Whether ``data`` is read in batches: ``stream=True`` always (a CSV/Parquet file
    is then required), ``False`` never, ``"auto"`` for files above ``STREAM_BYTES``."""
    if stream not in (True, False, "auto"):
        raise ConfigError(f"dataset.stream must be true, false or 'auto', got {stream!r}")
    if stream is False:
        return False
    path = Path(data) if isinstance(data, (str, os.PathLike)) and (
        not isinstance(data, str) or ("\n" not in data and len(data) <= 4096)) else None
    suffix = table_suffix(path) if path is not None else ""
    why = None
    if path is None or not path.is_file():
        why = "a CSV/Parquet file"
    elif suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES or suffix.endswith(".zip"):
        why = f"a CSV/Parquet file ({suffix!r} is not streamed; .zip files are not)"
    elif suffix in CSV_SUFFIXES and sep is not None and len(sep) != 1:
        why = "a one-character CSV separator"
    if why is not None:
        if stream is True:
            raise ConfigError(f"dataset.stream=true needs {why}; got "
                              f"{type(data).__name__} {str(data)[:80]!r}")
        return False
    return stream is True or path.stat().st_size > STREAM_BYTES  # type: ignore[union-attr]


# -- reading batches -------------------------------------------------------------------

@dataclass
class Source:
    """A CSV or Parquet file opened for batches: its columns and, for CSV, separator."""

    path: Path
    csv: bool
    sep: str
    names: list[str]
    batch_rows: int = BATCH_ROWS
    kinds: dict[str, str] = field(default_factory=dict)  # CSV: how pandas typed each column

    def batches(self, columns: list[str]) -> Iterator[Any]:
        """Record batches of ``columns`` as pandas DataFrames typed like the sample."""
        if not columns:
            columns = self.names[:1]
        try:
            for batch in (self._csv(columns) if self.csv else self._parquet(columns)):
                if batch.num_rows:
                    yield self._frame(batch, columns)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read the table (corrupt or truncated?): "
                            f"{type(exc).__name__}: {exc}") from exc

    def _parquet(self, columns: list[str]) -> Iterator[Any]:
        import pyarrow.parquet as pq

        # no pre-buffering: it would read ahead many row groups at once
        with pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20) as f:
            yield from f.iter_batches(batch_size=self.batch_rows, columns=columns)

    def _csv(self, columns: list[str]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        bad: list[Any] = []

        def invalid(row: Any) -> str:
            bad.append(row)
            return "error"

        try:
            yield from pcsv.open_csv(
                self.path,
                # one parsing thread: Arrow reports a bad row's line number only then
                read_options=pcsv.ReadOptions(block_size=max(1 << 10, self.batch_rows * 64),
                                              use_threads=False),
                parse_options=pcsv.ParseOptions(delimiter=self.sep,
                                                invalid_row_handler=invalid),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: pa.string() for n in columns}, include_columns=columns,
                    null_values=PANDAS_NA, strings_can_be_null=True))
        except Exception:
            if bad:
                row = bad[0]
                why = ("a cut-off or incomplete line?" if row.actual_columns < row.expected_columns
                       else f"a {self.sep!r} inside an unquoted value?")
                where = f"line {row.number}" if row.number is not None else "a row"
                raise DataError(f"{self.path}: {where} has {row.actual_columns} fields, the "
                                f"header has {row.expected_columns} ({why})") from None
            raise

    def _frame(self, batch: Any, columns: list[str]) -> Any:
        import pandas as pd

        if not self.csv:
            return batch.to_pandas()
        out = {}
        for name in columns:
            out[name] = csv_column(batch.column(name), self.kinds.get(name, "text"))
        return pd.DataFrame(out)


def csv_column(arr: Any, kind: str) -> Any:
    """A CSV column read as text, typed as pandas typed it in the sample: ``number``
    (float64, NaN where missing or not a number), ``bool`` or ``text``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "number":
        try:
            return pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # stray words: coerced
            return pd.Series(arr.to_pandas()).astype(object)
    text = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
    if kind == "bool":
        truth = {**{w: True for w in TRUE_WORDS}, **{w: False for w in FALSE_WORDS}}
        return text.map(lambda v: truth.get(v, v) if v is not None else None)
    return text


def open_source(path: Path, sep: str | None) -> Source:
    """Open ``path`` (CSV or Parquet) for batches, checking its column names."""
    suffix = table_suffix(path)
    csv = suffix in CSV_SUFFIXES
    if csv:
        sep = sep or ("\t" if suffix.startswith(".tsv") else ",")
    try:
        if csv:
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16),
                                   parse_options=pcsv.ParseOptions(
                                       delimiter=sep, invalid_row_handler=lambda r: "skip"))
            names = [str(n) for n in reader.schema.names]
            reader.close()
        else:
            import pyarrow.parquet as pq

            names = [str(n) for n in pq.read_schema(path).names]
    except Exception as exc:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty") from exc
        raise DataError(f"{path}: cannot read the table (corrupt or truncated?): "
                        f"{type(exc).__name__}: {exc}") from exc
    _check_names(path, names)
    return Source(path, csv, sep or ",", names, BATCH_ROWS)


def sample_frame(src: Source, columns: list[str]) -> Any:
    """The first ``SAMPLE_ROWS`` rows, read as the in-memory reader reads them."""
    import pandas as pd

    if src.csv:
        # Arrow reads the sample first: a ragged row there gets its line-numbered error
        n = 0
        for batch in src._csv(columns or src.names[:1]):
            n += batch.num_rows
            if n >= SAMPLE_ROWS:
                break
        try:
            frame = pd.read_csv(src.path, sep=src.sep, nrows=SAMPLE_ROWS, usecols=columns)
        except Exception as exc:
            raise DataError(f"{src.path}: cannot read the table: {type(exc).__name__}: "
                            f"{exc}") from exc
        src.kinds = {c: "bool" if pd.api.types.is_bool_dtype(frame[c]) else
                     "number" if pd.api.types.is_numeric_dtype(frame[c]) else "text"
                     for c in frame.columns}
        return frame
    parts, n = [], 0
    for part in src.batches(columns):
        parts.append(part)
        n += len(part)
        if n >= SAMPLE_ROWS:
            break
    return pd.concat(parts, ignore_index=True).iloc[:SAMPLE_ROWS]


# -- the two passes --------------------------------------------------------------------

def _numbers(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (NaN where missing or not a number) and where it held a word."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(col), bool)
    converted = pd.to_numeric(col, errors="coerce")
    stray = (converted.isna() & col.notna()).to_numpy()
    return converted.to_numpy(dtype=np.float64, na_value=np.nan), stray


@dataclass
class Settings:
    """What the dataset was asked for (the part of its arguments the reading depends on)."""

    target: str | None
    group: str | None
    drop: list[str]
    categorical: list[str]
    numeric: list[str]
    task: str
    max_categories: int
    clip: float
    state: dict[str, Any] | None


@dataclass
class Survey:
    """What the first pass learns: rows kept, numeric statistics, category counts, stray
    words per column (count, present, first row and value), the target's values."""

    rows: int = 0
    dropped: int = 0
    moments: dict[str, Moments] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    strays: dict[str, list[Any]] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    target_ints: bool = True
    target_values: set[float] = field(default_factory=set)


def _row_error(source: str, name: str, row: int, value: Any, n_bad: int, n_present: int
               ) -> DataError:
    return DataError(f"{source}: column {name!r} is numeric in the schema but row {row} "
                     f"holds {value!r} ({n_bad} of {n_present} entries are not numbers)")


def _target_rows(frame: Any, target: str | None) -> np.ndarray | None:
    """Rows whose target is present (``None``: no target column, all rows kept)."""
    if not target or target not in frame.columns:
        return None
    return frame[target].notna().to_numpy()


def survey(src: Source, schema: list[dict[str, Any]], s: Settings, task: str,
           columns: list[str]) -> Survey:
    """Pass 1 over all batches (see the module docstring)."""
    out = Survey()
    source = str(src.path)
    have = set(src.names)
    for feat in schema:
        if feat["name"] not in have:
            continue
        if feat["kind"] == "numeric":
            out.moments[feat["name"]] = Moments()
            out.strays[feat["name"]] = [0, 0, None, None]
        else:
            out.counts[feat["name"]] = Counter()
    for frame in src.batches(columns):
        keep = _target_rows(frame, s.target)
        if keep is not None and not keep.all():
            out.dropped += int((~keep).sum())
            frame = frame[keep].reset_index(drop=True)
        for name, mom in out.moments.items():
            values, stray = _numbers(frame[name])
            info = out.strays[name]
            info[1] += int(frame[name].notna().sum())
            if stray.any():
                first = int(np.flatnonzero(stray)[0])
                if info[2] is None:
                    info[2], info[3] = out.rows + first, frame[name].iloc[first]
                info[0] += int(stray.sum())
            if np.isinf(values).any():
                row = out.rows + int(np.flatnonzero(np.isinf(values))[0])
                raise DataError(f"{source}: column {name!r} holds an infinite value "
                                f"(row {row})")
            mom.add(values)
        for name, counter in out.counts.items():
            counter.update(category_strings(frame[name]).dropna().value_counts(sort=False)
                           .to_dict())
        if s.target and s.target in frame.columns and len(frame):
            _survey_target(out, frame[s.target], s.target, task, source)
        out.rows += len(frame)
    if out.rows == 0:
        raise DataError(f"{source}: the table has no rows" if not out.dropped else
                        f"{source}: the target column {s.target!r} is empty")
    return out


def _survey_target(out: Survey, col: Any, name: str, task: str, source: str) -> None:
    """The target's part of pass 1: a regression target's stray words raise; classes are
    collected; for ``task="auto"`` on numbers, whether they are few whole numbers."""
    if task == "regression":
        _, stray = _numbers(col)
        if stray.any():
            row = int(np.flatnonzero(stray)[0])
            raise _row_error(source, name, out.rows + row, col.iloc[row], int(stray.sum()),
                             int(col.notna().sum()))
    elif task == "auto":  # numbers (text and booleans are classes): decided after the pass
        values, _ = _numbers(col)
        values = values[~np.isnan(values)]
        out.target_ints &= bool(np.allclose(values, np.round(values)))
        if len(out.target_values) <= MAX_CLASSES:
            out.target_values.update(np.unique(values).tolist())
    else:
        out.labels.update(category_strings(col).dropna().tolist())


def check_strays(found: Survey, source: str) -> list[str]:
    """Stray words over the whole file: too many raise, a few are a warning (returned)."""
    notes = []
    for name, (n_bad, n_present, row, value) in found.strays.items():
        if not n_bad:
            continue
        if n_bad > STRAY_FRACTION * n_present:
            raise _row_error(source, name, row, value, n_bad, n_present)
        notes.append(f"{source}: column {name!r}: {n_bad} of {n_present} entries are not "
                     f"numbers (first {value!r} on row {row}), read as missing values; set "
                     f"dataset.categorical=[{name!r}] to keep the column as categories")
    return notes


# -- the cache and the dataset's arrays ------------------------------------------------

def cache_key(path: Path, sep: str | None, s: Settings) -> str:
    """A hash of the file (resolved path, size, mtime) and of the reading settings."""
    st = path.stat()
    blob = json.dumps({"path": str(path.resolve()), "size": st.st_size,
                       "mtime": st.st_mtime_ns, "sep": sep, "format": CACHE_FORMAT,
                       "sample": SAMPLE_ROWS, "schema": SCHEMA_VERSION,
                       "settings": s.__dict__}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


class _NpyWriter:
    """Appends rows to an ``.npy`` file of known shape, without mapping it in memory."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any):
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        np.lib.format.write_array_header_2_0(self.handle, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False, "shape": shape})
        self.dtype = np.dtype(dtype)

    def write(self, arr: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(arr, self.dtype).tobytes())

    def close(self) -> None:
        self.handle.close()


@dataclass
class Streamed:
    """A streamed table's encoded arrays (memory-mapped) and what the dataset keeps."""

    x: np.ndarray
    missing: np.ndarray
    y: np.ndarray | None
    group: np.ndarray | None
    state: dict[str, Any]
    folder: Path

    def rows(self) -> dict[str, RowFile]:
        """Row readers of the arrays present (see :class:`RowFile`)."""
        return {k: RowFile(self.folder / f"{k}.npy", v) for k, v in
                (("x", self.x), ("missing", self.missing), ("y", self.y),
                 ("group", self.group)) if v is not None}


class RowFile:
    """Rows of an ``.npy`` file read one by one with ``pread``, for ``__getitem__``.

    Not through the memory map: on Linux every page fault of a file mapping also maps the
    cached pages around it (fault-around), so random rows would soon count the whole file
    in the process's resident memory. A ``pread`` copies just the row. The file is opened
    once per process (DataLoader workers included)."""

    def __init__(self, path: Path, arr: np.ndarray):
        self.path, self.offset = str(path), int(getattr(arr, "offset", 0))
        self.shape, self.dtype = tuple(arr.shape[1:]), arr.dtype
        self.size = int(np.prod(self.shape, dtype=np.int64)) * arr.dtype.itemsize
        self._fd: int | None = None
        self._pid = -1

    def _file(self) -> int:
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd  # type: ignore[return-value]

    def __getitem__(self, i: int) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        got = os.preadv(self._file(), [memoryview(out.reshape(-1)).cast("B")],  # type: ignore[arg-type]
                        self.offset + int(i) * self.size)
        if got != self.size:
            raise DataError(f"{self.path}: row {i} is cut off (the cache file shrank?)")
        return out

    def take(self, indices: Any) -> np.ndarray:
        """Rows ``indices`` stacked ``[n, ...]``: read in sorted order, one ``preadv`` per
        run of consecutive rows into one buffer, then put back in the order asked."""
        fd = self._file()
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        order = np.argsort(idx, kind="stable")
        rows = idx[order]
        got_rows = np.empty((len(idx), *self.shape), self.dtype)
        buf = memoryview(got_rows.reshape(-1)).cast("B")  # type: ignore[arg-type]
        size = self.size
        # a run ends where the next sorted row is not the following one
        breaks = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
        for start, stop in zip([0, *breaks], [*breaks, len(rows)]):
            want = (stop - start) * size
            got = os.preadv(fd, [buf[start * size:stop * size]],
                            self.offset + int(rows[start]) * size)
            if got != want:
                raise DataError(f"{self.path}: rows from {int(rows[start])} are cut off "
                                f"(the cache file shrank?)")
        out = np.empty_like(got_rows)
        out[order] = got_rows
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


def load_cache(folder: Path) -> Streamed | None:
    """The arrays of a complete cache folder, or None when it is absent or unreadable
    (then it is removed, with a warning, and built again)."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        n, f = int(meta["rows"]), int(meta["features"])
        arrays = {}
        for name in ("x", "missing", "y", "group"):
            if name in ("y", "group") and not meta[name]:
                arrays[name] = None
                continue
            arr = np.load(folder / f"{name}.npy", mmap_mode="c")
            want = (n, f) if name in ("x", "missing") else (n,)
            if arr.shape != want:
                raise ValueError(f"{name}.npy has shape {arr.shape}, expected {want}")
            arrays[name] = arr
        for note in meta.get("warnings", []):
            warn(note)
        return Streamed(arrays["x"], arrays["missing"], arrays["y"], arrays["group"],
                        meta["state"], folder)
    except Exception as exc:  # noqa: BLE001 - any damage: rebuild
        warn(f"{folder}: the table cache is unreadable ({type(exc).__name__}: {exc}); "
             f"reading the table again")
        shutil.rmtree(folder, ignore_errors=True)
        return None


def open_streamed(path: Path, sep: str | None, s: Settings, cache_dir: Any = None
                  ) -> Streamed:
    """The encoded arrays of a CSV/Parquet file: from the cache when built, else read in
    two passes and written there first (see the module docstring)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = root / cache_key(path, sep, s)
    found = load_cache(folder)
    if found is not None:
        return found
    shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder left by hand
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        notes = _build(path, sep, s, tmp)
        for note in notes:
            warn(note)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: use its folder
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    found = load_cache(folder)
    if found is None:  # pragma: no cover - just written
        raise DataError(f"{folder}: the table cache could not be read back")
    return found


def _schema(src: Source, s: Settings, columns_all: list[str]) -> tuple[Any, list[dict]]:
    """The sample and the schema: the run's (``state``) or kinds inferred on the sample
    (statistics and vocabularies filled in after the first pass)."""
    source = str(src.path)
    if s.state and s.state.get("features"):
        return sample_frame(src, columns_all), saved_schema(source, s.state, set(src.names))
    exclude = {c for c in (s.target, s.group) if c} | set(s.drop)
    features = [c for c in src.names if c not in exclude]
    if not features:
        raise DataError(f"{source}: no feature columns (all are target/group/drop)")
    frame = sample_frame(src, columns_all)
    keep = _target_rows(frame, s.target)
    if keep is not None:
        frame = frame[keep].reset_index(drop=True)
    schema = [{"name": c, "kind": column_kind(frame[c], c, s.categorical, s.numeric,
                                              src.csv)} for c in features]
    return frame, schema


def _build(path: Path, sep: str | None, s: Settings, folder: Path) -> list[str]:
    """Both passes; the arrays and ``meta.json`` are written into ``folder``."""
    src = open_source(path, sep)
    source = str(path)
    for kind, name in (("target", s.target), ("group", s.group)):
        if name and name not in src.names and not s.state:
            raise DataError(f"{source}: no {kind} column {name!r}; columns are "
                            f"{src.names[:20]}")
    wanted = ({f for f in src.names if f not in set(s.drop)}
              | {c for c in (s.target, s.group) if c})
    columns = [c for c in src.names if c in wanted]
    sample, schema = _schema(src, s, columns)
    columns = [c for c in columns if c in {f["name"] for f in schema}
               or c in (s.target, s.group)]
    target_state = (s.state or {}).get("target") or None
    has_target = bool(s.target and s.target in src.names)
    task = s.task if s.task != "auto" else (target_state["task"] if target_state else "auto")
    if has_target and task == "auto" and not pd_numeric(sample[s.target]):
        task = "classification"  # text or booleans (see schema.target_task)
    found = survey(src, schema, s, task, columns)
    notes = check_strays(found, source)
    if found.dropped:
        notes.insert(0, f"{source}: dropped {found.dropped} rows whose target "
                        f"{s.target!r} is missing")
    if not (s.state and s.state.get("features")):
        schema = [categorical_feature(f["name"], dict(found.counts[f["name"]]),
                                      s.max_categories) if f["kind"] == "categorical"
                  else found.moments[f["name"]].feature(f["name"]) for f in schema]
    if has_target and task == "auto":
        import pandas as pd

        few = found.target_ints and len(found.target_values) <= MAX_CLASSES
        task = "classification" if few else "regression"
        if few:
            found.labels = set(category_strings(pd.Series(sorted(found.target_values)))
                               .dropna())
    classes_all: list[str] = []
    new_target = target_state
    if has_target and task == "classification":
        classes = list(target_state["classes"]) if target_state and \
            target_state.get("task") == "classification" else []
        if not classes:
            classes = sorted(found.labels, key=class_key)
        extra = sorted(found.labels - set(classes), key=class_key)
        if extra:
            notes.append(f"{source}: target classes unseen in training: {extra[:10]}")
        classes_all = classes + extra
        new_target = {"name": s.target, "task": "classification", "classes": classes}
    elif has_target:
        new_target = {"name": s.target, "task": "regression"}
    state = {"version": SCHEMA_VERSION, "features": schema, "target": new_target}
    _encode(src, schema, s, columns, found.rows, task if has_target else None,
            classes_all, folder)
    meta = {"rows": found.rows, "features": len(schema), "state": state,
            "y": has_target, "group": bool(s.group and s.group in src.names),
            "warnings": notes, "source": source}
    (folder / "meta.json").write_text(json.dumps(meta))
    return notes


def pd_numeric(col: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))


def _encode(src: Source, schema: list[dict[str, Any]], s: Settings, columns: list[str],
            rows: int, task: str | None, classes: list[str], folder: Path) -> None:
    """Pass 2: encode every batch and append it to the ``.npy`` files."""
    from .datasets import encode_categories, encode_numbers

    n_feat = len(schema)
    writers = {"x": _NpyWriter(folder / "x.npy", (rows, n_feat), np.float32),
               "missing": _NpyWriter(folder / "missing.npy", (rows, n_feat), bool)}
    if task is not None:
        writers["y"] = _NpyWriter(folder / "y.npy", (rows,),
                                  np.int64 if task == "classification" else np.float32)
    has_group = bool(s.group and s.group in src.names)
    if has_group:
        writers["group"] = _NpyWriter(folder / "group.npy", (rows,), np.int64)
    index = {c: i for i, c in enumerate(classes)}
    groups: dict[Any, int] = {}
    written = 0
    try:
        for frame in src.batches(columns):
            keep = _target_rows(frame, s.target)
            if keep is not None and not keep.all():
                frame = frame[keep].reset_index(drop=True)
            n = len(frame)
            if not n:
                continue
            x = np.zeros((n, n_feat), np.float32)
            miss = np.ones((n, n_feat), bool)
            for j, feat in enumerate(schema):
                if feat["name"] not in frame.columns:
                    continue
                col = frame[feat["name"]]
                if feat["kind"] == "numeric":
                    x[:, j], miss[:, j] = encode_numbers(_numbers(col)[0], feat, s.clip)
                else:
                    x[:, j], miss[:, j] = encode_categories(category_strings(col), feat)
            writers["x"].write(x)
            writers["missing"].write(miss)
            if task == "classification":
                writers["y"].write(category_strings(frame[s.target]).map(index)
                                   .to_numpy(dtype=np.int64))
            elif task == "regression":
                writers["y"].write(_numbers(frame[s.target])[0].astype(np.float32))
            if has_group:
                keys = category_strings(frame[s.group]).tolist()
                writers["group"].write(np.fromiter(
                    (groups.setdefault(k, len(groups)) for k in keys), np.int64, n))
            written += n
    finally:
        for w in writers.values():
            w.close()
    if written != rows:
        raise DataError(f"{src.path}: the file changed while it was read ({rows} rows, "
                        f"then {written})")

