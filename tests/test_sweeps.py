"""`polyjepa sweep`: label-free selection by RankMe, validation, early stop, resume."""

from __future__ import annotations

import csv
import json

import pytest

import polyjepa as pj
from polyjepa.sweeps import load_grid, trial_overrides

# a tiny generic JEPA on scikit-learn's digits (real, labelled)
SMALL = {"dataset.name": "digits", "encoder.embed_dim": 32, "encoder.depth": 1,
         "encoder.num_heads": 2, "predictor.dim": 16, "predictor.depth": 1,
         "predictor.num_heads": 2, "masker.num_targets": 2, "target.kind": "sigreg",
         "train.steps": 12, "train.batch_size": 32, "train.warmup_steps": 2,
         "train.rankme_every": 6, "train.checkpoint_every": 6, "train.log_every": 6,
         "train.precision": "fp32"}


def _grid_toml(path, params: str, extra: str = "") -> str:
    fixed = "\n".join(f'"{k}" = {json.dumps(v)}' for k, v in SMALL.items())
    path.write_text(f"{extra}\n[params]\n{params}\n[set]\n{fixed}\n")
    return str(path)


@pytest.mark.parametrize("params, message", [
    ('"train.lrr" = [1e-3, 2e-3]', r"'train\.lrr' is not a setting.*Did you mean 'train\.lr'"),
    ('"train.lr" = []', r"'train\.lr' has an empty list"),
    ('"train.lr" = {low = 0.1, high = 0.01}', r"'train\.lr' has an empty range"),
    ('"train.lr" = ["fast", "slow"]', r"sweep key 'train\.lr': 'fast' is not a number"),
    ('"masker.num_targetz" = [2, 4]', r"'masker\.num_targetz'.*Did you mean 'masker\.num_targets'"),
    ('"train.weight_decay" = {low = 0.01, high = 0.1}', r"grid search needs a list"),
    ('"bogus.x" = [1]', r"'bogus\.x': the first part must be one of"),
])
def test_bad_grids_fail_before_any_trial(core_only, tmp_path, params, message):
    grid = _grid_toml(tmp_path / "grid.toml", params)
    with pytest.raises(pj.ConfigError, match=message):
        pj.sweep("array", grid=grid, out=tmp_path / "sweep", workers=0, progress=False)
    assert not (tmp_path / "sweep").exists()


def test_factory_arguments_outside_the_recipe_are_accepted(core_only, tmp_path):
    # drop_path is not in the recipe's encoder section but is an encoder argument
    grid = _grid_toml(tmp_path / "grid.toml", '"encoder.drop_path" = [0.0, 0.1]',
                      "trials = 1")
    result = pj.sweep("array", grid=grid, out=tmp_path / "s", workers=0, progress=False,
                      probe=False)
    assert [t["overrides"] for t in result.trials] == [{"encoder.drop_path": 0.0}]
    assert result.trials[0]["status"] == "complete"


def test_random_search_is_seeded_and_respects_ranges():
    spec = load_grid({"method": "random", "trials": 50, "seed": 3, "params": {
        "train": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
        "masker.num_targets": {"low": 1, "high": 6},
        "target.kind": ["ema", "sigreg"]}})
    a, b = trial_overrides(spec), trial_overrides(spec)
    assert a == b and len(a) == 50
    lrs = [t["train.lr"] for t in a]
    assert all(1e-4 <= v <= 1e-2 for v in lrs)
    # log-uniform: about half the draws below the geometric middle 1e-3
    assert 15 < sum(v < 1e-3 for v in lrs) < 35
    assert all(isinstance(t["masker.num_targets"], int) for t in a)
    assert {t["target.kind"] for t in a} == {"ema", "sigreg"}
    other = trial_overrides(load_grid({**{"method": "random", "trials": 50, "seed": 4},
                                       "params": spec.params}))
    assert other != a


