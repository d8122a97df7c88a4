"""Numbers as people read them: no rounding that changes what a setting says (a budget of 2.25 is not "2.3")."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def figure(value: object) -> str:
    """Up to four decimals, trailing zeros dropped: 2.25 -> "2.25", 2.125 -> "2.125", 2.5 -> "2.5", 3.0 -> "3"."""
    if not isinstance(value, int | float):
        return "" if value is None else str(value)
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@register.filter
def percent(value: object) -> str:
    """A rate in [0, 1] as a percentage figure: 0.1 -> "10", 0.004 -> "0.4", 0.125 -> "12.5", 0.00004 -> "0.004"."""
    if not isinstance(value, int | float):
        return ""
    return figure(100 * value)


@register.filter
def percent1(value: object) -> str:
    """A share in [0, 1] as a percentage with one decimal, where rounding to a whole one would blur a threshold:
    0.3054 -> "30.5"."""
    if not isinstance(value, int | float):
        return ""
    return f"{100 * value:.1f}"


@register.filter
def thousands(value: object) -> str:
    """A count with thousands separated, as the rest of the page writes them: 1200 -> "1,200"."""
    if not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value:,.0f}"
