"""Readers and datasets on synthetic WFDB records written by wfdb (see conftest.py)."""

import shutil
import warnings

import numpy as np
import pytest
import torch

from polyjepa import ConfigError, DataError
from polyjepa_ecg.datasets import ptbxl_dataset, wfdb_dataset
from polyjepa_ecg.io import (
    AAMI_CLASSES,
    STANDARD_LEADS,
    Record,
    aami_class,
    canonical_lead,
    import_wfdb,
    read_demo,
    read_wfdb,
)


def _kept(synth, name, window, seconds=90.0, fs=360.0):
    """AAMI class counts of the written beats a ``window``-s beat window fits around."""
    samples, symbols = synth.beats[name]
    t = samples / fs
    inside = (t >= window / 2) & (t <= seconds - window / 2)
    counts = np.zeros(len(AAMI_CLASSES), dtype=int)
    for sym in np.asarray(symbols)[inside]:
        counts[AAMI_CLASSES.index(aami_class(sym))] += 1
    return counts, int((~inside).sum())


def test_lead_names():
    assert canonical_lead("avr") == "aVR"
    assert canonical_lead("MLII") == "II"
    assert canonical_lead(" v5 ") == "V5"
    assert canonical_lead("vx") == "vx"


def test_standard_leads_mark_missing_invalid(synth):
    ds = wfdb_dataset(synth.hea("r01"), fs=250, window=10, patch_size=25)
    assert len(ds) == 9  # 90 s, non-overlapping 10-s windows
    item = ds[3]
    assert item["x"].shape == (12, 2500)
    n = 2500 // 25
    valid = item["valid"].view(12, n)
    have = {STANDARD_LEADS.index("II"), STANDARD_LEADS.index("V1")}  # MLII, V1
    for lead in range(12):
        assert bool(valid[lead].all()) == (lead in have)
        if lead not in have:
            assert torch.count_nonzero(item["x"][lead]) == 0  # nothing invented
        else:
            assert abs(float(item["x"][lead].std()) - 1.0) < 0.01
    assert ds.encoder_hints == {"num_leads": 12, "patch_size": 25}
    assert int(item["group"]) == 0 and ds.dropped_beats == 0


def test_15_lead_record_keeps_standard_12_in_order(synth):
    rec = read_wfdb(synth.ptb)
    assert rec.fs == 1000 and rec.signal.shape == (15, 20000)
    ds = wfdb_dataset(synth.ptb, fs=500, window=5, patch_size=50)
    assert len(ds) == 4 and ds[0]["x"].shape == (12, 2500)
    assert bool(ds[0]["valid"].all())
    # lower-case names land on the right rows: Einthoven's III = II - I holds
    raw = wfdb_dataset(synth.ptb, fs=500, window=5, patch_size=50, normalize=False)
    x = raw[1]["x"].numpy()
    i, ii, iii = (STANDARD_LEADS.index(n) for n in ("I", "II", "III"))

    def rms(a):
        return float(np.sqrt(np.mean(a ** 2)))

    assert rms(x[iii] - (x[ii] - x[i])) < 0.25 * min(rms(x[iii] - x[ii]), rms(x[iii] - x[i]))
    # record order: Frank leads kept when asked for the record's leads
    rec_ds = wfdb_dataset(synth.ptb, fs=500, window=5, leads="record")
    assert rec_ds.leads[-3:] == ["vx", "vy", "vz"] and rec_ds[0]["x"].shape[0] == 15


