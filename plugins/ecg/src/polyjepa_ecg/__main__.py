"""Command line of polyjepa-ecg: ``polyjepa ecg ...`` (or ``python -m polyjepa_ecg ...``).

``fetch-demo`` and ``download`` need internet access; ``simulate`` does not.

``polyjepa ecg fetch-demo [DIR]``
    puts the demo recording (MIT-BIH 208, ``scipy/misc/ecg.dat``) where the demo finds
    it, taking the file out of a scipy 1.14 wheel downloaded from the package index with
    ``pip download`` (nothing is installed). Does nothing when the file is already found.
``polyjepa ecg download mitdb|ptb-xl|ptbdb DIR``
    a PhysioNet database with ``wfdb``'s downloader (PTB-XL with its tables; ``--rate``
    keeps only the 100 Hz or 500 Hz files).
``polyjepa ecg simulate DIR [--patients 6] [--seconds 300] [--seed 0]``
    simulated patients' records with annotated N, A and V beats (WFDB, MLII + V1 at
    360 Hz; :mod:`polyjepa_ecg.simulate`): labelled data to try a recipe on.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from polyjepa import DataError

DATABASES = {"mitdb": "mitdb", "ptb-xl": "ptb-xl", "ptbdb": "ptbdb"}
PTBXL_TABLES = ("ptbxl_database.csv", "scp_statements.csv")
# the last scipy releases whose wheels carry scipy/misc/ecg.dat, newest first
DEMO_SCIPY_VERSIONS = ("1.14.1", "1.13.1", "1.12.0", "1.11.4")
# any CPython wheel holds the same file: used when none matches this interpreter
_FALLBACK_TARGET = ("--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
                    "--platform", "manylinux2014_x86_64")


def _record_hash(zf: zipfile.ZipFile, member: str) -> str | None:
    """The ``sha256=`` digest a wheel's RECORD lists for ``member`` (None if absent)."""
    for name in zf.namelist():
        if name.endswith(".dist-info/RECORD"):
            for line in zf.read(name).decode("utf-8", "replace").splitlines():
                parts = line.rsplit(",", 2)
                if len(parts) == 3 and parts[0] == member and parts[1].startswith("sha256="):
                    return parts[1][len("sha256="):]
    return None


def extract_demo(wheel: str | Path, dest_dir: str | Path) -> Path:
    """Copy ``scipy/misc/ecg.dat`` out of a scipy wheel into ``dest_dir/ecg.dat``.

    The bytes are checked against the wheel's RECORD digest and must load as the
    1-D recording the demo reader expects; a failure names the wheel.
    """
    from .io import DEMO_FILE, DEMO_WHEEL_MEMBER, load_demo_array

    wheel = Path(wheel)
    where = f"{wheel}:{DEMO_WHEEL_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as zf:
            if DEMO_WHEEL_MEMBER not in zf.namelist():
                raise DataError(f"{wheel}: no {DEMO_WHEEL_MEMBER} in this archive (only "
                                f"scipy 1.11-1.14 wheels ship it)")
            data = zf.read(DEMO_WHEEL_MEMBER)
            expected = _record_hash(zf, DEMO_WHEEL_MEMBER)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{wheel}: not a readable wheel (zip) file: {exc}") from exc
    if expected is not None:
        got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if got != expected:
            raise DataError(f"{where}: sha256 {got} differs from the wheel's RECORD "
                            f"({expected}); the download is corrupt")
    load_demo_array(io.BytesIO(data), where)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{DEMO_FILE}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, dest / DEMO_FILE)
    return dest / DEMO_FILE


