"""Checking a config before anything runs: every key against the setting or factory
argument it names (with close matches for a misspelling), every value against the type of
its default, and the values training cannot work with (a negative batch size).

This is the one path for every config: ``pretrain``, the sweeps and ``--print-config``
all go through :func:`check_config`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

COMPONENT_KINDS = {"dataset": "datasets", "encoder": "encoders", "masker": "maskers",
                   "predictor": "predictors"}
# sections whose keys are fixed by default_config() rather than by a factory
_FIXED = ("train", "loss", "target", "sigreg", "eval")
# arguments the core itself passes to a factory; a config does not set them
_PASSED_BY_CORE = {"datasets": ("data", "state"), "predictors": ("embed_dim", "out_dim")}
_POSITIVE = ("train.batch_size", "train.lr", "train.accumulate", "train.log_every",
             "train.rankme_samples", "eval.batch_size", "sigreg.num_slices",
             "sigreg.num_points")
_NON_NEGATIVE = ("train.steps", "train.warmup_steps", "train.min_lr", "train.weight_decay",
                 "train.weight_decay_end", "train.clip_grad", "train.keep_checkpoints",
                 "train.num_workers", "train.rankme_every", "train.checkpoint_every",
                 "loss.variance_weight", "loss.covariance_weight",
                 "sigreg.weight")
# eval.pool: polyjepa.tokens.POOLS, spelt out so that checking a config needs no torch
_CHOICES = {"train.schedule": ("cosine", "constant"), "train.precision": ("auto", "bf16", "fp32"),
            "train.select": ("last", "rankme"), "train.strategy": ("ddp", "fsdp"),
            "target.kind": ("ema", "sigreg", "encoder"),
            "eval.pool": ("mean", "mean+max", "last")}
# settings an older config may still hold, with the values they took; see default_config
_DEPRECATED = {("train", "tensorboard"): (True, False, "auto", "true", "false", "on", "off")}
_EMPTY = inspect.Parameter.empty


def signature_params(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """A factory's named parameters with their defaults, and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}, True
    params = {p.name: p.default for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return params, var_kw


def factory_params(kind: str, name: str) -> tuple[dict[str, Any], bool]:
    """:func:`signature_params` of the factory registered as ``name`` among ``kind``."""
    from .components import component_entry

    return signature_params(component_entry(kind, name).resolve())


def accepted(kind: str, name: str, hints: dict[str, Any]) -> dict[str, Any]:
    """The subset of data-implied ``hints`` that the factory ``name`` takes.

    A dataset offers every encoder the same hints (its channel count, patch size, ...);
    each encoder receives only those it declares, so factories need no ``**_`` catch-all
    and a misspelt config key is not swallowed with them.
    """
    params, var_kw = factory_params(kind, name)
    return dict(hints) if var_kw else {k: v for k, v in hints.items() if k in params}


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def same_type(key: str, current: Any, value: Any, what: str = "setting",
              lists: bool = True) -> None:
    """Fail when ``value`` cannot stand where ``current`` (a default or recipe value) does.

    Numbers must be numbers (whole ones where the default is whole), switches booleans
    and lists lists; a string default accepts anything, since several settings take
    either a word or a value. ``lists=False`` lets a scalar stand for a list default
    (factory arguments such as a patch size take one size or one per axis).
    """
    if current is None or value is None:
        return
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(current, int) and isinstance(value, float):
            ok = value.is_integer()
    elif isinstance(current, (list, tuple)):
        ok = isinstance(value, (list, tuple)) or not lists
    else:
        ok = True
    if not ok:
        want = ("true or false" if isinstance(current, bool) else "a whole number"
                if isinstance(current, int) else "a number"
                if isinstance(current, float) else "a list")
        raise ConfigError(f"{what} {key!r}: {value!r} is not {want} (the default is "
                          f"{current!r})")


def _check_component(node: dict[str, Any], kind: str, where: str) -> None:
    """Every key of the component section ``node`` (at ``where``) must be an argument of
    the factory it names, of the kind of that argument's default."""
    name = node.get("name")
    if not name:
        return
    params, var_kw = factory_params(kind, name)
    if var_kw:
        return
    own = [k for k in params if k not in _PASSED_BY_CORE.get(kind, ())]
    for key, value in node.items():
        if key == "name":
            continue
        if key in _PASSED_BY_CORE.get(kind, ()):
            raise ConfigError(f"{where}.{key} is set by polyjepa itself, not by the config")
        if key not in params:
            raise ConfigError(
                f"unknown setting {where}.{key}: {kind[:-1]} {name!r} takes "
                f"{', '.join(own) or 'no arguments'}."
                f"{_suggest(key, own)}")
        default = params[key]
        if default is not _EMPTY:
            same_type(f"{where}.{key}", default, value, lists=False)


def check_key(config: dict[str, Any], key: str) -> Any:
    """The current value of dotted ``key`` (a factory default for a component argument not
    set yet); unknown keys raise with close matches. Used by sweeps to check their grids."""
    from .config import SECTIONS

    parts = key.split(".")
    if parts[0] not in SECTIONS or len(parts) < 2:
        raise ConfigError(f"{key!r}: the first part must be one of {', '.join(SECTIONS)} "
                          "followed by a key, e.g. 'train.lr'")
    node: Any = config
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        return node[last]
    parent = ".".join(parts[:-1])
    names = [f"{parent}.{k}" for k in node] if isinstance(node, dict) else []
    if parts[0] in COMPONENT_KINDS and len(parts) == 2:
        name = (config.get(parts[0]) or {}).get("name")
        if name:
            params, var_kw = factory_params(COMPONENT_KINDS[parts[0]], name)
            if last in params or var_kw:
                default = params.get(last, _EMPTY)
                return None if default is _EMPTY else default
            names += [f"{parts[0]}.{p}" for p in params]
    raise ConfigError(f"{key!r} is not a setting of this config.{_suggest(key, names)}")


def _check_values(config: dict[str, Any]) -> None:
    def get(key: str) -> Any:
        s, k = key.split(".")
        return (config.get(s) or {}).get(k)

    for key in _POSITIVE:
        v = get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
            raise ConfigError(f"{key} must be above 0, got {v!r}")
    for key in _NON_NEGATIVE:
        v = get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise ConfigError(f"{key} must not be negative, got {v!r}")
    for key, choices in _CHOICES.items():
        v = get(key)
        if v is not None and v not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, choices))}, got "
                              f"{v!r}.{_suggest(str(v), list(choices))}")
    momentum = get("target.momentum")
    if isinstance(momentum, (int, float)) and not 0 <= momentum <= 1:
        raise ConfigError(f"target.momentum must lie in [0, 1], got {momentum!r}")
    fraction = get("train.data_fraction")
    if isinstance(fraction, (int, float)) and not 0 < fraction <= 1:
        raise ConfigError(f"train.data_fraction must lie in (0, 1], got {fraction!r}")


