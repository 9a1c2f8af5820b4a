"""Finding and loading plugins: entry points, ``--plugin`` modules and the built-in plugin.

Plugins are loaded lazily (on the first registry lookup), one at a time, each in its own
``try``: one broken plugin is reported by name and never hides the others, unless strict
mode asks for an exception instead.

Environment variables:

- ``POLYJEPA_PLUGINS=mod_a,mod_b``: extra plugin modules to import and register, separated
  by commas (like ``--plugin``: a module name, found also in the current directory, or a
  ``.py`` file path).
- ``POLYJEPA_LOAD_PLUGINS=ecg,video``: auto-load only these entry points.
- ``POLYJEPA_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points at all.
- ``POLYJEPA_STRICT_PLUGINS=1``: raise on the first broken plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, PolyjepaWarning, warn
from .registry import KINDS, Entry, Registry

ENTRY_POINT_GROUP = "polyjepa"
BUILTIN_MODULE = "polyjepa.builtin"


@dataclass
class PluginInfo:
    """A plugin that loaded: its name, distribution, module and how it was found."""

    name: str
    module: str
    distribution: str | None
    source: str  # "builtin" | "entry point" | "--plugin"


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or registered, with the reason."""

    name: str
    distribution: str | None
    message: str


class PluginWarning(PolyjepaWarning):
    """A plugin was skipped because it is broken."""


