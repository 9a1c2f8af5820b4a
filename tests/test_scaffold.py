"""`polyjepa new-plugin` writes a plugin that installs and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_new_plugin_installs_and_passes_its_tests(tmp_path, cli):
    cli("new-plugin", "audio", str(tmp_path / "audio"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(tmp_path / "audio")],
                   check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1")
    env.pop("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", None)
    plugins = subprocess.run([sys.executable, "-m", "polyjepa", "plugins"], env=env,
                             capture_output=True, text=True, check=True)
    assert "audio [polyjepa-audio]  (entry point" in plugins.stdout
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path / "audio" / "tests")], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout


def test_new_plugin_refuses_to_overwrite(tmp_path, cli):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    proc = cli("new-plugin", "audio", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
