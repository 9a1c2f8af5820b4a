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
from polyjepa import testing
from polyjepa.checkpoint import load_tensors
from polyjepa.errors import ConfigError, DataError

pytest.importorskip("webdataset")

SMALL = {**TINY_RUN, "train.log_every": 1}
ON_SHARDS = {"dataset.name": "shards"}


def _pretrain(data, out, steps=2, **extra):
    return pj.pretrain("array", data=str(data), out=out, progress=False,
                       overrides={**SMALL, "train.steps": steps, **extra})


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
    testing.check_same_samples(ds, original)
    assert len(ds._cache) == 2  # the LRU keeps at most cache_shards decoded shards
    testing.check_same_samples(pj.create_dataset("shards", out.as_uri()), original)  # a file:// URL
    testing.check_same_samples(pj.create_dataset("shards", str(out / "index.json")), original)


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


def _flip_byte(shard, at: int) -> None:
    """Invert one byte of ``shard`` inside a member's data: the tar stays valid, only the
    checksum can tell."""
    raw = bytearray(shard.read_bytes())
    raw[at] ^= 0xFF
    shard.write_bytes(bytes(raw))


def test_changed_bytes_and_missing_shards_are_named(sharded):
    _, out, _ = sharded
    _flip_byte(out / "shard-000002.tar", 1200)  # inside the first sample's data
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
    testing.check_same_samples(pj.create_dataset("shards", str(out)), pj.create_dataset("array", str(data)))
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
    testing.check_same_samples(ds, original)


def test_evaluation_shards_take_the_training_state(sharded, tmp_path):
    from sklearn.datasets import load_digits

    _, _, index = sharded

    other = tmp_path / "other.npz"
    np.savez(other, x=load_digits().images[100:120].astype(np.float32))
    evaluation = tmp_path / "eval"
    written = pj.write_shards("array", data=str(other), out=evaluation, state=index["state"])
    assert written["state"] == index["state"]
    expected = pj.create_dataset("array", str(other), state=index["state"])
    testing.check_same_samples(pj.create_dataset("shards", str(evaluation)), expected)
    with pytest.warns(UserWarning, match="another dataset state"):
        pj.create_dataset("shards", str(evaluation), state={"mean": [0.0], "std": [1.0]})


# -- streaming ----------------------------------------------------------------------------
ON_STREAM = {"dataset.name": "shards", "dataset.stream": True, "dataset.shuffle_buffer": 6}


def _stream(out, **kwargs):
    return pj.create_dataset("shards", str(out), stream=True,
                             **{"shuffle_buffer": 6, **kwargs})


def _reader_stream(ds, seed, rank, world, reader, readers, n):
    """The first ``n`` sample numbers of one reader, from its epoch orders."""
    out, epoch = [], 0
    while len(out) < n:
        out += ds.epoch_order(seed, epoch, rank, world, reader, readers)
        epoch += 1
    return out[:n]


