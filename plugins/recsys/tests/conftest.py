from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                             Path(__file__).resolve().parents[3].parent / "shared" / "data"))
ML100K = SHARED / "recsys" / "ml-100k"


@pytest.fixture(scope="session")
def ml100k() -> Path:
    if not (ML100K / "ml-100k.inter").is_file():
        pytest.skip(f"shared test data not found at {ML100K}")
    return ML100K


@pytest.fixture(scope="session")
def item_ds(ml100k):
    import polyjepa as pj

    return pj.create_dataset("recsys.items", str(ml100k))


@pytest.fixture(scope="session")
def small_log(tmp_path_factory) -> Path:
    """A small real slice of ml-100k as a CSV log plus an item table (pipe genres)."""
    import pandas as pd

    if not (ML100K / "ml-100k.inter").is_file():
        pytest.skip(f"shared test data not found at {ML100K}")
    inter = pd.read_csv(ML100K / "ml-100k.inter", sep="\t")
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    users = sorted(inter["user_id"].unique())[:40]
    full = inter
    inter = inter[inter["user_id"].isin(users)]
    items = pd.read_csv(ML100K / "ml-100k.item", sep="\t")
    items.columns = ["item_id", "title", "year", "genres"]
    items["genres"] = items["genres"].str.replace(" ", "|")
    d = tmp_path_factory.mktemp("log")
    inter.to_csv(d / "ratings.csv", index=False)
    items[["item_id", "genres", "year"]].to_csv(d / "movies.csv", index=False)
    (d / "full").mkdir()
    full.to_csv(d / "full" / "ratings.csv", index=False)
    items[["item_id", "genres", "year"]].to_csv(d / "full" / "movies.csv", index=False)
    return d


@pytest.fixture(scope="session")
def movielens_layouts(tmp_path_factory) -> dict[str, Path]:
    """The first 30 users of the real ml-100k written in MovieLens' own file layouts.

    ``100k``: ``u.data`` (tab-separated) + ``u.item`` (``|``-separated, 19 genre flags);
    ``1m``: ``ratings.dat`` + ``movies.dat`` (``::``-separated, ``|`` genres, year in the
    title).
    """
    import pandas as pd

    if not (ML100K / "ml-100k.inter").is_file():
        pytest.skip(f"shared test data not found at {ML100K}")
    inter = pd.read_csv(ML100K / "ml-100k.inter", sep="\t")
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    inter = inter[inter["user_id"].isin(sorted(inter["user_id"].unique())[:30])]
    items = pd.read_csv(ML100K / "ml-100k.item", sep="\t", keep_default_na=False)
    items.columns = ["item_id", "title", "year", "genres"]
    from polyjepa_recsys.io import ML100K_GENRES

    root = tmp_path_factory.mktemp("movielens")
    a = root / "ml-100k"
    a.mkdir()
    inter.to_csv(a / "u.data", sep="\t", header=False, index=False)
    with open(a / "u.item", "w", encoding="latin-1") as f:
        for row in items.itertuples(index=False):
            genres = set(str(row.genres).split())
            flags = "|".join("1" if g in genres else "0" for g in ML100K_GENRES)
            date = f"01-Jan-{row.year}" if str(row.year).strip() else ""
            f.write(f"{row.item_id}|{row.title} ({row.year})|{date}||http://x|{flags}\n")
    users = pd.read_csv(ML100K / "ml-100k.user", sep="\t", dtype=str)
    users.columns = ["user_id", "age", "gender", "occupation", "zip_code"]
    users.to_csv(a / "u.user", sep="|", header=False, index=False)
    b = root / "ml-1m"
    b.mkdir()
    with open(b / "ratings.dat", "w", encoding="latin-1") as f:
        for row in inter.itertuples(index=False):
            f.write(f"{row.user_id}::{row.item_id}::{row.rating}::{row.timestamp}\n")
    with open(b / "movies.dat", "w", encoding="latin-1") as f:
        for row in items.itertuples(index=False):
            genres = "|".join(str(row.genres).split())
            f.write(f"{row.item_id}::{row.title} ({row.year})::{genres}\n")
    with open(b / "users.dat", "w", encoding="latin-1") as f:
        for row in users.itertuples(index=False):
            f.write(f"{row.user_id}::{row.gender}::{row.age}::{row.occupation}::"
                    f"{row.zip_code}\n")
    return {"100k": a, "1m": b, "n": len(inter)}
