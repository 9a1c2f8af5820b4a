"""polyjepa-recsys: JEPA for recommendation data (item tower and sequence encoder)."""
