"""The suite's shared fixtures live in tests/fixtures/, one module per area; every test module gets them from here."""

from __future__ import annotations

from django.conf import settings

pytest_plugins = [
    "tests.fixtures.people",
    "tests.fixtures.api",
    "tests.fixtures.tiny_models",
    "tests.fixtures.runs",
]


def pytest_unconfigure(config):
    """Stop this run's embedded redis-server (tests get their own socket, see config/settings/test.py).

    A hook rather than a session fixture: Django's setup starts the server even when no test runs (a
    collection error, a wrong path, -k that selects nothing), and a fixture's teardown would never come.
    """
    if settings.configured and not settings.REDIS_URL:
        from config.embedded_redis import shutdown

        shutdown(settings.EMBEDDED_REDIS_SOCKET)
