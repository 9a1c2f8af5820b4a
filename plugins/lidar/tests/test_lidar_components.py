from __future__ import annotations

import numpy as np
import pytest
import torch

from polyjepa import EvalContext, collate, create_evaluator, split_indices, testing
from polyjepa_lidar.evaluators import pillar_embeddings, probe_pillars
from polyjepa_lidar.simulate import CLASSES, simulate_scenes

ENC = {"in_feats": 8, "embed_dim": 16, "depth": 1, "num_heads": 2}


def _batch(ds, n=4):
    return collate([ds[i] for i in range(n)])


def test_pillar_encoder_contract(kitti_dataset):
    enc = testing.check_encoder("lidar.pillar", _batch(kitti_dataset), **ENC)
    assert enc.grid(_batch(kitti_dataset)) == (16, 16)


def test_empty_pillars_do_not_change_occupied_tokens(kitti_dataset):
    from polyjepa import create_encoder

    torch.manual_seed(0)
    enc = create_encoder("lidar.pillar", **ENC).eval()
    batch = _batch(kitti_dataset, 2)
    noisy = dict(batch)
    x = batch["x"].clone()
    empty = ~batch["valid"].reshape(2, 1, 16, 16).expand_as(x)
    x[empty] = torch.randn(int(empty.sum()))
    noisy["x"] = x
    with torch.no_grad():
        a, b = enc(batch), enc(noisy)
    v = batch["valid"]
    assert torch.allclose(a[v], b[v], atol=1e-5)


def test_bev_block_masker_contract(kitti_dataset):
    batch = _batch(kitti_dataset)
    valid = batch["valid"]
    masker = testing.check_masker("lidar.bev_blocks", (16, 16), 4, valid=valid)
    masks = masker((16, 16), 4, torch.Generator().manual_seed(3), valid=valid)
    assert len(masks.targets) == 4
    # targets are occupied pillars only and come in spatially compact blocks
    for t in masks.targets:
        assert bool(torch.gather(valid, 1, t).all())
        ix, iy = t // 16, t % 16  # a block of at most 6 x 6 pillars (scale <= 0.1)
        assert int((ix.max(1).values - ix.min(1).values).max()) <= 5
        assert int((iy.max(1).values - iy.min(1).values).max()) <= 5
    testing.check_masker("lidar.bev_blocks", (16, 16), 4)  # no valid mask: all pillars


def test_bev_block_masker_with_very_sparse_scenes():
    valid = torch.zeros(3, 64, dtype=torch.bool)
    valid[0, [5, 40]] = True  # two occupied pillars only
    valid[1, :30] = True
    valid[2, ::7] = True
    masker = testing.check_masker("lidar.bev_blocks", (8, 8), 3, valid=valid, num_targets=3)
    m = masker((8, 8), 3, torch.Generator().manual_seed(0), valid=valid)
    assert m.context.shape[1] >= 1 and all(t.shape[1] >= 1 for t in m.targets)
    with pytest.raises(ValueError, match="at least 2 occupied"):
        masker((8, 8), 1, torch.Generator(), valid=valid[:1] & False)


def test_core_multiblock_honours_occupancy(kitti_dataset):
    valid = _batch(kitti_dataset)["valid"]
    testing.check_masker("multiblock", (16, 16), 4, valid=valid)


def test_recipe():
    cfg = testing.check_recipe("lidar")
    assert cfg["demo"]["kind"] == "simulated"
    assert cfg["masker"]["name"] == "lidar.bev_blocks"


@pytest.mark.parametrize(("overrides", "hint"), [
    ({"encoder.depht": 3}, r"encoder\.depht: .*Did you mean 'depth'"),
    ({"dataset.gird": 16}, r"dataset\.gird: .*Did you mean 'grid'"),
    ({"dataset.tile_strid": 2.5}, r"dataset\.tile_strid: .*'tile_stride'"),
    ({"dataset.name": "lidar.simulated", "dataset.n_scene": 8},
     r"dataset\.n_scene: .*'n_scenes'"),
])
def test_misspelt_keys_are_config_errors(overrides, hint):
    import polyjepa as pj

    with pytest.raises(pj.ConfigError, match=hint):
        pj.resolve_config("lidar", overrides=overrides)


