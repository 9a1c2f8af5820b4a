"""Maskers: contract, determinism, valid tokens, block geometry."""

from __future__ import annotations

import pytest
import torch

from polyjepa import MultiBlockMasker, RandomMasker, testing


@pytest.mark.parametrize("grid", [(40,), (14, 14), (8, 7, 7)])
def test_multiblock_contract(core_only, grid):
    testing.check_masker("multiblock", grid, batch_size=6)


@pytest.mark.parametrize("name", ["multiblock", "random"])
def test_maskers_only_use_valid_tokens(core_only, name):
    g = torch.Generator().manual_seed(3)
    valid = torch.rand(5, 196, generator=g) > 0.4
    testing.check_masker(name, (14, 14), batch_size=5, valid=valid)


def test_multiblock_target_size_follows_scale():
    m = MultiBlockMasker(num_targets=4, target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5))
    for seed in range(5):
        masks = m((14, 14), 8, torch.Generator().manual_seed(seed))
        assert len(masks.targets) == 4
        frac = masks.targets[0].shape[1] / 196
        assert 0.08 <= frac <= 0.25
        union = torch.zeros(8, 196, dtype=torch.bool)
        for t in masks.targets:
            union.scatter_(1, t, True)
        # context is the complement of the targets inside the context block
        assert not bool(torch.gather(union, 1, masks.context).any())


def test_multiblock_spans_time_on_3d_grids():
    m = MultiBlockMasker(num_targets=1, target_scale=(0.2, 0.2), target_aspect=(1.0, 1.0))
    masks = m((4, 10, 10), 2, torch.Generator().manual_seed(0))
    t = masks.targets[0]
    frames = t // 100
    # every frame holds the same spatial block: the block spans the whole clip
    assert set(frames[0].tolist()) == {0, 1, 2, 3}
    spatial = (t % 100).reshape(2, 4, -1)
    assert torch.equal(spatial[:, 0], spatial[:, 3])


def test_random_masker_ratio_and_determinism():
    m = RandomMasker(target_ratio=0.25)
    a = m((64,), 3, torch.Generator().manual_seed(1))
    b = m((64,), 3, torch.Generator().manual_seed(1))
    c = m((64,), 3, torch.Generator().manual_seed(2))
    assert a.targets[0].shape == (3, 16) and a.context.shape == (3, 48)
    assert torch.equal(a.targets[0], b.targets[0]) and not torch.equal(a.targets[0], c.targets[0])


def test_masker_rejects_bad_arguments():
    with pytest.raises(ValueError):
        MultiBlockMasker(target_scale=(0.5, 0.2))
    with pytest.raises(ValueError):
        RandomMasker(target_ratio=1.5)
