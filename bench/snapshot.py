"""Seconds and peak memory of `snapshot_create` on a project of N approved items.

For each database (SQLite file, PostgreSQL when reachable) and size, a fresh child process seeds N
approved items with one imported decision each (COPY / executemany, not measured), then measures:
- the first snapshot: every item gets a split (splits.assign over all N), JSONL written and hashed,
  N SnapshotItem rows inserted;
- a second snapshot: splits already assigned, so only the write and insert passes run;
- the hash rebuilt from the SnapshotItem rows (must equal the stored one).
Peak memory is the child's resident set size sampled every 10 ms during the call, reported both as
the absolute peak and as the growth over the RSS just before the call (Django, numpy and the
imported modules are already loaded then). CPU seconds are this process's own (user + system): on a
busy machine they say more than the wall clock, and on SQLite the database works in this process too.

    python bench/snapshot.py                          # 200k and 1M items, SQLite + PostgreSQL
    python bench/snapshot.py --sizes 200000 --db sqlite
    python bench/snapshot.py --sizes 1000000 --db postgres --fresh   # no VACUUM after the seed

Target: <= 60 s and <= 500 MB for 1M items.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _pg import fresh_database  # bench/_pg.py

ROOT = Path(__file__).resolve().parent.parent
PG_BENCH_DB = "labelloop_bench_snapshot"
LABELS = ["positive", "negative", "neutral"]
VOCABULARY_SIZE = 20_000


def synthetic_texts(size: int, seed: int = 7) -> list[str]:
    """Texts of 8-25 words drawn Zipf-like from 20,000 made-up words: as diverse as real short texts.

    (A tiny vocabulary would make most texts near-duplicates of each other, which no real corpus is.)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(k))) for k in rng.integers(2, 10, size=VOCABULARY_SIZE)]
    p = 1.0 / np.arange(1, VOCABULARY_SIZE + 1)
    lengths = rng.integers(8, 26, size=size)
    words = rng.choice(VOCABULARY_SIZE, size=int(lengths.sum()), p=p / p.sum())
    out, start = [], 0
    for i, n in enumerate(lengths.tolist()):
        out.append(f"{i} " + " ".join(vocab[w] for w in words[start : start + n].tolist()))
        start += n
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples this process's RSS in a thread while the block runs."""

    def __enter__(self) -> PeakRss:
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


# --- child: one configuration -------------------------------------------------------------------


