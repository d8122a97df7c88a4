"""The embedded Redis starts where a process needs it (a queue, the web server), never at Django's setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["check"], ["migrate", "--noinput"]])
def test_management_commands_that_need_no_redis_start_none(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "LABELLOOP_REDIS_SOCKET")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.dev", LABELLOOP_VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "redis.sock").exists() and not (tmp_path / "redis.pid").exists()


def test_making_a_queue_starts_the_embedded_server(settings):
    import django_rq

    from config.embedded_redis import EmbeddedRedisQueue

    if settings.REDIS_URL:
        pytest.skip("a real Redis server is configured")
    queue = django_rq.get_queue("default")
    assert isinstance(queue, EmbeddedRedisQueue)
    assert queue.connection.ping()
    assert Path(settings.EMBEDDED_REDIS_SOCKET).exists()
