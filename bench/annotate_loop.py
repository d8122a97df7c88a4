"""Server latency of the annotate loop (submit + next item in one request) at project sizes up to 1M items.

For each database (SQLite file, PostgreSQL when reachable), project size and number of concurrent annotators,
prints p50/p95/p99 of the server-side time of the annotate view's submit-and-next request (Django test client:
URL routing, middleware, auth, the services and the template; no network) and the SQL queries per loop.

    python bench/annotate_loop.py                       # 100k and 1M items, 1 and 8 annotators, SQLite + PostgreSQL
    python bench/annotate_loop.py --quick               # 100k only, fewer loops
    python bench/annotate_loop.py --db postgres --sizes 1000000

Each configuration runs in a fresh child process with a fresh database. Target: p95 <= 25 ms at 1M items on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _pg import fresh_database  # bench/_pg.py

ROOT = Path(__file__).resolve().parent.parent
PG_BENCH_DB = "labelloop_bench"
LABELS = ["positive", "negative", "neutral"]
SUBMIT_RE = re.compile(rb"/items/(\d+)/submit/")


def item_id_in(html: bytes) -> int:
    """The id of the item the workspace shows (its submit form's action)."""
    match = SUBMIT_RE.search(html)
    if match is None:
        raise RuntimeError(f"no item in the page: {html[:300]!r}")
    return int(match.group(1))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- child: one configuration -------------------------------------------------------------------


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _seed(size: int, n_annotators: int):
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.models import Item, Role
    from annotation.projects.services import guideline_acknowledge, guideline_current, membership_set, project_create
    from annotation.text import content_hash

    owner = get_user_model().objects.create_user("bench-owner", password="x")
    project = project_create(owner=owner, name="bench", labels=LABELS, guidelines="Label the sentiment.")
    users = []
    for i in range(n_annotators):
        user = get_user_model().objects.create_user(f"bench-ann{i}", password="x")
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
        guideline_acknowledge(user=user, version=guideline_current(project=project))
        users.append(user)

    now = timezone.now()
    table = Item._meta.db_table
    columns = (
        "project_id, external_id, text, response, metadata, group_key, content_hash, status, slots_taken, "
        "submitted_count, is_open, priority, created_at"
    )
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for i in range(size):
                    text = f"bench item {i}: the service was fine but the wait was long"
                    copy.write_row(
                        (project.pk, "", text, "", "{}", "", content_hash(text), "new", 0, 0, True, 0.0, now)
                    )
        else:
            batch = []
            sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * 13)})"
            for i in range(size):
                text = f"bench item {i}: the service was fine but the wait was long"
                batch.append((project.pk, "", text, "", "{}", "", content_hash(text), "new", 0, 0, True, 0.0, now))
                if len(batch) == 20_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    print(f"  seeded {size:,} items in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return project, users


def _loop_client(user, project_id: int):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _run_child(db_url: str, size: int, n_annotators: int, loops: int) -> dict:
    _setup_django(db_url)
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    project, users = _seed(size, n_annotators)
    next_url = reverse("annotate", args=[project.pk])

    def submit_url(item_id: int) -> str:
        return reverse("annotate-submit", args=[project.pk, item_id])
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def work(user, n: int) -> None:
        try:
            client = _loop_client(user, project.pk)
            item_id = item_id_in(client.get(next_url).content)  # claims the first item
            mine = []
            for i in range(n):
                t0 = time.perf_counter()
                resp = client.post(submit_url(item_id), {"label": LABELS[i % 3]}, headers={"HX-Request": "true"})
                mine.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200:
                    errors.append(f"status {resp.status_code}: {resp.content[:200]!r}")
                    return
                item_id = item_id_in(resp.content)
            with lock:
                latencies.extend(mine[5:])  # the first few warm caches and connections
        except Exception as exc:  # reported by the parent
            errors.append(repr(exc))
        finally:
            connections.close_all()

    # Queries for one loop, measured once on a warm connection.
    client = _loop_client(users[0], project.pk)
    item_id = item_id_in(client.get(next_url).content)
    with CaptureQueriesContext(connection) as ctx:
        resp = client.post(submit_url(item_id), {"label": "positive"}, headers={"HX-Request": "true"})
    queries = len(ctx.captured_queries)
    assert resp.status_code == 200, resp.content[:300]

    per_user = max(10, loops // n_annotators)
    threads = [threading.Thread(target=work, args=(u, per_user)) for u in users]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        return {"error": errors[0]}
    return {
        "vendor": connection.vendor,
        "size": size,
        "annotators": n_annotators,
        "loops": len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies),
        "throughput": len(latencies) / wall,
        "queries": queries,
    }


# --- parent: orchestrate ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--annotators", default="1,8")
    parser.add_argument("--loops", type=int, default=400, help="Measured submit+next loops per configuration.")
    parser.add_argument("--quick", action="store_true", help="100k items, 200 loops.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        db_url, size, n_annotators, loops = json.loads(args.child)
        print(json.dumps(_run_child(db_url, size, n_annotators, loops)))
        return

    sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    loops = 200 if args.quick else args.loops
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows = []
    for db in dbs:
        for size in sizes:
            for n_annotators in (int(a) for a in args.annotators.split(",")):
                if db == "sqlite":
                    tmp = tempfile.mkdtemp(prefix="labelloop-bench-")
                    db_url = f"sqlite:///{tmp}/bench.sqlite3"
                else:
                    db_url = fresh_database(PG_BENCH_DB)
                    if db_url is None:
                        continue
                print(f"{db}: {size:,} items, {n_annotators} annotator(s)...", file=sys.stderr)
                env = {**os.environ, "LABELLOOP_EMBEDDED_REDIS": "0"}
                out = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps([db_url, size, n_annotators, loops])],
                    capture_output=True, text=True, env=env, check=False,
                )
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    continue
                print(out.stderr.strip(), file=sys.stderr)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    print(f"\n{'database':<11}{'items':>11}{'annotators':>12}{'loops':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'loops/s':>9}{'queries':>9}")
    for r in rows:
        if "error" in r:
            print(f"error: {r['error']}")
            continue
        print(f"{r['vendor']:<11}{r['size']:>11,}{r['annotators']:>12}{r['loops']:>7}{r['p50']:>9.1f}{r['p95']:>9.1f}"
              f"{r['p99']:>9.1f}{r['throughput']:>9.0f}{r['queries']:>9}")
    print("\nTarget: p95 <= 25 ms at 1,000,000 items on PostgreSQL. Server-side time via Django's test client, "
          "on this machine's 2 cores; the 8-annotator rows share those cores.")


if __name__ == "__main__":
    main()
