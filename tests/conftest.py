"""The suite's shared fixtures live in tests/fixtures/, one module per area; every test module gets them from here."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

pytest_plugins = [
    "tests.fixtures.people",
    "tests.fixtures.api",
    "tests.fixtures.tiny_models",
    "tests.fixtures.runs",
    "tests.fixtures.production",
    "tests.fixtures.pages",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with no sign-in failures counted (the test settings use a per-process local cache)."""
    cache.clear()
    yield
    cache.clear()


def pytest_unconfigure(config):
    """Stop this run's embedded redis-server (tests get their own socket, see config/settings/test.py).

    The first queue a test makes starts it (config/embedded_redis.py); a hook rather than a session fixture,
    so it is stopped however the run ends. `shutdown` does nothing when no test started it.
    """
    if settings.configured and not settings.REDIS_URL:
        from config.embedded_redis import shutdown

        shutdown(settings.EMBEDDED_REDIS_SOCKET)