def _setup_django(db_url: str, media: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["MEDIA_ROOT"] = media
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("SECRET_KEY", "bench")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _seed(size: int):
    """N approved items (a group key on every 50th pair) with one imported decision each."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.models import Decision, Item
    from annotation.projects.services import project_create
    from annotation.text import content_hash

    owner = get_user_model().objects.create_user("bench-owner", password="x")
    project = project_create(owner=owner, name="bench", labels=LABELS, guidelines="Label the sentiment.")
    texts = synthetic_texts(size)
    now = timezone.now()
    items = Item._meta.db_table
    columns = (
        "project_id, external_id, text, response, metadata, group_key, content_hash, status, slots_taken, "
        "submitted_count, is_open, priority, created_at"
    )

    def rows():
        for i, text in enumerate(texts):
            group = f"g{i // 2}" if i % 50 < 2 else ""
            yield (project.pk, f"ext-{i}", text, "", "{}", group, content_hash(text), "approved", 0, 0, False, 0.0,
                   now)

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.connection.cursor().copy(f"COPY {items} ({columns}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO {items} ({columns}) VALUES ({', '.join(['%s'] * 13)})"
            batch = []
            for row in rows():
                batch.append(row)
                if len(batch) == 20_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
        label_sql = " ".join(f"WHEN {k} THEN '{{\"label\": \"{name}\"}}'" for k, name in enumerate(LABELS))
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        cursor.execute(
            f"INSERT INTO {Decision._meta.db_table} (item_id, value, reason, source, created_at) "
            f"SELECT id, (CASE MOD(id, 3) {label_sql} END){cast}, 'bench import', 'import', %s "
            f"FROM {items} WHERE project_id = %s",
            [now, project.pk],
        )
    if connection.vendor == "postgresql":
        # A working database has been vacuumed since its rows were written (autovacuum does it within
        # minutes); a bulk load measured at once would also time PostgreSQL setting hint bits on first
        # read, and autovacuum starting mid-measurement. --fresh measures that case.
        command = "ANALYZE" if os.environ.get("BENCH_FRESH") else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            cursor.execute(f"{command} {items}")
            cursor.execute(f"{command} {Decision._meta.db_table}")
    print(f"  seeded {size:,} approved items in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return project, owner


def _seed_child(db_url: str, size: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="labelloop-bench-media-") as media:
        _setup_django(db_url, media)
        _seed(size)
    return {"seeded": size}


def _measure_child(db_url: str, size: int) -> dict:
    """Runs in a fresh process after seeding, so the seed's freed memory does not blur the baseline."""
    with tempfile.TemporaryDirectory(prefix="labelloop-bench-media-") as media:
        _setup_django(db_url, media)
        from django.db import connection

        from annotation.datasets import services as snapshots
        from annotation.models import Project

        project = Project.objects.get(name="bench")
        owner = project.created_by
        out: dict = {"vendor": connection.vendor, "size": size, "baseline_rss_mb": round(rss_mb())}
        for label in ("first", "second"):
            with PeakRss() as mem:
                t0, cpu0 = time.perf_counter(), time.process_time()
                snap = snapshots.snapshot_create(project=project, user=owner, name=f"bench {label}", seed=1)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            out[label] = {
                "seconds": round(seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "peak_rss_mb": round(mem.peak),
                "rss_growth_mb": round(mem.peak - mem.start),
                "items": snap.item_count,
                "file_mb": round(snap.manifest["bytes"] / 2**20, 1),
                "splits": snap.manifest["splits"],
            }
        t0 = time.perf_counter()
        out["rows_hash_matches"] = snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash
        out["rehash_seconds"] = round(time.perf_counter() - t0, 1)
        out["unsplit_items_left"] = project.items.filter(split_row__isnull=True).count()
        return out


# --- parent: orchestrate ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--fresh", action="store_true", help="PostgreSQL: measure right after the bulk load, without VACUUM"
    )
    parser.add_argument("--child", nargs=3, metavar=("STEP", "DB_URL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, db_url, size = args.child
        print(json.dumps((_seed_child if step == "seed" else _measure_child)(db_url, int(size))))
        return

    results = []
    for size in args.sizes:
        targets: list[tuple[str, str]] = []
        tmp = None
        if args.db in ("sqlite", "both"):
            tmp = tempfile.mkdtemp(prefix="labelloop-bench-")
            targets.append(("sqlite", f"sqlite:///{tmp}/bench.sqlite3"))
        if args.db in ("postgres", "both") and (url := fresh_database(PG_BENCH_DB)):
            targets.append(("postgresql", url))
        for name, url in targets:
            print(f"{name}, {size:,} items ...", file=sys.stderr)
            env = {**os.environ, "LABELLOOP_EMBEDDED_REDIS": "0", **({"BENCH_FRESH": "1"} if args.fresh else {})}
            for step in ("seed", "measure"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", step, url, str(size)], capture_output=True, text=True, env=env
                )
                sys.stderr.write(proc.stderr[-3000:])
                if proc.returncode != 0:
                    break
            else:
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(result)
                print(json.dumps(result), flush=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nvendor      items      first: wall s (cpu s) / peak RSS MB (+growth)   second: the same   hash ok")
    for r in results:
        f, s = r["first"], r["second"]
        print(
            f"{r['vendor']:<11} {r['size']:>9,}  "
            f"{f['seconds']:>6.1f} ({f['cpu_seconds']:.1f}) / {f['peak_rss_mb']} (+{f['rss_growth_mb']})    "
            f"{s['seconds']:>6.1f} ({s['cpu_seconds']:.1f}) / {s['peak_rss_mb']} (+{s['rss_growth_mb']})    "
            f"{r['rows_hash_matches']}"
        )


if __name__ == "__main__":
    main()
