"""Loggers: the hook, a plugin's logger through a run's whole life, the old TensorBoard
switch, and MLflow and W&B runs read back from local stores."""

from __future__ import annotations

import importlib
import json
import struct
import sys
import textwrap
from pathlib import Path

import pytest
from tinyrun import SMALL as TINY_RUN
from tinyrun import digits_npz

import polyjepa as pj
from polyjepa import plugins
from polyjepa.errors import ConfigError, PluginError, UnknownComponentError
from polyjepa.report import write_report
from polyjepa.settings import TrainSettings
from polyjepa.trainer import check_same_run
from polyjepa.validation import check_config

SMALL = {**TINY_RUN, "train.log_every": 1}

RECORDER = """
    from polyjepa import hookimpl

    CALLS = []


    class Recorder:
        def start(self, run_dir, config, state):
            CALLS.append(("start", state, config["train"]["steps"], config["dataset"]["name"]))
            return {"id": (state or {}).get("id", "tracked-1"), "starts": (state or {}).get("starts", 0) + 1}

        def log_metrics(self, step, row):
            CALLS.append(("metrics", step, sorted(row)))

        def log_results(self, name, metrics):
            CALLS.append(("results", name, sorted(metrics)))

        def log_artifact(self, path):
            CALLS.append(("artifact", path.name))

        def finish(self, status):
            CALLS.append(("finish", status))


    @hookimpl
    def polyjepa_register_loggers(register):
        register("rec.logger", Recorder, description="records every call")
        register("rec.bad", lambda: object())
"""


