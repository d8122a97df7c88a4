"""The one error a service raises for input it refuses: a message for people and the field it concerns."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that the current state does not allow; the message is safe to show to the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