def test_recipe_and_quality_keys_are_factory_arguments():
    import polyjepa as pj
    from polyjepa_lidar.quality import las_task, raycast_task

    cfg = pj.resolve_config("lidar", overrides={"dataset.name": "lidar.simulated",
                                                "dataset.simulate": {"sensor_height": 2.0}})
    assert cfg["dataset"]["simulate"] == {"sensor_height": 2.0}
    for task in (las_task("tile.las"), raycast_task()):
        cfg = pj.resolve_config("lidar", overrides=task.overrides)
        assert cfg["train"]["rankme_every"] == 0  # RankMe once, at the end
    # a grid is one size or one per axis; a tile a size or "auto"
    for name in ("lidar.points", "lidar.simulated"):
        for grid in (16, [16, 12]):
            pj.resolve_config("lidar", overrides={"dataset.name": name, "dataset.grid": grid})
    pj.resolve_config("lidar", overrides={"dataset.tile": "auto"})


def test_simulator_is_deterministic_and_labelled():
    a, ta = simulate_scenes(4, seed=1, beams=8, azimuths=128)
    b, tb = simulate_scenes(4, seed=1, beams=8, azimuths=128)
    c, _ = simulate_scenes(4, seed=2, beams=8, azimuths=128)
    assert ta == tb == [0, 1, 2, 3]
    np.testing.assert_array_equal(a[0].points, b[0].points)
    assert not np.array_equal(a[0].points[:50], c[0].points[:50])
    labels = np.concatenate([s.labels for s in a])
    assert set(np.unique(labels)) >= {0, 1, 4}  # ground, building, vegetation
    assert set(np.unique(labels)) <= set(range(len(CLASSES)))
    for s in a:
        ground = s.points[s.labels == 0]
        assert np.abs(ground[:, 2]).max() < 0.2  # the ground is the z = 0 plane
        assert s.intensity.min() >= 0 and s.intensity.max() <= 1
        assert np.hypot(s.points[:, 0], s.points[:, 1]).max() < 48.5


def test_simulated_dataset(sim_dataset):
    ds = testing.check_dataset("lidar.simulated", None, min_items=4, n_scenes=4, grid=8,
                               beams=8, azimuths=128)
    assert ds[0]["y"].item() == 0 and ds[1]["y"].item() == 1
    assert ds.pillar_labels.shape == (4, 64)
    assert len(sim_dataset) == 12 and sim_dataset.y is not None


def test_probe_pillars_on_separable_and_random_vectors():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 200)
    groups = np.tile(np.arange(20), 30)
    x = np.eye(3)[y] * 5 + rng.normal(0, 0.1, (600, 3))
    out = probe_pillars(x, y, groups)
    assert out == {"pillar_acc": 1.0, "pillar_miou": 1.0}
    noise = probe_pillars(rng.normal(size=(600, 3)), y, groups)
    assert noise["pillar_acc"] < 0.6 and noise["pillar_miou"] < 0.45


