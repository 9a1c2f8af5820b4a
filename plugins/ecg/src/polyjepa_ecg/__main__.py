"""``python -m polyjepa_ecg download mitdb|ptb-xl DIR``: fetch PhysioNet data (online)."""

from __future__ import annotations

import argparse
import sys

DATABASES = {"mitdb": "mitdb", "ptb-xl": "ptb-xl", "ptbdb": "ptbdb"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyjepa_ecg")
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("download", help="download a PhysioNet database with wfdb")
    sp.add_argument("database", choices=sorted(DATABASES))
    sp.add_argument("dir")
    a = parser.parse_args(argv)
    from .io import import_wfdb

    wfdb = import_wfdb()

    print(f"downloading {a.database} into {a.dir} (needs internet access) ...", flush=True)
    wfdb.dl_database(DATABASES[a.database], dl_dir=a.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
