"""polyjepa-recsys: JEPA for recommendation data (item tower and sequence encoder).

Brings readers for interaction logs (RecBole atomic files, MovieLens layouts, CSV/TSV/
Parquet), an item catalogue and users' histories as datasets, an item tower over feature
fields and a sequence encoder over histories, correlated feature masking and span masking,
and leave-last-out next-item evaluation.

Papers it implements or adapts:

- I-JEPA: Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding
  Predictive Architecture", CVPR 2023, https://arxiv.org/abs/2301.08243 (the JEPA setup:
  predict masked targets' representations from a context in latent space).
- Yao et al., "Self-supervised Learning for Large-scale Item Recommendations", CIKM 2021,
  https://arxiv.org/abs/2007.12865 (the item tower over feature fields and correlated
  feature masking, adapted from its two-tower contrastive setup to a JEPA target).
- Zhou et al., "S3-Rec: Self-Supervised Learning for Sequential Recommendation with
  Mutual Information Maximization", CIKM 2020, https://arxiv.org/abs/2008.07873
  (pre-training judged after next-item fine-tuning: ``recsys.finetune``).

The item recipe keeps its embeddings spread with the core's SIGReg (LeJEPA, Balestriero &
LeCun, 2025, https://arxiv.org/abs/2511.08544), and both recipes report RankMe (Garrido et
al., ICML 2023, https://arxiv.org/abs/2210.02885).
"""
