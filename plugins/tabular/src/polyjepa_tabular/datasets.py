"""Table datasets: CSV/TSV/Parquet files, DataFrames, 2-D arrays or bundled sklearn tables.

Every table becomes one token per feature, in named steps: :func:`read_table` (data to a
DataFrame), :func:`tidy_table` (checked columns, unlabelled rows dropped),
:func:`table_schema` (column kinds, categories, statistics; or a run's saved schema),
:func:`encode_features` and :func:`encode_target` (arrays, labels and task).

A sample is a dict with

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import ArrayDataset, DataError, StackedSamples, warn

from .bundled import SKLEARN_SETS, bundled_frame, bundled_name, bundled_task, sklearn_frame
from .io import CSV_SUFFIXES, read_frame, table_suffix
from .schema import (
    SCHEMA_VERSION,
    category_strings,
    class_key,
    infer_schema,
    numeric_column,
    saved_schema,
    target_task,
)
from .stream import Settings, open_streamed, use_stream


@dataclass
class Table:
    """A table as read: the frame, where it came from (for messages) and, for CSV files,
    each row's line number (so a message can name the line a user would fix)."""

    frame: Any
    source: str
    lines: np.ndarray | None = None


def read_table(data: Any, target: str | None, task: str,
               sep: str | None = None) -> tuple[Table, str | None, str]:
    """Read: ``data`` (a file, DataFrame, 2-D array, dict of columns or a bundled table's
    name) as a :class:`Table`, with the target column and task it implies.

    A bundled table (scikit-learn's, statsmodels') brings its own label column (``target``)
    and task.
    """
    bundled = bundled_name(data)
    if bundled is None:
        return Table(*read_frame(data, sep)), target, task
    # a bundled table by name: its label column is "target"
    if task == "auto":
        task = bundled_task(bundled)
    return Table(*bundled_frame(bundled)), target or "target", task


def check_options(source: str, missing: str, task: str) -> None:
    """The dataset's choices, checked once the table (and so its name) is known."""
    if missing not in ("embed", "mask"):
        raise DataError(f"{source}: missing must be 'embed' or 'mask', got {missing!r}")
    if task not in ("auto", "classification", "regression"):
        raise DataError(f"{source}: task must be auto, classification or regression, "
                        f"got {task!r}")


def tidy_table(table: Table, target: str | None, group: str | None,
               state: dict[str, Any] | None) -> Table:
    """Column names as strings, checked (rows present, names unique, the target and group
    columns there unless a saved schema is reused), and the rows whose target is missing
    dropped with a warning: a label cannot be imputed."""
    source, lines = table.source, table.lines
    frame = table.frame.copy()
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
    if target and target in frame.columns and frame[target].isna().any():
        n_bad = int(frame[target].isna().sum())
        if n_bad == len(frame):
            raise DataError(f"{source}: the target column {target!r} is empty")
        warn(f"{source}: dropped {n_bad} rows whose target {target!r} is missing")
        keep = frame[target].notna().to_numpy()
        frame = frame[keep].reset_index(drop=True)
        lines = None if lines is None else lines[keep]
    return Table(frame, source, lines)


def table_schema(table: Table, exclude: set[str], state: dict[str, Any] | None,
                 categorical: list[str] | None = None, numeric: list[str] | None = None,
                 max_categories: int = 1000) -> list[dict[str, Any]]:
    """Schema: a run's saved one (``state``) where given, so new data is encoded the
    training way (absent features become all-missing, with a warning); else inferred from
    this table's columns outside ``exclude`` (kinds, categories, statistics)."""
    source, frame = table.source, table.frame
    if state and state.get("features"):
        return saved_schema(source, state, set(frame.columns))
    features = [c for c in frame.columns if c not in exclude]
    if not features:
        raise DataError(f"{source}: no feature columns (all are target/group/drop)")
    from_text = table.lines is not None or table_suffix(Path(source)) in CSV_SUFFIXES
    return infer_schema(frame, source, features, [str(c) for c in categorical or []],
                        [str(c) for c in numeric or []], int(max_categories),
                        from_text, table.lines)


