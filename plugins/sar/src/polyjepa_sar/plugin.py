"""polyjepa-sar hook implementations (cheap to import: every factory is a lazy string)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_sar"


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("sar.vit", f"{PKG}.encoders:SARViT",
             description="ViT over (H/p, W/p) patches of dB-normalised SAR images")
    register("sar.gradient_target", f"{PKG}.encoders:GradientTarget",
             description="fixed SAR-JEPA target: multi-scale ratio-of-averages gradient "
                         "histograms per patch")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("sar.local_blocks", f"{PKG}.maskers:LocalBlockMasker",
             description="many small local target blocks, sized for small SAR targets")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("sar.chip_classification", f"{PKG}.evaluators:ChipClassification",
             description="chip classification accuracy / macro-F1: linear probe and kNN")
    register("sar.gradient_baseline", f"{PKG}.evaluators:GradientBaseline",
             description="the same chip classification on hand-crafted ROA-gradient HOG")


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("sar.raster", f"{PKG}.datasets:open_sar",
             description="GeoTIFF/COG scenes, Sentinel-1 SAFE and BEAM-DIMAP products, "
                         "tiled by rasterio windows (or a chip folder)")
    register("sar.chips", f"{PKG}.datasets:ChipFolder",
             description="chip folders with one sub-folder per class (MSTAR/OpenSARShip; "
                         "GDAL rasters or MSTAR Phoenix files)")
    register("sar.simulated", f"{PKG}.datasets:simulated_chips",
             description="SIMULATED speckled target chips, 5 classes (demo data)")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("sar", f"{PKG}.recipes:sar_recipe",
             description="SAR-JEPA: local blocks, ROA-gradient target; demo: simulated chips")
    register("sar.ema", f"{PKG}.recipes:sar_ema_recipe",
             description="I-JEPA on SAR tiles (EMA teacher, multi-block masks)")
