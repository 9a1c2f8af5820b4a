"""The grid file of a sweep: its search space, parsed, checked against the recipe and
expanded into trial overrides."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import read_mapping
from ..errors import ConfigError
from ..validation import check_key, same_type
from .summary import METRICS

GRID_KEYS = {"method", "trials", "seed", "metric", "params", "set", "early_stop"}
RANGE_KEYS = {"low", "high", "log", "int", "values", "choices"}


@dataclass
class Grid:
    """A parsed, validated search space."""

    method: str
    params: dict[str, list[Any] | dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    trials: int | None = None
    seed: int = 0
    metric: str = "rankme_centered"
    early_stop: bool = True


# -- the grid file ----------------------------------------------------------------------
def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & RANGE_KEYS):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def load_grid(grid: str | Path | dict[str, Any]) -> Grid:
    """Read a grid file (TOML/YAML) or dict into a :class:`Grid`; errors name the key."""
    where = "grid"
    if isinstance(grid, (str, Path)):
        where = f"grid file {grid}"
        raw = read_mapping(grid, "grid file")
    else:
        raw = dict(grid)
    unknown = sorted(set(raw) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(GRID_KEYS)}")
    method = str(raw.get("method", "grid"))
    if method not in ("grid", "random"):
        raise ConfigError(f"{where}: method must be 'grid' or 'random', got {method!r}")
    metric = str(raw.get("metric", "rankme_centered"))
    if metric not in METRICS:
        raise ConfigError(f"{where}: metric must be one of {METRICS}, got {metric!r}")
    params = _flatten(raw.get("params") or {})
    if not params:
        raise ConfigError(f"{where}: [params] names no value to search over")
    trials = raw.get("trials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        raise ConfigError(f"{where}: trials must be a positive integer, got {trials!r}")
    if method == "random" and trials is None:
        raise ConfigError(f"{where}: random search needs 'trials' (how many draws)")
    for key, space in params.items():
        _check_space(where, key, space, method)
    fixed = _flatten(raw.get("set") or {})
    return Grid(method, params, fixed, trials, int(raw.get("seed", 0)), metric,
                bool(raw.get("early_stop", True)))


def _check_space(where: str, key: str, space: Any, method: str) -> None:
    if isinstance(space, dict):
        extra = sorted(set(space) - RANGE_KEYS)
        if extra:
            raise ConfigError(f"{where}: {key!r} has unknown field(s) {extra}; use "
                              "values/choices or low/high/log/int")
        values = space.get("values", space.get("choices"))
        if values is not None:
            _check_space(where, key, values, method)
            return
        if "low" not in space or "high" not in space:
            raise ConfigError(f"{where}: {key!r} needs a list of values or low and high")
        low, high = space["low"], space["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: {key!r} range bounds must be numbers, got "
                              f"{low!r} and {high!r}")
        if not low < high:
            raise ConfigError(f"{where}: {key!r} has an empty range: low={low} >= high={high}")
        if space.get("log") and low <= 0:
            raise ConfigError(f"{where}: {key!r} is log-scaled, so low must be > 0, got {low}")
        if method == "grid":
            raise ConfigError(f"{where}: {key!r} is a range; grid search needs a list of "
                              "values (or use method = 'random')")
        return
    if not isinstance(space, list):
        raise ConfigError(f"{where}: {key!r} must be a list of values or a range table, "
                          f"got {space!r}")
    if not space:
        raise ConfigError(f"{where}: {key!r} has an empty list of values")


def _values(space: Any) -> list[Any] | None:
    if isinstance(space, list):
        return space
    return space.get("values", space.get("choices"))


def trial_overrides(grid: Grid) -> list[dict[str, Any]]:
    """The overrides of every trial, in a fixed order (a pure function of the grid)."""
    keys = sorted(grid.params)
    if grid.method == "grid":
        combos = list(itertools.product(*[_values(grid.params[k]) for k in keys]))
        if grid.trials is not None:
            combos = combos[:grid.trials]
        return [dict(zip(keys, c)) for c in combos]
    rng = random.Random(grid.seed)
    out = []
    for _ in range(int(grid.trials or 0)):
        trial = {}
        for k in keys:
            space = grid.params[k]
            values = _values(space)
            if values is not None:
                trial[k] = values[rng.randrange(len(values))]
                continue
            low, high = float(space["low"]), float(space["high"])
            x = (math.exp(rng.uniform(math.log(low), math.log(high))) if space.get("log")
                 else rng.uniform(low, high))
            as_int = space.get("int", isinstance(space["low"], int) and
                               isinstance(space["high"], int))
            trial[k] = int(round(x)) if as_int else x
        out.append(trial)
    return out


# -- validation against the recipe -------------------------------------------------------
def validate_keys(config: dict[str, Any], values: dict[str, list[Any]]) -> None:
    """Fail before any trial for unknown keys or values of the wrong type (the same checks
    as every config, :mod:`polyjepa.validation`)."""
    for key, candidates in values.items():
        try:
            current = check_key(config, key)
        except ConfigError as exc:
            raise ConfigError(f"sweep key {exc}") from None
        for value in candidates:
            same_type(key, current, value, what="sweep key")
