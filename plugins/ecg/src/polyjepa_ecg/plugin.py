"""polyjepa hook implementations for ECG (cheap to import: factories are lazy strings)."""

from __future__ import annotations

from polyjepa import Register, hookimpl

PKG = "polyjepa_ecg"


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("ecg.vit", f"{PKG}.encoders:ECGEncoder",
             description="ECG-JEPA transformer on a (lead, time-patch) grid with lead embeddings")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("ecg.time_blocks", f"{PKG}.maskers:TimeBlockMasker",
             description="contiguous time blocks masked across all leads")
    register("ecg.leads", f"{PKG}.maskers:LeadMasker",
             description="whole leads masked (among the record's valid leads)")


@hookimpl
def polyjepa_register_evaluators(register: Register) -> None:
    register("ecg.multilabel_auc", f"{PKG}.evaluators:MultiLabelAUC",
             description="macro ROC-AUC of per-label probes (PTB-XL folds or patient split)")
    register("ecg.beats", f"{PKG}.evaluators:BeatClassification",
             description="beat classification macro-F1/AUC, record-internal time or patient split")
    register("ecg.rhythm", f"{PKG}.evaluators:RhythmClassification",
             description="rhythm classification of windows labelled by rhythm annotations")


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("ecg.wfdb", f"{PKG}.datasets:wfdb_dataset",
             description="WFDB records/folders: fixed or beat-centred windows; "
                         "demo: MIT-BIH 208 from scipy")
    register("ecg.ptbxl", f"{PKG}.datasets:ptbxl_dataset",
             description="PTB-XL layout: 10-s 12-lead ECGs, multi-label SCP targets, folds")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("ecg", f"{PKG}.recipes:ecg_recipe",
             description="ECG-JEPA on WFDB records; demo: MIT-BIH 208 (real, from scipy)")
    register("ecg.ptbxl", f"{PKG}.recipes:ptbxl_recipe",
             description="ECG-JEPA on PTB-XL with superclass macro ROC-AUC")
    register("ecg.beats", f"{PKG}.recipes:beats_recipe",
             description="beat-centred windows from annotated records, beat classification")
    register("ecg.rhythm", f"{PKG}.recipes:rhythm_recipe",
             description="windows labelled by rhythm annotations, rhythm classification")


@hookimpl
def polyjepa_register_commands(register: Register) -> None:
    register("ecg", f"{PKG}.__main__:main",
             description="polyjepa ecg download mitdb|ptb-xl DIR; polyjepa ecg fetch-demo; "
                         "polyjepa ecg simulate DIR")