def test_multirate_record_drops_non_ecg(synth):
    rec = read_wfdb(synth.multirate)
    # MCL1 is stored at 4 samples per 125 Hz frame: read at its own 500 Hz
    assert rec.leads == ["MCL1"] and rec.fs == 500 and rec.signal.shape == (1, 30000)
    lazy = read_wfdb(synth.multirate, lazy=True)
    assert lazy.signal is None and lazy.fs == 500 and lazy.leads == ["MCL1"]
    rec_all = read_wfdb(synth.multirate, channels="all")
    # with ABP and RESP (1 sample per frame) kept, they are brought to 500 Hz as well
    assert rec_all.leads == ["MCL1", "ABP", "RESP"] and rec_all.signal.shape == (3, 30000)
    assert abs(float(np.median(rec_all.signal[1])) - 90) < 5  # ABP in mmHg
    ds = wfdb_dataset(synth.multirate, fs=250, window=8, leads="record")
    assert len(ds) == 7 and ds[0]["x"].shape == (1, 2000)
    # the sqrs annotations count samples at their own 250 Hz, not the 125 Hz frames
    sqrs = read_wfdb(synth.multirate, annotator="sqrs")
    assert len(sqrs.ann_samples) == synth.onsets and sqrs.ann_fs == 250
    beats = wfdb_dataset(synth.multirate, mode="beats", annotator="sqrs", fs=250, window=1.6,
                         patch_size=20, leads="record")
    assert len(beats) + beats.dropped_beats == synth.onsets and beats.dropped_beats <= 2
    # sqrs marks QRS onsets: the R peak follows 40 ms after the window centre
    x = np.stack([beats[i]["x"][0].numpy() for i in range(len(beats))])
    near = np.abs(x[:, 200:225]).max(axis=1)
    far = np.abs(x[:, 50:75]).max(axis=1)
    assert np.median(near) > 2.0 and np.median(near) > 2 * np.median(far)


def test_beat_windows_from_annotations(synth):
    with pytest.warns(UserWarning, match=r"r01\.hea: \d+ annotated beat\(s\) dropped.*1\.20 s"):
        ds = wfdb_dataset(synth.hea("r01"), mode="beats", window=2.4, patch_size=20,
                          leads="record", fs=250)
    want, dropped = _kept(synth, "r01", 2.4)
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=5), want)
    assert want[1] > 0 and want[2] > 0  # S and V beats among them
    assert ds.dropped_beats == dropped >= 1  # the first beat lies within 0.5 s of the start
    assert ds[0]["x"].shape == (2, 600)
    assert np.all(np.diff(ds.times) > 0)
    sub = wfdb_dataset(synth.hea("r01"), mode="beats", window=2.4, patch_size=20,
                       leads="record", beat_classes=["N", "S"])
    assert set(np.unique(sub.labels)) == {0, 1}
    # the centre of a beat window is the annotated R peak: a large deflection in MLII
    x = np.stack([ds[i]["x"][0].numpy() for i in range(len(ds))])
    assert np.median(np.abs(x[:, 295:305]).max(axis=1)) > 2.0
    # V beats have a wide QRS: more of the window's energy around the centre
    width = (np.abs(x[:, 270:330]) > 1.0).sum(axis=1)
    assert width[ds.labels == 2].mean() > 1.5 * width[ds.labels == 0].mean()


def test_edge_beats_warned_once_per_dataset(synth):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = wfdb_dataset(synth.mitdb, mode="beats", window=2.4, patch_size=20,
                          leads="record", fs=125)
    said = [w for w in caught if "dropped" in str(w.message)]
    dropped = sum(_kept(synth, name, 2.4)[1] for name in ("r01", "r02", "r03"))
    assert len(said) == 1 and f" {dropped} annotated beat(s) dropped" in str(said[0].message)
    assert said[0].filename == __file__  # points at the caller
    total = sum(len(synth.beats[name][0]) for name in ("r01", "r02", "r03"))
    assert ds.dropped_beats == dropped and len(ds) + dropped == total
    # a short window fits around every beat: nothing dropped, nothing said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = wfdb_dataset(synth.mitdb, mode="beats", window=0.4, patch_size=10, fs=125,
                             leads="record")
    assert short.dropped_beats == 0 and len(short) == total


