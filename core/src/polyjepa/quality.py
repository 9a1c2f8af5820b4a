"""Quality comparisons: does pre-training pay?

A figure counts only when it compares. For one labelled task this runs, per seed, the
recipe's pre-training at two lengths (``N`` and ``factor * N`` steps), and scores with the
*same probe on the same split*: the pretrained encoder, the same encoder at its random
initialisation (the very weights pre-training started from), and the field's classic
baselines. It also probes every kept checkpoint, to count how often the checkpoint with
the highest centred RankMe (the label-free choice) was the best one.

Plugins describe their tasks as :class:`QualityTask` objects (see each plugin's
``benchmarks/quality.py``); ``benchmarks/quality.py`` runs them and writes
``quality.md`` and ``quality.png`` with :func:`write_quality_report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .evaluators import EvalContext
from .settings import TrainSettings

PRETRAINED = "pretrained"
RANDOM = "random init"

Score = Callable[[EvalContext], float]


@dataclass
class QualityTask:
    """One labelled task of a domain, scored on frozen embeddings.

    ``probe(ctx)`` returns the task's score for ``ctx.embeddings`` (with ``ctx.labels``,
    ``ctx.groups``, ``ctx.dataset`` and ``ctx.seed``, which selects the split). Each
    baseline gets the same context without embeddings and returns its score on the same
    split; :func:`features_baseline` turns a hand-made feature extractor into one that
    uses the task's own probe. ``kind`` is ``"real"`` or ``"simulated"``.

    ``finetune(ctx)``, where given, scores the encoder fine-tuned end to end on the same
    split (``ctx.encoder``; see :func:`polyjepa.finetune_predict`); its rows form a task
    line of their own, ``"<name> (fine-tuned)"``, with the same baselines.

    ``main`` marks the task its domain is judged on (its largest real set; where several
    tasks are marked, the first one present wins), which the trend script runs by
    default. ``judged_finetuned`` says the field judges this task's encoders after
    fine-tuning (next-item recommenders), so the trend runs its fine-tuned line always.
    """

    domain: str
    name: str
    recipe: str
    data: Any
    probe: Score
    metric: str
    baselines: dict[str, Score] = field(default_factory=dict)
    kind: str = "real"
    steps: int = 200
    overrides: dict[str, Any] = field(default_factory=dict)
    eval_data: Any = None
    higher_is_better: bool = True
    finetune: Score | None = None
    main: bool = False
    judged_finetuned: bool = False


FINETUNED = " (fine-tuned)"


def _finetuned(base: dict[str, Any]) -> dict[str, Any]:
    """A row's fields for the fine-tuned line of the same task."""
    metric = base["metric"].rsplit(" (", 1)[0]
    return {**base, "dataset": base["dataset"] + FINETUNED, "metric": metric + FINETUNED}


def features_baseline(features: Callable[[EvalContext], np.ndarray], probe: Score) -> Score:
    """A baseline that feeds hand-made features ``features(ctx) [N, F]`` to ``probe``."""

    def score(ctx: EvalContext) -> float:
        feats = np.asarray(features(ctx), dtype=np.float64)
        return probe(EvalContext(feats, ctx.labels, ctx.groups, ctx.encoder, ctx.dataset,
                                 ctx.seed, ctx.extra))

    return score


def _context(encoder: Any, dataset: Any, seed: int, batch_size: int,
             needs_labels: bool = True) -> EvalContext:
    from .api import embed_dataset

    emb, y, g = embed_dataset(encoder, dataset, batch_size)
    if y is None and needs_labels:
        from .errors import DataError

        raise DataError("a quality task needs labelled data; the dataset has no labels "
                        "(a probe that finds its targets elsewhere sets needs_labels = False)")
    return EvalContext(emb, y, g, encoder, dataset, seed)


