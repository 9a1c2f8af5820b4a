"""ECG datasets: fixed-length or beat-centred windows of WFDB records, and PTB-XL.

Samples are dicts with ``x [L, T]`` (per-lead normalised mV), ``valid [L * n_patches]``
(False for the tokens of a lead the record lacks or that has a gap in the window:
nothing is invented), ``group`` (record or patient index) and, where labels exist, ``y``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from polyjepa import ConfigError, DataError, warn

from .io import (
    AAMI_CLASSES,
    STANDARD_LEADS,
    Record,
    aami_class,
    cached,
    canonical_lead,
    check_finite,
    file_key,
    load_signal,
    parse_scp_codes,
    preprocess,
    ptbxl_label_names,
    read_demo,
    read_ptbxl_table,
    read_wfdb,
    record_paths,
    rhythm_segments,
)

# settings a run saves with its dataset (``state``) and the defaults without one
WFDB_DEFAULTS: dict[str, Any] = {"fs": 250.0, "window": 10.0, "patch_size": 25,
                                 "leads": "standard", "mode": "windows", "highpass": 0.5}
PTBXL_DEFAULTS: dict[str, Any] = {"fs": 100.0, "window": 10.0, "patch_size": 25,
                                  "leads": "standard", "labels": "superclass",
                                  "highpass": 0.5}


def settle(given: dict[str, Any], state: dict[str, Any] | None,
           defaults: dict[str, Any]) -> dict[str, Any]:
    """Each setting from the call where given (not None), else from a run's saved
    ``state``, else the default: an explicit argument wins over a saved state, so data
    can be re-read the run's way with only what should differ spelled out."""
    saved = state or {}
    return {k: given[k] if given.get(k) is not None else saved.get(k, d)
            for k, d in defaults.items()}


