"""Export a run's encoder as a self-describing folder that loads without the run.

The folder holds ``encoder.safetensors``, ``config.json`` (the resolved config),
``polyjepa.json`` (the format marker: encoder, plugins, steps) and a ``README.md`` model
card with Hugging Face front matter, so it can be shared as it is, or pushed to the
Hugging Face Hub. :func:`polyjepa.load_encoder`, ``embed`` and ``evaluate`` accept it in
place of a run folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError

FORMAT = "polyjepa-encoder"
FORMAT_VERSION = 1
MARKER_FILE = "polyjepa.json"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
REPORT_DIR = "report"


class PushError(CheckpointError):
    """The folder was exported, but uploading it to the Hugging Face Hub failed."""


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an exported encoder folder (``polyjepa.json``, no run file)."""
    path = Path(path)
    return (path / MARKER_FILE).is_file() and not (path / "run.json").is_file()


def export_info(path: str | Path) -> dict[str, Any]:
    """An export folder read like a run file: ``config``, ``plugins``, ``selected`` ...

    The marker's format and version are checked, so a folder from a newer polyjepa, or
    any other ``polyjepa.json``, is refused with a message rather than misread.
    """
    from .checkpoint import read_json

    path = Path(path)
    marker = read_json(path / MARKER_FILE, "encoder marker")
    if marker.get("format") != FORMAT:
        raise CheckpointError(f"{path / MARKER_FILE} is not a polyjepa encoder marker "
                              f"(format {marker.get('format')!r}, expected {FORMAT!r})")
    version = marker.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was exported in format version {version!r}; this "
                              f"polyjepa reads up to version {FORMAT_VERSION}: upgrade "
                              "polyjepa (pip install -U polyjepa)")
    config = read_json(path / CONFIG_FILE, "encoder config")
    return {"config": config, "status": "complete", "exported": True,
            "plugins": list(marker.get("plugin_modules") or []),
            "selected": marker.get("selected"),
            "polyjepa_version": marker.get("polyjepa_version"), "marker": marker}


# -- what goes into the folder -------------------------------------------------------------

def _checkpoint_path(run_path: Path, checkpoint: str | int | Path | None) -> Path | None:
    """``--checkpoint`` as a path: a step number (``200``), a checkpoint folder name
    (``step_00000200``), or a path to a checkpoint folder or encoder safetensors file."""
    from .checkpoint import CHECKPOINT_DIR, kept_checkpoints

    if checkpoint is None:
        return None
    text = str(checkpoint)
    if text.isdigit():
        path = run_path / CHECKPOINT_DIR / f"step_{int(text):08d}"
    else:
        path = Path(text)
        if not path.is_absolute() and not path.exists():
            path = run_path / CHECKPOINT_DIR / path
    if not path.exists():
        kept = ", ".join(p.name.split("_", 1)[1].lstrip("0") or "0"
                         for p in kept_checkpoints(run_path)) or "none"
        raise CheckpointError(f"checkpoint {checkpoint!r} is not in {run_path} "
                              f"(kept checkpoint steps: {kept})")
    return path


def _weights_step(run: Any, ckpt: Path | None) -> tuple[int | None, dict[str, Any]]:
    """The training step of the exported weights and how they were chosen."""
    from .checkpoint import checkpoint_step, latest_checkpoint
    from .trainer import ENCODER_FILE

    if ckpt is not None:
        if ckpt.is_dir():
            step: int | None = checkpoint_step(ckpt)
        else:
            step = _metadata_step(ckpt)
        return step, {"by": "checkpoint", "step": step, "checkpoint": ckpt.name}
    if (run.path / ENCODER_FILE).is_file():
        selected = dict(run.info.get("selected") or {})
        step = selected.get("step", _metadata_step(run.path / ENCODER_FILE))
        selected.setdefault("by", "last")
        selected.setdefault("step", step)
        return step, selected
    latest = latest_checkpoint(run.path)
    step = checkpoint_step(latest) if latest is not None else None
    return step, {"by": "latest checkpoint", "step": step}


