"""The real shared records (MIT-BIH 100 and six PVC records, PTB s0010_re, the bedside
03700181): an extra layer over the synthetic tests, skipped when the files are absent."""

import warnings

import numpy as np
import pytest

import polyjepa as pj
from polyjepa import DataError, testing
from polyjepa_ecg.datasets import wfdb_dataset
from polyjepa_ecg.io import STANDARD_LEADS, read_wfdb

TINY = {"encoder.embed_dim": 32, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


def test_mitbih_100_standard_leads(sample_dir):
    ds = wfdb_dataset(sample_dir / "100.hea", fs=250, window=10, patch_size=25)
    # 30 min 5.6 s at 250 Hz, non-overlapping 10-s windows
    assert len(ds) == 650000 * 250 // 360 // 2500
    valid = ds[3]["valid"].view(12, -1).all(dim=1)
    assert [STANDARD_LEADS[i] for i in np.nonzero(valid.numpy())[0]] == ["II", "V5"]
    assert abs(float(ds[3]["x"][STANDARD_LEADS.index("II")].std()) - 1.0) < 0.01


def test_mitbih_100_beats(sample_dir):
    with pytest.warns(UserWarning, match=r"100\.hea: \d annotated beat\(s\) dropped"):
        ds = wfdb_dataset(sample_dir / "100.hea", mode="beats", window=2.4, patch_size=20,
                          leads="record", fs=250)
    counts = np.bincount(ds.labels, minlength=5)
    # 2239 N, 33 A (-> S), 1 V in 100.atr; the first/last beats lack a full window
    assert counts[1] == 33 and counts[2] == 1 and 2230 <= counts[0] <= 2239
    assert counts.sum() + ds.dropped_beats == 2239 + 33 + 1 and ds.dropped_beats >= 1
    assert ds[0]["x"].shape == (2, 600)
    # the centre of a beat window is the annotated R peak: a large deflection in MLII
    assert abs(ds[10]["x"][0].numpy()[295:305]).max() > 2.0


def test_ptb_s0010_re_15_leads(sample_dir):
    rec = read_wfdb(sample_dir / "s0010_re.hea")
    assert rec.fs == 1000 and rec.signal.shape == (15, 38400)
    ds = wfdb_dataset(sample_dir / "s0010_re.hea", fs=500, window=5, patch_size=50)
    assert len(ds) == 7 and ds[0]["x"].shape == (12, 2500) and bool(ds[0]["valid"].all())
    rec_ds = wfdb_dataset(sample_dir / "s0010_re.hea", fs=500, window=5, leads="record")
    assert rec_ds.leads[-3:] == ["vx", "vy", "vz"] and rec_ds[0]["x"].shape[0] == 15
    with pytest.raises(DataError, match="annotation"):
        wfdb_dataset(sample_dir / "s0010_re.hea", mode="beats")


def test_bedside_03700181_multirate(sample_dir):
    rec = read_wfdb(sample_dir / "03700181.hea")
    # MCL1 is stored at 4 samples per 125 Hz frame: read at its own 500 Hz
    assert rec.leads == ["MCL1"] and rec.fs == 500 and rec.signal.shape == (1, 300000)
    rec_all = read_wfdb(sample_dir / "03700181.hea", channels="all")
    assert rec_all.leads == ["MCL1", "ABP", "RESP"] and rec_all.signal.shape == (3, 300000)
    ds = wfdb_dataset(sample_dir / "03700181.hea", fs=250, window=8, leads="record")
    assert len(ds) == 75 and ds[0]["x"].shape == (1, 2000)
    # the sqrs annotations count samples at their own 250 Hz, not the 125 Hz frames
    sqrs = read_wfdb(sample_dir / "03700181.hea", annotator="sqrs")
    assert len(sqrs.ann_samples) == 1195 and sqrs.ann_fs == 250
    beats = wfdb_dataset(sample_dir / "03700181.hea", mode="beats", annotator="sqrs",
                         fs=250, window=1.6, patch_size=20, leads="record")
    assert len(beats) >= 1190 and len(beats) + beats.dropped_beats == 1195
    x = np.stack([beats[i]["x"][0].numpy() for i in range(0, len(beats), 10)])
    near = np.abs(x[:, 200:225]).max(axis=1)
    far = np.abs(x[:, 50:75]).max(axis=1)
    assert np.median(near) > 2.0 and np.median(near) > 2 * np.median(far)


def test_sample_folder_skips_unnamed_leads(sample_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = wfdb_dataset(sample_dir, fs=125, window=4, patch_size=25)
    assert any("test01_00s" in str(w.message) for w in caught)
    assert ds.state["records"] == ["03700181", "100", "s0010_re"]
    assert len(np.unique(ds.groups)) == 3


def test_rhythm_labels_on_record_100(sample_dir, rhythm_dir):
    # record 100's own annotations: a single '(N' rhythm from sample 18 on
    ds = wfdb_dataset(sample_dir / "100.hea", window=10, leads="record", labels="rhythm")
    assert ds.state["label_names"] == ["N"] and set(ds.labels.tolist()) == {0}
    # the real signal with rhythm annotations written by the fixture
    ds = wfdb_dataset(rhythm_dir / "100.hea", window=10, leads="record", labels="rhythm",
                      fs=125)
    y = ds.labels
    assert ds.state["label_names"] == ["AFIB", "N"]
    assert y[:10].tolist() == [1] * 10 and y[11:20].tolist() == [0] * 9
    assert (y[20:150] == 1).all() and (y[150:160] == 0).all() and (y[160:] == 1).all()


def test_pvc_records(pvc_dir):
    ds = wfdb_dataset(pvc_dir / "106.hea", mode="beats", window=2.4, patch_size=20,
                      leads="record", fs=250)
    counts = np.bincount(ds.labels, minlength=5)
    # 2027 beats, 520 of them PVCs (V); the others are marked N
    assert counts.sum() + ds.dropped_beats == 2027 and 515 <= counts[2] <= 520
    assert counts[1] == counts[3] == counts[4] == 0
    # the folder of six patients, lead II: record 102 (V5 only) is skipped, one warning
    # about edge beats covers the other five
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        five = wfdb_dataset(pvc_dir, mode="beats", window=2.4, patch_size=20, leads=["II"],
                            fs=125)
    said = [str(w.message) for w in caught]
    assert sum("102.hea: skipped" in m for m in said) == 1
    assert sum("dropped" in m for m in said) <= 1
    assert five.state["records"] == ["105", "106", "108", "116", "123"]
    assert len(np.unique(five.groups)) == 5
    assert len(five) + five.dropped_beats == 2572 + 2027 + 1763 + 2412 + 1518


def test_beats_run_on_record_100(sample_dir, tmp_path):
    ov = {**TINY, "dataset.window": 1.6, "dataset.patch_size": 20, "dataset.fs": 125.0,
          "dataset.beat_classes": ["N", "S"], "dataset.cache_dir": str(tmp_path / "cache")}
    run = testing.tiny_train("ecg.beats", sample_dir / "100.hea", tmp_path / "run", steps=3,
                             overrides=ov)
    assert run.config["dataset_state"]["leads"] == ["II", "V5"]
    metrics = pj.evaluate(run.path, evaluators=["rankme", "ecg.beats"])
    assert 0.0 <= metrics["beat_f1_macro"] <= 1.0 and 0.0 <= metrics["beat_auc"] <= 1.0
    emb = pj.embed(run.path)
    assert emb.shape[1] == 32 and np.isfinite(emb).all()
