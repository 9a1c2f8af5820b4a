"""Name registries for components, in the style of timm's ``create_model``/``list_models``."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import PluginError, UnknownComponentError

KINDS = ("encoders", "maskers", "predictors", "evaluators", "datasets", "recipes", "commands",
         "loggers")


@dataclass
class Entry:
    """One registered component: its name, lazy factory and the plugin that provided it."""

    name: str
    factory: Callable[..., Any] | str
    plugin: str
    distribution: str | None = None
    description: str = ""

    @property
    def provider(self) -> str:
        if self.distribution and self.distribution != self.plugin:
            return f"{self.plugin} ({self.distribution})"
        return self.plugin

    def resolve(self) -> Callable[..., Any]:
        """Import a lazy ``"module:attr"`` factory; errors name the providing plugin."""
        if callable(self.factory):
            return self.factory
        module_name, _, attr = str(self.factory).partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(
                f"plugin {self.provider!r} registered {self.name!r} as {self.factory!r}, "
                f"which cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(obj):
            raise PluginError(
                f"plugin {self.provider!r} registered {self.name!r} as {self.factory!r}, "
                "which is not callable"
            )
        self.factory = obj
        return obj


def _domain_of(name: str) -> str | None:
    return name.split(".", 1)[0] if "." in name else None


class Registry:
    """Components of one kind (encoders, maskers, ...), keyed by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self.failures: list[Any] = []  # the host's broken plugins, for error messages

    def add(self, entry: Entry) -> None:
        if not entry.name or not isinstance(entry.name, str):
            raise PluginError(f"plugin {entry.provider!r} registered a {self.kind[:-1]} "
                              f"with an invalid name {entry.name!r}")
        if entry.name in self._entries:
            other = self._entries[entry.name]
            raise PluginError(
                f"duplicate {self.kind[:-1]} name {entry.name!r}: registered by both "
                f"{other.provider!r} and {entry.provider!r}"
            )
        if not (callable(entry.factory) or (isinstance(entry.factory, str) and ":" in entry.factory)):
            raise PluginError(
                f"plugin {entry.provider!r} registered {entry.name!r} with factory "
                f"{entry.factory!r}: expected a callable or a 'module:attribute' string"
            )
        self._entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        singular = self.kind[:-1]
        msg = f"unknown {singular} {name!r}."
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        if close:
            msg += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        domain = _domain_of(name) or name
        broken = [f for f in self.failures
                  if domain in (f.name, f.distribution, f"polyjepa-{f.name}")
                  or f.distribution == f"polyjepa-{domain}"]
        if broken:
            msg += (f" Plugin {broken[0].name!r} is installed but broken, so its components "
                    f"are missing: {broken[0].message}")
        elif not any(n == domain or n.startswith(domain + ".") for n in self.names()):
            msg += (f" If it comes from a plugin, install it: pip install polyjepa-{domain}"
                    " (or name a module with --plugin).")
        if self.names():
            msg += f" Available {self.kind}: {', '.join(self.names())}."
        else:
            msg += f" No {self.kind} are registered."
        return msg
