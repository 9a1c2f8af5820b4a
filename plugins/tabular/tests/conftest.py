"""Fixtures: CSV and Parquet tables written from scikit-learn's bundled real data.

There is no tabular folder in the shared data: the tables here are the real bundled
breast-cancer and wine sets, with missing values and a categorical column added so the
reader's handling of both is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest


def messy_frame(name: str = "wine", seed: int = 0):
    """A bundled real table with ~10% missing numbers, a categorical column with missing
    entries, and a string target."""
    from polyjepa_tabular.bundled import sklearn_frame

    rng = np.random.default_rng(seed)
    frame = sklearn_frame(name)
    feats = [c for c in frame.columns if c != "target"]
    for c in feats[:4]:
        frame.loc[rng.random(len(frame)) < 0.1, c] = np.nan
    # a categorical feature derived from a real column (terciles), as strings
    first = frame[feats[4]]
    cuts = np.quantile(first, [1 / 3, 2 / 3])
    frame["band"] = np.where(first < cuts[0], "low", np.where(first < cuts[1], "mid", "high"))
    frame.loc[rng.random(len(frame)) < 0.05, "band"] = None
    frame["label"] = frame.pop("target").map(lambda t: f"class_{t}")
    return frame


@pytest.fixture(scope="session")
def tables(tmp_path_factory):
    """Paths of a messy CSV and Parquet (wine) and a clean breast-cancer CSV."""
    root = tmp_path_factory.mktemp("tables")
    frame = messy_frame("wine")
    csv = root / "wine.csv"
    frame.to_csv(csv, index=False)
    pq = root / "wine.parquet"
    frame.to_parquet(pq, index=False)
    return {"csv": csv, "parquet": pq, "frame": frame, "root": root}


@pytest.fixture(scope="session")
def odd_tables(tmp_path_factory):
    """CSV files whose layout once broke training: a text column first (``color,v1,...``)
    and a numeric column holding one stray word (``abc`` in row 5, on line 7), both made
    from the real wine table; ``both.csv`` has the two at once."""
    root = tmp_path_factory.mktemp("odd")
    frame = messy_frame("wine").drop(columns=["band"])
    feats = [c for c in frame.columns if c != "label"][:5]
    hue = frame["hue"]
    color = np.where(hue > hue.median(), "red", np.where(hue > hue.quantile(0.2), "green",
                                                         "blue"))
    text_first = frame[[*feats, "label"]].copy()
    text_first.insert(0, "color", color)
    text_first.to_csv(root / "text_first.csv", index=False)
    stray = frame[[*feats, "label"]].copy()
    stray[feats[0]] = stray[feats[0]].astype(object)
    stray.loc[5, feats[0]] = "abc"
    stray.to_csv(root / "stray.csv", index=False)
    both = stray.copy()
    both.insert(0, "color", color)
    both.to_csv(root / "both.csv", index=False)
    return {"root": root, "text_first": root / "text_first.csv", "stray": root / "stray.csv",
            "both": root / "both.csv", "stray_column": feats[0], "n": len(frame)}
