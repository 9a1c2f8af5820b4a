"""Demo data: MovieLens-100k as the ``recbole`` wheel ships it (real ratings)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from polyjepa import DataError


def movielens_100k_path() -> Path:
    """The ``ml-100k.inter`` file shipped by ``recbole==1.2.1`` (found without importing it)."""
    try:
        files = metadata.files("recbole") or []
    except metadata.PackageNotFoundError as exc:
        raise DataError("the recsys demo data (MovieLens-100k) comes from the 'recbole' "
                        "package: pip install --no-deps recbole==1.2.1") from exc
    for f in files:
        if str(f).replace("\\", "/").endswith("dataset_example/ml-100k/ml-100k.inter"):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise DataError("the installed 'recbole' package does not ship "
                    "dataset_example/ml-100k/ml-100k.inter: pip install --no-deps recbole==1.2.1")
