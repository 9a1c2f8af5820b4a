"""Encoder, predictor, positional embeddings, SIGReg, EMA and RankMe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa import testing
from polyjepa.jepa import JEPA


def test_sincos_embeddings_distinguish_positions():
    for grid in [(16,), (4, 4), (2, 3, 4)]:
        e = pj.sincos_pos_embed(grid, 24)
        assert e.shape == (int(torch.tensor(grid).prod()), 24)
        assert torch.isfinite(e).all()
        assert torch.unique(e, dim=0).shape[0] == e.shape[0]


def test_vit_contract_1d_2d_3d(core_only):
    torch.manual_seed(0)
    testing.check_encoder("vit", {"x": torch.randn(2, 3, 32)}, in_chans=3, ndim=1,
                          patch_size=4, embed_dim=16, depth=1, num_heads=2)
    testing.check_encoder("vit", {"x": torch.randn(2, 1, 8, 8)}, in_chans=1, ndim=2,
                          patch_size=2, embed_dim=16, depth=1, num_heads=2)
    testing.check_encoder("vit", {"x": torch.randn(2, 2, 4, 8, 8)}, in_chans=2, ndim=3,
                          patch_size=(2, 4, 4), embed_dim=16, depth=1, num_heads=2)
    testing.check_predictor("transformer", dim=16, depth=1, num_heads=2)


def test_invalid_tokens_do_not_influence_valid_ones():
    torch.manual_seed(0)
    enc = pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=2, num_heads=2).eval()
    x = torch.randn(1, 1, 8, 8)
    valid = torch.ones(1, 16, dtype=torch.bool)
    valid[0, 8:] = False
    y = x.clone()
    y[..., 4:, :] = 100.0  # rows of patches 8..15 change
    with torch.no_grad():
        a = enc({"x": x, "valid": valid})[:, :8]
        b = enc({"x": y, "valid": valid})[:, :8]
        c = enc({"x": y})[:, :8]
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_kept_tokens_match_gathered_positions():
    torch.manual_seed(0)
    enc = pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=0, num_heads=2).eval()
    x = {"x": torch.randn(2, 1, 8, 8)}
    keep = torch.tensor([[0, 5, 9], [1, 2, 15]])
    with torch.no_grad():
        full = enc(x)
        kept = enc(x, keep=keep)
    assert torch.allclose(pj.gather_tokens(full, keep), kept, atol=1e-6)


def test_sigreg_prefers_gaussian_to_collapsed():
    reg = pj.SIGReg(num_slices=64)
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(512, 16, generator=g)
    collapsed = torch.ones(512, 16) + 0.01 * torch.randn(512, 16, generator=g)
    assert float(reg(gauss, torch.Generator().manual_seed(1))) < \
        0.1 * float(reg(collapsed, torch.Generator().manual_seed(1)))


def test_ema_update_moves_target_towards_encoder():
    torch.manual_seed(0)
    enc = pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=1, num_heads=2)
    pred = pj.TransformerPredictor(16, dim=8, depth=1, num_heads=2)
    jepa = JEPA(enc, pred)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    before = [p.clone() for p in jepa.target.parameters()]
    jepa.update_target(0.9)
    for b, t, s in zip(before, jepa.target.parameters(), enc.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * s, atol=1e-6)
    assert all(not p.requires_grad for p in jepa.target.parameters())


def test_rankme_bounds():
    g = torch.Generator().manual_seed(0)
    full = torch.randn(2000, 8, generator=g)
    assert 7.5 < pj.effective_rank(full) <= 8.0
    rank1 = torch.randn(100, 1, generator=g) @ torch.randn(1, 8, generator=g)
    assert pj.effective_rank(rank1) < 1.1


def test_probe_task_follows_the_dataset_when_it_declares_one():
    from polyjepa.evaluators import label_task

    rng = np.random.default_rng(0)
    y = rng.integers(100, 130, size=200).astype(np.float64)  # whole numbers, 30 values
    x = np.c_[y + rng.normal(0, 1, 200), rng.normal(0, 1, (200, 3))]

    class Table:
        task = "regression"

    assert label_task(y) == "classification"
    assert label_task(y, Table()) == "regression"
    out = pj.LinearProbe()(pj.EvalContext(x, y, dataset=Table()))
    assert set(out) >= {"linear_probe_r2"} and out["linear_probe_r2"] > 0.9


def test_variance_hinge_penalises_collapsed_dimensions_only():
    from polyjepa.losses import variance_hinge

    g = torch.Generator().manual_seed(0)
    spread = 2.0 * torch.randn(4, 50, 8, generator=g)
    assert float(variance_hinge(spread)) == 0.0
    collapsed = spread.clone()
    collapsed[..., :4] = 0.5  # half the dimensions constant: hinge 1 - 0.01 on each
    assert float(variance_hinge(collapsed)) == pytest.approx(0.5 * (1 - 0.01), abs=1e-3)
    # padded tokens do not count: constant padding on top of spread tokens
    padded = torch.cat([spread, torch.zeros(4, 50, 8)], dim=1)
    valid = torch.cat([torch.ones(4, 50), torch.zeros(4, 50)], dim=1).bool()
    assert float(variance_hinge(padded, valid=valid)) == 0.0


@pytest.mark.parametrize("weight, term", [("variance_weight", "variance"),
                                          ("covariance_weight", "covariance")])
def test_regulariser_enters_the_loss_with_its_weight(weight, term):
    torch.manual_seed(0)
    enc = pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=1, num_heads=2)
    pred = pj.TransformerPredictor(16, dim=8, depth=1, num_heads=2)
    batch = {"x": torch.randn(4, 1, 8, 8)}
    masks = pj.MultiBlockMasker()((4, 4), 4, torch.Generator().manual_seed(0))
    plain = JEPA(enc, pred)(batch, masks)
    weighted = JEPA(enc, pred, **{weight: 2.0})(batch, masks)
    assert term not in plain and float(weighted[term]) > 0
    assert float(weighted["loss"]) == pytest.approx(
        float(plain["loss"]) + 2.0 * float(weighted[term]), rel=1e-5)


def test_covariance_penalty_counts_correlated_dimensions_only():
    from polyjepa.losses import covariance_penalty

    g = torch.Generator().manual_seed(0)
    base = torch.randn(2000, 1, generator=g)
    # two copies of one signal (covariance 1 twice off the diagonal) and two independent ones
    x = torch.cat([base, base, torch.randn(2000, 2, generator=g)], dim=1).reshape(4, 500, 4)
    assert float(covariance_penalty(x)) == pytest.approx(2.0 / 4, abs=0.05)
    independent = torch.randn(4, 500, 4, generator=g)
    assert float(covariance_penalty(independent)) < 0.01
    # padded tokens do not count, however correlated they are
    pad = torch.ones(4, 500, 4) * torch.arange(500.0)[None, :, None]
    mixed = torch.cat([independent, pad], dim=1)
    valid = torch.cat([torch.ones(4, 500), torch.zeros(4, 500)], dim=1).bool()
    assert float(covariance_penalty(mixed, valid)) == pytest.approx(
        float(covariance_penalty(independent)), rel=1e-5)


@pytest.mark.parametrize("patch", [2, 16])
def test_untrained_patch_tokens_carry_content_whatever_the_patch_size(core_only, patch):
    x = torch.randn(32, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    ratio = testing.check_token_scale("vit", {"x": x}, in_chans=1, ndim=2, patch_size=patch,
                                      embed_dim=64, depth=1, num_heads=2, token_scale=0.5)
    assert ratio > 0.75  # content of std 0.5 beside sin-cos positions of std ~0.5


def test_token_scale_check_fails_on_position_dominated_tokens(core_only):
    torch.manual_seed(0)
    # ViT's std 0.02 (token_scale=None) on 4-value patches: content ~0.04, positions ~0.5
    enc = pj.PatchEncoder(in_chans=1, patch_size=2, ndim=2, embed_dim=64, depth=1,
                          num_heads=2)
    x = torch.randn(32, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match="more with position than with the sample"):
        testing.check_token_scale(enc, {"x": x})


def test_query_key_init_gives_attention_logits_of_order_one(core_only):
    """ViT's 0.02 gives a 64-wide block near-constant attention logits; queries and keys
    at std 1/sqrt(width) give logits that vary by about one, values and MLPs untouched."""
    torch.manual_seed(0)
    enc = pj.PatchEncoder(in_chans=1, patch_size=4, ndim=2, embed_dim=64, depth=2,
                          num_heads=4)
    x = torch.nn.functional.layer_norm(torch.randn(8, 49, 64), (64,))

    def logit_spread(attn: torch.nn.Module) -> float:
        q, k, _ = attn.qkv(x).reshape(8, 49, 3, 4, 16).permute(2, 0, 3, 1, 4)
        return float(((q @ k.transpose(-2, -1)) * attn.scale).std(-1).mean())

    assert logit_spread(enc.blocks[0].attn) < 0.1
    values = enc.blocks[0].attn.qkv.weight[128:].clone()
    pj.init_query_key(enc)
    for blk in enc.blocks:
        assert float(blk.attn.qkv.weight[:128].std()) == pytest.approx(64 ** -0.5, rel=0.15)
    assert torch.equal(enc.blocks[0].attn.qkv.weight[128:], values)
    assert 0.5 < logit_spread(enc.blocks[0].attn) < 2.0
    pred = pj.TransformerPredictor(embed_dim=64, dim=32, depth=1, num_heads=2,
                                   query_key_scale=1.0)
    assert float(pred.blocks[0].attn.qkv.weight[:64].std()) == pytest.approx(32 ** -0.5,
                                                                             rel=0.15)
    assert float(pred.blocks[0].attn.qkv.weight[64:].std()) == pytest.approx(0.02, rel=0.15)