def _number(key: str, value: Any, whole: bool = False) -> float:
    """A positive number (whole where ``whole``), or a one-line ConfigError."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, bool) and value > 0 and (not whole or float(value).is_integer())
    if not ok:
        raise ConfigError(f"{key} must be a positive {'whole ' if whole else ''}number, "
                          f"got {value!r}")
    return float(value)


def _highpass(value: Any) -> float | None:
    """The high-pass corner in Hz; 0, False or a saved None mean no filter."""
    if value is None or value is False or value == 0:
        return None
    return _number("highpass", value)


def _check_saved(state: dict[str, Any] | None, patch_size: int, names: list[str]) -> None:
    """Settings that must match the saved ones: the encoder trained with a run is built
    for its patch length and its lead order (one learned embedding per lead)."""
    saved = state or {}
    for key, have in (("patch_size", patch_size), ("leads", names)):
        want = saved.get(key)
        if want is not None and have != (list(want) if key == "leads" else int(want)):
            raise ConfigError(f"{key}={have!r} differs from the saved state's {key}={want!r}, "
                              f"which the run's encoder is built for: leave {key} unset")


class ECGWindows(Dataset):
    """Windows over preprocessed records, sliced lazily (records may be memory-mapped)."""

    def __init__(self, signals: list[np.ndarray], lead_ok: list[np.ndarray],
                 items: np.ndarray, length: int, patch_size: int, leads: list[str],
                 labels: np.ndarray | None, groups: np.ndarray, source: str,
                 normalize: bool = True, state: dict[str, Any] | None = None):
        if len(items) == 0:
            raise DataError(f"{source}: no ECG windows of {length} samples (records too short, or "
                            f"no annotated beats?)")
        self.signals, self.lead_ok = signals, lead_ok
        self.items = items  # [N, 2]: record index, start sample
        self.length, self.patch_size = int(length), int(patch_size)
        self.n_patches = self.length // self.patch_size
        self.leads = list(leads)
        self.labels = labels
        self.groups = np.asarray(groups, dtype=np.int64)
        self.source = source
        self.normalize = normalize
        self.state: dict[str, Any] = dict(state or {})
        self.encoder_hints: dict[str, Any] = {"num_leads": len(self.leads),
                                              "patch_size": self.patch_size}
        self.fs = float(self.state.get("fs", 0.0))
        self.times = self.items[:, 1] / self.fs if self.fs else self.items[:, 1].astype(float)
        self.record_ids = self.items[:, 0].copy()  # for record-internal time splits
        self.folds: np.ndarray | None = None
        # beats left out because their window would cross a record's edge
        self.dropped_beats = 0
        # samples of each record that are real (PTB-XL records shorter than the window
        # are zero-padded; the padding's tokens are invalid)
        self.real_len = [int(sig.shape[1]) for sig in signals]

    def __len__(self) -> int:
        return len(self.items)

    def _real(self, i: int) -> int:
        """How many samples of item ``i``'s window are real (not padding)."""
        r, start = (int(v) for v in self.items[i])
        return max(0, min(self.length, self.real_len[r] - start))

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``x [L, T]`` and lead validity ``[L]`` of item ``i`` (gaps zeroed, invalid)."""
        r, start = (int(v) for v in self.items[i])
        x = np.array(self.signals[r][:, start:start + self.length], dtype=np.float32)
        real = self._real(i)
        x[:, real:] = 0.0
        ok = self.lead_ok[r].copy()
        finite = np.isfinite(x).all(axis=1)
        ok &= finite
        x[~ok] = 0.0
        if self.normalize and ok.any():
            part = x[ok][:, :real]
            mu = part.mean(axis=1, keepdims=True)
            sd = part.std(axis=1, keepdims=True)
            x[np.ix_(ok, np.arange(real))] = (part - mu) / np.maximum(sd, 1e-3)
        return x, ok

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, ok = self.window(i)
        in_time = np.arange(self.n_patches) < self._real(i) // self.patch_size
        item = {"x": torch.from_numpy(x),
                "valid": torch.from_numpy((ok[:, None] & in_time[None]).reshape(-1)),
                "group": torch.tensor(self.groups[i])}
        if self.labels is not None:
            item["y"] = torch.as_tensor(self.labels[i])
        return item


def _resolve_leads(records: list[Record], leads: Any) -> list[str]:
    if leads == "standard":
        return list(STANDARD_LEADS)
    if leads == "record":
        first = [canonical_lead(n) for n in records[0].leads]
        for rec in records[1:]:
            names = [canonical_lead(n) for n in rec.leads]
            if names != first:
                raise DataError(f"{rec.source}: leads {names} differ from {first} of "
                                f"{records[0].source}; use leads='standard' or a list")
        return first
    if isinstance(leads, str):
        leads = [s for s in leads.split(",") if s]
    if not isinstance(leads, (list, tuple)) or not leads:
        raise DataError(f"leads must be 'standard', 'record' or a list of names, got {leads!r}")
    return [canonical_lead(str(n)) for n in leads]


def _select(rec: Record, names: list[str]) -> tuple[list[int | None], np.ndarray]:
    have = {canonical_lead(n): i for i, n in reversed(list(enumerate(rec.leads)))}
    rows = [have.get(n) for n in names]
    ok = np.array([r is not None for r in rows])
    if not ok.any():
        raise DataError(f"{rec.source}: none of the leads {names} is in the record "
                        f"(it has {rec.leads})")
    return rows, ok


def _prepare(rec: Record, names: list[str], fs: float, highpass: float | None,
             cache_dir: str | Path | None, allow_gaps: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lead-ordered, filtered, resampled ``[L, T']`` (zeros for absent leads) + lead mask."""
    rows, ok = _select(rec, names)

    def compute() -> np.ndarray:
        if not allow_gaps:
            check_finite(rec)
        sub = load_signal(rec)[[r for r in rows if r is not None]]
        proc = preprocess(sub, rec.fs, fs, highpass)
        out = np.zeros((len(names), proc.shape[1]), dtype=np.float32)
        out[ok] = proc
        return out

    key = ("ecg-v2", file_key(rec.source) if Path(rec.source).suffix == ".hea" else rec.source,
           tuple(names), float(fs), highpass, allow_gaps)
    sig = cached(key, cache_dir, compute) if Path(rec.source).suffix == ".hea" else compute()
    return sig, ok


def _records(data: Any, annotator: str | None,
             cache_dir: str | None = None) -> tuple[list[Record], str]:
    if data is None:
        rec = read_demo()
        return [rec], rec.source
    if isinstance(data, Record):
        return [data], data.source
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, Record) for r in data):
        return list(data), data[0].source
    if isinstance(data, (str, Path)):
        paths = record_paths(data)
        return [read_wfdb(p, annotator, lazy=bool(cache_dir)) for p in paths], str(data)
    raise DataError(f"cannot read ECG data from {type(data).__name__}: pass a WFDB record "
                    f"(.hea), a folder of records or a polyjepa_ecg.io.Record")


