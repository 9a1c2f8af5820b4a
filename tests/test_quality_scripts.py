"""``benchmarks/quality.py`` end to end for every domain, at tiny settings (no figures)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _driver():
    spec = importlib.util.spec_from_file_location("quality_driver",
                                                  ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOMAINS = sorted(_driver().domain_scripts())


@pytest.mark.parametrize("domain", DOMAINS)
def test_quality_script_runs_every_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))  # simulated data
    driver = _driver()
    tasks = driver.load_tasks(driver.domain_scripts()[domain])
    if not tasks:
        pytest.skip(f"{domain}: no task has its data here")
    assert driver.main([domain, "--steps", "2", "--seeds", "1", "--factor", "2",
                        "--out", str(tmp_path)]) == 0
    text = (tmp_path / "quality.md").read_text()
    assert f"## {domain}" in text
    for task in tasks:
        assert f"| {task.name} | {task.kind} | {task.metric} | 2 |" in text
        assert f"| {task.name} | {task.kind} | {task.metric} | 4 |" in text
    assert (tmp_path / "quality.png").is_file()


def _trend_driver():
    spec = importlib.util.spec_from_file_location("trend_driver",
                                                  ROOT / "benchmarks" / "trend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("domain", DOMAINS)
def test_trend_script_finds_each_domains_main_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))
    tasks = _driver().load_tasks(_driver().domain_scripts()[domain])
    if not tasks:
        pytest.skip(f"{domain}: no task has its data here")
    driver = _trend_driver()
    # the task named for each domain exists (a rename would silently fall back)
    assert driver.chosen_tasks(domain, tasks, None)[0].name in driver.MAIN_TASKS[domain]
    assert [t.name for t in driver.chosen_tasks(domain, tasks, [tasks[-1].name])] == \
        [tasks[-1].name]


# the trend runs every domain's task through the quality harness alike: two cheap ones
@pytest.mark.parametrize("domain", ["sar", "recsys"])
def test_trend_script_runs_the_main_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))
    driver = _trend_driver()
    main = driver.chosen_tasks(domain, _driver().load_tasks(_driver().domain_scripts()[domain]),
                               None)[0]
    assert driver.main([domain, "--steps", "2", "--seeds", "1", "--factors", "1,2",
                        "--fractions", "0.5", "--fraction-factor", "1",
                        "--out", str(tmp_path)]) == 0
    text = (tmp_path / "trend.md").read_text()
    assert f"## {domain}: {main.name} ({main.kind}, {main.metric})" in text
    for row in ("| 2 | 100% |", "| 4 | 100% |", "| 2 | 50% |"):
        assert row in text
    assert (tmp_path / "trend.png").is_file()
