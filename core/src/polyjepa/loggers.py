"""Loggers: where a run's metrics go (``train.loggers``).

The built-in ``"jsonl"`` logger writes ``metrics.jsonl`` (what resume and ``report`` read)
and ``"tensorboard"`` writes TensorBoard scalars; ``"mlflow"`` and ``"wandb"`` live in
their own modules so their packages are imported only when used. :class:`RunLoggers`
sends each call to every logger of a run, and :func:`log_to_run` re-opens a finished
run's loggers from the states ``run.json`` keeps, for ``evaluate`` and ``report``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import PluginError, warn


def numeric_items(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row, without ``step`` (what trackers plot)."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def result_step(config: dict[str, Any]) -> int:
    """The step results are logged at: the run's last step."""
    try:
        return int((config.get("train") or {}).get("steps") or 0)
    except (TypeError, ValueError):
        return 0


class JsonlLogger:
    """Metrics rows in ``<run>/metrics.jsonl``, one JSON object a line."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None

    def start(self, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> dict[str, Any]:
        self.run_dir = Path(run_dir)
        return {}

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        from .trainer import append_metrics

        if self.run_dir is not None:
            append_metrics(self.run_dir, row)

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        """Nothing: ``evaluate`` writes ``eval/metrics.json`` itself."""

    def log_artifact(self, path: Path) -> None:
        """Nothing: the file is in the run folder already."""

    def finish(self, status: str) -> None:
        self.run_dir = None


class TensorBoardLogger:
    """TensorBoard scalars in ``<run>/tensorboard``; without the tensorboard package it
    does nothing, so the default list of loggers works everywhere."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.step = 0

    def start(self, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> dict[str, Any]:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return {}
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.step = result_step(config)
        return {}

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in numeric_items(metrics).items():
            self.writer.add_scalar(f"{name}/{key}", value, self.step)

    def log_artifact(self, path: Path) -> None:
        """Nothing: TensorBoard shows scalars; the PNGs stay in the run folder."""

    def finish(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class RunLoggers:
    """The opened loggers of one run; each call goes to every one of them."""

    def __init__(self, loggers: dict[str, Any] | None = None,
                 states: dict[str, dict[str, Any]] | None = None):
        self.loggers = dict(loggers or {})
        self.states = dict(states or {})

    @classmethod
    def start(cls, names: Iterable[str], run_dir: Path, config: dict[str, Any],
              states: dict[str, Any] | None = None) -> RunLoggers:
        """Create and start the loggers ``names``; ``states`` are what their earlier
        ``start`` returned (a resumed run attaches to the same tracked run)."""
        out = cls()
        try:
            for name in names:
                if name in out.loggers:
                    continue
                out._open(name, run_dir, config, (states or {}).get(name))
        except BaseException:
            out.finish("failed")
            raise
        return out

    def _open(self, name: str, run_dir: Path, config: dict[str, Any],
              state: dict[str, Any] | None) -> None:
        from .components import component_entry, create_logger

        logger = create_logger(name)
        new = logger.start(Path(run_dir), config, state if isinstance(state, dict) else None)
        new = {} if new is None else new
        try:
            if not isinstance(new, dict):
                raise TypeError(f"a {type(new).__name__}")
            json.dumps(new)
        except (TypeError, ValueError) as exc:
            logger.finish("failed")
            raise PluginError(f"logger {name!r} from plugin "
                              f"{component_entry('loggers', name).provider!r}: start() must "
                              f"return a JSON-able dict, got {exc}") from exc
        self.loggers[name] = logger
        self.states[name] = new

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        for logger in self.loggers.values():
            logger.log_metrics(step, dict(row))

    def log_results(self, name: str, metrics: dict[str, float]) -> None:
        for logger in self.loggers.values():
            logger.log_results(name, dict(metrics))

    def log_artifact(self, path: Path) -> None:
        for logger in self.loggers.values():
            logger.log_artifact(Path(path))

    def finish(self, status: str, quiet: bool = False) -> None:
        """Finish every logger, even when one fails. After a failed run (or ``quiet``) a
        logger's own error is only warned about, so the run's error is the one
        reported."""
        first: BaseException | None = None
        for name, logger in list(self.loggers.items()):
            try:
                logger.finish(status)
            except Exception as exc:  # noqa: BLE001 - finish the others first
                if quiet or status == "failed":
                    warn(f"logger {name!r} could not finish: {type(exc).__name__}: {exc}")
                elif first is None:
                    first = exc
        self.loggers.clear()
        if first is not None:
            raise first


def reopen(run_dir: str | Path) -> tuple[RunLoggers, str]:
    """The loggers a run recorded in ``run.json["loggers"]``, started again from their
    states, and the status to finish them with. A logger that cannot start here (its
    package is missing) is skipped with a warning: the results are saved in the run
    folder anyway."""
    from .checkpoint import read_json

    run_file = Path(run_dir) / "run.json"
    if not run_file.is_file():
        return RunLoggers(), "complete"
    info = read_json(run_file, "run file")
    states = info.get("loggers")
    config = info.get("config")
    out = RunLoggers()
    if not isinstance(states, dict) or not isinstance(config, dict):
        return out, "complete"
    for name, state in states.items():
        try:
            out._open(name, Path(run_dir), config, state)
        except Exception as exc:  # noqa: BLE001 - the results are saved already
            warn(f"logger {name!r} of {run_dir} skipped: {exc}")
    return out, "complete" if info.get("status") == "complete" else "failed"


def log_to_run(run_dir: str | Path, results: dict[str, dict[str, float]] | None = None,
               artifacts: Iterable[Path] = ()) -> None:
    """Send named results and files of a run to the loggers it was trained with. They
    are saved in the run folder already, so a logger that fails is warned about."""
    loggers, status = reopen(run_dir)
    if not loggers:
        return
    try:
        for name, metrics in (results or {}).items():
            loggers.log_results(name, metrics)
        for path in artifacts:
            loggers.log_artifact(path)
        loggers.finish(status)
    except Exception as exc:  # noqa: BLE001 - see above
        warn(f"the loggers of {run_dir} did not take everything: "
             f"{type(exc).__name__}: {exc}")
        loggers.finish(status, quiet=True)
