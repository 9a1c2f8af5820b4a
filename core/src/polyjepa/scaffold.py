"""``polyjepa new-plugin NAME DIR``: a complete, working third-party plugin to start from.

The skeleton registers one dataset (1-D multichannel signals from ``.npy``/``.npz``
files, with a simulated demo set), one encoder, one masker and one recipe, in the module
layout every plugin shares (``plugin.py``, ``datasets.py``, ``encoders.py``,
``maskers.py``, ``recipes.py``), and ships tests that call :mod:`polyjepa.testing` and
train end to end.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError

_PYPROJECT = '''\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "polyjepa-{name}"
version = "0.1.0"
description = "polyjepa plugin: JEPA pre-training for {name} data"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["polyjepa>=0.1", "numpy"]

[project.optional-dependencies]
test = ["pytest>=7"]

[project.entry-points.polyjepa]
{name} = "{pkg}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/{pkg}"]
'''

_README = '''\
# polyjepa-{name}

A [polyjepa](https://pypi.org/project/polyjepa/) plugin that pre-trains JEPAs on
{name} data: multichannel 1-D signals stored as `.npy` (`[N, C, L]`) or `.npz` (`x`,
optional `y` labels).

Components (see `polyjepa plugins`):

| kind | name | what |
| --- | --- | --- |
| dataset | `{name}.signals` | `.npy`/`.npz` signals; `data=None` gives a simulated demo set |
| encoder | `{name}.encoder` | transformer over (channel, time-patch) tokens |
| masker | `{name}.spans` | contiguous time spans across all channels |
| recipe | `{name}` | the above with an EMA target |

```
pip install -e .
polyjepa pretrain {name} --data signals.npz --out runs/{name}
polyjepa evaluate runs/{name}
polyjepa demo {name}           # simulated data
pytest tests
```
'''

_INIT = '''\
"""polyjepa plugin for {name} data."""

__version__ = "0.1.0"
'''

_PLUGIN = '''\
"""Hook implementations: registered lazily, so importing this module is cheap."""

from polyjepa import Register, hookimpl

PKG = "{pkg}"


@hookimpl
def polyjepa_register_datasets(register: Register) -> None:
    register("{name}.signals", f"{{PKG}}.datasets:SignalDataset",
             description="multichannel 1-D signals from .npy/.npz (demo: simulated)")


@hookimpl
def polyjepa_register_encoders(register: Register) -> None:
    register("{name}.encoder", f"{{PKG}}.encoders:SignalEncoder",
             description="transformer over (channel, time patch) tokens")


@hookimpl
def polyjepa_register_maskers(register: Register) -> None:
    register("{name}.spans", f"{{PKG}}.maskers:SpanMasker",
             description="contiguous time spans masked across channels")


@hookimpl
def polyjepa_register_recipes(register: Register) -> None:
    register("{name}", f"{{PKG}}.recipes:recipe",
             description="JEPA for {name} signals (demo: simulated)")
'''

_DATASETS = '''\
"""The {name} dataset: ``[N, C, L]`` signals from ``.npy``/``.npz`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj


def simulate(n: int = 512, channels: int = 3, length: int = 128,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sinusoids whose frequency band is the class label (simulated data)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    t = np.arange(length) / length
    freq = 2.0 + 3.0 * y[:, None, None] + rng.uniform(0, 1.5, size=(n, channels, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, channels, 1))
    x = np.sin(2 * np.pi * freq * t + phase) + 0.3 * rng.normal(size=(n, channels, length))
    return x.astype(np.float32), y.astype(np.int64)


class SignalDataset(pj.ArrayDataset):
    """``[N, C, L]`` signals from ``.npy``/``.npz`` (``x``, optional ``y``)."""

    def __init__(self, data: Any = None, state: dict | None = None):
        if data is None:
            x, y, source = *simulate(), "<simulated>"
        else:
            path = Path(data)
            if not path.is_file():
                raise pj.DataError(f"{{path}}: no such file")
            try:
                if path.suffix == ".npz":
                    with np.load(path, allow_pickle=False) as f:
                        x, y = f["x"], (f["y"] if "y" in f.files else None)
                else:
                    x, y = np.load(path, allow_pickle=False), None
            except (OSError, ValueError, KeyError) as exc:
                raise pj.DataError(f"{{path}}: cannot read signals: {{exc}}") from exc
            source = str(path)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise pj.DataError(f"{{source}}: expected [N, channels, length], got {{x.shape}}")
        super().__init__(x, y, source=source)
        self.encoder_hints = {{"channels": int(x.shape[1])}}
'''

_ENCODERS = '''\
"""The {name} encoder: a transformer over (channel, time patch) tokens."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

import polyjepa as pj


class SignalEncoder(pj.TokenEncoder):
    """Tokens are (channel, time patch) pairs: grid ``(C, L // patch)``."""

    def __init__(self, channels: int = 1, patch: int = 16, embed_dim: int = 64,
                 depth: int = 2, num_heads: int = 4, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, drop_path)
        self.channels, self.patch = int(channels), int(patch)
        self.proj = nn.Linear(self.patch, embed_dim)
        pj.init_weights(self)
        pj.init_token_embedding(self.proj)  # content on the positions' scale

    def grid(self, batch: Any) -> tuple[int, ...]:
        x = batch["x"]
        return (int(x.shape[1]), int(x.shape[2]) // self.patch)

    def tokenize(self, batch: Any) -> torch.Tensor:
        x = batch["x"]
        c, n = self.grid(batch)
        patches = x[:, :, : n * self.patch].reshape(x.shape[0], c * n, self.patch)
        pos = pj.sincos_pos_embed((c, n), self.embed_dim).to(x.device, x.dtype)
        return self.proj(patches) + pos
'''

_MASKERS = '''\
"""The {name} masker: time spans masked across every channel."""

from __future__ import annotations

import torch

import polyjepa as pj


class SpanMasker:
    """Targets: ``num_targets`` time spans over all channels; context: the rest."""

    def __init__(self, num_targets: int = 2, span: float = 0.15):
        self.num_targets, self.span = int(num_targets), float(span)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> pj.Masks:
        c, n = grid
        width = max(1, round(self.span * n))
        start = torch.randint(0, n - width + 1, (batch_size, self.num_targets, 1),
                              generator=generator)
        t = torch.arange(n).view(1, 1, n)
        in_span = (t >= start) & (t < start + width)  # [B, K, n]
        in_span = in_span.unsqueeze(2).expand(-1, -1, c, -1).reshape(batch_size, -1, c * n)
        ok = pj.valid_rows(valid, batch_size, c * n)
        tsets = in_span & ok[:, None]
        context = ok & ~tsets.any(dim=1)
        n_t = int(tsets.sum(dim=2).min())
        targets = [pj.choose(tsets[:, k], n_t, generator) for k in range(self.num_targets)]
        return pj.Masks(pj.choose(context, int(context.sum(dim=1).min()), generator), targets)
'''

_RECIPES = '''\
"""The {name} recipe: the plugin's components wired with an EMA target (I-JEPA,
https://arxiv.org/abs/2301.08243)."""

from __future__ import annotations

from typing import Any


def recipe() -> dict[str, Any]:
    return {{
        "dataset": {{"name": "{name}.signals"}},
        "encoder": {{"name": "{name}.encoder", "patch": 16, "embed_dim": 64, "depth": 2,
                    "num_heads": 4}},
        "masker": {{"name": "{name}.spans"}},
        "predictor": {{"name": "transformer", "dim": 32, "depth": 2, "num_heads": 2}},
        "train": {{"steps": 300, "batch_size": 32, "warmup_steps": 30}},
        "demo": {{"data": None, "kind": "simulated",
                  "description": "noisy sinusoids, class = frequency band"}},
    }}
'''

_TESTS = '''\
"""Contract checks and an end-to-end run of the {name} plugin."""

import numpy as np
import torch

import polyjepa as pj
from polyjepa import testing


def _batch():
    ds = pj.create_dataset("{name}.signals")
    return pj.collate([ds[i] for i in range(4)])


def test_registered():
    assert "{name}" in pj.list_recipes()
    assert "{name}.encoder" in pj.list_encoders()


def test_contracts():
    testing.check_dataset("{name}.signals")
    testing.check_encoder("{name}.encoder", _batch(), channels=3, patch=16, embed_dim=32,
                          depth=1, num_heads=2)
    testing.check_token_scale("{name}.encoder", _batch(), channels=3, patch=16,
                              embed_dim=32, depth=1, num_heads=2)
    testing.check_masker("{name}.spans", (3, 8), batch_size=4)
    testing.check_recipe("{name}")


def test_masker_respects_valid():
    valid = torch.ones(4, 24, dtype=torch.bool)
    valid[:, :8] = False  # first channel missing
    testing.check_masker("{name}.spans", (3, 8), batch_size=4, valid=valid)


def test_pretrain_evaluate_embed(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 3, 64)).astype(np.float32)
    y = np.arange(32) % 2
    np.savez(tmp_path / "signals.npz", x=x, y=y)
    run = testing.tiny_train("{name}", tmp_path / "signals.npz", tmp_path / "run", steps=3,
                             overrides={{"encoder.embed_dim": 32, "encoder.depth": 1,
                                        "encoder.num_heads": 2}})
    losses = [r["loss"] for r in run.metrics() if "loss" in r]
    assert len(losses) == 3 and all(np.isfinite(losses))
    emb = pj.embed(run.path)
    assert emb.shape == (32, 32) and np.isfinite(emb).all()
    metrics = pj.evaluate(run.path)
    assert 1.0 <= metrics["rankme"] <= 32 and 0.0 <= metrics["linear_probe_acc"] <= 1.0
'''

_FILES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "src/{pkg}/__init__.py": _INIT,
    "src/{pkg}/plugin.py": _PLUGIN,
    "src/{pkg}/datasets.py": _DATASETS,
    "src/{pkg}/encoders.py": _ENCODERS,
    "src/{pkg}/maskers.py": _MASKERS,
    "src/{pkg}/recipes.py": _RECIPES,
    "tests/test_{name}_plugin.py": _TESTS,
}


def write_plugin(name: str, directory: str | Path) -> Path:
    """Write the skeleton of plugin ``polyjepa-<name>`` into ``directory`` (must be new)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"plugin name {name!r}: use lowercase letters, digits and '_', "
                          "starting with a letter")
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} exists and is not empty; choose a new folder")
    pkg = f"polyjepa_{name}"
    for rel, template in _FILES.items():
        path = root / rel.format(name=name, pkg=pkg)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, pkg=pkg), encoding="utf-8")
    return root
