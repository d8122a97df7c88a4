"""Pre-labelling with untuned models: suggestion runs, their accuracy, and their use for ordering and pre-labels."""
