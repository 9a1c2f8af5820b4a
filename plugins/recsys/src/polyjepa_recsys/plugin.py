"""Hook implementations of polyjepa-recsys (cheap to import: factories are lazy strings)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_recsys"


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("recsys.items", f"{PKG}.datasets:items",
             description="item catalogue as feature-field tokens (RecBole/MovieLens/CSV/Parquet)")
    register("recsys.sequences", f"{PKG}.datasets:sequences",
             description="users' chronological histories, latest item held out")


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("recsys.item_tower", f"{PKG}.encoders:ItemTower",
             description="item tower: one token per feature field (hashed ids, genres, ...)")
    register("recsys.sequence", f"{PKG}.encoders:SequenceEncoder",
             description="transformer over a user's history of feature-embedded items")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("recsys.correlated_features", f"{PKG}.maskers:CorrelatedFeatureMasker",
             description="mask a seed feature field with the fields most dependent on it")
    register("recsys.spans", f"{PKG}.maskers:SpanMasker",
             description="masked spans among the valid positions of a history")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("recsys.next_item", f"{PKG}.evaluators:NextItem",
             description="leave-last-out Recall@K/NDCG@K/MRR, tail/cold slices, popularity")
    register("recsys.finetune", f"{PKG}.finetune:NextItemFineTune",
             description="the same ranking after fine-tuning the sequence encoder on next items")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("recsys", f"{PKG}.recipes:item_recipe",
             description="item tower JEPA with correlated feature masking")
    register("recsys_seq", f"{PKG}.recipes:sequence_recipe",
             description="sequence JEPA over users' histories with masked spans")
