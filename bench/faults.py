"""Fault drills against a real stack on loopback: PostgreSQL, a Redis of our own, gunicorn, an RQ worker.

    .venv/bin/python bench/faults.py [--rows 200000] [--only kill-import,postgres,redis-import,redis-run]

Each drill prints what it did, what the database said afterwards, and what recovered it:
- kill-import:  the gunicorn worker serving a big inline import is SIGKILLed during pass 2. Expect no items
  (pass 2 is one transaction), the import "running" until the sweep fails it as abandoned, and the same
  upload sent again imported in full.
- postgres:     gunicorn reaches PostgreSQL through a TCP proxy on loopback that is stopped (every
  connection cut) and restarted. Expect /healthz/ 503 and a submit answered 503 with nothing written while
  it is down, then the same submit stored once after it is back (persistent connections re-established).
- redis-import: an import is queued, then Redis is restarted without its data before a worker took it.
  Expect the import "pending" with no job, the sweep giving it its job back, and a worker importing it.
- redis-run:    a real MiniLM + LoRA run (48 items imported as final labels, 30 steps, a checkpoint every 3) trains
  in `rqworker training default --with-scheduler`; once it has a checkpoint, Redis is SIGKILLed and started again
  empty on the same port. Prints, every few seconds, whether the worker and its work horse live and what the run's
  row says (status, step, heartbeat age), then whatever recovers it: the run finishing on its own, or the worker
  started again, the sweep failing the run as abandoned and `run_resume` from its checkpoint. Expect (observed)
  the worker to survive, the horse to keep training and the run to succeed once (no step repeated in its events), its
  checkpoints, its artifact and its prediction batch; the scheduled sweep lost with Redis's data until a worker
  starts (the drill restarts it) or reaches its maintenance.
The training worker killed mid-run is a test (tests/training/runs/test_worker.py, slow): it trains a real
tiny model. Everything talks to 127.0.0.1 only, uses a fresh database (BENCH_PG_ADMIN_URL, like the other
benchmarks) and a scratch folder, and stops every process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import fresh_database

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATABASE = "labelloop_faults"
PASSWORD = "faults-drill-pass-1"  # noqa: S105 (a throwaway database)
SEED = f"""
from annotation.models import Role
from annotation.projects.services import membership_set, project_create, token_issue
from django.contrib.auth import get_user_model
owner = get_user_model().objects.create_user("owner", password="{PASSWORD}")
annotator = get_user_model().objects.create_user("annotator1", password="{PASSWORD}")
big = project_create(owner=owner, name="Imports", labels=["ham", "spam"], guidelines="Pick one.")
loop = project_create(owner=owner, name="Annotate", labels=["ham", "spam"], guidelines="Pick one.")
membership_set(project=loop, user=annotator, role=Role.ANNOTATOR)
from annotation.models import Item
from annotation.text import content_hash
texts = [f"drill item {{i}}" for i in range(5)]
Item.objects.bulk_create([Item(project=loop, text=t, content_hash=content_hash(t)) for t in texts])
print(big.pk, loop.pk, token_issue(user=owner).key, token_issue(user=annotator).key)
"""
DEADLINE_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"  {message}", flush=True)


class Stack:
    """The environment every process of one drill shares, and the processes it started (stopped at the end)."""

    def __init__(self, folder: Path, database_url: str, redis_port: int) -> None:
        self.folder = folder
        self.redis_port = redis_port
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "MEDIA_ROOT": str(folder / "media"),
            "LABELLOOP_VAR_DIR": str(folder / "var"),
            "LABELLOOP_RUN_HEARTBEAT_S": "1",
            "LABELLOOP_RUN_STALE_AFTER_S": "5",
            "LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=env or self.env, capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code).strip()

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        logfile = (self.folder / f"{name}.log").open("a")
        process = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def redis(self) -> subprocess.Popen:
        """A Redis without persistence: a restart loses every job, as a crashed Redis without AOF would."""
        return self.start(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
        )

    def gunicorn(self, port: int, env: dict[str, str] | None = None, workers: int = 1) -> subprocess.Popen:
        process = self.start(
            "gunicorn",
            [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--timeout", "300"],
            env,
        )
        wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/healthz/")[0] in (200, 503), "gunicorn to answer")
        return process

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                self.stop(process)


def wait_for(check: object, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise TimeoutError(f"gave up waiting for {what}")


def http(
    method: str, url: str, *, token: str = "", body: bytes | None = None, content_type: str = ""
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (loopback only)
    if token:
        request.add_header("Authorization", f"Token {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 (loopback only)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def multipart(file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def import_rows(rows: int) -> bytes:
    return b"".join(json.dumps({"text": f"fault drill row {i} {uuid.uuid4().hex}"}).encode() + b"\n"
                    for i in range(rows))


def db_counts(stack: Stack, project_id: int) -> dict:
    """Items and imports of a project as the database has them (a fresh process: nothing cached)."""
    return json.loads(stack.shell(
        "import json; from annotation.models import ImportJob, Item; "
        f"print(json.dumps({{'items': Item.objects.filter(project_id={project_id}).count(), "
        f"'imports': list(ImportJob.objects.filter(project_id={project_id}).order_by('pk')"
        ".values_list('pk', 'status', 'rows_imported'))}))"
    ))


# --- Drill: the web process killed mid-import ---------------------------------------------------------------


def drill_kill_import(stack: Stack, project_id: int, owner_token: str, rows: int) -> bool:
    print(f"\n[kill-import] SIGKILL the gunicorn worker during pass 2 of an inline import of {rows} rows")
    env = {**stack.env, "LABELLOOP_IMPORT_INLINE_MAX_ROWS": str(rows + 1)}
    port = free_port()
    server = stack.gunicorn(port, env)
    body, content_type = multipart("big.jsonl", import_rows(rows))
    url = f"http://127.0.0.1:{port}/api/projects/{project_id}/imports/"
    answer: list[tuple[int, bytes] | BaseException] = []

    def upload() -> None:
        try:
            answer.append(http("POST", url, token=owner_token, body=body, content_type=content_type))
        except BaseException as exc:  # the connection dies with the worker
            answer.append(exc)

    sender = threading.Thread(target=upload)
    sender.start()
    # Pass 2 starts when rows_read reaches the file's rows (pass 1 writes it for the bar).
    probe = (
        "from annotation.models import ImportJob; "
        f"j = ImportJob.objects.filter(project_id={project_id}).order_by('-pk').first(); "
        "print(j.status if j else '-', j.rows_read if j else 0, j.rows_imported if j else 0)"
    )
    deadline = time.monotonic() + DEADLINE_S
    while True:
        status, rows_read, rows_imported = stack.shell(probe).split()
        if status == "running" and int(rows_read) == rows:
            break
        if status in ("succeeded", "failed") or time.monotonic() > deadline:
            log(f"missed pass 2 (status {status}); use more --rows")
            return False
        time.sleep(0.1)
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    log(f"killed gunicorn worker(s) {', '.join(children)} at rows_imported={rows_imported} (pass 2)")
    sender.join(timeout=60)
    log(f"the client saw: {answer[0] if answer else 'nothing yet'!r}"[:200])
    after_kill = db_counts(stack, project_id)
    log(f"database after the kill: {after_kill}")
    ok = after_kill["items"] == 0 and after_kill["imports"][-1][1] == "running"

    time.sleep(float(stack.env["LABELLOOP_RUN_STALE_AFTER_S"]) + 1)
    log(f"sweep: {stack.manage('runs_sweep').strip()}")
    after_sweep = db_counts(stack, project_id)
    log(f"database after the sweep: {after_sweep}")
    ok &= after_sweep["items"] == 0 and after_sweep["imports"][-1][1] == "failed"

    wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/healthz/")[0] == 200, "gunicorn's new worker")
    started = time.monotonic()
    http_status, _ = http("POST", url, token=owner_token, body=body, content_type=content_type)
    retried = db_counts(stack, project_id)
    log(f"the same upload again: HTTP {http_status} in {time.monotonic() - started:.1f}s; database: {retried}")
    ok &= http_status == 201 and retried["items"] == rows and retried["imports"][-1][1:] == ["succeeded", rows]
    stack.stop(server)
    print(f"[kill-import] {'OK' if ok else 'FAILED'}: nothing half-imported, swept as abandoned, retry imported all")
    return ok


# --- Drill: PostgreSQL unreachable for a moment ----------------------------------------------------------------


class Proxy:
    """A TCP proxy on loopback that can be cut (listener closed, every connection reset) and started again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.running = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        self.sockets = [listener]
        self.running.set()
        self.thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self.running.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            while self.running.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)

    def cut(self) -> None:
        self.running.clear()
        if self.thread is not None:
            self.thread.join()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()
        self.sockets = []


