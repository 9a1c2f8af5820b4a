"""Table file readers: CSV/TSV (plain or compressed) and Parquet into a pandas DataFrame.

Besides parsing, the readers check what pandas would otherwise let pass silently: a CSV
row with more or fewer fields than the header, and duplicate column names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

from .bundled import SKLEARN_SETS

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zip")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def table_suffix(path: Path) -> str:
    """The file's table suffix, compound ones (``.csv.gz``) included."""
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
        hint = "" if table_suffix(path) else \
            f" (nor a bundled scikit-learn table: {', '.join(SKLEARN_SETS)})"
        raise DataError(f"{path}: no such file{hint}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; 'tabular.table' reads one CSV/TSV/Parquet file")
    suffix = table_suffix(path)
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

