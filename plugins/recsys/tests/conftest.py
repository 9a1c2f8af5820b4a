"""Test data: a synthetic ratings log written in RecBole's atomic-file layout (always
there), and the real MovieLens-100k from the shared data (an extra layer when present).

Tests that hold for any log take the ``atomic`` fixture, which runs them on the synthetic
log and, when the shared files are there, on ml-100k too; tests of facts about the real
data alone (a user's occupation, the year of Star Wars) take ``ml100k`` and skip without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from polyjepa.testing import shared_data, shared_data_or_skip

ML100K_PARTS = ("recsys", "ml-100k", "ml-100k.inter")

GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Horror", "Romance", "Sci-Fi", "Thriller", "Western")
OCCUPATIONS = ("student", "engineer", "artist", "doctor", "writer", "programmer", "retired",
               "educator", "lawyer", "other")
SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ha", "ke", "li", "mo", "nu", "pa", "re", "si",
             "to", "vu", "ra", "ne")


@dataclass
class Atomic:
    """A log in RecBole's atomic layout (``<name>/<name>.inter``, ``.item``, ``.user``) and
    what the tests may expect of it."""

    path: Path
    name: str
    n_inter: int
    n_users: int
    n_items: int
    real: bool
    # an item's id, genres and release year, and a user's id, gender and occupation
    item: tuple[str, set[str], int]
    user: tuple[str, str, str]
    # max_vocab between the number of genres and of distinct title words
    vocab_between: int
    n_title_words: int = 0
    n_genres: int = 0
    year_kind: str = "float"  # how the reader types release_year

    def file(self, suffix: str) -> Path:
        return self.path / f"{self.name}.{suffix}"


def write_synthetic_atomic(folder: Path, name: str = "synthetic", n_users: int = 200,
                           n_items: int = 300, n_clusters: int = 6, seed: int = 0) -> dict:
    """Write a deterministic ratings log with taste clusters in RecBole's atomic layout.

    Every item belongs to a taste cluster, which sets its genres (two core genres of the
    cluster, sometimes a third) and its release era; every user prefers one cluster (and
    a second one less), rates 20-80 items mostly from those, with Zipf-like popularity
    inside a cluster, and rates them higher; each user's timestamps increase from a
    personal start within the first 200 days. The headers are ml-100k's. Returns what was
    written (counts, one item and one user) for the tests to compare with.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({(a + b).capitalize() for a in SYLLABLES for b in SYLLABLES})
    core = [rng.choice(len(GENRES), size=2, replace=False) for _ in range(n_clusters)]
    eras = np.linspace(1935, 1995, n_clusters)
    item_cluster = np.arange(n_items) % n_clusters
    rng.shuffle(item_cluster)
    titles, years, genres = [], [], []
    for i in range(n_items):
        c = int(item_cluster[i])
        g = {GENRES[k] for k in core[c]}
        if rng.random() < 0.3:
            g.add(GENRES[int(rng.integers(len(GENRES)))])
        genres.append(" ".join(sorted(g)))
        titles.append(" ".join(rng.choice(words, size=int(rng.integers(2, 4)), replace=False)))
        years.append(str(int(np.clip(round(eras[c] + rng.normal(0, 4)), 1920, 1998))))
    years[7] = ""  # an item without a release year
    # Zipf-like popularity within each cluster: a long tail of rarely rated items
    weight = 1.0 / (1.0 + rng.permutation(n_items) % (n_items // n_clusters)) ** 1.5
    with open(folder / f"{name}.item", "w") as f:
        f.write("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
        for i in range(n_items):
            f.write(f"{i + 1}\t{titles[i]}\t{years[i]}\t{genres[i]}\n")
    rows = []
    t0 = 874724710
    for u in range(n_users):
        main, second = rng.choice(n_clusters, size=2, replace=False)
        k = int(min(80, 20 + rng.geometric(1 / 20)))
        p = np.where(item_cluster == main, 7.0, np.where(item_cluster == second, 2.0, 0.15))
        p = p * weight
        chosen = rng.choice(n_items, size=k, replace=False, p=p / p.sum())
        t = t0 + int(rng.integers(0, 200 * 86400)) + np.cumsum(
            rng.integers(60, 5 * 86400, size=k))
        for i, ts in zip(chosen, t):
            base = 4.3 if item_cluster[i] == main else 3.2 if item_cluster[i] == second else 2.2
            rating = int(np.clip(round(base + rng.normal(0, 0.8)), 1, 5))
            rows.append((u + 1, int(i) + 1, rating, int(ts)))
    order = rng.permutation(len(rows))  # the file is not in time order, as ml-100k is not
    with open(folder / f"{name}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for r in order:
            f.write("\t".join(str(v) for v in rows[r]) + "\n")
    genders = rng.choice(["M", "F"], size=n_users, p=[0.7, 0.3])
    genders[1] = "F"
    occupations = rng.choice(OCCUPATIONS, size=n_users)
    with open(folder / f"{name}.user", "w") as f:
        f.write("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n")
        for u in range(n_users):
            zip_code = (f"{int(rng.integers(10000, 99999))}" if rng.random() < 0.9 else
                        f"T{int(rng.integers(10))}H{int(rng.integers(10))}N")
            f.write(f"{u + 1}\t{int(rng.integers(16, 70))}\t{genders[u]}\t{occupations[u]}\t"
                    f"{zip_code}\n")
    title_words = {w for t in titles for w in t.split()}
    return {"n_inter": len(rows), "n_users": n_users, "n_items": n_items,
            "item": ("1", set(genres[0].split()), int(years[0])),
            "user": ("2", str(genders[1]), str(occupations[1])),
            "n_title_words": len(title_words),
            "n_genres": len({g for s in genres for g in s.split()})}


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Atomic:
    """The synthetic log (200 users, 300 items): there on every checkout."""
    folder = tmp_path_factory.mktemp("atomic") / "synthetic"
    info = write_synthetic_atomic(folder)
    return Atomic(folder, "synthetic", info["n_inter"], info["n_users"], info["n_items"],
                  False, info["item"], info["user"],
                  vocab_between=(info["n_genres"] + info["n_title_words"]) // 2,
                  n_title_words=info["n_title_words"], n_genres=info["n_genres"])


@pytest.fixture(scope="session")
def ml100k() -> Path:
    """The shared MovieLens-100k folder (RecBole atomic files); skips without it."""
    return shared_data_or_skip(*ML100K_PARTS).parent


# the real layer joins only where its files are; without them ``test_ml100k_facts``
# reports the skip once rather than every generic test skipping its ml-100k twin
SOURCES = ["synthetic"] + (["ml-100k"] if shared_data(*ML100K_PARTS) else [])


@pytest.fixture(scope="session", params=SOURCES)
def atomic(request) -> Atomic:
    """Each log in the atomic layout: the synthetic one, and ml-100k when present."""
    if request.param == "synthetic":
        return request.getfixturevalue("synthetic")
    path = request.getfixturevalue("ml100k")
    return Atomic(path, "ml-100k", 100_000, 943, 1682, True,
                  ("1", {"Animation", "Children's", "Comedy"}, 1995), ("2", "F", "other"),
                  vocab_between=300, n_title_words=2600, n_genres=19, year_kind="token")


@pytest.fixture(scope="session")
def item_ds(atomic):
    import polyjepa as pj

    return pj.create_dataset("recsys.items", str(atomic.path))


def _log_from(atomic: Atomic, d: Path, n_users: int = 40) -> Path:
    """The first ``n_users`` users of an atomic log as a CSV log plus an item table with
    ``|``-separated genres; ``full/`` holds every user."""
    import pandas as pd

    inter = pd.read_csv(atomic.file("inter"), sep="\t")
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    users = sorted(inter["user_id"].unique())[:n_users]
    full = inter
    inter = inter[inter["user_id"].isin(users)]
    items = pd.read_csv(atomic.file("item"), sep="\t")
    items.columns = ["item_id", "title", "year", "genres"]
    items["genres"] = items["genres"].str.replace(" ", "|")
    inter.to_csv(d / "ratings.csv", index=False)
    items[["item_id", "genres", "year"]].to_csv(d / "movies.csv", index=False)
    (d / "full").mkdir()
    full.to_csv(d / "full" / "ratings.csv", index=False)
    items[["item_id", "genres", "year"]].to_csv(d / "full" / "movies.csv", index=False)
    return d


@pytest.fixture(scope="session")
def small_log(atomic, tmp_path_factory) -> Path:
    """A slice (40 users) of each atomic log as a CSV log plus an item table."""
    return _log_from(atomic, tmp_path_factory.mktemp("log"))


@pytest.fixture(scope="session")
def synthetic_log(synthetic, tmp_path_factory) -> Path:
    """:func:`small_log` of the synthetic log only (for the slower command-line test)."""
    return _log_from(synthetic, tmp_path_factory.mktemp("synlog"))


@pytest.fixture(scope="session")
def movielens_layouts(atomic, tmp_path_factory) -> dict[str, Path]:
    """The first 30 users of each atomic log written in MovieLens' own file layouts.

    ``100k``: ``u.data`` (tab-separated) + ``u.item`` (``|``-separated, 19 genre flags);
    ``1m``: ``ratings.dat`` + ``movies.dat`` (``::``-separated, ``|`` genres, year in the
    title).
    """
    import pandas as pd

    from polyjepa_recsys.io import ML100K_GENRES

    inter = pd.read_csv(atomic.file("inter"), sep="\t")
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    inter = inter[inter["user_id"].isin(sorted(inter["user_id"].unique())[:30])]
    items = pd.read_csv(atomic.file("item"), sep="\t", keep_default_na=False)
    items.columns = ["item_id", "title", "year", "genres"]

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
    users = pd.read_csv(atomic.file("user"), sep="\t", dtype=str)
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
    return {"100k": a, "1m": b, "n": len(inter), "atomic": atomic}
