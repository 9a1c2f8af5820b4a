"""The core's own components, registered through the same hooks a third party uses.

Factories are lazy ``"module:attr"`` strings: importing this module costs nothing.
"""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def polyjepa_register_encoders(register):
    register("vit", "polyjepa.encoder:PatchEncoder",
             description="ViT over N-d patches of [B, C, *spatial] arrays (timm blocks)")


@hookimpl
def polyjepa_register_maskers(register):
    register("multiblock", "polyjepa.maskers:MultiBlockMasker",
             description="I-JEPA/V-JEPA multi-block masks on 1-D, 2-D and 3-D grids")
    register("random", "polyjepa.maskers:RandomMasker",
             description="uniformly random target tokens, the rest as context")


@hookimpl
def polyjepa_register_predictors(register):
    register("transformer", "polyjepa.predictor:TransformerPredictor",
             description="narrow transformer with mask tokens (I-JEPA)")


@hookimpl
def polyjepa_register_evaluators(register):
    register("rankme", "polyjepa.evaluators:RankMe",
             description="effective rank of the embeddings (label-free)")
    register("linear_probe", "polyjepa.evaluators:LinearProbe",
             description="logistic/ridge regression on frozen embeddings")
    register("knn", "polyjepa.evaluators:KNN",
             description="k-nearest-neighbour classification (cosine)")
    register("finetune", "polyjepa.finetune:FineTune",
             description="the encoder fine-tuned end to end with a linear head (slow)")


@hookimpl
def polyjepa_register_datasets(register):
    register("array", "polyjepa.datasets:NDArrayDataset",
             description=".npy/.npz arrays [N, C, *spatial] with optional y/valid/group")
    register("digits", "polyjepa.datasets:digits",
             description="scikit-learn's handwritten digits (real, bundled)")
    register("shards", "polyjepa.shards:shards",
             description="samples `polyjepa shard` wrote: WebDataset .tar shards in a "
                         "folder or any fsspec URL (stream=true: read as a stream)")


@hookimpl
def polyjepa_register_recipes(register):
    register("array", "polyjepa.datasets:array_recipe",
             description="generic JEPA for 1-D/2-D/3-D arrays; demo: sklearn digits (real)")


@hookimpl
def polyjepa_register_loggers(register):
    register("jsonl", "polyjepa.loggers:JsonlLogger",
             description="metrics rows in <run>/metrics.jsonl (resume and report read them)")
    register("tensorboard", "polyjepa.loggers:TensorBoardLogger",
             description="TensorBoard scalars in <run>/tensorboard (when installed)")
    register("mlflow", "polyjepa.loggers_mlflow:MLflowLogger",
             description='MLflow run: params, metrics, results, report PNGs '
                         '(pip install "polyjepa[mlflow]")')
    register("wandb", "polyjepa.loggers_wandb:WandbLogger",
             description='Weights & Biases run: config, history, summary, report PNGs '
                         '(pip install "polyjepa[wandb]")')
