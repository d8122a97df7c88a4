"""Durations as a person reads them: `rough` for an estimate of time left, `exact` for time measured.

A noise scan's fine-tuning and a suggestion run say how long is left as `left` does ("about 12 min left"); a training
run's live panel says how long it has run, and its loop's estimate of the rest, as `exact` does ("3 min 20 s").
"""

from __future__ import annotations


def rough(seconds: float) -> str:
    """'40 s', '12 min', '1 h 5 min': an estimate, to the nearest ten seconds or minute (halves rounded up)."""
    if seconds < 90:
        return f"{max(int(seconds / 10 + 0.5) * 10, 10)} s"
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes // 60} h {minutes % 60} min"


def left(seconds: float | None) -> str:
    """'about 12 min left'; empty when unknown."""
    return "" if seconds is None or seconds < 0 else f"about {rough(seconds)} left"


def exact(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 20 s', '12 s'; empty when unknown."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