def encode_features(table: Table, schema: list[dict[str, Any]],
                    clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Features as arrays by the schema: ``x [N, F]`` (standardised numbers clipped to
    ``clip``, category ids with 0 for unknown, 0 where missing) and ``missing [N, F]``."""
    frame, source, lines = table.frame, table.source, table.lines
    n, f = len(frame), len(schema)
    x = np.zeros((n, f), np.float32)
    miss = np.ones((n, f), bool)
    for j, feat in enumerate(schema):
        if feat["name"] not in frame.columns:
            continue
        col = frame[feat["name"]]
        if feat["kind"] == "numeric":
            x[:, j], miss[:, j] = encode_numbers(numeric_column(col, feat["name"], source,
                                                                lines), feat, clip)
        else:
            x[:, j], miss[:, j] = encode_categories(category_strings(col), feat)
    return x, miss


def encode_numbers(values: np.ndarray, feat: dict[str, Any], clip: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One numeric column (float64, NaN where missing) as standardised float32 values,
    clipped to ``clip``, 0 where missing; and its missing mask. Shared by the in-memory
    and the streamed readers, so both give the same numbers."""
    isnan = np.isnan(values)
    z = (values - feat["mean"]) / feat["std"]
    z = np.clip(z, -clip, clip) if clip else z
    return np.where(isnan, 0.0, z).astype(np.float32), isnan


def encode_categories(strings: Any, feat: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One categorical column (:func:`category_strings`) as float32 ids (1 + the index in
    the vocabulary, 0 for unknown or missing) and its missing mask."""
    lookup = {c: i + 1 for i, c in enumerate(feat["categories"])}
    isnan = strings.isna().to_numpy()
    ids = strings.map(lookup).fillna(0).to_numpy(dtype=np.float32)
    return ids, isnan


def encode_target(table: Table, target: str | None, task: str, state: dict[str, Any] | None
                  ) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Target: the labels (class ids, or float32 numbers for regression) and the target's
    state (name, task, classes).

    The task is ``task`` unless ``"auto"``, then a saved state's, then read off the
    column. A saved class list keeps the run's class ids; classes it lacks get new ids
    after them, with a warning. Without a target column: no labels, the saved state kept.
    """
    target_state = (state or {}).get("target") or None
    frame, source, lines = table.frame, table.source, table.lines
    if not (target and target in frame.columns):
        return None, target_state
    col = frame[target]
    kind = task if task != "auto" else (
        target_state["task"] if target_state else target_task(col))
    if kind == "regression":
        y = numeric_column(col, target, source, lines, strays=False).astype(np.float32)
        return y, {"name": target, "task": "regression"}
    labels = category_strings(col)
    classes = list(target_state["classes"]) if target_state and \
        target_state.get("task") == "classification" else []
    if not classes:
        classes = sorted(set(labels), key=class_key)
    extra = sorted(set(labels) - set(classes), key=class_key)
    if extra:
        warn(f"{source}: target classes unseen in training: {extra[:10]}")
    index = {c: i for i, c in enumerate(classes + extra)}
    y = labels.map(index).to_numpy(dtype=np.int64)
    return y, {"name": target, "task": "classification", "classes": classes}


def encode_groups(table: Table, group: str | None) -> np.ndarray | None:
    """Integer ids of the ``group`` column (for group-wise evaluation splits), if any."""
    if not group or group not in table.frame.columns:
        return None
    import pandas as pd

    return pd.factorize(table.frame[group].astype(str))[0].astype(np.int64)


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

    ``stream``: read a CSV/Parquet file in record batches into memory-mapped arrays in
    ``cache_dir`` (see :mod:`polyjepa_tabular.stream`) instead of into memory: ``"auto"``
    (files above 256 MB), ``True`` or ``False``. Both ways give the same samples.
    """

    def __init__(self, data: Any = None, target: str | None = None, group: str | None = None,
                 drop: list[str] | None = None, categorical: list[str] | None = None,
                 numeric: list[str] | None = None, task: str = "auto",
                 max_categories: int = 1000, missing: str = "embed", clip: float = 10.0,
                 sep: str | None = None, state: dict[str, Any] | None = None,
                 stream: Any = "auto", cache_dir: str | None = None):
        if use_stream(data, stream, sep):
            self._open_streamed(Path(data), sep, cache_dir, missing, Settings(
                target, group, [str(c) for c in drop or []],
                [str(c) for c in categorical or []], [str(c) for c in numeric or []],
                task, int(max_categories), float(clip), state))
            return
        table, target, task = read_table(data, target, task, sep)
        check_options(table.source, missing, task)
        table = tidy_table(table, target, group, state)
        self.source = table.source
        exclude = {c for c in (target, group) if c} | {str(c) for c in (drop or [])}
        self.schema = table_schema(table, exclude, state, categorical, numeric,
                                   max_categories)
        x, miss = encode_features(table, self.schema, clip)
        y, target_state = encode_target(table, target, task, state)
        self.missing_mode = missing
        valid = ~miss if missing == "mask" else None
        y = None if y is None else np.array(y)  # writable copy for torch
        super().__init__(x, y, valid, encode_groups(table, group), source=table.source)
        self.missing = self.extras["missing"] = torch.as_tensor(miss)
        self.state = {"version": SCHEMA_VERSION, "features": self.schema,
                      "target": target_state}
        self.task = (target_state or {}).get("task")
        self.cardinalities = [len(s["categories"]) + 1 if s["kind"] == "categorical" else 0
                              for s in self.schema]
        self.encoder_hints = {"n_features": len(self.schema),
                              "cardinalities": self.cardinalities}
        self.feature_names = [s["name"] for s in self.schema]

    def _open_streamed(self, path: Path, sep: str | None, cache_dir: str | None,
                       missing: str, settings: Settings) -> None:
        """The streamed reader's memory-mapped arrays as this dataset's (no check pass
        over them: they were checked while encoded, and reading them all would page the
        whole file in)."""
        check_options(str(path), missing, settings.task)
        table = open_streamed(path, sep, settings, cache_dir)
        self.source = str(path)
        self.cache_folder = table.folder
        self._rows = table.rows()
        self.x = torch.from_numpy(table.x)
        self.extras = {}
        for key, arr in (("y", table.y), ("group", table.group)):
            if arr is not None:
                self.extras[key] = torch.from_numpy(arr)
        self.missing = torch.from_numpy(table.missing)
        self.missing_mode = missing
        self.schema = table.state["features"]
        self.state = table.state
        self.task = (table.state.get("target") or {}).get("task")
        self.cardinalities = [len(s["categories"]) + 1 if s["kind"] == "categorical" else 0
                              for s in self.schema]
        self.encoder_hints = {"n_features": len(self.schema),
                              "cardinalities": self.cardinalities}
        self.feature_names = [s["name"] for s in self.schema]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if getattr(self, "_rows", None) is not None:  # streamed (see stream.RowFile)
            i = int(i) % len(self)
            return self._streamed(lambda f: f[i])
        return super().__getitem__(i)

    def _streamed(self, read: Any) -> dict[str, torch.Tensor]:
        """``read(row_file)`` of every cached array, keyed in the in-memory items' order."""
        got = {k: torch.from_numpy(read(f)) for k, f in self._rows.items()}
        if self.missing_mode == "mask":
            got["valid"] = ~got["missing"]
        return {k: got[k] for k in ("x", "y", "valid", "group", "missing") if k in got}

    def __getitems__(self, indices: list[int]) -> Any:
        """A whole batch at once: in memory one indexing per array (``missing`` is among
        the arrays); streamed, one read per run of consecutive rows of each file."""
        if getattr(self, "_rows", None) is None:
            return self.stacked(indices)
        idx = [int(i) % len(self) for i in indices]
        return StackedSamples(self._streamed(lambda f: f.take(idx)))

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
