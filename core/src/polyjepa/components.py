"""``list_*`` and ``create_*``: the public face of the component registries.

``create_*`` resolves the lazy factory, calls it, and checks that the object it returns
is of the right kind, so a broken factory is reported with the plugin that provided it.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from .contract import Dataset, Encoder, Evaluator, Logger, Masker, Predictor
from .errors import PluginError
from .plugins import host
from .registry import Entry


def _list(kind: str, pattern: str | None) -> list[str]:
    names = host().registry(kind).names()
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def list_encoders(pattern: str | None = None) -> list[str]:
    """Names of registered encoders, optionally filtered by a glob pattern."""
    return _list("encoders", pattern)


def list_maskers(pattern: str | None = None) -> list[str]:
    """Names of registered maskers."""
    return _list("maskers", pattern)


def list_predictors(pattern: str | None = None) -> list[str]:
    """Names of registered predictors."""
    return _list("predictors", pattern)


def list_evaluators(pattern: str | None = None) -> list[str]:
    """Names of registered evaluators."""
    return _list("evaluators", pattern)


def list_datasets(pattern: str | None = None) -> list[str]:
    """Names of registered dataset readers."""
    return _list("datasets", pattern)


def list_recipes(pattern: str | None = None) -> list[str]:
    """Names of registered recipes."""
    return _list("recipes", pattern)


def list_loggers(pattern: str | None = None) -> list[str]:
    """Names of registered loggers (metrics sinks such as experiment trackers)."""
    return _list("loggers", pattern)


def component_entry(kind: str, name: str) -> Entry:
    """The registry entry for ``name`` (raises with close matches when unknown)."""
    return host().registry(kind).get(name)


def _build(kind: str, name: str, kwargs: dict[str, Any]) -> tuple[Any, Entry]:
    entry = component_entry(kind, name)
    factory = entry.resolve()
    try:
        obj = factory(**kwargs)
    except TypeError as exc:
        raise PluginError(
            f"{kind[:-1]} {name!r} from plugin {entry.provider!r} rejected its arguments "
            f"{sorted(kwargs)}: {exc}"
        ) from exc
    return obj, entry


def _wrong(kind: str, entry: Entry, obj: Any, expected: str) -> PluginError:
    return PluginError(
        f"{kind[:-1]} {entry.name!r} from plugin {entry.provider!r} returned "
        f"{type(obj).__name__}, expected {expected}"
    )


def create_encoder(name: str, **kwargs: Any) -> Any:
    """Build a registered encoder (a :class:`polyjepa.contract.Encoder`, normally a
    :class:`polyjepa.TokenEncoder`)."""
    import torch.nn as nn

    obj, entry = _build("encoders", name, kwargs)
    if not (isinstance(obj, nn.Module) and isinstance(obj, Encoder)):
        raise _wrong("encoders", entry, obj, "a torch.nn.Module with grid() and embed_dim")
    return obj


def create_masker(name: str, **kwargs: Any) -> Any:
    """Build a registered masker: ``masker(grid, batch_size, generator, valid=None)``."""
    obj, entry = _build("maskers", name, kwargs)
    if not isinstance(obj, Masker):
        raise _wrong("maskers", entry, obj, "a callable masker")
    return obj


def create_predictor(name: str, **kwargs: Any) -> Any:
    """Build a registered predictor module."""
    import torch.nn as nn

    obj, entry = _build("predictors", name, kwargs)
    if not (isinstance(obj, nn.Module) and isinstance(obj, Predictor)):
        raise _wrong("predictors", entry, obj, "a torch.nn.Module")
    return obj


def create_evaluator(name: str, **kwargs: Any) -> Any:
    """Build a registered evaluator: ``evaluator(ctx) -> dict[str, float]``."""
    obj, entry = _build("evaluators", name, kwargs)
    if not isinstance(obj, Evaluator):
        raise _wrong("evaluators", entry, obj, "a callable evaluator")
    return obj


def create_dataset(name: str, data: Any = None, **kwargs: Any) -> Any:
    """Open ``data`` with a registered dataset reader (``None``: its bundled demo data)."""
    obj, entry = _build("datasets", name, {"data": data, **kwargs})
    if not isinstance(obj, Dataset):
        raise _wrong("datasets", entry, obj, "a map-style dataset (__len__, __getitem__)")
    return obj


def create_logger(name: str, **kwargs: Any) -> Any:
    """Build a registered logger (a :class:`polyjepa.contract.Logger`); nothing is opened
    until its ``start``."""
    obj, entry = _build("loggers", name, kwargs)
    if not isinstance(obj, Logger):
        raise _wrong("loggers", entry, obj, "a logger with start, log_metrics, log_results, "
                     "log_artifact and finish")
    return obj


def get_recipe(name: str) -> dict[str, Any]:
    """A registered recipe's config, merged over :func:`polyjepa.default_config`."""
    from .config import default_config, merge

    obj, entry = _build("recipes", name, {})
    if not isinstance(obj, dict):
        raise _wrong("recipes", entry, obj, "a dict config")
    return merge(default_config(), obj)
