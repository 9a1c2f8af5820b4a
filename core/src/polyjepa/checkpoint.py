"""Safe, atomic checkpoints: safetensors for tensors, JSON for everything else.

Nothing here unpickles: a checkpoint that is not safetensors is refused with a message.
The one exception is resuming a run trained with ``train.strategy = "fsdp"``, whose sharded
checkpoints ``torch.distributed.checkpoint`` writes with a pickled ``.metadata`` index; the
run reads back only its own folder, and the encoder a user loads from such a checkpoint
comes from the ``encoder.safetensors`` written beside the shards.
Each checkpoint is written into a temporary folder and renamed into place, and the
``latest`` pointer is replaced atomically, so a run killed at any moment leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

CHECKPOINT_DIR = "checkpoints"
_STEP_NAME = re.compile(r"step_\d{8}")
_TMP_NAME = re.compile(r"\..+\.tmp-\d+")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file so readers see either the old or the new content, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Atomically write a safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(clean, str(tmp), metadata=metadata)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else is refused with a clear message."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"checkpoint {path} is empty or truncated ({len(head)} bytes)")
    if head[:2] == b"\x80\x02" or head[:2] == b"PK":
        raise CheckpointError(f"checkpoint {path} is a pickle/torch.save file; polyjepa only "
                              "loads safetensors checkpoints, which cannot run code")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file "
                              f"(corrupt or truncated?): {exc}") from exc


def read_json(path: str | Path, what: str = "file") -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {path} does not hold a JSON object")
    return data


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state into tensors (safetensors) and plain values (JSON)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value
            else:
                plain["state"].setdefault(str(idx), {})[key] = value
    return tensors, plain


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      plain: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in plain.get("state", {}).items():
        state.setdefault(int(idx), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(run_dir: Path, step: int, model: dict[str, torch.Tensor],
                    extra_tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    keep: int = 2, protect: set[str] | frozenset[str] = frozenset()) -> Path:
    """Write ``checkpoints/step_XXXXXXXX/`` atomically and point ``latest`` at it.

    The ``keep`` newest checkpoints stay, and so do those named in ``protect``.
    """
    root = run_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tmp / "model.safetensors", model)
    save_tensors(tmp / "trainer.safetensors", extra_tensors)
    atomic_write_json(tmp / "state.json", {**state, "step": step})
    _publish(root, tmp, final, keep, protect)
    return final


def _publish(root: Path, tmp: Path, final: Path, keep: int,
             protect: set[str] | frozenset[str]) -> None:
    """Rename a written checkpoint folder into place, point ``latest`` at it and drop the
    old ones beyond ``keep`` (except those in ``protect``)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    atomic_write_text(root / "latest", final.name + "\n")
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-max(keep, 1)]:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)


SHARDED_MARK = ".metadata"  # written by torch.distributed.checkpoint
EXPORT_FILE = "encoder.safetensors"


def is_sharded_checkpoint(folder: Path) -> bool:
    """Whether a checkpoint folder holds ``torch.distributed.checkpoint`` shards
    (``train.strategy = "fsdp"``) rather than ``model.safetensors``."""
    return (Path(folder) / SHARDED_MARK).is_file()


def save_sharded_checkpoint(run_dir: Path, step: int, sharded: dict[str, Any],
                            files: dict[str, dict[str, torch.Tensor]], state: dict[str, Any],
                            keep: int = 2,
                            protect: set[str] | frozenset[str] = frozenset()) -> Path | None:
    """Write ``checkpoints/step_XXXXXXXX/`` with ``torch.distributed.checkpoint``: every
    rank writes its shards of ``sharded`` (a collective), then rank 0 adds the safetensors
    ``files`` and ``state.json`` and renames the folder into place, as
    :func:`save_checkpoint` does. Returns the folder on rank 0, ``None`` elsewhere. The run
    folder must be on storage every rank sees (shared across nodes)."""
    import torch.distributed as tdist
    import torch.distributed.checkpoint as dcp

    distributed = tdist.is_available() and tdist.is_initialized()
    main = not distributed or tdist.get_rank() == 0
    box = [os.getpid()]
    if distributed:
        tdist.broadcast_object_list(box, src=0)
    root = run_dir / CHECKPOINT_DIR
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp-{box[0]}"
    if main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if distributed:
        tdist.barrier()
    tmp.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # a single process is meant here, not an accident
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save(sharded, checkpoint_id=str(tmp), no_dist=not distributed)
    if not main:
        return None
    for name, tensors in files.items():
        save_tensors(tmp / name, tensors)
    atomic_write_json(tmp / "state.json", {**state, "step": step, "format": "dcp"})
    _publish(root, tmp, final, keep, protect)
    return final


def load_sharded_checkpoint(path: Path, sharded: dict[str, Any]) -> None:
    """Fill ``sharded`` (a state dict of this rank's shards) from a checkpoint that
    :func:`save_sharded_checkpoint` wrote, under any world size."""
    import torch.distributed as tdist
    import torch.distributed.checkpoint as dcp

    distributed = tdist.is_available() and tdist.is_initialized()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(sharded, checkpoint_id=str(path), no_dist=not distributed)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read back into this model: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc


def export_state(full: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The exported encoder's weights out of a whole JEPA state dict: the EMA target where
    there is one, else the online encoder."""
    prefix = "target." if config["target"].get("kind", "ema") == "ema" else "encoder."
    return {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None``.

    The ``latest`` pointer is followed only to a ``step_N`` folder of this run: a pointer
    naming any other path (absolute, ``..``) is ignored, since every path a run folder
    names must stay inside it.
    """
    root = run_dir / CHECKPOINT_DIR
    pointer = root / "latest"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if _STEP_NAME.fullmatch(name) and (root / name / "state.json").is_file():
            return root / name
    done = kept_checkpoints(run_dir)
    return done[-1] if done else None


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete the half-written temporary files and checkpoint folders a killed writer left
    (``.step_N.tmp-PID``, ``.NAME.tmp-PID``). Call only while holding the run's lock."""
    run_dir = Path(run_dir)
    found = [p for root in (run_dir, run_dir / CHECKPOINT_DIR) if root.is_dir()
             for p in root.iterdir() if _TMP_NAME.fullmatch(p.name)]
    for p in found:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return found


def kept_checkpoints(run_dir: Path) -> list[Path]:
    """The run's complete checkpoint folders, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    return sorted(p for p in root.glob("step_*") if _STEP_NAME.fullmatch(p.name)
                  and (p / "state.json").is_file())


def checkpoint_step(folder: Path) -> int:
    """The training step a checkpoint folder (``step_00000200``) holds."""
    return int(Path(folder).name.split("_", 1)[1])


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                        dict[str, Any]]:
    """Model tensors, trainer tensors and JSON state of one checkpoint folder."""
    state = read_json(path / "state.json", "checkpoint state")
    return (load_tensors(path / "model.safetensors"),
            load_tensors(path / "trainer.safetensors"), state)


def checkpoint_encoder_state(ckpt: Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a user gets out of a checkpoint folder of a run trained under
    ``config``: the EMA target where there is one, else the online encoder."""
    if is_sharded_checkpoint(Path(ckpt)):
        # a sharded (FSDP) checkpoint also holds the exported encoder, unsharded
        return load_tensors(Path(ckpt) / EXPORT_FILE)
    return export_state(load_tensors(Path(ckpt) / "model.safetensors"), config)
