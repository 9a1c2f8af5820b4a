"""Finding and loading plugins: entry points, ``--plugin`` modules and the built-in plugin.

Plugins are loaded lazily (on the first registry lookup), one at a time, each in its own
``try``: one broken plugin is reported by name and never hides the others, unless strict
mode asks for an exception instead.

Environment variables:

- ``POLYJEPA_PLUGINS=mod_a,mod_b``: extra plugin modules to import and register.
- ``POLYJEPA_LOAD_PLUGINS=ecg,video``: auto-load only these entry points.
- ``POLYJEPA_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points at all.
- ``POLYJEPA_STRICT_PLUGINS=1``: raise on the first broken plugin.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
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


class PluginWarning(UserWarning):
    """A plugin was skipped because it is broken."""


def _env_list(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PluginHost:
    """The plugin manager plus one :class:`Registry` per component kind."""

    def __init__(self, modules: list[str] | None = None, strict: bool | None = None,
                 autoload: bool | None = None, only: list[str] | None = None):
        self.extra_modules = list(modules or []) + _env_list("POLYJEPA_PLUGINS")
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
                self._add_module(mod, name=mod, dist=None, source="--plugin")
            return self

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
                                 _kind: str = kind, **meta: Any) -> None:
                        staged.append((_kind, Entry(comp_name, factory, name, dist,
                                                    description, meta)))

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
        warnings.warn(full, PluginWarning, stacklevel=3)

    # -- lookups -------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        self.load()
        return self.registries[kind]


_host: PluginHost | None = None
_settings: dict[str, Any] = {}


def configure(modules: list[str] | None = None, strict: bool | None = None,
              autoload: bool | None = None) -> None:
    """Set how plugins are found (``--plugin``, strict mode) and forget loaded ones."""
    global _host
    _settings.clear()
    _settings.update({k: v for k, v in {"modules": modules, "strict": strict,
                                         "autoload": autoload}.items() if v is not None})
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


def plugin_modules() -> list[str]:
    """Modules named with ``--plugin`` for this process (passed on to worker processes)."""
    return list(_settings.get("modules") or [])
