"""Test data: synthetic WFDB records written by ``wfdb`` itself (every generic test), and
the real shared records (an extra layer that skips when ``../shared/data`` is absent).

The synthetic ECG is the plugin's own simulator (:mod:`polyjepa_ecg.simulate`) with its
default heart. Everything is seeded, so the files and the annotation counts are the same
on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from polyjepa.testing import shared_data_or_skip
from polyjepa_ecg.simulate import synth_ecg

PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PTB_NAMES = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6",
             "vx", "vy", "vz"]


@dataclass
class Synth:
    """Paths of the synthetic records and the truth they were written from."""

    root: Path
    mitdb: Path  # r01, r02, r03: MLII + V1, 90 s at 360 Hz, beat annotations
    rhythm: Path  # af01.hea: 120 s with beats and rhythm annotations
    ptb: Path  # s0001_re.hea: 15 leads (12 standard + Frank) at 1000 Hz, 20 s
    multirate: Path  # m01.hea: MCL1 at 4 samples per 125 Hz frame, ABP, RESP; 60 s
    odd: Path  # o01.hea: leads named "ECG 1", "ECG 2"
    beats: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    onsets: int = 0  # QRS onsets in m01.sqrs

    def hea(self, name: str) -> Path:
        return self.mitdb / f"{name}.hea"


def _wfdb():
    from polyjepa_ecg.io import import_wfdb

    return import_wfdb()


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    """The synthetic records, written once per session (see :class:`Synth`)."""
    wfdb = _wfdb()
    root = tmp_path_factory.mktemp("synth")
    for sub in ("mitdb", "rhythm", "ptb", "multi", "odd"):
        (root / sub).mkdir()
    out = Synth(root, root / "mitdb", root / "rhythm" / "af01.hea",
                root / "ptb" / "s0001_re.hea", root / "multi" / "m01.hea",
                root / "odd" / "o01.hea")
    for i, name in enumerate(("r01", "r02", "r03")):
        sig, samp, sym = synth_ecg(90, 360, ["MLII", "V1"], seed=i, hr=66.0 + 8 * i)
        wfdb.wrsamp(name, fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"],
                    p_signal=sig, fmt=["212", "212"], write_dir=str(out.mitdb))
        wfdb.wrann(name, "atr", samp, symbol=sym, write_dir=str(out.mitdb))
        out.beats[name] = (samp, sym)
    # rhythm: N, AFIB 30-50 s, N, AFIB 90-105 s, N; rhythm changes annotated with '+'
    changes = [(0.0, "(N"), (30.0, "(AFIB"), (50.0, "(N"), (90.0, "(AFIB"), (105.0, "(N")]
    sig, samp, sym = synth_ecg(120, 360, ["MLII", "V1"], seed=7, afib=((30, 50), (90, 105)))
    ann = sorted([(int(s * 360), 0, "+", aux) for s, aux in changes]
                 + [(int(s), 1, b, "") for s, b in zip(samp, sym)])
    wfdb.wrsamp("af01", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=sig,
                fmt=["212", "212"], write_dir=str(out.rhythm.parent))
    wfdb.wrann("af01", "atr", np.array([a[0] for a in ann]), symbol=[a[2] for a in ann],
               aux_note=[a[3] for a in ann], write_dir=str(out.rhythm.parent))
    out.beats["af01"] = (samp, sym)
    sig, _, _ = synth_ecg(20, 1000, PTB_NAMES, seed=11, p_ectopic=(0.0, 0.0))
    wfdb.wrsamp("s0001_re", fs=1000, units=["mV"] * 15, sig_name=PTB_NAMES, p_signal=sig,
                fmt=["16"] * 15, write_dir=str(out.ptb.parent))
    # a bedside record: the ECG at 500 Hz (4 samples per frame), ABP and RESP at 125 Hz;
    # QRS onsets (40 ms before the R peak) annotated at 250 Hz, as sqrs does
    ecg, samp, _ = synth_ecg(60, 500, ["MCL1"], seed=5)
    t = np.arange(60 * 125) / 125
    abp = 90 + 25 * np.sin(2 * np.pi * 1.2 * t)
    resp = 0.5 * np.sin(2 * np.pi * 0.25 * t)
    wfdb.wrsamp("m01", fs=125, units=["mV", "mmHg", "l"], sig_name=["MCL1", "ABP", "RESP"],
                e_p_signal=[ecg[:, 0], abp, resp], samps_per_frame=[4, 1, 1],
                fmt=["16", "16", "16"], write_dir=str(out.multirate.parent))
    onsets = (samp - 20) // 2
    wfdb.wrann("m01", "sqrs", onsets, symbol=["N"] * len(onsets), fs=250,
               write_dir=str(out.multirate.parent))
    out.onsets = len(onsets)
    sig, _, _ = synth_ecg(8, 500, ["I", "II"], seed=3)
    wfdb.wrsamp("o01", fs=500, units=["mV", "mV"], sig_name=["ECG 1", "ECG 2"],
                p_signal=sig, fmt=["16", "16"], write_dir=str(out.odd.parent))
    return out


@pytest.fixture(scope="session")
def ptbxl_hr() -> list[np.ndarray]:
    """Twelve 10-s 12-lead ECGs at 500 Hz (the ``records500`` signals)."""
    return [synth_ecg(10, 500, PTBXL_NAMES, seed=100 + i, hr=60.0 + 3 * i,
                      p_ectopic=(0.05, 0.05))[0] for i in range(12)]


@pytest.fixture(scope="session")
def ptbxl_dir(tmp_path_factory, ptbxl_hr) -> Path:
    """A tiny PTB-XL layout: WFDB files written by wfdb, the PTB-XL tables by pandas.

    The signals are synthetic 12-lead ECGs decimated from 500 Hz to 100 Hz, as PTB-XL's
    ``records100`` were; the table contents (codes, folds, patients) are made up.
    """
    import pandas as pd
    from scipy.signal import decimate

    wfdb = _wfdb()
    root = tmp_path_factory.mktemp("ptbxl")
    (root / "records100" / "00000").mkdir(parents=True)
    rows = []
    codes = ["{'NORM': 100.0, 'SR': 0.0}", "{'IMI': 50.0, 'SR': 0.0}",
             "{'NDT': 100.0}", "{'LVH': 100.0, 'IMI': 15.0}"]
    for i, sig in enumerate(ptbxl_hr):
        seg = decimate(sig, 5, axis=0)
        name = f"{i + 1:05d}_lr"
        wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=PTBXL_NAMES, p_signal=seg,
                    fmt=["16"] * 12, write_dir=str(root / "records100" / "00000"))
        rows.append({"ecg_id": i + 1, "patient_id": float(i // 2), "scp_codes": codes[i % 4],
                     "strat_fold": [1, 2, 10][i % 3], "filename_lr": f"records100/00000/{name}",
                     "filename_hr": f"records500/00000/{i + 1:05d}_hr"})
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    stmts = pd.DataFrame({"diagnostic": [1, 1, 1, 1, np.nan],
                          "diagnostic_class": ["NORM", "MI", "STTC", "HYP", np.nan]},
                         index=["NORM", "IMI", "NDT", "LVH", "SR"])
    stmts.to_csv(root / "scp_statements.csv")
    return root


def pytest_collection_modifyitems(items):
    # wfdb, called directly by the tests to write fixtures, trips pandas deprecations;
    # the edge-beat warning is checked by its own tests and noise elsewhere
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:The inplace keyword"))
            item.add_marker(pytest.mark.filterwarnings(
                r"ignore:.*annotated beat\(s\) dropped:UserWarning"))


# ------------------------------------------------------------------ real records


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shared MIT-BIH sample folder (records 100, PTB s0010_re, ...)."""
    return shared_data_or_skip("ecg", "wfdb-sample", "100.hea").parent


@pytest.fixture(scope="session")
def pvc_dir() -> Path:
    """The shared MIT-BIH PVC records (105, 106, 108, 116, 123 and 102)."""
    return shared_data_or_skip("ecg", "mitdb-pvc", "106.hea").parent


@pytest.fixture(scope="session")
def rhythm_dir(sample_dir, tmp_path_factory) -> Path:
    """The real record 100 with rhythm annotations written here (the record itself is all
    normal sinus rhythm): N, AFIB from 105 s, N from 200 s, AFIB from 1500 s, N from 1600 s.
    """
    import shutil

    wfdb = _wfdb()
    root = tmp_path_factory.mktemp("rhythm")
    for ext in ("hea", "dat"):
        shutil.copy(sample_dir / f"100.{ext}", root / f"100.{ext}")
    at = np.array([0, 105, 200, 1500, 1600]) * 360
    wfdb.wrann("100", "atr", at, symbol=["+"] * 5,
               aux_note=["(N", "(AFIB", "(N", "(AFIB", "(N"], write_dir=str(root))
    return root
