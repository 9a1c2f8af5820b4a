"""Hook implementations of polyjepa-lidar; cheap to import (factories are lazy strings)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_lidar"


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("lidar.pillar", f"{PKG}.encoders:PillarEncoder",
             description="BEV pillar tokens + ViT over occupied pillars (AD-L-JEPA style)")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("lidar.bev_blocks", f"{PKG}.maskers:BEVBlockMasker",
             description="BEV blocks centred on occupied pillars; empty space never a target")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("lidar.pillar_probe", f"{PKG}.evaluators:PillarProbe",
             description="per-pillar semantic linear probe (accuracy, mIoU)")
    register("lidar.scene_probe", f"{PKG}.evaluators:SceneProbe",
             description="scene-level probes: scene class, class composition")


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("lidar.points", f"{PKG}.datasets:LidarDataset",
             description="KITTI .bin, PCD, PLY, LAS/LAZ, .npy/.npz scans as BEV pillar grids "
                         "(None: simulated scenes)")
    register("lidar.simulated", f"{PKG}.datasets:simulated_dataset",
             description="ray-cast SIMULATED street scenes with per-point classes")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("lidar", f"{PKG}.recipes:lidar_recipe",
             description="AD-L-JEPA on BEV pillars; demo: ray-cast simulated scenes")
