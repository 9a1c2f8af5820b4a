"""Exceptions polyjepa raises, each meant to be read by a person."""

from __future__ import annotations

import sys
import warnings


class PolyjepaError(Exception):
    """Base class: something the user can fix, with a message that says what."""


class PluginError(PolyjepaError):
    """A plugin failed to load, registered a duplicate name, or built the wrong object."""


class UnknownComponentError(PolyjepaError, KeyError):
    """A component name no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigError(PolyjepaError, ValueError):
    """A configuration value or file is invalid."""


class DataError(PolyjepaError, ValueError):
    """Input data is missing, empty, corrupt or of the wrong shape."""


class CheckpointError(PolyjepaError):
    """A checkpoint or run folder cannot be read safely."""


class TrainingDiverged(PolyjepaError):
    """The loss became NaN or infinite; training stopped before saving bad weights."""


class PolyjepaWarning(UserWarning):
    """Something about the user's data or settings worth knowing that does not stop the
    run; the command line prints each one once, on one line."""


def warn(message: str, category: type[Warning] = PolyjepaWarning) -> None:
    """Warn with the location of the first caller outside polyjepa and its plugins (the
    user's line), however deep inside the core or a plugin the warning starts.

    Frames of modules named ``polyjepa`` or ``polyjepa_*`` are skipped, so a plugin
    calling this from its reader points the warning at the user's call too.
    """
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn()'s caller
    while frame is not None and _is_ours(frame.f_globals.get("__name__") or ""):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _is_ours(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top == "polyjepa" or top.startswith("polyjepa_")
