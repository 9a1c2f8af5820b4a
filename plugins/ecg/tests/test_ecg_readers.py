import shutil
import warnings

import numpy as np
import pytest
import torch

from polyjepa import DataError
from polyjepa_ecg.dataset import ptbxl_dataset, wfdb_dataset
from polyjepa_ecg.io import STANDARD_LEADS, Record, canonical_lead, read_demo, read_wfdb


def test_lead_names():
    assert canonical_lead("avr") == "aVR"
    assert canonical_lead("MLII") == "II"
    assert canonical_lead(" v5 ") == "V5"
    assert canonical_lead("vx") == "vx"


def test_mitbih_standard_leads_mark_missing_invalid(sample_dir):
    ds = wfdb_dataset(sample_dir / "100.hea", fs=250, window=10, patch_size=25)
    # 30 min 5.6 s at 250 Hz, non-overlapping 10-s windows
    assert len(ds) == 650000 * 250 // 360 // 2500
    item = ds[3]
    assert item["x"].shape == (12, 2500)
    n = 2500 // 25
    valid = item["valid"].view(12, n)
    have = {STANDARD_LEADS.index("II"), STANDARD_LEADS.index("V5")}
    for lead in range(12):
        assert bool(valid[lead].all()) == (lead in have)
        if lead not in have:
            assert torch.count_nonzero(item["x"][lead]) == 0  # nothing invented
        else:
            assert abs(float(item["x"][lead].std()) - 1.0) < 0.01
    assert ds.encoder_hints == {"num_leads": 12, "patch_size": 25}
    assert int(item["group"]) == 0


def test_ptb_15_leads_keeps_standard_12(sample_dir):
    rec = read_wfdb(sample_dir / "s0010_re.hea")
    assert rec.fs == 1000 and rec.signal.shape == (15, 38400)
    ds = wfdb_dataset(sample_dir / "s0010_re.hea", fs=500, window=5, patch_size=50)
    assert len(ds) == 7 and ds[0]["x"].shape == (12, 2500)
    assert bool(ds[0]["valid"].all())
    # record order: Frank leads kept when asked for the record's leads
    rec_ds = wfdb_dataset(sample_dir / "s0010_re.hea", fs=500, window=5, leads="record")
    assert rec_ds.leads[-3:] == ["vx", "vy", "vz"] and rec_ds[0]["x"].shape[0] == 15


def test_multisignal_record_drops_non_ecg(sample_dir):
    rec = read_wfdb(sample_dir / "03700181.hea")
    # MCL1 is stored at 4 samples per 125 Hz frame: read at its own 500 Hz
    assert rec.leads == ["MCL1"] and rec.fs == 500 and rec.signal.shape == (1, 300000)
    lazy = read_wfdb(sample_dir / "03700181.hea", lazy=True)
    assert lazy.signal is None and lazy.fs == 500 and lazy.leads == ["MCL1"]
    rec_all = read_wfdb(sample_dir / "03700181.hea", channels="all")
    # with ABP and RESP (1 sample per frame) kept, they are brought to 500 Hz as well
    assert rec_all.leads == ["MCL1", "ABP", "RESP"] and rec_all.signal.shape == (3, 300000)
    ds = wfdb_dataset(sample_dir / "03700181.hea", fs=250, window=8, leads="record")
    # 10 min -> 600 s at 250 Hz -> 75 windows of 8 s
    assert len(ds) == 75 and ds[0]["x"].shape == (1, 2000)
    # the sqrs annotations count samples at their own 250 Hz, not the 125 Hz frames
    sqrs = read_wfdb(sample_dir / "03700181.hea", annotator="sqrs")
    assert len(sqrs.ann_samples) == 1195 and sqrs.ann_fs == 250
    beats = wfdb_dataset(sample_dir / "03700181.hea", mode="beats", annotator="sqrs",
                         fs=250, window=1.6, patch_size=20, leads="record")
    assert len(beats) >= 1190
    # sqrs marks QRS onsets: the QRS deflection follows within 0.1 s of the window centre
    x = np.stack([beats[i]["x"][0].numpy() for i in range(0, len(beats), 10)])
    near = np.abs(x[:, 200:225]).max(axis=1)
    far = np.abs(x[:, 50:75]).max(axis=1)
    assert np.median(near) > 2.0 and np.median(near) > 2 * np.median(far)