def _pretrain(data, out, loggers, steps=2, callbacks=None, **extra):
    return pj.pretrain("array", data=data, out=out, progress=False, callbacks=callbacks,
                       overrides={**SMALL, "train.steps": steps, "train.loggers": loggers,
                                  **extra})


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    """The built-in plugin plus a module registering the ``rec.logger`` logger."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("POLYJEPA_PLUGINS", raising=False)
    (tmp_path / "pj_reclog.py").write_text(textwrap.dedent(RECORDER))
    sys.modules.pop("pj_reclog", None)
    plugins.configure(modules=["pj_reclog"])
    yield importlib.import_module("pj_reclog")
    plugins.reset()
    sys.modules.pop("pj_reclog", None)


def test_builtin_loggers_are_registered_through_the_hook(core_only):
    assert set(pj.list_loggers()) == {"jsonl", "tensorboard", "mlflow", "wandb"}
    assert plugins.host().registry("loggers").get("jsonl").plugin == "polyjepa"
    assert isinstance(pj.create_logger("jsonl"), pj.Logger)


def test_a_plugin_logger_sees_a_run_from_start_to_report(recorder, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    calls = recorder.CALLS
    assert "rec.logger" in pj.list_loggers("rec.*")
    with pytest.raises(PluginError, match=r"logger 'rec\.bad' from plugin 'pj_reclog' "
                                          r"returned object"):
        pj.create_logger("rec.bad")

    def stop_at_three(step, row):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _pretrain(data, tmp_path / "run", ["jsonl", "rec.logger"], steps=4,
                  callbacks=[stop_at_three], **{"train.checkpoint_every": 2,
                                                "train.rankme_every": 2})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["loggers"] == {"jsonl": {}, "rec.logger": {"id": "tracked-1", "starts": 1}}
    assert calls[0] == ("start", None, 4, "array")
    assert [c[1] for c in calls if c[0] == "metrics"] == [1, 2, 3]
    assert "rankme" in dict((c[1], c[2]) for c in calls if c[0] == "metrics")[2]
    assert calls[-1] == ("finish", "failed")

    calls.clear()  # the resumed run attaches to the same tracked run
    run = _pretrain(data, tmp_path / "run", ["jsonl", "rec.logger"], steps=4,
                    **{"train.checkpoint_every": 2, "train.rankme_every": 2})
    assert calls[0] == ("start", {"id": "tracked-1", "starts": 1}, 4, "array")
    assert [c[1] for c in calls if c[0] == "metrics"] == [3, 4]
    assert calls[-1] == ("finish", "complete")
    assert pj.Run(run.path).info["loggers"]["rec.logger"] == {"id": "tracked-1", "starts": 2}
    # metrics.jsonl holds the rows exactly once, as before loggers existed
    assert [r["step"] for r in run.metrics()] == [1, 2, 3, 4]

    calls.clear()
    results = pj.evaluate(run.path, evaluators=["rankme"])
    assert [c[0] for c in calls] == ["start", "results", "finish"]
    assert calls[0][1] == {"id": "tracked-1", "starts": 2}
    assert calls[1] == ("results", "evaluate", sorted(results))
    assert calls[2] == ("finish", "complete")

    calls.clear()
    written = write_report(run.path)
    assert [c[0] for c in calls] == ["start", *["artifact"] * len(written), "finish"]
    assert {c[1] for c in calls if c[0] == "artifact"} >= {"loss.png", "embeddings.png"}


def test_unknown_or_malformed_loggers_fail_before_training(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    with pytest.raises(UnknownComponentError, match=r"unknown logger 'mlfow'\. "
                                                    r"Did you mean 'mlflow'"):
        _pretrain(data, tmp_path / "run", ["jsonl", "mlfow"])
    with pytest.raises(ConfigError, match=r"'train\.loggers': 'jsonl' is not a list"):
        _pretrain(data, tmp_path / "run", "jsonl")
    assert not (tmp_path / "run").exists()


def test_the_old_tensorboard_switch_is_still_read(core_only, tmp_path):
    def names(**train):
        return TrainSettings.from_config({"train": train}).loggers

    assert names() == ("jsonl", "tensorboard")
    assert names(tensorboard=False) == ("jsonl",)
    assert names(tensorboard="auto") == ("jsonl", "tensorboard")
    assert names(loggers=["jsonl"], tensorboard=True) == ("jsonl", "tensorboard")
    check_config({"train": {"tensorboard": True}})
    with pytest.raises(ConfigError, match=r"train\.tensorboard must be true or false"):
        check_config({"train": {"tensorboard": "sometimes"}})
    # a run written before loggers existed resumes under today's config
    check_same_run(tmp_path, {"train": {"steps": 2, "tensorboard": "auto"}},
                   {"train": {"steps": 2, "loggers": ["jsonl"]}})
    run = pj.pretrain("array", data=digits_npz(tmp_path / "d.npz"), out=tmp_path / "run",
                      progress=False, overrides={**SMALL, "train.steps": 2,
                                                 "train.tensorboard": False})
    assert run.metrics() and not (run.path / "tensorboard").exists()
    assert pj.Run(run.path).info["loggers"] == {"jsonl": {}}


@pytest.mark.parametrize("name, extra", [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_tracker_package_names_the_extra(core_only, tmp_path, monkeypatch,
                                                   name, extra):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=rf'pip install "polyjepa\[{extra}\]"'):
        pj.create_logger(name).start(tmp_path, {"train": {"steps": 1}}, None)


def test_mlflow_run_in_a_local_file_store(core_only, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this opt-in
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run = _pretrain(digits_npz(tmp_path / "d.npz"), tmp_path / "run", ["jsonl", "mlflow"])
    results = pj.evaluate(run.path, evaluators=["rankme"])
    written = write_report(run.path)

    state = pj.Run(run.path).info["loggers"]["mlflow"]
    client = MlflowClient(tracking_uri=uri)
    tracked = client.get_run(state["run_id"])
    assert tracked.info.status == "FINISHED"
    assert client.get_experiment(tracked.info.experiment_id).name == "array"
    assert tracked.data.params["train.steps"] == "2"
    assert tracked.data.params["dataset.name"] == "array"
    loss = client.get_metric_history(state["run_id"], "loss")
    assert sorted(m.step for m in loss) == [1, 2]
    assert [m.value for m in sorted(loss, key=lambda m: m.step)] == pytest.approx(
        [r["loss"] for r in run.metrics()])
    assert [m.step for m in client.get_metric_history(state["run_id"], "rankme")] == [2]
    assert tracked.data.metrics["evaluate/rankme"] == pytest.approx(results["rankme"])
    artifacts = {a.path for a in client.list_artifacts(state["run_id"])}
    assert {p.name for p in written} <= artifacts


def _wandb_records(path: Path) -> list:
    """The records of a ``.wandb`` file (W&B's LevelDB-style log of protobuf records):
    an offline run keeps its config, history and summary there."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, pos, buf, out = 32768, 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        chunk, pos = raw[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk  # full/first, middle/last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
    return out


def test_wandb_run_offline(core_only, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    (tmp_path / "wb").mkdir()
    run = _pretrain(digits_npz(tmp_path / "d.npz"), tmp_path / "run", ["jsonl", "wandb"])
    results = pj.evaluate(run.path, evaluators=["rankme"])
    written = write_report(run.path)

    state = pj.Run(run.path).info["loggers"]["wandb"]
    assert state["project"] == "polyjepa"
    folders = sorted((tmp_path / "wb" / "wandb").glob(f"offline-run-*-{state['run_id']}*"))
    assert len(folders) == 3  # training, then evaluate and report attach to the same id
    records = [r for f in folders for r in _wandb_records(f / f"run-{state['run_id']}.wandb")]

    def of(kind):
        return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]

    config = {u.key: json.loads(u.value_json) for r in of("run") for u in r.config.update}
    assert config["train"]["steps"] == 2 and config["dataset"]["name"] == "array"
    history = {}
    for h in of("history"):
        row = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in h.item}
        history[row["_step"]] = row
    assert sorted(history) == [1, 2]
    assert [history[s]["loss"] for s in (1, 2)] == pytest.approx(
        [r["loss"] for r in run.metrics()])
    assert "rankme" in history[2]
    summary = {(u.key or "/".join(u.nested_key)): json.loads(u.value_json)
               for s in of("summary") for u in s.update}
    assert summary["evaluate/rankme"] == pytest.approx(results["rankme"])
    saved = {f.path for r in of("files") for f in r.files}
    assert {p.name for p in written} <= saved
    assert all((folders[-1] / "files" / p.name).is_file() for p in written)
    exits = [e.exit_code for e in of("exit")]
    assert exits == [0, 0, 0]
