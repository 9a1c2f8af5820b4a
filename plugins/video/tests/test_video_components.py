from __future__ import annotations

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import testing

MASKERS = ["video.short_range", "video.long_range", "video.multimask", "video.tube"]


def _batch(b: int = 2, t: int = 4, hw: int = 32) -> dict[str, torch.Tensor]:
    return {"x": torch.randn(b, 3, t, hw, hw, generator=torch.Generator().manual_seed(0))}


def test_encoder_contract_and_grid() -> None:
    enc = testing.check_encoder("video.vit", _batch(), embed_dim=32, depth=1, num_heads=2,
                                patch_size=8, tubelet=2)
    assert enc.grid(_batch()) == (2, 4, 4)
    # inputs are cropped to whole tubelets
    assert enc.grid(_batch(t=5, hw=35)) == (2, 4, 4)
    with pytest.raises(ValueError, match="smaller than one tubelet"):
        enc.grid(_batch(t=1))
    with pytest.raises(ValueError, match="channels"):
        enc({"x": torch.randn(1, 1, 4, 32, 32)})


def test_encoder_tokens_follow_tubelets() -> None:
    """Changing one tubelet's pixels changes only that token's patch embedding."""
    torch.manual_seed(0)
    enc = polyjepa.create_encoder("video.vit", embed_dim=32, depth=1, num_heads=2,
                                  patch_size=8, tubelet=2).eval()
    b = _batch(b=1)
    x2 = b["x"].clone()
    x2[:, :, 2:4, 8:16, 0:8] += 1.0  # time slot 1, row 1, column 0
    with torch.no_grad():
        diff = (enc.tokenize({"x": x2}) - enc.tokenize(b)).abs().sum(-1)[0]
    changed = diff.nonzero().flatten().tolist()
    assert changed == [1 * 16 + 1 * 4 + 0]


