"""The one error a service raises for input it refuses: a message for people and the field it concerns."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that the current state does not allow; the message is safe to show to the user.

    `status_code` is the HTTP status the API answers with: 400 (bad input) unless a subclass says otherwise.
    """

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StateConflict(ServiceError):
    """The input is fine but the thing it acts on is no longer in a state that allows it (HTTP 409)."""

    status_code = 409
