"""The `id` path converter of browser pages: a row id of at most 18 digits.

`<int:...>` matches any number of digits, and a 25-digit id reaches the query, where PostgreSQL and SQLite
overflow (a 500). Eighteen digits always fit a BigAutoField (ids up to 2**63 - 1, 19 digits), so a longer
one is a 404 at routing, like any id that names no row. The API keeps `int`: `core.api.ApiView` answers
an id beyond the column's range with its JSON 400.
"""

from __future__ import annotations

from django.urls import register_converter

MAX_ID_DIGITS = 18


class IdConverter:
    regex = f"[0-9]{{1,{MAX_ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def register() -> None:
    """Called by annotation's AppConfig.ready, before any urls module builds its patterns."""
    register_converter(IdConverter, "id")