def annotations_of(stack: Stack, item_id: int) -> str:
    code = f"from annotation.models import Annotation; print(Annotation.objects.filter(item_id={item_id}).count())"
    return stack.shell(code)


def drill_postgres(stack: Stack, database_url: str, project_id: int, token: str) -> bool:
    print("\n[postgres] cut the connection to PostgreSQL (a proxy on loopback) while gunicorn serves, then restore it")
    host_port = database_url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = Proxy((host, int(port or 5432)))
    proxy.start()
    env = {**stack.env, "DATABASE_URL": database_url.replace(host_port, f"127.0.0.1:{proxy.port}"),
           "DB_CONN_MAX_AGE": "600"}
    web_port = free_port()
    server = stack.gunicorn(web_port, env)
    base = f"http://127.0.0.1:{web_port}"
    api = f"{base}/api/projects/{project_id}"
    ok = http("POST", f"{api}/guidelines/1/acknowledgements/", token=token)[0] in (200, 201)
    status, body = http("POST", f"{api}/claims/next/", token=token)
    item_id = json.loads(body)["item_id"]
    log(f"before: /healthz/ {http('GET', f'{base}/healthz/')[0]}, claimed item {item_id} (HTTP {status})")

    proxy.cut()
    health = http("GET", f"{base}/healthz/")[0]
    submit_body = json.dumps({"value": {"label": "spam"}}).encode()
    status, body = http("POST", f"{api}/items/{item_id}/annotations/", token=token, body=submit_body,
                        content_type="application/json")
    me_status = http("GET", f"{base}/api/me/", token=token)[0]
    log(f"PostgreSQL cut: /healthz/ {health}; submit HTTP {status} {body.decode()[:160]}; GET /api/me/ {me_status}")
    stored = annotations_of(stack, item_id)
    log(f"annotations stored for the item while cut: {stored}")
    ok &= health == 503 and status == me_status == 503 and stored == "0"

    proxy.start()
    time.sleep(0.5)
    health = http("GET", f"{base}/healthz/")[0]
    statuses = [
        http("POST", f"{api}/items/{item_id}/annotations/", token=token, body=submit_body,
             content_type="application/json")[0]
        for _ in range(2)
    ]
    stored = annotations_of(stack, item_id)
    log(f"PostgreSQL back: /healthz/ {health}; the same submit twice: HTTP {statuses}; stored {stored}")
    ok &= health == 200 and statuses == [201, 201] and stored == "1"
    stack.stop(server)
    proxy.cut()
    print(f"[postgres] {'OK' if ok else 'FAILED'}: 503 and nothing written while down; recovered; stored once")
    return ok


