"""Quality tasks of polyjepa-tabular: real tables that scikit-learn and statsmodels ship.

Probe: an MLP on frozen embeddings (T-JEPA's downstream model), scored by accuracy or R^2
on a held-out quarter of the rows (one split per seed). Baselines on the same split: the
same MLP on the raw features, and gradient boosting (HistGradientBoosting). The probe
and baselines live in ``polyjepa_tabular.quality``. Run through
``benchmarks/quality.py tabular`` (``nox -s quality -- tabular``).
"""

from __future__ import annotations

from dataclasses import replace

import polyjepa as pj
from polyjepa_tabular.bundled import statsmodels_dir
from polyjepa_tabular.quality import table_task

TABLES = {  # all real data, shipped with scikit-learn or (the larger ones) statsmodels
    "breast_cancer": "569 tumours, 30 features, benign/malignant",
    "wine": "178 wines, 13 features, 3 cultivars",
    "digits": "1,797 8x8 digit images as 64 features, 10 classes",
    "diabetes": "442 patients, 10 features, disease progression (regression)",
    "statsmodels:fair": "6,366 women, 8 features, any extramarital affair",
    "statsmodels:randhie": "20,190 person-years, 9 features, any outpatient visit",
}


def tasks() -> list[pj.QualityTask]:
    """Every table; the statsmodels ones only where statsmodels is installed (the quality
    session installs it)."""
    have_statsmodels = statsmodels_dir() is not None
    # judged on its largest real table, randhie (20,190 rows)
    return [replace(table_task(name, steps=100, regression=name == "diabetes"),
                    main=name.endswith("randhie")) for name in TABLES
            if have_statsmodels or not name.startswith("statsmodels:")]
