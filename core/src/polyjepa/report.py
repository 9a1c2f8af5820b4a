"""PNG plots of a run: training curves and a 2-D map of its embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError, DataError
from .settings import TrainSettings


def _curves(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    panels = [("loss", "training loss", True), ("rankme", "RankMe (effective rank)", False),
              ("lr", "learning rate", False)]
    for key, title, log in panels:
        pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
        if not pts:
            continue
        steps, values = zip(*pts)
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
        ax.plot(steps, values, marker="o" if len(pts) < 30 else None, lw=1.5)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.set_title(title)
        if log and min(values) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"{key}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def _embedding_map(emb: np.ndarray, labels: np.ndarray | None, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    z = PCA(n_components=2, random_state=0).fit_transform(emb - emb.mean(axis=0))
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    if labels is not None and labels.ndim == 1:
        classes = np.unique(labels)
        if len(classes) <= 20:
            cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
            for i, c in enumerate(classes):
                sel = labels == c
                ax.scatter(z[sel, 0], z[sel, 1], s=6, color=cmap(i % cmap.N), label=str(c))
            ax.legend(markerscale=2, fontsize=7, loc="best", title="label")
        else:
            sc = ax.scatter(z[:, 0], z[:, 1], s=6, c=labels, cmap="viridis")
            fig.colorbar(sc, ax=ax, label="label")
    else:
        ax.scatter(z[:, 0], z[:, 1], s=6, alpha=0.6)
    ax.set_title(f"embeddings (PCA), {len(emb)} samples")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    path = out / "embeddings.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run: str | Path, data: Any = None, out: str | Path | None = None) -> list[Path]:
    """Write ``loss.png``, ``rankme.png``, ``lr.png`` and ``embeddings.png`` for a run.

    The embedding map uses ``data`` when given, else the embeddings of the last
    ``polyjepa evaluate``, else the training data; points are coloured by label when the
    data has labels. The PNGs also go to the run's loggers (``log_artifact``).
    """
    from .api import Run, embed_dataset, load_encoder
    from .build import build_dataset

    r = Run(Path(run))
    if not (r.path / "run.json").is_file():
        raise CheckpointError(f"{r.path} is not a polyjepa run folder (no run.json)")
    target = Path(out) if out else r.path / "report"
    target.mkdir(parents=True, exist_ok=True)
    rows = r.metrics()
    if not rows:
        raise DataError(f"{r.path} has no metrics yet (metrics.jsonl is empty or missing)")
    written = _curves(rows, target)
    cached = r.path / "eval" / "embeddings.npz"
    if data is None and cached.is_file():
        with np.load(cached) as f:
            emb = f["embeddings"]
            labels = f["labels"] if "labels" in f.files else None
    else:
        encoder = load_encoder(r)
        cfg = r.config
        dataset = build_dataset(cfg, data, state=cfg.get("dataset_state") or None)
        emb, labels, _ = embed_dataset(encoder, dataset,
                                       TrainSettings.from_config(cfg).eval_batch_size)
    if len(emb) >= 3:
        written.append(_embedding_map(emb, labels, target))
    from .loggers import log_to_run

    log_to_run(r.path, artifacts=written)
    return written