# --- Drill: Redis restarted during an import ----------------------------------------------------------------


def drill_redis_import(
    stack: Stack, redis: subprocess.Popen, project_id: int, token: str
) -> tuple[bool, subprocess.Popen]:
    print("\n[redis-import] queue an import, restart Redis without its data before a worker takes it")
    env = {**stack.env, "LABELLOOP_IMPORT_INLINE_MAX_ROWS": "10"}
    port = free_port()
    server = stack.gunicorn(port, env)
    rows = 500
    body, content_type = multipart("queued.jsonl", import_rows(rows))
    status, answer = http("POST", f"http://127.0.0.1:{port}/api/projects/{project_id}/imports/", token=token,
                          body=body, content_type=content_type)
    job = json.loads(answer)
    log(f"upload: HTTP {status}, import {job['id']} {job['status']}")
    stack.stop(redis)
    redis = stack.redis()
    wait_for(lambda: socket.create_connection(("127.0.0.1", stack.redis_port), timeout=1), "Redis")
    log(f"Redis restarted; database: {db_counts(stack, project_id)['imports'][-1]}")
    time.sleep(float(stack.env["LABELLOOP_RUN_STALE_AFTER_S"]) + 1)  # the sweep leaves young imports alone
    log(f"sweep: {stack.manage('runs_sweep').strip()}")
    worker = stack.start("worker", [PY, "manage.py", "rqworker", "imports", "--burst"])
    worker.wait(timeout=DEADLINE_S)
    final = db_counts(stack, project_id)["imports"][-1]
    log(f"after a worker ran: {final}")
    ok = status == 202 or status == 201
    ok &= final[1:] == ["succeeded", rows]
    stack.stop(server)
    print(f"[redis-import] {'OK' if ok else 'FAILED'}: the lost job was requeued by the sweep and imported")
    return ok, redis


