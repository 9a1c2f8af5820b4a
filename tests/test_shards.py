"""Sharded data: any recipe's samples written as WebDataset shards and read back exactly,
so pretraining, resuming, embedding and evaluating on shards match the original data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from tinyrun import SMALL as TINY_RUN
from tinyrun import digits_npz

import polyjepa as pj
from polyjepa.checkpoint import load_tensors
from polyjepa.errors import ConfigError, DataError

pytest.importorskip("webdataset")

SMALL = {**TINY_RUN, "train.log_every": 1}
ON_SHARDS = {"dataset.name": "shards"}


def _pretrain(data, out, steps=2, **extra):
    return pj.pretrain("array", data=str(data), out=out, progress=False,
                       overrides={**SMALL, "train.steps": steps, **extra})


def _same_samples(a, b) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert sorted(x) == sorted(y), i
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), (i, k)


@pytest.fixture
def sharded(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    out = tmp_path / "shards"
    index = pj.write_shards("array", data=str(data), out=out, shard_size=10)
    return data, out, index


def test_every_sample_reads_back_equal(sharded):
    data, out, index = sharded
    original = pj.create_dataset("array", str(data))
    assert [s["count"] for s in index["shards"]] == [10, 10, 10, 2]
    assert sorted(p.name for p in out.iterdir()) == [
        "index.json", *(f"shard-{i:06d}.tar" for i in range(4))]
    assert index["fields"] == {"x": "tensor:float32", "y": "tensor:int64"}
    assert index["state"] == original.state and index["config"]["data"] == str(data)
    ds = pj.create_dataset("shards", str(out), cache_shards=2)
    assert ds.encoder_hints == original.encoder_hints and ds.state == original.state
    _same_samples(ds, original)
    assert len(ds._cache) == 2  # the LRU keeps at most cache_shards decoded shards
    _same_samples(pj.create_dataset("shards", out.as_uri()), original)  # a file:// URL
    _same_samples(pj.create_dataset("shards", str(out / "index.json")), original)


def test_shards_are_plain_webdataset_tars(sharded):
    import webdataset as wds

    data, out, _ = sharded
    original = pj.create_dataset("array", str(data))
    seen = list(wds.WebDataset(str(out / "shard-000001.tar"), shardshuffle=False))
    assert [s["__key__"] for s in seen] == [f"{i:09d}" for i in range(10, 20)]
    for i, s in zip(range(10, 20), seen):
        x = np.load(io.BytesIO(s["x.npy"]), allow_pickle=False)
        assert np.array_equal(x, original[i]["x"].numpy())


def test_pretrain_on_shards_equals_pretrain_on_the_original(sharded, tmp_path):
    data, out, _ = sharded
    a = _pretrain(data, tmp_path / "a")
    b = _pretrain(out, tmp_path / "b", **ON_SHARDS)
    assert b.config["dataset"] == {"name": "shards"}
    la = [r["loss"] for r in a.metrics() if "loss" in r]
    lb = [r["loss"] for r in b.metrics() if "loss" in r]
    assert len(la) == 2 and la == lb  # same samples, same order: the same losses
    wa, wb = load_tensors(a.path / "encoder.safetensors"), \
        load_tensors(b.path / "encoder.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # embed and evaluate work unchanged on the run trained on shards
    assert np.array_equal(pj.embed(a), pj.embed(b))
    assert pj.evaluate(b, evaluators=["rankme"])["rankme"] > 0


def test_training_on_shards_resumes_exactly(sharded, tmp_path):
    _, out, _ = sharded
    full = _pretrain(out, tmp_path / "full", steps=4, **ON_SHARDS,
                     **{"train.checkpoint_every": 2})

    def stop_at_three(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pj.pretrain("array", data=str(out), out=tmp_path / "cut", progress=False,
                    callbacks=[stop_at_three],
                    overrides={**SMALL, **ON_SHARDS, "train.steps": 4,
                               "train.checkpoint_every": 2})
    cut = _pretrain(out, tmp_path / "cut", steps=4, **ON_SHARDS,
                    **{"train.checkpoint_every": 2})
    wf, wc = load_tensors(full.path / "encoder.safetensors"), \
        load_tensors(cut.path / "encoder.safetensors")
    assert all(torch.equal(wf[k], wc[k]) for k in wf)


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_shard_is_a_one_line_error_naming_it(sharded, verify):
    _, out, _ = sharded
    shard = out / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    ds = pj.create_dataset("shards", str(out), verify=verify)
    assert torch.is_tensor(ds[3]["x"])  # the other shards still read
    with pytest.raises(DataError, match=r"shard-000001\.tar") as err:
        ds[12]
    assert len(str(err.value).splitlines()) == 1
    assert ("checksum mismatch" if verify else "corrupt or truncated") in str(err.value)


def test_changed_bytes_and_missing_shards_are_named(sharded):
    _, out, _ = sharded
    shard = out / "shard-000002.tar"
    raw = bytearray(shard.read_bytes())
    raw[1200] ^= 0xFF  # inside the first sample's data: still a valid tar
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"shard-000002\.tar: checksum mismatch"):
        pj.create_dataset("shards", str(out))[25]
    (out / "shard-000003.tar").unlink()
    with pytest.raises(DataError, match=r"shard .*shard-000003\.tar: cannot read it"):
        pj.create_dataset("shards", str(out))[31]


def test_bad_shard_folders_are_refused(core_only, tmp_path):
    with pytest.raises(DataError, match=r"index\.json: no such file"):
        pj.create_dataset("shards", str(tmp_path))
    with pytest.raises(DataError, match="needs data"):
        pj.create_dataset("shards", None)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a polyjepa shard index"):
        pj.create_dataset("shards", str(tmp_path))
    data = digits_npz(tmp_path / "d.npz")
    with pytest.raises(ConfigError, match="holds other files"):  # d.npz is there
        pj.write_shards("array", data=str(data), out=tmp_path)
    with pytest.raises(ConfigError, match="shard_size must be above 0"):
        pj.write_shards("array", data=str(data), out=tmp_path / "s", shard_size=0)


def test_rewriting_replaces_earlier_shards(sharded):
    data, out, _ = sharded
    index = pj.write_shards("array", data=str(data), out=out, shard_size=20)
    assert sorted(p.name for p in out.iterdir()) == [
        "index.json", "shard-000000.tar", "shard-000001.tar"]
    _same_samples(pj.create_dataset("shards", str(out)), pj.create_dataset("array", str(data)))
    assert index["count"] == 32


def test_cli_shard_then_pretrain_on_corrupt_shards_is_one_line(core_only, tmp_path, cli):
    data = digits_npz(tmp_path / "d.npz")
    out = tmp_path / "sh"
    proc = cli("shard", "array", "--data", str(data), "--out", str(out), "--shard-size", "8",
               "--no-progress")
    assert "wrote 32 samples in 4 shards" in proc.stdout
    assert json.loads((out / "index.json").read_text())["count"] == 32
    for shard in out.glob("shard-*.tar"):
        shard.write_bytes(shard.read_bytes()[:3000])
    sets = [a for k, v in {**SMALL, **ON_SHARDS, "train.steps": 1}.items()
            for a in ("--set", f"{k}={v}")]
    proc = cli("pretrain", "array", "--data", str(out), "--out", str(tmp_path / "r"),
               "--no-progress", *sets, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "shard-00000" in lines[0] and "checksum mismatch" in lines[0]


def test_a_plugin_dataset_round_trips(tmp_path):
    pytest.importorskip("polyjepa_tabular")
    from polyjepa import plugins
    from polyjepa_tabular.bundled import sklearn_frame

    plugins.reset()
    frame = sklearn_frame("wine")
    frame.iloc[::7, 2] = np.nan  # missing values travel as the 'missing' field
    csv = tmp_path / "wine.csv"
    frame.to_csv(csv, index=False)
    sets = {"dataset.target": "target"}
    index = pj.write_shards("tabular", data=str(csv), out=tmp_path / "sh", overrides=sets,
                            shard_size=50)
    original = pj.create_dataset("tabular.table", str(csv), target="target")
    ds = pj.create_dataset("shards", str(tmp_path / "sh"))
    assert index["task"] == "classification" == ds.task
    assert ds.state == json.loads(json.dumps(original.state))
    assert ds.encoder_hints == original.encoder_hints
    assert "missing" in index["fields"]
    _same_samples(ds, original)


def test_evaluation_shards_take_the_training_state(sharded, tmp_path):
    from sklearn.datasets import load_digits

    _, _, index = sharded

    other = tmp_path / "other.npz"
    np.savez(other, x=load_digits().images[100:120].astype(np.float32))
    evaluation = tmp_path / "eval"
    written = pj.write_shards("array", data=str(other), out=evaluation, state=index["state"])
    assert written["state"] == index["state"]
    expected = pj.create_dataset("array", str(other), state=index["state"])
    _same_samples(pj.create_dataset("shards", str(evaluation)), expected)
    with pytest.warns(UserWarning, match="another dataset state"):
        pj.create_dataset("shards", str(evaluation), state={"mean": [0.0], "std": [1.0]})
