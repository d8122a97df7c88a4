"""How the next round orders unlabelled items: entropy, margin and a random share (numpy, no Django)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def random_slots(n: int, share: float) -> np.ndarray:
    """Which of n queue slots take a random item: evenly spread, e.g. 0.2 → every 5th slot."""
    if n == 0 or share <= 0:
        return np.zeros(n, dtype=bool)
    index = np.arange(n, dtype=np.float64)
    return np.floor((index + 1) * share + 1e-9) > np.floor(index * share + 1e-9)


def margin(probabilities: Mapping[str, float] | None) -> float:
    """1 − (p1 − p2): 1 when the two likeliest labels tie, 0 when the model is certain."""
    if not probabilities:
        return math.nan
    top = sorted((float(p) for p in probabilities.values()), reverse=True)
    return 1.0 - (top[0] - (top[1] if len(top) > 1 else 0.0))


def entropy(probabilities: Mapping[str, float] | None) -> float:
    if not probabilities:
        return math.nan
    p = np.asarray([float(v) for v in probabilities.values()], dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def queue_order(ids: np.ndarray, scores: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(item ids in queue order, whether each slot is random). NaN scores (no output) come after every
    scored item; the random slots are filled from a seeded shuffle of all candidates."""
    n = len(ids)
    slots = random_slots(n, share)
    m = int(slots.sum())
    rng = np.random.default_rng(seed)
    picked = np.zeros(n, dtype=bool)
    picked[rng.permutation(n)[:m]] = True
    rest = np.flatnonzero(~picked)
    rest_scores = np.where(np.isnan(scores[rest]), -np.inf, scores[rest])
    # Highest score first, ties (and the unscored) by item id.
    rest = rest[np.lexsort((ids[rest], -rest_scores))]
    random_part = np.flatnonzero(picked)
    random_part = random_part[rng.permutation(m)]
    order = np.empty(n, dtype=np.int64)
    order[slots] = random_part
    order[~slots] = rest
    return ids[order], slots
