"""Invalid tokens cost nothing: the encoder runs on valid tokens only, with the numbers of
the dense (key-padded) path, and ``train.compile`` wraps the model with torch.compile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa.encoder import PatchEncoder, TokenEncoder
from polyjepa.errors import ConfigError
from polyjepa.jepa import JEPA
from polyjepa.maskers import MultiBlockMasker
from polyjepa.predictor import TransformerPredictor
from polyjepa.validation import check_config

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
        "train.batch_size": 8, "train.warmup_steps": 1, "train.log_every": 1,
        "train.rankme_every": 100, "train.rankme_samples": 16, "train.precision": "fp32",
        "train.device": "cpu", "masker.num_targets": 2, "train.checkpoint_every": 100}


class CountingBlock(torch.nn.Module):
    """Wraps a block and records how many tokens it was given."""

    def __init__(self, block: torch.nn.Module, seen: list[int]):
        super().__init__()
        self.block, self.seen = block, seen

    def forward(self, x: torch.Tensor, **kw) -> torch.Tensor:
        self.seen.append(x.shape[1])
        return self.block(x, **kw)


def _encoder(seed: int = 0) -> PatchEncoder:
    torch.manual_seed(seed)
    return PatchEncoder(in_chans=1, patch_size=2, ndim=2, embed_dim=16, depth=2,
                        num_heads=2).eval()


def _batch(b: int = 4, side: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images with a different number of valid tokens per sample, one with none."""
    g = torch.Generator().manual_seed(seed)
    n = (side // 2) ** 2
    valid = torch.rand(b, n, generator=g) < 0.4
    valid[0] = True  # the longest sample: every token
    valid[1] = False
    valid[1, [3, 7]] = True  # two scattered tokens
    if b > 3:
        valid[3] = False  # no valid token at all
    return {"x": torch.randn(b, 1, side, side, generator=g), "valid": valid}


def test_sparse_forward_equals_dense_at_valid_positions():
    enc = _encoder()
    batch = _batch()
    with torch.no_grad():
        sparse = enc(batch)
        dense = enc(batch, dense=True)
    valid = batch["valid"]
    assert sparse.shape == dense.shape == (4, 16, 16)
    torch.testing.assert_close(sparse[valid], dense[valid], rtol=1e-5, atol=1e-5)
    assert torch.all(sparse[~valid] == 0)
    # pooled embeddings (what embed and the evaluators use) agree too
    torch.testing.assert_close(pj.pool_tokens(sparse, valid), pj.pool_tokens(dense, valid),
                               rtol=1e-5, atol=1e-5)


def test_sparse_forward_runs_the_blocks_on_valid_tokens_only():
    enc = _encoder()
    seen: list[int] = []
    enc.blocks = torch.nn.ModuleList(CountingBlock(b, seen) for b in enc.blocks)
    valid = torch.zeros(3, 16, dtype=torch.bool)
    valid[0, :5] = True
    valid[1, 4:7] = True
    valid[2, 15] = True
    with torch.no_grad():
        enc({"x": torch.randn(3, 1, 8, 8), "valid": valid})
        assert seen == [5, 5]  # the largest valid count, not the 16 tokens of the grid
        seen.clear()
        enc({"x": torch.randn(3, 1, 8, 8), "valid": valid}, dense=True)
        assert seen == [16, 16]
        seen.clear()
        enc({"x": torch.randn(3, 1, 8, 8), "valid": torch.ones(3, 16, dtype=torch.bool)})
        assert seen == [16, 16]


def test_sparse_forward_gradients_match_dense():
    batch = _batch(seed=1)
    grads = []
    for dense in (False, True):
        enc = _encoder(seed=3).train()
        out = enc(batch, dense=dense)
        (out[batch["valid"]] ** 2).sum().backward()
        grads.append({k: p.grad.clone() for k, p in enc.named_parameters()})
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-5)


def test_keep_path_and_no_mask_path_are_unchanged():
    enc = _encoder()
    batch = _batch()
    keep = torch.arange(16).repeat(4, 1)[:, ::3]
    with torch.no_grad():
        a = enc(batch, keep=keep)
        b = enc(batch, keep=keep, dense=True)
        c = enc({"x": batch["x"]})
        d = enc(batch["x"])
    assert a.shape == (4, 6, 16) and torch.equal(a, b)
    assert torch.equal(c, d)


