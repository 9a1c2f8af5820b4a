"""One sweep trial: a normal run folder, stopped early when its embeddings collapse,
then scored by RankMe (and a linear probe where there are labels)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json
from ..errors import PolyjepaError
from ..settings import TrainSettings

TRIAL_FILE = "trial.json"
FINAL = ("complete", "collapsed", "diverged", "failed")


class TrialCollapsed(PolyjepaError):
    """Raised inside a trial whose embeddings collapsed; the sweep stops that trial."""


# -- one trial ---------------------------------------------------------------------------
def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one trial; the same function for worker processes and Ray.

    ``task`` holds ``config`` (the trial's full config), ``out`` (its run folder),
    ``trial`` (its number), ``overrides``, ``probe`` (also run a linear probe),
    ``early_stop``, ``threads`` and ``plugins`` (``--plugin`` modules to load).
    Returns the trial record also written to ``<out>/trial.json``.
    """
    import torch

    from .. import plugins as plugin_host
    from ..api import evaluate
    from ..errors import TrainingDiverged
    from ..trainer import is_collapsed, read_metrics, train

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
