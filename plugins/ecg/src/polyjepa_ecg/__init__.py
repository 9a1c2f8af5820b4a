"""polyjepa-ecg: ECG-JEPA for polyjepa.

WFDB and PTB-XL readers, a transformer over per-lead time patches, time-block and
whole-lead maskers, beat, rhythm and multi-label metrics, and a PVC quality task.
Implements (adapted) ECG-JEPA (Kim, 2024, https://arxiv.org/abs/2410.08559) on the
I-JEPA scheme (Assran et al., CVPR 2023, https://arxiv.org/abs/2301.08243).
"""

__version__ = "0.1.0"
