"""Turning a config into objects: dataset, encoder, predictor, masker, JEPA."""

from __future__ import annotations

import copy
from typing import Any

from .components import create_dataset, create_encoder, create_masker, create_predictor
from .config import component_args, is_in_memory_marker
from .errors import ConfigError, DataError
from .jepa import JEPA
from .validation import accepted


def build_dataset(config: dict[str, Any], data: Any = None,
                  state: dict[str, Any] | None = None) -> Any:
    """Open the config's dataset on ``data`` (default: ``config["data"]``)."""
    section = config.get("dataset") or {}
    if not section.get("name"):
        raise ConfigError("the config names no dataset (dataset.name)")
    name, kwargs = component_args(section)
    if state:
        kwargs["state"] = state
    source = config.get("data") if data is None else data
    if is_in_memory_marker(source):
        raise DataError(f"the run was trained on an in-memory object ({source[1:-1]}), which "
                        "is not saved with it: pass the data again (data=... or --data)")
    dataset = create_dataset(name, source, **kwargs)
    if len(dataset) == 0:
        raise DataError(f"dataset {name!r} found no samples in {source!r}")
    return dataset


def resolve_components(config: dict[str, Any], dataset: Any) -> dict[str, Any]:
    """Fill encoder arguments the data implies (``encoder_hints``) under the config's own.

    Each encoder receives only the hints its factory declares (see
    :func:`polyjepa.validation.accepted`).
    """
    resolved = copy.deepcopy(config)
    hints = dict(getattr(dataset, "encoder_hints", None) or {})
    enc = resolved["encoder"]
    resolved["encoder"] = {**accepted("encoders", enc["name"], hints), **enc}
    target = resolved.get("target") or {}
    if target.get("kind") == "encoder":
        tsec = target.get("encoder") or {}
        if not tsec.get("name"):
            raise ConfigError("target.kind = 'encoder' needs target.encoder.name")
        target["encoder"] = {**accepted("encoders", tsec["name"], hints), **tsec}
    resolved["dataset_state"] = dict(getattr(dataset, "state", None) or {})
    return resolved


def build_encoder(config: dict[str, Any]) -> Any:
    """The encoder, carrying the run's read-out (``eval.pool``) as ``embedding_pool``, so
    every copy of it (the EMA target, the export, a loaded one) pools alike."""
    name, kwargs = component_args(config["encoder"])
    encoder = create_encoder(name, **kwargs)
    encoder.embedding_pool = str((config.get("eval") or {}).get("pool", "mean"))
    return encoder


def build_masker(config: dict[str, Any]) -> Any:
    name, kwargs = component_args(config["masker"])
    return create_masker(name, **kwargs)


def build_jepa(config: dict[str, Any]) -> JEPA:
    """Encoder, target and predictor from a resolved config."""
    encoder = build_encoder(config)
    target = config.get("target") or {}
    kind = target.get("kind", "ema")
    target_encoder = None
    out_dim = encoder.embed_dim
    if kind == "encoder":
        tname, targs = component_args(target["encoder"])
        target_encoder = create_encoder(tname, **targs)
        out_dim = target_encoder.embed_dim
    pname, pargs = component_args(config["predictor"])
    predictor = create_predictor(pname, embed_dim=encoder.embed_dim, out_dim=out_dim, **pargs)
    sig = config.get("sigreg") or {}
    loss = config.get("loss") or {}
    return JEPA(encoder, predictor, target_kind=kind, target_encoder=target_encoder,
                loss=loss.get("name", "smooth_l1"),
                normalize_targets=bool(target.get("normalize", True)), sigreg=sig,
                variance_weight=float(loss.get("variance_weight", 0.0)),
                variance_target=float(loss.get("variance_target", 1.0)),
                covariance_weight=float(loss.get("covariance_weight", 0.0)))
