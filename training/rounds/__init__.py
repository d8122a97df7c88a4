"""Rounds: the plan of the next turn of the loop from a run's outputs and ratings, and applying it."""
