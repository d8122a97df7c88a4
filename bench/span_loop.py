"""Server latency of the span annotate loop (submit spans + next item in one request) beside the label loop.

The strongest fair alternative for the same request is the single-label loop it extends (bench/annotate_loop.py):
same database, same project size, same text, one annotator, same number of loops. The span request does more
(the spans' JSON is parsed and checked against the item text; the next item's text is cut into word pieces with
code-point offsets for the editor), and this script says how much more: p50 and p95 of each with 95 % bootstrap
intervals, and the SQL queries per loop.

    python bench/span_loop.py                    # 100k items, 300 loops each, SQLite
    python bench/span_loop.py --sizes 10000 --loops 200 --db postgres

Each configuration runs in a fresh child process with a fresh database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _pg import fresh_database  # bench/_pg.py
from annotate_loop import _setup_django, item_id_in, percentile

ROOT = Path(__file__).resolve().parent.parent
PG_BENCH_DB = "labelloop_bench_spans"
TEXT = (
    "bench item {i}: Ada Lovelace wrote to Charles Babbage from London about the Analytical Engine 😀, "
    "and Zoe\u0301 Martin replied from Paris on Tuesday with notes for Marie Curie."
)
MARKS = [("Ada Lovelace", "PER"), ("Charles Babbage", "PER"), ("London", "LOC"), ("Paris", "LOC")]
BOOTSTRAP = 2000


def spans_for(text: str) -> list[dict]:
    out = []
    for piece, label in MARKS:
        start = text.index(piece)
        out.append({"start": start, "end": start + len(piece), "label": label})
    return out


def _seed(size: int, task_type: str):
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.models import Item, Role
    from annotation.projects.services import membership_set, project_create
    from annotation.text import content_hash

    owner = get_user_model().objects.create_user("bench-owner", password="x")
    labels = ["PER", "LOC"] if task_type == "spans" else ["positive", "negative", "neutral"]
    project = project_create(owner=owner, name="bench", task_type=task_type, labels=labels)
    user = get_user_model().objects.create_user("bench-ann", password="x")
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    now = timezone.now()
    table = Item._meta.db_table
    columns = (
        "project_id, external_id, text, response, metadata, group_key, content_hash, status, slots_taken, "
        "submitted_count, extra_slots, is_open, priority, created_at"
    )
    rows = (
        (project.pk, "", TEXT.format(i=i), "", "{}", "", content_hash(TEXT.format(i=i)), "new", 0, 0, 0, True, 0.0, now)
        for i in range(size)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * 14)})", list(rows))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    return project, user


def _run_child(db_url: str, size: int, loops: int, task_type: str) -> dict:
    _setup_django(db_url)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from annotation.models import Item

    project, user = _seed(size, task_type)
    client = Client()
    client.force_login(user)
    item_id = item_id_in(client.get(reverse("annotate", args=[project.pk])).content)
    texts = dict(Item.objects.filter(project=project).values_list("pk", "text")[: loops + 50])

    def body(i: int, item_id: int) -> dict:
        if task_type == "spans":
            text = texts.get(item_id) or Item.objects.get(pk=item_id).text
            return {"spans": json.dumps(spans_for(text))}
        return {"label": ["positive", "negative", "neutral"][i % 3]}

    latencies, queries = [], 0
    for i in range(loops + 5):
        url = reverse("annotate-submit", args=[project.pk, item_id])
        data = body(i, item_id)
        if i == 5:
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                resp = client.post(url, data, headers={"HX-Request": "true"})
                elapsed = time.perf_counter() - t0
            queries = len(ctx.captured_queries)
        else:
            t0 = time.perf_counter()
            resp = client.post(url, data, headers={"HX-Request": "true"})
            elapsed = time.perf_counter() - t0
        if resp.status_code != 200 or b"Saved item" not in resp.content:
            return {"error": f"status {resp.status_code}: {resp.content[:300]!r}"}
        if i >= 5:
            latencies.append(elapsed * 1000)
        item_id = item_id_in(resp.content)
    return {"vendor": connection.vendor, "task": task_type, "size": size, "latencies": latencies, "queries": queries}


def _interval(values: list[float], q: float, rng: random.Random) -> tuple[float, float, float]:
    stats = sorted(percentile([rng.choice(values) for _ in values], q) for _ in range(BOOTSTRAP))
    return percentile(values, q), stats[int(0.025 * BOOTSTRAP)], stats[int(0.975 * BOOTSTRAP) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--loops", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db_url, size, loops, task_type = json.loads(args.child)
        print(json.dumps(_run_child(db_url, size, loops, task_type)))
        return

    rng = random.Random(0)
    print(f"{'database':<11}{'items':>9}{'task':>14}{'loops':>7}{'p50 ms (95% CI)':>24}{'p95 ms (95% CI)':>24}"
          f"{'queries':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        for task_type in ("single_label", "spans"):
            if args.db == "sqlite":
                db_url = f"sqlite:///{tempfile.mkdtemp(prefix='labelloop-bench-')}/bench.sqlite3"
            else:
                db_url = fresh_database(PG_BENCH_DB)
                if db_url is None:
                    print("PostgreSQL is not reachable", file=sys.stderr)
                    return
            env = {**os.environ, "LABELLOOP_EMBEDDED_REDIS": "0"}
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps([db_url, size, args.loops, task_type])],
                capture_output=True, text=True, env=env, check=False,
            )
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if "error" in r:
                print(f"error: {r['error']}")
                continue
            p50, p95 = _interval(r["latencies"], 50, rng), _interval(r["latencies"], 95, rng)
            print(f"{r['vendor']:<11}{size:>9,}{task_type:>14}{len(r['latencies']):>7}"
                  f"{p50[0]:>8.1f} ({p50[1]:.1f}-{p50[2]:.1f}){'':>4}{p95[0]:>8.1f} ({p95[1]:.1f}-{p95[2]:.1f}){'':>4}"
                  f"{r['queries']:>9}")
    print("\nServer-side time via Django's test client (routing, middleware, services, template; no network), one "
          "annotator, on this machine's shared cores.")


if __name__ == "__main__":
    main()
