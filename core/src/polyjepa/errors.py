"""Exceptions polyjepa raises, each meant to be read by a person."""

from __future__ import annotations


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
