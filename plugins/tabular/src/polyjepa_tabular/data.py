"""Readers for tables: CSV/TSV/Parquet files, pandas DataFrames, 2-D arrays, sklearn sets.

Every table becomes one token per feature. A sample is a dict with

- ``x`` ``float32 [F]``: standardised numbers for numeric features, category ids (as
  floats) for categorical features, ``0`` where the value is missing;
- ``missing`` ``bool [F]``: where the value is missing (the encoder gives these tokens a
  learned missing-value embedding; nothing is imputed);
- ``y`` (optional): class id (int64) or regression target (float32) of the ``target``
  column; ``group`` (optional): integer id of the ``group`` column;
- ``valid`` (only with ``missing="mask"``): False for missing features, so that they are
  left out of attention, masking and pooling instead of being embedded.

The schema (feature kinds, category vocabularies, mean/std of numeric columns, the
target's classes) is inferred on the training data, kept in ``state`` and reused through
``state=`` on new data: unseen categories map to the "unknown" id 0, features absent from
the new data are all-missing, extra columns are ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import ArrayDataset, DataError
from polyjepa import warn as _warn

SCHEMA_VERSION = 1
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zip")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
MAX_CLASSES = 50  # integer targets with more distinct values are treated as regression
# a text column whose non-number entries are at most this fraction of its values is
# numeric with those entries missing (a stray "abc" or "?" in a column of numbers)
STRAY_FRACTION = 0.05


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def read_frame(data: Any, sep: str | None = None) -> tuple[Any, str, np.ndarray | None]:
    """A pandas DataFrame, a source name and, for CSV files, each row's line number.

    The line numbers (``None`` for other sources) let messages about a row name the
    line of the file a user would open to fix it.
    """
    import pandas as pd

    if data is None:
        raise DataError("the 'tabular.table' dataset needs data: a CSV/TSV/Parquet file, a "
                        "DataFrame, a 2-D array or the name of a bundled scikit-learn table "
                        f"({', '.join(SKLEARN_SETS)})")
    if isinstance(data, pd.DataFrame):
        return data, "<DataFrame>", None
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise DataError(f"<array>: a table needs a 2-D array [rows, features], got "
                            f"shape {data.shape}")
        frame = pd.DataFrame(data, columns=[f"f{i}" for i in range(data.shape[1])])
        return frame, "<array>", None
    if isinstance(data, dict):
        try:
            return pd.DataFrame({k: np.asarray(v) for k, v in data.items()}), "<dict>", None
        except ValueError as exc:
            raise DataError(f"<dict>: columns cannot form a table: {exc}") from exc
    if isinstance(data, str) and ("\n" in data or len(data) > 4096):
        # what a run saves for a table that was given in memory (a DataFrame's text)
        raise DataError(f"{data.splitlines()[0][:60].strip()!r}...: not a path to a table; a "
                        "table given in memory (DataFrame, array) is not saved with a run, "
                        "so pass it again as data=")
    path = Path(data)
    try:
        exists = path.exists()
    except OSError as exc:
        raise DataError(f"{str(data)[:80]}: not a readable path: {exc}") from exc
    if not exists:
        hint = "" if _suffix(path) else \
            f" (nor a bundled scikit-learn table: {', '.join(SKLEARN_SETS)})"
        raise DataError(f"{path}: no such file{hint}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; 'tabular.table' reads one CSV/TSV/Parquet file")
    suffix = _suffix(path)
    lines = None
    try:
        if suffix in PARQUET_SUFFIXES:
            _check_parquet_names(path)
            frame = pd.read_parquet(path)
        elif suffix in CSV_SUFFIXES:
            if sep is None:
                sep = "\t" if suffix.startswith(".tsv") else ","
            engine = "python" if len(sep) > 1 else "c"  # several characters: a regex
            lines = check_csv_rows(path, suffix, sep)
            if lines is None:  # the row check could not run: at least check the header
                header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str,
                                     engine=engine)
                _check_names(path, [str(v) for v in header.iloc[0] if isinstance(v, str)])
            frame = pd.read_csv(path, sep=sep, engine=engine)
        else:
            raise DataError(f"{path}: unknown table format {suffix!r}; use one of "
                            f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}")
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except Exception as exc:
        raise DataError(f"{path}: cannot read the table (corrupt or truncated?): "
                        f"{type(exc).__name__}: {exc}") from exc
    if lines is not None and len(lines) != len(frame):
        lines = None  # the two parsers disagree on what a row is: report row numbers
    return frame, str(path), lines


def _check_names(path: Path, names: list[str]) -> None:
    """Duplicate column names are an error: pandas would rename the second ``a`` to
    ``a.1`` and the run's schema would depend on that invention."""
    from collections import Counter

    dup = sorted(n for n, k in Counter(names).items() if n and k > 1)
    if dup:
        raise DataError(f"{path}: duplicate column names {dup}")


