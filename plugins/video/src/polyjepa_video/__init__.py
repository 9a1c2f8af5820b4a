"""polyjepa-video: V-JEPA pre-training on video clips (a polyjepa plugin).

PyAV readers with a memory-mapped decoded-clip cache, a tubelet ViT, V-JEPA's short- and
long-range 3-D masks and tube masking, clip probes and frame retrieval, simulated
direction-of-motion videos, and quality tasks (the arrow of time on real clips, the
direction of motion on simulated ones). Implements V-JEPA (Bardes et al., 2024,
https://arxiv.org/abs/2404.08471) on the I-JEPA scheme (Assran et al., CVPR 2023,
https://arxiv.org/abs/2301.08243).
"""

__version__ = "0.1.0"
