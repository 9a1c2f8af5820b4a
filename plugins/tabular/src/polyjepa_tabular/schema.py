"""The schema of a table: each feature's kind, its categories or statistics, the target's.

Inferred on the training table and saved with a run, so new data is encoded the same
way. Text files have no types: a column of numbers with a few stray words is numeric
(those entries missing), and every kind decision is made here, in one place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polyjepa import DataError
from polyjepa import warn as _warn

SCHEMA_VERSION = 1
MAX_CLASSES = 50  # integer targets with more distinct values are treated as regression
# a text column whose non-number entries are at most this fraction of its values is
# numeric with those entries missing (a stray "abc" or "?" in a column of numbers)
STRAY_FRACTION = 0.05


def _is_categorical_dtype(series: Any) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def category_strings(series: Any) -> Any:
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
        if column_kind(col, name, categorical, numeric, from_text) == "categorical":
            counts = category_strings(col).dropna().value_counts(sort=False)
            schema.append(categorical_feature(name, dict(counts.items()), max_categories))
        else:
            moments = Moments()
            moments.add(numeric_column(col, name, source, lines, warn=False))
            schema.append(moments.feature(name))
    return schema


def column_kind(col: Any, name: str, categorical: list[str], numeric: list[str],
                from_text: bool) -> str:
    """``numeric`` or ``categorical``: forced by the user's lists, else numbers (or text
    that is numbers but for a few stray words, see :func:`_stray_numbers`) are numeric."""
    return "categorical" if name in categorical or (
        name not in numeric and _is_categorical_dtype(col)
        and _stray_numbers(col, from_text) is None) else "numeric"


def categorical_feature(name: str, counts: dict[str, int], max_categories: int
                        ) -> dict[str, Any]:
    """A categorical feature's schema from its value counts: the ``max_categories`` most
    frequent values first, ties by name (a deterministic vocabulary)."""
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"name": str(name), "kind": "categorical",
            "categories": [k for k, _ in order[:max_categories]]}


class Moments:
    """Count, mean and standard deviation of float64 values that arrive in parts.

    The finite values are cut into consecutive blocks of ``BLOCK`` values whatever the
    parts were (a table read whole, or in record batches of any size): each block's mean
    and sum of squared deviations are numpy's, and blocks are merged in order (Chan et
    al.'s pairwise update). So a table read whole and read in batches get the very same
    statistics, and one of at most ``BLOCK`` values gets exactly ``numpy.mean``/``std``.
    """

    BLOCK = 65536

    def __init__(self) -> None:
        self.n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, values: np.ndarray) -> None:
        """Add the finite entries of ``values`` (NaN, i.e. missing, is left out)."""
        v = np.asarray(values, np.float64).reshape(-1)
        v = v[np.isfinite(v)]
        if not v.size:
            return
        self._pending.append(v)
        self._n_pending += v.size
        if self._n_pending >= self.BLOCK:
            buf = np.concatenate(self._pending)
            full = (len(buf) // self.BLOCK) * self.BLOCK
            for k in range(0, full, self.BLOCK):
                self._merge(buf[k:k + self.BLOCK])
            self._pending = [buf[full:]] if full < len(buf) else []
            self._n_pending = len(buf) - full

    def _merge(self, block: np.ndarray) -> None:
        nb = block.size
        mb = block.mean()
        m2b = float(np.square(block - mb).sum())
        if self.n == 0:
            self.n, self._mean, self._m2 = nb, float(mb), m2b
            return
        n = self.n + nb
        delta = float(mb) - self._mean
        self._mean += delta * nb / n
        self._m2 += m2b + delta * delta * self.n * nb / n
        self.n = n

    def _flush(self) -> None:
        if self._n_pending:
            self._merge(np.concatenate(self._pending))
            self._pending, self._n_pending = [], 0

    def mean(self) -> float:
        self._flush()
        return float(self._mean) if self.n else 0.0

    def std(self) -> float:
        """The population standard deviation (as ``numpy.std``), 1.0 when undefined."""
        self._flush()
        return float(np.sqrt(self._m2 / self.n)) if self.n else 1.0

    def feature(self, name: str) -> dict[str, Any]:
        """A numeric feature's schema: its mean and std (1.0 for a constant column)."""
        std = self.std()
        return {"name": str(name), "kind": "numeric", "mean": self.mean(),
                "std": std if std > 1e-8 else 1.0}


def numeric_column(col: Any, name: str, source: str, lines: np.ndarray | None = None,
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


def target_task(col: Any) -> str:
    """``classification`` or ``regression`` for a target column without a declared task:
    text and whole numbers with at most ``MAX_CLASSES`` values are classes."""
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


def class_key(v: Any) -> tuple[int, float, str]:
    """Sort key of class names: numbers in numeric order (``"2"`` before ``"10"``), then
    text, so the class ids do not depend on how a file spells its labels."""
    try:
        num = float(v)
        return (0, num, "") if math.isfinite(num) else (1, 0.0, str(v))
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def saved_schema(source: str, state: dict[str, Any], names: Any) -> list[dict[str, Any]]:
    """A run's saved feature schema for a table with columns ``names``: features the
    table lacks become all-missing (with a warning); none at all is an error."""
    if int(state.get("version", SCHEMA_VERSION)) != SCHEMA_VERSION:
        raise DataError(f"{source}: schema version {state.get('version')} is not "
                        f"supported (expected {SCHEMA_VERSION})")
    schema = [dict(f) for f in state["features"]]
    absent = [f["name"] for f in schema if f["name"] not in names]
    if len(absent) == len(schema):
        raise DataError(f"{source}: none of the {len(schema)} feature columns of the "
                        f"run's schema are present (e.g. {absent[:5]})")
    if absent:
        _warn(f"{source}: {len(absent)} feature column(s) absent, treated as "
              f"missing: {absent[:10]}")
    return schema
