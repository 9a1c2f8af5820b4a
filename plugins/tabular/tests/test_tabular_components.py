"""Contract checks and behaviour of the encoder, masker, evaluator and recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyjepa import (
    DataError,
    EvalContext,
    create_dataset,
    create_encoder,
    create_evaluator,
    create_masker,
    testing,
)
from polyjepa.testing import check_masks


def _batch(tables, n=6, **kw):
    ds = create_dataset("tabular.table", str(tables["csv"]), target="label", **kw)
    from polyjepa import collate

    return ds, collate([ds[i] for i in range(n)])


@pytest.mark.parametrize("reg_tokens", [0, 3])
def test_encoder_contract(tables, reg_tokens):
    ds, batch = _batch(tables)
    assert bool(batch["missing"].any())
    enc = testing.check_encoder("tabular.transformer", batch, embed_dim=16, depth=1,
                                num_heads=2, reg_tokens=reg_tokens, **ds.encoder_hints)
    assert enc.grid(batch) == (14,)
    ds2, batch2 = _batch(tables, missing="mask")
    testing.check_encoder("tabular.transformer", batch2, embed_dim=16, depth=1, num_heads=2,
                          reg_tokens=reg_tokens, **ds2.encoder_hints)


def test_encoder_tokens(tables):
    ds, batch = _batch(tables)
    torch.manual_seed(0)
    enc = create_encoder("tabular.transformer", embed_dim=16, depth=1, num_heads=2,
                         **ds.encoder_hints).eval()
    tok = enc.tokenize(batch)
    # a missing value's token is the missing embedding plus the feature identity only
    b, j = map(int, batch["missing"].nonzero()[0])
    expected = enc.missing_token + enc.feature_embed[j]
    assert torch.allclose(tok[b, j], expected)
    # changing the value under a missing flag changes nothing (nothing is imputed)
    other = dict(batch, x=batch["x"].clone())
    other["x"][b, j] = 123.0
    assert torch.equal(enc(other), enc(batch))
    # categorical ids outside the table are clamped, not an index error
    cat = next(i for i, c in enumerate(ds.cardinalities) if c)
    other["x"][:, cat] = 99.0
    assert torch.isfinite(enc(other)).all()
    with pytest.raises(ValueError, match="expects x of shape"):
        enc.grid({"x": torch.zeros(2, 5)})


def test_untrained_numeric_tokens_keep_magnitude_not_only_sign():
    """One standard deviation and three must give different output tokens: with a zero
    bias the layer norms map every value past ~1 sd to the same direction."""
    torch.manual_seed(0)
    enc = create_encoder("tabular.transformer", n_features=10, embed_dim=64, depth=2,
                         num_heads=4).eval()
    x = torch.zeros(3, 10)
    x[:, 0] = torch.tensor([1.0, 3.0, -1.0])
    with torch.no_grad():
        out = enc({"x": x})[:, 0]
    cos = torch.nn.functional.cosine_similarity
    assert float(cos(out[0], out[1], dim=0)) < 0.95
    assert float(cos(out[0], out[2], dim=0)) < float(cos(out[0], out[1], dim=0))


@pytest.mark.parametrize("cards", [[4, 0, 0], [0, 3, 0, 5, 0], [2, 3], [0, 0, 6]])
def test_categorical_columns_anywhere(cards):
    """Numeric features after the last categorical one used to look up a row past the end
    of the category table (IndexError); every order of kinds must encode."""
    torch.manual_seed(0)
    enc = create_encoder("tabular.transformer", n_features=len(cards), cardinalities=cards,
                         embed_dim=8, depth=1, num_heads=2).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, len(cards), generator=gen)
    for j, c in enumerate(cards):
        if c:
            x[:, j] = torch.randint(0, c, (5,), generator=gen).float()
    tok = enc.tokenize({"x": x})
    assert tok.shape == (5, len(cards), 8) and torch.isfinite(tok).all()
    # a numeric token is its own linear map of the value, whatever sits in the table
    for j in (i for i, c in enumerate(cards) if not c):
        expected = x[:, j, None] * enc.num_weight[j] + enc.num_bias[j] + enc.feature_embed[j]
        assert torch.allclose(tok[:, j], expected)
    # a categorical token is its own row of the table
    j = next(i for i, c in enumerate(cards) if c)
    row = x[0, j].long() + sum(cards[:j])
    assert torch.allclose(tok[0, j], enc.cat_embed.weight[row] + enc.feature_embed[j])


def test_reg_tokens_take_part_and_are_dropped(tables):
    ds, batch = _batch(tables)
    torch.manual_seed(0)
    enc = create_encoder("tabular.transformer", embed_dim=16, depth=1, num_heads=2,
                         reg_tokens=2, **ds.encoder_hints).eval()
    out = enc(batch)
    assert out.shape == (6, 14, 16)
    with torch.no_grad():  # not a constant shift, which the layer norms would cancel
        enc.reg.add_(torch.randn(enc.reg.shape, generator=torch.Generator().manual_seed(0)))
    assert not torch.allclose(enc(batch), out, atol=1e-4)  # they attend with the features


def test_masker_contract_and_sizes():
    grid = (20,)
    m = testing.check_masker("tabular.feature_subsets", grid, batch_size=8)
    masks = m(grid, 8, torch.Generator().manual_seed(1))
    assert len(masks.targets) == 2
    assert 8 <= masks.context.shape[1] <= 12  # context_scale 0.4-0.6 of 20
    for t in masks.targets:
        assert 3 <= t.shape[1] <= 6
    valid = torch.rand(4, 20, generator=torch.Generator().manual_seed(0)) > 0.3
    valid[:, :3] = True
    testing.check_masker("tabular.feature_subsets", grid, batch_size=4, valid=valid,
                         context_scale=0.5, target_scale=[0.2, 0.4], num_targets=3,
                         disjoint_targets=True)
    m = create_masker("tabular.feature_subsets", context_scale=0.5, target_scale=0.25,
                      num_targets=2, disjoint_targets=True)
    masks = m(grid, 4, torch.Generator().manual_seed(0))
    check_masks(masks, grid, 4)
    a, b = masks.targets
    assert not bool((a.unsqueeze(2) == b.unsqueeze(1)).any())
    other = m(grid, 4, torch.Generator().manual_seed(5))
    assert not torch.equal(other.context, masks.context)
    # tiny tables still work: 2 features -> 1 context, 1 target
    small = m((2,), 3, torch.Generator().manual_seed(0))
    assert small.context.shape == (3, 1) and small.targets[0].shape == (3, 1)
    with pytest.raises(ValueError):
        create_masker("tabular.feature_subsets", context_scale=1.5)


def test_downstream_classification_and_regression():
    out = testing.check_evaluator("tabular.downstream")
    assert {"downstream_emb_linear_acc", "downstream_emb_mlp_f1_macro",
            "downstream_emb_linear_auc"} <= set(out)
    assert out["downstream_emb_linear_acc"] >= 0.75  # label = sign of a feature (20 test rows)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 8))
    y = (z @ rng.normal(size=8) + 0.01 * rng.normal(size=120)).astype(np.float32)
    reg = testing.check_evaluator("tabular.downstream", z, y, mlp_iter=50)
    assert set(reg) == {"downstream_emb_linear_rmse", "downstream_emb_linear_r2",
                        "downstream_emb_mlp_rmse", "downstream_emb_mlp_r2"}
    assert reg["downstream_emb_linear_r2"] > 0.95


def test_downstream_baselines_on_dataset(tables):
    ds = create_dataset("tabular.table", str(tables["csv"]), target="label")
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(ds), 8))  # uninformative embeddings
    labels = ds.extras["y"].numpy()
    ev = create_evaluator("tabular.downstream", mlp_iter=100)
    out = ev(EvalContext(emb, labels, dataset=ds, seed=0))
    for src in ("emb_linear", "emb_mlp", "raw_linear", "raw_mlp", "raw_gbdt"):
        for metric in ("acc", "f1_macro", "auc"):
            assert np.isfinite(out[f"downstream_{src}_{metric}"])
    # the real wine features separate the cultivars; noise does not
    assert out["downstream_raw_linear_acc"] > 0.85 and out["downstream_raw_gbdt_acc"] > 0.8
    assert out["downstream_emb_linear_acc"] < 0.7
    dense, cat = ds.raw_features("dense")
    assert dense.shape[0] == len(ds) and cat.sum() == 4  # band: unknown + 3 categories
    tree, cat = ds.raw_features("tree")
    assert np.isnan(tree).any() and cat.sum() == 1
    with pytest.raises(DataError, match="needs labels"):
        ev(EvalContext(emb, None, dataset=ds))


def test_recipe():
    cfg = testing.check_recipe("tabular")
    assert cfg["demo"]["kind"] == "real"
    assert cfg["masker"]["name"] == "tabular.feature_subsets"


@pytest.mark.parametrize("dataset, key, meant", [
    ("tabular.table", "encoder.depht", "depth"),
    ("tabular.table", "encoder.reg_token", "reg_tokens"),
    ("tabular.table", "dataset.catgorical", "categorical"),
    ("tabular.sklearn", "dataset.max_categores", "max_categories"),
])
def test_misspelt_keys_are_config_errors(dataset, key, meant):
    """The factories take no catch-all, so a misspelt setting is named, not ignored."""
    from polyjepa import ConfigError, resolve_config

    with pytest.raises(ConfigError, match=rf"{key}.*Did you mean .*{meant}"):
        resolve_config("tabular", data="wine", overrides={"dataset.name": dataset, key: 3})


def test_downstream_regression_baselines_on_real_table():
    """diabetes (real, regression): raw features carry signal, noise embeddings do not."""
    ds = create_dataset("tabular.table", "diabetes")
    emb = np.random.default_rng(0).normal(size=(len(ds), 8))
    ev = create_evaluator("tabular.downstream", models=["linear"])
    out = ev(EvalContext(emb, ds.extras["y"].numpy(), dataset=ds, seed=0))
    assert set(out) == {f"downstream_{s}_{m}" for s in ("emb_linear", "raw_linear", "raw_gbdt")
                        for m in ("rmse", "r2")}
    assert out["downstream_raw_linear_r2"] > 0.3 and out["downstream_raw_gbdt_r2"] > 0.1
    assert out["downstream_emb_linear_r2"] < 0.1
    assert out["downstream_raw_linear_rmse"] < out["downstream_emb_linear_rmse"]


def test_recipe_starts_attention_with_logits_of_order_one(tables):
    """The recipe's encoder and predictor draw queries and keys at std 1/sqrt(width)
    (ViT's 0.02 left attention uniform at these widths), values at 0.02."""
    import polyjepa as pj
    from polyjepa.build import build_dataset, build_jepa, resolve_components

    cfg = pj.resolve_config("tabular", data=str(tables["csv"]),
                            overrides={"dataset.target": "label"})
    cfg = resolve_components(cfg, build_dataset(cfg))
    jepa = build_jepa(cfg)
    for part, width in ((jepa.encoder, 64), (jepa.predictor, 32)):
        w = part.blocks[0].attn.qkv.weight
        assert float(w[: 2 * width].std()) == pytest.approx(width ** -0.5, rel=0.2)
        assert float(w[2 * width:].std()) == pytest.approx(0.02, rel=0.2)
