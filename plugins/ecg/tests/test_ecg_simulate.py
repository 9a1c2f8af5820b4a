"""Simulated patients (``polyjepa_ecg.simulate``), ``polyjepa ecg simulate`` and the
demo's labelled ECG comparison built on them."""

from __future__ import annotations

import numpy as np
import pytest

import polyjepa as pj
from polyjepa_ecg import __main__ as cli
from polyjepa_ecg.io import read_wfdb
from polyjepa_ecg.simulate import simulated_patient, synth_ecg, write_pvc_records


def _mean_beat(rec, symbol: str, half: int = 90) -> np.ndarray:
    """The average MLII window around the R peaks of ``symbol`` beats."""
    lead = rec.signal[0]
    at = [s for s, b in zip(rec.ann_samples, rec.ann_symbols)
          if b == symbol and half <= s < lead.size - half]
    return np.mean([lead[s - half:s + half] for s in at], axis=0)


def test_pvc_records_hold_every_patients_n_and_v_beats(tmp_path):
    folder = write_pvc_records(tmp_path / "sim", patients=3, seconds=60.0)
    assert sorted(p.name for p in folder.glob("*.hea")) == ["p01.hea", "p02.hea", "p03.hea"]
    recs = [read_wfdb(folder / f"p0{i}") for i in (1, 2, 3)]
    for rec in recs:
        assert rec.fs == 360 and rec.signal.shape == (2, 60 * 360)
        assert {"N", "V"} <= set(rec.ann_symbols)
        assert np.all(np.diff(rec.ann_samples) > 0.25 * 360)  # one annotation per beat
        # a PVC is premature: the interval before it is shorter than before a normal beat
        rr = np.diff(rec.ann_samples)
        sym = np.array(rec.ann_symbols[1:])
        assert rr[sym == "V"].mean() < 0.9 * rr[sym == "N"].mean()
    # patients differ: the PVC shape of one is not another's
    v = [_mean_beat(r, "V") for r in recs]
    assert max(abs(np.corrcoef(v[0], v[i])[0, 1]) for i in (1, 2)) < 0.99


def test_same_arguments_write_the_same_files_once(tmp_path):
    a = write_pvc_records(tmp_path / "a", patients=2, seconds=30.0, seed=3)
    b = write_pvc_records(tmp_path / "b", patients=2, seconds=30.0, seed=3)
    for name in ("p01.dat", "p01.atr", "p02.dat"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    stamp = (a / "p01.dat").stat().st_mtime_ns
    assert write_pvc_records(a, patients=2, seconds=30.0, seed=3) == a
    assert (a / "p01.dat").stat().st_mtime_ns == stamp  # kept, not rewritten
    write_pvc_records(a, patients=3, seconds=30.0, seed=3)  # other settings: rewritten
    assert (a / "p03.hea").is_file()
    assert simulated_patient(5) == simulated_patient(5) != simulated_patient(6)


def test_a_folder_with_other_files_is_left_alone(tmp_path, capsys):
    keep = tmp_path / "mine" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_pvc_records(keep.parent, patients=1, seconds=20.0)
    assert cli.main(["simulate", str(keep.parent), "--patients", "1"]) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert keep.read_text() == "mine" and not list(keep.parent.glob("p*"))


def test_simulate_command(tmp_path, capsys):
    assert cli.main(["simulate", str(tmp_path / "out"), "--patients", "2",
                     "--seconds", "20", "--seed", "1"]) == 0
    assert "2 simulated patients" in capsys.readouterr().out
    assert len(read_wfdb(tmp_path / "out" / "p02").ann_symbols) > 10


def test_default_heart_is_the_documented_one():
    sig, samples, symbols = synth_ecg(30, 250, ["II"], seed=0, p_ectopic=(0.0, 0.0))
    assert sig.shape == (30 * 250, 1)
    assert set(symbols) == {"N"}
    rate = 60 * 250 / np.diff(samples).mean()
    assert 65 < rate < 80  # the default patient's 72/min, drifting by up to 6/min
    with pytest.raises(ValueError, match="unknown lead 'X9'"):
        synth_ecg(2, 250, ["X9"])


def test_demo_compares_on_simulated_patients(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))
    res = pj.demo(["ecg.beats"], out=tmp_path / "demo", steps=2, progress=False)["ecg.beats"]
    assert res["kind"] == "simulated"
    comp = res["comparison"]
    assert comp["data"] == "simulated-pvc"
    for method in ("pretrained", "random init", "RR + QRS", "RR only"):
        assert 0.0 <= comp[method] <= 1.0
    assert (tmp_path / "cache" / "ecg" / "simulated-pvc" / "p06.hea").is_file()
    text = (tmp_path / "demo" / "quality.md").read_text()
    assert "| simulated-pvc | simulated |" in text
