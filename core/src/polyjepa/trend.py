"""How the gain of pre-training moves with training length and data size.

Where pre-training does not yet beat the same encoder at random initialisation, the
question a user (and this project) has next is whether it would with more steps or more
data. :func:`polyjepa.run_quality_task` with ``runs=[(steps, data_fraction), ...]``
gives the scores; this module reads them as *gaps*: the pretrained probe minus the
random-init probe of the same seed (paired, so the split's own noise cancels), per
training length on all the data and per share of the data at one length.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .quality import PRETRAINED, RANDOM, _fmt, environment_lines, summarise


def trend_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quality summary's lines (:func:`polyjepa.quality.summarise`) with a line per
    share of the data too, each with ``baseline``: the best classic baseline's name and
    mean score (``None`` without baselines)."""
    out = summarise(rows, shares=True)
    for line in out:
        better = max if line["higher_is_better"] else min
        means = {name: stat[0] for name, stat in line["baselines"].items()}
        line["baseline"] = better(means.items(), key=lambda kv: kv[1]) if means else None
    return out


def trend_markdown(rows: list[dict[str, Any]], title: str = "polyjepa: gain with steps and data") -> str:
    """One table per task: each run's pretrained score and its paired gap to random init."""
    lines = [f"# {title}", "",
             "Frozen encoders (fine-tuned where the task's name says so), one probe and "
             "split per seed. *gap*: pretrained minus the same "
             "encoder at random init on the same seed (mean ± sd over seeds); *wins*: seeds "
             "with a positive gap; *data*: the share of the pre-training data drawn from "
             "(`train.data_fraction`; the probe always sees every labelled sample).", ""]
    summary = trend_summary(rows)
    for domain, dataset in sorted({(s["domain"], s["dataset"]) for s in summary}):
        part = [s for s in summary if (s["domain"], s["dataset"]) == (domain, dataset)]
        first = part[0]
        base = first["baseline"]
        lines += [f"## {domain}: {dataset} ({first['kind']}, {first['metric']})", "",
                  f"random init {_fmt(first[RANDOM])}"
                  + (f"; best classic baseline ({base[0]}) {base[1]:.3f}" if base else ""), "",
                  "| steps | data | pretrained | gap to random init | wins |",
                  "| --- | --- | --- | --- | --- |"]
        for s in sorted(part, key=lambda s: (s["fraction"], s["steps"])):
            lines.append(f"| {s['steps']} | {s['fraction']:.0%} | {_fmt(s[PRETRAINED])} | "
                         f"{_fmt(s['gap'], signed=True)} | {s['wins'][0]}/{s['wins'][1]} |")
        lines.append("")
    lines += environment_lines(rows)
    return "\n".join(lines)


def trend_figure(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Per task, the paired gap to random init against steps (all the data, solid) and
    against the data share (at the longest run on a share, dashed), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = trend_summary(rows)
    tasks = sorted({(s["domain"], s["dataset"]) for s in summary})
    fig, (by_steps, by_data) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, task in enumerate(tasks):
        part = [s for s in summary if (s["domain"], s["dataset"]) == task and s["gap"]]
        color = plt.cm.tab10(i % 10)
        full = sorted((s for s in part if s["fraction"] >= 1), key=lambda s: s["steps"])
        if full:
            by_steps.errorbar([s["steps"] for s in full], [s["gap"][0] for s in full],
                              yerr=[s["gap"][1] for s in full], color=color, marker="o",
                              capsize=3, label=f"{task[0]}: {task[1]}")
        shares = [s for s in part if s["fraction"] < 1]
        if shares:
            at = max(s["steps"] for s in shares)
            line = sorted((s for s in part if s["steps"] == at), key=lambda s: s["fraction"])
            by_data.errorbar([s["fraction"] for s in line], [s["gap"][0] for s in line],
                             yerr=[s["gap"][1] for s in line], color=color, marker="o",
                             linestyle="--", capsize=3)
    for ax, xlabel in ((by_steps, "pre-training steps (all the data)"),
                       (by_data, "share of the pre-training data (at the shares' run length)")):
        ax.axhline(0.0, color="gray", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("pretrained - random init (task metric)")
    by_data.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0%}" if v <= 1 else ""))
    handles, labels = by_steps.get_legend_handles_labels()
    if handles:  # one legend for both panels, below them
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(handles)), fontsize=8)
    fig.suptitle("does pre-training gain more with longer runs and more data? (mean ± sd over seeds)")
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(handles) / 3), 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_trend_report(rows: list[dict[str, Any]], out: str | Path) -> tuple[Path, Path]:
    """Write ``trend.md`` and ``trend.png`` for ``rows`` into the folder ``out``."""
    from .checkpoint import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "trend.md"
    atomic_write_text(md, trend_markdown(rows) + "\n")
    return md, trend_figure(rows, out / "trend.png")


def steps_ladder(n: int, factors: str | list[int]) -> list[int]:
    """``n`` times each factor (``"1,4,16"`` or a list), ascending and distinct."""
    parts = factors.split(",") if isinstance(factors, str) else factors
    return sorted({max(1, int(n) * int(f)) for f in parts})


def trend_runs(n: int, factors: str | list[int] = "1,4,16",
               fractions: str | list[float] = "0.25,0.5",
               fraction_factor: int = 4) -> list[tuple[int, float]]:
    """The ``(steps, data_fraction)`` runs of a trend: every length of the ladder on all
    the data, and ``fraction_factor * n`` steps on each share."""
    parts = ([p for p in fractions.split(",") if p.strip()] if isinstance(fractions, str)
             else fractions)
    runs = {(s, 1.0) for s in steps_ladder(n, factors)}
    at = max(1, int(n) * int(fraction_factor))
    runs |= {(at, float(f)) for f in parts if 0 < float(f) < 1}
    return sorted(runs, key=lambda r: (r[1] < 1, r[1], r[0]))  # all the data first
