"""Quality tasks of polyjepa-recsys: next-item ranking on MovieLens-100k (real ratings).

Data: MovieLens-100k (100,000 ratings of 1,682 movies by 943 users) as RecBole atomic files,
from ``recsys/ml-100k`` of the shared data (``$POLYJEPA_SHARED_DATA``) or, where that is
missing, the identical copy the ``recbole==1.2.1`` wheel ships. Split: each user's latest
interaction is held out (leave-last-out, the plugin's own split); it is fixed, so the seeds
vary pre-training and the random initialisation only. Probe: the plugin's next-item
scoring (``recsys.next_item``, zero-shot cosine of frozen embeddings; sequence encoder: the
output at the latest history position against every item as a one-item history; item
tower: the mean of the history's item embeddings against every item), Recall@10 over the
full catalogue with the user's training items excluded. Baselines on the same held-out
items: popularity (training counts) and item-kNN on co-occurrence. The sequence recipe
adds a fine-tuned line: both starts fine-tuned on next-item prediction over the training
histories (``recsys.finetune``), ranked the same way. Run through
``benchmarks/quality.py recsys`` (``nox -s quality -- recsys``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_recsys.quality import movielens_task


def data_path() -> Path | None:
    """MovieLens-100k: the shared copy, else recbole's bundled one, else ``None``."""
    shared = shared_data("recsys", "ml-100k", "ml-100k.inter")
    if shared is not None and shared.is_file():
        return shared.parent
    try:
        from polyjepa_recsys.demo import movielens_100k_path

        return movielens_100k_path()
    except pj.DataError:
        return None


def tasks() -> list[pj.QualityTask]:
    data = data_path()
    if data is None:
        return []
    # the recipes' own sizes (the sequence JEPA beat its random init at 400 steps in the
    # README); N = 100 keeps 3 seeds x (N + 4N) steps of both tasks near 4 minutes on 2 cores
    return [replace(movielens_task("ml-100k-seq", "recsys_seq", data, steps=100), main=True),
            movielens_task("ml-100k-items", "recsys", data, steps=100)]
