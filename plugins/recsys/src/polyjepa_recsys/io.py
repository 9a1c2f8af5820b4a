"""Readers for interaction logs and item/user feature tables.

Layouts understood:

- RecBole atomic files: a folder (or a ``.inter`` file) with ``<name>.inter`` and
  optional ``<name>.item`` / ``<name>.user``; tab-separated with typed headers such as
  ``user_id:token  item_id:token  rating:float  timestamp:float``.
- MovieLens: ``u.data`` (+ ``u.item``) of ml-100k, ``ratings.dat`` (+ ``movies.dat``) of
  ml-1m/10m, ``ratings.csv`` (+ ``movies.csv``) of ml-latest.
- Generic logs: one CSV, TSV or Parquet file with user, item and optional rating and
  timestamp columns (common column names are recognised), plus an optional item table.

Everything becomes a :class:`RecData`: an interaction frame with string ids and an
optional item feature frame whose columns are typed ``token`` (categorical),
``token_seq`` (multi-valued, space- or ``|``-separated) or ``float`` (numerical).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polyjepa import DataError

USER_COLS = ("user_id", "userid", "user", "uid", "visitorid", "customer_id")
ITEM_COLS = ("item_id", "itemid", "movieid", "movie_id", "item", "iid", "product_id", "article_id")
RATING_COLS = ("rating", "score", "value", "weight")
TIME_COLS = ("timestamp", "time", "ts", "datetime", "date", "t_dat")

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")


@dataclass
class RecData:
    """Interactions (``user``, ``item``, ``rating``, ``timestamp``) plus feature tables.

    ``item_types`` maps each item feature column to ``token``, ``token_seq`` or ``float``;
    ``user_types`` does the same for the user table (column ``user`` holds the user id).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    item_types: dict[str, str] = field(default_factory=dict)
    users: pd.DataFrame | None = None
    source: str = "<data>"
    user_types: dict[str, str] = field(default_factory=dict)