def run_quality_task(task: QualityTask, root: str | Path, seeds: Sequence[int] = (0, 1, 2),
                     factor: int = 4, checkpoints: int = 4, progress: bool = False,
                     log: Callable[[str], None] = print,
                     runs: Sequence[tuple[int, float]] | None = None,
                     finetune: bool = True) -> list[dict[str, Any]]:
    """Run one task; returns one row per (method, steps, seed) score.

    Rows hold ``domain, dataset, kind, metric, method, steps, seed, value`` and, for the
    encoders, ``rankme`` (centred). Rows with ``method == "rankme choice"`` also hold
    ``best`` (the best probe among the run's ``checkpoints`` kept checkpoints) and
    ``hit`` (whether the RankMe choice scored as well as the best). A probe that finds
    its targets in the dataset itself (next-item ranking) sets ``needs_labels = False``.

    The pre-training runs are ``N`` and ``factor * N`` steps on all the data, or the
    ``(steps, data_fraction)`` pairs of ``runs`` (``train.data_fraction``: how the gain
    scales with data; the probe always sees the whole labelled set). Pretrained rows
    hold ``fraction``. ``finetune=False`` leaves out the task's fine-tuned line (frozen
    probes only).
    """
    from .api import load_encoder, pretrain
    from .build import build_dataset
    from .checkpoint import checkpoint_step, kept_checkpoints
    from .evaluators import centred_rank

    root = Path(root)
    labelled = bool(getattr(task.probe, "needs_labels", True))
    base = {"domain": task.domain, "dataset": task.name, "kind": task.kind,
            "metric": task.metric, "higher_is_better": bool(task.higher_is_better),
            "env": environment()}
    rows: list[dict[str, Any]] = []
    finetuned = task.finetune if finetune else None
    if runs is None:
        runs = [(n, 1.0) for n in sorted({int(task.steps), int(task.steps) * int(factor)})]
    for seed in seeds:
        dataset = ctx = None
        for steps, fraction in runs:
            every = max(1, steps // max(1, checkpoints))
            part = f"-f{fraction:g}" if fraction < 1 else ""
            run = pretrain(task.recipe, data=task.data,
                           out=root / f"{task.name}-{steps}{part}-s{seed}", progress=progress,
                           overrides={**task.overrides, "train.seed": int(seed),
                                      "train.select": "rankme",
                                      "train.checkpoint_every": every,
                                      "train.keep_checkpoints": checkpoints + 1,
                                      "train.data_fraction": float(fraction)},
                           steps=steps)
            cfg = run.config
            bs = TrainSettings.from_config(cfg).eval_batch_size
            if dataset is None:
                dataset = build_dataset(cfg, task.eval_data, state=cfg.get("dataset_state"))
                random_enc = random_init_encoder(cfg, int(seed))
                ctx = _context(random_enc, dataset, int(seed), bs, labelled)
                rows.append({**base, "method": RANDOM, "steps": 0, "seed": seed,
                             "value": float(task.probe(ctx)),
                             "rankme": centred_rank(ctx.embeddings)})
                plain = EvalContext(None, ctx.labels, ctx.groups, None, dataset, int(seed))
                for name, baseline in task.baselines.items():
                    rows.append({**base, "method": name, "steps": 0, "seed": seed,
                                 "value": float(baseline(plain))})
                    if finetuned is not None:
                        rows.append({**rows[-1], **_finetuned(base)})
                if finetuned is not None:
                    rows.append({**_finetuned(base), "method": RANDOM, "steps": 0, "seed": seed,
                                 "value": float(finetuned(ctx)),
                                 "rankme": centred_rank(ctx.embeddings)})
            # the encoder at the end of training
            final = _last_checkpoint(run.path)
            last = _context(load_encoder(run, checkpoint=final), dataset, int(seed), bs,
                            labelled)
            last_step = checkpoint_step(final)
            scores = {last_step: float(task.probe(last))}
            rows.append({**base, "method": PRETRAINED, "steps": steps, "seed": seed,
                         "fraction": float(fraction), "value": scores[last_step],
                         "rankme": centred_rank(last.embeddings)})
            if finetuned is not None:
                rows.append({**rows[-1], **_finetuned(base), "value": float(finetuned(last))})
            # every kept checkpoint: is the label-free choice the best probe?
            for ck in kept_checkpoints(run.path):
                if ck.name == final.name:
                    continue
                c = _context(load_encoder(run, checkpoint=ck), dataset, int(seed), bs,
                             labelled)
                scores[checkpoint_step(ck)] = float(task.probe(c))
            chosen = (run.info.get("selected") or {}).get("step")
            if len(scores) > 1 and chosen in scores:  # a choice needs two candidates
                best = max(scores.values()) if task.higher_is_better else min(scores.values())
                rows.append({**base, "method": "rankme choice", "steps": steps, "seed": seed,
                             "fraction": float(fraction), "value": scores[chosen],
                             "best": best, "chosen_step": chosen,
                             "hit": bool(math.isclose(scores[chosen], best, abs_tol=1e-12))})
            share = f" on {fraction:.0%} of the data" if fraction < 1 else ""
            log(f"[{task.domain}/{task.name}] seed {seed}, {steps} steps{share}: pretrained "
                f"{scores[last_step]:.3f}")
    return rows


# the packages whose versions move a run's figures (initial weights, kernels, decoders)
ENV_PACKAGES = ("polyjepa", "torch", "timm", "numpy", "scipy", "scikit-learn", "av")


def environment() -> str:
    """The Python and :data:`ENV_PACKAGES` versions installed here, as one line; runs
    repeat exactly within one environment, not always across two."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {platform.python_version()}"]
    for name in ENV_PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def environment_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A report's footer: the environments its rows were scored in, with their domains."""
    envs: dict[str, set[str]] = {}
    for r in rows:
        envs.setdefault(r.get("env", "not recorded"), set()).add(r["domain"])
    if len(envs) == 1:
        return [f"Environment: {next(iter(envs))}.", ""]
    return ["Environments (figures can differ between them):", "",
            *[f"- {', '.join(sorted(doms))}: {env}" for env, doms in sorted(envs.items())], ""]


def random_init_encoder(config: dict[str, Any], seed: int) -> Any:
    """The encoder a run of ``config`` under ``seed`` started from, before any step.

    The trainer seeds torch and builds the encoder first, so the same seed and config
    give the same initial weights here.
    """
    import torch

    from .build import build_encoder

    torch.manual_seed(int(seed))
    return build_encoder(config).eval()


def _last_checkpoint(run_dir: Path) -> Path:
    from .checkpoint import latest_checkpoint
    from .errors import CheckpointError

    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise CheckpointError(f"{run_dir} kept no checkpoint")
    return ck


# -- summaries ----------------------------------------------------------------------------

def _stats(values: list[float]) -> tuple[float, float, int]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def summarise(rows: list[dict[str, Any]], shares: bool = False) -> list[dict[str, Any]]:
    """One line per (domain, dataset, steps): mean and sd of every method over seeds.

    ``wins`` counts the seeds on which the pretrained encoder scored above the same
    encoder at random init (paired by seed) and ``gap`` is the paired difference's
    mean and sd; ``beats_random`` is true when it won on every seed. Runs on a share of
    the data (``fraction < 1``) are left out, or with ``shares`` given lines of their
    own (the trend report's).
    """
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if not shares and r.get("fraction", 1.0) < 1:
            continue
        keyed.setdefault((r["domain"], r["dataset"]), []).append(r)
    out = []
    for (domain, dataset), rs in keyed.items():
        fixed = [r for r in rs if r["steps"] == 0]
        rand = {r["seed"]: r["value"] for r in fixed if r["method"] == RANDOM}
        baselines = sorted({r["method"] for r in fixed if r["method"] != RANDOM})
        for steps, fraction in sorted({(r["steps"], r.get("fraction", 1.0)) for r in rs
                                       if r["method"] == PRETRAINED}):
            run = [r for r in rs if r["steps"] == steps and r.get("fraction", 1.0) == fraction]
            pre = {r["seed"]: r["value"] for r in run if r["method"] == PRETRAINED}
            choice = [r for r in run if r["method"] == "rankme choice"]
            paired = [pre[s] - rand[s] for s in pre if s in rand]
            out.append({
                "domain": domain, "dataset": dataset, "steps": steps, "fraction": fraction,
                "kind": rs[0]["kind"], "metric": rs[0]["metric"],
                "higher_is_better": rs[0].get("higher_is_better", True),
                PRETRAINED: _stats(list(pre.values())),
                RANDOM: _stats(list(rand.values())) if rand else None,
                "baselines": {b: _stats([r["value"] for r in fixed if r["method"] == b])
                              for b in baselines},
                "rankme_pre": _stats([r["rankme"] for r in run if r["method"] == PRETRAINED]),
                "rankme_choice": (sum(r["hit"] for r in choice), len(choice)),
                "rankme_pick": _stats([r["value"] for r in choice]) if choice else None,
                "gap": _stats(paired) if paired else None,
                "wins": (sum(d > 0 for d in paired), len(paired)),
                "beats_random": bool(paired) and all(d > 0 for d in paired),
            })
    return out


def _fmt(stat: tuple[float, float, int] | None, signed: bool = False) -> str:
    """``mean ± sd`` (the mean alone for one value), with its sign for a difference."""
    if stat is None:
        return "-"
    mean, sd, n = stat
    m = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return f"{m} ± {sd:.3f}" if n > 1 else m


def quality_markdown(rows: list[dict[str, Any]], title: str = "polyjepa quality") -> str:
    """The comparison tables, one per domain, as Markdown."""
    lines = [f"# {title}", "",
             "Frozen encoders, the same probe on the same split for every column; mean ± sd "
             "over seeds. *wins*: seeds on which the pretrained encoder beat the same "
             "encoder at random init. *RankMe's checkpoint*: the probe of the kept "
             "checkpoint with the highest centred RankMe (no labels; what "
             "`train.select = \"rankme\"` exports). *RankMe choice*: runs in which that "
             "checkpoint was also the best probe. Lines marked *(fine-tuned)*: the encoders "
             "fine-tuned end to end with a linear head on the probe's training split, one "
             "fixed budget for the pretrained and the random start.", ""]
    summary = summarise(rows)
    for domain in sorted({s["domain"] for s in summary}):
        part = [s for s in summary if s["domain"] == domain]
        names = sorted({b for s in part for b in s["baselines"]})
        lines += [f"## {domain}", "",
                  "| data | kind | metric | steps | pretrained | random init | "
                  + " | ".join(names) + (" | " if names else "")
                  + "wins | RankMe (centred) | RankMe's checkpoint | RankMe choice |",
                  "|" + " --- |" * (10 + len(names))]
        for s in part:
            base = [_fmt(s["baselines"].get(b)) for b in names]
            hit, n = s["rankme_choice"]
            lines.append("| " + " | ".join([
                s["dataset"], s["kind"], s["metric"], str(s["steps"]), _fmt(s[PRETRAINED]),
                _fmt(s[RANDOM]), *base, f"{s['wins'][0]}/{s['wins'][1]}",
                f"{s['rankme_pre'][0]:.1f}", _fmt(s.get("rankme_pick")),
                f"{hit}/{n}" if n else "-"]) + " |")
        lines.append("")
    lines += environment_lines(rows)
    return "\n".join(lines)


def quality_figure(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Bars of every method per task and length (mean, sd as error bars) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    tasks = sorted({(s["domain"], s["dataset"]) for s in summary})
    cols = min(3, max(1, len(tasks)))
    nrows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows), squeeze=False)
    for ax, (domain, dataset) in zip(axes.flat, tasks):
        part = [s for s in summary if (s["domain"], s["dataset"]) == (domain, dataset)]
        labels, means, sds, colors = [], [], [], []
        for s in part:
            labels.append(f"pre {s['steps']}")
            means.append(s[PRETRAINED][0])
            sds.append(s[PRETRAINED][1])
            colors.append("tab:blue")
        first = part[0]
        if first[RANDOM]:
            labels.append("random")
            means.append(first[RANDOM][0])
            sds.append(first[RANDOM][1])
            colors.append("tab:gray")
        for b, st in first["baselines"].items():
            labels.append(b)
            means.append(st[0])
            sds.append(st[1])
            colors.append("tab:orange")
        ax.bar(range(len(means)), means, yerr=sds, color=colors, capsize=3)
        ax.set_xticks(range(len(means)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{domain}: {dataset} ({first['kind']})", fontsize=9)
        ax.set_ylabel(first["metric"], fontsize=8)
        lo = min(m - s for m, s in zip(means, sds))
        hi = max(m + s for m, s in zip(means, sds))
        pad = 0.1 * max(hi - lo, 1e-3)
        ax.set_ylim(lo - pad, hi + pad)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.suptitle("pretrained (blue) vs random init (grey) vs classic baselines (orange)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_quality_report(rows: list[dict[str, Any]], out: str | Path,
                         title: str = "polyjepa quality") -> tuple[Path, Path]:
    """Write ``quality.md`` and ``quality.png`` for ``rows`` into the folder ``out``."""
    from .checkpoint import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "quality.md"
    atomic_write_text(md, quality_markdown(rows, title) + "\n")
    return md, quality_figure(rows, out / "quality.png")


def save_rows(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Store rows as JSON (atomically), to combine runs of single domains later."""
    from .checkpoint import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rows, indent=1) + "\n")


def load_rows(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows stored by :func:`save_rows`, concatenated."""
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows += json.loads(Path(p).read_text(encoding="utf-8"))
    return rows


# -- the built-in demo comparison ---------------------------------------------------------

def linear_probe_accuracy(ctx: EvalContext) -> float:
    """Accuracy of the core's linear probe (standardised logistic regression, a held-out
    quarter chosen by ``ctx.seed``)."""
    from .evaluators import LinearProbe

    return LinearProbe()(ctx)["linear_probe_acc"]


def _pixels(ctx: EvalContext) -> np.ndarray:
    return np.asarray(ctx.dataset.x).reshape(len(ctx.dataset), -1)


def digits_demo_task() -> QualityTask:
    """``polyjepa demo``'s comparison for the built-in ``array`` recipe: scikit-learn's
    digits, the pretrained ViT vs the same ViT at random init vs the raw pixels, each
    with the linear probe."""
    from .components import get_recipe

    demo = get_recipe("array")["demo"]
    over = demo.get("overrides") or {}
    return QualityTask(
        domain="array", name="digits", recipe="array", data=demo.get("data"),
        metric="accuracy (linear probe)", probe=linear_probe_accuracy,
        steps=int(over.get("train", {}).get("steps", 300)),
        baselines={"pixels": features_baseline(_pixels, linear_probe_accuracy)},
        overrides={k: v for k, v in over.items() if k != "train"} | {
            f"train.{k}": v for k, v in over.get("train", {}).items() if k != "steps"})
