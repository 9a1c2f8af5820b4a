from __future__ import annotations

import numpy as np
import pandas as pd
import polyjepa as pj
import pytest
from polyjepa import testing
from polyjepa_recsys.io import read_interactions


def test_recbole_atomic_files(ml100k):
    rec = read_interactions(ml100k)
    assert len(rec.interactions) == 100_000
    assert rec.interactions["user"].nunique() == 943
    assert rec.items is not None and len(rec.items) == 1682
    assert rec.item_types["class"] == "token_seq"
    assert rec.users is not None and len(rec.users) == 943
    assert set(rec.interactions["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_item_dataset_split_and_state(item_ds):
    split = item_ds.split
    assert len(item_ds) == 1682 and split.n_items == 1682
    assert len(split.targets) == 943
    assert sum(len(h) for h in split.histories) + len(split.targets) == 100_000
    assert int(split.counts.sum()) == 100_000 - 943
    kinds = {f["name"]: f["kind"] for f in item_ds.state["fields"]}
    assert kinds["item_id"] == "hash" and kinds["class"] == "multi"
    item = item_ds[0]
    assert item["x"].shape == (len(kinds), item_ds.state["max_values"])
    assert item["valid"].dtype == torch_bool()
    dep = np.asarray(item_ds.state["dependence"])
    assert dep.shape == (len(kinds), len(kinds)) and np.allclose(dep, dep.T)
    testing.check_dataset("recsys.items", str(item_ds.source))


def torch_bool():
    import torch

    return torch.bool


def test_latest_item_is_held_out(ml100k):
    inter = pd.read_csv(ml100k / "ml-100k.inter", sep="\t")
    inter.columns = ["u", "i", "r", "t"]
    ds = pj.create_dataset("recsys.sequences", str(ml100k), max_len=20)
    u0 = ds.split.users[0]
    rows = inter[inter["u"].astype(str) == u0].sort_values("t", kind="stable")
    target = ds.data.item_ids[ds.split.targets[0]]
    assert target == str(rows["i"].iloc[-1])
    sample = ds[0]
    assert sample["x"].shape[0] == 20 and bool(sample["valid"][-1])
    # the last valid position is the latest training item
    hist = ds.split.histories[0]
    assert np.array_equal(sample["x"][-1].numpy(), ds.data.item_x[hist[-1]].numpy())


def test_state_reused_and_cold_items(ml100k, small_log):
    small = pj.create_dataset("recsys.items", str(small_log))
    assert [f["name"] for f in small.state["fields"]][:2] == ["item_id", "genres"]
    # the run trained on 40 users meets the full log: items unseen in its training data
    # are cold, get no id token, but keep their genre token
    ds = pj.create_dataset("recsys.items", str(small_log / "full"), state=small.state)
    assert ds.state["fields"] == small.state["fields"]
    cold = ds.split.cold
    assert cold.sum() > 100
    i = int(np.flatnonzero(cold)[0])
    assert not bool(ds[i]["valid"][0]) and bool(ds[i]["valid"][1])
    # data without the features the run was trained on is refused
    with pytest.raises(pj.DataError, match="genres"):
        pj.create_dataset("recsys.items", str(ml100k), state=small.state)


def test_csv_and_parquet_logs(small_log, tmp_path):
    a = read_interactions(small_log / "ratings.csv")
    df = pd.read_csv(small_log / "ratings.csv")
    df.to_parquet(tmp_path / "log.parquet")
    b = read_interactions(tmp_path / "log.parquet")
    assert len(a.interactions) == len(b.interactions) == len(df)
    assert (a.interactions["item"] == b.interactions["item"]).all()
    c = read_interactions(small_log)  # folder with ratings.csv + movies.csv
    assert c.items is not None and c.item_types["genres"] == "token_seq"


@pytest.mark.parametrize("content, problem", [
    ("", "empty"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n", "no interactions"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\tnan\t5\n", "rating"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t5\n7", "truncated"),
    ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\tinf\t5\n", "infinite"),
    ("foo:token\tbar:token\n1\t2\n", "user and item"),
])
def test_bad_files_raise_data_error(tmp_path, content, problem):
    path = tmp_path / "bad.inter"
    path.write_text(content)
    with pytest.raises(pj.DataError, match=r"bad\.inter") as err:
        pj.create_dataset("recsys.items", str(path))
    assert problem in str(err.value)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(pj.DataError, match=r"log\.parquet"):
        read_interactions(path)


def test_missing_path():
    with pytest.raises(pj.DataError, match="no such file"):
        read_interactions("/nonexistent/ratings.csv")
