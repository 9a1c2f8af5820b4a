import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                             Path(__file__).resolve().parents[3].parent / "shared" / "data"))
SAMPLE = SHARED / "ecg" / "wfdb-sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "100.hea").is_file():
        pytest.skip(f"shared ECG data not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def ptbxl_dir(tmp_path_factory) -> Path:
    """A tiny PTB-XL layout: real WFDB files written by wfdb, the PTB-XL tables by pandas.

    The signals are 10-s excerpts of the real s0010_re record (PTB), decimated to 100 Hz;
    only the table contents (codes, folds, patients) are made up.
    """
    import pandas as pd
    from scipy.signal import decimate

    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    root = tmp_path_factory.mktemp("ptbxl")
    rec = wfdb.rdrecord(str(SAMPLE / "s0010_re"))
    sig = rec.p_signal[:, :12]
    names = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    (root / "records100" / "00000").mkdir(parents=True)
    rows = []
    codes = ["{'NORM': 100.0, 'SR': 0.0}", "{'IMI': 50.0, 'SR': 0.0}",
             "{'NDT': 100.0}", "{'LVH': 100.0, 'IMI': 15.0}"]
    for i in range(12):
        start = i * 2500
        seg = decimate(sig[start:start + 10000], 10, axis=0)[:1000]
        name = f"{i + 1:05d}_lr"
        wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=names, p_signal=seg,
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
    # wfdb, called directly by the tests to write fixtures, trips pandas deprecations
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:The inplace keyword"))


@pytest.fixture(scope="session")
def rhythm_dir(sample_dir, tmp_path_factory) -> Path:
    """The real record 100 with rhythm annotations written here (the record itself is all
    normal sinus rhythm): N, AFIB from 105 s, N from 200 s, AFIB from 1500 s, N from 1600 s.
    """
    import shutil

    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    root = tmp_path_factory.mktemp("rhythm")
    for ext in ("hea", "dat"):
        shutil.copy(sample_dir / f"100.{ext}", root / f"100.{ext}")
    at = np.array([0, 105, 200, 1500, 1600]) * 360
    wfdb.wrann("100", "atr", at, symbol=["+"] * 5,
               aux_note=["(N", "(AFIB", "(N", "(AFIB", "(N"], write_dir=str(root))
    return root