def _metadata_step(path: Path) -> int | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            value = (f.metadata() or {}).get("step")
        return int(value) if value is not None else None
    except Exception:  # noqa: BLE001 - a file without (readable) metadata has no step
        return None


def _plugins(run: Any, config: dict[str, Any]) -> list[str]:
    """The distributions and modules the encoder and its data reader come from."""
    from .components import component_entry

    needed = [str(m) for m in run.info.get("plugins") or []]
    for kind, section in (("encoders", "encoder"), ("datasets", "dataset")):
        name = (config.get(section) or {}).get("name")
        if name:
            entry = component_entry(kind, name)
            needed.append(entry.distribution or entry.plugin)
    return list(dict.fromkeys(needed))


def _domain(config: dict[str, Any]) -> str:
    """The tag naming the data domain: the encoder's plugin, else the recipe's name."""
    from .components import component_entry

    plugin = component_entry("encoders", config["encoder"]["name"]).plugin
    if plugin != "polyjepa" and re.fullmatch(r"[A-Za-z0-9_-]+", plugin):
        return plugin
    return str(config.get("recipe") or config["encoder"]["name"]).split(".", 1)[0]


def _latest_evaluation(run_path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest ``<run>/eval*/metrics.json`` that :func:`polyjepa.evaluate` wrote."""
    found = []
    for path in run_path.glob("eval*/metrics.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            found.append((str(data.get("evaluated") or ""), path.stat().st_mtime, path, data))
    if not found:
        return None
    *_, path, data = max(found, key=lambda t: (t[0], t[1]))
    return path, data


def _quality_lines(run_path: Path) -> list[str]:
    """The run's lines of the quality table, when the run is one of a quality task's
    runs (``<task>-<steps>-s<seed>``) and a ``quality.md`` lies in a folder above it."""
    match = re.fullmatch(r"(.+)-(\d+)-s\d+", run_path.name)
    if not match:
        return []
    task, steps = match.group(1), match.group(2)
    for folder in list(run_path.resolve().parents)[:4]:
        table = folder / "quality.md"
        if not table.is_file():
            continue
        header: list[str] = []
        for line in table.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("| data |"):
                header = [line]
            elif header and line.startswith("| ---"):
                header.append(line)
            elif header and line.startswith("|") and cells[:1] == [task] and \
                    len(cells) > 3 and cells[3] == steps:
                return [*header, line]
        return []
    return []


def _yaml(data: Any, flow: bool | None = None) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False,
                          default_flow_style=flow, width=88)


def _data_description(config: dict[str, Any]) -> str:
    demo = config.get("demo") or {}
    demo_dataset = ((demo.get("overrides") or {}).get("dataset") or {}).get("name")
    dataset = (config.get("dataset") or {}).get("name")
    if demo.get("description") and config.get("data") == demo.get("data") and \
            (demo_dataset is None or demo_dataset == dataset):
        return (f"The recipe's demo data ({demo.get('kind', 'real')}): "
                f"{demo['description']}.")
    text = f"`{config.get('data')}`, read by the dataset reader `{dataset}`."
    if config.get("dataset_state"):
        text += (" Data given to `embed` or `evaluate` is prepared with the training "
                 "data's statistics, stored in `config.json` (`dataset_state`).")
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def model_card(marker: dict[str, Any], config: dict[str, Any], rows: list[dict[str, Any]],
               evaluation: tuple[Path, dict[str, Any]] | None, quality: list[str],
               images: list[str], license: str | None = None, repo: str | None = None,
               complete: bool = True) -> str:
    """The ``README.md`` of an export: Hugging Face front matter, then what the encoder
    was trained on, how well, its config and how to load it."""
    domain = marker["domain"]
    front = {"library_name": "polyjepa", "license": license or "unknown",
             "tags": list(dict.fromkeys(["jepa", "self-supervised", domain]))}
    name = marker["recipe"] or marker["encoder"]
    out = ["---", _yaml(front, flow=False).rstrip(), "---", "",
           f"# polyjepa {name} encoder", "",
           f"A `{marker['encoder']}` encoder ({marker['embed_dim']}-dimensional embeddings) "
           "pre-trained without labels as a Joint-Embedding Predictive Architecture (JEPA) "
           f"with [polyjepa](https://pypi.org/project/polyjepa/) "
           f"{marker['polyjepa_version']}.", ""]
    out += ["## Data", "", _data_description(config), ""]

    train = config.get("train") or {}
    losses = [r for r in rows if r.get("loss") is not None]
    ranks = [r for r in rows if r.get("rankme") is not None]
    selected = marker.get("selected") or {}
    summary = [("training steps", _fmt(train.get("steps"))),
               ("weights from", f"step {_fmt(marker['trained_steps'])} "
                                f"(chosen by: {selected.get('by', 'last')})"),
               ("batch size", _fmt(train.get("batch_size"))),
               ("learning rate", _fmt(train.get("lr"))),
               ("target", _fmt((config.get("target") or {}).get("kind"))),
               ("final loss", _fmt(losses[-1]["loss"]) if losses else "-"),
               ("RankMe", _fmt(ranks[-1]["rankme"]) if ranks else "-"),
               ("RankMe (centred)", _fmt(ranks[-1].get("rankme_centered")) if ranks else "-")]
    out += ["## Training", ""]
    if not complete:
        out += ["Training had not finished when this encoder was exported.", ""]
    out += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in summary], ""]

    out += ["## Evaluation", ""]
    if evaluation is None and not quality:
        out += ["No evaluation was run before export (`polyjepa evaluate RUN` adds one).", ""]
    if evaluation is not None:
        _, ev = evaluation
        out += [f"Frozen embeddings of `{ev.get('data')}` (evaluated {ev.get('evaluated')}):",
                "", "| metric | value |", "| --- | --- |",
                *[f"| {k} | {_fmt(v)} |" for k, v in ev["metrics"].items()], ""]
    if quality:
        out += ["Against the same encoder at random init and the field's baselines (one "
                "probe, one split; polyjepa's quality table):", "", *quality, ""]
    for image in images:
        out += [f"![{Path(image).stem}]({image})", ""]

    shown = {k: v for k, v in config.items() if k not in ("dataset_state", "demo")}
    out += ["## Config", "",
            "The resolved config (recipe " + (f"`{marker['recipe']}`" if marker["recipe"]
                                               else "none") + "); `config.json` holds it in "
            "full, with the training data's statistics.", "",
            "```yaml", _yaml(shown).rstrip(), "```", ""]

    modules = set(marker.get("plugin_modules") or [])
    pip = " ".join(p for p in marker["plugins"] if p not in modules) or "polyjepa"
    fetch = ['folder = "path/to/this/folder"']
    if repo:
        fetch = ["from huggingface_hub import snapshot_download", "",
                 f'folder = snapshot_download("{repo}")']
        pip += " huggingface_hub"
    out += ["## Use", "", "```bash", f"pip install {pip}", "```", "", "```python",
            "import polyjepa as pj", *fetch,
            "encoder = pj.load_encoder(folder)              # torch.nn.Module, eval mode",
            f'emb = pj.embed(folder, data="your-data")       # numpy [N, '
            f"{marker['embed_dim']}]",
            "```", "",
            "The plugins the encoder needs: " + ", ".join(f"`{p}`" for p in marker["plugins"])
            + ".", ""]
    return "\n".join(out)


# -- writing the folder --------------------------------------------------------------------

def _check_target(out: Path, run_path: Path) -> None:
    out_r, run_r = out.resolve(), run_path.resolve()
    if out_r == run_r or run_r in out_r.parents or out_r in run_r.parents:
        raise ConfigError(f"{out} overlaps the run folder {run_path}; export into a folder "
                          "outside it (the run is never modified)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; export into a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).is_file():
        raise ConfigError(f"{out} is not empty and holds no exported encoder "
                          f"(no {MARKER_FILE}); export into a new or empty folder")


def _readable(path: Path) -> None:
    """Make a file readable by all (the safetensors writer leaves it private), since
    the folder is made to be shared."""
    os.chmod(path, 0o644)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` into place; a previous export is replaced."""
    if out.is_dir() and any(out.iterdir()):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)  # a missing or empty folder


