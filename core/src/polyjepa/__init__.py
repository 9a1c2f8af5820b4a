"""polyjepa: self-supervised pre-training with Joint-Embedding Predictive Architectures.

This module is the public API; plugins import nothing else from the core. Attributes
are imported on first use so that ``import polyjepa`` (and the CLI's ``plugins`` and
``--help``) does not pay for torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # plugin contract
    "hookimpl": "polyjepa.hookspecs",
    "hookspec": "polyjepa.hookspecs",
    "Register": "polyjepa.contract",
    "Logger": "polyjepa.contract",
    # registries
    "list_encoders": "polyjepa.components",
    "list_maskers": "polyjepa.components",
    "list_predictors": "polyjepa.components",
    "list_evaluators": "polyjepa.components",
    "list_datasets": "polyjepa.components",
    "list_recipes": "polyjepa.components",
    "list_loggers": "polyjepa.components",
    "create_encoder": "polyjepa.components",
    "create_masker": "polyjepa.components",
    "create_predictor": "polyjepa.components",
    "create_evaluator": "polyjepa.components",
    "create_dataset": "polyjepa.components",
    "create_logger": "polyjepa.components",
    "get_recipe": "polyjepa.components",
    # workflow
    "pretrain": "polyjepa.api",
    "load_encoder": "polyjepa.api",
    "embed": "polyjepa.api",
    "evaluate": "polyjepa.api",
    "evaluate_checkpoints": "polyjepa.api",
    "demo": "polyjepa.api",
    "resolve_config": "polyjepa.api",
    "embed_dataset": "polyjepa.api",
    "Run": "polyjepa.api",
    "export": "polyjepa.exporting",
    "write_shards": "polyjepa.shards",
    "ShardDataset": "polyjepa.shards",
    "ShardStream": "polyjepa.shards",
    "PushError": "polyjepa.exporting",
    "sweep": "polyjepa.sweeps",
    "SweepResult": "polyjepa.sweeps",
    "load_grid": "polyjepa.sweeps",
    "sweep_table": "polyjepa.sweeps",
    "QualityTask": "polyjepa.quality",
    "features_baseline": "polyjepa.quality",
    "run_quality_task": "polyjepa.quality",
    "write_quality_report": "polyjepa.quality",
    "write_trend_report": "polyjepa.trend",
    "trend_runs": "polyjepa.trend",
    "default_config": "polyjepa.config",
    "load_config_file": "polyjepa.config",
    # building blocks for plugins
    "TokenEncoder": "polyjepa.encoder",
    "PatchEncoder": "polyjepa.encoder",
    "transformer_blocks": "polyjepa.encoder",
    "init_weights": "polyjepa.encoder",
    "init_token_embedding": "polyjepa.encoder",
    "init_query_key": "polyjepa.encoder",
    "TransformerPredictor": "polyjepa.predictor",
    "Masks": "polyjepa.maskers",
    "MultiBlockMasker": "polyjepa.maskers",
    "RandomMasker": "polyjepa.maskers",
    "choose": "polyjepa.maskers",
    "valid_rows": "polyjepa.maskers",
    "equal_size_sets": "polyjepa.maskers",
    "sincos_pos_embed": "polyjepa.posembed",
    "gather_tokens": "polyjepa.tokens",
    "pool_tokens": "polyjepa.tokens",
    "encoder_pool": "polyjepa.tokens",
    "JEPA": "polyjepa.jepa",
    "SIGReg": "polyjepa.sigreg",
    "latent_loss": "polyjepa.losses",
    "ArrayDataset": "polyjepa.data",
    "generated_folder": "polyjepa.generated",
    "StackedSamples": "polyjepa.data",
    "collate": "polyjepa.data",
    "EvalContext": "polyjepa.evaluators",
    "effective_rank": "polyjepa.evaluators",
    "l2_normalise": "polyjepa.evaluators",
    "label_task": "polyjepa.evaluators",
    "labelled_embeddings": "polyjepa.evaluators",
    "split_indices": "polyjepa.evaluators",
    "LinearProbe": "polyjepa.evaluators",
    "KNN": "polyjepa.evaluators",
    "RankMe": "polyjepa.evaluators",
    "FineTune": "polyjepa.finetune",
    "FineTuneSettings": "polyjepa.finetune",
    "finetune_predict": "polyjepa.finetune",
    # errors
    "PolyjepaError": "polyjepa.errors",
    "PluginError": "polyjepa.errors",
    "UnknownComponentError": "polyjepa.errors",
    "ConfigError": "polyjepa.errors",
    "DataError": "polyjepa.errors",
    "CheckpointError": "polyjepa.errors",
    "TrainingDiverged": "polyjepa.errors",
    "PolyjepaWarning": "polyjepa.errors",
    "warn": "polyjepa.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyjepa' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
