"""polyjepa-sar: JEPA pre-training on synthetic-aperture-radar rasters.

Brings readers for GeoTIFF/COG scenes, Sentinel-1 ``.SAFE`` and SNAP BEAM-DIMAP products
(tiled by rasterio windows) and labelled chip folders (MSTAR, OpenSARShip); a ViT over
image patches; SAR-JEPA's fixed multi-scale ROA-gradient target and local block masks;
chip-classification evaluators; and a speckle simulator for the demo.

Papers: SAR-JEPA (Li et al., 2023, https://arxiv.org/abs/2311.15153), recipe ``sar``;
I-JEPA (Assran et al., CVPR 2023, https://arxiv.org/abs/2301.08243), recipe ``sar.ema``
and the multi-block masking the local blocks adapt.
"""
