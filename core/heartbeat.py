"""A background heartbeat for long work (training runs, prediction batches, imports).

The work stamps its row every LABELLOOP_RUN_HEARTBEAT_S from a daemon thread; a sweep fails rows whose stamp is
older than LABELLOOP_RUN_STALE_AFTER_S, so a process killed mid-work (SIGKILL, a lost machine) is detected
without anything running in that process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection

log = logging.getLogger(__name__)

THREAD_NAME = "labelloop-heartbeat"


@contextmanager
def heartbeat(beat: Callable[[], bool], *, every_s: float | None = None) -> Iterator[None]:
    """Call `beat` every `every_s` seconds in a daemon thread while the block runs.

    The thread has its own database connection, closed when it ends; a failed beat (a locked SQLite file, a
    dropped connection) is logged and retried at the next tick rather than stopping the work.
    """
    interval = settings.LABELLOOP_RUN_HEARTBEAT_S if every_s is None else every_s
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(interval):
                try:
                    beat()
                except DatabaseError:
                    log.warning("heartbeat write failed; retrying in %ss", interval, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name=THREAD_NAME, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
