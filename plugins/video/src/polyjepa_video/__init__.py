"""polyjepa-video: V-JEPA pre-training on video clips (a polyjepa plugin)."""

__version__ = "0.1.0"
