"""Built-in dataset readers: N-d arrays from ``.npy``/``.npz`` files, and scikit-learn digits."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .data import ArrayDataset
from .errors import DataError


def _load_arrays(data: Any) -> tuple[dict[str, np.ndarray], str]:
    if isinstance(data, np.ndarray):
        return {"x": data}, "<array>"
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], np.ndarray):
        return dict(zip(("x", "y"), data)), "<arrays>"
    if isinstance(data, dict):
        return {k: np.asarray(v) for k, v in data.items()}, "<dict>"
    if data is None:
        raise DataError("the 'array' dataset needs data: a .npy or .npz file")
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            return {"x": np.load(path, allow_pickle=False)}, str(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if "x" not in arrays:
                raise DataError(f"{path}: an .npz file needs an array named 'x' "
                                f"(found {sorted(arrays)})")
            return arrays, str(path)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read the array file (corrupt or truncated?): "
                        f"{exc}") from exc
    raise DataError(f"{path}: the 'array' dataset reads .npy or .npz files")


class NDArrayDataset(ArrayDataset):
    """Arrays ``[N, C, *spatial]`` or ``[N, *spatial]`` (single channel).

    Values are standardised per channel with statistics of the training data (kept in
    ``state`` and reused on new data). ``encoder_hints`` gives the generic ViT its channel
    count, rank and a patch size that makes a grid of about 14 tokens per axis.
    """

    def __init__(self, data: Any = None, spatial_dims: int | None = None,
                 state: dict[str, Any] | None = None, normalize: bool = True):
        arrays, source = _load_arrays(data)
        x = np.asarray(arrays["x"])
        if x.ndim < 2:
            raise DataError(f"{source}: need at least [N, length], got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{source}: array dtype {x.dtype} is not numeric")
        if spatial_dims is None:
            spatial_dims = x.ndim - 1 if x.ndim <= 3 else x.ndim - 2
        if x.ndim - 1 == spatial_dims:
            x = x[:, None]
        if x.ndim != spatial_dims + 2:
            raise DataError(f"{source}: shape {x.shape} does not fit {spatial_dims} spatial dims")
        x = x.astype(np.float32)
        if normalize:
            axes = (0, *range(2, x.ndim))
            if state and "mean" in state:
                mean = np.asarray(state["mean"], np.float32)
                std = np.asarray(state["std"], np.float32)
                if mean.shape[0] != x.shape[1]:
                    raise DataError(f"{source}: {x.shape[1]} channels, the run was trained "
                                    f"on {mean.shape[0]}")
            else:
                mean = np.nanmean(x, axis=axes) if x.size else np.zeros(x.shape[1])
                std = np.nanstd(x, axis=axes) if x.size else np.ones(x.shape[1])
            shape = (1, -1) + (1,) * spatial_dims
            x = (x - mean.reshape(shape)) / np.maximum(std, 1e-6).reshape(shape)
        super().__init__(x, arrays.get("y"), arrays.get("valid"), arrays.get("group"),
                         source=source)
        if normalize:
            self.state = {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()}
        spatial = x.shape[2:]
        self.encoder_hints = {"in_chans": int(x.shape[1]), "ndim": int(spatial_dims),
                              "patch_size": [max(1, s // 14) for s in spatial]}


def digits(data: Any = None, state: dict[str, Any] | None = None,
           normalize: bool = True) -> NDArrayDataset:
    """scikit-learn's bundled handwritten digits (real, 1,797 images of 8x8, 10 classes).

    ``data`` is ignored: the images ship with scikit-learn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None]
    return NDArrayDataset({"x": images, "y": bunch.target.astype(np.int64)}, spatial_dims=2,
                          state=state, normalize=normalize)


def array_recipe() -> dict[str, Any]:
    """Generic JEPA for arrays: ViT over N-d patches, multi-block masks, EMA target."""
    return {
        "dataset": {"name": "array"},
        "encoder": {"name": "vit", "embed_dim": 192, "depth": 6, "num_heads": 6},
        "masker": {"name": "multiblock"},
        "predictor": {"name": "transformer", "dim": 96, "depth": 3, "num_heads": 4},
        "demo": {
            "data": None,
            "kind": "real",
            "description": "scikit-learn's handwritten digits (1,797 real 8x8 scans)",
            "task": "polyjepa.quality:digits_demo_task",
            "overrides": {
                "dataset": {"name": "digits"},
                "encoder": {"embed_dim": 64, "depth": 3, "num_heads": 4},
                "predictor": {"dim": 32, "depth": 2, "num_heads": 2},
                "masker": {"num_targets": 4, "target_scale": [0.1, 0.2]},
                # on 1,797 tiny images the EMA teacher tends to collapse; SIGReg does not
                "target": {"kind": "sigreg"},
                "train": {"steps": 300, "batch_size": 64, "warmup_steps": 30, "lr": 1e-3,
                          "rankme_every": 100, "checkpoint_every": 100},
            },
        },
    }
