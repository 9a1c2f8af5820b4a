"""The table readers: schema inference and reuse, missing values, categories, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from polyjepa import DataError, create_dataset, create_encoder, testing


def test_csv_and_parquet_agree(tables):
    a = create_dataset("tabular.table", str(tables["csv"]), target="label")
    b = create_dataset("tabular.table", str(tables["parquet"]), target="label")
    assert len(a) == len(b) == len(tables["frame"])
    assert a.state == b.state
    assert torch.equal(a.x, b.x) and torch.equal(a.missing, b.missing)
    assert torch.equal(a.extras["y"], b.extras["y"])


def test_schema_inferred(tables):
    ds = testing.check_dataset("tabular.table", str(tables["csv"]), target="label")
    kinds = {f["name"]: f["kind"] for f in ds.state["features"]}
    assert kinds["band"] == "categorical"
    assert sum(k == "numeric" for k in kinds.values()) == 13
    assert "label" not in kinds
    band = next(f for f in ds.state["features"] if f["name"] == "band")
    assert sorted(band["categories"]) == ["high", "low", "mid"]
    assert ds.state["target"] == {"name": "label", "task": "classification",
                                  "classes": ["class_0", "class_1", "class_2"]}
    # missing values are flagged, not imputed into x: x is 0 there and missing is True
    frame = tables["frame"]
    col = list(frame.columns).index("alcohol")
    expected = frame["alcohol"].isna().to_numpy()
    assert expected.any()
    assert np.array_equal(ds.missing[:, col].numpy(), expected)
    assert bool((ds.x[ds.missing] == 0).all())
    # numeric columns standardised with training statistics
    vals = ds.x[~ds.missing[:, col], col].numpy()
    assert abs(vals.mean()) < 1e-4 and abs(vals.std() - 1) < 1e-3
    item = ds[0]
    assert set(item) >= {"x", "missing", "y"} and item["missing"].dtype == torch.bool
    assert ds.encoder_hints["n_features"] == 14
    assert ds.encoder_hints["cardinalities"].count(0) == 13


def test_state_reuse_unseen_categories_and_absent_columns(tables):
    train = create_dataset("tabular.table", str(tables["csv"]), target="label")
    new = tables["frame"].head(10).copy()
    new["band"] = ["never-seen"] * 5 + ["low"] * 5
    new = new.drop(columns=["alcohol"])
    new["extra_column"] = 1.0
    with pytest.warns(UserWarning, match="alcohol"):
        ds = create_dataset("tabular.table", new, target="label", state=train.state)
    assert ds.state["features"] == train.state["features"]
    j = [f["name"] for f in train.state["features"]].index("band")
    low = train.state["features"][j]["categories"].index("low") + 1
    assert ds.x[:5, j].tolist() == [0.0] * 5  # the unknown id
    assert ds.x[5:, j].tolist() == [float(low)] * 5
    assert bool(ds.missing[:, 0].all())  # absent column -> all missing
    # the same statistics are reused: row values equal the training encoding
    assert torch.equal(ds.x[5:, 1:j], train.x[5:10, 1:j])
    # unlabelled data with the run's schema has no y
    with pytest.warns(UserWarning, match="absent"):
        unl = create_dataset("tabular.table", new.drop(columns=["label"]), target="label",
                             state=train.state)
    assert "y" not in unl[0]


def test_all_missing_column_and_mask_mode():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [np.nan] * 4,
                          "c": ["x", None, "y", "x"], "t": [0, 1, 0, 1]})
    ds = create_dataset("tabular.table", frame, target="t")
    b = ds.state["features"][1]
    assert b["kind"] == "numeric" and b["mean"] == 0.0 and b["std"] == 1.0
    assert bool(ds.missing[:, 1].all())
    masked = create_dataset("tabular.table", frame, target="t", missing="mask")
    assert torch.equal(masked[1]["valid"], torch.tensor([True, False, False]))
    # an all-missing text column: a categorical feature with only the unknown id
    frame["d"] = [None] * 4
    ds = create_dataset("tabular.table", frame, target="t")
    assert ds.state["features"][3] == {"name": "d", "kind": "categorical", "categories": []}
    assert ds.cardinalities[3] == 1 and bool(ds.missing[:, 3].all())
    dense, cat = ds.raw_features("dense")
    assert np.isfinite(dense).all() and dense.shape[0] == 4 and cat.sum() == 3 + 1
    enc = create_encoder("tabular.transformer", embed_dim=8, depth=1, num_heads=2,
                         **ds.encoder_hints)
    assert torch.isfinite(enc({"x": ds.x, "missing": ds.missing})).all()


def test_sklearn_sets():
    for name, n, f, task in (("breast_cancer", 569, 30, "classification"),
                             ("wine", 178, 13, "classification"),
                             ("iris", 150, 4, "classification"),
                             ("digits", 1797, 64, "classification"),
                             ("diabetes", 442, 10, "regression"),
                             ("linnerud", 20, 3, "regression")):
        ds = create_dataset("tabular.sklearn", name)
        assert len(ds) == n and ds.x.shape[1] == f and ds.task == task
    assert ds.extras["y"].dtype == torch.float32
    assert ds.feature_names == ["Chins", "Situps", "Jumps"]
    with pytest.raises(DataError, match="unknown bundled table"):
        create_dataset("tabular.sklearn", "iris_typo")


def test_statsmodels_tables_by_name():
    """The larger real tables the statsmodels wheel ships, read from its CSV files."""
    from polyjepa_tabular.bundled import statsmodels_dir

    with pytest.raises(DataError, match="statsmodels:affairs: unknown bundled table"):
        create_dataset("tabular.table", "statsmodels:affairs")
    if statsmodels_dir() is None:
        pytest.skip("statsmodels is not installed")
    ds = create_dataset("tabular.table", "statsmodels:fair")
    assert ds.source == "statsmodels:fair" and ds.task == "classification"
    assert len(ds) == 6366 and ds.x.shape == (6366, 8)
    assert ds.state["target"]["classes"] == ["0", "1"]
    assert 0.3 < float(ds.extras["y"].float().mean()) < 0.35  # 2,053 of 6,366 had an affair
    assert len(create_dataset("tabular.table", "statsmodels:randhie")) == 20190


def test_bundled_names_in_table_reader(tmp_path, monkeypatch):
    """The plain reader takes a bundled table's name, so the default recipe runs on it."""
    ds = create_dataset("tabular.table", "iris")
    ref = create_dataset("tabular.sklearn", "iris")
    assert ds.source == "sklearn:iris" and ds.task == "classification"
    assert ds.state == ref.state and torch.equal(ds.x, ref.x)
    assert ds.extras["y"].tolist() == ref.extras["y"].tolist()
    assert ds.state["target"]["classes"] == ["0", "1", "2"]
    assert create_dataset("tabular.table", "sklearn:diabetes").task == "regression"
    again = create_dataset("tabular.table", "iris", state=ds.state)
    assert torch.equal(again.x, ds.x)
    with pytest.raises(DataError, match="irs: no such file .*bundled scikit-learn table"):
        create_dataset("tabular.table", "irs")
    with pytest.raises(DataError, match="sklearn:irs: unknown bundled table"):
        create_dataset("tabular.table", "sklearn:irs")
    # a local file of that name wins over the bundled table
    monkeypatch.chdir(tmp_path)
    (tmp_path / "iris").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unknown table format"):
        create_dataset("tabular.table", "iris")


