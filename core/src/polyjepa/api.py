"""The Python API: ``pretrain``, ``load_encoder``, ``embed``, ``evaluate``, ``demo``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write_json, load_tensors, read_json
from .components import component_entry, create_evaluator, get_recipe
from .config import apply_overrides, load_config_file, merge
from .errors import CheckpointError, ConfigError, DataError, warn
from .settings import TrainSettings
from .validation import check_config

TRAIN_SHORTCUTS = ("steps", "batch_size", "lr", "seed", "device", "precision", "warmup_steps",
                   "accumulate", "log_every", "rankme_every", "checkpoint_every", "num_workers")


@dataclass
class Run:
    """A run folder: its config, metrics and exported encoder."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def info(self) -> dict[str, Any]:
        from .exporting import export_info, is_export

        if is_export(self.path):  # an exported encoder folder stands in for its run
            return export_info(self.path)
        return read_json(self.path / "run.json", "run file")

    @property
    def config(self) -> dict[str, Any]:
        config = self.info.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"{self.path / 'run.json'} has no 'config' table, so the "
                                  "encoder cannot be rebuilt (not a run file polyjepa wrote?)")
        return config

    @property
    def complete(self) -> bool:
        return self.info.get("status") == "complete"

    def metrics(self) -> list[dict[str, Any]]:
        from .trainer import read_metrics

        return read_metrics(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"


def resolve_config(recipe: str | None = None, data: Any = None,
                   config: str | Path | dict[str, Any] | None = None,
                   overrides: dict[str, Any] | list[str] | None = None,
                   **train: Any) -> dict[str, Any]:
    """Build a full config: defaults, then the recipe, then a config file, then overrides.

    ``train`` takes shortcuts for common ``train.*`` values (``steps``, ``lr``, ...).
    """
    from .config import default_config

    file_cfg: dict[str, Any] = {}
    if isinstance(config, (str, Path)):
        file_cfg = load_config_file(config)
    elif isinstance(config, dict):
        file_cfg = config
    recipe = recipe or file_cfg.get("recipe")
    cfg = get_recipe(recipe) if recipe else default_config()
    cfg["recipe"] = recipe
    cfg = merge(cfg, file_cfg)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    for key, value in train.items():
        if key not in TRAIN_SHORTCUTS:
            raise ConfigError(f"unknown argument {key!r}; use overrides={{'section.key': "
                              f"value}} for other settings")
        if value is not None:
            cfg["train"][key] = value
    if data is not None:
        cfg["data"] = data if not isinstance(data, Path) else str(data)
    if not (cfg.get("dataset") or {}).get("name"):
        raise ConfigError("no dataset: name a recipe or set dataset.name in the config")
    check_config(cfg)
    return cfg


def pretrain(recipe: str | None = None, data: Any = None, out: str | Path | None = None,
             config: str | Path | dict[str, Any] | None = None,
             overrides: dict[str, Any] | list[str] | None = None, progress: bool = True,
             callbacks: list[Any] | None = None, **train: Any) -> Run:
    """Pre-train a JEPA with a recipe on ``data``; returns the :class:`Run` folder.

    >>> run = pretrain("array", data="images.npz", out="runs/img", steps=500)
    """
    from .trainer import train as train_loop

    cfg = resolve_config(recipe, data, config, overrides, **train)
    out = Path(out) if out else Path("runs") / (cfg.get("recipe") or "run")
    train_loop(cfg, out, progress=progress, callbacks=callbacks)
    return Run(out)


def _run(run: str | Path | Run) -> Run:
    from .exporting import is_export
    from .plugins import ensure_plugins

    r = run if isinstance(run, Run) else Run(Path(run))
    if not (r.path / "run.json").is_file() and not is_export(r.path):
        raise CheckpointError(f"{r.path} is not a polyjepa run folder (no run.json) nor "
                              "an exported encoder (no polyjepa.json)")
    ensure_plugins(r.info.get("plugins") or [])
    return r


def load_encoder(run: str | Path | Run, device: str = "cpu",
                 checkpoint: str | Path | None = None) -> Any:
    """The run's pre-trained encoder (a ``torch.nn.Module`` in eval mode); ``run`` may
    also be a folder ``polyjepa export`` wrote.

    By default the exported ``encoder.safetensors`` of a finished run; for a run still in
    progress, the encoder of its latest checkpoint. ``checkpoint`` names a checkpoint
    folder (``step_00000200`` or its path) or an encoder safetensors file instead.
    """
    import torch

    from .build import build_encoder
    from .checkpoint import checkpoint_encoder_state, latest_checkpoint
    from .trainer import ENCODER_FILE

    r = _run(run)
    cfg = r.config
    encoder = build_encoder(cfg)
    path = r.path / ENCODER_FILE if checkpoint is None else Path(checkpoint)
    if checkpoint is not None and not path.is_absolute() and not path.exists():
        path = r.path / "checkpoints" / path
    if path.is_file():
        state = load_tensors(path)
    else:
        ckpt = path if path.is_dir() else latest_checkpoint(r.path)
        if ckpt is None:
            raise CheckpointError(f"{r.path} has neither {ENCODER_FILE} nor a checkpoint yet")
        state = checkpoint_encoder_state(ckpt, cfg)
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and
                 not bool(torch.isfinite(v).all()))
    if bad:
        where = path if path.is_file() else ckpt
        raise CheckpointError(f"{where}: the weights hold NaN or infinite values "
                              f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
                              "the file is damaged or training diverged")
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit encoder "
                              f"{cfg['encoder'].get('name')!r}: {exc}") from exc
    return encoder.to(device).eval()


