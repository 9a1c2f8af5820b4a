"""A sweep's results: trials ranked by RankMe, the agreement with the probes, the
best config, a CSV and a plot."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json, atomic_write_text
from ..config import SECTIONS

# Ranking uses the centred effective rank by default: encoders end in a LayerNorm, which
# gives every embedding a shared offset that the raw effective rank counts as one dominant
# direction (raw RankMe near 1 for runs whose centred rank is 20-40).
METRICS = ("rankme_centered", "rankme")
PROBE_KEYS = ("linear_probe_acc", "linear_probe_macro_auc", "linear_probe_r2")


@dataclass
class SweepResult:
    """What a sweep leaves: its trials, the RankMe choice and the agreement with probes."""

    path: Path
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    metric: str
    spearman_by_metric: dict[str, float | None] = field(default_factory=dict)
    probe_gap: float | None = None
    best_by_probe: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def spearman(self) -> float | None:
        """Spearman correlation of the ranking metric with the probe across trials."""
        return self.spearman_by_metric.get(self.metric)


def _probe(record: dict[str, Any]) -> tuple[str, float] | None:
    for key in PROBE_KEYS:
        value = (record.get("metrics") or {}).get(key)
        if value is not None and math.isfinite(value):
            return key, float(value)
    return None


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if math.isfinite(rho) else None


def _score(rec: dict[str, Any], metric: str) -> float:
    value = (rec.get("metrics") or {}).get(metric)
    if rec.get("status") != "complete" or value is None or not math.isfinite(value):
        return -math.inf
    return float(value)


def summarize(out: Path, records: list[dict[str, Any]], metric: str,
              configs: list[dict[str, Any]]) -> SweepResult:
    """Rank finished trials, compare with probes, write the table, plot and best config."""
    ranked = sorted(records, key=lambda r: -_score(r, metric))
    best = ranked[0] if ranked and _score(ranked[0], metric) > -math.inf else None
    with_probe = [(r, _probe(r)) for r in records if _score(r, metric) > -math.inf]
    with_probe = [(r, p) for r, p in with_probe if p is not None]
    result = SweepResult(out, records, best, metric)
    if with_probe and best is not None:
        for name in METRICS:  # how each RankMe variant agrees with the probes
            pairs = [(_score(r, name), p[1]) for r, p in with_probe]
            pairs = [(a, b) for a, b in pairs if a > -math.inf]
            result.spearman_by_metric[name] = _spearman(*map(list, zip(*pairs))) \
                if pairs else None
        by_probe = max(with_probe, key=lambda rp: rp[1][1])
        result.best_by_probe = by_probe[0]
        chosen = _probe(best)
        if chosen is not None:
            result.probe_gap = by_probe[1][1] - chosen[1]
    result.files["results"] = _write_csv(out / "results.csv", ranked, metric)
    if best is not None:
        result.files["best"] = _write_best(out / "best.yaml", configs[int(best["trial"])], best)
    plot = _plot(out / "rankme_vs_probe.png", records, metric, best)
    if plot is not None:
        result.files["plot"] = plot
    atomic_write_json(out / "summary.json", {
        "metric": metric, "best_trial": None if best is None else best["trial"],
        "best_overrides": None if best is None else best["overrides"],
        "spearman": result.spearman, "spearman_by_metric": result.spearman_by_metric,
        "probe_gap": result.probe_gap,
        "best_trial_by_probe": None if result.best_by_probe is None
        else result.best_by_probe["trial"]})
    return result


def _write_csv(path: Path, ranked: list[dict[str, Any]], metric: str) -> Path:
    keys = sorted({k for r in ranked for k in r.get("overrides", {})})
    metric_keys = sorted({k for r in ranked for k in (r.get("metrics") or {})})
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["rank", "trial", "status", "steps", *keys, *metric_keys, "run"])
    for i, r in enumerate(ranked, 1):
        m = r.get("metrics") or {}
        w.writerow([i if _score(r, metric) > -math.inf else "", r["trial"], r["status"],
                    r.get("steps", ""), *[r["overrides"].get(k, "") for k in keys],
                    *[m.get(k, "") for k in metric_keys], r.get("run", "")])
    atomic_write_text(path, text.getvalue())
    return path


def _write_best(path: Path, config: dict[str, Any], record: dict[str, Any]) -> Path:
    import yaml

    body = {k: v for k, v in config.items() if k in SECTIONS and k != "demo"}
    header = (f"# chosen by RankMe: trial {record['trial']} "
              f"({', '.join(f'{k}={v}' for k, v in record['overrides'].items())})\n"
              "# use with: polyjepa pretrain --config best.yaml --steps N --out runs/NAME\n")
    atomic_write_text(path, header + yaml.safe_dump(json.loads(json.dumps(body, default=str)),
                                                    sort_keys=False))
    return path


def _plot(path: Path, records: list[dict[str, Any]], metric: str,
          best: dict[str, Any] | None) -> Path | None:
    pts = [(r, _score(r, metric), _probe(r)) for r in records]
    pts = [(r, s, p) for r, s, p in pts if s > -math.inf]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labelled = [(r, s, p) for r, s, p in pts if p is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    if labelled:
        xs = [s for _, s, _ in labelled]
        ys = [p[1] for _, _, p in labelled]
        ax.scatter(xs, ys, c="tab:blue")
        for (r, s, p) in labelled:
            ax.annotate(str(r["trial"]), (s, p[1]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        if best is not None and _probe(best) is not None:
            ax.scatter([_score(best, metric)], [_probe(best)[1]], s=160, facecolors="none",
                       edgecolors="tab:red", label="chosen by RankMe")
            ax.legend(loc="lower right")
        ax.set_xlabel(metric)
        ax.set_ylabel(labelled[0][2][0].replace("_", " "))
        ax.set_title("RankMe vs linear probe, one point per trial")
    else:
        ax.bar([str(r["trial"]) for r, _, _ in pts], [s for _, s, _ in pts])
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        ax.set_title("RankMe per trial (no labels)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sweep_table(result: SweepResult) -> str:
    """The sweep's results as a terminal table, best first."""
    ranked = sorted(result.trials, key=lambda r: -_score(r, result.metric))
    keys = sorted({k for r in ranked for k in r.get("overrides", {})})
    probe_key = next((k for k in PROBE_KEYS
                      if any(k in (r.get("metrics") or {}) for r in ranked)), None)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    head = ["trial", "status", *keys, result.metric] + ([probe_key] if probe_key else [])
    rows = []
    for r in ranked:
        m = r.get("metrics") or {}
        row = [str(r["trial"]), r["status"], *[fmt(r["overrides"].get(k, "")) for k in keys],
               fmt(m[result.metric]) if result.metric in m else "-"]
        if probe_key:
            row.append(fmt(m[probe_key]) if probe_key in m else "-")
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    if result.best is not None:
        lines.append(f"\nchosen by {result.metric}: trial {result.best['trial']} "
                     f"{result.best['overrides']}")
    else:
        lines.append("\nno trial finished: nothing to choose")
    if result.spearman is not None:
        lines.append(f"Spearman({result.metric}, {probe_key}) across trials: "
                     f"{result.spearman:+.3f}")
        for name, rho in result.spearman_by_metric.items():
            if name != result.metric and rho is not None:
                lines.append(f"  (with {name} instead: {rho:+.3f})")
    if result.probe_gap is not None and result.best_by_probe is not None:
        lines.append(f"{probe_key} of the RankMe choice is {result.probe_gap:.4f} below the "
                     f"best trial's (trial {result.best_by_probe['trial']})")
    return "\n".join(lines)