# --- Drill: Redis restarted during a training run ------------------------------------------------------------

TRAIN_SEED = """
import io, json
from django.contrib.auth import get_user_model
from annotation.datasets.services import snapshot_create
from annotation.imports.services import import_create
from annotation.projects.services import project_create
owner = get_user_model().objects.get(username="owner")
project = project_create(owner=owner, name="Training", labels=["ham", "spam"], guidelines="Pick one.")
ham = ["see you at lunch", "call me when you are home", "thanks for the notes", "running late, sorry"]
spam = ["win a free prize now", "claim your cash reward", "urgent: you won a voucher", "free entry, text WIN"]
rows = [{"text": f"{(spam if i % 2 else ham)[i % 4]} #{i}", "label": "spam" if i % 2 else "ham"} for i in range(ROWS)]
data = "".join(json.dumps(row) + "\\n" for row in rows).encode()
job = import_create(project=project, user=owner, file_name="labelled.jsonl", fileobj=io.BytesIO(data),
                    labels_as="final", inline=True)
# A drill-sized set: its test split is far below LABELLOOP_MIN_TEST_PER_LABEL, and the drill does not care.
snapshot = snapshot_create(project=project, user=owner, name="drill", allow_small_test=True)
print(job.status, job.rows_imported, snapshot.pk)
"""
# MiniLM + LoRA, tiny: a step takes about a second on a busy 2-core machine, a checkpoint every 3 steps.
RUN_SPEC = {"base_model": "minilm", "epochs": 6, "batch_size": 8, "max_length": 32, "learning_rate": 3e-3,
            "warmup_ratio": 0.0, "save_steps": 3, "eval_steps": 0, "early_stopping_patience": 0}
RUN_ROWS = 48
RUN_PROBE = """
import json
from django.utils import timezone
from training.models import RunEvent, TrainingRun
from training.runs import selectors
rows = []
for run in TrainingRun.objects.filter(pk__gte=%d).order_by("pk"):
    events = list(run.events.order_by("pk").values_list("kind", "step", "data"))
    train_steps = [step for kind, step, _ in events if kind == RunEvent.Kind.TRAIN]
    rows.append({
        "id": run.pk, "status": run.status, "error": run.error, "worker": run.worker,
        "resumed_from": run.resumed_from_id, "step": run.progress.get("step", 0),
        "total_steps": run.progress.get("total_steps"), "phase": run.progress.get("phase"),
        "resumed_from_step": run.progress.get("resumed_from_step"),
        "heartbeat_age_s": round((timezone.now() - run.heartbeat_at).total_seconds(), 1) if run.heartbeat_at else None,
        "starts": sum(1 for kind, _, data in events if kind == "log" and data.get("message", "").startswith("Started")),
        "train_events": len(train_steps), "first_train_step": train_steps[0] if train_steps else None,
        "last_train_step": train_steps[-1] if train_steps else None,
        "steps_repeated": len(train_steps) - len(set(train_steps)),
        "checkpoints": selectors.checkpoint_steps(selectors.media_path(run.checkpoint_dir)),
        "artifact": selectors.run_artifact_path(run) is not None,
        "batches": list(run.prediction_batches.values_list("status", "done", "total")),
    })
print(json.dumps(rows))
"""
RUN_START = """
from django.contrib.auth import get_user_model
from annotation.models import Snapshot
from training.runs.services import run_start
owner = get_user_model().objects.get(username="owner")
run = run_start(snapshot=Snapshot.objects.get(pk=%d), user=owner, spec_data=%r, name="redis drill")
print(run.pk)
"""
RUN_RESUME = """
from training.models import TrainingRun
from training.runs.services import run_resume
run = TrainingRun.objects.get(pk=%d)
print(run_resume(run=run, user=run.created_by).pk)
"""
SWEEP_PENDING = """
import django_rq
from training.runs import services
connection = django_rq.get_queue(services.SWEEP_QUEUE).connection
print(sum(services._job_pending(i, connection) for i in services.SWEEP_JOB_IDS))
"""
TERMINAL = ("succeeded", "failed", "cancelled")