def test_beat_windows_from_annotations(sample_dir):
    ds = wfdb_dataset(sample_dir / "100.hea", mode="beats", window=2.4, patch_size=20,
                      leads="record", fs=250)
    counts = np.bincount(ds.labels, minlength=5)
    # 2239 N, 33 A (-> S), 1 V in 100.atr; the first/last beats lack a full window
    assert counts[1] == 33 and counts[2] == 1 and 2230 <= counts[0] <= 2239
    assert ds[0]["x"].shape == (2, 600)
    assert np.all(np.diff(ds.times) > 0)
    sub = wfdb_dataset(sample_dir / "100.hea", mode="beats", window=2.4, patch_size=20,
                       leads="record", beat_classes=["N", "S"])
    assert set(np.unique(sub.labels)) == {0, 1}
    # the centre of a beat window is the annotated R peak: a large deflection in MLII
    x = ds[10]["x"][0].numpy()
    assert abs(x[295:305]).max() > 2.0


def test_folder_skips_records_without_requested_leads(sample_dir, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = wfdb_dataset(sample_dir, fs=125, window=4, patch_size=25)
    assert any("test01_00s" in str(w.message) for w in caught)
    assert ds.state["records"] == ["03700181", "100", "s0010_re"]
    assert len(np.unique(ds.groups)) == 3


def test_state_roundtrip_and_cache(sample_dir, tmp_path, monkeypatch):
    from polyjepa_ecg.io import import_wfdb

    ds = wfdb_dataset(sample_dir / "100.hea", fs=200, window=5, patch_size=20,
                      cache_dir=str(tmp_path))

    def no_decoding(*a, **k):
        raise AssertionError("the cached record was decoded again")

    monkeypatch.setattr(import_wfdb(), "rdrecord", no_decoding)
    again = wfdb_dataset(sample_dir / "100.hea", state=ds.state, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert isinstance(again.signals[0], np.memmap)
    assert again.length == 1000 and torch.equal(ds[5]["x"], again[5]["x"])


def test_demo_reader_format(tmp_path, monkeypatch):
    raw = (1024 + 200 * np.sin(np.linspace(0, 60, 108000))).astype(np.uint16)
    np.savez(tmp_path / "ecg.dat", ecg=raw)
    shutil.move(tmp_path / "ecg.dat.npz", tmp_path / "ecg.dat")
    monkeypatch.setenv("POLYJEPA_ECG_DEMO", str(tmp_path / "ecg.dat"))
    rec = read_demo()
    assert rec.fs == 360 and rec.signal.shape == (1, 108000)
    assert abs(float(rec.signal.max()) - 1.0) < 0.01  # ADC 1224 -> 1 mV


def test_ptbxl_layout(ptbxl_dir):
    ds = ptbxl_dataset(ptbxl_dir, fs=100, patch_size=25)
    assert len(ds) == 12 and ds[0]["x"].shape == (12, 1000)
    assert ds.state["label_names"] == ["NORM", "MI", "STTC", "HYP"]
    y = np.stack([ds[i]["y"].numpy() for i in range(4)])
    np.testing.assert_array_equal(y, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1]])
    assert list(ds.folds[:3]) == [1, 2, 10] and list(ds.groups[:4]) == [0, 0, 1, 1]
    train = ptbxl_dataset(ptbxl_dir, folds=[1, 2])
    assert len(train) == 8
    codes = ptbxl_dataset(ptbxl_dir, labels="all")
    assert codes.state["label_names"] == ["IMI", "LVH", "NDT", "NORM", "SR"]


# ------------------------------------------------------------------ bad input


def _copy(sample_dir, tmp_path, name="100"):
    for ext in ("hea", "dat", "atr"):
        shutil.copy(sample_dir / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    return tmp_path / f"{name}.hea"


def test_truncated_dat_is_named(sample_dir, tmp_path):
    hea = _copy(sample_dir, tmp_path)
    data = (tmp_path / "100.dat").read_bytes()
    (tmp_path / "100.dat").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"100\.hea"):
        wfdb_dataset(hea)


def test_corrupt_header_and_annotations(sample_dir, tmp_path):
    hea = _copy(sample_dir, tmp_path)
    (tmp_path / "100.atr").write_bytes(b"\x00\xff" * 7)
    with pytest.raises(DataError, match=r"100\.atr"):
        wfdb_dataset(hea, mode="beats")
    hea.write_text("100 two 360 abc\n")
    with pytest.raises(DataError, match=r"100\.hea"):
        wfdb_dataset(hea)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(DataError, match="no WFDB records"):
        wfdb_dataset(tmp_path)
    with pytest.raises(DataError, match="nope"):
        wfdb_dataset(tmp_path / "nope.hea")
    with pytest.raises(DataError, match=r"ptbxl_database\.csv"):
        ptbxl_dataset(tmp_path)


