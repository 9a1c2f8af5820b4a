"""Dependence between item feature fields, for correlated feature masking.

The item dataset estimates it once on the catalogue and saves it in its ``state``;
:class:`~polyjepa_recsys.maskers.CorrelatedFeatureMasker` masks a seed field together with
the fields most dependent on it. Adapted from Yao et al., "Self-supervised Learning for
Large-scale Item Recommendations", CIKM 2021, https://arxiv.org/abs/2007.12865, who rank
features by their pairwise mutual information for correlated feature masking; here it is
normalised, and fields that only identify the item are left out.
"""

from __future__ import annotations

import numpy as np


def _field_labels(x: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
    """A discrete label per item for one field (for dependence estimates); -1 = missing."""
    if kind in ("cat", "hash"):
        lab = x[:, 0].astype(np.int64)
    elif kind == "multi":
        keys = [tuple(int(v) for v in row if v > 0) for row in x]
        _, lab = np.unique(np.array([hash(k) for k in keys]), return_inverse=True)
    else:
        v = x[:, 0]
        qs = np.quantile(v[valid], np.linspace(0, 1, 11)[1:-1]) if valid.any() else np.zeros(1)
        lab = np.searchsorted(np.unique(qs), v)
    return np.where(valid, lab, -1)


def field_dependence(x: np.ndarray, valid: np.ndarray, kinds: list[str]) -> np.ndarray:
    """Normalised mutual information between every pair of fields, ``[F, F]``.

    Estimated on the catalogue (items with both fields present); multi-valued fields count
    a value set as one category and numerical fields are binned by deciles. The hashed id
    is unique per item, so it is given no dependence on the other fields; neither is any
    field whose values are nearly unique per item (more distinct values than half the
    items that have it, such as a title's word set), whose mutual information with any
    other field would only measure that it identifies the item.
    """
    from sklearn.metrics import normalized_mutual_info_score

    f = len(kinds)
    labels = [_field_labels(x[:, i], valid[:, i], kinds[i]) for i in range(f)]
    unique = [kinds[i] == "hash" or
              len(np.unique(labels[i][labels[i] >= 0])) > 0.5 * max(1, int((labels[i] >= 0).sum()))
              for i in range(f)]
    dep = np.eye(f)
    for i in range(f):
        for j in range(i + 1, f):
            if unique[i] or unique[j]:
                continue
            both = (labels[i] >= 0) & (labels[j] >= 0)
            if both.sum() < 2:
                continue
            dep[i, j] = dep[j, i] = normalized_mutual_info_score(labels[i][both], labels[j][both])
    return dep
