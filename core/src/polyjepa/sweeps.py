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

import csv
import io
import itertools
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_json, atomic_write_text, read_json
from .config import SECTIONS, apply_overrides, data_for_json, read_mapping
from .errors import ConfigError, PolyjepaError
from .settings import TrainSettings
from .validation import check_key, same_type

SWEEP_FILE = "sweep.json"
TRIAL_FILE = "trial.json"
GRID_KEYS = {"method", "trials", "seed", "metric", "params", "set", "early_stop"}
RANGE_KEYS = {"low", "high", "log", "int", "values", "choices"}
# Ranking uses the centred effective rank by default: encoders end in a LayerNorm, which
# gives every embedding a shared offset that the raw effective rank counts as one dominant
# direction (raw RankMe near 1 for runs whose centred rank is 20-40).
METRICS = ("rankme_centered", "rankme")
PROBE_KEYS = ("linear_probe_acc", "linear_probe_macro_auc", "linear_probe_r2")
FINAL = ("complete", "collapsed", "diverged", "failed")


class TrialCollapsed(PolyjepaError):
    """Raised inside a trial whose embeddings collapsed; the sweep stops that trial."""


@dataclass
class Grid:
    """A parsed, validated search space."""

    method: str
    params: dict[str, list[Any] | dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    trials: int | None = None
    seed: int = 0
    metric: str = "rankme_centered"
    early_stop: bool = True


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


# -- the grid file ----------------------------------------------------------------------
def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & RANGE_KEYS):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def load_grid(grid: str | Path | dict[str, Any]) -> Grid:
    """Read a grid file (TOML/YAML) or dict into a :class:`Grid`; errors name the key."""
    where = "grid"
    if isinstance(grid, (str, Path)):
        where = f"grid file {grid}"
        raw = read_mapping(grid, "grid file")
    else:
        raw = dict(grid)
    unknown = sorted(set(raw) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(GRID_KEYS)}")
    method = str(raw.get("method", "grid"))
    if method not in ("grid", "random"):
        raise ConfigError(f"{where}: method must be 'grid' or 'random', got {method!r}")
    metric = str(raw.get("metric", "rankme_centered"))
    if metric not in METRICS:
        raise ConfigError(f"{where}: metric must be one of {METRICS}, got {metric!r}")
    params = _flatten(raw.get("params") or {})
    if not params:
        raise ConfigError(f"{where}: [params] names no value to search over")
    trials = raw.get("trials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        raise ConfigError(f"{where}: trials must be a positive integer, got {trials!r}")
    if method == "random" and trials is None:
        raise ConfigError(f"{where}: random search needs 'trials' (how many draws)")
    for key, space in params.items():
        _check_space(where, key, space, method)
    fixed = _flatten(raw.get("set") or {})
    return Grid(method, params, fixed, trials, int(raw.get("seed", 0)), metric,
                bool(raw.get("early_stop", True)))


def _check_space(where: str, key: str, space: Any, method: str) -> None:
    if isinstance(space, dict):
        extra = sorted(set(space) - RANGE_KEYS)
        if extra:
            raise ConfigError(f"{where}: {key!r} has unknown field(s) {extra}; use "
                              "values/choices or low/high/log/int")
        values = space.get("values", space.get("choices"))
        if values is not None:
            _check_space(where, key, values, method)
            return
        if "low" not in space or "high" not in space:
            raise ConfigError(f"{where}: {key!r} needs a list of values or low and high")
        low, high = space["low"], space["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: {key!r} range bounds must be numbers, got "
                              f"{low!r} and {high!r}")
        if not low < high:
            raise ConfigError(f"{where}: {key!r} has an empty range: low={low} >= high={high}")
        if space.get("log") and low <= 0:
            raise ConfigError(f"{where}: {key!r} is log-scaled, so low must be > 0, got {low}")
        if method == "grid":
            raise ConfigError(f"{where}: {key!r} is a range; grid search needs a list of "
                              "values (or use method = 'random')")
        return
    if not isinstance(space, list):
        raise ConfigError(f"{where}: {key!r} must be a list of values or a range table, "
                          f"got {space!r}")
    if not space:
        raise ConfigError(f"{where}: {key!r} has an empty list of values")


def _values(space: Any) -> list[Any] | None:
    if isinstance(space, list):
        return space
    return space.get("values", space.get("choices"))


def trial_overrides(grid: Grid) -> list[dict[str, Any]]:
    """The overrides of every trial, in a fixed order (a pure function of the grid)."""
    keys = sorted(grid.params)
    if grid.method == "grid":
        combos = list(itertools.product(*[_values(grid.params[k]) for k in keys]))
        if grid.trials is not None:
            combos = combos[:grid.trials]
        return [dict(zip(keys, c)) for c in combos]
    rng = random.Random(grid.seed)
    out = []
    for _ in range(int(grid.trials or 0)):
        trial = {}
        for k in keys:
            space = grid.params[k]
            values = _values(space)
            if values is not None:
                trial[k] = values[rng.randrange(len(values))]
                continue
            low, high = float(space["low"]), float(space["high"])
            x = (math.exp(rng.uniform(math.log(low), math.log(high))) if space.get("log")
                 else rng.uniform(low, high))
            as_int = space.get("int", isinstance(space["low"], int) and
                               isinstance(space["high"], int))
            trial[k] = int(round(x)) if as_int else x
        out.append(trial)
    return out


# -- validation against the recipe -------------------------------------------------------
def validate_keys(config: dict[str, Any], values: dict[str, list[Any]]) -> None:
    """Fail before any trial for unknown keys or values of the wrong type (the same checks
    as every config, :mod:`polyjepa.validation`)."""
    for key, candidates in values.items():
        try:
            current = check_key(config, key)
        except ConfigError as exc:
            raise ConfigError(f"sweep key {exc}") from None
        for value in candidates:
            same_type(key, current, value, what="sweep key")


# -- one trial ---------------------------------------------------------------------------
def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one trial; the same function for worker processes and Ray.

    ``task`` holds ``config`` (the trial's full config), ``out`` (its run folder),
    ``trial`` (its number), ``overrides``, ``probe`` (also run a linear probe),
    ``early_stop``, ``threads`` and ``plugins`` (``--plugin`` modules to load).
    Returns the trial record also written to ``<out>/trial.json``.
    """
    import torch

    from . import plugins as plugin_host
    from .api import evaluate
    from .errors import TrainingDiverged
    from .trainer import is_collapsed, read_metrics, train

    if task.get("plugins"):
        plugin_host.configure(modules=list(task["plugins"]))
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    out = Path(task["out"])
    record: dict[str, Any] = {"trial": task["trial"], "overrides": task["overrides"],
                              "run": str(out)}
    cfg = task["config"]
    steps = int(cfg["train"]["steps"])
    collapse = TrainSettings.from_config(cfg).collapse_rank

    def early_stop(step: int, row: dict[str, Any]) -> None:
        if "rankme_centered" not in row or step >= steps:
            return
        limit = float(row.get("rankme_max") or 0)
        if limit and is_collapsed(row["rankme_centered"], limit, collapse):
            raise TrialCollapsed(f"centred RankMe {row['rankme_centered']:.2f} of at most "
                                 f"{limit:.0f} at step {step}")

    started = time.time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(cfg, out, progress=False,
                  callbacks=[early_stop] if task.get("early_stop", True) else None)
            names = ["rankme", "linear_probe"] if task.get("probe", True) else ["rankme"]
            metrics = evaluate(out, evaluators=names)
        record.update(status="complete", metrics=metrics)
    except TrialCollapsed as exc:
        record.update(status="collapsed", reason=str(exc))
    except TrainingDiverged as exc:
        record.update(status="diverged", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad trial never ends the sweep
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    rows = read_metrics(out)
    record["steps"] = max((int(r.get("step", 0)) for r in rows), default=0)
    record["seconds"] = round(time.time() - started, 2)
    last = [r for r in rows if "rankme" in r]
    if record["status"] != "complete" and last:
        record["metrics"] = {k: last[-1][k] for k in ("rankme", "rankme_centered")
                             if k in last[-1]}
    record["metrics"] = {k: float(v) for k, v in (record.get("metrics") or {}).items()}
    if out.is_dir():
        atomic_write_json(out / TRIAL_FILE, record)
    return record


# -- the sweep ---------------------------------------------------------------------------
def _default_workers(n_trials: int) -> int:
    return max(1, min(n_trials, (os.cpu_count() or 1) // 2))


def _run_local(tasks: list[dict[str, Any]], workers: int,
               on_done: Callable[[dict[str, Any]], None]) -> None:
    if workers <= 0:  # in this process, one after another
        for task in tasks:
            on_done(run_trial(task))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_trial, t) for t in tasks]
        for fut in as_completed(futures):
            on_done(fut.result())


def _run_ray(tasks: list[dict[str, Any]], workers: int, address: str,
             on_done: Callable[[dict[str, Any]], None]) -> None:
    try:
        import ray
        from ray import tune
    except ImportError as exc:
        raise ConfigError("a Ray address was given but Ray Tune is not installed: "
                          "pip install 'polyjepa[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address,
                 ignore_reinit_error=True, log_to_driver=False)

    report = getattr(tune, "report", None)
    if report is None:  # Ray before 2.40 reported through ray.train
        from ray import train as ray_train

        report = ray_train.report

    def trainable(space: dict[str, Any]) -> None:
        record = run_trial(space["task"])
        report({"status": record["status"], **record.get("metrics", {})})

    threads = max(int(t.get("threads") or 1) for t in tasks)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": threads}),
        param_space={"task": tune.grid_search(tasks)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max(1, workers)),
    )
    for res in tuner.fit():
        task = res.config["task"]
        path = Path(task["out"]) / TRIAL_FILE
        on_done(read_json(path, "trial file") if path.is_file() else {
            "trial": task["trial"], "overrides": task["overrides"], "run": task["out"],
            "status": "failed", "reason": str(res.error), "metrics": {}})


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
    from .api import resolve_config
    from .plugins import plugin_modules

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

    n_workers = _default_workers(len(trials)) if workers is None else int(workers)
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
            _run_ray(tasks, n_workers or 1, ray_address, on_done)
        elif tasks:
            _run_local(tasks, n_workers, on_done)
    finally:
        if bar is not None:
            bar.close()
    return summarize(out, [records[k] for k in sorted(records)], spec.metric, configs)


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