def _pip_download(version: str, folder: str, extra: tuple[str, ...]) -> Path | None:
    cmd = [sys.executable, "-m", "pip", "download", f"scipy=={version}", "--no-deps",
           "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", folder, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(folder).glob(f"scipy-{version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        print(f"  scipy {version}{' (cp312 wheel)' if extra else ''}: {tail[0]}",
              file=sys.stderr)
        return None
    return wheels[0]


def fetch_demo(dest_dir: str | Path | None = None, wheel: str | Path | None = None,
               force: bool = False) -> Path:
    """Make the demo recording available; returns the path the demo will read."""
    from .io import demo_cache_dir, demo_record_file

    dest = Path(dest_dir) if dest_dir else demo_cache_dir()
    if not force and wheel is None:
        try:
            found = demo_record_file()
        except DataError:
            found = None
        if found is not None and (dest_dir is None or found == dest / "ecg.dat"):
            print(f"the ECG demo recording is already at {found}")
            return found
    if wheel is not None:
        return extract_demo(wheel, dest)
    with tempfile.TemporaryDirectory(prefix="polyjepa-ecg-") as tmp:
        print("downloading a scipy 1.14 wheel from the package index for its ecg.dat "
              "(nothing is installed) ...", flush=True)
        for extra in ((), _FALLBACK_TARGET):
            for version in DEMO_SCIPY_VERSIONS:
                got = _pip_download(version, tmp, extra)
                if got is not None:
                    return extract_demo(got, dest)
    raise DataError("could not download a scipy 1.11-1.14 wheel with `pip download` (are "
                    "you online, and is pip installed?); download one by hand and run "
                    "`python -m polyjepa_ecg fetch-demo --wheel FILE.whl`")


def ptbxl_records(records: list[str], rate: int | None) -> list[str]:
    """PTB-XL record names for one sampling rate (``records100/`` or ``records500/``)."""
    if rate is None:
        return list(records)
    prefix = f"records{int(rate)}/"
    return [r for r in records if r.startswith(prefix)]


def download(database: str, dest: str, rate: int | None = None) -> None:
    """A PhysioNet database with wfdb's downloader (PTB-XL with its CSV tables)."""
    from .io import import_wfdb

    wfdb = import_wfdb()
    db = DATABASES[database]
    print(f"downloading {database} into {dest} (needs internet access) ...", flush=True)
    if db == "ptb-xl":
        from wfdb.io import download as wdl

        wfdb.dl_files(db, dest, list(PTBXL_TABLES))
        names = ptbxl_records(wdl.get_record_list(db), rate)
        wfdb.dl_database(db, dl_dir=dest, records=names, annotators=None)
    else:
        wfdb.dl_database(db, dl_dir=dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyjepa ecg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("download", help="download a PhysioNet database with wfdb")
    sp.add_argument("database", choices=sorted(DATABASES))
    sp.add_argument("dir")
    sp.add_argument("--rate", type=int, choices=(100, 500), default=None,
                    help="PTB-XL: only the 100 Hz (records100) or 500 Hz (records500) files")
    sp = sub.add_parser("fetch-demo", help="get the demo recording (MIT-BIH 208) from the "
                                           "scipy 1.14 wheel on the package index")
    sp.add_argument("dir", nargs="?", default=None,
                    help="where to put ecg.dat (default: the cache the demo searches; "
                         "elsewhere, point POLYJEPA_ECG_DEMO at the file)")
    sp.add_argument("--wheel", default=None, help="take ecg.dat from this scipy wheel "
                                                  "instead of downloading one")
    sp.add_argument("--force", action="store_true", help="replace an existing copy")
    sp = sub.add_parser("simulate", help="write simulated patients' records with "
                                         "annotated N, A and V beats (WFDB)")
    sp.add_argument("dir", help="a new or empty folder (or one this command wrote)")
    sp.add_argument("--patients", type=int, default=6)
    sp.add_argument("--seconds", type=float, default=300.0, help="length of each record")
    sp.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    try:
        if a.command == "simulate":
            from .simulate import write_pvc_records

            if a.patients < 1 or a.seconds < 10:
                parser.error("--patients must be at least 1 and --seconds at least 10")
            try:
                path = write_pvc_records(a.dir, a.patients, a.seconds, seed=a.seed)
            except FileExistsError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"{a.patients} simulated patients' records (p01 ...) in {path}")
            return 0
        if a.command == "fetch-demo":
            path = fetch_demo(a.dir, a.wheel, a.force)
            print(f"ECG demo recording: {path}")
            if a.dir is not None:
                from .io import demo_cache_dir

                if Path(a.dir).resolve() != demo_cache_dir().resolve():
                    print(f"set POLYJEPA_ECG_DEMO={path} for the demo to use it")
            return 0
        if a.rate is not None and a.database != "ptb-xl":
            parser.error("--rate applies to ptb-xl only")
        download(a.database, a.dir, a.rate)
        return 0
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