def _expected_batches(ds, seed, start, count, per, rank, world, workers):
    """Sample numbers of this rank's global batches start.. as the module docstring
    defines them: batch k is batch k // workers of reader k % workers."""
    streams = [_reader_stream(ds, seed, rank, world, w, workers,
                              per * ((start + count) // workers + 1)) for w in range(workers)]
    return [streams[k % workers][(k // workers) * per:(k // workers + 1) * per]
            for k in range(start, start + count)]


def _batch_ids(ds, batch):
    """The sample numbers of a batch's samples (each digit image is unique)."""
    xs = {ds[i]["x"].numpy().tobytes(): i for i in range(len(ds))}
    return [xs[x.numpy().tobytes()] for x in batch["x"]]


def test_stream_gives_every_sample_once_per_epoch(sharded):
    _, out, _ = sharded
    ds = _stream(out)
    assert isinstance(ds, pj.ShardStream) and len(ds) == 32
    for world, workers in [(1, 1), (1, 2), (2, 1), (2, 2)]:
        for epoch in (0, 1):
            seen = [i for r in range(world) for w in range(workers)
                    for i in ds.epoch_order(5, epoch, r, world, w, workers)]
            assert sorted(seen) == list(range(32)), (world, workers, epoch)
            shards = [j for r in range(world) for w in range(workers)
                      for j in ds.epoch_shards(5, epoch, r, world, w, workers)]
            assert sorted(shards) == [0, 1, 2, 3]  # whole shards, each to one reader
    # shuffled: not the written order, and another order in each epoch
    assert ds.epoch_order(5, 0) != list(range(32)) != ds.epoch_order(5, 1)
    assert ds.epoch_order(5, 0) == _stream(out).epoch_order(5, 0)  # same seed, same order
    assert ds.epoch_order(5, 0) != ds.epoch_order(6, 0)
    # the samples read are those the order names, across epoch ends
    reader = ds.samples(5, rank=1, world=2, worker=0, workers=2)
    for i in _reader_stream(ds, 5, 1, 2, 0, 2, 40):
        sample = next(reader)
        assert all(torch.equal(sample[k], ds[i][k]) for k in ds[i])


@pytest.mark.parametrize("world,workers", [(1, 0), (2, 2)])
def test_stream_loader_yields_the_defined_batches(sharded, world, workers):
    from polyjepa.data import train_loader

    _, out, _ = sharded
    ds = _stream(out)
    for rank in range(world):
        got = iter(train_loader(ds, 8, 3, 0, rank, world, workers))
        batches = [_batch_ids(ds, next(got)) for _ in range(6)]
        assert batches == _expected_batches(ds, 3, 0, 6, 8 // world, rank, world,
                                            max(1, workers))
        # from global batch 3 on (a resume): the same batches, whatever reader starts
        again = iter(train_loader(ds, 8, 3, 3, rank, world, workers))
        assert [_batch_ids(ds, next(again)) for _ in range(3)] == batches[3:]
    # 6 batches of 4 on the last rank: its readers' shards (one of them 2 samples) ran out
    # and went on into their next epochs
    assert len(batches) == 6


def test_stream_resume_skips_without_reading(sharded, monkeypatch):
    from polyjepa import shards

    _, out, _ = sharded
    ds = _stream(out, shuffle_buffer=3)
    skip = 25  # past the first two shards of the epoch and part of the third
    expected = ds[ds.epoch_order(1, 0)[skip]]["x"], ds[ds.epoch_order(1, 1)[skip]]["x"]
    first = ds.epoch_shards(1, 0)
    opened, decoded = [], []
    real_stream, real_decode = shards.ShardStream._stream_shard, shards._decode

    def stream_shard(self, j, wanted):
        opened.append(j)
        return real_stream(self, j, wanted)

    def decode(*args):
        decoded.append(args[0])
        return real_decode(*args)

    monkeypatch.setattr(shards.ShardStream, "_stream_shard", stream_shard)
    monkeypatch.setattr(shards, "_decode", decode)
    assert torch.equal(next(ds.samples(1, skip=skip))["x"], expected[0])
    assert first[0] not in opened and first[1] not in opened  # used up: never opened
    # decoded (2 fields a sample): the 2 samples a buffer of 3 still holds between
    # pushes and the next one in, not the 25 skipped
    assert len(decoded) == 2 * 3
    # whole epochs are skipped from the index alone
    opened.clear()
    assert torch.equal(next(ds.samples(1, skip=32 + skip))["x"], expected[1])
    assert set(opened) <= set(ds.epoch_shards(1, 1)[2:])


def test_pretrain_on_a_stream_resumes_exactly(sharded, tmp_path):
    _, out, _ = sharded
    sets = {**ON_STREAM, "train.checkpoint_every": 3, "train.num_workers": 2}
    full = _pretrain(out, tmp_path / "full", steps=5, **sets)

    def stop_at_four(step, row):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # killed after the checkpoint of step 3
        pj.pretrain("array", data=str(out), out=tmp_path / "cut", progress=False,
                    callbacks=[stop_at_four], overrides={**SMALL, **sets, "train.steps": 5})
    cut = _pretrain(out, tmp_path / "cut", steps=5, **sets)  # resumes from step 3 (odd)
    lf = [r["loss"] for r in full.metrics() if "loss" in r]
    lc = [r["loss"] for r in cut.metrics() if "loss" in r]
    assert len(lf) == 5 and lf == lc
    wf, wc = load_tensors(full.path / "encoder.safetensors"), \
        load_tensors(cut.path / "encoder.safetensors")
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    # another stream than the map-style view's, so other losses
    mapped = _pretrain(out, tmp_path / "mapped", steps=5, **ON_SHARDS)
    assert [r["loss"] for r in mapped.metrics() if "loss" in r] != lf


def test_embed_and_evaluate_on_a_streamed_run(sharded, tmp_path):
    data, out, _ = sharded
    run = _pretrain(out, tmp_path / "run", steps=2, **ON_STREAM)
    assert run.config["dataset"] == {"name": "shards", "stream": True, "shuffle_buffer": 6}
    emb = pj.embed(run)  # in shard order, through the map-style view
    assert emb.shape[0] == 32 and np.isfinite(emb).all()
    encoder = pj.load_encoder(run)
    original, _, _ = pj.embed_dataset(encoder, pj.create_dataset("array", str(data)), 8)
    assert np.array_equal(emb, original)
    assert pj.evaluate(run, evaluators=["rankme"])["rankme"] > 0


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_shard_in_a_stream_is_a_one_line_error(sharded, workers):
    from polyjepa.data import train_loader

    _, out, _ = sharded
    shard = out / "shard-000002.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    loader = iter(train_loader(_stream(out), 8, 0, 0, 0, 1, workers))
    with pytest.raises(DataError, match=r"shard .*shard-000002\.tar: corrupt or truncated") \
            as err:
        for _ in range(12):  # more than an epoch
            next(loader)
    assert len(str(err.value).splitlines()) == 1


def test_changed_bytes_in_a_stream_fail_the_checksum(sharded):
    _, out, _ = sharded
    _flip_byte(out / "shard-000000.tar", 700)  # inside the first sample's pixels
    with pytest.raises(DataError, match=r"shard-000000\.tar: checksum mismatch"):
        list(_stream(out)._stream_shard(0, lambda i: True))
    assert len(list(_stream(out, verify=False)._stream_shard(0, lambda i: True))) == 10


def test_stream_needs_a_shard_per_reader(sharded):
    from polyjepa.data import train_loader

    _, out, _ = sharded
    with pytest.raises(ConfigError, match="4 shards cannot feed 2 processes x 4 loader"):
        train_loader(_stream(out), 8, 0, 0, 0, 2, 4)
    with pytest.raises(DataError, match="not divisible"):
        train_loader(_stream(out), 9, 0, 0, 0, 2, 0)
    with pytest.raises(ConfigError, match="shuffle_buffer must be 0 or more"):
        _stream(out, shuffle_buffer=-1)


@pytest.mark.slow
def test_two_process_gloo_trains_on_a_stream(sharded, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    _, out, _ = sharded
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    sets = [a for k, v in {**SMALL, **ON_STREAM, "train.steps": 6,
                           "train.checkpoint_every": 3}.items()
            for a in ("--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}")]
    env = dict(os.environ, POLYJEPA_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(port), "-m", "polyjepa", "pretrain", "array", "--data",
         str(out), "--out", str(tmp_path / "ddp"), "--no-progress", *sets],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = pj.Run(tmp_path / "ddp")
    losses = [r["loss"] for r in run.metrics() if "loss" in r]
    # 6 steps of 4 samples per rank: the ranks' shards (20 and 12 samples, or 22 and 10)
    # run out at different steps, and both go on into their next epoch
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert pj.embed(run).shape[0] == 32


def test_check_same_samples_names_the_first_difference():
    from polyjepa.data import ArrayDataset

    x = np.zeros((3, 2), np.float32)
    testing.check_same_samples(ArrayDataset(x, y=[0, 1, 2]), ArrayDataset(x.copy(), y=[0, 1, 2]))
    other = x.copy()
    other[2, 1] = 1.0
    with pytest.raises(AssertionError, match=r"item 2: 'x' differs"):
        testing.check_same_samples(ArrayDataset(x), ArrayDataset(other))
    with pytest.raises(AssertionError, match=r"item 0: 'y' differs \(torch.int64 vs torch.int32"):
        testing.check_same_samples(ArrayDataset(x, y=np.array([0, 1, 2])),
                                   ArrayDataset(x, y=np.array([0, 1, 2], np.int32)))
    with pytest.raises(AssertionError, match="keys"):
        testing.check_same_samples(ArrayDataset(x, y=[0, 1, 2]), ArrayDataset(x))
    with pytest.raises(AssertionError, match="3 items against 2"):
        testing.check_same_samples(ArrayDataset(x), ArrayDataset(x[:2]))
