"""Ratings: people judge a run's outputs (correct/wrong, scores, corrections, blind A/B)."""
