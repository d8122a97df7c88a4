"""Writes, one module per area. Views, the API, jobs and commands call these; nothing else writes."""


class ServiceError(Exception):
    """A request that the current state does not allow; the message is safe to show to the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
