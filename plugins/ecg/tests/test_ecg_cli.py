"""``python -m polyjepa_ecg``: fetch-demo and download, exercised without network access."""

import base64
import hashlib
import io
import subprocess
import zipfile

import numpy as np
import pytest

from polyjepa import DataError
from polyjepa_ecg import __main__ as cli
from polyjepa_ecg.io import DEMO_WHEEL_MEMBER, read_demo


def _ecg_dat() -> bytes:
    """An ``ecg.dat`` in scipy's format (an .npz holding uint16 ADC samples ``ecg``)."""
    raw = (1024 + 200 * np.sin(np.linspace(0, 60, 7200))).astype(np.uint16)
    buf = io.BytesIO()
    np.savez(buf, ecg=raw)
    return buf.getvalue()


def _wheel(path, data: bytes, record_data: bytes | None = None, member=DEMO_WHEEL_MEMBER):
    digest = base64.urlsafe_b64encode(hashlib.sha256(record_data or data).digest())
    record = f"{member},sha256={digest.rstrip(b'=').decode()},{len(data)}\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr("scipy-1.14.1.dist-info/RECORD", record)
    return path


def _no_pip(*a, **k):
    raise AssertionError("pip was called")


def test_fetch_demo_from_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", _no_pip)
    whl = _wheel(tmp_path / "scipy-1.14.1-cp311-cp311-x.whl", _ecg_dat())
    dest = tmp_path / "cache"
    assert cli.main(["fetch-demo", str(dest), "--wheel", str(whl)]) == 0
    monkeypatch.setenv("POLYJEPA_ECG_DEMO", str(dest / "ecg.dat"))
    rec = read_demo()
    assert rec.signal.shape == (1, 7200) and abs(float(rec.signal.max()) - 1.0) < 0.01


def test_fetch_demo_fills_the_cache_the_demo_searches(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("POLYJEPA_ECG_DEMO", raising=False)
    # as if the installed scipy were too new to ship ecg.dat
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "scipy" else real_find(name, *a))
    whl = _wheel(tmp_path / "s.whl", _ecg_dat())
    path = cli.fetch_demo(wheel=whl)
    assert path == tmp_path / "c" / "ecg" / "ecg.dat"
    from polyjepa_ecg.io import demo_record_file

    found = demo_record_file()
    assert found == path
    # a second call finds the recording and downloads nothing
    monkeypatch.setattr(subprocess, "run", _no_pip)
    assert cli.fetch_demo() == found


def test_fetch_demo_rejects_bad_wheels(tmp_path):
    good = _ecg_dat()
    corrupt = _wheel(tmp_path / "corrupt.whl", good[:-10] + b"0123456789", record_data=good)
    with pytest.raises(DataError, match=r"corrupt\.whl.*sha256"):
        cli.extract_demo(corrupt, tmp_path / "out")
    other = _wheel(tmp_path / "new.whl", good, member="scipy/datasets/x.py")
    with pytest.raises(DataError, match=r"new\.whl: no scipy/misc/ecg\.dat"):
        cli.extract_demo(other, tmp_path / "out")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk\.whl"):
        cli.extract_demo(tmp_path / "junk.whl", tmp_path / "out")
    wrong = _wheel(tmp_path / "wrong.whl", b"\x00" * 100)
    with pytest.raises(DataError, match=r"wrong\.whl:scipy/misc/ecg\.dat"):
        cli.extract_demo(wrong, tmp_path / "out")
    assert not (tmp_path / "out" / "ecg.dat").exists()
    assert cli.main(["fetch-demo", str(tmp_path / "o2"), "--wheel", str(wrong)]) == 1


def test_download_ptbxl_fetches_tables_and_one_rate(tmp_path, monkeypatch):
    from polyjepa_ecg.io import import_wfdb

    wfdb = import_wfdb()
    from wfdb.io import download as wdl

    calls = {}
    names = ["records100/00000/00001_lr", "records500/00000/00001_hr",
             "records100/00000/00002_lr"]
    monkeypatch.setattr(wdl, "get_record_list", lambda db, records="all": list(names))
    monkeypatch.setattr(wfdb, "dl_files", lambda db, d, files: calls.update(files=files))
    monkeypatch.setattr(wfdb, "dl_database",
                        lambda db, dl_dir, records="all", annotators="all", **k:
                        calls.update(db=db, records=records, annotators=annotators))
    assert cli.main(["download", "ptb-xl", str(tmp_path), "--rate", "100"]) == 0
    assert calls["files"] == ["ptbxl_database.csv", "scp_statements.csv"]
    assert calls["records"] == [names[0], names[2]] and calls["annotators"] is None
    assert cli.ptbxl_records(names, 500) == [names[1]]
    with pytest.raises(SystemExit):
        cli.main(["download", "mitdb", str(tmp_path), "--rate", "100"])
    with pytest.raises(SystemExit):
        cli.main(["download", "nosuchdb", str(tmp_path)])


def test_commands_are_reachable_as_polyjepa_ecg():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "polyjepa", "ecg", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "usage: polyjepa ecg" in out and "fetch-demo" in out and "download" in out
