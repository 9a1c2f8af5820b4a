"""Run configuration: defaults, recipe merging, TOML/YAML files and ``key=value`` overrides.

A config is a nested dict. Component sections (``dataset``, ``encoder``, ``masker``,
``predictor``) hold the registered ``name`` plus the keyword arguments for its factory.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

SECTIONS = ("data", "dataset", "encoder", "masker", "predictor", "target", "sigreg", "loss",
            "train", "evaluators", "eval", "demo", "recipe")


def default_config() -> dict[str, Any]:
    """The defaults every recipe starts from (I-JEPA-like, sized for a laptop CPU)."""
    return {
        "recipe": None,
        "data": None,
        "dataset": {"name": None},
        "encoder": {"name": "vit"},
        "masker": {"name": "multiblock"},
        "predictor": {"name": "transformer", "dim": 96, "depth": 3, "num_heads": 4},
        # kind: "ema" (EMA teacher), "sigreg" (LeJEPA: no teacher, SIGReg on embeddings),
        # or "encoder" (a fixed registered target encoder, named in target.encoder.name)
        "target": {"kind": "ema", "momentum": 0.996, "momentum_end": 1.0,
                   "normalize": True, "encoder": {"name": None}},
        "sigreg": {"weight": 0.05, "num_slices": 256, "num_points": 17},
        # variance_weight > 0 adds AD-L-JEPA's variance hinge on the context embeddings;
        # covariance_weight > 0 VICReg's decorrelation of their dimensions, the cure where
        # an EMA pair loses dimensions as training goes on (tables, LiDAR); it hurt those
        # whose RankMe holds (SAR, sequences), see benchmarks/QUALITY.md
        "loss": {"name": "smooth_l1", "variance_weight": 0.0, "variance_target": 1.0,
                 "covariance_weight": 0.0},
        "train": {
            "steps": 1000,
            "batch_size": 64,
            "lr": 1e-3,
            "min_lr": 1e-6,
            "warmup_steps": 100,
            "schedule": "cosine",  # or "constant" (warm-up, constant, cool-down)
            "cooldown": 0.2,  # fraction of steps cooled down under "constant"
            "weight_decay": 0.04,
            "weight_decay_end": 0.4,
            "betas": [0.9, 0.999],
            "clip_grad": 1.0,
            "accumulate": 1,
            "precision": "auto",  # "bf16", "fp32" or "auto" (bf16 where the hardware has it)
            "seed": 0,
            "device": "auto",
            "log_every": 10,
            "rankme_every": 100,
            "rankme_samples": 512,
            "collapse_rank": 0.02,  # warn below this share of the maximal rank
            "checkpoint_every": 200,
            "keep_checkpoints": 2,
            # "last": export the final weights; "rankme": the checkpoint whose embeddings
            # have the highest centred RankMe (a label-free choice; it is kept on disk)
            "select": "last",
            "num_workers": 0,
            # the share of the dataset pre-training draws its batches from (0 < f <= 1),
            # a subset the seed chooses: for studies of how pre-training scales with data
            "data_fraction": 1.0,
            # "ddp" (replicas) or "fsdp" (FSDP2: parameters, gradients and optimizer state
            # sharded over the ranks, for models too big for one device); used under torchrun
            "strategy": "ddp",
            # where metrics go: registered loggers (`polyjepa plugins`), e.g. "mlflow",
            # "wandb"; "tensorboard" does nothing without the tensorboard package; "jsonl"
            # (metrics.jsonl) is always on. An older config's train.tensorboard =
            # true/false still adds/removes "tensorboard".
            "loggers": ["jsonl", "tensorboard"],
            # wrap the encoder(s) and predictor with torch.compile (dynamic shapes, since
            # token counts vary per batch). Off: on CPU it did not pay (1.0-1.1x the
            # samples/s after up to a minute of compiling, benchmarks/bench_invalid_tokens.py)
            "compile": False,
        },
        "evaluators": ["rankme", "linear_probe", "knn"],
        # pool: how a sample's tokens become its embedding (embed, evaluate, RankMe):
        # "mean", "mean+max" (both side by side, twice as wide) or "last" (the last valid
        # token: a right-aligned sequence's latest position); see pool_tokens
        "eval": {"batch_size": 128, "pool": "mean"},
        "demo": {},
    }


IN_MEMORY = "<in-memory {}>"


def data_for_json(data: Any) -> Any:
    """``data`` as the run file stores it: paths and names as they are, and an in-memory
    object (a DataFrame, an array) as a marker, since only files can be found again."""
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return IN_MEMORY.format(type(data).__name__)


def is_in_memory_marker(data: Any) -> bool:
    """Whether ``data`` is the marker :func:`data_for_json` stores for an in-memory object."""
    head, _, tail = IN_MEMORY.partition("{}")
    return isinstance(data, str) and data.startswith(head) and data.endswith(tail)


_COMPONENTS = ("dataset", "encoder", "masker", "predictor")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base``.

    A component section that changes ``name`` replaces the base section rather than
    inheriting the arguments of a different component.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if (isinstance(value, dict) and isinstance(out.get(key), dict)
                and not ("name" in value and value.get("name") != out[key].get("name")
                         and key in _COMPONENTS)):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_value(text: str) -> Any:
    """Parse a command-line value: JSON/TOML-like literals, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config["a"]["b"] = value`` for ``key="a.b"``; unknown sections are errors."""
    parts = key.split(".")
    if parts[0] not in SECTIONS:
        raise ConfigError(f"unknown config key {key!r}: the first part must be one of "
                          f"{', '.join(SECTIONS)}")
    node = config
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"config key {key!r}: {part!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any] | list[str]) -> dict[str, Any]:
    """Apply ``{"train.lr": 1e-3}`` or ``["train.lr=1e-3"]`` to a copy of ``config``.

    Naming another component (``dataset.name=...``) replaces its section rather than
    keeping the arguments of the old one, as :func:`merge` does; name changes are applied
    first, so the other keys given with them land in the new section.
    """
    out = copy.deepcopy(config)
    items: list[tuple[str, Any]]
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            items.append((key.strip(), parse_value(value)))
    items.sort(key=lambda kv: kv[0].count(".") != 1 or not kv[0].endswith(".name"))
    for key, value in items:
        section, _, rest = key.partition(".")
        if isinstance(value, dict) and not rest and key in SECTIONS:
            out = merge(out, {key: value})
        elif (rest == "name" and section in _COMPONENTS and isinstance(out.get(section), dict)
              and out[section].get("name") != value):
            out[section] = {"name": value}
        else:
            set_dotted(out, key, value)
    return out


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file holding a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{what} {path}: use .toml, .yaml or .yml")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{what} {path} cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a table/mapping at the top level")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file."""
    data = read_mapping(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown section(s) {unknown}; "
                          f"known: {', '.join(SECTIONS)}")
    return data


def component_args(section: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split a component section into its registered name and factory arguments."""
    args = dict(section)
    name = args.pop("name", None)
    if not name:
        raise ConfigError(f"component section {section!r} has no 'name'")
    return name, args
