"""The ``"wandb"`` logger: a run's config, history, results and report PNGs in Weights &
Biases.

The project is ``WANDB_PROJECT`` (default ``"polyjepa"``); ``WANDB_MODE``
(``online``/``offline``/``disabled``), ``WANDB_DIR`` and ``WANDB_ENTITY`` are read by
wandb itself. wandb is imported in :meth:`WandbLogger.start`, never at module level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .loggers import numeric_items

INSTALL = 'pip install "polyjepa[wandb]"'


class WandbLogger:
    """One W&B run per polyjepa run: the resolved config, one history row per metrics
    row, results in the summary, and files saved with the run."""

    def __init__(self) -> None:
        self.run: Any = None

    def start(self, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> dict[str, Any]:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError(f"train.loggers names 'wandb', which needs the wandb "
                              f"package: {INSTALL}") from exc
        state = state or {}
        project = os.environ.get("WANDB_PROJECT") or state.get("project") or "polyjepa"
        args: dict[str, Any] = {"project": project, "name": Path(run_dir).name}
        if state.get("run_id"):  # attach to the run this one continues
            args.update(id=state["run_id"], resume="allow")
            if state.get("entity") and not os.environ.get("WANDB_ENTITY"):
                args["entity"] = state["entity"]
        else:
            args["config"] = config
        try:
            self.run = wandb.init(**args)
        except Exception as exc:
            raise ConfigError(f"W&B run cannot start ({type(exc).__name__}: {exc}); log in "
                              "(wandb login, WANDB_API_KEY) or set WANDB_MODE=offline") from exc
        if state.get("run_id"):
            self.run.config.update(config, allow_val_change=True)
        out = {"run_id": self.run.id, "project": self.run.project}
        entity = getattr(self.run, "entity", None)
        if entity:
            out["entity"] = entity
        return out

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        self.run.log(numeric_items(row), step=step)

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        self.run.summary.update({f"{name}/{k}": v for k, v in numeric_items(metrics).items()})

    def log_artifact(self, path: Path) -> None:
        path = Path(path).resolve()
        self.run.save(str(path), base_path=str(path.parent), policy="now")

    def finish(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "complete" else 1)
            self.run = None