def _dataset_for(r: Run, data: Any) -> Any:
    from .build import build_dataset

    cfg = r.config
    return build_dataset(cfg, data, state=cfg.get("dataset_state") or None)


def embed_dataset(encoder: Any, dataset: Any, batch_size: int = 128, device: str = "cpu",
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray | None,
                                                   np.ndarray | None]:
    """Pooled embeddings ``[N, D]`` of every sample, with labels and groups if present
    (pooled as the encoder's run says: ``eval.pool``, see :func:`polyjepa.pool_tokens`)."""
    import torch

    from .data import eval_loader, move_to
    from .tokens import batch_valid, encoder_pool, pool_tokens

    out, labels, groups = [], [], []
    pool = encoder_pool(encoder)
    loader = eval_loader(dataset, batch_size)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="embed", unit="batch")
    with torch.no_grad():
        for batch in loader:
            batch = move_to(batch, torch.device(device))
            z = pool_tokens(encoder(batch).float(), batch_valid(batch), pool)
            out.append(z.cpu().numpy())
            if isinstance(batch, dict) and "y" in batch:
                labels.append(batch["y"].cpu().numpy())
            if isinstance(batch, dict) and "group" in batch:
                groups.append(np.asarray(batch["group"].cpu() if hasattr(batch["group"], "cpu")
                                         else batch["group"]))
    emb = np.concatenate(out) if out else np.zeros((0, getattr(encoder, "embed_dim", 0)))
    y = np.concatenate(labels) if labels else None
    g = np.concatenate(groups) if groups else None
    return emb, y, g


def embed(run: str | Path | Run, data: Any = None, batch_size: int | None = None,
          device: str = "cpu", out: str | Path | None = None, progress: bool = False) -> np.ndarray:
    """Embeddings ``[N, D]`` of ``data`` (default: the training data) with the run's encoder.

    With ``out``, also saved as ``.npy`` (labels, when the data has them, beside it as
    ``<name>.labels.npy``).
    """
    r = _run(run)
    encoder = load_encoder(r, device)
    dataset = _dataset_for(r, data)
    bs = batch_size or TrainSettings.from_config(r.config).eval_batch_size
    emb, labels, _ = embed_dataset(encoder, dataset, bs, device, progress)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, emb)
        if labels is not None:
            np.save(out.with_name(out.stem + ".labels.npy"), labels)
    return emb


def _score(cfg: dict[str, Any], encoder: Any, dataset: Any, names: list[Any] | None,
           bs: int, device: str, seed: int) -> tuple[dict[str, float], np.ndarray,
                                                     np.ndarray | None]:
    """Embed ``dataset`` with ``encoder`` and run the evaluators on the embeddings."""
    from .evaluators import EvalContext

    emb, labels, groups = embed_dataset(encoder, dataset, bs, device)
    ctx = EvalContext(emb, labels, groups, encoder, dataset, seed,
                      {"device": device, "batch_size": bs})
    results: dict[str, float] = {}
    for name in names or list(cfg.get("evaluators") or ["rankme"]):
        spec = name if isinstance(name, str) else dict(name)
        if isinstance(spec, dict):
            spec = dict(spec)
            ev_name = spec.pop("name")
            evaluator = create_evaluator(ev_name, **spec)
        else:
            ev_name = spec
            evaluator = create_evaluator(ev_name)
        if getattr(evaluator, "needs_labels", False) and labels is None:
            warn(f"evaluator {ev_name!r} skipped: the data has no labels")
            continue
        try:
            metrics = evaluator(ctx)
        except DataError:
            raise
        except Exception as exc:
            entry = component_entry("evaluators", ev_name)
            raise DataError(f"evaluator {ev_name!r} from {entry.provider!r} failed: "
                            f"{type(exc).__name__}: {exc}") from exc
        for key, value in metrics.items():
            results[key] = float(value)
    return results, emb, labels


