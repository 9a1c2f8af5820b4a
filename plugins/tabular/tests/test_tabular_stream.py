"""Streamed tables: the same samples as the in-memory reader, a reused and repaired cache."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa import ConfigError, DataError, create_dataset, testing


@pytest.fixture
def small_batches(monkeypatch):
    """Record batches of 16 rows and statistics blocks of 40 values, so that even the
    small tables here are read in many batches and their statistics merged."""
    import polyjepa_tabular.schema as schema
    import polyjepa_tabular.stream as stream

    monkeypatch.setattr(stream, "BATCH_ROWS", 16)
    monkeypatch.setattr(schema.Moments, "BLOCK", 40)


@pytest.fixture
def messy(tables):
    """The messy wine table (see conftest) with a group, a boolean and a missing label."""
    frame = tables["frame"].copy()
    frame["grp"] = np.arange(len(frame)) % 7
    frame["flag"] = np.arange(len(frame)) % 3 == 0
    frame.loc[3, "label"] = None
    return frame


def _same(a, b) -> None:
    assert a.state == b.state
    testing.check_same_samples(a, b)
    # whole batches: runs of rows, repeats, any order, the last row, negative indices
    n = len(b)
    for idx in ([5, 6, 7, 3, 3, n - 1, 0, 8, 9], list(range(n)), [n - 1, -1, 2]):
        got, want = b.__getitems__(idx), a.__getitems__(idx)
        assert isinstance(got, pj.StackedSamples)
        one_by_one = pj.collate([b[i] for i in idx])
        assert list(got.batch) == list(want.batch) == list(one_by_one)
        for key, value in got.batch.items():
            assert torch.equal(value, want.batch[key]), key
            assert torch.equal(value, one_by_one[key]), key
    for kind in ("dense", "tree"):
        ra, rb = a.raw_features(kind), b.raw_features(kind)
        assert np.array_equal(ra[0], rb[0], equal_nan=True)
        assert np.array_equal(ra[1], rb[1])


def _pair(path, tmp_path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = create_dataset("tabular.table", str(path), stream=False, **kw)
        b = create_dataset("tabular.table", str(path), stream=True,
                           cache_dir=str(tmp_path / "cache"), **kw)
    return a, b


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("missing", ["embed", "mask"])
def test_stream_same_as_in_memory(tmp_path, small_batches, fmt, missing, messy):
    path = tmp_path / f"t.{fmt}"
    frame = messy.copy()
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    a, b = _pair(path, tmp_path, target="label", group="grp", missing=missing)
    assert b.cache_folder.parent == tmp_path / "cache"
    kinds = {f["name"]: f["kind"] for f in b.state["features"]}
    assert kinds["band"] == "categorical" and kinds["alcohol"] == "numeric"
    assert bool(b.missing.any()) and len(b) == len(frame) - 1
    _same(a, b)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_stream_regression_and_reused_state(tmp_path, small_batches, messy, fmt):
    path = tmp_path / f"r.{fmt}"
    frame = messy.copy()
    frame["label"] = frame["alcohol"].fillna(13.0) * 1.5
    frame.loc[5, "label"] = None
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    a, b = _pair(path, tmp_path, target="label", drop=["grp"])
    assert b.task == "regression" and b.extras["y"].dtype == torch.float32
    _same(a, b)
    # a run's schema applied to new data: the same either way
    new = tmp_path / f"new.{fmt}"
    part = frame.drop(columns=["ash"]).iloc[::3]
    part.to_csv(new, index=False) if fmt == "csv" else part.to_parquet(new, index=False)
    a2, b2 = _pair(new, tmp_path, target="label", state=a.state)
    assert b2.state["features"] == a.state["features"]
    _same(a2, b2)


def test_stream_stray_words_warn_and_too_many_raise(tmp_path, small_batches, messy):
    frame = messy.drop(columns=["label"])
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[40, "alcohol"] = "abc"
    path = tmp_path / "stray.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"'alcohol': 1 of .* 'abc' on row 40"):
        b = create_dataset("tabular.table", str(path), stream=True, cache_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = create_dataset("tabular.table", str(path), stream=False)
    _same(a, b)
    frame.loc[:30, "alcohol"] = "abc"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"stray.csv: column 'alcohol' is numeric in the "
                                        r"schema but row \d+ holds 'abc'"):
        create_dataset("tabular.table", str(path), stream=True, cache_dir=str(tmp_path),
                       numeric=["alcohol"])


def test_stream_errors_name_file_and_line(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(DataError, match=r"ragged.csv: line 4 has 2 fields, the header has 3"):
        create_dataset("tabular.table", str(ragged), stream=True, cache_dir=str(tmp_path))
    dup = tmp_path / "dup.csv"
    dup.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"dup.csv: duplicate column names \['a'\]"):
        create_dataset("tabular.table", str(dup), stream=True, cache_dir=str(tmp_path))
    with pytest.raises(DataError, match="no target column 'nope'"):
        create_dataset("tabular.table", str(dup.with_name("ragged.csv")), target="nope",
                       stream=True, cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="stream=true needs a CSV/Parquet file"):
        create_dataset("tabular.table", "wine", stream=True)
    with pytest.raises(ConfigError, match="stream must be"):
        create_dataset("tabular.table", str(dup), stream="yes")


def test_stream_cache_reused_and_rebuilt(tmp_path, monkeypatch, messy):
    import polyjepa_tabular.stream as stream

    path = tmp_path / "t.parquet"
    messy.drop(columns=["label"]).to_parquet(path, index=False)
    first = create_dataset("tabular.table", str(path), stream=True, cache_dir=str(tmp_path))
    builds = []
    real = stream._build
    monkeypatch.setattr(stream, "_build", lambda *a: builds.append(1) or real(*a))
    again = create_dataset("tabular.table", str(path), stream=True, cache_dir=str(tmp_path))
    assert builds == [] and again.cache_folder == first.cache_folder
    assert torch.equal(first.x, again.x)
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, renamed
    # a damaged cache is read again, with a warning
    x_file = first.cache_folder / "x.npy"
    del first, again
    x_file.write_bytes(x_file.read_bytes()[:200])
    with pytest.warns(UserWarning, match="table cache is unreadable"):
        fixed = create_dataset("tabular.table", str(path), stream=True,
                               cache_dir=str(tmp_path))
    assert builds == [1] and fixed.x.shape[0] == len(messy)
    # other settings, or an edited file, are another cache entry
    other = create_dataset("tabular.table", str(path), stream=True, cache_dir=str(tmp_path),
                           clip=3.0)
    assert other.cache_folder != fixed.cache_folder


def test_stream_auto_threshold(tmp_path, monkeypatch, messy):
    import polyjepa_tabular.stream as stream

    path = tmp_path / "t.csv"
    messy.to_csv(path, index=False)
    assert not hasattr(create_dataset("tabular.table", str(path), target="label"),
                       "cache_folder")
    monkeypatch.setattr(stream, "STREAM_BYTES", 1000)
    monkeypatch.setenv("POLYJEPA_TABLE_CACHE", str(tmp_path / "env-cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = create_dataset("tabular.table", str(path), target="label")
    assert ds.cache_folder.parent == tmp_path / "env-cache"


def test_pretrain_on_streamed_table(tmp_path, messy):
    from tinyrun import SMALL

    path = tmp_path / "t.parquet"
    messy.to_parquet(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = pj.pretrain("tabular", data=str(path), out=str(tmp_path / "run"), overrides={
            **SMALL, "train.steps": 2, "dataset.target": "label", "dataset.stream": True,
            "dataset.cache_dir": str(tmp_path / "cache")}, progress=False)
    assert run is not None
    assert list((tmp_path / "cache").iterdir())