def wfdb_dataset(data: Any = None, fs: float | None = None, window: float | None = None,
                 stride: float | None = None, patch_size: int | None = None,
                 leads: Any = None, mode: str | None = None, annotator: str | None = "atr",
                 beat_classes: list[str] | None = None, labels: str | None = None,
                 label_names: list[str] | None = None, highpass: float | None = None,
                 normalize: bool = True, allow_gaps: bool = False,
                 cache_dir: str | None = None,
                 state: dict[str, Any] | None = None) -> ECGWindows:
    """WFDB records (a ``.hea`` file or a folder) as encoder windows; ``None``: the demo.

    ``mode="windows"`` (default): fixed windows of ``window`` seconds (default 10) every
    ``stride`` seconds (default: no overlap), unlabelled, or with ``labels="rhythm"``
    labelled by the rhythm annotation (``+`` with ``(AFIB``, ``(N``, ...) in force for
    most of the window (index into ``label_names``, by default the sorted rhythms found;
    windows mostly before the first rhythm annotation are skipped). ``mode="beats"``: one
    window of ``window`` seconds centred on each annotated beat, labelled with its AAMI
    class index (N=0, S=1, V=2, F=3, Q=4); ``beat_classes`` keeps only the named classes.
    Beats too close to a record's edge for a whole window are dropped, with a warning;
    ``dropped_beats`` counts them. Signals are high-passed at ``highpass`` Hz (default
    0.5; 0 for none), resampled to ``fs`` (default 250) and z-scored per lead and window,
    in patches of ``patch_size`` samples (default 25). ``leads``: ``"standard"``
    (default: the 12 standard leads in order, absent ones marked invalid), ``"record"``
    (the record's own ECG leads) or a list of names.

    ``state`` (a run's saved dataset settings) fills every setting not given here, so
    new data is read the run's way; an argument given here wins over it, except that the
    patch size and the lead list must stay those the run's encoder was built for
    (``leads="record"`` then means the run's leads).
    """
    saved = dict(state or {})
    mode_given = mode is not None
    cfg = settle({"fs": fs, "window": window, "patch_size": patch_size, "mode": mode,
                  "highpass": highpass}, saved, WFDB_DEFAULTS)
    mode = cfg["mode"]
    if mode not in ("windows", "beats"):
        raise DataError(f"unknown mode {mode!r}: use 'windows' or 'beats'")
    same_mode = saved.get("mode", "windows") == mode
    if beat_classes is None and same_mode:
        beat_classes = saved.get("beat_classes")
    if labels is None and same_mode:
        labels = saved.get("labels")
    if label_names is None and labels and labels == saved.get("labels"):
        label_names = saved.get("label_names")
    if labels not in (None, "rhythm") or (labels and mode != "windows"):
        from_state = " (the saved state's; pass mode='windows')" \
            if labels == "rhythm" and not mode_given else ""
        raise DataError(f"labels={labels!r} with mode={mode!r}{from_state}: windows take "
                        f"labels=None or 'rhythm'; beat windows are labelled by their beat's "
                        f"AAMI class")
    fs = _number("fs", cfg["fs"])
    window = _number("window", cfg["window"])
    patch_size = int(_number("patch_size", cfg["patch_size"], whole=True))
    highpass = _highpass(cfg["highpass"])
    length = round(window * fs) // patch_size * patch_size
    if length < patch_size:
        raise DataError(f"window {window} s at {fs} Hz is shorter than one patch of {patch_size}")
    records, source = _records(data, annotator, cache_dir)
    if leads is None or (leads == "record" and saved.get("leads")):
        leads = saved.get("leads", WFDB_DEFAULTS["leads"])
    names = _resolve_leads(records, leads)
    _check_saved(saved, patch_size, names)
    if len(records) > 1 and leads != "record":
        usable = [r for r in records if any(canonical_lead(n) in names for n in r.leads)]
        kept = {id(r) for r in usable}
        for r in records:
            if id(r) not in kept:
                warn(f"{r.source}: skipped, none of its leads {r.leads} is among {names}")
        if not usable:
            raise DataError(f"{source}: no record has any of the leads {names}")
        records = usable
    signals, oks, items, labels_out, groups = [], [], [], [], []
    keep = None
    if beat_classes is not None:
        keep = {str(c) for c in beat_classes}
        if not keep <= set(AAMI_CLASSES):
            raise DataError(f"beat_classes {sorted(keep)} must be among {AAMI_CLASSES}")
    rhythms = [rhythm_segments(rec) for rec in records] if labels == "rhythm" else []
    if labels == "rhythm":
        if not any(len(n) for _, n in rhythms):
            raise DataError(f"{source}: labels='rhythm' needs rhythm annotations ('+' "
                            f"with '(AFIB', '(N', ... in the {annotator} files); none found")
        label_names = list(label_names or sorted({n for _, ns in rhythms for n in ns}))
    patient = _patient_groups(records)
    dropped = 0
    for r, rec in enumerate(records):
        sig, ok = _prepare(rec, names, fs, highpass, cache_dir, allow_gaps)
        signals.append(sig)
        oks.append(ok)
        n = sig.shape[1]
        if mode == "windows":
            step = round((stride or window) * fs)
            if step < 1:
                raise DataError(f"stride {stride} s is shorter than one sample")
            starts = np.arange(0, n - length + 1, step, dtype=np.int64)
            if labels == "rhythm":
                cls = _majority_rhythm(rhythms[r], starts, length,
                                       fs / (rec.ann_fs or rec.fs),
                                       label_names)
                starts, cls = starts[cls >= 0], cls[cls >= 0]
                labels_out += cls.tolist()
            items += [(r, s) for s in starts]
            groups += [patient[r]] * len(starts)
            continue
        if rec.ann_samples is None:
            raise DataError(f"{rec.source}: mode='beats' needs an annotation file "
                            f"({Path(rec.source).with_suffix('')}.{annotator})")
        scale = fs / (rec.ann_fs or rec.fs)
        for samp, sym in zip(rec.ann_samples, rec.ann_symbols or []):
            cls = aami_class(sym)
            if cls is None or (keep is not None and cls not in keep):
                continue
            start = round(samp * scale) - length // 2
            if start < 0 or start + length > n:
                dropped += 1
                continue
            items.append((r, start))
            labels_out.append(AAMI_CLASSES.index(cls))
            groups.append(patient[r])
    state_out = {"fs": fs, "window": float(window), "patch_size": patch_size, "leads": names,
                 "highpass": highpass, "mode": mode, "beat_classes": beat_classes,
                 "labels": labels, "label_names": label_names,
                 "records": [rec.name for rec in records]}
    labelled = mode == "beats" or labels == "rhythm"
    if dropped:
        warn(f"{source}: {dropped} annotated beat(s) dropped: within "
             f"{length / 2 / fs:.2f} s of a record's start or end, where the "
             f"{window:g} s beat window does not fit")
    ds = ECGWindows(signals, oks, np.asarray(items, dtype=np.int64).reshape(-1, 2), length,
                    patch_size, names, np.asarray(labels_out, dtype=np.int64) if labelled
                    else None, np.asarray(groups), source, normalize, state_out)
    ds.dropped_beats = dropped
    return ds


