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
