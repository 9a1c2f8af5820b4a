"""scikit-learn's bundled real tables, read by name (``"wine"`` or ``"sklearn:wine"``)."""

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


def bundled_name(data: Any) -> str | None:
    """The bundled table that ``data`` names (``"wine"`` or ``"sklearn:wine"``), if any.

    A plain name counts only when no file of that name exists, so a local file called
    ``wine`` is still read as a file.
    """
    if not isinstance(data, str):
        return None
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
