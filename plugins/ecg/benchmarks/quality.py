"""Quality tasks of polyjepa-ecg: PVC detection on unseen patients, real and simulated.

Data (``shared/data/ecg/mitdb-pvc``): MIT-BIH records 105, 106, 108, 116 and 123, one
patient each, lead MLII, every annotated beat the centre of a 2.4-s window labelled V
(PVC) or N. Pre-training reads no label; each seed holds out two whole patients. Probe:
class-balanced logistic regression, macro-F1 over N and V. Baselines on the same split
with the same probe: RR-interval + QRS-morphology features, and the RR columns alone. A
second line fine-tunes the encoders end to end on the three training patients
(``polyjepa_ecg.quality.patient_finetuned``).
The task, its probe and baselines live in ``polyjepa_ecg.quality``. Run through
``benchmarks/quality.py ecg`` (``nox -s quality -- ecg``). Without the shared data only
the second task runs: the same on six simulated patients (``polyjepa_ecg.simulate``, the
demo's ECG task; marked simulated). (MIT-BIH 100, N vs S beats, is left to
``bench_quality.py``. It is saturated: the RR + QRS features score macro-F1 1.0 on its
fixed time split. Adding it would cost about half again the run time.)
"""

from __future__ import annotations

from dataclasses import replace

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_ecg.quality import demo_task, pvc_task


def tasks() -> list[pj.QualityTask]:
    data = shared_data("ecg", "mitdb-pvc")
    real = [pvc_task(data, steps=100)] if data is not None and data.is_dir() else []
    # judged on the real patients; on the simulated ones where their files are absent
    return [replace(t, main=True) for t in [*real, demo_task()]]
