"""Import benchmark: generate an N-row JSONL file, import it through `import_create`, print rows/s and peak RSS.

    python bench/import.py                      # 1,000,000 rows into a fresh SQLite file
    python bench/import.py --rows 200000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/import.py

With DATABASE_URL set, a fresh database is created beside the one it names (and dropped afterwards);
without it, a fresh SQLite file in a temporary folder. Either way `migrate` builds the tables. The
import runs inline (no Redis needed), the same code the RQ job runs. Targets: >= 20,000 rows/s and a
peak RSS <= 300 MB at 1M rows. About 1% of the rows are exact duplicates, so dedupe is on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["positive", "negative", "neutral"]
# fmt: off
WORDS = ["the", "delivery", "was", "quick", "and", "packaging", "fine", "but", "battery", "life", "screen",
         "support", "answered", "never", "again", "great", "terrible", "price", "value", "would", "buy",
         "recommend", "product", "arrived", "broken", "works", "well", "enough", "for", "daily", "use"]
# fmt: on
DUPLICATE_EVERY = 100
TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_MB = 300


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` JSONL lines: id, text (~100 chars), label, a user id as group key, a source."""
    rng = random.Random(seed)
    previous = ""
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
                text = f"  {previous.upper()} "  # the row before, in other case and spacing: an exact duplicate
            else:
                text = f"Review {i}: " + " ".join(rng.choice(WORDS) for _ in range(14))
            row = {"id": f"r{i}", "text": text, "label": LABELS[i % 3], "user": f"u{i % 5000}", "source": "bench"}
            out.write(json.dumps(row) + "\n")
            previous = text


def fresh_postgres(url: str) -> tuple[str, str]:
    """Create a new database beside the one `url` names; return (its URL, its name)."""
    import psycopg

    name = f"labelloop_bench_import_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_postgres(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(connection) -> float | None:
    """CPU time of this connection's PostgreSQL backend, when the server runs on this machine (Linux)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, help="settings.LABELLOOP_IMPORT_BATCH_SIZE for this run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (file, SQLite database)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="labelloop-bench-import-"))
    server_url = os.environ.get("DATABASE_URL", "")
    pg_name = ""
    if server_url.startswith("postgres"):
        os.environ["DATABASE_URL"], pg_name = fresh_postgres(server_url)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["LABELLOOP_EMBEDDED_REDIS"] = "0"  # inline import: no queue involved
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    if args.batch_size:
        os.environ["LABELLOOP_IMPORT_BATCH_SIZE"] = str(args.batch_size)
    sys.path.insert(0, str(ROOT))

    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection, connections

        from annotation.imports.services import import_create
        from annotation.models import Item
        from annotation.projects.services import project_create

        settings.MEDIA_ROOT = tmp / "media"
        call_command("migrate", verbosity=0)
        path = tmp / "bench.jsonl"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f}s")

        owner = get_user_model().objects.create_user("bench-owner")
        project = project_create(owner=owner, name="Import bench", labels=LABELS)
        before_mb = peak_rss_mb()
        cpu_before = cpu_seconds()
        server_before = server_cpu_seconds(connection)
        started = time.perf_counter()
        with path.open("rb") as fileobj:
            job = import_create(
                project=project, user=owner, file_name=path.name, fileobj=fileobj, file_format="jsonl", inline=True
            )
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        server_after = server_cpu_seconds(connection)
        peak_mb = peak_rss_mb()
        count = Item.objects.filter(project=project).count()

        print(f"database: {connection.vendor}, batch size {settings.LABELLOOP_IMPORT_BATCH_SIZE}")
        print(f"status: {job.status}; read {job.rows_read:,}, imported {job.rows_imported:,}, dup. {job.duplicates:,}")
        if job.errors:
            print("errors:", job.errors[:5])
        print(f"time: {seconds:.1f}s  ->  {args.rows / seconds:,.0f} rows/s (target >= {TARGET_ROWS_PER_S:,})")
        # on a busy machine wall time exceeds CPU time; the database server's CPU is not counted here
        print(f"CPU of this process: {cpu:.1f}s ({args.rows / cpu:,.0f} rows/CPU-s); load {os.getloadavg()[0]:.1f}")
        if server_before is not None and server_after is not None:
            server = server_after - server_before
            print(f"CPU of the PostgreSQL backend: {server:.1f}s ({args.rows / server:,.0f} rows/CPU-s)")
        print(f"peak RSS: {peak_mb:.0f} MB (before the import: {before_mb:.0f} MB; target <= {TARGET_PEAK_MB})")
        assert count == job.rows_imported, (count, job.rows_imported)
        connections.close_all()
    finally:
        if pg_name:
            drop_postgres(server_url, pg_name)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