@pytest.mark.parametrize("name", MASKERS)
@pytest.mark.parametrize("grid", [(2, 4, 4), (8, 7, 7)])
def test_masker_contracts(name: str, grid: tuple[int, int, int]) -> None:
    testing.check_masker(name, grid, batch_size=4)
    n = int(np.prod(grid))
    valid = torch.ones(4, n, dtype=torch.bool)
    valid[1, : n // 3] = False  # a sample with padded tokens
    testing.check_masker(name, grid, batch_size=4, valid=valid)


@pytest.mark.parametrize("name", ["video.short_range", "video.long_range", "video.tube"])
def test_targets_span_whole_clip_in_time(name: str) -> None:
    grid = (8, 14, 14)
    masker = polyjepa.create_masker(name)
    masks = masker(grid, 3, torch.Generator().manual_seed(1))
    for t in masks.targets:
        tgt = torch.zeros(3, *grid, dtype=torch.bool)
        tgt.view(3, -1).scatter_(1, t, True)
        spatial_any = tgt.any(dim=1)
        # a target position masked in one frame is masked (or subsampled) in most frames
        per_pos = tgt.sum(dim=1)[spatial_any].float()
        assert per_pos.mean() > 0.8 * grid[0]


def test_short_and_long_range_scales() -> None:
    grid = (8, 14, 14)
    n = int(np.prod(grid))
    g = torch.Generator().manual_seed(0)
    short = polyjepa.create_masker("video.short_range")(grid, 16, g)
    long = polyjepa.create_masker("video.long_range")(grid, 16, g)
    tube = polyjepa.create_masker("video.tube", ratio=0.5)(grid, 16, g)
    s_ratio = short.targets[0].shape[1] / n
    l_ratio = long.targets[0].shape[1] / n
    # 8 blocks of 0.15 (overlapping) vs 2 blocks of 0.7: both mask most of the clip,
    # the long-range mask more of it
    assert 0.4 < s_ratio < 0.9 and l_ratio > 0.6
    assert long.context.shape[1] < short.context.shape[1]
    assert tube.targets[0].shape[1] == 8 * round(0.5 * 196)
    # every masker is vectorised: different samples get different masks
    assert not torch.equal(short.targets[0][0], short.targets[0][1])


def test_multimask_alternates_by_seed() -> None:
    m = polyjepa.create_masker("video.multimask")
    sizes = {m((8, 7, 7), 2, torch.Generator().manual_seed(s)).context.shape[1]
             for s in range(12)}
    assert len(sizes) >= 2


def test_maskers_reject_bad_settings() -> None:
    with pytest.raises(ValueError):
        polyjepa.create_masker("video.tube", ratio=1.5)
    with pytest.raises(ValueError):
        polyjepa.create_masker("video.short_range", spatial_scale=(0.0, 0.1))
    with pytest.raises(ValueError, match="grid"):
        polyjepa.create_masker("video.tube")((2, 2, 2, 2), 2, torch.Generator())


def test_recipe_contract() -> None:
    cfg = testing.check_recipe("video")
    assert cfg["loss"]["name"] == "l1" and cfg["loss"]["covariance_weight"] == 0.1
    assert cfg["demo"]["kind"] == "simulated"
    assert cfg["encoder"]["tubelet"] == 2 and cfg["encoder"]["patch_size"] == 16


@pytest.mark.parametrize("name", ["video.attentive_probe", "video.mean_probe",
                                  "video.frame_retrieval"])
def test_evaluator_contracts(name: str) -> None:
    out = testing.check_evaluator(name)
    assert all(np.isfinite(v) for v in out.values())


def test_probes_learn_separable_and_fail_on_noise() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    good = rng.normal(size=(120, 16)) + 4.0 * np.eye(16)[y]
    noise = rng.normal(size=(120, 16))
    for name in ("video.attentive_probe", "video.mean_probe"):
        ev = polyjepa.create_evaluator(name)
        key = name.split(".")[1] + "_acc"
        assert ev(polyjepa.EvalContext(good, y))[key] > 0.9
        assert ev(polyjepa.EvalContext(noise, y))[key] < 0.7
    # regression labels give R^2
    t = rng.uniform(size=120).astype(np.float32)
    z = np.c_[t, rng.normal(size=(120, 3)) * 0.01]
    r2 = polyjepa.create_evaluator("video.mean_probe")(polyjepa.EvalContext(z, t))
    assert r2["mean_probe_r2"] > 0.8


def test_frame_retrieval_scores() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    ev = polyjepa.create_evaluator("video.frame_retrieval")
    good = ev(polyjepa.EvalContext(rng.normal(size=(80, 8)) + 5 * np.eye(8)[y], y))
    bad = ev(polyjepa.EvalContext(rng.normal(size=(80, 8)), y))
    assert good["frame_retrieval_recall@1"] == 1.0
    assert bad["frame_retrieval_recall@1"] < 0.6
    with pytest.raises(polyjepa.DataError):
        ev(polyjepa.EvalContext(rng.normal(size=(10, 4))))


@pytest.mark.parametrize(("overrides", "hint"), [
    ({"encoder.depht": 3}, r"encoder\.depht: .*Did you mean 'depth'"),
    ({"encoder.tubelett": 2}, r"encoder\.tubelett: .*'tubelet'"),
    ({"dataset.frmes": 8}, r"dataset\.frmes: .*'frames'"),
    ({"masker.name": "video.short_range", "masker.num_block": 4},
     r"masker\.num_block: .*'num_blocks'"),
])
def test_misspelt_keys_are_config_errors(overrides: dict, hint: str) -> None:
    with pytest.raises(polyjepa.ConfigError, match=hint):
        polyjepa.resolve_config("video", overrides=overrides)


def test_recipe_and_quality_keys_are_factory_arguments() -> None:
    from polyjepa_video.quality import arrow_task

    task = arrow_task(["a.mp4"], steps=7)
    cfg = polyjepa.resolve_config("video", overrides=task.overrides)
    assert cfg["train"]["rankme_every"] == 0 and cfg["dataset"]["clip_step"] == 1
    for name in ("video.short_range", "video.long_range"):
        cfg = polyjepa.resolve_config("video", overrides={"masker.name": name,
                                                          "masker.temporal_scale": [0.5, 1.0],
                                                          "masker.min_context": 2})
        masker = polyjepa.create_masker(name, **{k: v for k, v in cfg["masker"].items()
                                                 if k != "name"})
        assert masker.temporal_scale == (0.5, 1.0) and masker.min_context == 2


def test_untrained_tokens_carry_the_tubelet_not_only_its_position() -> None:
    ratio = testing.check_token_scale("video.vit", _batch(b=8), embed_dim=32, depth=1,
                                      num_heads=2, patch_size=8, tubelet=2)
    assert ratio > 0.5