def _env_list(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PluginHost:
    """The plugin manager plus one :class:`Registry` per component kind."""

    def __init__(self, modules: list[str] | None = None, strict: bool | None = None,
                 autoload: bool | None = None, only: list[str] | None = None,
                 require_modules: bool = False):
        self.extra_modules = list(modules or []) + _env_list("POLYJEPA_PLUGINS")
        self.required = set(modules or []) if require_modules else set()
        self.strict = _env_flag("POLYJEPA_STRICT_PLUGINS") if strict is None else strict
        self.autoload = (not _env_flag("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD")
                         if autoload is None else autoload)
        self.only = only if only is not None else _env_list("POLYJEPA_LOAD_PLUGINS")
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registries = {kind: Registry(kind) for kind in KINDS}
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self._loaded = False
        self._lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------
    def load(self) -> PluginHost:
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
            self._add_module(BUILTIN_MODULE, name="polyjepa", dist="polyjepa", source="builtin")
            if self.autoload:
                for ep in self._entry_points():
                    dist = ep.dist.name if getattr(ep, "dist", None) else None
                    self._add(lambda ep=ep: ep.load(), ep.name, dist, "entry point", ep.value)
            for mod in self.extra_modules:
                if mod in self.required:
                    self.add_explicit(mod)
                else:
                    self._add(lambda mod=mod: import_plugin_module(mod), mod, None,
                              "--plugin", mod)
            return self

    def add_explicit(self, module: str) -> None:
        """Load a module named with ``--plugin`` (or recorded in a run): a failure stops
        the command, since the user asked for this plugin by name."""
        with self._lock:
            before = len(self.failures)
            strict, self.strict = self.strict, True
            try:
                self._add(lambda: import_plugin_module(module), module, None, "--plugin",
                          module)
            finally:
                self.strict = strict
            del self.failures[before:]

    def _entry_points(self) -> list[metadata.EntryPoint]:
        eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        seen: set[str] = set()
        unique = []
        for ep in eps:  # the same distribution can be visible twice on sys.path
            if ep.name in seen:
                continue
            seen.add(ep.name)
            if self.only and ep.name not in self.only:
                continue
            unique.append(ep)
        return sorted(unique, key=lambda e: e.name)

    def _add_module(self, module: str, name: str, dist: str | None, source: str) -> None:
        self._add(lambda: importlib.import_module(module), name, dist, source, module)

    def _add(self, loader: Any, name: str, dist: str | None, source: str, where: str) -> None:
        if any(p.name == name for p in self.plugins):
            return
        try:
            module = loader()
        except Exception as exc:  # noqa: BLE001 - any import failure is reported by name
            self._fail(name, dist, f"cannot be imported from {where!r}: "
                                   f"{type(exc).__name__}: {exc}", exc)
            return
        if self.pm.is_registered(module):  # already loaded, e.g. by its entry point
            return
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._fail(name, dist, f"has invalid hooks: {exc}", exc)
            return
        staged: list[tuple[str, Entry]] = []
        try:
            for kind in KINDS:
                hook = getattr(self.pm.hook, f"polyjepa_register_{kind}")
                for impl in hook.get_hookimpls():
                    if impl.plugin is not module:
                        continue

                    def register(comp_name: str, factory: Any, description: str = "",
                                 _kind: str = kind) -> None:
                        staged.append((_kind, Entry(comp_name, factory, name, dist,
                                                    description)))

                    args = {"register": register}
                    impl.function(*[args[a] for a in impl.argnames])
            added: list[tuple[str, str]] = []
            try:
                for kind, entry in staged:
                    self.registries[kind].add(entry)
                    added.append((kind, entry.name))
            except PluginError:
                for kind, comp in added:  # all or nothing for one plugin
                    del self.registries[kind]._entries[comp]
                raise
        except PluginError as exc:
            self.pm.unregister(module)
            self._fail(name, dist, str(exc), exc)
            return
        except Exception as exc:  # noqa: BLE001 - a hook that raised
            self.pm.unregister(module)
            self._fail(name, dist, f"failed while registering: {type(exc).__name__}: {exc}", exc)
            return
        self.plugins.append(PluginInfo(name, getattr(module, "__name__", where), dist, source))

    def _fail(self, name: str, dist: str | None, message: str, exc: BaseException) -> None:
        label = f"{name} ({dist})" if dist and dist != name else name
        full = f"plugin {label!r} {message}" if not message.startswith("duplicate") else \
            f"plugin {label!r} skipped: {message}"
        if self.strict:
            raise PluginError(full) from exc
        self.failures.append(PluginFailure(name, dist, full))
        warn(full, PluginWarning)

    # -- lookups -------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        self.load()
        reg = self.registries[kind]
        reg.failures = self.failures
        return reg


_host: PluginHost | None = None
_settings: dict[str, Any] = {}


def configure(modules: list[str] | None = None, strict: bool | None = None,
              autoload: bool | None = None, require_modules: bool | None = None) -> None:
    """Set how plugins are found (``--plugin``, strict mode) and forget loaded ones.

    ``require_modules``: a module of ``modules`` that fails to load raises instead of
    being skipped with a warning (the command line asks for this: a plugin named with
    ``--plugin`` was asked for by name).
    """
    global _host
    _settings.clear()
    _settings.update({k: v for k, v in {"modules": modules, "strict": strict,
                                         "autoload": autoload,
                                         "require_modules": require_modules}.items()
                      if v is not None})
    _host = None


def host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost(**_settings)
    return _host.load()


def reset() -> None:
    """Forget loaded plugins and settings (the next lookup reloads them)."""
    configure()


def import_plugin_module(spec: str) -> ModuleType:
    """Import a ``--plugin`` module: a dotted name (also looked up in the current
    directory, as ``python -m`` would) or the path of a ``.py`` file."""
    path = Path(spec)
    if spec.endswith(".py") or os.sep in spec:
        if not path.is_file():
            raise FileNotFoundError(f"no plugin file {spec}")
        name = f"polyjepa_plugin_{path.stem}"
        if name in sys.modules:
            return sys.modules[name]
        loc = importlib.util.spec_from_file_location(name, path.resolve())
        if loc is None or loc.loader is None:
            raise ImportError(f"{spec} is not an importable Python file")
        module = importlib.util.module_from_spec(loc)
        sys.modules[name] = module
        try:
            loc.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(spec)


def loaded_plugin_modules() -> list[str]:
    """The ``--plugin`` modules this process loaded, as a run records them (file paths
    made absolute, so a later command finds them from any directory)."""
    out = []
    for p in host().plugins:
        if p.source == "--plugin":
            spec = p.name
            if spec.endswith(".py") or os.sep in spec:
                spec = str(Path(spec).resolve())
            out.append(spec)
    return out


def ensure_plugins(modules: list[str]) -> None:
    """Load the plugin modules a run recorded, if this process has not loaded them."""
    h = host()
    for mod in modules or []:
        if not any(p.name == mod for p in h.plugins):
            h.add_explicit(mod)


def plugin_modules() -> list[str]:
    """Modules named with ``--plugin`` for this process (passed on to worker processes)."""
    return list(_settings.get("modules") or [])
