"""polyjepa-ecg: ECG-JEPA components for polyjepa (readers, encoder, maskers, metrics)."""

__version__ = "0.1.0"
