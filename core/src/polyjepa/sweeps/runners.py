"""Where trials run: worker processes on this machine, or Ray Tune on a cluster."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint import read_json
from ..errors import ConfigError
from .trial import TRIAL_FILE, run_trial


# -- the sweep ---------------------------------------------------------------------------
def default_workers(n_trials: int) -> int:
    return max(1, min(n_trials, (os.cpu_count() or 1) // 2))


def run_local(tasks: list[dict[str, Any]], workers: int,
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


def run_ray(tasks: list[dict[str, Any]], workers: int, address: str,
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