def _check_parquet_names(path: Path) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # another Parquet engine reads the file; pandas reports duplicates
        return
    try:
        names = pq.read_schema(path).names
    except Exception:  # noqa: BLE001 - unreadable files are reported by the reader below
        return
    _check_names(path, [str(n) for n in names])


def _open_text(path: Path, suffix: str) -> Any:
    """A text handle on a (possibly compressed) CSV, as pandas would decode it, or None."""
    import io

    kw: dict[str, Any] = {"encoding": "utf-8-sig", "errors": "replace", "newline": ""}
    if suffix.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", **kw)
    if suffix.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rt", **kw)
    if suffix.endswith(".zip"):
        import zipfile

        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:  # pandas refuses these itself
            archive.close()
            return None
        return io.TextIOWrapper(archive.open(names[0]), **kw)
    return open(path, **kw)


def check_csv_rows(path: Path, suffix: str, sep: str) -> np.ndarray | None:
    """The line number of every data row of a CSV file, after checking its shape.

    A row with fewer or more fields than the header raises :class:`DataError` with its
    line number. CSV (RFC 4180) has one record shape per file, and a ragged row is what a
    file cut off mid-write or an unquoted separator inside a value leaves behind; pandas
    would pad a short row with missing values and shift every value of a long one (or take
    the first column as an index), so the table would be trained on silently wrong. A
    file that really is ragged can be fixed at the source or read into a DataFrame first.
    Duplicate header names raise too. Blank lines are skipped, as pandas does.
    Returns None where the check cannot run (a separator of several characters, i.e. a
    regular expression for pandas, or a file the ``csv`` module cannot tokenise); pandas
    then reads the file unchecked.
    """
    import csv
    from array import array

    if len(sep) != 1:
        return None
    try:
        handle = _open_text(path, suffix)
    except Exception:  # noqa: BLE001 - unreadable files are reported by pandas
        return None
    if handle is None:
        return None
    lines = array("q")
    header: list[str] | None = None
    line = 1
    try:
        with handle:
            reader = csv.reader(handle, delimiter=sep)
            for row in reader:
                start, line = line, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    header = row
                    _check_names(path, header)
                    continue
                if len(row) != len(header):
                    why = ("a cut-off or incomplete line?" if len(row) < len(header)
                           else f"a {sep!r} inside an unquoted value?")
                    raise DataError(f"{path}: line {start} has {len(row)} fields, the header "
                                    f"has {len(header)} ({why})")
                lines.append(start)
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - csv.Error, decompression errors: pandas reports them
        return None
    return np.frombuffer(lines, dtype=np.int64) if lines else np.zeros(0, np.int64)


def _is_categorical_dtype(series: Any) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _category_strings(series: Any) -> Any:
    """Non-missing values as strings (so CSV and Parquet give the same vocabulary)."""
    def text(v: Any) -> str:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return series.map(lambda v: None if _isna(v) else text(v))


