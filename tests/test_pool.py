"""``eval.pool``: how a sample's tokens become the embedding users get, carried by the
encoder everywhere it goes (embed, evaluate, RankMe, the export)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tinyrun import SMALL, digits_npz

import polyjepa as pj
from polyjepa.errors import ConfigError


def test_pool_tokens_mean_and_max_of_valid_tokens_only():
    x = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [100.0, 100.0]],
                      [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]]])
    valid = torch.tensor([[True, True, False], [False, False, False]])
    mean = pj.pool_tokens(x, valid)
    both = pj.pool_tokens(x, valid, "mean+max")
    assert torch.equal(mean, torch.tensor([[2.0, -1.0], [0.0, 0.0]]))
    # the invalid token (100) is no one's maximum; a row with no valid token is zeros
    assert torch.equal(both, torch.tensor([[2.0, -1.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(pj.pool_tokens(x, None, "mean+max")[:, 2:], x.amax(dim=1))
    with pytest.raises(ValueError, match="'max'"):
        pj.pool_tokens(x, valid, "max")


def test_last_pool_takes_each_rows_last_valid_token():
    x = torch.arange(24, dtype=torch.float32).reshape(3, 4, 2)
    # left-padded (right-aligned), a gap inside, no valid token at all
    valid = torch.tensor([[False, True, True, True], [True, True, False, True],
                          [False, False, False, False]])
    last = pj.pool_tokens(x, valid, "last")
    assert torch.equal(last, torch.stack([x[0, 3], x[1, 3], torch.zeros(2)]))
    valid[0, 3] = False
    assert torch.equal(pj.pool_tokens(x, valid, "last")[0], x[0, 2])
    assert torch.equal(pj.pool_tokens(x, None, "last"), x[:, -1])


def test_the_config_check_offers_every_pool():
    from polyjepa.tokens import POOLS
    from polyjepa.validation import _CHOICES

    assert _CHOICES["eval.pool"] == POOLS


def test_a_run_pooled_mean_and_max_embeds_exports_and_loads_alike(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    run = pj.pretrain("array", data=str(data), out=tmp_path / "run", progress=False,
                      overrides={**SMALL, "train.steps": 2, "eval.pool": "mean+max"})
    encoder = pj.load_encoder(run)
    assert pj.encoder_pool(encoder) == "mean+max"
    emb = pj.embed(run)
    assert emb.shape == (32, 2 * 16)
    # the second half is the per-dimension maximum of the tokens the first half averages
    batch = pj.collate([_dataset(run)[i] for i in range(4)])
    with torch.no_grad():
        tokens = encoder(batch).float()
    assert np.allclose(emb[:4, 16:], tokens.amax(dim=1).numpy(), atol=1e-6)
    assert np.allclose(emb[:4, :16], tokens.mean(dim=1).numpy(), atol=1e-6)
    metrics = pj.evaluate(run, evaluators=["rankme", "knn"])
    assert 1.0 <= metrics["rankme"] <= 32
    out = pj.export(run, tmp_path / "exported")
    marker = json.loads((out / "polyjepa.json").read_text())
    assert (marker["embed_dim"], marker["pool"]) == (32, "mean+max")
    assert np.array_equal(pj.embed(out, data=str(data)), emb)


def _dataset(run):
    from polyjepa.build import build_dataset

    return build_dataset(run.config, run.config["data"], state=run.config.get("dataset_state"))


def test_an_unknown_pool_is_a_config_error(core_only, tmp_path):
    with pytest.raises(ConfigError, match=r"eval.pool must be one of 'mean', 'mean\+max'"):
        pj.pretrain("array", data=str(digits_npz(tmp_path / "d.npz")), out=tmp_path / "r",
                    progress=False, overrides={**SMALL, "train.steps": 1, "eval.pool": "max"})