def test_regression_target_and_groups():
    frame = pd.DataFrame({"a": np.linspace(0, 1, 20), "g": np.repeat(list("abcde"), 4),
                          "t": np.linspace(0.5, 3.7, 20)})
    ds = create_dataset("tabular.table", frame, target="t", group="g")
    assert ds.task == "regression" and ds.x.shape == (20, 1)
    assert ds.extras["group"].tolist() == list(np.repeat(range(5), 4))


def test_missing_target_rows_dropped():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "t": [0, None, 1, 0]})
    with pytest.warns(UserWarning, match="dropped 1 rows"):
        ds = create_dataset("tabular.table", frame, target="t")
    assert len(ds) == 3


def test_bad_inputs_name_the_file(tmp_path, tables):
    with pytest.raises(DataError, match="no such file"):
        create_dataset("tabular.table", str(tmp_path / "nope.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv"):
        create_dataset("tabular.table", str(empty))
    header = tmp_path / "header.csv"
    header.write_text("a,b,c\n")
    with pytest.raises(DataError, match=r"header\.csv: the table has no rows"):
        create_dataset("tabular.table", str(header))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(tables["parquet"].read_bytes()[:200])
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read"):
        create_dataset("tabular.table", str(broken))
    inf = tmp_path / "inf.csv"
    inf.write_text("a,b\n1,2\ninf,3\n")
    with pytest.raises(DataError, match=r"inf\.csv: column 'a' holds an infinite"):
        create_dataset("tabular.table", str(inf))
    with pytest.raises(DataError, match="no target column 'nolabel'"):
        create_dataset("tabular.table", str(tables["csv"]), target="nolabel")
    other = tmp_path / "x.json"
    other.write_text("{}")
    with pytest.raises(DataError, match="unknown table format"):
        create_dataset("tabular.table", str(other))
    train = create_dataset("tabular.table", str(tables["csv"]), target="label")
    bad = tables["frame"].head(4).copy()
    bad["alcohol"] = ["1.0", "oops", "2", "3"]
    with pytest.raises(DataError, match="'alcohol' is numeric in the schema but row 1"):
        create_dataset("tabular.table", bad, target="label", state=train.state)
    with pytest.raises(DataError, match="2-D"):
        create_dataset("tabular.table", np.zeros(5))
    # the text a run keeps for a table that was given in memory
    with pytest.raises(DataError, match="not a path to a table.*pass it again"):
        create_dataset("tabular.table", str(tables["frame"]))


def test_array_input():
    x = np.random.default_rng(0).normal(size=(30, 5))
    x[3, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = create_dataset("tabular.table", x)
    assert ds.x.shape == (30, 5) and bool(ds.missing[3, 2]) and "y" not in ds[0]


def test_text_first_column_is_categorical(odd_tables):
    ds = create_dataset("tabular.table", str(odd_tables["text_first"]), target="label")
    kinds = [f["kind"] for f in ds.state["features"]]
    assert kinds == ["categorical"] + ["numeric"] * 5
    assert ds.cardinalities == [4, 0, 0, 0, 0, 0]  # blue, green, red + unknown
    assert set(ds.x[:, 0].tolist()) == {1.0, 2.0, 3.0}


def test_stray_word_in_numeric_column(odd_tables):
    """One ``abc`` among numbers: the column stays numeric, that entry is missing, and the
    reader says which file, column and line, and how many entries were not numbers."""
    col = odd_tables["stray_column"]
    with pytest.warns(UserWarning, match=rf"stray\.csv: column '{col}': 1 of \d+ entries "
                                         r"are not numbers \(first 'abc' on line 7\)"):
        ds = create_dataset("tabular.table", str(odd_tables["stray"]), target="label")
    feat = ds.state["features"][0]
    assert feat["name"] == col and feat["kind"] == "numeric"
    assert ds.cardinalities == [0] * 5
    assert bool(ds.missing[5, 0]) and float(ds.x[5, 0]) == 0.0
    # the statistics ignore the stray entry: the other values are standardised
    vals = ds.x[~ds.missing[:, 0], 0].numpy()
    assert abs(vals.mean()) < 1e-4 and abs(vals.std() - 1) < 1e-3
    # the user can keep such a column as categories
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat = create_dataset("tabular.table", str(odd_tables["stray"]), target="label",
                             categorical=[col])
    assert cat.state["features"][0]["kind"] == "categorical"


def test_stray_words_in_memory_and_at_reuse(tmp_path):
    rng = np.random.default_rng(0)
    values = list(np.round(rng.normal(size=40), 3))
    mixed = pd.DataFrame({"a": [*values[:39], "n/a?"], "t": [0, 1] * 20})
    with pytest.warns(UserWarning, match=r"<DataFrame>: column 'a': 1 of 40 .* row 39"):
        ds = create_dataset("tabular.table", mixed, target="t")
    assert ds.state["features"][0]["kind"] == "numeric" and bool(ds.missing[39, 0])
    # a text column of number-like codes from a typed source stays categorical
    codes = pd.DataFrame({"zip": pd.Series([f"{i % 7:05d}" for i in range(40)], dtype=str),
                          "t": [0, 1] * 20})
    assert create_dataset("tabular.table", codes, target="t").cardinalities == [8]
    # mostly text in a CSV: categorical, no warning
    text = tmp_path / "text.csv"
    text.write_text("a,b\n" + "".join(f"{'xyz'[i % 3] if i % 4 else i},{i}\n"
                                      for i in range(40)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert create_dataset("tabular.table", str(text)).cardinalities == [14, 0]
    # a run's numeric column meeting a stray word at evaluation: missing, with a warning
    new = tmp_path / "new.csv"
    new.write_text("a,t\n" + "".join(f"{v},0\n" for v in values[:30]) + "oops,1\n")
    with pytest.warns(UserWarning, match=r"new\.csv: column 'a': 1 of 31 .*line 32"):
        again = create_dataset("tabular.table", str(new), target="t", state=ds.state)
    assert bool(again.missing[30, 0]) and not bool(again.missing[:30, 0].any())
    # a regression target has no missing value: a word there is an error with its line
    reg = tmp_path / "reg.csv"
    reg.write_text("a,y\n" + "".join(f"{i},{i * 0.37:.2f}\n" for i in range(40)) + "1,bad\n")
    with pytest.raises(DataError, match=r"reg\.csv: column 'y' .* line 42 holds 'bad'"):
        create_dataset("tabular.table", str(reg), target="y", task="regression")


@pytest.mark.parametrize("name, text, problem", [
    ("short.csv", "a,b,c\n1,2,3\n4,5\n7,8,9\n", "line 3 has 2 fields, the header has 3"),
    ("long.csv", "a,b,c\n1,2,3\n4,5,6,7\n7,8,9\n", "line 3 has 4 fields, the header has 3"),
    # every row one longer: pandas would take the first column as the row index
    ("shifted.csv", "a,b,c\n1,2,3,4\n4,5,6,7\n", "line 2 has 4 fields"),
    # cut off at the end, after a blank line and a value with a line break in quotes
    ("cut.csv", 'a,b,c\n1,"two\nlines",3\n\n4,5,6\n7,8', "line 6 has 2 fields"),
    ("tab.tsv", "a\tb\n1\t2\n3\n", "line 3 has 1 fields, the header has 2"),
])
def test_ragged_rows_name_file_and_line(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=rf"{name.replace('.', '[.]')}: {problem}"):
        create_dataset("tabular.table", str(path))


def test_ragged_rows_in_compressed_csv(tmp_path):
    import gzip

    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("a,b\n1,2\n3,4\n5\n")
    with pytest.raises(DataError, match=r"t\.csv\.gz: line 4 has 1 fields"):
        create_dataset("tabular.table", str(path))
    # blank lines and quoted separators are not ragged rows
    ok = tmp_path / "ok.csv"
    ok.write_text('a,b,c\n1,"x, y",3\n\n  \n4,z,6\n')
    ds = create_dataset("tabular.table", str(ok))
    assert len(ds) == 2 and ds.cardinalities == [0, 3, 0]


def test_duplicate_column_names(tmp_path):
    csv = tmp_path / "dup.csv"
    csv.write_text("a,b,a,c,b\n1,2,3,4,5\n6,7,8,9,0\n")
    with pytest.raises(DataError, match=r"dup\.csv: duplicate column names \['a', 'b'\]"):
        create_dataset("tabular.table", str(csv))
    # a separator pandas reads as a regular expression: the header is still checked
    with pytest.raises(DataError, match=r"dup\.csv: duplicate column names"):
        create_dataset("tabular.table", str(csv), sep=r"\s*,\s*")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pqt = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array([5, 6])],
                            names=["x", "x", "y"]), pqt)
    with pytest.raises(DataError, match=r"dup\.parquet: duplicate column names \['x'\]"):
        create_dataset("tabular.table", str(pqt))
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    with pytest.raises(DataError, match=r"<DataFrame>: duplicate column names \['a'\]"):
        create_dataset("tabular.table", frame)


@pytest.mark.parametrize("missing", ["embed", "mask"])
def test_batched_fetch_equals_per_sample_items(missing):
    """The DataLoader's batched fetch gives, byte for byte, the collated items."""
    from torch.utils.data import default_collate

    from polyjepa.data import collate

    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0, 5.0], "b": list("xyxzx"),
                          "t": [0, 1, 0, 1, 1]})
    ds = create_dataset("tabular.table", frame, target="t", missing=missing)
    idx = [3, 1, 4, 1]
    batched = collate(ds.__getitems__(idx))
    plain = default_collate([ds[i] for i in idx])
    assert set(batched) == set(plain) >= {"x", "missing", "y"}
    assert ("valid" in batched) == (missing == "mask")
    for key in plain:
        assert batched[key].dtype == plain[key].dtype
        assert torch.equal(batched[key], plain[key])
