"""polyjepa-lidar: LiDAR point clouds as bird's-eye-view pillar tokens for JEPA pre-training.

Heavy modules (torch, open3d, laspy) load on first use; importing this package is cheap.
"""

__version__ = "0.1.0"
