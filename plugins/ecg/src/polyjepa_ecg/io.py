"""Reading ECG records: WFDB files (with annotations), PTB-XL and the scipy demo recording.

Everything here returns plain numpy arrays; :mod:`polyjepa_ecg.datasets` turns them into
windows for the encoder. Every failure is a :class:`polyjepa.DataError` naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                                   "V1", "V2", "V3", "V4", "V5", "V6")
_CANON = {name.upper(): name for name in STANDARD_LEADS}
# modified limb leads of Holter/arrhythmia recordings record the same projection
_ALIASES = {"MLI": "I", "MLII": "II", "MLIII": "III", "D1": "I", "D2": "II", "D3": "III",
            "DI": "I", "DII": "II", "DIII": "III",
            # modified chest leads MCL1/MCL6 are bipolar stand-ins placed like V1/V6
            "MCL1": "V1", "MCL6": "V6"}
_NOT_ECG = ("ABP", "ART", "PAP", "CVP", "RESP", "PLETH", "SPO2", "PPG", "BP", "CO2", "EEG",
            "EMG", "EOG", "TEMP", "PULSE", "HR", "SAO2", "NBP", "ICP", "UAP", "FHR", "EDR")

# AAMI EC57 beat classes from MIT-BIH beat symbols
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
_AAMI = {"N": "N", "L": "N", "R": "N", "e": "N", "j": "N",
         "A": "S", "a": "S", "J": "S", "S": "S",
         "V": "V", "E": "V", "F": "F", "/": "Q", "f": "Q", "Q": "Q"}
PTBXL_SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")


def canonical_lead(name: str) -> str:
    """Standard spelling of a lead name (``"avr"`` -> ``"aVR"``, ``"MLII"`` -> ``"II"``)."""
    key = name.strip().upper().replace(" ", "").replace("-", "")
    key = _ALIASES.get(key, key)
    return _CANON.get(key, name.strip())


def is_ecg_signal(name: str) -> bool:
    """False for the non-ECG channels multi-signal records carry (blood pressure, ...)."""
    key = name.strip().upper().replace(" ", "")
    return not any(key.startswith(p) for p in _NOT_ECG)


def aami_class(symbol: str) -> str | None:
    """AAMI class (N, S, V, F, Q) of a beat annotation symbol; None for non-beats."""
    return _AAMI.get(symbol)


@dataclass
class Record:
    """One record: ``signal [L, T]`` in mV at ``fs`` with its lead names.

    ``signal`` is None for a record opened lazily (header and annotations only); the
    samples are decoded by :func:`load_signal` when a preprocessed copy is not cached.
    """

    name: str
    signal: np.ndarray | None
    fs: float
    leads: list[str]
    source: str
    ann_samples: np.ndarray | None = None
    ann_symbols: list[str] | None = None
    ann_aux: list[str] | None = None
    ann_fs: float | None = None  # time base of ann_samples (None: fs)
    meta: dict[str, Any] = field(default_factory=dict)


def record_paths(data: str | Path) -> list[Path]:
    """Record paths (without extension) of a ``.hea`` file, a record name or a folder."""
    path = Path(data)
    if path.is_dir():
        heads = sorted(path.rglob("*.hea"))
        # multi-segment records list their segments in the master header: skip segments
        names = {h.with_suffix("") for h in heads}
        segs: set[Path] = set()
        for h in heads:
            segs |= _segment_names(h)
        out = [p for p in sorted(names) if p not in segs]
        if not out:
            raise DataError(f"{path}: no WFDB records (.hea files) in this folder")
        return out
    if path.suffix == ".hea":
        if not path.is_file():
            raise DataError(f"{path}: no such header file")
        return [path.with_suffix("")]
    if path.with_suffix(".hea").is_file() or Path(str(path) + ".hea").is_file():
        return [Path(str(path).removesuffix(".dat"))]
    raise DataError(f"{path}: not a WFDB record (.hea) or a folder of records")


def _segment_names(header: Path) -> set[Path]:
    try:
        lines = [ln for ln in header.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("#")]
    except OSError:
        return set()
    if not lines or "/" not in lines[0].split()[0]:
        return set()
    names = set()
    for ln in lines[1:]:
        seg = ln.split()[0]
        if seg != "~":
            names.add(header.parent / seg)
    names.add(header.parent / (lines[0].split()[0].split("/")[0] + "_layout"))
    return names


@contextmanager
def quiet_wfdb() -> Iterator[None]:
    """Hide the warnings ``wfdb`` raises inside itself (pandas deprecations, which a
    user can do nothing about), not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="wfdb")
        yield


