"""Hook implementations of polyjepa-tabular (cheap to import: factories are lazy strings)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_tabular"


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("tabular.transformer", f"{PKG}.encoders:FeatureTokenEncoder",
             description="one token per feature (numeric linear / category table / learned "
                         "missing embedding + feature identity), optional T-JEPA reg tokens")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("tabular.feature_subsets", f"{PKG}.maskers:FeatureSubsetMasker",
             description="T-JEPA masking: a random context subset of features and target "
                         "subsets among the rest")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("tabular.downstream", f"{PKG}.evaluators:Downstream",
             description="accuracy/macro-F1/ROC-AUC or RMSE/R2 of linear and MLP models on "
                         "frozen embeddings vs raw features and HistGradientBoosting")


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("tabular.table", f"{PKG}.datasets:TableDataset",
             description="CSV/TSV/Parquet files, pandas DataFrames, 2-D arrays or a bundled "
                         "sklearn table's name; numeric, categorical and missing values "
                         "(schema kept in state)")
    register("tabular.sklearn", f"{PKG}.datasets:sklearn_table",
             description="scikit-learn's bundled real tables: breast_cancer, wine, iris, "
                         "digits, diabetes, linnerud")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("tabular", f"{PKG}.recipes:tabular_recipe",
             description="T-JEPA for tables; demo: scikit-learn breast cancer (real)")