def _jepa_losses(dense: bool, monkeypatch: pytest.MonkeyPatch, target: str) -> list[float]:
    """Losses of a few optimiser steps of a tiny JEPA on batches with invalid tokens."""
    with monkeypatch.context() as m:
        if dense:
            m.setattr(TokenEncoder, "encode_valid",
                      lambda self, x, valid: self.encode_tokens(x, valid))
        torch.manual_seed(0)
        enc = PatchEncoder(in_chans=1, patch_size=2, ndim=2, embed_dim=16, depth=2,
                           num_heads=2)
        pred = TransformerPredictor(embed_dim=16, dim=8, depth=1, num_heads=2)
        model = JEPA(enc, pred, target_kind=target, variance_weight=0.1,
                     covariance_weight=0.1)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        masker = MultiBlockMasker(num_targets=2)
        losses = []
        for step in range(4):
            g = torch.Generator().manual_seed(step)
            x = torch.randn(6, 1, 12, 12, generator=g)
            valid = torch.rand(6, 36, generator=g) < 0.6
            valid[:, :4] = True
            batch = {"x": x, "valid": valid}
            masks = masker((6, 6), 6, torch.Generator().manual_seed(step), valid=valid)
            out = model(batch, masks, torch.Generator().manual_seed(step))
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            model.update_target(0.9)
            losses.append(float(out["loss"].detach()))
        return losses


@pytest.mark.parametrize("target", ["ema", "sigreg"])
def test_jepa_losses_match_the_dense_path(monkeypatch, target):
    sparse = _jepa_losses(False, monkeypatch, target)
    dense = _jepa_losses(True, monkeypatch, target)
    np.testing.assert_allclose(sparse, dense, rtol=1e-4, atol=1e-6)


def _digits_with_missing_rows(path: Path, n: int = 32) -> Path:
    """8x8 digits whose patch tokens are partly marked invalid (as a missing lead is)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    valid = rng.random((n, 16)) < 0.5
    valid[:, :3] = True
    np.savez(path, x=d.images[:n].astype(np.float32), y=d.target[:n], valid=valid)
    return path


def test_training_losses_match_the_dense_path(core_only, tmp_path, monkeypatch):
    data = _digits_with_missing_rows(tmp_path / "d.npz")
    over = {**TINY, "encoder.patch_size": 2, "train.steps": 3}
    sparse = pj.pretrain("array", data=data, out=tmp_path / "s", progress=False,
                         overrides=over).metrics()
    monkeypatch.setattr(TokenEncoder, "encode_valid",
                        lambda self, x, valid: self.encode_tokens(x, valid))
    dense = pj.pretrain("array", data=data, out=tmp_path / "d", progress=False,
                        overrides=over).metrics()
    a, b = [r["loss"] for r in sparse], [r["loss"] for r in dense]
    assert len(a) == 3
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -- train.compile ----------------------------------------------------------------------
def test_compile_setting_is_checked():
    assert pj.default_config()["train"]["compile"] is False
    with pytest.raises(ConfigError, match=r"'train\.compile': 'yes' is not true or false"):
        check_config({"train": {"compile": "yes"}})


def _compiler_works() -> str | None:
    """Why torch.compile cannot run here, or None when a trivial function compiles."""
    try:
        f = torch.compile(lambda x: x * 2 + 1, dynamic=True)
        f(torch.ones(3))
    except Exception as e:  # noqa: BLE001 - any failure means no toolchain
        return f"torch.compile does not work here: {type(e).__name__}: {e}"[:200]
    return None


def test_two_steps_with_compile_complete(core_only, tmp_path):
    reason = _compiler_works()
    if reason:
        pytest.skip(reason)
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "d.npz", x=d.images[:16].astype(np.float32), y=d.target[:16])
    run = pj.pretrain("array", data=tmp_path / "d.npz", out=tmp_path / "run", progress=False,
                      overrides={**TINY, "train.steps": 2, "train.compile": True})
    losses = [r["loss"] for r in run.metrics()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    # the exported encoder loads into a plain (uncompiled) encoder
    enc = pj.load_encoder(tmp_path / "run")
    assert not any("_orig_mod" in k for k in enc.state_dict())
