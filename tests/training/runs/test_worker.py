"""The real worker: `manage.py rqworker training --burst` in a subprocess (RQ forks a work horse per job) is
killed with SIGKILL once a checkpoint exists; the sweep marks the run failed (abandoned), and its resume — a new
run — continues from the checkpoint step and succeeds. Also: the job module never imports torch (CUDA must
initialise in the work horse only), and the heartbeat thread keeps beating through failed writes.

On SQLite the suite's database lives in memory, which no other process can open: the test copies it into a
file for the worker (sqlite3's backup API) and copies the file back after the kill. On PostgreSQL the worker
simply uses the test database.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection

from tests.fixtures.runs import TINY_BERT_SPEC, run_worker
from training.models import RunStatus, TrainingRun
from training.runs import jobs, selectors, services

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 180
# Many short epochs with a checkpoint every 2 steps: the worker is caught mid-run, well before its last step.
KILLABLE_SPEC = {**TINY_BERT_SPEC, "epochs": 30, "save_steps": 2, "eval_steps": 50}


def test_the_job_module_imports_no_ml_library():
    code = (
        "import sys, django; django.setup(); import training.runs.jobs, training.runs.services, training.runs.apis; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LABELLOOP_EMBEDDED_REDIS": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_heartbeat_thread_beats_until_the_block_ends_and_survives_failed_writes():
    beats: list[float] = []

    def beat() -> bool:
        beats.append(time.monotonic())
        if len(beats) == 2:
            raise DatabaseError("database is locked")
        return True

    with jobs.heartbeat(beat, every_s=0.01):
        time.sleep(0.2)
    count = len(beats)
    assert count >= 4, "it kept beating after a failed write"
    time.sleep(0.05)
    assert len(beats) == count, "it stopped with the block"
    assert not [t for t in threading.enumerate() if t.name == "labelloop-heartbeat"]


def _worker_settings(folder: Path, database: dict) -> str:
    """A settings module for the worker process: this test's database, media folder, Redis and models."""
    module = folder / "killtest_settings.py"
    module.write_text(
        "from pathlib import Path\n"
        "from config.settings.test import *  # noqa\n"
        f"DATABASES = {{'default': {database!r}}}\n"
        f"MEDIA_ROOT = Path({str(settings.MEDIA_ROOT)!r})\n"
        f"EMBEDDED_REDIS_SOCKET = Path({str(settings.EMBEDDED_REDIS_SOCKET)!r})\n"
        f"RQ_QUEUES = {settings.RQ_QUEUES!r}\n"
        f"LABELLOOP_MODEL_REGISTRY = {settings.LABELLOOP_MODEL_REGISTRY!r}\n"
        "LABELLOOP_RUN_HEARTBEAT_S = 0.2\n"
    )
    return module.stem


def _database_for_worker(folder: Path) -> dict:
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    database = {key: connection.settings_dict[key] for key in keys if key in connection.settings_dict}
    if connection.vendor == "sqlite":
        database["NAME"] = str(folder / "worker.sqlite3")
        database["OPTIONS"] = {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    return database


def _run_row(database: dict, run_id: int) -> tuple[str, dict, str | None, str]:
    """The run's status, progress, heartbeat and worker as the worker left them (not through Django on SQLite)."""
    if connection.vendor != "sqlite":
        run = TrainingRun.objects.get(pk=run_id)
        return run.status, run.progress, run.heartbeat_at and run.heartbeat_at.isoformat(), run.worker
    with sqlite3.connect(database["NAME"], timeout=30) as db:
        status, progress, heartbeat, worker = db.execute(
            "SELECT status, progress, heartbeat_at, worker FROM training_trainingrun WHERE id = ?", (run_id,)
        ).fetchone()
    return status, json.loads(progress), heartbeat, worker


def _kill_worker(worker: subprocess.Popen, horse: str) -> None:
    """SIGKILL the worker and its work horse, like a machine that went away.

    RQ puts the horse in a process group of its own; the run's `worker` field names it ("host:pid"), and it is
    killed only when /proc confirms it is this worker's child.
    """
    horse_pid = int(horse.rsplit(":", 1)[1]) if horse else 0
    stat = Path(f"/proc/{horse_pid}/stat")
    if horse_pid and stat.exists() and int(stat.read_text().rsplit(")", 1)[1].split()[1]) == worker.pid:
        os.kill(horse_pid, signal.SIGKILL)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


@pytest.mark.slow
def test_a_killed_worker_is_swept_as_abandoned_and_the_run_resumes_from_its_checkpoint(
    transactional_db, tiny_models, queues, owner, tmp_path, django_capture_on_commit_callbacks
):
    from tests.fixtures.runs import sentiment_snapshot

    snapshot = sentiment_snapshot(owner)
    run = services.run_start(snapshot=snapshot, user=owner, spec_data=KILLABLE_SPEC, name="killed")
    assert queues[services.QUEUE].fetch_job(f"train-{run.pk}") is not None  # committed: enqueued at once

    database = _database_for_worker(tmp_path)
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        with sqlite3.connect(database["NAME"]) as file_db:
            connection.connection.backup(file_db)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": _worker_settings(tmp_path, database),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "OMP_NUM_THREADS": "1",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", services.QUEUE, "--burst"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    checkpoints = settings.MEDIA_ROOT / "runs" / str(run.pk) / "checkpoints"
    heartbeats, horse = set(), ""
    try:
        deadline = time.monotonic() + WAIT_S
        while not selectors.checkpoint_steps(checkpoints):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint in time"
            status, _, heartbeat, horse = _run_row(database, run.pk)
            heartbeats.add(heartbeat)
            time.sleep(0.05)
        status, progress, heartbeat, horse = _run_row(database, run.pk)
        heartbeats.add(heartbeat)
        assert status == RunStatus.RUNNING and progress.get("step", 0) < progress.get("total_steps", 1)
    finally:
        _kill_worker(worker, horse)
        log.close()
    assert len(heartbeats - {None}) >= 2, "the heartbeat thread stamped the run while it trained"
    killed_at = selectors.checkpoint_steps(checkpoints)[-1]

    if connection.vendor == "sqlite":
        with sqlite3.connect(database["NAME"]) as file_db:
            file_db.backup(connection.connection)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nothing told the database: only the heartbeat has stopped
    time.sleep(0.3)
    assert services.runs_mark_abandoned(stale_after_s=0.2) == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error == services.ABANDONED

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.run_resume(run=run, user=owner)
    run_worker()
    resumed.refresh_from_db()
    assert resumed.status == RunStatus.SUCCEEDED, resumed.error
    assert resumed.resumed_from_id == run.pk
    assert resumed.progress["resumed_from_step"] == killed_at
    first = resumed.events.filter(kind="train").order_by("id").first()
    assert first.step == killed_at + 1
    assert resumed.metrics["outcome"]["step"] == resumed.metrics["outcome"]["total_steps"]
