"""SIGReg (LeJEPA): keep embeddings isotropic Gaussian without an EMA teacher.

Embeddings are projected on many random unit directions; each 1-D projection is
compared with N(0, 1) through the Epps-Pulley statistic, the weighted squared distance
between its empirical characteristic function and the Gaussian one.

Balestriero & LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the
Heuristics", 2025, https://arxiv.org/abs/2511.08544
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _gather_all(z: torch.Tensor) -> torch.Tensor:
    """Concatenate embeddings of every data-parallel rank, keeping gradients."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(z), dim=0)


class SIGReg(nn.Module):
    """Sketched isotropic Gaussian regulariser: mean Epps-Pulley statistic over slices."""

    def __init__(self, num_slices: int = 256, num_points: int = 17, t_max: float = 3.0):
        super().__init__()
        t = torch.linspace(0.0, t_max, num_points)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", torch.exp(-0.5 * t**2), persistent=False)
        self.num_slices = int(num_slices)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = _gather_all(z.float())
        n, d = z.shape
        dirs = torch.randn(d, self.num_slices, generator=generator).to(z.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        x = (z @ dirs).unsqueeze(-1) * self.t  # [N, S, P]
        re = torch.cos(x).mean(dim=0)
        im = torch.sin(x).mean(dim=0)
        err = (re - self.phi) ** 2 + im**2  # [S, P]
        # the integrand is even in t: integrate over [0, t_max] and double it
        stat = 2.0 * torch.trapezoid(err * self.phi, self.t, dim=-1) * n
        return stat.mean()