def test_folder_skips_records_without_requested_leads(synth, tmp_path):
    for hea in (synth.hea("r01"), synth.ptb, synth.multirate, synth.odd):
        for f in hea.parent.glob(hea.stem + ".*"):
            shutil.copy(f, tmp_path / f.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = wfdb_dataset(tmp_path, fs=125, window=4, patch_size=25)
    assert any("o01" in str(w.message) and "ECG 1" in str(w.message) for w in caught)
    assert ds.state["records"] == ["m01", "r01", "s0001_re"]
    assert len(np.unique(ds.groups)) == 3


def test_state_roundtrip_and_cache(synth, tmp_path, monkeypatch):
    ds = wfdb_dataset(synth.hea("r01"), fs=200, window=5, patch_size=20,
                      cache_dir=str(tmp_path))

    def no_decoding(*a, **k):
        raise AssertionError("the cached record was decoded again")

    monkeypatch.setattr(import_wfdb(), "rdrecord", no_decoding)
    again = wfdb_dataset(synth.hea("r01"), state=ds.state, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert isinstance(again.signals[0], np.memmap)
    assert again.length == 1000 and torch.equal(ds[5]["x"], again[5]["x"])


def test_explicit_arguments_win_over_a_saved_state(synth):
    windows = wfdb_dataset(synth.hea("r01"), fs=125, window=2.4, patch_size=20,
                           leads="record")
    state = windows.state
    assert state["mode"] == "windows" and windows.labels is None
    # the run's windows, re-read as beats: labelled, with the run's rate, window and leads
    beats = wfdb_dataset(synth.hea("r02"), mode="beats", state=state)
    assert beats.state["mode"] == "beats" and "y" in beats[0]
    assert beats.labels is not None and len(beats) == sum(_kept(synth, "r02", 2.4)[0])
    assert beats.state["fs"] == 125 and beats.length == 300 and beats.leads == ["II", "V1"]
    # and back: a beat run's state with mode="windows" gives unlabelled windows
    back = wfdb_dataset(synth.hea("r02"), mode="windows", state=beats.state)
    assert back.labels is None and "y" not in back[0] and len(back) == 37
    # other settings given explicitly win too
    assert wfdb_dataset(synth.hea("r01"), fs=100, state=state).state["fs"] == 100.0
    assert wfdb_dataset(synth.hea("r01"), highpass=0, state=state).state["highpass"] is None
    classes = wfdb_dataset(synth.hea("r01"), beat_classes=["N"], state=beats.state)
    assert set(classes.labels.tolist()) == {0}
    # leads="record" means the run's leads: a 15-lead record gives II and V1 only
    assert wfdb_dataset(synth.ptb, leads="record", state=state).leads == ["II", "V1"]
    # the encoder's patch length and lead order cannot change
    with pytest.raises(ConfigError, match=r"patch_size=25 differs from the saved"):
        wfdb_dataset(synth.hea("r01"), patch_size=25, state=state)
    with pytest.raises(ConfigError, match=r"leads=\['I', 'II'.*saved"):
        wfdb_dataset(synth.hea("r01"), leads="standard", state=state)
    with pytest.raises(ConfigError, match="fs must be a positive number"):
        wfdb_dataset(synth.hea("r01"), fs="fast")


def test_rhythm_state_and_explicit_mode(synth):
    rhythm = wfdb_dataset(synth.rhythm, window=10, leads="record", labels="rhythm", fs=125)
    # beats asked for on a rhythm run: the saved rhythm labels do not apply to beats
    beats = wfdb_dataset(synth.rhythm, mode="beats", state=rhythm.state)
    assert beats.state["labels"] is None and beats.labels is not None
    assert set(beats.labels.tolist()) <= {0, 1, 2}
    # rhythm labels asked for on a beat run's state: they need windows, which says so
    with pytest.raises(DataError, match=r"mode='beats' \(the saved state's; pass mode="):
        wfdb_dataset(synth.rhythm, labels="rhythm", state=beats.state)
    again = wfdb_dataset(synth.rhythm, labels="rhythm", mode="windows", state=beats.state)
    assert again.state["label_names"] == ["AFIB", "N"]


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
    assert bool(ds[0]["valid"].all())
    train = ptbxl_dataset(ptbxl_dir, folds=[1, 2])
    assert len(train) == 8
    codes = ptbxl_dataset(ptbxl_dir, labels="all")
    assert codes.state["label_names"] == ["IMI", "LVH", "NDT", "NORM", "SR"]


def test_ptbxl_explicit_arguments_win_over_a_saved_state(ptbxl_dir):
    ds = ptbxl_dataset(ptbxl_dir, limit=4)
    # the saved vocabulary is reused for the same labels ...
    same = ptbxl_dataset(ptbxl_dir, folds=[10], state=ds.state)
    assert same.state["label_names"] == ["NORM", "MI", "STTC", "HYP"]
    # ... and another labels= given explicitly gets its own
    codes = ptbxl_dataset(ptbxl_dir, labels="all", state=ds.state)
    assert codes.state["label_names"] == ["IMI", "LVH", "NDT", "NORM", "SR"]
    assert codes.labels.shape == (12, 5)
    slow = ptbxl_dataset(ptbxl_dir, fs=50, limit=2, state=ds.state)
    assert slow.state["fs"] == 50.0 and slow[0]["x"].shape == (12, 500)
    with pytest.raises(ConfigError, match="patch_size"):
        ptbxl_dataset(ptbxl_dir, patch_size=20, state=ds.state)


# ------------------------------------------------------------------ bad input


def _copy(synth, tmp_path, name="r01"):
    for ext in ("hea", "dat", "atr"):
        shutil.copy(synth.mitdb / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    return tmp_path / f"{name}.hea"


def test_truncated_dat_is_named(synth, tmp_path):
    hea = _copy(synth, tmp_path)
    data = (tmp_path / "r01.dat").read_bytes()
    (tmp_path / "r01.dat").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"r01\.hea"):
        wfdb_dataset(hea)


def test_corrupt_header_and_annotations(synth, tmp_path):
    hea = _copy(synth, tmp_path)
    (tmp_path / "r01.atr").write_bytes(b"\x00\xff" * 7)
    with pytest.raises(DataError, match=r"r01\.atr"):
        wfdb_dataset(hea, mode="beats")
    hea.write_text("r01 two 360 abc\n")
    with pytest.raises(DataError, match=r"r01\.hea"):
        wfdb_dataset(hea)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(DataError, match="no WFDB records"):
        wfdb_dataset(tmp_path)
    with pytest.raises(DataError, match="nope"):
        wfdb_dataset(tmp_path / "nope.hea")
    with pytest.raises(DataError, match=r"ptbxl_database\.csv"):
        ptbxl_dataset(tmp_path)


def test_nan_samples_named_or_masked(synth):
    rec = read_wfdb(synth.hea("r01"))
    rec.signal[1, 5000:5100] = np.nan
    rec.source = "mine.hea"
    with pytest.raises(DataError, match=r"mine\.hea.*'V1'"):
        wfdb_dataset(rec, window=5)
    ds = wfdb_dataset(rec, window=5, allow_gaps=True, leads="record")
    # the gap (13.9-14.2 s) falls in the third 5-s window: only V1 is invalid there
    v = ds[2]["valid"].view(2, -1)
    assert bool(v[0].all()) and not bool(v[1].any())
    assert bool(ds[1]["valid"].all()) and bool(ds[3]["valid"].all())
    assert torch.isfinite(ds[2]["x"]).all() and torch.count_nonzero(ds[2]["x"][1]) == 0


def test_beats_without_annotations(synth):
    with pytest.raises(DataError, match=r"s0001_re\.atr"):
        wfdb_dataset(synth.ptb, mode="beats")


def test_record_object_input():
    sig = np.random.default_rng(0).normal(size=(3, 5000)).astype(np.float32)
    rec = Record("r", sig, 500.0, ["I", "avl", "V2"], "<r>")
    ds = wfdb_dataset(rec, fs=250, window=4, patch_size=25)
    valid = ds[0]["valid"].view(12, -1).all(dim=1)
    assert [STANDARD_LEADS[i] for i in np.nonzero(valid.numpy())[0]] == ["I", "aVL", "V2"]


def test_multi_segment_record(synth, tmp_path):
    from polyjepa_ecg.io import record_paths

    wfdb = import_wfdb()
    r = wfdb.rdrecord(str(synth.mitdb / "r01"), sampto=7200)
    for i in range(2):
        wfdb.wrsamp(f"ms_{i}", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"],
                    p_signal=r.p_signal[i * 3600:(i + 1) * 3600], fmt=["16", "16"],
                    write_dir=str(tmp_path))
    (tmp_path / "ms.hea").write_text("ms/2 2 360 7200\nms_0 3600\nms_1 3600\n")
    assert record_paths(tmp_path) == [tmp_path / "ms"]  # segments are not records
    rec = read_wfdb(tmp_path / "ms.hea")
    assert rec.signal.shape == (2, 7200)
    np.testing.assert_allclose(rec.signal[:, 3600:3700], r.p_signal[3600:3700].T, atol=1e-2)
    ds = wfdb_dataset(tmp_path, window=5, leads="record")
    assert len(ds) == 4 and ds.state["records"] == ["ms"]


def test_rhythm_labels_of_windows(synth):
    # rhythms written: N, AFIB 30-50 s, N, AFIB 90-105 s, N (to 120 s)
    ds = wfdb_dataset(synth.rhythm, window=10, leads="record", labels="rhythm", fs=125)
    assert ds.state["label_names"] == ["AFIB", "N"]
    y = ds.labels
    # window k covers [10k, 10k+10) s; window 10 is half AFIB, half N
    assert len(y) == 12 and y[:3].tolist() == [1] * 3 and y[3:5].tolist() == [0] * 2
    assert y[5:9].tolist() == [1] * 4 and y[9] == 0 and y[11] == 1
    # evaluation on new data reuses the vocabulary saved with a run
    again = wfdb_dataset(synth.rhythm, state=ds.state)
    assert again.state["label_names"] == ["AFIB", "N"] and np.array_equal(again.labels, y)
    with pytest.raises(DataError, match="rhythm annotations"):
        wfdb_dataset(synth.hea("r01"), labels="rhythm")
    with pytest.raises(DataError, match="labels="):
        wfdb_dataset(synth.rhythm, mode="beats", labels="rhythm")


def test_ptbxl_short_record_padding_is_invalid(ptbxl_dir, tmp_path):
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


def test_ptbxl_500hz_records(ptbxl_dir, ptbxl_hr, tmp_path):
    wfdb = import_wfdb()
    root = tmp_path / "ptbxl"
    shutil.copytree(ptbxl_dir, root)
    names = wfdb.rdheader(str(root / "records100" / "00000" / "00001_lr")).sig_name
    with pytest.raises(DataError, match=r"00001_hr\.hea"):
        ptbxl_dataset(root, sampling="hr", limit=2)  # records500 not there yet
    (root / "records500" / "00000").mkdir(parents=True)
    for i in range(2):
        wfdb.wrsamp(f"{i + 1:05d}_hr", fs=500, units=["mV"] * 12, sig_name=names,
                    p_signal=ptbxl_hr[i], fmt=["16"] * 12,
                    write_dir=str(root / "records500" / "00000"))
    hr = ptbxl_dataset(root, sampling="hr", fs=100, limit=2)
    lr = ptbxl_dataset(root, sampling="lr", fs=100, limit=2)
    assert hr[0]["x"].shape == lr[0]["x"].shape == (12, 1000)
    # the same 10 s of ECG from the 500 Hz and the 100 Hz files agree after resampling
    r = np.corrcoef(hr[0]["x"][1].numpy(), lr[0]["x"][1].numpy())[0, 1]
    assert r > 0.95
    assert hr.state["fs"] == 100.0 and np.array_equal(hr.labels, lr.labels)
    with pytest.raises(DataError, match="sampling="):
        ptbxl_dataset(root, sampling="mid")


def test_patient_folders_group_records(synth, tmp_path):
    from polyjepa import EvalContext
    from polyjepa_ecg.evaluators import BeatClassification

    wfdb = import_wfdb()
    sig = wfdb.rdrecord(str(synth.ptb.with_suffix("")), channels=list(range(12)))
    for folder, name, part in (("patient001", "s0001_re", 0), ("patient001", "s0002lre", 1),
                               ("patient002", "s0003lre", 2)):
        (tmp_path / folder).mkdir(exist_ok=True)
        seg = sig.p_signal[part * 6000:(part + 1) * 6000]
        wfdb.wrsamp(name, fs=1000, units=["mV"] * 12, sig_name=sig.sig_name, p_signal=seg,
                    fmt=["16"] * 12, write_dir=str(tmp_path / folder))
    ds = wfdb_dataset(tmp_path, fs=250, window=2, patch_size=25)
    assert ds.state["records"] == ["s0001_re", "s0002lre", "s0003lre"]
    # 6 s per record -> 3 windows each; the first two records share patient001's group
    assert ds.groups.tolist() == [0] * 6 + [1] * 3
    assert ds.record_ids.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    # the record-internal time split cuts each record, not the patient's pooled windows
    y = np.tile([0, 1, 0], 3)
    x = np.stack([y * 3.0, np.arange(9.0)], 1)
    tr, te = BeatClassification(test_size=1 / 3).indices(EvalContext(x, y, dataset=ds), y)
    assert sorted(te.tolist()) == [2, 5, 8]
    assert sorted(tr.tolist() + te.tolist()) == list(range(9))