def test_collapsed_trials_stop_early(core_only, tmp_path):
    # collapse_rank = 1.0 calls any embedding below full rank collapsed: that trial must
    # stop at its first RankMe check, the other one must finish
    grid = _grid_toml(tmp_path / "grid.toml", '"train.collapse_rank" = [0.0, 1.0]')
    result = pj.sweep("array", grid=grid, out=tmp_path / "s", workers=0, progress=False,
                      probe=False)
    by_rate = {t["overrides"]["train.collapse_rank"]: t for t in result.trials}
    assert by_rate[1.0]["status"] == "collapsed" and by_rate[1.0]["steps"] == 6
    assert by_rate[0.0]["status"] == "complete" and by_rate[0.0]["steps"] == 12
    assert result.best["trial"] == by_rate[0.0]["trial"]


def test_two_trial_sweep_end_to_end_with_workers(tmp_path, cli):
    grid = _grid_toml(tmp_path / "grid.toml", '"train.lr" = [3e-4, 3e-3]')
    out = tmp_path / "sweep"
    proc = cli("sweep", "array", "--grid", grid, "--out", str(out), "--workers", "2",
               "--no-progress")
    assert "chosen by rankme_centered: trial" in proc.stdout
    assert "Spearman(rankme_centered, linear_probe_acc)" in proc.stdout
    assert "(with rankme instead:" in proc.stdout
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"complete"}
    assert [int(r["rank"]) for r in rows] == [1, 2]
    ranks = [float(r["rankme_centered"]) for r in rows]
    assert ranks[0] >= ranks[1] > 1.0
    assert all(0.0 <= float(r["linear_probe_acc"]) <= 1.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_trial"] == int(rows[0]["trial"])
    assert abs(summary["spearman"]) == pytest.approx(1.0)
    assert summary["probe_gap"] >= 0.0
    assert (out / "rankme_vs_probe.png").stat().st_size > 1000
    # every trial is a normal run folder
    for r in rows:
        assert pj.Run(out / f"trial-{int(r['trial']):03d}").complete
    # the chosen config is ready for a full run
    best = pj.load_config_file(out / "best.yaml")
    chosen_lr = [3e-4, 3e-3][summary["best_trial"]]
    assert best["train"]["lr"] == pytest.approx(chosen_lr)
    assert best["dataset"]["name"] == "digits" and best["recipe"] == "array"
    # a second start skips the finished trials and reaches the same choice
    again = cli("sweep", "array", "--grid", grid, "--out", str(out), "--workers", "2")
    assert "2 of 2 trials already finished" in again.stdout
    assert json.loads((out / "summary.json").read_text()) == summary
    # a different grid into the same folder is refused, the trials are kept
    other = _grid_toml(tmp_path / "other.toml", '"train.lr" = [1e-3]')
    refused = cli("sweep", "array", "--grid", other, "--out", str(out), check=False)
    assert refused.returncode == 2 and "holds a different sweep" in refused.stderr
    assert (out / "trial-000" / "trial.json").is_file()


def test_same_trials_run_as_ray_tune_trials(core_only, tmp_path):
    pytest.importorskip("ray.tune", reason="the optional 'ray' extra is not installed")
    grid = _grid_toml(tmp_path / "grid.toml", '"train.lr" = [3e-4, 3e-3]')
    result = pj.sweep("array", grid=grid, out=tmp_path / "s", workers=2,
                      ray_address="local", progress=False)
    assert sorted(t["status"] for t in result.trials) == ["complete", "complete"]
    assert result.best is not None and result.spearman is not None
    local = pj.sweep("array", grid=grid, out=tmp_path / "local", workers=0, progress=False)
    # the same trial function: the same runs and metrics in both
    for a, b in zip(sorted(result.trials, key=lambda t: t["trial"]),
                    sorted(local.trials, key=lambda t: t["trial"])):
        assert a["metrics"]["rankme_centered"] == pytest.approx(
            b["metrics"]["rankme_centered"], rel=1e-5)
