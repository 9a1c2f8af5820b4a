"""The hook contract, plugin loading, registries and their error messages."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import polyjepa as pj
from polyjepa import hookspecs, plugins
from polyjepa.errors import PluginError, UnknownComponentError


def test_every_hook_is_documented():
    specs = [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("polyjepa_register_")]
    assert {f.__name__ for f in specs} == {
        f"polyjepa_register_{k}" for k in
        ("encoders", "maskers", "predictors", "evaluators", "datasets", "recipes", "commands",
         "loggers")}
    for f in specs:
        doc = inspect.getdoc(f) or ""
        assert len(doc) > 80 and "factory" in doc, f"{f.__name__} is not documented"
        assert list(inspect.signature(f).parameters) == ["register"]


def test_builtin_components_registered_through_hooks(core_only):
    assert pj.list_encoders() == ["vit"]
    assert set(pj.list_maskers()) == {"multiblock", "random"}
    assert set(pj.list_evaluators()) == {"rankme", "linear_probe", "knn", "finetune"}
    assert pj.list_maskers("multi*") == ["multiblock"]
    entry = plugins.host().registry("encoders").get("vit")
    assert entry.plugin == "polyjepa"
    assert [p.source for p in plugins.host().plugins] == ["builtin"]


def test_unknown_name_suggests_close_match_and_package(core_only):
    with pytest.raises(UnknownComponentError) as err:
        pj.create_masker("multiblok")
    assert "Did you mean 'multiblock'" in str(err.value)
    with pytest.raises(UnknownComponentError) as err:
        pj.create_encoder("ecg.vit")
    assert "pip install polyjepa-ecg" in str(err.value)


def _module(tmp_path, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return name


def test_broken_plugins_reported_by_name_others_keep_working(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    good = _module(tmp_path, "pj_good", """
        from polyjepa import hookimpl
        @hookimpl
        def polyjepa_register_maskers(register):
            register("good.half", "polyjepa.maskers:RandomMasker")
    """)
    broken_import = _module(tmp_path, "pj_broken_import", "import not_a_module_anywhere\n")
    dup = _module(tmp_path, "pj_dup", """
        from polyjepa import hookimpl
        @hookimpl
        def polyjepa_register_maskers(register):
            register("good.half", "polyjepa.maskers:RandomMasker")
    """)
    raising = _module(tmp_path, "pj_raising", """
        from polyjepa import hookimpl
        @hookimpl
        def polyjepa_register_encoders(register):
            raise RuntimeError("boom")
    """)
    typo = _module(tmp_path, "pj_typo", """
        from polyjepa import hookimpl
        @hookimpl
        def polyjepa_register_encoder(register):
            pass
    """)
    plugins.configure(modules=[good, broken_import, dup, raising, typo])
    try:
        with pytest.warns(plugins.PluginWarning):
            names = pj.list_maskers()
        assert "good.half" in names and "multiblock" in names
        messages = {f.name: f.message for f in plugins.host().failures}
        assert "not_a_module_anywhere" in messages["pj_broken_import"]
        assert "duplicate masker name 'good.half'" in messages["pj_dup"]
        assert "pj_good" in messages["pj_dup"] and "pj_dup" in messages["pj_dup"]
        assert "boom" in messages["pj_raising"]
        assert "polyjepa_register_encoder" in messages["pj_typo"]
        # strict mode raises instead of skipping
        plugins.configure(modules=[good, broken_import], strict=True)
        with pytest.raises(PluginError, match="pj_broken_import"):
            pj.list_maskers()
    finally:
        plugins.reset()


def test_bad_factory_is_reported_with_its_plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    mod = _module(tmp_path, "pj_badfactory", """
        from polyjepa import hookimpl
        def not_an_encoder(**kw):
            return 42
        @hookimpl
        def polyjepa_register_encoders(register):
            register("bad.enc", not_an_encoder)
            register("bad.missing", "pj_badfactory:does_not_exist")
    """)
    plugins.configure(modules=[mod])
    try:
        with pytest.raises(PluginError, match=r"'bad.enc' from plugin 'pj_badfactory'.*int"):
            pj.create_encoder("bad.enc")
        with pytest.raises(PluginError, match="pj_badfactory.*does_not_exist"):
            pj.create_encoder("bad.missing")
        assert pj.create_encoder("vit", embed_dim=16, depth=1, num_heads=2) is not None
    finally:
        plugins.reset()


def _fake_distribution(root, dist: str, ep_name: str, module: str) -> None:
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[polyjepa]\n{ep_name} = {module}\n")


def test_entry_points_are_found_filtered_and_disabled(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, "pj_epgood", """
        from polyjepa import hookimpl
        @hookimpl
        def polyjepa_register_datasets(register):
            register("epgood.data", "polyjepa.datasets:digits")
    """)
    _fake_distribution(tmp_path, "polyjepa-epgood", "epgood", "pj_epgood")
    _fake_distribution(tmp_path, "polyjepa-epbroken", "epbroken", "pj_missing_module")
    monkeypatch.delenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("POLYJEPA_LOAD_PLUGINS", "epgood,epbroken")
    plugins.reset()
    try:
        with pytest.warns(plugins.PluginWarning, match=r"epbroken \(polyjepa-epbroken\)"):
            assert "epgood.data" in pj.list_datasets()
        entry = plugins.host().registry("datasets").get("epgood.data")
        assert entry.provider == "epgood (polyjepa-epgood)"
        monkeypatch.setenv("POLYJEPA_LOAD_PLUGINS", "epgood")
        plugins.reset()
        assert "epgood.data" in pj.list_datasets() and not plugins.host().failures
        monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
        plugins.reset()
        assert "epgood.data" not in pj.list_datasets()
    finally:
        plugins.reset()


def test_plugins_command_lists_providers_without_importing_torch(cli):
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "plugins")
    assert "toyseq.encoder  from polyjepa_toyseq.plugin" in proc.stdout
    assert "vit" in proc.stdout and "from polyjepa" in proc.stdout
    code = ("import sys; from polyjepa.cli import main; main(['plugins']); "
            "assert 'torch' not in sys.modules, 'plugins imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_plugins_add_their_own_commands(cli):
    out = cli("--plugin", "polyjepa_toyseq.plugin", "toyseq", "describe", "--limit", "10")
    assert out.stdout.strip() == "toyseq: 10 sequences of length 64"
    listed = cli("--plugin", "polyjepa_toyseq.plugin", "plugins").stdout
    assert "toyseq" in listed.split("commands:")[1]
    bad = cli("--plugin", "polyjepa_toyseq.plugin", "toyseq", "nonsense", check=False)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    unknown = cli("audio", "x", check=False)
    assert unknown.returncode == 2
    assert "unknown command 'audio'" in unknown.stderr
    assert "pip install polyjepa-audio" in unknown.stderr
