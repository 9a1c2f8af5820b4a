import json
import subprocess
import sys

import numpy as np
import pytest

import polyjepa as pj
from polyjepa import testing

TINY = {"encoder.embed_dim": 32, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


def test_pretrain_evaluate_embed_beats(synth, tmp_path):
    ov = {**TINY, "dataset.window": 1.6, "dataset.patch_size": 20, "dataset.fs": 125.0,
          "dataset.beat_classes": ["N", "S"], "dataset.cache_dir": str(tmp_path / "cache")}
    run = testing.tiny_train("ecg.beats", synth.hea("r01"), tmp_path / "run", steps=3,
                             overrides=ov)
    assert run.complete
    assert run.config["dataset_state"]["leads"] == ["II", "V1"]
    enc = pj.load_encoder(run.path)
    assert enc.num_leads == 2 and enc.patch_size == 20
    metrics = pj.evaluate(run.path, evaluators=["rankme", "ecg.beats"])
    assert 1.0 <= metrics["rankme"] <= 32
    assert 0.0 <= metrics["beat_f1_macro"] <= 1.0 and 0.0 <= metrics["beat_auc"] <= 1.0
    emb = pj.embed(run.path, out=tmp_path / "emb.npy")
    labels = np.load(tmp_path / "emb.labels.npy")
    assert emb.shape == (len(labels), 32) and set(np.unique(labels)) == {0, 1}
    assert np.isfinite(emb).all()


def test_window_run_evaluated_on_beats(synth, tmp_path):
    ov = {**TINY, "dataset.window": 2.4, "dataset.fs": 125.0, "dataset.patch_size": 20,
          "dataset.leads": "record", "evaluators": ["rankme"]}
    run = testing.tiny_train("ecg", synth.hea("r01"), tmp_path / "run", steps=2,
                             overrides=ov)
    state = run.config["dataset_state"]
    assert state["mode"] == "windows"
    # the encoder pre-trained on plain windows, probed on the beats of another record:
    # mode="beats" given here wins over the run's saved mode
    ds = pj.create_dataset("ecg.wfdb", synth.hea("r02"), mode="beats", state=state)
    assert ds.state["mode"] == "beats" and ds.length == 300
    emb, y, groups = pj.embed_dataset(pj.load_encoder(run.path), ds)
    assert y is not None and len(y) == len(emb) == len(ds)
    metrics = pj.create_evaluator("ecg.beats")(pj.EvalContext(emb, y, groups, dataset=ds))
    assert 0.0 <= metrics["beat_f1_macro"] <= 1.0
    # the run's leads="record" means its own two leads on a 15-lead record too
    other = pj.embed(run.path, data=synth.ptb)
    assert other.shape == (8, 32) and np.isfinite(other).all()


def test_standard_leads_train_with_missing_leads(synth, tmp_path):
    ov = {**TINY, "dataset.window": 4.0, "dataset.fs": 100.0,
          "masker": {"name": "ecg.leads", "lead_ratio": 0.5}}
    run = testing.tiny_train("ecg", synth.hea("r01"), tmp_path / "run", steps=2,
                             overrides=ov)
    # embeddings of a 2-lead record (2 of 12 leads) and a 15-lead one (12 of 12), one run
    a = pj.embed(run.path)
    b = pj.embed(run.path, data=synth.ptb)
    assert a.shape[1] == b.shape[1] == 32 and np.isfinite(b).all()


def test_rhythm_recipe(synth, tmp_path):
    ov = {**TINY, "dataset.window": 8.0, "dataset.fs": 100.0, "dataset.patch_size": 20,
          "dataset.leads": "record"}
    run = testing.tiny_train("ecg.rhythm", synth.rhythm, tmp_path / "run", steps=2,
                             overrides=ov)
    assert run.config["dataset_state"]["label_names"] == ["AFIB", "N"]
    metrics = pj.evaluate(run.path)
    # the record-internal time split puts AFIB windows (90-105 s) in the test part
    assert 0.0 <= metrics["rhythm_f1_macro"] <= 1.0 and 0.0 <= metrics["rhythm_auc"] <= 1.0


def test_ptbxl_recipe(ptbxl_dir, tmp_path):
    run = testing.tiny_train("ecg.ptbxl", ptbxl_dir, tmp_path / "run", steps=2,
                             overrides=TINY)
    metrics = pj.evaluate(run.path)
    assert 0.0 <= metrics["multilabel_macro_auc"] <= 1.0


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "polyjepa", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_pretrain(synth, tmp_path):
    out = tmp_path / "cli"
    r = _cli("pretrain", "ecg", "--data", str(synth.multirate), "--out", str(out),
             "--steps", "2", "--batch-size", "4", "--set", "dataset.leads=record",
             "--set", "dataset.window=4.0", "--set", "dataset.fs=100.0",
             "--set", "train.precision=fp32", "--set", "encoder.embed_dim=16",
             "--set", "encoder.depth=1", "--set", "encoder.num_heads=2",
             "--set", "predictor.dim=16", "--set", "predictor.depth=1",
             "--set", "predictor.num_heads=2", "--set", "evaluators=[\"rankme\"]")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "encoder.safetensors").is_file()
    metrics = json.loads((out / "run.json").read_text())["config"]["dataset_state"]
    assert metrics["leads"] == ["V1"]  # MCL1, the only ECG signal of the record
    assert pj.evaluate(out)["rankme"] >= 1.0


def test_demo_data(tmp_path, monkeypatch):
    from polyjepa import DataError
    from polyjepa_ecg.io import demo_record_file

    try:
        demo_record_file()
    except DataError as exc:
        # the installed scipy is newer than 1.14: the message says how to get the file
        assert "fetch-demo" in str(exc) and "POLYJEPA_ECG_DEMO" in str(exc)
        pytest.skip("scipy's ecg.dat is not here: run `python -m polyjepa_ecg fetch-demo`")
    from polyjepa_ecg.io import read_demo

    rec = read_demo()  # 5 min of MLII at 360 Hz, in mV
    assert rec.signal.shape == (1, 108000) and rec.fs == 360.0
    assert 0.3 < float(np.percentile(np.abs(rec.signal), 99.9)) < 5.0
    res = pj.demo(["ecg"], out=tmp_path / "demo", steps=3, progress=False)
    assert res["ecg"]["kind"] == "real" and res["ecg"]["metrics"]["rankme"] >= 1.0