def test_nan_samples_named_or_masked(sample_dir):
    rec = read_wfdb(sample_dir / "100.hea")
    rec.signal[1, 5000:5100] = np.nan
    rec.source = "mine.hea"
    with pytest.raises(DataError, match=r"mine\.hea.*'V5'"):
        wfdb_dataset(rec, window=5)
    ds = wfdb_dataset(rec, window=5, allow_gaps=True, leads="record")
    # the gap (13.9-14.2 s) falls in the third 5-s window: only V5 is invalid there
    v = ds[2]["valid"].view(2, -1)
    assert bool(v[0].all()) and not bool(v[1].any())
    assert bool(ds[1]["valid"].all()) and bool(ds[3]["valid"].all())
    assert torch.isfinite(ds[2]["x"]).all() and torch.count_nonzero(ds[2]["x"][1]) == 0


def test_beats_without_annotations(sample_dir):
    with pytest.raises(DataError, match="annotation"):
        wfdb_dataset(sample_dir / "s0010_re.hea", mode="beats")


def test_record_object_input():
    sig = np.random.default_rng(0).normal(size=(3, 5000)).astype(np.float32)
    rec = Record("r", sig, 500.0, ["I", "avl", "V2"], "<r>")
    ds = wfdb_dataset(rec, fs=250, window=4, patch_size=25)
    valid = ds[0]["valid"].view(12, -1).all(dim=1)
    assert [STANDARD_LEADS[i] for i in np.nonzero(valid.numpy())[0]] == ["I", "aVL", "V2"]


def test_multi_segment_record(sample_dir, tmp_path):
    from polyjepa_ecg.io import import_wfdb, record_paths

    wfdb = import_wfdb()
    r = wfdb.rdrecord(str(sample_dir / "100"), sampto=7200)
    for i in range(2):
        wfdb.wrsamp(f"ms_{i}", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"],
                    p_signal=r.p_signal[i * 3600:(i + 1) * 3600], fmt=["16", "16"],
                    write_dir=str(tmp_path))
    (tmp_path / "ms.hea").write_text("ms/2 2 360 7200\nms_0 3600\nms_1 3600\n")
    assert record_paths(tmp_path) == [tmp_path / "ms"]  # segments are not records
    rec = read_wfdb(tmp_path / "ms.hea")
    assert rec.signal.shape == (2, 7200)
    np.testing.assert_allclose(rec.signal[:, 3600:3700], r.p_signal[3600:3700].T, atol=1e-2)
    ds = wfdb_dataset(tmp_path, window=5, leads="record")
    assert len(ds) == 4 and ds.state["records"] == ["ms"]


def test_rhythm_labels_of_windows(sample_dir, rhythm_dir):
    # record 100's own annotations: a single '(N' rhythm from sample 18 on
    ds = wfdb_dataset(sample_dir / "100.hea", window=10, leads="record", labels="rhythm")
    assert ds.state["label_names"] == ["N"] and set(ds.labels.tolist()) == {0}
    assert len(ds) == 650000 * 250 // 360 // 2500
    # the real signal with rhythm annotations written by the fixture
    ds = wfdb_dataset(rhythm_dir / "100.hea", window=10, leads="record", labels="rhythm",
                      fs=125)
    assert ds.state["label_names"] == ["AFIB", "N"]
    y = ds.labels
    # window k covers [10k, 10k+10) s; window 10 is half N, half AFIB; 11-19 are AFIB
    assert y[:10].tolist() == [1] * 10 and y[11:20].tolist() == [0] * 9
    assert (y[20:150] == 1).all() and (y[150:160] == 0).all() and (y[160:] == 1).all()
    # evaluation on new data reuses the vocabulary saved with a run
    again = wfdb_dataset(rhythm_dir / "100.hea", state=ds.state)
    assert again.state["label_names"] == ["AFIB", "N"] and np.array_equal(again.labels, y)
    with pytest.raises(DataError, match="rhythm annotations"):
        wfdb_dataset(sample_dir / "s0010_re.hea", labels="rhythm")
    with pytest.raises(DataError, match="labels="):
        wfdb_dataset(sample_dir / "100.hea", mode="beats", labels="rhythm")


