"""Real tables that installed packages ship, read by name: scikit-learn's (``"wine"`` or
``"sklearn:wine"``) and, when statsmodels is installed, larger survey tables from its
datasets (``"statsmodels:fair"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

SKLEARN_SETS = {
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
    "linnerud": ("load_linnerud", "regression"),
}

# name: the count column whose being above zero is the label ("target"); fair: any
# extramarital affair, 6,366 women of a 1974 magazine survey (Fair, 1978), 8 features;
# randhie: any outpatient visit, 20,190 person-years of the RAND Health Insurance
# Experiment, 9 features
STATSMODELS_SETS = {"fair": "affairs", "randhie": "mdvis"}


def bundled_name(data: Any) -> str | None:
    """The bundled table that ``data`` names (``"wine"``, ``"sklearn:wine"`` or
    ``"statsmodels:fair"``), if any; statsmodels tables keep their prefix.

    A plain name counts only when no file of that name exists, so a local file called
    ``wine`` is still read as a file.
    """
    if not isinstance(data, str):
        return None
    if data.startswith("statsmodels:"):
        if data.split(":", 1)[1] not in STATSMODELS_SETS:
            raise DataError(f"{data}: unknown bundled table; choose one of "
                            f"{', '.join('statsmodels:' + n for n in STATSMODELS_SETS)}")
        return data
    if data.startswith("sklearn:"):
        name = data.split(":", 1)[1]
        if name not in SKLEARN_SETS:
            raise DataError(f"{data}: unknown bundled table; choose one of "
                            f"{', '.join(SKLEARN_SETS)}")
        return name
    if data in SKLEARN_SETS and not Path(data).exists():
        return data
    return None


def sklearn_frame(name: str) -> Any:
    """One of scikit-learn's bundled real tables as a DataFrame with a ``target`` column.

    ``linnerud`` has three targets (weight, waist, pulse of 20 men); its ``target`` is the
    first, body weight, predicted from the three exercise counts.
    """
    import pandas as pd
    import sklearn.datasets as skd

    if name not in SKLEARN_SETS:
        raise DataError(f"sklearn:{name}: unknown bundled table; choose one of "
                        f"{', '.join(SKLEARN_SETS)}")
    loader, _ = SKLEARN_SETS[name]
    bunch = getattr(skd, loader)()
    names = getattr(bunch, "feature_names", None)
    if names is None or len(names) != bunch.data.shape[1]:
        names = [f"f{i}" for i in range(bunch.data.shape[1])]
    cols = [str(c) for c in names]
    frame = pd.DataFrame(np.asarray(bunch.data, np.float64), columns=cols)
    target = np.asarray(bunch.target)
    frame["target"] = target[:, 0] if target.ndim == 2 else target
    return frame


def bundled_task(name: str) -> str:
    """``classification`` or ``regression`` for a name :func:`bundled_name` returned."""
    return "classification" if name.startswith("statsmodels:") else SKLEARN_SETS[name][1]


def bundled_frame(name: str) -> tuple[Any, str]:
    """The table :func:`bundled_name` returned, with a ``target`` column, and its source."""
    if name.startswith("statsmodels:"):
        return statsmodels_frame(name.split(":", 1)[1]), name
    return sklearn_frame(name), f"sklearn:{name}"


def statsmodels_dir() -> Path | None:
    """The installed statsmodels package folder (its data sets are read from there without
    importing it), or ``None`` where statsmodels is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def statsmodels_frame(name: str) -> Any:
    """One of :data:`STATSMODELS_SETS`, read from the CSV file the statsmodels wheel ships,
    with ``target`` = whether its count column is above zero (that column dropped)."""
    import pandas as pd

    root = statsmodels_dir()
    if root is None:
        raise DataError(f"statsmodels:{name}: the table ships with statsmodels, which is not "
                        "installed (pip install statsmodels)")
    path = root / "datasets" / name / f"{name}.csv"
    if not path.is_file():
        raise DataError(f"statsmodels:{name}: {path} is missing from the installed statsmodels")
    column = STATSMODELS_SETS[name]
    frame = pd.read_csv(path)
    frame["target"] = (frame.pop(column).astype(float) > 0).astype(np.int64)
    return frame
