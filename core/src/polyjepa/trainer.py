"""One training loop for every domain.

AdamW with warm-up + cosine (or constant + cool-down) learning rate, cosine weight-decay
and linear EMA-momentum schedules; bf16 autocast; gradient clipping and accumulation;
DDP or FSDP2 (``train.strategy``) under ``torchrun`` with rank-sharded batches; RankMe
monitoring with a collapse warning; a NaN guard; atomic safetensors checkpoints (sharded
``torch.distributed.checkpoint`` ones under FSDP) with exact resume; a progress bar and
the run's loggers (``train.loggers``: ``metrics.jsonl`` in the run folder, TensorBoard
scalars when it is installed, MLflow, W&B or a plugin's).

Determinism: the data order of global batch ``i`` and the masks of that batch are pure
functions of ``(seed, i)``, so two runs with one seed, a resumed run and a data-parallel
run all see the same samples and masks.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import __version__
from .build import build_dataset, build_jepa, build_masker, resolve_components
from .checkpoint import (
    CHECKPOINT_DIR,
    atomic_write_json,
    atomic_write_text,
    checkpoint_encoder_state,
    export_state,
    is_sharded_checkpoint,
    kept_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    load_sharded_checkpoint,
    load_tensors,
    optimizer_tensors,
    read_json,
    remove_leftovers,
    restore_optimizer,
    save_checkpoint,
    save_sharded_checkpoint,
    save_tensors,
)
from .checks import check_masks, check_tokens
from .config import data_for_json, default_config
from .cpualloc import keep_freed_memory
from .data import eval_loader, move_to, train_loader, training_subset
from .distributed import (
    DistInfo,
    all_gather_cat,
    all_reduce_mean,
    barrier,
    broadcast_object,
    full_state_dict,
    init_distributed,
    shard_jepa,
    to_full,
)
from .errors import CheckpointError, ConfigError, TrainingDiverged, warn
from .evaluators import centred_rank, effective_rank
from .loggers import RunLoggers
from .plugins import loaded_plugin_modules
from .runlock import RunLock
from .schedules import cosine_ramp, learning_rate, linear_ramp
from .settings import TrainSettings
from .tokens import batch_valid, encoder_pool, pool_tokens
from .validation import check_config

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ENCODER_FILE = "encoder.safetensors"

# config keys that change logging only, never the weights: they may differ on resume
_COSMETIC = {("train", k) for k in ("log_every", "rankme_every", "rankme_samples",
                                    "checkpoint_every", "keep_checkpoints", "num_workers",
                                    "collapse_rank", "device", "tensorboard",
                                    "loggers", "compile")}
_COSMETIC_SECTIONS = {"evaluators", "eval", "demo", "recipe"}


def best_step(scores: dict[int, float]) -> int:
    """The checkpoint step with the highest score (the later one on a tie)."""
    return max(scores, key=lambda k: (scores[k], k))


class CollapseWarning(UserWarning):
    """RankMe fell so low that the embeddings have (nearly) collapsed."""


def is_collapsed(centered_rank: float, max_rank: float, share: float = 0.02) -> bool:
    """Whether a centred RankMe counts as collapse: below ``share`` of its maximum
    (``min(N, D)``), and never above 1.5, where a single direction is left."""
    return centered_rank < max(1.5, share * max_rank)


@dataclass
class TrainResult:
    """What a finished ``train`` call leaves: the run folder and its last metrics."""

    path: Path
    steps: int
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_loss(self) -> float | None:
        rows = [r for r in self.metrics if "loss" in r]
        return rows[-1]["loss"] if rows else None


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ConfigError(f"train.precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if _cpu_has_bf16() else None


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def check_same_run(out: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to continue the run in ``out`` (trained under ``old``) with ``new``, when the
    two differ in anything but logging; the folder's results are kept."""
    diff = _differences(old, new)
    if diff:
        raise ConfigError(f"{out} already holds a different run (differs in: "
                          f"{', '.join(diff)}); its results are kept. Choose another --out.")


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for section in sorted(set(a) | set(b)):
        if section in _COSMETIC_SECTIONS:
            continue
        va, vb = a.get(section), b.get(section)
        if isinstance(va, dict) and isinstance(vb, dict):
            # a setting newer than a run's file stands at its default there
            known = default_config()["train"] if section == "train" else {}
            for key in sorted(set(va) | set(vb)):
                if (section, key) in _COSMETIC:
                    continue
                if json.dumps(va.get(key, known.get(key)), sort_keys=True, default=str) != \
                        json.dumps(vb.get(key, known.get(key)), sort_keys=True, default=str):
                    out.append(f"{section}.{key}")
        elif json.dumps(va, sort_keys=True, default=str) != json.dumps(vb, sort_keys=True,
                                                                      default=str):
            out.append(section)
    return out