def test_ptbxl_short_record_padding_is_invalid(ptbxl_dir, tmp_path):
    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    root = tmp_path / "ptbxl"
    shutil.copytree(ptbxl_dir, root)
    folder = root / "records100" / "00000"
    rec = wfdb.rdrecord(str(folder / "00001_lr"))
    wfdb.wrsamp("00001_lr", fs=100, units=["mV"] * 12, sig_name=rec.sig_name,
                p_signal=rec.p_signal[:700], fmt=["16"] * 12, write_dir=str(folder))
    ds = ptbxl_dataset(root, fs=100, patch_size=25, limit=2)
    valid = ds[0]["valid"].view(12, 40)
    assert bool(valid[:, :28].all()) and not bool(valid[:, 28:].any())
    assert torch.count_nonzero(ds[0]["x"][:, 700:]) == 0
    assert abs(float(ds[0]["x"][0, :700].std()) - 1.0) < 0.01  # normalised on real samples
    assert bool(ds[1]["valid"].all())
    wfdb.wrsamp("00001_lr", fs=100, units=["mV"] * 12, sig_name=rec.sig_name,
                p_signal=rec.p_signal[:300], fmt=["16"] * 12, write_dir=str(folder))
    with pytest.raises(DataError, match=r"00001_lr\.hea.*shorter than half"):
        ptbxl_dataset(root, fs=100, patch_size=25, limit=2)


def test_ptbxl_500hz_records(ptbxl_dir, sample_dir, tmp_path):
    from scipy.signal import decimate

    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    root = tmp_path / "ptbxl"
    shutil.copytree(ptbxl_dir, root)
    with pytest.raises(DataError, match=r"00001_hr\.hea"):
        ptbxl_dataset(root, sampling="hr", limit=2)  # records500 not there yet
    sig = wfdb.rdrecord(str(sample_dir / "s0010_re")).p_signal[:, :12]
    (root / "records500" / "00000").mkdir(parents=True)
    names = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    for i in range(2):
        seg = decimate(sig[i * 2500:i * 2500 + 10000], 2, axis=0)[:5000]
        wfdb.wrsamp(f"{i + 1:05d}_hr", fs=500, units=["mV"] * 12, sig_name=names,
                    p_signal=seg, fmt=["16"] * 12, write_dir=str(root / "records500" / "00000"))
    hr = ptbxl_dataset(root, sampling="hr", fs=100, limit=2)
    lr = ptbxl_dataset(root, sampling="lr", fs=100, limit=2)
    assert hr[0]["x"].shape == lr[0]["x"].shape == (12, 1000)
    # the same 10 s of ECG from the 500 Hz and the 100 Hz files agree after resampling
    r = np.corrcoef(hr[0]["x"][1].numpy(), lr[0]["x"][1].numpy())[0, 1]
    assert r > 0.95
    assert hr.state["fs"] == 100.0 and np.array_equal(hr.labels, lr.labels)
    with pytest.raises(DataError, match="sampling="):
        ptbxl_dataset(root, sampling="mid")


def test_patient_folders_group_records(sample_dir, tmp_path):
    from polyjepa import EvalContext
    from polyjepa_ecg.evaluators import BeatClassification
    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    sig = wfdb.rdrecord(str(sample_dir / "s0010_re"), channels=list(range(12)))
    for folder, name, part in (("patient001", "s0010_re", 0), ("patient001", "s0014lre", 1),
                               ("patient002", "s0015lre", 2)):
        (tmp_path / folder).mkdir(exist_ok=True)
        seg = sig.p_signal[part * 12000:(part + 1) * 12000]
        wfdb.wrsamp(name, fs=1000, units=["mV"] * 12, sig_name=sig.sig_name, p_signal=seg,
                    fmt=["16"] * 12, write_dir=str(tmp_path / folder))
    ds = wfdb_dataset(tmp_path, fs=250, window=2, patch_size=25)
    assert ds.state["records"] == ["s0010_re", "s0014lre", "s0015lre"]
    # 12 s per record -> 6 windows each; the first two records share patient001's group
    assert ds.groups.tolist() == [0] * 12 + [1] * 6
    assert ds.record_ids.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    # the record-internal time split cuts each record, not the patient's pooled windows
    y = np.tile([0, 1], 9)
    x = np.stack([y * 3.0, np.arange(18.0)], 1)
    tr, te = BeatClassification(test_size=1 / 3).indices(EvalContext(x, y, dataset=ds), y)
    assert sorted(te.tolist()) == [4, 5, 10, 11, 16, 17]
    assert sorted(tr.tolist() + te.tolist()) == list(range(18))
