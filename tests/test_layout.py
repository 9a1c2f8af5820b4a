"""Every plugin package has the same shape, so a reader finds things in the same place,
and no helper the core provides is written again inside a plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
MODULES = ("plugin.py", "recipes.py", "datasets.py", "encoders.py", "maskers.py",
           "evaluators.py", "quality.py")
# the core's shared helpers, and a pattern that betrays a local copy of each
COPIES = {
    "polyjepa.valid_rows": r'\.to\("cpu", torch\.bool\)\.reshape\(',
    "polyjepa.l2_normalise": r"np\.maximum\(np\.linalg\.norm\([^)]*axis=1, keepdims=True\)",
    "polyjepa.testing.shared_data": r'os\.environ\.get\("POLYJEPA_SHARED_DATA"',
}


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugin_has_the_common_shape(plugin: Path):
    pkg = plugin / "src" / f"polyjepa_{plugin.name}"
    missing = [m for m in MODULES if not (pkg / m).is_file()]
    assert not missing, f"{pkg} lacks {missing}"
    hooks = (pkg / "plugin.py").read_text()
    assert f'PKG = "polyjepa_{plugin.name}"' in hooks, f"{pkg}/plugin.py: no PKG constant"
    assert "Register =" not in hooks, f"{pkg}/plugin.py re-declares Register"
    assert re.search(r"^import torch|^from torch", hooks, re.M) is None, \
        f"{pkg}/plugin.py imports torch at the top (plugin.py must stay cheap to import)"
    for name in ("README.md", "pyproject.toml", "benchmarks/quality.py", "tests/conftest.py"):
        assert (plugin / name).is_file(), f"{plugin} lacks {name}"
    readme = (plugin / "README.md").read_text()
    assert "## References" in readme and "arxiv.org/abs/" in readme, \
        f"{plugin}/README.md cites no paper"


def test_no_plugin_repeats_a_core_helper():
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        text = path.read_text()
        for helper, pattern in COPIES.items():
            if re.search(pattern, text):
                found.append(f"{path.relative_to(ROOT)} repeats {helper}")
    assert not found, "\n".join(found)
