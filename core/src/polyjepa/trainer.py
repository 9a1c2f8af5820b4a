"""One training loop for every domain.

AdamW with warm-up + cosine (or constant + cool-down) learning rate, cosine weight-decay
and linear EMA-momentum schedules; bf16 autocast; gradient clipping and accumulation;
DDP under ``torchrun`` with rank-sharded batches; RankMe monitoring with a collapse
warning; a NaN guard; atomic safetensors checkpoints with exact resume; a progress bar
and ``metrics.jsonl`` in the run folder (and TensorBoard scalars when it is installed).

Determinism: the data order of global batch ``i`` and the masks of that batch are pure
functions of ``(seed, i)``, so two runs with one seed, a resumed run and a data-parallel
run all see the same samples and masks.
"""

from __future__ import annotations

import contextlib
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
    kept_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    optimizer_tensors,
    read_json,
    remove_leftovers,
    restore_optimizer,
    save_checkpoint,
    save_tensors,
)
from .checks import check_masks, check_tokens
from .config import data_for_json
from .data import eval_loader, move_to, train_loader
from .distributed import DistInfo, all_gather_cat, all_reduce_mean, barrier, init_distributed
from .errors import CheckpointError, ConfigError, TrainingDiverged, warn
from .evaluators import centred_rank, effective_rank
from .plugins import loaded_plugin_modules
from .runlock import RunLock
from .schedules import cosine_ramp, learning_rate, linear_ramp
from .tokens import batch_valid, pool_tokens
from .validation import check_config

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ENCODER_FILE = "encoder.safetensors"

# config keys that change logging only, never the weights: they may differ on resume
_COSMETIC = {("train", k) for k in ("log_every", "rankme_every", "rankme_samples",
                                    "checkpoint_every", "keep_checkpoints", "num_workers",
                                    "collapse_rank", "device", "tensorboard")}
_COSMETIC_SECTIONS = {"evaluators", "eval", "demo", "recipe"}


SELECT = ("last", "rankme")


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


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for section in sorted(set(a) | set(b)):
        if section in _COSMETIC_SECTIONS:
            continue
        va, vb = a.get(section), b.get(section)
        if isinstance(va, dict) and isinstance(vb, dict):
            for key in sorted(set(va) | set(vb)):
                if (section, key) in _COSMETIC:
                    continue
                if json.dumps(va.get(key), sort_keys=True, default=str) != \
                        json.dumps(vb.get(key), sort_keys=True, default=str):
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


def mask_generator(seed: int, global_batch_index: int) -> torch.Generator:
    """The generator for the masks of one global batch (same on every rank)."""
    return torch.Generator().manual_seed((seed + 1) * 7_919 + global_batch_index * 104_729)


