"""Multi-head self-attention whose softmax-attention runs in fp32 on CPU under bf16.

On CPU, PyTorch's flash-attention kernel is several times slower in bf16 than in fp32,
above all backward (measured: 2.5x for a ViT-S block's attention, forward + backward),
so under bf16 autocast the attention took a fifth of a training step and ate most of
the bf16 matmul gain. :class:`Attention` is timm's attention with the same parameters
and state-dict keys; on CPU, when a gradient will flow, it computes ``softmax(q k^T) v``
from fp32 copies of ``q``, ``k`` and ``v`` (more precise than bf16, so results stay
within bf16 tolerance) and hands the output back in the input dtype. Forward alone
(the EMA target, embedding), in fp32, or on an accelerator, it is timm's attention
unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Attention as TimmAttention
from timm.models.vision_transformer import Block

_LOW = (torch.bfloat16, torch.float16)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
              is_causal: bool = False) -> torch.Tensor:
    """``scaled_dot_product_attention``; in fp32 for bf16/fp16 inputs on CPU when a
    gradient will flow (forward alone, the low-precision kernel is as fast)."""
    grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if q.device.type != "cpu" or q.dtype not in _LOW or not grad:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                              dropout_p=dropout_p, is_causal=is_causal)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                             attn_mask=attn_mask, dropout_p=dropout_p,
                                             is_causal=is_causal)
    return out.to(q.dtype)


class Attention(TimmAttention):
    """timm's ``Attention`` (same weights and keys) with :func:`attention` as its kernel."""

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        if not self.fused_attn or x.device.type != "cpu":
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        b, n, _ = x.shape
        gate = getattr(self, "gate", None)
        gate = gate(x).sigmoid() if gate is not None else None
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = attention(q, k, v, attn_mask=attn_mask,
                      dropout_p=self.attn_drop.p if self.training else 0.0, is_causal=is_causal)
        x = x.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        norm = getattr(self, "norm", None)
        if norm is not None:
            x = norm(x)
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


def block_tail(block: nn.Module, x: torch.Tensor, start: int) -> torch.Tensor:
    """``block(x)[:, start:]`` of a timm pre-norm block, computing only those rows.

    Every token is still a key and a value, but only the rows from ``start`` on are
    queries, so the attention output, projection and MLP of the other rows (which the
    caller would discard) are never computed: the same numbers, up to float rounding.
    A block of another kind runs whole and is sliced.
    """
    if not _is_plain_block(block):
        return block(x)[:, start:]
    attn = block.attn
    b, n, _ = x.shape
    y = block.norm1(x)
    qkv = attn.qkv(y).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q[:, :, start:]), attn.k_norm(k)
    out = attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    out = attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(b, n - start, -1)))
    x = x[:, start:] + block.drop_path1(block.ls1(out))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def _is_plain_block(block: nn.Module) -> bool:
    """A timm ``Block`` with this module's :class:`Attention`, without a gate or an
    output norm (what :func:`block_tail` re-implements)."""
    attn = getattr(block, "attn", None)
    return (type(block) is Block and type(attn) is Attention and attn.fused_attn
            and getattr(attn, "gate", None) is None
            and isinstance(getattr(attn, "norm", nn.Identity()), nn.Identity))