def import_wfdb() -> Any:
    """``wfdb``, imported without its pandas deprecation warnings."""
    with quiet_wfdb():
        import wfdb
    return wfdb


def read_wfdb(path: str | Path, annotator: str | None = "atr",
              channels: str = "ecg", lazy: bool = False) -> Record:
    """Decode a WFDB record (single- or multi-segment) and its annotations, if present.

    ``channels="ecg"`` drops non-ECG signals (ABP, RESP, ...); ``"all"`` keeps them.
    ``lazy=True`` reads only the header (and annotations) of single-segment records.
    Signals stored with several samples per frame (e.g. an ECG at 4x the frame rate of
    the other channels) are read at their own rate, not averaged down to the frame rate;
    ECG leads of different rates are resampled to the highest of them.
    """
    wfdb = import_wfdb()

    base = Path(str(path).removesuffix(".hea"))
    where = f"{base}.hea"
    head = _read_header(base, where)
    if lazy:
        rec = _lazy_record(base, where, channels, head)
        if rec is not None:
            _read_annotations(rec, base, annotator)
            return rec
    spf = list(getattr(head, "samps_per_frame", None) or [])
    multirate = (not getattr(head, "seg_name", None)) and bool(spf) and max(spf) > 1
    try:
        with quiet_wfdb():
            rec = wfdb.rdrecord(str(base), m2s=True, physical=True,
                                smooth_frames=not multirate)
    except FileNotFoundError as exc:
        raise DataError(f"{where}: record file missing: {exc}") from exc
    except Exception as exc:
        raise DataError(f"{where}: cannot read the WFDB record (corrupt or truncated?): "
                        f"{type(exc).__name__}: {exc}") from exc
    frame_fs = float(rec.fs or 0)
    if not frame_fs > 0:
        raise DataError(f"{where}: invalid sampling frequency {rec.fs!r}")
    if multirate:
        arrays = list(rec.e_p_signal or [])
        if not arrays or min(a.size for a in arrays) == 0:
            raise DataError(f"{where}: the record holds no samples")
        names = [str(n) for n in (rec.sig_name or [f"ch{i}" for i in range(len(arrays))])]
    else:
        sig = rec.p_signal
        if sig is None or sig.size == 0 or sig.ndim != 2:
            raise DataError(f"{where}: the record holds no samples")
        names = [str(n) for n in (rec.sig_name or [f"ch{i}" for i in range(sig.shape[1])])]
    keep = [i for i, n in enumerate(names) if channels == "all" or is_ecg_signal(n)]
    if not keep:
        raise DataError(f"{where}: none of the signals {names} is an ECG lead")
    up = 1
    if multirate:
        up = max(spf[i] for i in keep)
        signal = np.stack([_to_rate(arrays[i], spf[i], up, len(arrays[i]) // spf[i] * up)
                           for i in keep]).astype(np.float32)
    else:
        signal = np.ascontiguousarray(sig[:, keep].T, dtype=np.float32)
    out = Record(base.name, signal, frame_fs * up, [names[i] for i in keep], where,
                 meta={"comments": list(rec.comments or []), "channels": channels,
                       "frame_fs": frame_fs})
    _read_annotations(out, base, annotator)
    return out


def _to_rate(x: np.ndarray, have: int, want: int, n: int) -> np.ndarray:
    """A signal at ``have`` samples per frame resampled to ``want`` (length ``n``)."""
    x = np.asarray(x, dtype=np.float64)
    if have != want:
        from scipy import signal as sps

        ratio = Fraction(want, have)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator)
    if len(x) < n:
        x = np.concatenate([x, np.full(n - len(x), x[-1] if len(x) else 0.0)])
    return x[:n]


