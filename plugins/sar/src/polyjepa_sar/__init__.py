"""polyjepa-sar."""
