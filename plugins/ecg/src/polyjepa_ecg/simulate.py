"""Simulated ECG with annotated beats: labelled data no package ships.

The heart is a dipole whose P, Q, R, S and T waves are Gaussians in 3-D (in the spirit of
McSharry et al., "A dynamical model for generating synthetic electrocardiogram signals",
IEEE TBME 2003, https://doi.org/10.1109/TBME.2003.808805, which sums Gaussian waves in
one lead); each lead is the dipole projected on its axis, at a heart rate that drifts and
jitters, with baseline wander and noise. Beats are annotated at their R peak: ``N``;
``A`` (premature, inverted P: AAMI class S); ``V`` (premature, no P wave, wide QRS of
another axis, discordant T, compensatory pause).

:func:`simulated_patient` draws one patient's heart: electrical axis, amplitude, rate,
QRS width, the focus (and so the shape) of their PVCs, how often they occur, noise. PVC
detection on patients the probe never saw is then a test of what an encoder learnt about
beats in general rather than one patient's shapes, as on real records; it is easier than
real data (two beat shapes per patient, no artefacts). :func:`write_pvc_records` writes
such patients as WFDB records with ``wfdb`` itself: ``polyjepa demo``'s labelled ECG task
and ``polyjepa ecg simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from polyjepa import generated_folder

# lead axes in (left, inferior, anterior) coordinates: limb leads in the frontal plane,
# chest leads in the horizontal plane, Frank leads along the axes
_FRONTAL = {"I": 0, "II": 60, "III": 120, "AVR": -150, "AVL": -30, "AVF": 90}
_CHEST = {"V1": 115, "V2": 95, "V3": 75, "V4": 60, "V5": 35, "V6": 0}
_FRANK = {"VX": (1.0, 0.0, 0.0), "VY": (0.0, 1.0, 0.0), "VZ": (0.0, 0.0, 1.0)}
_MODIFIED = {"MLII": "II", "MCL1": "V1"}

Wave = tuple[float, float, tuple[float, float, float]]  # (offset s, width s, dipole mV)

# waves of one beat; T's offset grows with the RR interval
_P: Wave = (-0.16, 0.022, (0.06, 0.12, 0.02))
_QRS: list[Wave] = [(-0.03, 0.009, (-0.05, -0.04, 0.12)), (0.0, 0.011, (0.75, 0.85, -0.4)),
                    (0.032, 0.011, (-0.25, -0.15, -0.05))]
_T: Wave = (0.28, 0.055, (0.18, 0.22, 0.05))
BEATS: dict[str, list[Wave]] = {
    "N": [_P, *_QRS, _T],
    "A": [(-0.12, 0.02, (-0.04, -0.1, 0.03)), *_QRS, _T],
    "V": [(0.0, 0.035, (-0.3, 1.3, 0.9)), (0.07, 0.03, (0.3, -0.2, -0.3)),
          (0.34, 0.07, (0.2, -0.45, -0.4))],
}
COUPLING = {"N": 1.0, "A": 0.7, "V": 0.62}  # RR before the beat, as a share of the rate


def lead_axis(name: str) -> np.ndarray:
    """Unit vector of a lead (standard, Frank, MLII/MCL1) in dipole coordinates."""
    key = _MODIFIED.get(name.strip().upper(), name.strip().upper())
    if key in _FRANK:
        return np.array(_FRANK[key])
    if key in _FRONTAL:
        a = np.radians(_FRONTAL[key])
        size = np.sqrt(3) / 2 if key.startswith("AV") else 1.0  # aVF = (II + III) / 2
        return size * np.array([np.cos(a), np.sin(a), 0.0])
    if key in _CHEST:
        a = np.radians(_CHEST[key])
        return np.array([np.cos(a), 0.0, np.sin(a)])
    raise ValueError(f"unknown lead {name!r}: standard 12 leads, VX/VY/VZ, MLII or MCL1")


def _rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    """A rotation about a random axis by up to ``max_degrees`` (Rodrigues' formula)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.radians(rng.uniform(-max_degrees, max_degrees))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@dataclass
class Patient:
    """One simulated heart: its beat shapes, rate, ectopy and recording noise."""

    beats: dict[str, list[Wave]] = field(default_factory=lambda: dict(BEATS))
    coupling: dict[str, float] = field(default_factory=lambda: dict(COUPLING))
    hr: float = 72.0
    p_ectopic: tuple[float, float] = (0.1, 0.1)  # chance of an A, of a V after an N
    noise: float = 0.01  # mV, white
    wander: float = 0.08  # mV, baseline wander at 0.2 Hz


def simulated_patient(seed: int) -> Patient:
    """A patient drawn at random: axis rotated up to 30 degrees, amplitude 0.7-1.3x, QRS
    width 0.85-1.2x, rate 58-95/min, a PVC focus of its own (the ectopic beat's waves
    rotated up to 70 degrees and 0.8-1.3x wide), 3-18 % PVCs, 1-5 % atrial premature
    beats, noise 0.01-0.04 mV and wander 0.03-0.2 mV."""
    rng = np.random.default_rng([seed, 1729])
    turn, gain = _rotation(rng, 30.0), rng.uniform(0.7, 1.3)
    qrs_w = rng.uniform(0.85, 1.2)

    def shaped(waves: list[Wave], rot: np.ndarray, width: float) -> list[Wave]:
        return [(o, w * (width if abs(o) < 0.1 else 1.0),
                 tuple(float(v) for v in gain * rot @ np.asarray(d))) for o, w, d in waves]

    focus, v_w = _rotation(rng, 70.0), rng.uniform(0.8, 1.3)
    beats = {"N": shaped(BEATS["N"], turn, qrs_w), "A": shaped(BEATS["A"], turn, qrs_w),
             "V": shaped(BEATS["V"], turn @ focus, v_w)}
    return Patient(beats=beats,
                   coupling={"N": 1.0, "A": rng.uniform(0.65, 0.8), "V": rng.uniform(0.55, 0.75)},
                   hr=rng.uniform(58.0, 95.0),
                   p_ectopic=(rng.uniform(0.01, 0.05), rng.uniform(0.03, 0.18)),
                   noise=rng.uniform(0.01, 0.04), wander=rng.uniform(0.03, 0.2))


def synth_ecg(seconds: float, fs: float, leads: list[str], seed: int = 0,
              p_ectopic: tuple[float, float] | None = None, hr: float | None = None,
              afib: tuple[tuple[float, float], ...] = (), patient: Patient | None = None
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``signal [T, leads]`` in mV, R-peak samples and beat symbols of a synthetic ECG.

    ``patient`` gives the beat shapes, rate and noise (default: :class:`Patient`'s);
    ``p_ectopic`` (chance of an A and of a V beat after a normal one) and ``hr`` override
    the patient's; ``afib``: (start, end) seconds of atrial fibrillation (no P waves,
    irregular RR, fibrillatory waves). ``seed`` draws the rhythm and the noise.
    """
    pat = patient or Patient()
    hr = pat.hr if hr is None else float(hr)
    p_ectopic = pat.p_ectopic if p_ectopic is None else p_ectopic
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    dipole = np.zeros((n, 3))
    gain = rng.uniform(0.8, 1.2)
    tilt = rng.normal(0.0, 0.05, 3)

    def in_af(s: float) -> bool:
        return any(a <= s < b for a, b in afib)

    samples, symbols = [], []
    beat, sym = 0.3 + 0.2 * rng.random(), "N"
    while beat < seconds - 0.25:
        rr = 60.0 / (hr + 6.0 * np.sin(2 * np.pi * beat / 20.0)) * (1 + 0.02 * rng.normal())
        for offset, width, vec in pat.beats[sym]:
            if in_af(beat) and offset < -0.1:
                continue  # no P wave in atrial fibrillation
            if offset > 0.2:
                offset *= np.sqrt(rr)  # the QT interval follows the rate
            c = beat + offset
            lo, hi = max(0, int((c - 5 * width) * fs)), min(n, int((c + 5 * width) * fs) + 1)
            wave = np.exp(-0.5 * ((t[lo:hi] - c) / width) ** 2)
            dipole[lo:hi] += wave[:, None] * (gain * np.asarray(vec) + tilt)
        samples.append(int(round(beat * fs)))
        symbols.append(sym)
        if in_af(beat):
            nxt, gap = "N", rr * rng.uniform(0.6, 1.3)
        else:
            u = rng.random()
            nxt = "N" if sym != "N" else "A" if u < p_ectopic[0] else \
                "V" if u < sum(p_ectopic) else "N"
            gap = rr * pat.coupling[nxt] * (1.4 if sym == "V" else 1.1 if sym == "A" else 1.0)
        beat, sym = beat + gap, nxt
    for a, b in afib:
        part = (t >= a) & (t < b)
        phase = np.cumsum(2 * np.pi * (6.0 + 0.5 * rng.normal(size=part.sum())) / fs)
        dipole[part] += 0.05 * np.sin(phase)[:, None] * np.array([0.3, 0.3, 0.8])
    axes = np.stack([lead_axis(name) for name in leads])
    signal = dipole @ axes.T
    signal += pat.wander * np.sin(2 * np.pi * 0.2 * t[:, None] + rng.uniform(0, 6, len(leads)))
    signal += rng.normal(0.0, pat.noise, signal.shape)
    return signal, np.asarray(samples, dtype=np.int64), symbols


def write_pvc_records(folder: str | Path, patients: int = 6, seconds: float = 300.0,
                      fs: float = 360.0, seed: int = 0) -> Path:
    """``patients`` simulated patients as WFDB records ``p01``, ``p02``, ... in ``folder``.

    Leads MLII and V1 (MIT-BIH's usual pair), 212 format, beat annotations in ``.atr``.
    The same arguments write the same files; a folder written with the same arguments is
    kept as it is, one holding other files is refused (:func:`polyjepa.generated_folder`).
    """
    from .io import import_wfdb, quiet_wfdb

    def write(tmp: Path) -> None:
        wfdb = import_wfdb()
        leads = ["MLII", "V1"]
        for i in range(int(patients)):
            name = f"p{i + 1:02d}"
            pat = simulated_patient(int(seed) * 1000 + i)
            sig, samp, sym = synth_ecg(seconds, fs, leads, seed=int(seed) * 1000 + i,
                                       patient=pat)
            with quiet_wfdb():
                wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=leads, p_signal=sig,
                            fmt=["212", "212"], write_dir=str(tmp),
                            comments=[f"simulated patient {i + 1} (polyjepa_ecg.simulate)"])
                wfdb.wrann(name, "atr", samp, symbol=sym, write_dir=str(tmp))

    settings = {"patients": int(patients), "seconds": float(seconds), "fs": float(fs),
                "seed": int(seed), "version": 1}
    return generated_folder(folder, settings, write, r"p\d{2,}\.(hea|dat|atr)")