def test_point_metrics_from_pillar_histograms():
    # 2 classes; every pillar is predicted right at pillar level, but pillars hold mixed
    # points: a class-3 pillar has 3 points of class 3 and 1 of class 7, a class-7 pillar
    # 1 of class 3 and 4 of class 7. Every point takes its pillar's class.
    rng = np.random.default_rng(0)
    y = np.repeat(np.array([3, 7]), 100)
    groups = np.arange(200) % 10
    x = (y == 7)[:, None] * 4.0 + rng.normal(0, 0.1, (200, 2))
    hist = np.where((y == 3)[:, None], [[3, 1]], [[1, 4]])
    out = probe_pillars(x, y, groups, hist=hist, classes=np.array([3, 7]))
    _, te = split_indices(y, groups, 0)  # the probe's own test split
    n3, n7 = int((y[te] == 3).sum()), int((y[te] == 7).sum())
    assert n3 > 0 and n7 > 0
    assert out["pillar_acc"] == 1.0 and out["pillar_miou"] == 1.0
    assert out["point_acc"] == pytest.approx((3 * n3 + 4 * n7) / (4 * n3 + 5 * n7))
    # IoU = TP / (TP + FP + FN): class 3 has TP 3 n3, FP n3 (class-7 points in class-3
    # pillars), FN n7; class 7 has TP 4 n7, FP n7, FN n3
    iou3 = 3 * n3 / (3 * n3 + n3 + n7)
    iou7 = 4 * n7 / (4 * n7 + n7 + n3)
    assert out["point_miou"] == pytest.approx((iou3 + iou7) / 2)


def test_pillar_and_scene_probes_on_simulated_scenes(sim_dataset):
    from polyjepa import create_encoder, embed_dataset

    torch.manual_seed(0)
    enc = create_encoder("lidar.pillar", **ENC).eval()
    emb, labels, groups = embed_dataset(enc, sim_dataset, batch_size=8)
    ctx = EvalContext(emb, labels, groups, enc, sim_dataset, seed=0)
    out = create_evaluator("lidar.pillar_probe", baseline=True)(ctx)
    assert set(out) == {"pillar_acc", "pillar_miou", "point_acc", "point_miou",
                        "pillar_feat_acc", "pillar_feat_miou", "point_feat_acc",
                        "point_feat_miou"}
    # every point takes its pillar's class: per-point accuracy on the test pillars is at
    # most the share of their points in their majority class
    arr = pillar_embeddings(enc, sim_dataset, 8)
    _, te = split_indices(arr["labels"], arr["groups"], 0)
    hist = sim_dataset.class_counts(arr["index"][te])
    np.testing.assert_array_equal(sim_dataset.classes[hist.argmax(axis=1)], arr["labels"][te])
    purity = hist.max(axis=1).sum() / hist.sum()
    assert out["point_acc"] <= purity + 1e-9 and out["point_feat_acc"] <= purity + 1e-9
    assert all(0.0 <= v <= 1.0 for v in out.values())
    # the ground dominates: a probe that beats chance must beat the minority classes too
    assert out["pillar_feat_acc"] > 0.8
    scene = create_evaluator("lidar.scene_probe")(ctx)
    assert set(scene) == {"scene_acc", "scene_f1_macro", "scene_composition_r2"}
    assert all(np.isfinite(v) for v in scene.values())


def test_scene_probe_contract():
    out = testing.check_evaluator("lidar.scene_probe")
    assert set(out) == {"scene_acc", "scene_f1_macro"} and out["scene_acc"] > 0.8


def test_pillar_probe_skips_unlabelled_scans(kitti_dataset):
    from polyjepa import create_encoder

    enc = create_encoder("lidar.pillar", **ENC).eval()
    ctx = EvalContext(np.zeros((10, 16)), None, None, enc, kitti_dataset)
    with pytest.warns(UserWarning, match="no classes"):
        assert create_evaluator("lidar.pillar_probe")(ctx) == {}


def test_plugin_module_is_cheap_to_import():
    import subprocess
    import sys

    code = ("import sys, polyjepa_lidar.plugin; "
            "print(sorted(m for m in ('torch', 'open3d', 'laspy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "[]"


def test_untrained_tokens_carry_the_pillar_not_only_its_position(kitti_dataset):
    """Nine pillar features through a two-layer net: with ViT's std-0.02 init their
    token was ~100x smaller than the pillar's sin-cos position."""
    testing.check_token_scale("lidar.pillar", _batch(kitti_dataset, 8), **ENC)
