"""Training runs and their outputs (see the training backend issue)."""