def evaluate(run: str | Path | Run, data: Any = None, evaluators: list[str] | None = None,
             batch_size: int | None = None, device: str = "cpu", seed: int = 0,
             save: bool = True) -> dict[str, float]:
    """Label-free and labelled metrics of the run's encoder on ``data``.

    Runs the recipe's evaluators (default: ``rankme``, ``linear_probe``, ``knn``) or the
    ones named; evaluators that need labels are skipped on unlabelled data. Results and
    the embeddings are saved under ``<run>/eval/`` for ``report``, and the results are
    sent to the run's loggers (``log_results("evaluate", ...)``).
    """
    r = _run(run)
    cfg = r.config
    encoder = load_encoder(r, device)
    dataset = _dataset_for(r, data)
    bs = batch_size or TrainSettings.from_config(cfg).eval_batch_size
    results, emb, labels = _score(cfg, encoder, dataset, evaluators, bs, device, seed)
    if save:
        ev_dir = r.path / "eval"
        ev_dir.mkdir(exist_ok=True)
        atomic_write_json(ev_dir / "metrics.json", {
            "data": str(data if data is not None else cfg.get("data")),
            "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": results})
        arrays = {"embeddings": emb}
        if labels is not None:
            arrays["labels"] = labels
        np.savez(ev_dir / "embeddings.npz", **arrays)
        from .loggers import log_to_run

        log_to_run(r.path, results={"evaluate": results})
    return results


def evaluate_checkpoints(run: str | Path | Run, data: Any = None,
                         evaluators: list[str] | None = None, batch_size: int | None = None,
                         device: str = "cpu", seed: int = 0) -> dict[int, dict[str, float]]:
    """The metrics of every kept checkpoint, ``{step: metrics}``, oldest first.

    RankMe (centred) is always among them, so a label-free choice can be checked against
    the probes; ``run.json`` records which step the run exported (``selected``).
    """
    from .checkpoint import checkpoint_step, kept_checkpoints

    r = _run(run)
    cfg = r.config
    folders = kept_checkpoints(r.path)
    if not folders:
        raise CheckpointError(f"{r.path} keeps no checkpoint")
    dataset = _dataset_for(r, data)
    bs = batch_size or TrainSettings.from_config(cfg).eval_batch_size
    names = list(evaluators or cfg.get("evaluators") or [])
    if "rankme" not in names:
        names.insert(0, "rankme")
    out: dict[int, dict[str, float]] = {}
    for folder in folders:
        encoder = load_encoder(r, device, checkpoint=folder)
        out[checkpoint_step(folder)] = _score(cfg, encoder, dataset, names, bs, device,
                                              seed)[0]
    return out


def _demo_task(name: str, ref: Any) -> Any:
    """The recipe's labelled demo comparison: a ``"module:function"`` returning a
    :class:`~polyjepa.quality.QualityTask`."""
    from .registry import Entry

    return Entry(f"{name} demo task", ref, f"recipe {name!r}").resolve()()


def demo(recipes: list[str] | None = None, out: str | Path = "runs/demo",
         steps: int | None = None, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Pretrain and evaluate every installed recipe that ships demo data.

    A recipe whose ``demo`` section names a labelled ``task`` is compared on it: the
    pretrained encoder, the same encoder at random init and the field's baselines, with
    one probe on one split (see :mod:`polyjepa.quality`). ``<out>/quality.md`` and
    ``<out>/quality.png`` summarise every compared recipe on one page.

    Returns ``{recipe: {"kind": "real"|"simulated", "description", "metrics", "run",
    "comparison"}}``; ``comparison`` is ``{"metric": ..., method: score}`` or ``None``.
    """
    from .components import list_recipes
    from .quality import PRETRAINED, run_quality_task, write_quality_report

    results: dict[str, dict[str, Any]] = {}
    all_rows: list[dict[str, Any]] = []
    for name in recipes or list_recipes():
        recipe = get_recipe(name)
        demo_cfg = recipe.get("demo") or {}
        if not demo_cfg:
            continue
        kind = demo_cfg.get("kind", "real")
        desc = demo_cfg.get("description", "")
        print(f"[{name}] demo on {kind.upper()} data: {desc}", flush=True)
        comparison = None
        if demo_cfg.get("task"):
            task = _demo_task(name, demo_cfg["task"])
            if steps is not None:
                task.steps = int(steps)
                task.overrides = {**task.overrides, "train.warmup_steps": max(0, int(steps) // 10)}
            # frozen encoders only: fine-tuning would double the demo's time
            rows = run_quality_task(task, Path(out) / name, seeds=(0,), factor=1,
                                    checkpoints=1, progress=progress, finetune=False)
            all_rows += rows
            run_dir = Path(out) / name / f"{task.name}-{task.steps}-s0"
            comparison = {"metric": task.metric, "data": task.name}
            comparison.update({r["method"]: r["value"] for r in rows
                               if r["method"] != "rankme choice"})
            comparison[PRETRAINED] = comparison.pop(PRETRAINED)
        else:
            cfg = merge(recipe, demo_cfg.get("overrides") or {})
            cfg["recipe"] = name
            cfg["data"] = demo_cfg.get("data")
            if steps is not None:
                cfg["train"]["steps"] = int(steps)
                cfg["train"]["warmup_steps"] = min(cfg["train"]["warmup_steps"],
                                                   int(steps) // 10)
            from .trainer import train as train_loop

            run_dir = Path(out) / name
            train_loop(cfg, run_dir, progress=progress)
        metrics = evaluate(run_dir)
        results[name] = {"kind": kind, "description": desc, "metrics": metrics,
                         "run": str(run_dir), "comparison": comparison}
    if all_rows:
        write_quality_report(all_rows, out, title="polyjepa demo: does pre-training pay?")
    return results