def _hub() -> Any:
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ConfigError("pushing to the Hugging Face Hub needs the huggingface_hub "
                          "package: pip install huggingface_hub (or "
                          "pip install 'polyjepa[hub]')") from None
    return HfApi


def push_folder(folder: str | Path, repo: str, private: bool = False) -> str:
    """Upload an exported folder to the Hugging Face Hub model repo ``repo``; returns
    its address. Failures name the local folder, which stays as it is."""
    hf_api = _hub()
    folder = Path(folder)
    try:
        api = hf_api()
        api.create_repo(repo_id=repo, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model",
                          commit_message="polyjepa export")
    except Exception as exc:
        why = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()),
                   type(exc).__name__)
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            why += " (log in with `hf auth login` or set HF_TOKEN, with write access)"
        raise PushError(f"the encoder is exported locally at {folder}, but the push to "
                        f"{repo} failed: {type(exc).__name__}: {why}") from exc
    return f"https://huggingface.co/{repo}"


def export(run: Any, out: str | Path, checkpoint: str | int | Path | None = None,
           push: str | None = None, private: bool = False,
           license: str | None = None) -> Path:
    """Write the run's encoder into the folder ``out`` so it loads without the run.

    ``checkpoint`` picks other weights than the run's ``encoder.safetensors``: a step
    (``200``), a checkpoint folder name or path, or a safetensors file. ``out`` must be
    new, empty or an earlier export (which is replaced); it is written atomically and
    the run is only read. ``push="user/name"`` then uploads it to the Hugging Face Hub
    (``private`` for a private repo). ``license`` goes into the model card.

    >>> export("runs/ecg1", "exports/ecg1")
    """
    from . import __version__
    from .api import Run, _run, load_encoder
    from .checkpoint import atomic_write_json, atomic_write_text, save_tensors
    from .tokens import encoder_pool
    from .trainer import ENCODER_FILE

    path = run.path if isinstance(run, Run) else Path(run)
    if not (path / "run.json").is_file():
        what = "an exported encoder already" if is_export(path) else "not a run folder"
        raise CheckpointError(f"{path} is {what} (no run.json); export takes a run folder")
    out = Path(out)
    _check_target(out, path)
    if push:
        _hub()
    r = _run(path)
    config = r.config
    ckpt = _checkpoint_path(r.path, checkpoint)
    encoder = load_encoder(r, checkpoint=ckpt)
    step, selected = _weights_step(r, ckpt)
    marker = {"format": FORMAT, "version": FORMAT_VERSION, "polyjepa_version": __version__,
              "recipe": config.get("recipe"), "encoder": config["encoder"]["name"],
              # the width of the embeddings users get (pooled as the run's eval.pool)
              "embed_dim": int(getattr(encoder, "embed_dim", 0))
              * (2 if encoder_pool(encoder) == "mean+max" else 1),
              "pool": encoder_pool(encoder),
              "plugins": _plugins(r, config),
              "plugin_modules": [str(m) for m in r.info.get("plugins") or []],
              "domain": _domain(config), "trained_steps": step, "selected": selected}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_tensors(tmp / ENCODER_FILE, encoder.state_dict(),
                     metadata={"format": FORMAT, "encoder": str(marker["encoder"]),
                               "step": str(step)})
        _readable(tmp / ENCODER_FILE)
        atomic_write_json(tmp / CONFIG_FILE, config)
        atomic_write_json(tmp / MARKER_FILE, marker)
        images = []
        pngs = sorted((r.path / REPORT_DIR).glob("*.png"))
        if pngs:
            (tmp / REPORT_DIR).mkdir()
            for png in pngs:
                shutil.copy2(png, tmp / REPORT_DIR / png.name)
                images.append(f"{REPORT_DIR}/{png.name}")
        card = model_card(marker, config, r.metrics(), _latest_evaluation(r.path),
                          _quality_lines(r.path), images, license=license, repo=push,
                          complete=r.complete)
        atomic_write_text(tmp / CARD_FILE, card)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if push:
        push_folder(out, push, private=private)
    return out