def _read_table(path: Path, sep: str | None = None, header: Any = "infer",
                names: list[str] | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """A delimited text or Parquet table, every value a string (or missing).

    Text files are checked first (:func:`_row_lines`); the line number of every row is
    kept in ``attrs["lines"]`` so that later messages about a row can name its line.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if path.suffix == ".parquet" or path.suffix == ".pq":
            return pd.read_parquet(path)
        if sep is None:
            sep = "\t" if path.suffix in (".tsv", ".inter", ".item", ".user", ".data") else ","
        lines = _row_lines(path, sep, len(names) if header is None and names else None,
                           encoding)
        df = pd.read_csv(path, sep=sep, header=header, names=names, dtype=str,
                         encoding=encoding, engine="python" if len(sep) > 1 else "c",
                         keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot parse the table (corrupt or truncated?): "
                        f"{type(exc).__name__}: {exc}") from exc
    if lines is not None and len(lines) == len(df):  # else the parsers disagree on rows
        df.attrs["lines"] = lines
        _check_last_line(path, df, lines)
    return df


def _row_lines(path: Path, sep: str, n_fields: int | None, encoding: str) -> np.ndarray:
    """The line number of every data row, after checking that each row has as many fields
    as the header (or ``n_fields`` for a file without one).

    A row with too few or too many fields raises :class:`DataError` naming its line:
    interaction logs and feature tables are machine-written with one shape per row, so a
    ragged row is a line cut off by an interrupted download or copy, or a separator inside
    a value. pandas would pad it with missing values (which then fail as a confusing
    "missing rating" or an out-of-range date) or shift its values into other columns.
    Blank lines are skipped, as pandas does.
    """
    import csv

    def records(f: Any) -> Any:
        if len(sep) == 1:  # quoting as pandas' C parser does it
            reader = csv.reader(f, delimiter=sep)
            start = 1
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        else:  # MovieLens' "::": a plain separator, no quoting
            for i, text in enumerate(f, 1):
                yield i, text.rstrip("\r\n").split(sep)

    lines: list[int] = []
    expected = n_fields
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        for start, row in records(f):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if expected is None:
                expected = len(row)  # the header
                continue
            if len(row) != expected:
                why = ("a truncated line: the file may have been cut off" if len(row) < expected
                       else f"a {sep!r} inside a value?")
                raise DataError(f"{path}: line {start} has {len(row)} fields, expected "
                                f"{expected} ({why})")
            lines.append(start)
    return np.asarray(lines, dtype=np.int64)


def _check_last_line(path: Path, df: pd.DataFrame, lines: np.ndarray) -> None:
    """Refuse a last line cut off inside its last field.

    Such a line has every field, so only two things betray it: the file does not end
    with a line break, and a column whose values all have the same width (epoch
    timestamps, fixed-format dates) has a shorter one on that line (``881250`` for
    ``881250949``). A file that merely lacks its final line break passes.
    """
    if len(df) < 3:
        return
    with open(path, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) in (b"\n", b"\r"):
            return
    last = df.iloc[-1]
    for col in df.columns:
        widths = df[col].iloc[:-1].dropna().str.len()
        value = last[col]
        if len(widths) < 2 or not isinstance(value, str) or widths.min() != widths.max():
            continue
        if len(value) < int(widths.iloc[0]):
            raise DataError(f"{path}: line {int(lines[-1])}, the last, is cut off: it has "
                            f"no line break and its {col} {value!r} is shorter than all "
                            f"others ({int(widths.iloc[0])} characters)")


def _where(obj: pd.DataFrame | pd.Series, row: int) -> str:
    """Row ``row`` (0-based) of a table: its line in the file when known."""
    lines = obj.attrs.get("lines")
    if lines is not None and row < len(lines):
        return f"line {int(lines[row])}"
    return f"row {row + 1}"


def _find(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    low = {c.lower().replace(" ", "_"): c for c in columns}
    for w in wanted:
        if w in low:
            return low[w]
    return None


def _numeric(series: pd.Series, path: Path, what: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: {what} column holds a non-numeric value "
                        f"{series.iloc[row]!r} ({_where(series, row)})")
    arr = values.to_numpy(dtype=np.float64)
    if np.isnan(arr).any():
        row = int(np.flatnonzero(np.isnan(arr))[0])
        raise DataError(f"{path}: {what} is missing on {_where(series, row)}")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise DataError(f"{path}: {what} column holds infinite values ({_where(series, row)})")
    return arr


def _timestamps(ts: pd.Series, path: Path, what: str) -> np.ndarray:
    """Seconds since the epoch from numbers or dates (a column holds one or the other)."""
    if pd.api.types.is_numeric_dtype(ts):
        return _numeric(ts, path, what)
    text = ts.notna().to_numpy()
    number = pd.to_numeric(ts, errors="coerce").notna().to_numpy()
    if (number | ~text).all():
        return _numeric(ts, path, what)  # numbers, perhaps some missing
    if number.any():
        row = int(np.flatnonzero(text & ~number)[0])
        raise DataError(f"{path}: {what} mixes numbers and text: {ts.iloc[row]!r} on "
                        f"{_where(ts, row)}")
    if not text.all():
        raise DataError(f"{path}: {what} is missing on {_where(ts, int(np.argmin(text)))}")
    try:
        with warnings.catch_warnings():
            # pandas notes when it parses dates one by one; the result is checked below
            warnings.filterwarnings("ignore", "Could not infer format")
            parsed = pd.to_datetime(ts, errors="coerce", utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: {what} is neither numeric nor a date: {exc}") from exc
    bad = parsed.isna().to_numpy()
    if bad.all():
        raise DataError(f"{path}: {what} is neither numeric nor a date (e.g. {ts.iloc[0]!r} "
                        f"on {_where(ts, 0)})")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: {what} {ts.iloc[row]!r} on {_where(ts, row)} is neither "
                        f"a number nor a date like the column's first "
                        f"{ts.iloc[int(np.argmin(bad))]!r}")
    # seconds since the epoch, whatever resolution pandas parsed the dates at
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(1, "s")
    return np.asarray(seconds, dtype=np.float64)


def _interactions(df: pd.DataFrame, path: Path, user: str | None = None,
                  item: str | None = None, rating: str | None = None,
                  timestamp: str | None = None) -> pd.DataFrame:
    if len(df) == 0:
        raise DataError(f"{path}: no interactions (the table has a header but no rows)")
    cols = [str(c) for c in df.columns]
    user = user or _find(cols, USER_COLS)
    item = item or _find(cols, ITEM_COLS)
    if user is None or item is None:
        raise DataError(f"{path}: cannot find the user and item columns among {cols} "
                        f"(expected names like user_id and item_id)")
    rating = rating or _find(cols, RATING_COLS)
    timestamp = timestamp or _find(cols, TIME_COLS)
    for name in (user, item):
        if df[name].isna().any():
            row = int(np.flatnonzero(df[name].isna().to_numpy())[0])
            raise DataError(f"{path}: column {name!r} is empty on {_where(df, row)} "
                            f"(truncated file?)")
    out = pd.DataFrame({"user": df[user].astype(str).str.strip(),
                        "item": df[item].astype(str).str.strip()})
    out["rating"] = _numeric(df[rating], path, f"rating ({rating!r})") if rating else 1.0
    if timestamp:
        out["timestamp"] = _timestamps(df[timestamp], path, f"timestamp ({timestamp!r})")
    else:
        out["timestamp"] = np.arange(len(out), dtype=np.float64)  # file order
    return out


def _atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """A RecBole atomic file: typed header ``name:type``; returns frame and types."""
    df = _read_table(path, sep="\t")
    types: dict[str, str] = {}
    rename = {}
    for col in df.columns:
        name, _, kind = str(col).partition(":")
        rename[col] = name
        types[name] = kind or "token"
    df = df.rename(columns=rename)
    unknown = {k for k in types.values() if k not in ("token", "token_seq", "float", "float_seq")}
    if unknown:
        raise DataError(f"{path}: unknown RecBole column type(s) {sorted(unknown)} in the header")
    return df, types


def _items_from(df: pd.DataFrame, types: dict[str, str], path: Path,
                item_col: str | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    return _features_from(df, types, path, item_col, ITEM_COLS, "item")


def _users_from(df: pd.DataFrame, types: dict[str, str], path: Path,
                user_col: str | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    return _features_from(df, types, path, user_col, USER_COLS, "user")


def _features_from(df: pd.DataFrame, types: dict[str, str], path: Path, item_col: str | None,
                   id_names: tuple[str, ...], key: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """A feature table keyed by ``key`` (item or user) with typed feature columns."""
    cols = [str(c) for c in df.columns]
    item_col = item_col or _find(cols, id_names)
    if item_col is None:
        raise DataError(f"{path}: the {key} table has no {key} id column among {cols}")
    if len(df) == 0:
        raise DataError(f"{path}: the {key} table has no rows")
    out = pd.DataFrame({key: df[item_col].astype(str).str.strip()})
    kinds: dict[str, str] = {}
    for col in cols:
        if col == item_col:
            continue
        kind = types.get(col)
        series = df[col]
        if kind is None:  # infer: numbers -> float, separators -> token_seq, else token
            text = series.dropna().astype(str)
            if pd.api.types.is_numeric_dtype(series) or (
                    len(text) and pd.to_numeric(text, errors="coerce").notna().all()
                    and text.nunique() > 20):
                kind = "float"
            elif text.str.contains(r"\|").mean() > 0.05:
                kind = "token_seq"
            else:
                kind = "token"
        if kind == "float_seq":
            continue
        if kind == "token":  # a numeric token with many values (a year, a price) is numerical
            text = series.dropna().astype(str)
            if (len(text) and pd.to_numeric(text, errors="coerce").notna().all()
                    and text.nunique() > 20):
                kind = "float"
        if kind == "float":
            values = pd.to_numeric(series, errors="coerce").astype(np.float64)
            if np.isinf(values.to_numpy()).any():
                raise DataError(f"{path}: {key} column {col!r} holds infinite values")
            out[col] = values
        elif kind == "token_seq":
            out[col] = series.fillna("").astype(str).str.replace("|", " ", regex=False)
        else:
            out[col] = series.fillna("").astype(str).str.strip()
        kinds[col] = kind
    out = out.drop_duplicates(key, keep="first").reset_index(drop=True)
    return out, kinds


def _movielens_100k(folder: Path) -> RecData:
    path = folder / "u.data"
    df = _read_table(path, sep="\t", header=None, names=["user_id", "item_id", "rating",
                                                          "timestamp"])
    inter = _interactions(df, path)
    items = None
    types: dict[str, str] = {}
    ipath = folder / "u.item"
    if ipath.is_file():
        names = ["item_id", "title", "release_date", "video", "url", *ML100K_GENRES]
        raw = _read_table(ipath, sep="|", header=None, names=names, encoding="latin-1")
        flags = raw[list(ML100K_GENRES)].fillna("0").to_numpy() == "1"
        genres = [" ".join(g for g, f in zip(ML100K_GENRES, row) if f) for row in flags]
        year = raw["release_date"].fillna("").str[-4:]
        table = pd.DataFrame({"item_id": raw["item_id"], "genre": genres,
                              "release_year": pd.to_numeric(year, errors="coerce")})
        items, types = _items_from(table, {"genre": "token_seq", "release_year": "float"}, ipath)
    rec = RecData(inter, items, types, None, str(path))
    upath = folder / "u.user"
    if upath.is_file():
        raw = _read_table(upath, sep="|", header=None, encoding="latin-1",
                          names=["user_id", "age", "gender", "occupation", "zip_code"])
        rec.users, rec.user_types = _users_from(raw, {"age": "float"}, upath)
    return rec


def _movielens_dat(folder: Path) -> RecData:
    path = folder / "ratings.dat"
    df = _read_table(path, sep="::", header=None, names=["user_id", "item_id", "rating",
                                                          "timestamp"], encoding="latin-1")
    inter = _interactions(df, path)
    items, types = None, {}
    mpath = folder / "movies.dat"
    if mpath.is_file():
        raw = _read_table(mpath, sep="::", header=None, names=["item_id", "title", "genre"],
                          encoding="latin-1")
        raw["release_year"] = pd.to_numeric(raw["title"].str.extract(r"\((\d{4})\)\s*$")[0],
                                            errors="coerce")
        items, types = _items_from(raw[["item_id", "genre", "release_year"]],
                                   {"genre": "token_seq", "release_year": "float"}, mpath)
    rec = RecData(inter, items, types, None, str(path))
    upath = folder / "users.dat"
    if upath.is_file():  # ml-1m: age and occupation are codes, so categorical
        raw = _read_table(upath, sep="::", header=None, encoding="latin-1",
                          names=["user_id", "gender", "age", "occupation", "zip_code"])
        rec.users, rec.user_types = _users_from(
            raw, {"gender": "token", "age": "token", "occupation": "token",
                  "zip_code": "token"}, upath)
    return rec


def _recbole(inter_path: Path) -> RecData:
    df, _ = _atomic(inter_path)
    inter = _interactions(df, inter_path)
    items, types = None, {}
    ipath = inter_path.with_suffix(".item")
    if ipath.is_file():
        raw, rtypes = _atomic(ipath)
        items, types = _items_from(raw, rtypes, ipath)
    rec = RecData(inter, items, types, None, str(inter_path))
    upath = inter_path.with_suffix(".user")
    if upath.is_file():
        raw, utypes = _atomic(upath)
        rec.users, rec.user_types = _users_from(raw, utypes, upath)
    return rec


def read_interactions(data: Any, items: str | Path | None = None, user_col: str | None = None,
                      item_col: str | None = None, rating_col: str | None = None,
                      time_col: str | None = None, users: str | Path | None = None
                      ) -> RecData:
    """Read an interaction log (and its feature tables) from a file or folder.

    ``items`` and ``users`` name separate item and user feature tables (CSV/TSV/Parquet)
    when the layout does not bring them; the ``*_col`` arguments name columns that are not
    recognised.
    """
    if isinstance(data, RecData):
        return data
    if isinstance(data, pd.DataFrame):
        rec = RecData(_interactions(data, Path("<dataframe>"), user_col, item_col, rating_col,
                                    time_col), source="<dataframe>")
    else:
        if data is None:
            raise DataError("no data given: pass a folder or file of interactions")
        path = Path(data)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        if path.is_dir():
            inters = sorted(path.glob("*.inter"))
            if inters:
                rec = _recbole(inters[0])
            elif (path / "u.data").is_file():
                rec = _movielens_100k(path)
            elif (path / "ratings.dat").is_file():
                rec = _movielens_dat(path)
            elif (path / "ratings.csv").is_file():
                rec = read_interactions(path / "ratings.csv",
                                        items=path / "movies.csv" if (path / "movies.csv").is_file()
                                        else items)
            else:
                tables = sorted(p for p in path.iterdir()
                                if p.suffix in (".csv", ".tsv", ".parquet", ".pq"))
                if len(tables) != 1:
                    raise DataError(f"{path}: no interaction file found (expected a RecBole "
                                    f"*.inter, MovieLens u.data / ratings.dat / ratings.csv, "
                                    f"or exactly one CSV/TSV/Parquet file)")
                rec = read_interactions(tables[0], items=items)
        elif path.suffix == ".inter":
            rec = _recbole(path)
        elif path.name == "u.data":
            rec = _movielens_100k(path.parent)
        elif path.name == "ratings.dat":
            rec = _movielens_dat(path.parent)
        elif path.suffix in (".csv", ".tsv", ".parquet", ".pq", ".txt", ".data"):
            df = _read_table(path, sep="\t" if path.suffix in (".tsv", ".txt") else None)
            rec = RecData(_interactions(df, path, user_col, item_col, rating_col, time_col),
                          source=str(path))
        else:
            raise DataError(f"{path}: unsupported interaction file type {path.suffix!r} "
                            f"(use .inter, .csv, .tsv or .parquet)")
    if items is not None:
        ipath = Path(items)
        raw = _read_table(ipath, sep="\t" if ipath.suffix == ".tsv" else None)
        hints = {c: "token_seq" for c in raw.columns if str(c).lower() in ("genre", "genres")}
        table, types = _items_from(raw, hints, ipath)
        rec.items, rec.item_types = table, types
    if users is not None:
        upath = Path(users)
        raw = _read_table(upath, sep="\t" if upath.suffix == ".tsv" else None)
        rec.users, rec.user_types = _users_from(raw, {}, upath)
    return rec
