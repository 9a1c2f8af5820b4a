"""The reader settings a run keeps in its dataset ``state`` and reuses on new data.

A run's encoder is used on data rebuilt from ``run.config["dataset_state"]``
(``polyjepa.embed``, ``polyjepa.evaluate``, or ``create_dataset(..., state=...)`` by
hand). For those items to be the tiles training saw, the state carries how tiles were cut
and pre-processed, and a setting not given is taken from it: an argument given wins, then
the run's value, then the reader's default.
"""

from __future__ import annotations

from typing import Any

from polyjepa.errors import ConfigError
from polyjepa.validation import same_type

# reader defaults of the settings a run's state carries (``bands`` is kept as
# ``band_selection``: ``state["bands"]`` is the channel count)
SCENE = {"tile_size": 64, "patch_size": 8, "units": "auto", "transform": "db",
         "speckle_filter": None, "filter_size": 5, "looks": 1.0, "min_valid": 0.5,
         "min_tile_valid": 0.25, "max_tiles": None, "seed": 0, "nodata": None,
         "band_selection": None}
CHIP = {"chip_size": 64, "fit": "crop", "patch_size": 8, "units": "auto", "transform": "db",
        "speckle_filter": None, "filter_size": 5, "looks": 1.0, "min_valid": 0.5,
        "nodata": None, "band_selection": None}
PREP = ("units", "transform", "speckle_filter", "filter_size", "looks")
_NUMBERS = ("max_tiles", "nodata")  # numbers or None (no default to check the type against)


def resolve(given: dict[str, Any], state: dict[str, Any] | None,
            defaults: dict[str, Any]) -> dict[str, Any]:
    """Each setting of ``defaults``: from ``given`` if not ``None``, else from ``state``,
    else the default; values of the wrong type raise ``ConfigError``."""
    out = {}
    for key, default in defaults.items():
        value = given.get(key)
        if value is None and state:
            value = state.get(key)
        if value is None:
            value = default
        same_type(f"dataset.{key}", default, value, lists=False)
        if key in _NUMBERS and value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"setting 'dataset.{key}': {value!r} is not a number")
        out[key] = list(value) if isinstance(value, tuple) else value
    return out

