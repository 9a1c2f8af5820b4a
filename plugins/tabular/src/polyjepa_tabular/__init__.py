"""polyjepa-tabular: T-JEPA for tables.

CSV/TSV/Parquet, DataFrame and bundled scikit-learn table readers with a saved schema,
a one-token-per-feature encoder, feature-subset masking and downstream comparisons with
raw features and gradient boosting. Implements (adapted) T-JEPA (Thimonier et al., ICLR
2025, https://arxiv.org/abs/2410.05016), with VICReg's covariance term in its recipe
(Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906).
"""