def _patient_groups(records: list[Record]) -> list[int]:
    """Group index per record: records in one ``patientNNN`` folder (the PTB and other
    PhysioNet layouts) share their patient's group; any other record is its own group."""
    keys: dict[str, int] = {}
    out = []
    for r, rec in enumerate(records):
        parent = Path(rec.source).parent
        key = str(parent) if re.fullmatch(r"patient[_-]?\d+", parent.name, re.I) \
            else f"record:{r}"
        out.append(keys.setdefault(key, len(keys)))
    return out


def _majority_rhythm(segments: tuple[np.ndarray, list[str]], starts: np.ndarray,
                     length: int, scale: float, names: list[str]) -> np.ndarray:
    """Index (into ``names``) of the rhythm covering most of each window; -1 if unknown."""
    seg_start, seg_names = segments
    out = np.full(len(starts), -1, dtype=np.int64)
    if not len(seg_names):
        return out
    bounds = np.append(seg_start * scale, np.inf)
    for i, a in enumerate(starts):
        b = a + length
        cover = np.clip(np.minimum(bounds[1:], b) - np.maximum(bounds[:-1], a), 0, None)
        j = int(cover.argmax())
        # the part before the first annotation has no known rhythm
        if cover[j] > length - cover.sum() and seg_names[j] in names:
            out[i] = names.index(seg_names[j])
    return out


