"""The test suite: fast hashing, a throwaway var/ directory, the same database and Redis switches."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403

SECRET_KEY = "test-secret-key"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="labelloop-media-"))
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="labelloop-static-"))  # exists, so WhiteNoise does not warn on every request
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Per process, so tests never share sign-in failure counts through a real Redis (tests clear it between them).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Most tests snapshot a handful of items; the small-test refusal has its own tests, which set the minimum.
LABELLOOP_MIN_TEST_PER_LABEL = 0
LABELLOOP_SCAN_MODEL = "linear"  # whatever the machine's environment says: tests that want the encoder set it
# Tests deliver webhooks to a local http.server; the address rule has its own tests, which switch it back on.
LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = True
if not os.environ.get("REDIS_URL"):
    # Each test run gets its own embedded Redis, so a running `make demo` is never touched.
    EMBEDDED_REDIS_SOCKET = Path(tempfile.mkdtemp(prefix="labelloop-redis-")) / "redis.sock"
    RQ_REDIS_URL = f"unix://{EMBEDDED_REDIS_SOCKET}"
    for _queue in RQ_QUEUES.values():  # noqa: F405
        _queue["URL"] = RQ_REDIS_URL
