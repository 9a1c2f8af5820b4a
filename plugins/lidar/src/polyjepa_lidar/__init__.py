"""polyjepa-lidar: LiDAR point clouds as bird's-eye-view pillar tokens for JEPA pre-training.

Readers for KITTI, PCD/PLY, LAS/LAZ and NumPy scans, BEV pillarisation, a pillar-token
encoder, occupied-pillar block masking, per-pillar and scene probes, and a ray-casting
simulator for the demo. Implements (adapted) AD-L-JEPA (Zhu et al., 2025,
https://arxiv.org/abs/2501.04969) on the I-JEPA scheme (Assran et al., CVPR 2023,
https://arxiv.org/abs/2301.08243). Heavy modules (torch, open3d, laspy) load on first
use; importing this package is cheap.
"""

__version__ = "0.1.0"
