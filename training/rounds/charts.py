"""The rounds page's charts: each round's figures as series, and which figures got worse."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from training.models import Round

METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", "rouge_l": "ROUGE-L", "bleu": "BLEU"}


SERIES = (
    ("main_metric", True),
    ("agreement", True),
    ("noise_rate", False),
    ("rating", True),
)


CHART_LABELS = {"agreement": "Agreement (Krippendorff's α)", "noise_rate": "Noise rate (flagged / scanned)"}


def _series_name(key: str, figures: Mapping[str, Any]) -> str:
    if key == "main_metric":
        return METRIC_NAMES.get(figures.get("metric_name", ""), figures.get("metric_name", "the main metric"))
    return {"agreement": "agreement (Krippendorff's α)", "noise_rate": "the noise rate"}.get(
        key, "the human ratings" if key == "rating" else key
    )


def rounds_worse(rounds: list[Round]) -> list[str]:
    """Plain sentences for each closed round that made a figure worse than the round before it."""
    return [sentence for sentences in rounds_worse_by_number(rounds).values() for sentence in sentences]


def rounds_worse_by_number(rounds: list[Round]) -> dict[int, list[str]]:
    """The same sentences keyed by the number of the round that made the figure worse (oldest first)."""
    found: dict[int, list[str]] = {}
    closed = [r for r in rounds if r.closed_at is not None]
    for before, after in itertools.pairwise(closed):
        for key, higher_is_better in SERIES:
            old, new = before.figures.get(key), after.figures.get(key)
            if not isinstance(old, int | float) or not isinstance(new, int | float):
                continue
            if (new < old) if higher_is_better else (new > old):
                found.setdefault(after.number, []).append(
                    f"Round {after.number} made {_series_name(key, after.figures)} worse: {old:.2f} → {new:.2f}"
                )
    return found


def rounds_charts(rounds: list[Round]) -> dict[str, Any]:
    """Chart.js data: one point per closed round for each figure (None where a round has none)."""
    closed = [r for r in rounds if r.closed_at is not None]
    last = closed[-1].figures if closed else {}
    rating_name = last.get("rating_name", "")
    labels = {**CHART_LABELS, "rating": f"Human ratings ({rating_name})" if rating_name else "Human ratings"}
    return {
        "labels": [f"Round {r.number}" for r in closed],
        "series": [
            {
                "key": key,
                "label": labels.get(key) or _series_name(key, last),
                "values": [r.figures.get(key) for r in closed],
            }
            for key, _ in SERIES
        ],
    }
