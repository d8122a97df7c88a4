"""Explanations of a run's outputs: why the model said what it said (docs/training.md#explanations)."""