def _isna(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _row(i: int, lines: np.ndarray | None) -> str:
    """Where row ``i`` (0-based, of the frame) is: a file's line, else the row index."""
    return f"line {int(lines[i])}" if lines is not None else f"row {i}"


def _stray_numbers(col: Any, from_text: bool) -> Any:
    """The column as numbers if it is numeric but for a few stray entries, else None.

    A CSV column that holds numbers and, say, one ``abc`` or ``?`` is read by pandas as
    text; taken as categorical it would turn every distinct number into a category. Text
    files have no types, so such a column counts as numeric when at most
    ``STRAY_FRACTION`` of its entries are not numbers (they become missing values, with
    a warning). From a typed source (a DataFrame, Parquet) a text column is text by
    choice (codes, zip codes); there only a column that mixes real numbers with text is
    treated this way.
    """
    import pandas as pd

    present = col[col.notna()]
    if len(present) == 0:
        return None
    if not from_text and pd.api.types.infer_dtype(present, skipna=True) not in (
            "mixed", "mixed-integer", "mixed-integer-float", "integer", "floating"):
        return None
    converted = pd.to_numeric(col, errors="coerce")
    stray = int((converted.isna() & col.notna()).sum())
    return converted if stray <= STRAY_FRACTION * len(present) else None


def infer_schema(frame: Any, source: str, features: list[str], categorical: list[str],
                 numeric: list[str], max_categories: int, from_text: bool = False,
                 lines: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Kinds, vocabularies and statistics of the feature columns of a training table.

    ``from_text``: the table was parsed from a text file (see :func:`_stray_numbers`).
    """
    schema = []
    for name in features:
        col = frame[name]
        kind = "categorical" if name in categorical or (
            name not in numeric and _is_categorical_dtype(col)
            and _stray_numbers(col, from_text) is None) else "numeric"
        if kind == "categorical":
            values = _category_strings(col).dropna()
            counts = values.value_counts(sort=False)
            # most frequent first, ties by name: a deterministic vocabulary
            order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            cats = [k for k, _ in order[:max_categories]]
            schema.append({"name": str(name), "kind": "categorical", "categories": cats})
        else:
            values = _numeric_column(col, name, source, lines, warn=False)
            finite = values[~np.isnan(values)]
            mean = float(finite.mean()) if finite.size else 0.0
            std = float(finite.std()) if finite.size else 1.0
            schema.append({"name": str(name), "kind": "numeric", "mean": mean,
                           "std": std if std > 1e-8 else 1.0})
    return schema


def _numeric_column(col: Any, name: str, source: str, lines: np.ndarray | None = None,
                    warn: bool = True, strays: bool = True) -> np.ndarray:
    """A numeric column as float64 with NaN where missing.

    Entries that are not numbers become missing (with a warning naming the column, their
    count and the first one's line) when they are at most ``STRAY_FRACTION`` of the
    column; more of them mean the column is not numeric at all, which raises, as does
    any of them with ``strays=False`` (a regression target, which has no missing value).
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(col, errors="coerce")
        bad = (converted.isna() & col.notna()).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            n_bad, n_present = int(bad.sum()), int(col.notna().sum())
            if n_bad > STRAY_FRACTION * n_present or not strays:
                raise DataError(f"{source}: column {name!r} is numeric in the schema but "
                                f"{_row(row, lines)} holds {col.iloc[row]!r} ({n_bad} of "
                                f"{n_present} entries are not numbers)")
            if warn:
                _warn(f"{source}: column {name!r}: {n_bad} of {n_present} entries "
                      f"are not numbers (first {col.iloc[row]!r} on "
                      f"{_row(row, lines)}), read as missing values; set "
                      f"dataset.categorical=[{name!r}] to keep the column as "
                      f"categories")
        values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise DataError(f"{source}: column {name!r} holds an infinite value "
                        f"({_row(row, lines)})")
    return values


def _target_task(col: Any) -> str:
    import pandas as pd

    if _is_categorical_dtype(col):
        return "classification"
    values = col.dropna().to_numpy(dtype=np.float64) if not pd.api.types.is_bool_dtype(col) \
        else col.dropna().astype(float).to_numpy()
    if values.size == 0:
        return "classification"
    if not np.allclose(values, np.round(values)) or len(np.unique(values)) > MAX_CLASSES:
        return "regression"
    return "classification"


class TableDataset(ArrayDataset):
    """A table read into per-feature tokens (see the module docstring).

    ``data``: a CSV/TSV/Parquet path, a DataFrame, a 2-D array, a dict of columns, or the
    name of a bundled scikit-learn table (``"wine"``, ``"sklearn:wine"``; label ``target``).
    Arguments: ``target`` (label column), ``group`` (column of group ids for group-wise
    evaluation splits), ``drop`` (columns to ignore), ``categorical`` / ``numeric`` (force a
    column's kind; by default numbers are numeric and everything else categorical; a CSV
    column of numbers with a few stray words is numeric, those entries missing),
    ``task`` (``"auto"``, ``"classification"`` or ``"regression"`` for the target),
    ``max_categories`` (vocabulary cap per column; rarer values become "unknown"),
    ``missing`` (``"embed"``: learned missing embedding; ``"mask"``: missing features are
    invalid tokens), ``clip`` (bound on standardised numbers), ``sep`` (CSV separator) and
    ``state`` (the schema of a previous run).
    """

    def __init__(self, data: Any = None, target: str | None = None, group: str | None = None,
                 drop: list[str] | None = None, categorical: list[str] | None = None,
                 numeric: list[str] | None = None, task: str = "auto",
                 max_categories: int = 1000, missing: str = "embed", clip: float = 10.0,
                 sep: str | None = None, state: dict[str, Any] | None = None):
        bundled = bundled_name(data)
        if bundled is not None:
            # a bundled scikit-learn table by name: its label column is "target"
            frame, source, lines = sklearn_frame(bundled), f"sklearn:{bundled}", None
            target = target or "target"
            if task == "auto":
                task = SKLEARN_SETS[bundled][1]
        else:
            frame, source, lines = read_frame(data, sep)
        if missing not in ("embed", "mask"):
            raise DataError(f"{source}: missing must be 'embed' or 'mask', got {missing!r}")
        if task not in ("auto", "classification", "regression"):
            raise DataError(f"{source}: task must be auto, classification or regression, "
                            f"got {task!r}")
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        if len(frame) == 0:
            raise DataError(f"{source}: the table has no rows")
        if frame.columns.duplicated().any():
            dup = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise DataError(f"{source}: duplicate column names {dup}")
        for kind, names in (("target", [target] if target else []),
                            ("group", [group] if group else [])):
            for name in names:
                if name not in frame.columns and not state:
                    raise DataError(f"{source}: no {kind} column {name!r}; columns are "
                                    f"{list(frame.columns)[:20]}")
        self.source = source
        labelled = bool(target) and target in frame.columns
        if labelled and frame[target].isna().any():
            n_bad = int(frame[target].isna().sum())
            if n_bad == len(frame):
                raise DataError(f"{source}: the target column {target!r} is empty")
            _warn(f"{source}: dropped {n_bad} rows whose target {target!r} is missing")
            keep = frame[target].notna().to_numpy()
            frame = frame[keep].reset_index(drop=True)
            lines = None if lines is None else lines[keep]

        exclude = {c for c in (target, group) if c} | {str(c) for c in (drop or [])}
        if state and state.get("features"):
            if int(state.get("version", SCHEMA_VERSION)) != SCHEMA_VERSION:
                raise DataError(f"{source}: schema version {state.get('version')} is not "
                                f"supported (expected {SCHEMA_VERSION})")
            schema = [dict(f) for f in state["features"]]
            absent = [f["name"] for f in schema if f["name"] not in frame.columns]
            if len(absent) == len(schema):
                raise DataError(f"{source}: none of the {len(schema)} feature columns of the "
                                f"run's schema are present (e.g. {absent[:5]})")
            if absent:
                _warn(f"{source}: {len(absent)} feature column(s) absent, treated as "
                      f"missing: {absent[:10]}")
        else:
            features = [c for c in frame.columns if c not in exclude]
            if not features:
                raise DataError(f"{source}: no feature columns (all are target/group/drop)")
            from_text = lines is not None or _suffix(Path(source)) in CSV_SUFFIXES
            schema = infer_schema(frame, source, features, [str(c) for c in categorical or []],
                                  [str(c) for c in numeric or []], int(max_categories),
                                  from_text, lines)
        self.schema = schema
        n, f = len(frame), len(schema)
        x = np.zeros((n, f), np.float32)
        miss = np.ones((n, f), bool)
        for j, feat in enumerate(schema):
            if feat["name"] not in frame.columns:
                continue
            col = frame[feat["name"]]
            if feat["kind"] == "numeric":
                values = _numeric_column(col, feat["name"], source, lines)
                isnan = np.isnan(values)
                z = (values - feat["mean"]) / feat["std"]
                z = np.clip(z, -clip, clip) if clip else z
                x[:, j] = np.where(isnan, 0.0, z)
                miss[:, j] = isnan
            else:
                lookup = {c: i + 1 for i, c in enumerate(feat["categories"])}
                strings = _category_strings(col)
                isnan = strings.isna().to_numpy()
                ids = strings.map(lambda v, table=lookup: table.get(v, 0) if v is not None else 0)
                x[:, j] = ids.to_numpy(dtype=np.float32)
                miss[:, j] = isnan

        y = None
        target_state = (state or {}).get("target") or None
        if labelled:
            col = frame[target]
            kind = task if task != "auto" else (
                target_state["task"] if target_state else _target_task(col))
            if kind == "regression":
                y = _numeric_column(col, target, source, lines, strays=False).astype(np.float32)
                target_state = {"name": target, "task": "regression"}
            else:
                labels = _category_strings(col)
                classes = list(target_state["classes"]) if target_state and \
                    target_state.get("task") == "classification" else []
                if not classes:
                    uniq = sorted(set(labels), key=_class_key)
                    classes = uniq
                extra = sorted(set(labels) - set(classes), key=_class_key)
                if extra:
                    _warn(f"{source}: target classes unseen in training: {extra[:10]}")
                index = {c: i for i, c in enumerate(classes + extra)}
                y = labels.map(index).to_numpy(dtype=np.int64)
                target_state = {"name": target, "task": "classification", "classes": classes}
        groups = None
        if group and group in frame.columns:
            import pandas as pd

            groups = pd.factorize(frame[group].astype(str))[0].astype(np.int64)

        self.missing_mode = missing
        valid = ~miss if missing == "mask" else None
        y = None if y is None else np.array(y)  # writable copy for torch
        super().__init__(x, y, valid, groups, source=source)
        self.missing = torch.as_tensor(miss)
        self.state = {"version": SCHEMA_VERSION, "features": schema, "target": target_state}
        self.task = (target_state or {}).get("task")
        self.cardinalities = [len(s["categories"]) + 1 if s["kind"] == "categorical" else 0
                              for s in schema]
        self.encoder_hints = {"n_features": f, "cardinalities": self.cardinalities}
        self.feature_names = [s["name"] for s in schema]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["missing"] = self.missing[i]
        return item

    def raw_features(self, kind: str = "dense") -> tuple[np.ndarray, np.ndarray]:
        """The table as a plain matrix for non-learned baselines.

        ``kind="dense"``: standardised numbers (0 where missing), one-hot categories
        (column 0 = unknown) and a missing indicator per feature; for linear models and MLPs.
        ``kind="tree"``: numbers with NaN where missing and category ids (NaN where
        missing), plus a boolean mask of the categorical columns; for gradient boosting.
        Returns ``(matrix, categorical_mask)``.
        """
        x = self.x.numpy().astype(np.float64)
        miss = self.missing.numpy()
        cat = np.array([c > 0 for c in self.cardinalities], bool)
        if kind == "tree":
            return np.where(miss, np.nan, x), cat
        if kind != "dense":
            raise ValueError(f"kind must be 'dense' or 'tree', got {kind!r}")
        parts, mask = [], []
        for j, card in enumerate(self.cardinalities):
            if card:
                ids = x[:, j].astype(np.int64)
                onehot = np.zeros((len(x), card))
                onehot[np.arange(len(x)), ids] = 1.0
                onehot[miss[:, j]] = 0.0
                parts.append(onehot)
                mask += [True] * card
            else:
                parts.append(np.where(miss[:, j], 0.0, x[:, j])[:, None])
                mask.append(False)
        if miss.any():
            parts.append(miss[:, miss.any(axis=0)].astype(np.float64))
            mask += [False] * int(miss.any(axis=0).sum())
        return np.concatenate(parts, axis=1), np.array(mask, bool)


def _class_key(v: Any) -> tuple[int, float, str]:
    try:
        num = float(v)
        return (0, num, "") if math.isfinite(num) else (1, 0.0, str(v))
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


SKLEARN_SETS = {
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
    "linnerud": ("load_linnerud", "regression"),
}


def bundled_name(data: Any) -> str | None:
    """The bundled table that ``data`` names (``"wine"`` or ``"sklearn:wine"``), if any.

    A plain name counts only when no file of that name exists, so a local file called
    ``wine`` is still read as a file.
    """
    if not isinstance(data, str):
        return None
    if data.startswith("sklearn:"):
        name = data.split(":", 1)[1]
        if name not in SKLEARN_SETS:
            raise DataError(f"{data}: unknown bundled table; choose one of "
                            f"{', '.join(SKLEARN_SETS)}")
        return name
    if data in SKLEARN_SETS and not Path(data).exists():
        return data
    return None


def sklearn_frame(name: str) -> Any:
    """One of scikit-learn's bundled real tables as a DataFrame with a ``target`` column.

    ``linnerud`` has three targets (weight, waist, pulse of 20 men); its ``target`` is the
    first, body weight, predicted from the three exercise counts.
    """
    import pandas as pd
    import sklearn.datasets as skd

    if name not in SKLEARN_SETS:
        raise DataError(f"sklearn:{name}: unknown bundled table; choose one of "
                        f"{', '.join(SKLEARN_SETS)}")
    loader, _ = SKLEARN_SETS[name]
    bunch = getattr(skd, loader)()
    names = getattr(bunch, "feature_names", None)
    if names is None or len(names) != bunch.data.shape[1]:
        names = [f"f{i}" for i in range(bunch.data.shape[1])]
    cols = [str(c) for c in names]
    frame = pd.DataFrame(np.asarray(bunch.data, np.float64), columns=cols)
    target = np.asarray(bunch.target)
    frame["target"] = target[:, 0] if target.ndim == 2 else target
    return frame


def sklearn_table(data: Any = None, target: str = "target", task: str | None = None,
                  group: str | None = None, drop: list[str] | None = None,
                  categorical: list[str] | None = None, numeric: list[str] | None = None,
                  max_categories: int = 1000, missing: str = "embed", clip: float = 10.0,
                  state: dict[str, Any] | None = None) -> TableDataset:
    """scikit-learn's bundled real tables: ``breast_cancer`` (default), ``wine``, ``iris``,
    ``digits`` (8x8 pixels as 64 features), ``diabetes`` and ``linnerud`` (regression).

    The other arguments are :class:`TableDataset`'s (named here, so that a misspelt one
    is a config error rather than silently ignored).
    """
    name = str(data or "breast_cancer")
    if name.startswith("sklearn:"):
        name = name.split(":", 1)[1]
    frame = sklearn_frame(name)
    ds = TableDataset(frame, target=target, task=task or SKLEARN_SETS[name][1], group=group,
                      drop=drop, categorical=categorical, numeric=numeric,
                      max_categories=max_categories, missing=missing, clip=clip, state=state)
    ds.source = f"sklearn:{name}"
    return ds
