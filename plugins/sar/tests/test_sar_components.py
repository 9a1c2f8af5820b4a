from __future__ import annotations

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import testing
from polyjepa_sar.encoders import GradientTarget
from polyjepa_sar.simulate import CLASSES, simulate_chips, simulate_scene, speckle


def _batch(b: int = 3, c: int = 1, size: int = 32, invalid: bool = True) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, size, size, generator=g)
    valid = torch.ones(b, (size // 8) ** 2, dtype=torch.bool)
    if invalid:
        valid[0, :5] = False
    return {"x": x, "valid": valid}


def test_sar_vit_contract() -> None:
    enc = testing.check_encoder("sar.vit", _batch(c=2), in_chans=2, patch_size=8,
                                embed_dim=16, depth=1, num_heads=2)
    assert enc.grid(_batch(c=2)) == (4, 4)


def test_gradient_target_contract_and_no_parameters() -> None:
    tgt = testing.check_encoder("sar.gradient_target", _batch(c=2), in_chans=2, patch_size=8,
                                scales=[1, 2], num_bins=6, cells=2)
    assert tgt.embed_dim == 2 * 2 * 6 * 4
    assert not list(tgt.parameters()) and not tgt.state_dict()


def test_gradient_target_standardisation_keeps_magnitudes() -> None:
    tgt = testing.check_encoder("sar.gradient_target", _batch(c=1), patch_size=8,
                                scales=[1, 2], num_bins=4, standardize=True)
    batch = _batch(c=1)
    f = tgt(batch)
    v = batch["valid"]
    assert torch.allclose(f[v].mean(0), torch.zeros(f.shape[-1]), atol=1e-4)
    assert torch.allclose(f[v].std(0, unbiased=False), torch.ones(f.shape[-1]), atol=1e-3)
    # a patch holding a strong edge stands out from flat patches in every orientation
    # bin it fills; a per-token layer norm would make both look alike
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 1.5
    x = x + 0.05 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    g = GradientTarget(patch_size=8, scales=[1], num_bins=4, standardize=True)({"x": x})
    g = g.reshape(4, 4, 4)
    assert float(g[:, 1, 0].mean()) > float(g[:, 0, 0].mean()) + 1.0
    assert GradientTarget(compress="log")({"x": x}).isfinite().all()
    with pytest.raises(ValueError, match="compress"):
        GradientTarget(compress="sqrt")


def test_gradient_target_orientation_and_ratio_invariance() -> None:
    tgt = GradientTarget(patch_size=8, scales=[1, 2], num_bins=4)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 1.5  # vertical edge: horizontal gradient, orientation 0
    f = tgt({"x": x}).reshape(4, 4, 2, 4)
    edge = f[1, 1, 0]  # the patch left of the edge (columns 8..15) at scale 1
    assert float(edge[0] + edge[3]) > 0 and float(edge[1] + edge[2]) == 0.0
    assert float(f[1, 0].abs().sum()) == 0.0  # flat patches carry no gradient
    # a horizontal edge fills the orthogonal bins
    h = tgt({"x": x.transpose(2, 3)}).reshape(4, 4, 2, 4)[1, 1, 0]
    assert float(h[1] + h[2]) > 0 and float(h[0] + h[3]) == 0.0
    # ratios: a global gain (an offset on the log scale) changes nothing
    rng = torch.Generator().manual_seed(1)
    img = torch.randn(2, 1, 32, 32, generator=rng)
    assert torch.allclose(tgt({"x": img}), tgt({"x": img + 0.7}), atol=1e-4)


def test_gradient_target_suppresses_speckle_better_than_differences() -> None:
    """On a speckled step edge the ROA gradient is larger at the edge than in flat areas."""
    rng = np.random.default_rng(0)
    refl = np.ones((64, 64), np.float32)
    refl[:, 32:] = 8.0
    amp = speckle(refl, looks=1.0, rng=rng)
    x = torch.from_numpy(np.log(amp))[None, None]
    f = GradientTarget(patch_size=8, scales=[4], num_bins=4)({"x": x}).reshape(8, 8, 4)
    edge = f[:, 3].sum(-1).mean()  # patches touching the edge (cols 24..31)
    flat = f[:, 0].sum(-1).mean()
    assert float(edge) > 2 * float(flat)


def test_local_block_masker_contract() -> None:
    valid = torch.ones(4, 64, dtype=torch.bool)
    valid[1, :30] = False
    valid[2, ::3] = False
    m = testing.check_masker("sar.local_blocks", (8, 8), batch_size=4, valid=valid)
    masks = m((8, 8), 4, torch.Generator().manual_seed(3))
    assert len(masks.targets) == 2
    assert masks.targets[0].shape == masks.targets[1].shape  # stacked by the JEPA
    # small targets: each set is at most blocks_per_target blocks of 2x2 tokens
    assert all(t.shape[1] <= 4 * 4 for t in masks.targets)
    testing.check_masker("sar.local_blocks", (4, 6), batch_size=2, num_targets=3,
                         blocks_per_target=2, block_size=[1, 3], context_ratio=0.5)
    testing.check_masker("multiblock", (8, 8), batch_size=4, valid=valid)
    with pytest.raises(ValueError, match="2-D"):
        m((4, 4, 4), 2, torch.Generator())
    with pytest.raises(ValueError, match="too few"):
        m((8, 8), 2, torch.Generator(), valid=torch.zeros(2, 64, dtype=torch.bool))


def test_local_blocks_are_local() -> None:
    """Without a valid mask a target set is a union of few small rectangles."""
    m = polyjepa.create_masker("sar.local_blocks", num_targets=1, blocks_per_target=1,
                               block_size=[2, 2])
    masks = m((8, 8), 8, torch.Generator().manual_seed(0))
    t = masks.targets[0]
    assert t.shape[1] == 4
    rows, cols = t // 8, t % 8
    assert bool(((rows.max(1).values - rows.min(1).values) == 1).all())
    assert bool(((cols.max(1).values - cols.min(1).values) == 1).all())


def test_evaluators() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    emb = rng.normal(size=(120, 8)) + np.eye(4, 8)[y] * 4
    out = testing.check_evaluator("sar.chip_classification", emb, y)
    assert out["chip_linear_acc"] > 0.9 and out["chip_knn_f1_macro"] > 0.9
    noise = testing.check_evaluator("sar.chip_classification", rng.normal(size=(120, 8)), y)
    assert noise["chip_linear_acc"] < 0.6
    with pytest.raises(polyjepa.DataError, match="two classes"):
        testing.check_evaluator("sar.chip_classification", emb, np.zeros(120, np.int64))


def test_gradient_baseline_evaluator() -> None:
    ds = polyjepa.create_dataset("sar.simulated", {"n": 100, "size": 32}, patch_size=8)
    labels = np.array([int(ds[i]["y"]) for i in range(len(ds))])
    ev = polyjepa.create_evaluator("sar.gradient_baseline")
    out = ev(polyjepa.EvalContext(np.zeros((100, 4)), labels, dataset=ds))
    assert set(out) == {"gradient_baseline_linear_acc", "gradient_baseline_linear_f1_macro",
                        "gradient_baseline_knn_acc", "gradient_baseline_knn_f1_macro"}
    assert out["gradient_baseline_linear_acc"] > 1.5 / len(CLASSES)  # well above chance


def test_simulator_speckle_statistics_and_determinism() -> None:
    rng = np.random.default_rng(0)
    refl = np.full((256, 256), 3.0, np.float32)
    for looks in (1.0, 4.0):
        inten = speckle(refl, looks, rng) ** 2
        assert inten.mean() == pytest.approx(3.0, rel=0.03)
        # Gamma(L, 1/L) speckle: variance R^2 / L
        assert inten.var() == pytest.approx(9.0 / looks, rel=0.08)
    a, ya = simulate_chips(25, 32, seed=4)
    b, yb = simulate_chips(25, 32, seed=4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert np.bincount(ya).tolist() == [5] * 5 and (a > 0).all()
    scene, targets = simulate_scene(128, 128, n_targets=4, seed=0)
    assert scene.shape == (1, 128, 128) and len(targets) == 4
    assert {t["class"] for t in targets} <= set(CLASSES[1:])


def test_simulated_dataset_and_recipes() -> None:
    ds = testing.check_dataset("sar.simulated", None, min_items=600)
    assert ds.state["simulated"] is True and ds.encoder_hints["in_chans"] == 1
    for name in ("sar", "sar.ema"):
        cfg = testing.check_recipe(name)
        assert cfg["demo"]["kind"] == "simulated"
    assert polyjepa.get_recipe("sar")["target"]["encoder"]["name"] == "sar.gradient_target"
    with pytest.raises(ValueError):
        polyjepa.create_dataset("sar.simulated", "/some/file.tif")
