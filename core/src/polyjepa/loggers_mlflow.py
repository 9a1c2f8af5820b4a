"""The ``"mlflow"`` logger: a run's config, metrics, results and report PNGs in MLflow.

The tracking store is ``MLFLOW_TRACKING_URI`` (else the store the run first used, else
MLflow's own default); the experiment is ``MLFLOW_EXPERIMENT_NAME``, else the recipe's
name. mlflow is imported in :meth:`MLflowLogger.start`, never at module level.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, warn
from .loggers import numeric_items, result_step

INSTALL = 'pip install "polyjepa[mlflow]"'
MAX_PARAM_CHARS = 500  # the smallest limit among MLflow versions
_BATCH = 100  # MLflow takes at most 100 params per batch
_BAD_KEY = re.compile(r"[^\w.\-/ ]")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 1e-3}}`` as ``{"train.lr": "0.001"}``: MLflow params are flat
    strings. Long values are cut to :data:`MAX_PARAM_CHARS`."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > MAX_PARAM_CHARS:
            text = text[:MAX_PARAM_CHARS - 3] + "..."
        out[_BAD_KEY.sub("_", name)[:250]] = text
    return out


class MLflowLogger:
    """Params (the flattened resolved config), per-step metrics, results as metrics at
    the last step, and artifacts, in one MLflow run per polyjepa run."""

    def __init__(self) -> None:
        self.client: Any = None
        self.run_id: str | None = None
        self.step = 0

    def start(self, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> dict[str, Any]:
        try:
            import mlflow
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise ConfigError(f"train.loggers names 'mlflow', which needs the mlflow "
                              f"package: {INSTALL}") from exc
        state = state or {}
        uri = (os.environ.get("MLFLOW_TRACKING_URI") or state.get("tracking_uri")
               or mlflow.get_tracking_uri())
        self.step = result_step(config)
        try:
            self.client = MlflowClient(tracking_uri=uri)
            run = self._existing_run(state.get("run_id"))
            if run is None:
                run = self._new_run(run_dir, config)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
            raise ConfigError(f"the MLflow store {uri!r} cannot be used ({type(exc).__name__}: "
                              f"{first}); set MLFLOW_TRACKING_URI to a tracking server, or to "
                              "file:./mlruns with MLFLOW_ALLOW_FILE_STORE=true, or pip "
                              "install mlflow for a database store") from exc
        self.run_id = run.info.run_id
        if run.info.status != "RUNNING":
            self.client.update_run(self.run_id, status="RUNNING")
        state = {"run_id": self.run_id, "experiment_id": run.info.experiment_id}
        if not urlsplit(uri).password:  # run.json keeps no credentials
            state["tracking_uri"] = uri
        return state

    def _existing_run(self, run_id: str | None) -> Any:
        if not run_id:
            return None
        try:
            return self.client.get_run(run_id)
        except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception types
            warn(f"MLflow run {run_id} is not in this store ({type(exc).__name__}); "
                 "starting a new MLflow run")
            return None

    def _new_run(self, run_dir: Path, config: dict[str, Any]) -> Any:
        from mlflow.entities import Param

        name = (os.environ.get("MLFLOW_EXPERIMENT_NAME") or config.get("recipe")
                or "polyjepa")
        experiment = self.client.get_experiment_by_name(name)
        exp_id = (experiment.experiment_id if experiment is not None
                  else self.client.create_experiment(name))
        run = self.client.create_run(exp_id, run_name=Path(run_dir).name,
                                     tags={"polyjepa.run_dir": str(Path(run_dir).resolve())})
        params = [Param(k, v) for k, v in flatten(config).items()]
        for i in range(0, len(params), _BATCH):
            self.client.log_batch(run.info.run_id, params=params[i:i + _BATCH])
        return run

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_BAD_KEY.sub("_", k), v, now, step) for k, v in values.items()]
        for i in range(0, len(metrics), _BATCH * 10):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + _BATCH * 10])

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        self._metrics(numeric_items(row), step)

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        self._metrics({f"{name}/{k}": v for k, v in numeric_items(metrics).items()},
                      self.step)

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id,
                                       "FINISHED" if status == "complete" else "FAILED")
        self.run_id = None
