"""The fast paths compute what the plain ones did: batched dataset fetches give the same
batches byte for byte, CPU attention in fp32 under bf16 stays within bf16 tolerance,
the predictor's last block on mask tokens alone gives the same predictions, and the
fused AdamW the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention as TimmAttention
from timm.models.vision_transformer import Block
from torch.utils.data import DataLoader, Dataset, default_collate

import polyjepa as pj
from polyjepa import attention as attention_mod
from polyjepa.attention import Attention, block_tail
from polyjepa.data import ArrayDataset, StackedSamples, collate, eval_loader, train_loader
from polyjepa.encoder import transformer_blocks
from polyjepa.posembed import sincos_pos_embed
from polyjepa.predictor import TransformerPredictor
from polyjepa.tokens import gather_tokens
from polyjepa.trainer import _param_groups, build_optimizer


def _arrays(n: int = 23) -> ArrayDataset:
    g = np.random.default_rng(0)
    return ArrayDataset(g.normal(size=(n, 2, 6)).astype(np.float32),
                        y=g.integers(0, 3, n), valid=g.random((n, 6)) < 0.7,
                        group=np.arange(n) % 4)


class PerSample(Dataset):
    """The same dataset without the batched fetch: one ``__getitem__`` per sample."""

    def __init__(self, ds: Dataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return self.ds[i]


def _same_bytes(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].is_contiguous() and b[k].is_contiguous(), k
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_batched_fetch_gives_the_per_sample_batches_byte_for_byte():
    ds = _arrays()
    fast = iter(train_loader(ds, 8, seed=3, start=0))
    slow = iter(train_loader(PerSample(ds), 8, seed=3, start=0))
    for _ in range(7):  # across epoch boundaries
        _same_bytes(next(fast), next(slow))
    # rank shards and evaluation subsets too
    for rank in range(2):
        _same_bytes(next(iter(train_loader(ds, 8, 1, 5, rank, 2))),
                    next(iter(train_loader(PerSample(ds), 8, 1, 5, rank, 2))))
    for a, b in zip(eval_loader(ds, 5, [4, 0, 9, 22, 3, 3, 17]),
                    eval_loader(PerSample(ds), 5, [4, 0, 9, 22, 3, 3, 17])):
        _same_bytes(a, b)


def test_batched_fetch_is_one_stacked_batch_that_still_reads_as_samples():
    ds = _arrays()
    got = ds.__getitems__([5, 1, 5])
    assert isinstance(got, StackedSamples) and len(got) == 3
    assert torch.equal(got.batch["x"], ds.x[[5, 1, 5]])
    assert all(collate(got)[k] is got.batch[k] for k in got.batch)  # no copy
    # any collate_fn, torch's own included, still sees the samples
    assert [set(s) for s in got] == [{"x", "y", "valid", "group"}] * 3
    assert torch.equal(got[-1]["x"], ds[5]["x"]) and len(got[0:2]) == 2
    with pytest.raises(IndexError):
        got[3]
    _same_bytes(default_collate(got), collate([ds[5], ds[1], ds[5]]))
    loader = DataLoader(ds, batch_size=4)  # torch's default collate
    _same_bytes(next(iter(loader)), collate([ds[i] for i in range(4)]))


def test_subclass_that_overrides_getitem_keeps_its_items():
    class Extra(ArrayDataset):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            item["twice"] = self.x[i] * 2
            return item

    ds = Extra(np.arange(24, dtype=np.float32).reshape(6, 4))
    got = ds.__getitems__([2, 0])
    assert isinstance(got, list) and set(got[0]) == {"x", "twice"}
    batch = next(iter(train_loader(ds, 4, 0, 0)))
    assert torch.equal(batch["twice"], batch["x"] * 2)


def _timm_twin(attn: Attention) -> TimmAttention:
    twin = TimmAttention(attn.qkv.in_features, attn.num_heads, qkv_bias=True)
    twin.load_state_dict(attn.state_dict())
    return twin


def test_attention_is_timms_in_fp32_and_close_under_bf16():
    torch.manual_seed(0)
    blocks = transformer_blocks(32, 1, 4)
    attn = blocks[0].attn
    assert type(attn) is Attention
    # same keys as a plain timm block: checkpoints load either way
    assert list(blocks[0].state_dict()) == list(Block(32, 4, qkv_bias=True).state_dict())
    twin = _timm_twin(attn)
    x = torch.randn(3, 7, 32)
    mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 5:] = False
    assert torch.equal(attn(x, attn_mask=mask), twin(x, attn_mask=mask))

    ref_x = x.clone().requires_grad_()
    twin(ref_x, attn_mask=mask).sum().backward()
    xb = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(xb, attn_mask=mask)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    torch.testing.assert_close(out.float(), twin(x, attn_mask=mask), rtol=0.05, atol=0.02)
    torch.testing.assert_close(xb.grad, ref_x.grad, rtol=0.05, atol=0.05)


def test_cpu_attention_runs_in_fp32_when_a_gradient_flows(monkeypatch):
    seen: list[torch.dtype] = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append(q.dtype)
        return real(q, k, v, **kw)

    monkeypatch.setattr(attention_mod.F, "scaled_dot_product_attention", spy)
    q = torch.randn(2, 2, 5, 4, dtype=torch.bfloat16)
    assert attention_mod.attention(q, q, q).dtype == torch.bfloat16
    qg = q.clone().requires_grad_()
    out = attention_mod.attention(qg, qg, qg)
    assert out.dtype == torch.bfloat16
    assert seen == [torch.bfloat16, torch.float32]  # forward alone keeps bf16


def test_block_tail_is_the_block_on_the_kept_rows():
    torch.manual_seed(0)
    block = transformer_blocks(16, 1, 2)[0]
    x = torch.randn(4, 9, 16, requires_grad=True)
    full = block(x)[:, 6:]
    g = torch.randn_like(full)
    (ga,) = torch.autograd.grad(full, x, g)
    tail = block_tail(block, x, 6)
    (gb,) = torch.autograd.grad(tail, x, g)
    torch.testing.assert_close(tail, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-6)

    class Wrapped(torch.nn.Module):  # another kind of block runs whole, then is sliced
        def __init__(self):
            super().__init__()
            self.inner = block

        def forward(self, x):
            return self.inner(x) + 1

    torch.testing.assert_close(block_tail(Wrapped(), x, 6), full + 1)


def test_predictor_predicts_what_the_whole_stack_predicts():
    torch.manual_seed(0)
    pred = TransformerPredictor(32, dim=16, depth=2, num_heads=2)
    ctx = torch.randn(6, 5, 32, requires_grad=True)
    cidx = torch.randint(0, 16, (6, 5))
    tidx = torch.randint(0, 16, (6, 3))
    out = pred(ctx, cidx, tidx, (4, 4))
    pos = sincos_pos_embed((4, 4), 16).expand(6, -1, -1)
    h = torch.cat([pred.embed(ctx) + gather_tokens(pos, cidx),
                   pred.mask_token + gather_tokens(pos, tidx)], 1)
    for blk in pred.blocks:
        h = blk(h)
    ref = pred.proj(pred.norm(h[:, 5:]))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    (ga,) = torch.autograd.grad(out.sum(), ctx)
    (gb,) = torch.autograd.grad(ref.sum(), ctx)
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)


def test_trainer_adamw_gives_the_default_adamws_weights():
    torch.manual_seed(0)
    model = pj.JEPA(pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=1,
                                    num_heads=2),
                    TransformerPredictor(16, dim=8, depth=1, num_heads=2))
    twin = pj.JEPA(pj.PatchEncoder(in_chans=1, patch_size=2, embed_dim=16, depth=1,
                                   num_heads=2),
                   TransformerPredictor(16, dim=8, depth=1, num_heads=2))
    twin.load_state_dict(model.state_dict())
    fast = build_optimizer(model, 1e-2, (0.9, 0.95))
    plain = torch.optim.AdamW(_param_groups(twin), lr=1e-2, betas=(0.9, 0.95))
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4):
        assert fast.param_groups[0]["fused"]  # CPU has a fused AdamW from torch 2.4
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        for opt in (fast, plain):
            for group in opt.param_groups:
                group["weight_decay"] = 0.05 if group.get("apply_wd") else 0.0
        for p, q in zip(model.parameters(), twin.parameters()):
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=g)
                q.grad = p.grad.clone()
        fast.step()
        plain.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_keep_freed_memory_sets_glibc_once_and_can_be_turned_off(monkeypatch):
    import platform

    from polyjepa import cpualloc

    monkeypatch.setattr(cpualloc, "_done", None)
    monkeypatch.setenv("POLYJEPA_KEEP_FREED_MEMORY", "0")
    assert cpualloc.keep_freed_memory() is False
    monkeypatch.setattr(cpualloc, "_done", None)
    monkeypatch.delenv("POLYJEPA_KEEP_FREED_MEMORY")
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert cpualloc.keep_freed_memory() is glibc
    assert cpualloc.keep_freed_memory() is glibc  # once per process