def alive(pid: int) -> bool:
    """True while `pid` runs and is no zombie (an orphaned work horse is reaped by init, a dead child is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def drill_redis_run(stack: Stack, redis: subprocess.Popen) -> tuple[bool, subprocess.Popen]:
    print("\n[redis-run] a MiniLM run training in an RQ work horse; Redis killed and restarted without its data")
    status, imported, snapshot_id = stack.shell(TRAIN_SEED.replace("ROWS", str(RUN_ROWS))).splitlines()[-1].split()
    log(f"seeded: import {status}, {imported} items approved as final labels; snapshot {snapshot_id}")
    worker_args = [PY, "manage.py", "rqworker", "training", "default", "--with-scheduler"]
    worker = stack.start("worker", worker_args)
    run_id = int(stack.shell(RUN_START % (int(snapshot_id), RUN_SPEC)).splitlines()[-1])

    def runs() -> list[dict]:
        return json.loads(stack.shell(RUN_PROBE % run_id).splitlines()[-1])

    def show(row: dict) -> str:
        return (f"run {row['id']} {row['status']}{' (' + row['error'] + ')' if row['error'] else ''} "
                f"step {row['step']}/{row['total_steps']} {row['phase']}, heartbeat {row['heartbeat_age_s']} s old, "
                f"checkpoints {row['checkpoints']}")

    deadline = time.monotonic() + DEADLINE_S * 2
    while True:
        row = runs()[0]
        if row["status"] == "running" and row["checkpoints"] and row["step"] < (row["total_steps"] or 0) - 6:
            break
        if row["status"] in TERMINAL or time.monotonic() > deadline or worker.poll() is not None:
            log(f"missed the run mid-training: {show(row)}")
            return False, redis
        time.sleep(1)
    horse = int(row["worker"].rsplit(":", 1)[1])
    log(f"before: {show(row)}; worker pid {worker.pid}, work horse pid {horse}")
    stack.stop(redis, signal.SIGKILL)
    redis = stack.redis()
    wait_for(lambda: socket.create_connection(("127.0.0.1", stack.redis_port), timeout=1), "Redis")
    restarted = time.monotonic()
    log(f"Redis SIGKILLed and started again empty on port {stack.redis_port}; "
        f"sweep jobs pending in Redis: {stack.shell(SWEEP_PENDING)}")

    # Watch: the worker process, its work horse, and what the run's row says, until the run ends or stalls.
    stale = float(stack.env["LABELLOOP_RUN_STALE_AFTER_S"])
    worker_exit = None
    while True:
        seen_at, processes = time.monotonic() - restarted, (worker.poll() is None, alive(horse))
        row = runs()[-1]  # a few seconds later: a Django process starts for each look
        if worker_exit is None and worker.poll() is not None:
            worker_exit = worker.returncode
            log(f"the RQ worker exited (code {worker_exit})")
        states = ["alive" if up else "gone" for up in processes]
        log(f"+{seen_at:.0f}s worker {states[0]}, horse {states[1]}; then {show(row)}")
        if row["status"] in TERMINAL:
            break
        if (row["heartbeat_age_s"] or 0) > stale + 2 or time.monotonic() > deadline:
            log("the run's heartbeat stopped: it is stuck 'running' until the sweep fails it")
            break
        time.sleep(2)
    worker_survived = worker.poll() is None
    said = [line.strip()[:200] for line in (stack.folder / "worker.log").read_text().splitlines()
            if ("redis" in line.lower() or "error" in line.lower()) and not line.startswith((" ", "Traceback"))]
    log(f"the worker's log about Redis or errors: {said[:4] or 'nothing'}")
    recovered_by = "finished on its own"
    if row["status"] == "running":
        log(f"sweep: {stack.manage('runs_sweep').strip()}")
        row = runs()[-1]
        log(f"after the sweep: {show(row)}")
        recovered_by = "swept as abandoned, resumed"
    if not worker_survived:
        worker = stack.start("worker", worker_args)
        log("worker started again (as systemd or compose would)")
        recovered_by += "; worker restarted"
    if row["status"] == "failed" and row["checkpoints"]:
        resumed_id = int(stack.shell(RUN_RESUME % row["id"]).splitlines()[-1])
        log(f"run_resume: run {resumed_id} continues from run {row['id']}'s checkpoint {row['checkpoints'][-1]}")

    def ended() -> bool:
        newest = runs()[-1]
        return newest["status"] in TERMINAL and bool(newest["batches"]) and newest["batches"][-1][0] in TERMINAL

    wait_for(ended, "the run and its prediction batch to end", DEADLINE_S * 2)

    final = runs()
    for row in final:
        log(f"final: {show(row)}; started {row['starts']}x, train events {row['train_events']} "
            f"(steps {row['first_train_step']}..{row['last_train_step']}, {row['steps_repeated']} repeated), "
            f"resumed from step {row['resumed_from_step']}, artifact {'saved' if row['artifact'] else 'none'}, "
            f"prediction batches {row['batches']}")
    sweeps = stack.shell(SWEEP_PENDING)
    log(f"the every-minute sweep scheduled in Redis at the end: {sweeps}")
    if worker_survived:  # a surviving worker schedules it again at its next maintenance (10 min); so does a new one
        stack.stop(worker)
        worker = stack.start("worker", worker_args)
        wait_for(lambda: stack.shell(SWEEP_PENDING) == "1", "the restarted worker to schedule the sweep", 60)
        sweeps = stack.shell(SWEEP_PENDING)
        log(f"worker restarted (SIGTERM, started again, as a deploy would): sweep scheduled: {sweeps}")
    last = final[-1]
    ok = last["status"] == "succeeded" and last["artifact"] and last["batches"][-1][0] == "succeeded"
    ok &= sweeps == "1"
    ok &= all(row["starts"] == 1 and row["steps_repeated"] == 0 for row in final)
    if len(final) > 1:  # resumed: the new run starts right after its parent's newest checkpoint
        ok &= last["resumed_from_step"] == final[-2]["checkpoints"][-1] == last["first_train_step"] - 1
    print(f"[redis-run] {'OK' if ok else 'FAILED'}: worker {'survived' if worker_survived else 'exited'} "
          f"the restart; {recovered_by}; final run {last['status']}")
    return ok, redis


DRILLS = ("kill-import", "postgres", "redis-import", "redis-run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the import killed mid-way")
    parser.add_argument("--only", default=",".join(DRILLS), help=f"comma-separated drills: {', '.join(DRILLS)}")
    args = parser.parse_args()
    database_url = fresh_database(DATABASE)
    if database_url is None:
        return 2
    load = os.getloadavg()
    print(f"fault drills on {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="labelloop-faults-") as tmp:
        stack = Stack(Path(tmp), database_url, free_port())
        results = {}
        try:
            redis = stack.redis()
            stack.manage("migrate", "--noinput")
            seeded = stack.shell(SEED).splitlines()[-1]
            imports_project, loop_project, owner_token, annotator_token = seeded.split()
            chosen = [d.strip() for d in args.only.split(",") if d.strip()]
            if "kill-import" in chosen:
                results["kill-import"] = drill_kill_import(stack, int(imports_project), owner_token, args.rows)
            if "postgres" in chosen:
                results["postgres"] = drill_postgres(stack, database_url, int(loop_project), annotator_token)
            if "redis-import" in chosen:
                results["redis-import"], redis = drill_redis_import(stack, redis, int(imports_project), owner_token)
            if "redis-run" in chosen:
                results["redis-run"], redis = drill_redis_run(stack, redis)
        finally:
            stack.stop_all()
    print("\n" + ", ".join(f"{name}: {'OK' if ok else 'FAILED'}" for name, ok in results.items()))
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
