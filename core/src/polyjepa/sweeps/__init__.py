"""Label-free hyper-parameter search: short runs of a recipe, ranked by RankMe.

RankMe (the effective rank of the embeddings) tracks downstream accuracy across a JEPA's
hyper-parameters, so a sweep can pick a configuration without labels. Every trial is a
normal run folder; trials whose embeddings collapse are stopped early; where the data has
labels, each trial also gets a linear probe, and the sweep reports how well RankMe's
choice agrees with the label-based one.

The grid is a TOML/YAML file (or a dict)::

    method = "grid"                 # every combination; or "random"
    trials = 8                      # random search: how many draws
    seed = 0
    metric = "rankme_centered"      # or "rankme" (the paper's, on raw embeddings)
    [params]
    "train.lr" = [3e-4, 1e-3, 3e-3]
    "masker.num_targets" = [2, 4]
    "target.momentum" = {low = 0.99, high = 0.999}          # random search only
    "train.weight_decay" = {low = 0.01, high = 0.2, log = true}
    [set]                           # fixed overrides for every trial
    "train.steps" = 300

Trials run in worker processes (``workers``), or as Ray Tune trials on a Ray cluster when
``ray_address`` is given and ``ray[tune]`` is installed; both call :func:`run_trial`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json, read_json
from ..config import apply_overrides, data_for_json
from ..errors import ConfigError
from .grid import Grid, load_grid, trial_overrides, validate_keys
from .runners import default_workers, run_local, run_ray
from .summary import SweepResult, summarize, sweep_table
from .trial import FINAL, TRIAL_FILE, TrialCollapsed, run_trial

__all__ = ["Grid", "SweepResult", "TrialCollapsed", "load_grid", "run_trial", "summarize",
           "sweep", "sweep_table", "trial_overrides", "validate_keys"]

SWEEP_FILE = "sweep.json"


def sweep(recipe: str | None, data: Any = None, grid: str | Path | dict[str, Any] = "",
          out: str | Path | None = None, config: str | Path | dict[str, Any] | None = None,
          overrides: dict[str, Any] | list[str] | None = None, workers: int | None = None,
          ray_address: str | None = None, probe: bool = True, progress: bool = True,
          **train: Any) -> SweepResult:
    """Search ``grid`` for the recipe's best hyper-parameters by RankMe, without labels.

    Every trial is a run folder ``<out>/trial-NNN``; a sweep started again with the same
    grid and ``out`` skips finished trials and resumes unfinished ones. ``workers``
    trials run at once in worker processes (default: half the CPU cores; ``0``: in this
    process), or on a Ray cluster with ``ray_address`` (``"auto"``, ``"ray://host:10001"``
    or ``"local"``). With labels, a linear probe of every trial measures how well
    RankMe's choice agrees with the labels' (Spearman correlation, accuracy gap).
    Writes ``results.csv``, ``rankme_vs_probe.png`` and ``best.yaml`` (the chosen
    config, ready for ``polyjepa pretrain --config``).
    """
    from ..api import resolve_config
    from ..plugins import plugin_modules

    spec = load_grid(grid)
    trials = trial_overrides(spec)
    fixed = dict(spec.fixed)
    if isinstance(overrides, dict):
        fixed.update(overrides)
    extra_cli = list(overrides) if isinstance(overrides, list) else []
    base = resolve_config(recipe, data, config, extra_cli or None, **train)
    base = apply_overrides(base, fixed) if fixed else base
    validate_keys(base, {k: [t[k] for t in trials] for k in spec.params})
    configs = [apply_overrides(base, t) for t in trials]

    out = Path(out) if out else Path("sweeps") / (base.get("recipe") or "sweep")
    identity = {"recipe": base.get("recipe"), "data": data_for_json(base.get("data")),
                "grid": {"method": spec.method, "params": spec.params, "set": spec.fixed,
                         "trials": spec.trials, "seed": spec.seed, "metric": spec.metric},
                "trial_overrides": trials}
    sweep_file = out / SWEEP_FILE
    if sweep_file.is_file():
        old = read_json(sweep_file, "sweep file")
        if json.dumps(old.get("identity"), sort_keys=True, default=str) != \
                json.dumps(identity, sort_keys=True, default=str):
            raise ConfigError(f"{out} holds a different sweep (other recipe, data or grid); "
                              "its trials are kept. Choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sweep_file, {"identity": identity, "base_config": base,
                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")})

    n_workers = default_workers(len(trials)) if workers is None else int(workers)
    threads = max(1, (os.cpu_count() or 1) // max(1, n_workers))
    records: dict[int, dict[str, Any]] = {}
    tasks = []
    for k, (cfg, ov) in enumerate(zip(configs, trials)):
        run_dir = out / f"trial-{k:03d}"
        done_file = run_dir / TRIAL_FILE
        if done_file.is_file():
            rec = read_json(done_file, "trial file")
            if rec.get("status") in FINAL:
                records[k] = rec
                continue
        tasks.append({"trial": k, "config": cfg, "out": str(run_dir), "overrides": ov,
                      "probe": probe, "early_stop": spec.early_stop,
                      "threads": threads if n_workers > 0 else None,
                      "plugins": plugin_modules()})
    if records and progress:
        print(f"{out}: {len(records)} of {len(trials)} trials already finished; skipping them")

    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=f"sweep {out.name}", unit="trial")

    def on_done(rec: dict[str, Any]) -> None:
        records[int(rec["trial"])] = rec
        if bar is not None:
            score = (rec.get("metrics") or {}).get(spec.metric)
            bar.set_postfix({"last": f"#{rec['trial']} {rec['status']}"
                             + (f" {spec.metric}={score:.1f}" if score is not None else "")})
            bar.update(1)

    try:
        if tasks and ray_address:
            run_ray(tasks, n_workers or 1, ray_address, on_done)
        elif tasks:
            run_local(tasks, n_workers, on_done)
    finally:
        if bar is not None:
            bar.close()
    return summarize(out, [records[k] for k in sorted(records)], spec.metric, configs)
