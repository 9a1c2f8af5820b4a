"""Learning-rate, weight-decay and EMA-momentum schedules as pure functions of the step."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant")


def learning_rate(step: int, total: int, lr: float, min_lr: float = 0.0, warmup: int = 0,
                  schedule: str = "cosine", cooldown: float = 0.2) -> float:
    """Linear warm-up, then cosine decay or constant with a linear cool-down (``"constant"``)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    warmup = min(warmup, max(total - 1, 0))
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "cosine":
        span = max(total - warmup, 1)
        t = min((step - warmup) / span, 1.0)
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))
    cool_steps = int(round(cooldown * total))
    cool_start = total - cool_steps
    if cool_steps <= 0 or step < cool_start:
        return lr
    t = (step - cool_start + 1) / cool_steps
    return lr + (min_lr - lr) * min(t, 1.0)


def cosine_ramp(step: int, total: int, start: float, end: float) -> float:
    """Cosine interpolation from ``start`` to ``end`` (I-JEPA's weight-decay schedule)."""
    t = min(step / max(total - 1, 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))


def linear_ramp(step: int, total: int, start: float, end: float) -> float:
    """Linear interpolation from ``start`` to ``end`` (the EMA momentum schedule)."""
    t = min(step / max(total - 1, 1), 1.0)
    return start + (end - start) * t