def _read_header(base: Path, where: str) -> Any:
    wfdb = import_wfdb()
    try:
        with quiet_wfdb():
            return wfdb.rdheader(str(base))
    except FileNotFoundError as exc:
        raise DataError(f"{where}: header file missing: {exc}") from exc
    except Exception as exc:
        raise DataError(f"{where}: cannot read the WFDB header: {type(exc).__name__}: "
                        f"{exc}") from exc


def _lazy_record(base: Path, where: str, channels: str, head: Any) -> Record | None:
    """A record with header information only; None where that needs the samples."""
    names = getattr(head, "sig_name", None)
    if not names or getattr(head, "seg_name", None) or not head.fs or not head.sig_len:
        return None
    keep = [i for i, n in enumerate(names) if channels == "all" or is_ecg_signal(str(n))]
    if not keep:
        raise DataError(f"{where}: none of the signals {list(names)} is an ECG lead")
    spf = list(getattr(head, "samps_per_frame", None) or [1] * len(names))
    up = max(spf[i] or 1 for i in keep)
    return Record(base.name, None, float(head.fs) * up, [str(names[i]) for i in keep], where,
                  meta={"comments": list(head.comments or []), "channels": channels,
                        "frame_fs": float(head.fs)})


def load_signal(rec: Record) -> np.ndarray:
    """The record's samples ``[L, T]``, decoding a lazily opened record."""
    if rec.signal is None:
        full = read_wfdb(rec.source, annotator=None, channels=rec.meta.get("channels", "ecg"))
        if full.leads != rec.leads:
            raise DataError(f"{rec.source}: the signals {full.leads} differ from the "
                            f"header's {rec.leads}")
        rec.signal = full.signal
    return rec.signal


def _read_annotations(out: Record, base: Path, annotator: str | None) -> None:
    wfdb = import_wfdb()
    if annotator and Path(f"{base}.{annotator}").is_file():
        try:
            with quiet_wfdb():
                ann = wfdb.rdann(str(base), annotator)
        except Exception as exc:
            raise DataError(f"{base}.{annotator}: cannot read the annotation file "
                            f"(corrupt or truncated?): {type(exc).__name__}: {exc}") from exc
        out.ann_samples = np.asarray(ann.sample, dtype=np.int64)
        # annotation times count samples at the annotation file's own rate when it
        # states one, else at the record's frame rate
        ann_fs = getattr(ann, "fs", None)
        out.ann_fs = float(ann_fs) if ann_fs else float(out.meta.get("frame_fs", out.fs))
        out.ann_symbols = [str(s) for s in ann.symbol]
        aux = ann.aux_note or [""] * len(out.ann_symbols)
        out.ann_aux = [str(a).strip("\x00 ").strip() for a in aux]


def rhythm_segments(rec: Record) -> tuple[np.ndarray, list[str]]:
    """Rhythm changes of a record: start samples and names (``(AFIB`` -> ``AFIB``).

    Rhythm annotations are ``+`` annotations whose auxiliary note starts with ``(``;
    each rhythm lasts until the next one.
    """
    starts, names = [], []
    if rec.ann_samples is not None and rec.ann_symbols and rec.ann_aux:
        for samp, sym, aux in zip(rec.ann_samples, rec.ann_symbols, rec.ann_aux):
            if sym == "+" and aux.startswith("("):
                name = aux[1:].strip()
                if name and (not names or names[-1] != name):
                    starts.append(int(samp))
                    names.append(name)
    return np.asarray(starts, dtype=np.int64), names


def check_finite(rec: Record) -> None:
    """NaN/inf samples (gaps) are an error naming the file and the lead."""
    bad = ~np.isfinite(load_signal(rec))
    if bad.any():
        lead = int(np.nonzero(bad.any(axis=1))[0][0])
        raise DataError(f"{rec.source}: {int(bad.sum())} NaN or infinite samples "
                        f"(first in lead {rec.leads[lead]!r}); pass allow_gaps=True to mask "
                        f"the affected windows' leads instead")


