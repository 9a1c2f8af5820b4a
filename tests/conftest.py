"""Shared fixtures for the core tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIRDPARTY = Path(__file__).resolve().parent / "thirdparty"


@pytest.fixture
def plugin_env(monkeypatch):
    """Only the built-in plugin plus the toyseq plugin named like ``--plugin`` does."""
    from polyjepa import plugins

    monkeypatch.syspath_prepend(str(THIRDPARTY))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("POLYJEPA_PLUGINS", raising=False)
    monkeypatch.delenv("POLYJEPA_LOAD_PLUGINS", raising=False)
    plugins.configure(modules=["polyjepa_toyseq.plugin"])
    yield
    plugins.reset()


@pytest.fixture
def core_only(monkeypatch):
    """The built-in plugin alone."""
    from polyjepa import plugins

    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("POLYJEPA_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


def _cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(THIRDPARTY), env.get("PYTHONPATH", "")])
    env["POLYJEPA_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def cli():
    """Run ``python -m polyjepa ARGS`` in a subprocess that can import the toyseq plugin."""
    import subprocess

    def run(*args: str, check: bool = True, **env_extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "polyjepa", *args], capture_output=True,
                              text=True, env=_cli_env(**env_extra), timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"polyjepa {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run