def _param_groups(model: nn.Module) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith(".bias") or "token" in name or "pos" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "apply_wd": True}, {"params": no_decay, "apply_wd": False,
                                                  "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """The trainer's AdamW (no weight decay on biases, norms, tokens and positions).

    It is the fused AdamW kernel where this torch has one for the parameters' device
    (CUDA; CPU from torch 2.4): one pass over each parameter instead of a dozen
    per-parameter ops (on CPU 5x faster than the default loop, the same numbers within
    float rounding, deterministic). Elsewhere it is torch's default implementation.
    A checkpoint restores the implementation it was saved with, so a resumed run keeps
    the numbers of its first session.
    """
    try:
        return torch.optim.AdamW(_param_groups(model), lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        # fresh groups: the failed attempt filled its own with fused=True
        return torch.optim.AdamW(_param_groups(model), lr=lr, betas=betas)


def compile_jepa(jepa: nn.Module) -> None:
    """Compile the JEPA's encoder(s) and predictor in place (``train.compile``).

    ``Module.compile`` keeps parameter names, so checkpoints and the exported encoder
    stay loadable without torch.compile; shapes are dynamic because the number of
    context, target and valid tokens changes from batch to batch.
    """
    for name in ("encoder", "target", "predictor"):
        part = getattr(jepa, name, None)
        if isinstance(part, nn.Module):
            part.compile(dynamic=True)


def mask_generator(seed: int, global_batch_index: int) -> torch.Generator:
    """The generator for the masks of one global batch (same on every rank)."""
    return torch.Generator().manual_seed((seed + 1) * 7_919 + global_batch_index * 104_729)


@dataclass
class _Session:
    """What one training session holds between its named steps."""

    dist: DistInfo
    dataset: Any
    resolved: dict[str, Any]
    info: dict[str, Any]
    jepa: Any
    model: nn.Module
    masker: Any
    opt: torch.optim.Optimizer
    loader: Any
    amp: torch.dtype | None
    monitor: list[int]
    start: int
    scores: dict[int, float]  # centred RankMe of each checkpoint (train.select = rankme)
    last_ckpt: Path | None
    result: TrainResult
    bar: Any = None
    loggers: RunLoggers | None = None  # the main rank's
    clock: tuple[float, int] = (0.0, 0)  # time and step of the last logged row
    # under FSDP: an unsharded copy of the exported encoder (for the contract check, and on
    # rank 0 for RankMe); None when the model is not sharded
    plain: nn.Module | None = None


class Trainer:
    """Runs one JEPA pre-training into a run folder; see :func:`train`.

    :meth:`run` is a short loop over named steps: ``_setup`` (data, run folder, model,
    optimizer, resume), then per step ``_schedule``, ``_forward_backward``, ``_update``,
    ``_log`` and ``_checkpoint_if_due``, and finally ``_export``.
    """

    def __init__(self, config: dict[str, Any], out: str | Path, progress: bool = True,
                 callbacks: list[Callable[[int, dict[str, Any]], None]] | None = None):
        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.callbacks = list(callbacks or [])
        self.s = TrainSettings.from_config(config)

    def run(self) -> TrainResult:
        dist = init_distributed(self.s.device)
        if not dist.main:
            return self._run(dist)
        with RunLock(self.out):
            remove_leftovers(self.out)
            return self._run(dist)

    def _run(self, dist: DistInfo) -> TrainResult:
        session = self._setup(dist)
        if isinstance(session, TrainResult):
            return session
        try:
            try:
                for step in range(session.start, self.s.steps):
                    lr, wd = self._schedule(session, step)
                    totals = self._forward_backward(session, step)
                    grad_norm, momentum = self._update(session, step, totals)
                    row = self._log(session, step + 1, totals, lr, wd, momentum, grad_norm)
                    self._checkpoint_if_due(session, step + 1, row)
                    for cb in self.callbacks:
                        cb(step + 1, row or {"step": step + 1, "loss": totals["loss"]})
            finally:
                if session.bar is not None:
                    session.bar.close()
            self._export(session)
        except BaseException:
            if session.loggers is not None:
                session.loggers.finish("failed")
            raise
        if session.loggers is not None:
            session.loggers.finish("complete")
        barrier()
        return session.result

    # -- set-up ----------------------------------------------------------------------
    def _prepare_run_dir(self, resolved: dict[str, Any], dist: DistInfo) -> dict[str, Any]:
        run_file = self.out / RUN_FILE
        resolved = {**resolved, "data": data_for_json(resolved.get("data"))}
        if not run_file.exists() and kept_checkpoints(self.out):
            raise CheckpointError(
                f"{self.out} holds checkpoints but no {RUN_FILE}, so the config they were "
                "trained under is unknown; they are kept. Choose another --out, or remove "
                f"{self.out / CHECKPOINT_DIR} to start afresh.")
        if run_file.exists():
            old = read_json(run_file, "run file")
            if not isinstance(old.get("config"), dict):
                raise CheckpointError(f"{run_file} has no 'config' table: not a run file "
                                      "polyjepa wrote; its folder is kept. Choose another --out.")
            check_same_run(self.out, old["config"], resolved)
            return old
        info = {"config": resolved, "status": "running", "polyjepa_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "world_size": dist.world,
                "plugins": loaded_plugin_modules()}
        if dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_file, info)
        return info

    def _setup(self, dist: DistInfo) -> _Session | TrainResult:
        """Data, run folder, model, optimizer and, for a folder with checkpoints, the
        state to resume from; a finished run returns its result instead."""
        s = self.s
        torch.manual_seed(s.seed)
        dataset = build_dataset(self.config)
        resolved = resolve_components(self.config, dataset)
        info = self._prepare_run_dir(resolved, dist)
        if info.get("status") == "complete" and (self.out / ENCODER_FILE).exists():
            if dist.main:
                print(f"{self.out}: run already complete ({s.steps} steps); nothing to do")
            return TrainResult(self.out, s.steps, read_metrics(self.out))
        barrier()

        torch.manual_seed(s.seed)
        jepa = build_jepa(resolved).to(dist.device)
        masker = build_masker(resolved)
        plain = None
        if self._sharded(dist):
            # the optimizer must see the sharded parameters FSDP puts in place
            plain = copy.deepcopy(jepa.export_encoder())
            shard_jepa(jepa)
        if dist.device.type == "cpu":
            keep_freed_memory()  # each step's buffers stay mapped (see cpualloc)
        opt = build_optimizer(jepa, s.lr, s.betas)
        start, scores = 0, {}
        ckpt = latest_checkpoint(self.out)
        if ckpt is not None:
            start, scores = self._restore(ckpt, jepa, opt)
            if dist.main:
                print(f"resuming {self.out} from step {start}")
        if dist.main:
            trim_metrics(self.out, start)
        if s.compile:
            compile_jepa(jepa)
        model: nn.Module = jepa
        if dist.world > 1 and plain is None:
            model = nn.parallel.DistributedDataParallel(
                jepa, device_ids=[dist.device.index] if dist.device.type == "cuda" else None,
                broadcast_buffers=False)
        loader = iter(train_loader(training_subset(dataset, s.data_fraction, s.seed),
                                   s.batch_size, s.seed, start * s.accumulate,
                                   dist.rank, dist.world, s.num_workers))
        session = _Session(
            dist=dist, dataset=dataset, resolved=resolved, info=info, jepa=jepa, model=model,
            masker=masker, opt=opt, loader=loader,
            amp=_autocast_dtype(s.precision, dist.device),
            monitor=self._monitor_indices(len(dataset), s.seed), start=start, scores=scores,
            last_ckpt=ckpt, plain=plain,
            result=TrainResult(self.out, s.steps, read_metrics(self.out) if dist.main else []),
            clock=(time.perf_counter(), start))
        if dist.main:
            session.loggers = self._open_loggers(resolved, info)
        if dist.main and self.progress:
            from tqdm.auto import tqdm

            session.bar = tqdm(total=s.steps, initial=start, desc=f"pretrain {self.out.name}",
                               unit="step", dynamic_ncols=True)
        return session

    def _open_loggers(self, resolved: dict[str, Any], info: dict[str, Any]) -> RunLoggers:
        """Start ``train.loggers`` with the states an earlier session of this run saved,
        and save their new states in run.json (``evaluate`` and ``report`` re-open them)."""
        config = {**resolved, "data": data_for_json(resolved.get("data"))}
        # metrics.jsonl is always written: resume, report and the API read it
        names = ["jsonl", *[n for n in self.s.loggers if n != "jsonl"]]
        loggers = RunLoggers.start(names, self.out, config, info.get("loggers"))
        info["loggers"] = loggers.states
        atomic_write_json(self.out / RUN_FILE, info)
        return loggers

    # -- one step --------------------------------------------------------------------
    def _schedule(self, session: _Session, step: int) -> tuple[float, float]:
        """Set this step's learning rate and weight decay on the optimizer."""
        s = self.s
        lr = learning_rate(step, s.steps, s.lr, s.min_lr, s.warmup_steps, s.schedule,
                           s.cooldown)
        wd = cosine_ramp(step, s.steps, s.weight_decay, s.weight_decay_end)
        for group in session.opt.param_groups:
            group["lr"] = lr
            if group.get("apply_wd"):
                group["weight_decay"] = wd
        return lr, wd

    def _forward_backward(self, session: _Session, step: int) -> dict[str, float]:
        """Masks, loss and gradients of the step's micro-batches; the loss terms averaged
        over micro-batches and ranks. The first batch of a session checks the contract."""
        s, dist = self.s, session.dist
        per_rank = s.batch_size // dist.world
        totals: dict[str, float] = {}
        for micro in range(s.accumulate):
            gidx = step * s.accumulate + micro
            batch = move_to(next(session.loader), dist.device)
            first = step == session.start and micro == 0
            # under FSDP the encoder's own weights are sharded outside forward: the
            # contract check tokenizes with the unsharded copy
            checked = session.plain if session.plain is not None else session.jepa.encoder
            grid = (check_tokens(checked, batch, session.resolved) if first
                    else session.jepa.encoder.grid(batch))
            valid = batch_valid(batch)
            if valid is not None and dist.world > 1:
                valid = all_gather_cat(valid)
            gen = mask_generator(s.seed, gidx)
            masks = session.masker(grid, s.batch_size, gen, valid=valid)
            masks = masks.rows(dist.rank * per_rank, (dist.rank + 1) * per_rank)
            if first:
                check_masks(masks, math.prod(grid), per_rank, session.resolved)
            masks = masks.to(dist.device)
            # one context over forward and backward (DDP's no_sync cannot be re-entered)
            with self._grad_sync(session, final=micro == s.accumulate - 1):
                with torch.autocast(dist.device.type, dtype=session.amp or torch.float32,
                                    enabled=session.amp is not None):
                    out = session.model(batch, masks, gen)
                (out["loss"] / s.accumulate).backward()
            for k, v in out.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / s.accumulate
        vals = all_reduce_mean(torch.tensor(list(totals.values()), dtype=torch.float64))
        return dict(zip(totals, vals.tolist()))

    def _update(self, session: _Session, step: int,
                totals: dict[str, float]) -> tuple[float | None, float]:
        """NaN guard, gradient clipping, optimizer step and EMA update."""
        s = self.s
        if not math.isfinite(totals["loss"]):
            where = f" ({session.last_ckpt})" if session.last_ckpt else ""
            raise TrainingDiverged(
                f"loss became {totals['loss']} at step {step + 1}; stopped before "
                f"saving these weights, the last good checkpoint{where} is kept. "
                "Try a lower train.lr, more warm-up, or train.precision = 'fp32'.")
        grad_norm = None
        if s.clip_grad:
            params = [p for p in session.jepa.parameters() if p.requires_grad]
            grad_norm = float(to_full(torch.nn.utils.clip_grad_norm_(params, s.clip_grad)))
        session.opt.step()
        session.opt.zero_grad(set_to_none=True)
        momentum = linear_ramp(step, s.steps, s.momentum, s.momentum_end)
        session.jepa.update_target(momentum)
        return grad_norm, momentum

    def _log(self, session: _Session, done: int, totals: dict[str, float], lr: float,
             wd: float, momentum: float, grad_norm: float | None) -> dict[str, Any] | None:
        """The metrics row of step ``done`` when one is due (and RankMe when due), sent
        to the run's loggers and the progress bar."""
        s = self.s
        row: dict[str, Any] | None = None
        if done % s.log_every == 0 or done == s.steps:
            now = time.perf_counter()
            last_time, last_step = session.clock
            row = {"step": done, **{k: round(v, 6) for k, v in totals.items()},
                   "lr": lr, "weight_decay": wd, "momentum": momentum,
                   "samples_per_s": (done - last_step) * s.batch_size * s.accumulate
                   / max(now - last_time, 1e-9)}
            if grad_norm is not None:
                row["grad_norm"] = grad_norm
            session.clock = (now, done)
        if (s.rankme_every and done % s.rankme_every == 0) or done == s.steps:
            rank, centered, limit = self._session_rankme(session)
            if row is None:
                row = {"step": done, "loss": round(totals["loss"], 6), "lr": lr}
            row.update(rankme=rank, rankme_centered=centered, rankme_max=limit)
        if row is not None and session.dist.main:
            session.result.metrics.append(row)
            if session.loggers is not None:
                session.loggers.log_metrics(done, row)
        if session.bar is not None:
            session.bar.update(1)
            post = {"loss": f"{totals['loss']:.4f}"}
            if row and "rankme" in row:
                post["rankme"] = f"{row['rankme']:.1f}"
            if row and "samples_per_s" in row:
                post["samples/s"] = f"{row['samples_per_s']:.0f}"
            session.bar.set_postfix(post)
        return row

    def _checkpoint_if_due(self, session: _Session, done: int,
                           row: dict[str, Any] | None) -> None:
        s = self.s
        if not ((s.checkpoint_every and done % s.checkpoint_every == 0) or done == s.steps):
            return
        if s.select == "rankme":
            session.scores[done] = (
                row["rankme_centered"] if row and "rankme_centered" in row
                else self._session_rankme(session)[1])
        if s.strategy == "fsdp":
            session.last_ckpt = self._checkpoint_sharded(session, done)
        else:
            session.last_ckpt = self._checkpoint(session.jepa, session.opt, done,
                                                 session.dist, session.scores)

    # -- the end ---------------------------------------------------------------------
    def _export(self, session: _Session) -> None:
        """Write ``encoder.safetensors`` (the last step, or the best-scored checkpoint
        under ``train.select = "rankme"``) and mark the run complete."""
        s, info, scores = self.s, session.info, session.scores
        state = self._export_state(session)  # under FSDP a collective: before the return
        if not session.dist.main:
            return
        chosen = best_step(scores) if s.select == "rankme" and scores else s.steps
        if chosen != s.steps:
            state = checkpoint_encoder_state(
                self.out / CHECKPOINT_DIR / f"step_{chosen:08d}", session.resolved)
        save_tensors(self.out / ENCODER_FILE, state,
                     metadata={"format": "polyjepa-encoder", "encoder":
                               str(session.resolved["encoder"].get("name")),
                               "step": str(chosen)})
        info["selected"] = {"by": s.select, "step": chosen}
        if s.select == "rankme":
            info["selected"]["rankme_centered"] = {str(k): v for k, v in scores.items()}
            if self.progress:
                print(f"exported the encoder of step {chosen} (highest centred RankMe, "
                      f"{scores.get(chosen, float('nan')):.2f})")
        info["status"] = "complete"
        info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        if s.steps == 0:
            info["untrained"] = True
            print(f"{self.out}: 0 steps, so the exported encoder is the random "
                  "initialisation (a baseline, not a pre-trained encoder)")
        atomic_write_json(self.out / RUN_FILE, info)

    # -- pieces ----------------------------------------------------------------------
    def _monitor_indices(self, n: int, seed: int) -> list[int]:
        k = min(self.s.rankme_samples, n)
        g = torch.Generator().manual_seed(seed + 12_345)
        return sorted(torch.randperm(n, generator=g)[:k].tolist())

    @torch.no_grad()
    def _rankme(self, enc: nn.Module, dataset: Any, indices: list[int],
                dist: DistInfo) -> tuple[float, float, int]:
        was_training = enc.training
        enc.eval()
        chunks, pool = [], encoder_pool(enc)
        for batch in eval_loader(dataset, self.s.eval_batch_size, indices):
            batch = move_to(batch, dist.device)
            chunks.append(pool_tokens(enc(batch).float(), batch_valid(batch), pool).cpu())
        enc.train(was_training)
        z = torch.cat(chunks).double()
        rank = float(effective_rank(z))
        # the collapse check ignores the shared mean embedding (see evaluators.RankMe)
        centered = centred_rank(z)
        limit = min(z.shape)
        if is_collapsed(centered, limit, self.s.collapse_rank) and dist.main:
            warn(f"RankMe {centered:.2f} (centred) of at most {limit}: the embeddings are "
                 "collapsing. Check the target (EMA momentum, SIGReg weight), the "
                 "learning rate and the masks.", CollapseWarning)
        return rank, centered, limit

    def _checkpoint(self, jepa: Any, opt: torch.optim.Optimizer, step: int,
                    dist: DistInfo, scores: dict[int, float]) -> Path | None:
        """Save a checkpoint; with ``train.select = "rankme"`` the best-scoring one is
        kept beside the newest, and the scores travel in its state (exact resume)."""
        path = None
        if dist.main:
            tensors, plain = optimizer_tensors(opt)
            tensors = {f"optim.{k}": v for k, v in tensors.items()}
            tensors["rng.torch"] = torch.get_rng_state()
            protect = {f"step_{best_step(scores):08d}"} if scores else set()
            path = save_checkpoint(self.out, step, jepa.state_dict(), tensors,
                                   {"optimizer": plain, "polyjepa_version": __version__,
                                    "rankme_centered": {str(k): v for k, v in scores.items()}},
                                   keep=self.s.keep_checkpoints, protect=protect)
        barrier()
        return path

    # -- sharded (FSDP) pieces -------------------------------------------------------
    def _sharded(self, dist: DistInfo) -> bool:
        """Whether this run wraps the JEPA with FSDP2 (``train.strategy = "fsdp"`` under
        several processes; a single process trains the plain model)."""
        return self.s.strategy == "fsdp" and dist.world > 1

    def _grad_sync(self, session: _Session, final: bool) -> Any:
        """The context of one micro-batch: gradients are reduced over ranks on the last
        micro-batch of a step only."""
        if session.dist.world <= 1:
            return contextlib.nullcontext()
        if session.plain is not None:
            session.model.set_requires_gradient_sync(final)
            return contextlib.nullcontext()
        return contextlib.nullcontext() if final else session.model.no_sync()

    def _export_state(self, session: _Session) -> dict[str, torch.Tensor]:
        """The exported encoder's full weights (under FSDP gathered on rank 0, empty
        elsewhere; every rank must call it)."""
        if session.plain is None:
            return session.jepa.export_encoder().state_dict()
        return export_state(full_state_dict(session.jepa), session.resolved)

    def _session_rankme(self, session: _Session) -> tuple[float, float, int]:
        """RankMe of the exported encoder; under FSDP computed on rank 0 from the gathered
        weights and sent to the other ranks."""
        if session.plain is None:
            return self._rankme(session.jepa.export_encoder(), session.dataset,
                                session.monitor, session.dist)
        state = self._export_state(session)
        out = None
        if session.dist.main:
            session.plain.load_state_dict(state)
            out = self._rankme(session.plain, session.dataset, session.monitor, session.dist)
        return broadcast_object(out)

    def _sharded_state(self, jepa: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
        """Model and optimizer state keyed by parameter name (each rank its shards)."""
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model, optim = get_state_dict(jepa, opt)
        return {"model": model, "optim": optim}

    def _checkpoint_sharded(self, session: _Session, step: int) -> Path | None:
        """Save a ``torch.distributed.checkpoint`` checkpoint (every rank its shards), with
        the exported encoder unsharded beside it so ``load_encoder(checkpoint=...)`` and
        ``train.select = "rankme"`` read it without the shards."""
        scores = session.scores
        encoder = self._export_state(session)
        protect = {f"step_{best_step(scores):08d}"} if scores else set()
        path = save_sharded_checkpoint(
            self.out, step, self._sharded_state(session.jepa, session.opt),
            {ENCODER_FILE: encoder, "trainer.safetensors": {"rng.torch": torch.get_rng_state()}},
            {"polyjepa_version": __version__,
             "rankme_centered": {str(k): v for k, v in scores.items()}},
            keep=self.s.keep_checkpoints, protect=protect)
        barrier()
        return path

    def _restore_sharded(self, path: Path, jepa: nn.Module,
                         opt: torch.optim.Optimizer) -> tuple[int, dict[int, float]]:
        """Resume from a sharded checkpoint, under any number of processes."""
        from torch.distributed.checkpoint.state_dict import set_state_dict

        if self.s.strategy != "fsdp":
            raise CheckpointError(f"checkpoint {path} is sharded (train.strategy = 'fsdp'); "
                                  "resume it with train.strategy = 'fsdp'")
        state = read_json(path / "state.json", "checkpoint state")
        sharded = self._sharded_state(jepa, opt)
        load_sharded_checkpoint(path, sharded)
        set_state_dict(jepa, opt, model_state_dict=sharded["model"],
                       optim_state_dict=sharded["optim"])
        extra = load_tensors(path / "trainer.safetensors")
        if "rng.torch" in extra:
            torch.set_rng_state(extra["rng.torch"])
        scores = {int(k): float(v) for k, v in (state.get("rankme_centered") or {}).items()}
        return int(state["step"]), scores

    def _restore(self, path: Path, jepa: Any,
                 opt: torch.optim.Optimizer) -> tuple[int, dict[int, float]]:
        if is_sharded_checkpoint(path):
            return self._restore_sharded(path, jepa, opt)
        if self.s.strategy == "fsdp":
            raise CheckpointError(f"checkpoint {path} is not a sharded checkpoint, but "
                                  "train.strategy = 'fsdp' resumes from sharded ones only")
        model, extra, state = load_checkpoint(path)
        try:
            jepa.load_state_dict(model)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path} does not match this model: {exc}") from exc
        optim = {k[len("optim."):]: v for k, v in extra.items() if k.startswith("optim.")}
        try:
            restore_optimizer(opt, optim, state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has no usable optimizer state: {exc}") from exc
        if "rng.torch" in extra:
            torch.set_rng_state(extra["rng.torch"])
        scores = {int(k): float(v) for k, v in (state.get("rankme_centered") or {}).items()}
        return int(state["step"]), scores


def train(config: dict[str, Any], out: str | Path, progress: bool = True,
          callbacks: list[Callable[[int, dict[str, Any]], None]] | None = None) -> TrainResult:
    """Pre-train a JEPA described by a full config into the run folder ``out``.

    An existing run folder with the same config is resumed from its latest checkpoint;
    one with a different config is left untouched and reported. The config is checked
    first (:func:`polyjepa.validation.check_config`), whichever way it was built.
    """
    check_config(config)
    return Trainer(config, out, progress=progress, callbacks=callbacks).run()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a run's ``metrics.jsonl`` (a torn last line is ignored)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def trim_metrics(run_dir: Path, step: int) -> None:
    """Drop rows past ``step`` (written after the checkpoint a resume starts from)."""
    rows = [r for r in read_metrics(run_dir) if int(r.get("step", 0)) <= step]
    if (run_dir / METRICS_FILE).exists():
        atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
