from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import polyjepa as pj
from polyjepa import testing
from polyjepa_recsys.io import read_interactions


def test_recbole_atomic_files(atomic):
    rec = read_interactions(atomic.path)
    assert len(rec.interactions) == atomic.n_inter
    assert rec.interactions["user"].nunique() == atomic.n_users
    assert rec.items is not None and len(rec.items) == atomic.n_items
    assert rec.item_types == {"movie_title": "token_seq", "release_year": atomic.year_kind,
                              "class": "token_seq"}
    assert rec.users is not None and len(rec.users) == atomic.n_users
    assert rec.user_types == {"age": "float", "gender": "token", "occupation": "token",
                              "zip_code": "token"}
    uid, gender, occupation = atomic.user
    assert rec.users.set_index("user").loc[uid, "gender"] == gender
    assert rec.users.set_index("user").loc[uid, "occupation"] == occupation
    iid, genres, year = atomic.item
    item = rec.items.set_index("item").loc[iid]
    assert set(item["class"].split()) == genres and float(item["release_year"]) == year
    assert set(rec.interactions["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # the file path reads the same as its folder
    assert len(read_interactions(atomic.file("inter")).interactions) == atomic.n_inter


def test_ml100k_facts(ml100k):
    """A few facts of the real MovieLens-100k, as RecBole ships it."""
    rec = read_interactions(ml100k)
    assert rec.users.set_index("user").loc["1", "occupation"] == "technician"
    assert rec.items.set_index("item").loc["50", "release_year"] == "1977"  # Star Wars
    # two years are not numbers ("unkonwn", "V"), so the column stays categorical
    assert rec.item_types["release_year"] == "token"
    assert rec.interactions["timestamp"].min() == 874724710


def test_item_dataset_split_and_state(item_ds, atomic):
    split = item_ds.split
    assert len(item_ds) == atomic.n_items and split.n_items == atomic.n_items
    assert len(split.targets) == atomic.n_users
    assert sum(len(h) for h in split.histories) + len(split.targets) == atomic.n_inter
    assert int(split.counts.sum()) == atomic.n_inter - atomic.n_users
    kinds = {f["name"]: f["kind"] for f in item_ds.state["fields"]}
    assert kinds["item_id"] == "hash" and kinds["class"] == "multi"
    item = item_ds[0]
    assert item["x"].shape == (len(kinds), item_ds.state["max_values"])
    assert item["valid"].dtype == torch_bool()
    dep = np.asarray(item_ds.state["dependence"])
    assert dep.shape == (len(kinds), len(kinds)) and np.allclose(dep, dep.T)
    names = list(kinds)
    # the hashed id and the (nearly unique) title words carry no dependence; the genres
    # depend on the release year more than on nothing
    for near_unique in ("item_id", "movie_title"):
        i = names.index(near_unique)
        assert np.count_nonzero(dep[i]) == 1 and dep[i, i] == 1.0
    assert dep[names.index("class"), names.index("release_year")] > 0.01
    testing.check_dataset("recsys.items", str(item_ds.source))


def torch_bool():
    import torch

    return torch.bool


def test_latest_item_is_held_out(atomic):
    inter = pd.read_csv(atomic.file("inter"), sep="\t")
    inter.columns = ["u", "i", "r", "t"]
    ds = pj.create_dataset("recsys.sequences", str(atomic.path), max_len=20)
    u0 = ds.split.users[0]
    rows = inter[inter["u"].astype(str) == u0].sort_values("t", kind="stable")
    target = ds.data.item_ids[ds.split.targets[0]]
    assert target == str(rows["i"].iloc[-1])
    sample = ds[0]
    assert sample["x"].shape[0] == 20 and bool(sample["valid"][-1])
    # the last valid position is the latest training item
    hist = ds.split.histories[0]
    assert np.array_equal(sample["x"][-1].numpy(), ds.data.item_x[hist[-1]].numpy())


def test_state_reused_and_cold_items(atomic, small_log):
    small = pj.create_dataset("recsys.items", str(small_log))
    assert [f["name"] for f in small.state["fields"]][:2] == ["item_id", "genres"]
    # the run trained on 40 users meets the full log: items unseen in its training data
    # are cold, get no id token, but keep their genre token
    ds = pj.create_dataset("recsys.items", str(small_log / "full"), state=small.state)
    assert ds.state["fields"] == small.state["fields"]
    cold = ds.split.cold
    assert cold.sum() > 0.05 * atomic.n_items
    i = int(np.flatnonzero(cold)[0])
    assert not bool(ds[i]["valid"][0]) and bool(ds[i]["valid"][1])
    # data without the features the run was trained on is refused
    with pytest.raises(pj.DataError, match="genres"):
        pj.create_dataset("recsys.items", str(atomic.path), state=small.state)


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


@pytest.mark.parametrize("layout", ["100k", "1m"])
def test_movielens_layouts(movielens_layouts, layout):
    folder = movielens_layouts[layout]
    atomic = movielens_layouts["atomic"]
    rec = read_interactions(folder)
    assert len(rec.interactions) == movielens_layouts["n"]
    assert rec.interactions["user"].nunique() == 30
    assert rec.items is not None and len(rec.items) == atomic.n_items
    assert rec.item_types == {"genre": "token_seq", "release_year": "float"}
    iid, genres, year = atomic.item  # Toy Story (1995) in ml-100k
    item = rec.items.set_index("item").loc[iid]
    assert set(item["genre"].split()) == genres
    assert item["release_year"] == year
    assert rec.users is not None and len(rec.users) == atomic.n_users
    uid, gender, _ = atomic.user
    assert rec.users.set_index("user").loc[uid, "gender"] == gender
    assert rec.user_types["occupation"] == "token"
    # the same log through the file path instead of the folder
    name = "u.data" if layout == "100k" else "ratings.dat"
    assert len(read_interactions(folder / name).interactions) == movielens_layouts["n"]
    ds = pj.create_dataset("recsys.items", str(folder))
    kinds = {f["name"]: f["kind"] for f in ds.state["fields"]}
    assert kinds == {"item_id": "hash", "genre": "multi", "release_year": "num",
                     "popularity": "num"}


def test_tsv_log_with_dates_and_feature_tables(atomic, small_log, tmp_path):
    df = pd.read_csv(small_log / "ratings.csv")
    df = df.rename(columns={"user_id": "userId", "item_id": "movieId"})
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    df.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    users = pd.read_csv(atomic.file("user"), sep="\t", dtype=str)
    users.columns = ["userId", "age", "sex", "occupation", "zip"]
    users.to_parquet(tmp_path / "users.parquet")
    rec = read_interactions(tmp_path / "log.tsv", items=small_log / "movies.csv",
                            users=tmp_path / "users.parquet")
    assert len(rec.users) == atomic.n_users and rec.user_types["age"] == "float"
    assert rec.user_types["occupation"] == "token"
    ref = read_interactions(small_log / "ratings.csv")
    assert (rec.interactions["user"] == ref.interactions["user"]).all()
    assert np.allclose(rec.interactions["timestamp"], ref.interactions["timestamp"])
    assert rec.item_types["genres"] == "token_seq"


def test_implicit_log_without_rating_or_time(small_log, tmp_path):
    df = pd.read_csv(small_log / "ratings.csv")[["user_id", "item_id"]]
    df.to_parquet(tmp_path / "clicks.parquet")
    rec = read_interactions(tmp_path / "clicks.parquet")
    assert (rec.interactions["rating"] == 1.0).all()
    # without timestamps the file order is the chronological order
    assert (np.diff(rec.interactions["timestamp"]) > 0).all()


def test_audience_field(small_log):
    small = pj.create_dataset("recsys.items", str(small_log), audience=6)
    names = [f["name"] for f in small.state["fields"]]
    assert names[-1] == "audience" and small.state["max_values"] >= 6
    f = len(names) - 1
    codes = small.data.item_x[:, f]
    n_users = (codes > 0).sum(1)
    counts = torch_bincount(small)
    # every trained item lists its distinct training users, at most 6 of them
    assert (n_users.numpy() == np.minimum(counts, 6)).all()
    assert not small.data.item_valid[small.split.cold, f].any()
    again = pj.create_dataset("recsys.items", str(small_log), audience=6)
    assert np.array_equal(again.data.item_x.numpy(), small.data.item_x.numpy())
    # reused with the run's state, the field keeps its width without being asked again
    full = pj.create_dataset("recsys.items", str(small_log / "full"), state=small.state)
    assert int((full.data.item_x[:, f] > 0).sum(1).max()) == 6


def torch_bincount(ds):
    return np.asarray([len(set(u for u, h in zip(ds.split.users, ds.split.histories)
                                if i in set(h.tolist())))
                       for i in range(ds.split.n_items)])


def test_unparseable_dates(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n1,2,2020-01-01\n1,3,not a date\n")
    with pytest.raises(pj.DataError, match=r"log\.csv.*timestamp"):
        read_interactions(path)


def test_high_cardinality_fields_are_hashed(item_ds, atomic):
    k = atomic.vocab_between
    ds = pj.create_dataset("recsys.items", str(atomic.path), max_vocab=k)
    spec = {f["name"]: f for f in ds.state["fields"]}
    # more distinct title words than k (2,600+ in ml-100k): hashed into k buckets; the
    # genres (19 in ml-100k) keep a vocabulary
    assert spec["movie_title"]["hash_values"] and spec["movie_title"]["size"] == k
    assert "vocab" not in spec["movie_title"] and len(spec["class"]["vocab"]) == atomic.n_genres
    f = list(spec).index("movie_title")
    codes = ds.data.item_x[:, f]
    assert int(codes.max()) <= k and bool(ds.data.item_valid[:, f].all())
    # the default vocabulary holds every title word, so nothing is hashed
    assert "vocab" in {g["name"]: g for g in item_ds.state["fields"]}["movie_title"]


@pytest.mark.parametrize("content, problem", [
    ("", "empty"),
    ("item_id,genres\n", "no rows"),
    ("name,genres\n1,Drama\n", "no item id column"),
    ("item_id,price\n" + "".join(f"{i},{i}.5\n" for i in range(30)) + "31,inf\n", "infinite"),
])
def test_bad_item_tables(small_log, tmp_path, content, problem):
    path = tmp_path / "items.csv"
    path.write_text(content)
    with pytest.raises(pj.DataError, match=r"items\.csv") as err:
        read_interactions(small_log / "ratings.csv", items=path)
    assert problem in str(err.value)


def _copy_atomic(atomic, dest):
    import shutil

    dest.mkdir()
    for suffix in ("inter", "item", "user"):
        shutil.copy(atomic.file(suffix), dest / atomic.file(suffix).name)
    return dest / atomic.file("inter").name


@pytest.mark.parametrize("cut, problem", [
    # the last line cut inside its timestamp (881250949 -> 881250): every field is there
    (lambda text: text.rstrip("\n")[:-3], r"line {last}, the last, is cut off: .*timestamp"),
    # cut after the rating: the timestamp is missing
    (lambda text: text.rstrip("\n").rsplit("\t", 1)[0],
     r"line {last} has 3 fields, expected 4 \(a truncated line"),
    (lambda text: text.rstrip("\n").rsplit("\t", 2)[0] + "\n",
     r"line {last} has 2 fields, expected 4"),
    # a line in the middle that lost a field, and one with a field too many
    (lambda text: text.replace("\n", "\n1\t2\t3\n", 5).replace("\n1\t2\t3\n", "\n", 4),
     r"line 6 has 3 fields"),
    (lambda text: text.replace("\n", "\t7\n", 3).replace("\t7\n", "\n", 2),
     r"line 3 has 5 fields, expected 4"),
])
def test_truncated_inter_file_names_file_and_line(atomic, tmp_path, cut, problem):
    """A truncated or damaged copy of the log is refused with its file and line, not
    read into a missing rating or an out-of-range date."""
    path = _copy_atomic(atomic, tmp_path / "copy")
    text = path.read_text()
    path.write_text(cut(text))
    last = atomic.n_inter + 1
    with pytest.raises(pj.DataError, match=rf"{path.name}: " + problem.format(last=last)):
        pj.create_dataset("recsys.items", str(path.parent))
    with pytest.raises(pj.DataError, match=rf"{path.name}: " + problem.format(last=last)):
        read_interactions(path)


def test_log_without_final_line_break_is_read(atomic, tmp_path):
    path = _copy_atomic(atomic, tmp_path / "copy")
    path.write_text(path.read_text().rstrip("\n"))
    rec = read_interactions(path)
    assert len(rec.interactions) == atomic.n_inter


def test_truncated_item_table(synthetic, tmp_path):
    path = _copy_atomic(synthetic, tmp_path / "copy")
    item = path.with_suffix(".item")
    lines = item.read_text().splitlines()
    item.write_text("\n".join(lines[:-1]) + "\n" + lines[-1].rsplit("\t", 1)[0])
    with pytest.raises(pj.DataError, match=rf"synthetic\.item: line {len(lines)} has 3 fields"):
        read_interactions(path)


@pytest.mark.parametrize("content, problem", [
    ("user_id,item_id,timestamp\n1,2,5\n1,3,\n", r"timestamp \('timestamp'\) is missing on "
                                                 r"line 3"),
    ("user_id,item_id,timestamp\n1,2,5\n\n1,3,abc\n", r"mixes numbers and text: 'abc' on "
                                                      r"line 4"),
    ("user_id,item_id,timestamp\n1,2,2020-01-01\n1,3,2020-01-02\n1,4,\n",
     r"timestamp \('timestamp'\) is missing on line 4"),
    ("user_id,item_id,rating\n1,2,5\n1,3,x\n", r"non-numeric value 'x' \(line 3\)"),
    ("user_id,item_id,rating\n1,2,5\n,3,4\n", r"column 'user_id' is empty on line 3"),
    ("user_id,item_id,time\n1,2,soon\n1,3,later\n", r"neither numeric nor a date \(e\.g\. "
                                                    r"'soon' on line 2\)"),
])
def test_bad_values_name_the_line(tmp_path, content, problem):
    path = tmp_path / "log.csv"
    path.write_text(content)
    with pytest.raises(pj.DataError, match=rf"log\.csv: .*{problem}"):
        read_interactions(path)


@pytest.mark.parametrize("recipe, key, meant", [
    ("recsys", "encoder.depht", "depth"),
    ("recsys", "dataset.max_vocb", "max_vocab"),
    ("recsys_seq", "dataset.max_length", "max_len"),
    ("recsys_seq", "encoder.embed_dims", "embed_dim"),
])
def test_misspelt_keys_are_config_errors(recipe, key, meant):
    """The factories take no catch-all, so a misspelt setting is named, not ignored."""
    with pytest.raises(pj.ConfigError, match=rf"{key}.*Did you mean .*{meant}"):
        pj.resolve_config(recipe, data="log.csv", overrides={key: 3})