def check_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for the first unknown key, wrongly typed or impossible
    value in ``config``; component sections are checked against their factories."""
    from .config import default_config

    defaults = default_config()
    for section in _FIXED:
        node = config.get(section)
        if node is None:
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"config section {section!r} must be a table, got {node!r}")
        for key, value in node.items():
            if section == "target" and key == "encoder":
                continue
            if (section, key) in _DEPRECATED:
                if value is not None and value not in _DEPRECATED[section, key]:
                    raise ConfigError(f"{section}.{key} must be true or false, got {value!r} "
                                      "(better: list loggers in train.loggers)")
                continue
            if key not in defaults[section]:
                raise ConfigError(f"unknown setting {section}.{key}."
                                  f"{_suggest(key, list(defaults[section]))} Settings of "
                                  f"[{section}]: {', '.join(defaults[section])}")
            same_type(f"{section}.{key}", defaults[section][key], value)
    for section, kind in COMPONENT_KINDS.items():
        node = config.get(section)
        if node is None:
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"config section {section!r} must be a table, got {node!r}")
        _check_component(node, kind, section)
    target = config.get("target") or {}
    if target.get("kind") == "encoder" and isinstance(target.get("encoder"), dict):
        _check_component(target["encoder"], "encoders", "target.encoder")
    _check_values(config)
    _check_loggers(config)


def _check_loggers(config: dict[str, Any]) -> None:
    """``train.loggers`` names registered loggers (close matches for a misspelling)."""
    from .components import component_entry

    names = (config.get("train") or {}).get("loggers")
    if names is None:
        return
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"train.loggers must be a list of logger names such as "
                          f'["jsonl", "mlflow"], got {names!r}')
    for name in names:
        component_entry("loggers", name)