def preprocess(signal: np.ndarray, fs: float, target_fs: float | None,
               highpass: float | None = 0.5) -> np.ndarray:
    """Baseline-wander removal (zero-phase high-pass) and polyphase resampling."""
    from scipy import signal as sps

    x = np.asarray(signal, dtype=np.float64)
    finite = np.isfinite(x)
    x = np.where(finite, x, 0.0)
    if highpass and x.shape[1] > 3 * 13:
        sos = sps.butter(2, highpass, btype="highpass", fs=fs, output="sos")
        pad = min(x.shape[1] - 1, int(3 * fs))
        x = sps.sosfiltfilt(sos, x, axis=1, padlen=pad)
    if target_fs and abs(target_fs - fs) > 1e-6:
        ratio = Fraction(float(target_fs) / float(fs)).limit_denominator(1000)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=1)
        if not finite.all():
            # a gap stays a gap: resample the mask too and drop any touched sample
            m = sps.resample_poly((~finite).astype(np.float64), ratio.numerator,
                                  ratio.denominator, axis=1)
            x[np.abs(m) > 1e-3] = np.nan
    elif not finite.all():
        x[~finite] = np.nan
    return x.astype(np.float32)


def cached(key_parts: tuple[Any, ...], cache_dir: str | Path | None, compute: Any) -> np.ndarray:
    """``compute()`` once, stored as ``.npy`` in ``cache_dir`` and memory-mapped after."""
    if not cache_dir:
        return compute()
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(repr(key_parts).encode()).hexdigest()[:24]
    path = folder / f"{digest}.npy"
    if path.is_file():
        try:
            return np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            path.unlink(missing_ok=True)
    arr = compute()
    tmp = folder / f"{digest}.{os.getpid()}.tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def file_key(source: str) -> tuple[Any, ...]:
    """Identity of a record's files for the cache: path, sizes and modification times."""
    base = Path(source).with_suffix("")
    parts: list[Any] = [str(base.resolve())]
    for f in sorted(base.parent.glob(base.name + ".*")):
        st = f.stat()
        parts += [f.name, st.st_size, st.st_mtime_ns]
    return tuple(parts)


# --------------------------------------------------------------------------- PTB-XL


def parse_scp_codes(text: str, where: str) -> dict[str, float]:
    try:
        codes = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"{where}: unreadable scp_codes {text!r}") from exc
    if not isinstance(codes, dict):
        raise DataError(f"{where}: scp_codes {text!r} is not a dictionary")
    return {str(k): float(v) for k, v in codes.items()}


def read_ptbxl_table(root: Path) -> tuple[Any, Any]:
    """``ptbxl_database.csv`` (indexed by ecg_id) and ``scp_statements.csv`` (if present)."""
    import pandas as pd

    db = root / "ptbxl_database.csv"
    try:
        table = pd.read_csv(db, index_col="ecg_id")
    except Exception as exc:
        raise DataError(f"{db}: cannot read the PTB-XL table: {exc}") from exc
    need = {"scp_codes", "filename_lr", "filename_hr"}
    missing = need - set(table.columns)
    if missing:
        raise DataError(f"{db}: missing column(s) {sorted(missing)}")
    if len(table) == 0:
        raise DataError(f"{db}: the table has no rows")
    statements = None
    sp = root / "scp_statements.csv"
    if sp.is_file():
        try:
            statements = pd.read_csv(sp, index_col=0)
        except Exception as exc:
            raise DataError(f"{sp}: cannot read the SCP statements table: {exc}") from exc
    return table, statements


