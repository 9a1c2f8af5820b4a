"""Training settings, read once from a config into named, typed values.

:func:`polyjepa.default_config` is the one source of defaults: a setting the config leaves
out takes its value from there, so no caller repeats a default (nanoGPT and I-JEPA's
``train.py`` read every setting once, at the top, the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .config import default_config


@dataclass(frozen=True)
class TrainSettings:
    """The ``[train]`` section plus the EMA schedule of ``[target]``, typed."""

    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    schedule: str
    cooldown: float
    weight_decay: float
    weight_decay_end: float
    betas: tuple[float, float]
    clip_grad: float
    accumulate: int
    precision: str
    seed: int
    device: str
    log_every: int
    rankme_every: int
    rankme_samples: int
    collapse_rank: float
    checkpoint_every: int
    keep_checkpoints: int
    select: str
    num_workers: int
    data_fraction: float
    strategy: str
    loggers: tuple[str, ...]
    compile: bool
    momentum: float
    momentum_end: float
    eval_batch_size: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainSettings:
        """Settings of ``config`` over the defaults (``None`` or a missing key: default)."""
        defaults = default_config()

        def section(name: str) -> dict[str, Any]:
            given = {k: v for k, v in (config.get(name) or {}).items() if v is not None}
            return {**defaults[name], **given}

        train, target, ev = section("train"), section("target"), section("eval")
        values = {**train, "momentum": target["momentum"],
                  "momentum_end": target["momentum_end"], "eval_batch_size": ev["batch_size"]}
        kinds = {f.name: f.type for f in fields(cls)}
        out: dict[str, Any] = {}
        for name, kind in kinds.items():
            v = values[name]
            if kind == "int":
                v = int(v or 0)
            elif kind == "float":
                v = float(v or 0.0)
            elif kind == "str":
                v = str(v)
            elif kind == "bool":
                v = bool(v)
            elif name == "betas":
                v = (float(v[0]), float(v[1]))
            elif name == "loggers":
                v = logger_names(v, (config.get("train") or {}).get("tensorboard"))
            out[name] = v
        return cls(**out)


def logger_names(loggers: Any, tensorboard: Any = None) -> tuple[str, ...]:
    """``train.loggers`` with an older config's ``train.tensorboard`` applied: ``true``
    adds ``"tensorboard"``, ``false`` removes it, ``"auto"`` (its old default) keeps the
    list as it is."""
    names = [str(n) for n in (loggers or [])]
    if tensorboard in (True, "true", "on") and "tensorboard" not in names:
        names.append("tensorboard")
    elif tensorboard in (False, "false", "off"):
        names = [n for n in names if n != "tensorboard"]
    return tuple(dict.fromkeys(names))