class Trainer:
    """Runs one JEPA pre-training into a run folder; see :func:`train`."""

    def __init__(self, config: dict[str, Any], out: str | Path, progress: bool = True,
                 callbacks: list[Callable[[int, dict[str, Any]], None]] | None = None):
        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.callbacks = list(callbacks or [])
        self.t = dict(config["train"])

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
            diff = _differences(old.get("config", {}), resolved)
            if diff:
                raise ConfigError(
                    f"{self.out} already holds a different run (differs in: "
                    f"{', '.join(diff)}); its results are kept. Choose another --out.")
            return old
        info = {"config": resolved, "status": "running", "polyjepa_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "world_size": dist.world,
                "plugins": loaded_plugin_modules()}
        if dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_file, info)
        return info

    def run(self) -> TrainResult:
        dist = init_distributed(self.t.get("device", "auto"))
        if not dist.main:
            return self._run(dist)
        with RunLock(self.out):
            remove_leftovers(self.out)
            return self._run(dist)

    def _run(self, dist: DistInfo) -> TrainResult:
        t = self.t
        seed = int(t["seed"])
        torch.manual_seed(seed)
        dataset = build_dataset(self.config)
        resolved = resolve_components(self.config, dataset)
        info = self._prepare_run_dir(resolved, dist)
        steps = int(t["steps"])
        select = str(t.get("select", "last"))
        if select not in SELECT:
            raise ConfigError(f"train.select must be one of {', '.join(SELECT)}, got {select!r}")
        if info.get("status") == "complete" and (self.out / ENCODER_FILE).exists():
            if dist.main:
                print(f"{self.out}: run already complete ({steps} steps); nothing to do")
            return TrainResult(self.out, steps, read_metrics(self.out))
        barrier()

        torch.manual_seed(seed)
        jepa = build_jepa(resolved).to(dist.device)
        masker = build_masker(resolved)
        opt = torch.optim.AdamW(_param_groups(jepa), lr=float(t["lr"]),
                                betas=tuple(t.get("betas", (0.9, 0.999))))
        start = 0
        scores: dict[int, float] = {}  # centred RankMe of each checkpoint (train.select)
        ckpt = latest_checkpoint(self.out)
        if ckpt is not None:
            start, scores = self._restore(ckpt, jepa, opt)
            if dist.main:
                print(f"resuming {self.out} from step {start}")
        if dist.main:
            trim_metrics(self.out, start)

        model: nn.Module = jepa
        if dist.world > 1:
            model = nn.parallel.DistributedDataParallel(
                jepa, device_ids=[dist.device.index] if dist.device.type == "cuda" else None,
                broadcast_buffers=False)

        accum = int(t.get("accumulate", 1))
        bs = int(t["batch_size"])
        loader = iter(train_loader(dataset, bs, seed, start * accum, dist.rank, dist.world,
                                   int(t.get("num_workers", 0))))
        amp = _autocast_dtype(t.get("precision", "auto"), dist.device)
        monitor = self._monitor_indices(len(dataset), seed)
        result = TrainResult(self.out, steps, read_metrics(self.out) if dist.main else [])
        bar = None
        if dist.main and self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, initial=start, desc=f"pretrain {self.out.name}",
                       unit="step", dynamic_ncols=True)
        board = _tensorboard(self.out, t.get("tensorboard", "auto")) if dist.main else None
        per_rank = bs // dist.world
        last_time = time.perf_counter()
        last_step = start
        last_ckpt = ckpt
        params = [p for p in jepa.parameters() if p.requires_grad]
        try:
            for step in range(start, steps):
                lr = learning_rate(step, steps, float(t["lr"]), float(t.get("min_lr", 0.0)),
                                   int(t.get("warmup_steps", 0)), t.get("schedule", "cosine"),
                                   float(t.get("cooldown", 0.2)))
                wd = cosine_ramp(step, steps, float(t.get("weight_decay", 0.0)),
                                 float(t.get("weight_decay_end", t.get("weight_decay", 0.0))))
                for group in opt.param_groups:
                    group["lr"] = lr
                    if group.get("apply_wd"):
                        group["weight_decay"] = wd
                totals: dict[str, float] = {}
                for micro in range(accum):
                    gidx = step * accum + micro
                    batch = move_to(next(loader), dist.device)
                    first = step == start and micro == 0
                    grid = (check_tokens(jepa.encoder, batch, resolved) if first
                            else jepa.encoder.grid(batch))
                    valid = batch_valid(batch)
                    if valid is not None and dist.world > 1:
                        valid = all_gather_cat(valid)
                    gen = mask_generator(seed, gidx)
                    masks = masker(grid, bs, gen, valid=valid)
                    masks = masks.rows(dist.rank * per_rank, (dist.rank + 1) * per_rank)
                    if first:
                        check_masks(masks, math.prod(grid), per_rank, resolved)
                    masks = masks.to(dist.device)
                    sync = contextlib.nullcontext()
                    if dist.world > 1 and micro < accum - 1:
                        sync = model.no_sync()
                    with sync, torch.autocast(dist.device.type, dtype=amp or torch.float32,
                                              enabled=amp is not None):
                        out = model(batch, masks, gen)
                    with sync:
                        (out["loss"] / accum).backward()
                    for k, v in out.items():
                        totals[k] = totals.get(k, 0.0) + float(v.detach()) / accum
                vals = all_reduce_mean(torch.tensor(list(totals.values()), dtype=torch.float64))
                totals = dict(zip(totals, vals.tolist()))
                if not math.isfinite(totals["loss"]):
                    where = f" ({last_ckpt})" if last_ckpt else ""
                    raise TrainingDiverged(
                        f"loss became {totals['loss']} at step {step + 1}; stopped before "
                        f"saving these weights, the last good checkpoint{where} is kept. "
                        "Try a lower train.lr, more warm-up, or train.precision = 'fp32'.")
                grad_norm = None
                if t.get("clip_grad"):
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(params,
                                                                     float(t["clip_grad"])))
                opt.step()
                opt.zero_grad(set_to_none=True)
                momentum = linear_ramp(step, steps, float(resolved["target"].get("momentum", 0.996)),
                                       float(resolved["target"].get("momentum_end", 1.0)))
                jepa.update_target(momentum)

                done = step + 1
                row: dict[str, Any] | None = None
                if done % int(t.get("log_every", 10)) == 0 or done == steps:
                    now = time.perf_counter()
                    row = {"step": done, **{k: round(v, 6) for k, v in totals.items()},
                           "lr": lr, "weight_decay": wd, "momentum": momentum,
                           "samples_per_s": (done - last_step) * bs * accum / max(now - last_time, 1e-9)}
                    if grad_norm is not None:
                        row["grad_norm"] = grad_norm
                    last_time, last_step = now, done
                rankme_every = int(t.get("rankme_every", 0) or 0)
                if (rankme_every and done % rankme_every == 0) or done == steps:
                    rank, centered, limit = self._rankme(jepa, dataset, monitor, dist)
                    if row is None:
                        row = {"step": done, "loss": round(totals["loss"], 6), "lr": lr}
                    row["rankme"] = rank
                    row["rankme_centered"] = centered
                    row["rankme_max"] = limit
                if row is not None and dist.main:
                    append_metrics(self.out, row)
                    result.metrics.append(row)
                    if board is not None:
                        for key, value in row.items():
                            if key != "step" and isinstance(value, (int, float)):
                                board.add_scalar(key, value, done)
                if bar is not None:
                    bar.update(1)
                    post = {"loss": f"{totals['loss']:.4f}"}
                    if row and "rankme" in row:
                        post["rankme"] = f"{row['rankme']:.1f}"
                    if row and "samples_per_s" in row:
                        post["samples/s"] = f"{row['samples_per_s']:.0f}"
                    bar.set_postfix(post)
                ckpt_every = int(t.get("checkpoint_every", 0) or 0)
                if (ckpt_every and done % ckpt_every == 0) or done == steps:
                    if select == "rankme":
                        scores[done] = (row["rankme_centered"] if row and "rankme_centered"
                                        in row else self._rankme(jepa, dataset, monitor, dist)[1])
                    last_ckpt = self._checkpoint(jepa, opt, done, dist, scores)
                for cb in self.callbacks:
                    cb(done, row or {"step": done, "loss": totals["loss"]})
        finally:
            if bar is not None:
                bar.close()
            if board is not None:
                board.close()
        if dist.main:
            chosen = best_step(scores) if select == "rankme" and scores else steps
            state = jepa.export_encoder().state_dict()
            if chosen != steps:
                state = checkpoint_encoder_state(
                    self.out / CHECKPOINT_DIR / f"step_{chosen:08d}", resolved)
            save_tensors(self.out / ENCODER_FILE, state,
                         metadata={"format": "polyjepa-encoder", "encoder":
                                   str(resolved["encoder"].get("name")), "step": str(chosen)})
            info["selected"] = {"by": select, "step": chosen}
            if select == "rankme":
                info["selected"]["rankme_centered"] = {str(k): v for k, v in scores.items()}
                if self.progress:
                    print(f"exported the encoder of step {chosen} (highest centred RankMe, "
                          f"{scores.get(chosen, float('nan')):.2f})")
            info["status"] = "complete"
            info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            if steps == 0:
                info["untrained"] = True
                print(f"{self.out}: 0 steps, so the exported encoder is the random "
                      "initialisation (a baseline, not a pre-trained encoder)")
            atomic_write_json(self.out / RUN_FILE, info)
        barrier()
        return result

    # -- pieces ----------------------------------------------------------------------
    def _monitor_indices(self, n: int, seed: int) -> list[int]:
        k = min(int(self.t.get("rankme_samples", 512)), n)
        g = torch.Generator().manual_seed(seed + 12_345)
        return sorted(torch.randperm(n, generator=g)[:k].tolist())

    @torch.no_grad()
    def _rankme(self, jepa: Any, dataset: Any, indices: list[int],
                dist: DistInfo) -> tuple[float, float, int]:
        enc = jepa.export_encoder()
        was_training = enc.training
        enc.eval()
        chunks = []
        bs = int(self.config.get("eval", {}).get("batch_size", 128))
        for batch in eval_loader(dataset, bs, indices):
            batch = move_to(batch, dist.device)
            chunks.append(pool_tokens(enc(batch).float(), batch_valid(batch)).cpu())
        enc.train(was_training)
        z = torch.cat(chunks).double()
        rank = float(effective_rank(z))
        # the collapse check ignores the shared mean embedding (see evaluators.RankMe)
        centered = centred_rank(z)
        limit = min(z.shape)
        if is_collapsed(centered, limit, float(self.t.get("collapse_rank", 0.02))) and dist.main:
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
                                   keep=int(self.t.get("keep_checkpoints", 2)), protect=protect)
        barrier()
        return path

    def _restore(self, path: Path, jepa: Any,
                 opt: torch.optim.Optimizer) -> tuple[int, dict[int, float]]:
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


def _tensorboard(out: Path, setting: Any) -> Any:
    """A TensorBoard writer into ``<run>/tensorboard`` when asked for or installed."""
    if setting in (False, "false", "off", 0):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        if setting is True:
            raise ConfigError("train.tensorboard = true needs the tensorboard package: "
                              "pip install tensorboard") from exc
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


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