def ptbxl_label_names(table: Any, statements: Any, labels: str) -> tuple[list[str], dict[str, str]]:
    """Label vocabulary and code -> label map for ``superclass``, ``diagnostic`` or ``all``."""
    codes = sorted({c for s in table["scp_codes"] for c in parse_scp_codes(s, "ptbxl")})
    if labels == "all":
        return codes, {c: c for c in codes}
    if statements is None:
        raise DataError("scp_statements.csv is needed for labels='superclass'/'diagnostic'")
    diag = statements[statements.get("diagnostic", 0) == 1]
    if labels == "diagnostic":
        names = [c for c in codes if c in diag.index]
        return names, {c: c for c in names}
    if labels == "superclass":
        mapping = {str(c): str(diag.loc[c, "diagnostic_class"]) for c in diag.index
                   if isinstance(diag.loc[c, "diagnostic_class"], str)}
        present = {mapping[c] for c in codes if c in mapping}
        names = [s for s in PTBXL_SUPERCLASSES if s in present]
        names += sorted(present - set(names))
        return names, mapping
    raise DataError(f"unknown PTB-XL labels {labels!r}: use superclass, diagnostic or all")


# --------------------------------------------------------------------------- demo


DEMO_FILE = "ecg.dat"
DEMO_WHEEL_MEMBER = "scipy/misc/ecg.dat"


def demo_cache_dir() -> Path:
    """Where ``python -m polyjepa_ecg fetch-demo`` puts ``ecg.dat`` by default.

    ``$POLYJEPA_CACHE/ecg``, else ``$XDG_CACHE_HOME/polyjepa/ecg``, else
    ``~/.cache/polyjepa/ecg``.
    """
    root = os.environ.get("POLYJEPA_CACHE")
    if root:
        return Path(root) / "ecg"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "polyjepa" / "ecg"


def demo_record_file() -> Path:
    """The 5-minute MIT-BIH record 208 excerpt that scipy 1.11-1.14 ships (``ecg.dat``).

    Looked up, without importing anything from scipy, at ``$POLYJEPA_ECG_DEMO``, in the
    installed scipy (``scipy/misc/ecg.dat``), in :func:`demo_cache_dir` (filled by
    ``python -m polyjepa_ecg fetch-demo``) and in the cache ``scipy.datasets`` fills.
    """
    import importlib.util

    tried: list[str] = []
    env = os.environ.get("POLYJEPA_ECG_DEMO")
    if env:
        tried.append(env)
        if Path(env).is_file():
            return Path(env)
    spec = importlib.util.find_spec("scipy")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "misc" / DEMO_FILE
            tried.append(str(p))
            if p.is_file():
                return p
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    for p in (demo_cache_dir() / DEMO_FILE, xdg / "scipy-data" / DEMO_FILE):
        tried.append(str(p))
        if p.is_file():
            return p
    raise DataError(
        "the ECG demo recording (MIT-BIH 208, scipy's ecg.dat) was not found; looked at "
        + ", ".join(tried) + ". Run `python -m polyjepa_ecg fetch-demo` once while online "
        "(it takes the file out of the scipy 1.14 wheel on the package index, without "
        "installing that scipy), or install 'scipy>=1.11,<1.15', or point "
        "POLYJEPA_ECG_DEMO at a copy of ecg.dat. Or pass your own records with --data.")


def load_demo_array(path: str | Path, where: str | None = None) -> np.ndarray:
    """The raw ADC samples of an ``ecg.dat`` file (an ``.npz`` holding ``ecg``)."""
    where = where or str(path)
    try:
        raw = np.load(path, allow_pickle=False)
        arr = raw["ecg"] if hasattr(raw, "files") else raw
        arr = np.asarray(arr)
    except Exception as exc:
        raise DataError(f"{where}: cannot read the demo recording: {exc}") from exc
    if arr.ndim != 1 or arr.size < 3600:
        raise DataError(f"{where}: expected a 1-D recording, got shape {arr.shape}")
    if not np.isfinite(arr.astype(np.float64)).all():
        raise DataError(f"{where}: the demo recording holds NaN or infinite values")
    return arr


def read_demo() -> Record:
    """scipy's ``ecg.dat``: MLII of MIT-BIH 208 at 360 Hz, in mV (no labels)."""
    path = demo_record_file()
    arr = load_demo_array(path)
    mv = (arr.astype(np.float32) - 1024.0) / 200.0  # MIT-BIH ADC zero 1024, gain 200/mV
    return Record("mitdb208", mv[None], 360.0, ["MLII"], str(path))