def ptbxl_dataset(data: Any = None, sampling: str = "lr", labels: str | None = None,
                  folds: list[int] | None = None, fs: float | None = None,
                  window: float | None = None, patch_size: int | None = None,
                  leads: Any = None, highpass: float | None = None, normalize: bool = True,
                  cache_dir: str | None = None, limit: int | None = None,
                  state: dict[str, Any] | None = None) -> ECGWindows:
    """The PTB-XL layout: ``ptbxl_database.csv`` + ``records100/`` or ``records500/``.

    One 10-s 12-lead sample per ECG with multi-hot ``y`` over ``labels``
    (``superclass``, the default: NORM, MI, STTC, CD, HYP; ``diagnostic``; ``all`` SCP
    codes), ``group`` = patient id and ``folds`` = the recommended ``strat_fold`` (train
    1-8, validation 9, test 10). ``sampling``: ``"lr"`` (100 Hz files) or ``"hr"`` (500
    Hz). Defaults: ``fs=100``, ``window=10``, ``patch_size=25``, ``leads="standard"``,
    ``highpass=0.5`` (0 for none). A saved ``state`` fills the settings not given here
    (its label vocabulary too, for the same ``labels``); see :func:`wfdb_dataset`.
    """
    if data is None:
        raise DataError("the 'ecg.ptbxl' dataset needs the PTB-XL folder (with "
                        "ptbxl_database.csv); `python -m polyjepa_ecg download ptb-xl DIR`")
    root = Path(data)
    if root.is_file():
        root = root.parent
    saved = dict(state or {})
    cfg = settle({"fs": fs, "window": window, "patch_size": patch_size, "labels": labels,
                  "highpass": highpass}, saved, PTBXL_DEFAULTS)
    labels = cfg["labels"]
    label_names = saved.get("label_names") if labels == saved.get("labels") else None
    fs = _number("fs", cfg["fs"])
    window = _number("window", cfg["window"])
    patch_size = int(_number("patch_size", cfg["patch_size"], whole=True))
    highpass = _highpass(cfg["highpass"])
    if leads is None or (leads == "record" and saved.get("leads")):
        leads = saved.get("leads", PTBXL_DEFAULTS["leads"])
    table, statements = read_ptbxl_table(root)
    if folds is not None and "strat_fold" in table.columns:
        table = table[table["strat_fold"].isin([int(f) for f in folds])]
    if limit:
        table = table.iloc[: int(limit)]
    if len(table) == 0:
        raise DataError(f"{root}: no PTB-XL rows in folds {folds}")
    names_found, mapping = ptbxl_label_names(table, statements, labels)
    label_names = label_names or names_found
    rates = {"lr": "filename_lr", "100": "filename_lr", "hr": "filename_hr",
             "500": "filename_hr"}
    col = rates.get(str(sampling).lower())
    if col is None:
        raise DataError(f"{root}: sampling={sampling!r}: use 'lr' (100 Hz files) or 'hr' "
                        f"(500 Hz files)")
    length = round(window * fs) // patch_size * patch_size
    if length < patch_size:
        raise DataError(f"window {window} s at {fs} Hz is shorter than one patch of {patch_size}")
    records, ys, groups, fold_list = [], [], [], []
    for ecg_id, row in table.iterrows():
        rec = read_wfdb(root / str(row[col]), annotator=None, lazy=bool(cache_dir))
        records.append(rec)
        y = np.zeros(len(label_names), dtype=np.float32)
        for code in parse_scp_codes(str(row["scp_codes"]), f"{root} ecg_id {ecg_id}"):
            lab = mapping.get(code)
            if lab in label_names:
                y[label_names.index(lab)] = 1.0
        ys.append(y)
        groups.append(int(row["patient_id"]) if "patient_id" in row else int(ecg_id))
        fold_list.append(int(row["strat_fold"]) if "strat_fold" in row else 0)
    names = _resolve_leads(records, leads)
    _check_saved(saved, patch_size, names)
    signals, oks, items, real = [], [], [], []
    for r, rec in enumerate(records):
        sig, ok = _prepare(rec, names, fs, highpass, cache_dir, False)
        if sig.shape[1] < length // 2:
            raise DataError(f"{rec.source}: {sig.shape[1] / fs:.2f} s of signal, shorter than "
                            f"half the {window} s window (truncated record?)")
        real.append(int(sig.shape[1]))
        if sig.shape[1] < length:
            pad = np.zeros((sig.shape[0], length - sig.shape[1]), np.float32)
            sig = np.concatenate([sig, pad], axis=1)
        signals.append(sig)
        oks.append(ok)
        items.append((r, 0))
    state_out = {"fs": fs, "window": float(window), "patch_size": patch_size, "leads": names,
                 "highpass": highpass, "labels": labels, "label_names": label_names}
    ds = ECGWindows(signals, oks, np.asarray(items, dtype=np.int64), length, patch_size, names,
                    np.stack(ys), np.asarray(groups), str(root), normalize, state_out)
    ds.folds = np.asarray(fold_list)
    ds.real_len = real
    return ds
