"""Imports: parsing and validation, all-or-nothing writes, duplicates, the RQ job, the command."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path

import django_rq
import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.http import Http404
from django.utils import timezone

from annotation.imports import importers
from annotation.imports import services as svc
from annotation.imports.importers import Mapping, RowError
from annotation.models import ImportJob, ImportStatus, Item, ItemStatus, TaskType
from annotation.projects.services import project_create
from annotation.text import content_hash
from core.errors import ServiceError
from core.queues import JsonSimpleWorker
from tests.fixtures.people import add_items

LABELS = ["positive", "negative", "neutral"]


def jsonl(*rows: dict | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def run_import(project, user, data: bytes, name: str = "data.jsonl", **kwargs) -> ImportJob:
    return svc.import_create(project=project, user=user, file_name=name, fileobj=io.BytesIO(data), **kwargs)


def messages(job: ImportJob) -> list[str]:
    return [e["message"] for e in job.errors]


def imported(project) -> list[Item]:
    return list(Item.objects.filter(project=project, import_job__isnull=False).order_by("pk"))


# --- Happy paths ----------------------------------------------------------------------------------


def test_jsonl_import_with_default_mapping(project, owner):
    before = Item.objects.filter(project=project).count()
    data = jsonl(
        {"id": "a1", "text": "Loved it", "label": "positive", "user": "u1", "lang": "en"},
        {"id": 7, "text": "Hated it", "label": "negative", "user": "u2", "lang": "en"},
        {"text": "No label here", "user": "u1"},
    )
    job = run_import(project, owner, data, mapping={"group_key": "user"})

    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert (job.rows_read, job.rows_imported, job.duplicates, job.errors) == (3, 3, 0, [])
    assert job.processed_bytes == job.total_bytes == len(data)
    assert job.started_at and job.finished_at
    assert job.mapping == {
        "text": "text",
        "response": "",
        "external_id": "id",
        "group_key": "user",
        "prelabel": "label",
        "metadata": "*",
    }
    first, second, third = imported(project)
    assert (first.external_id, first.text, first.group_key) == ("a1", "Loved it", "u1")
    assert first.metadata == {"lang": "en"}
    assert first.prelabel == {"label": "positive"}
    assert first.content_hash == content_hash("Loved it")
    assert (first.status, first.is_open, first.slots_taken) == (ItemStatus.NEW, True, 0)
    assert not hasattr(first, "split_row")  # no split before its first snapshot
    assert first.import_job_id == job.pk and first.created_at is not None
    assert second.external_id == "7" and second.prelabel == {"label": "negative"}
    assert third.external_id == "" and third.prelabel is None and third.metadata == {}
    assert Item.objects.filter(project=project).count() == before + 3


def test_csv_import_with_explicit_mapping(project, owner):
    data = b'doc,body,gold,source,extra\nd1,"A review\nover two lines",neutral,web,x\nd2,Short one,,shop,y\n'
    mapping = {"text": "body", "external_id": "doc", "prelabel": "gold", "metadata": ["source"], "group_key": ""}
    job = run_import(project, owner, data, name="reviews.csv", mapping=mapping)

    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert job.file_format == "csv"
    first, second = imported(project)
    assert first.text == "A review\nover two lines" and first.external_id == "d1"
    assert first.prelabel == {"label": "neutral"} and first.metadata == {"source": "web"}
    assert second.prelabel is None and second.group_key == ""


def test_instruction_project_reads_prompt_and_response(owner):
    project = project_create(owner=owner, name="Chat", task_type=TaskType.INSTRUCTION)
    data = jsonl(
        {"prompt": "Say hi", "response": "Hi!"},
        {"prompt": "Say hi", "response": "Hello there"},  # same prompt, other response: not a duplicate
        {"prompt": "Say bye"},
    )
    job = run_import(project, owner, data)
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    rows = imported(project)
    assert [(i.text, i.response) for i in rows] == [("Say hi", "Hi!"), ("Say hi", "Hello there"), ("Say bye", "")]
    assert rows[0].content_hash == content_hash("Say hi", "Hi!")


def test_multi_label_prelabels_from_csv_cells(owner):
    project = project_create(owner=owner, name="Topics", task_type=TaskType.MULTI_LABEL, labels=["a", "b", "c"])
    job = run_import(project, owner, b"text,labels\nfirst,c|a\nsecond,\n", name="t.csv")
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert [i.prelabel for i in imported(project)] == [{"labels": ["a", "c"]}, None]


def test_rows_are_written_in_batches(project, owner, settings):
    settings.LABELLOOP_IMPORT_BATCH_SIZE = 3
    job = run_import(project, owner, jsonl(*({"text": f"row {i}"} for i in range(10))))
    assert job.status == ImportStatus.SUCCEEDED and job.rows_imported == 10
    assert [i.text for i in imported(project)] == [f"row {i}" for i in range(10)]


def test_upload_is_stored_under_media_root(project, owner, settings):
    job = run_import(project, owner, jsonl({"text": "kept"}), name="../../etc/evil.jsonl")
    assert job.file_name == "evil.jsonl"
    stored = Path(settings.MEDIA_ROOT) / job.file_path
    assert job.file_path.startswith(f"imports/{project.pk}/")
    assert stored.read_bytes() == jsonl({"text": "kept"})


# --- Duplicates: reported and skipped, never errors ------------------------------------------------


def test_exact_duplicates_in_the_file_and_the_project_are_skipped(project, owner):
    existing = Item.objects.get(project=project, text="review number 0")
    data = jsonl(
        {"text": "Fresh text"},
        {"text": "  fresh   TEXT "},  # same after normalising case and spaces
        {"text": "REVIEW number 0"},  # already in the project
        {"text": "Another"},
        {"text": "Fresh text"},
    )
    job = run_import(project, owner, data)
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert (job.rows_read, job.rows_imported, job.duplicates) == (5, 2, 3)
    assert job.duplicate_examples == [
        {"line": 2, "first_line": 1},
        {"line": 3, "item_id": existing.pk},
        {"line": 5, "first_line": 1},
    ]
    assert [i.text for i in imported(project)] == ["Fresh text", "Another"]


def test_importing_the_same_file_twice_adds_nothing_the_second_time(project, owner):
    data = jsonl({"id": "x1", "text": "one"}, {"id": "x2", "text": "two"})
    assert run_import(project, owner, data).rows_imported == 2
    again = run_import(project, owner, data)
    assert again.status == ImportStatus.SUCCEEDED, again.errors
    assert (again.rows_imported, again.duplicates) == (0, 2)
    assert len(imported(project)) == 2


def test_duplicate_examples_are_capped(project, owner):
    job = run_import(project, owner, jsonl(*({"text": "same"} for _ in range(30))))
    assert job.duplicates == 29 and len(job.duplicate_examples) == importers.MAX_DUPLICATE_EXAMPLES


# --- Bad files: an error naming file, line and field, and nothing written ----------------------------


def err(line, field, message, name="data.jsonl") -> str:
    return RowError(line, field, message).describe(name)


BAD_FILES = {
    "bad json": (
        "data.jsonl",
        jsonl({"text": "ok"}, '{"text" "no colon"}'),
        [err(2, None, "invalid JSON: Expecting ':' delimiter at column 9")],
    ),
    "unterminated string": (
        "data.jsonl",
        jsonl({"text": "ok"}, '{"text": "never closed}'),
        ["data.jsonl line 2: invalid JSON: Unterminated string starting at column 10"],
    ),
    "not an object": ("data.jsonl", jsonl({"text": "ok"}, "[1, 2]"), [err(2, None, importers.NOT_AN_OBJECT)]),
    "missing text": ("data.jsonl", jsonl({"text": "ok"}, {"body": "x"}), [err(2, "text", importers.MISSING)]),
    "empty text": ("data.jsonl", jsonl({"text": "ok"}, {"text": "   "}), [err(2, "text", importers.EMPTY)]),
    "text of the wrong type": (
        "data.jsonl",
        jsonl({"text": 17}),
        [err(1, "text", importers.WRONG_TYPE.format(expected="a string", found="a number"))],
    ),
    "id of the wrong type": (
        "data.jsonl",
        jsonl({"text": "ok", "id": [1]}),
        [err(1, "id", importers.WRONG_TYPE.format(expected="a string or an integer", found="an array"))],
    ),
    "unknown pre-label": (
        "data.jsonl",
        jsonl({"text": "ok", "label": "positive"}, {"text": "meh", "label": "sarcastic"}),
        [err(2, "label", "Unknown label 'sarcastic'; this project has ['negative', 'neutral', 'positive'].")],
    ),
    "duplicate external ids": (
        "data.jsonl",
        jsonl({"id": "k", "text": "one"}, {"id": "j", "text": "two"}, {"id": "k", "text": "three"}),
        [err(3, "id", importers.DUPLICATE_EXTERNAL_ID.format(line=1))],
    ),
    "NaN is not JSON": (
        "data.jsonl",
        b'{"text": "ok", "score": NaN}\n',
        [err(1, None, importers.INVALID_JSON.format(reason=importers.NOT_A_NUMBER.format(constant="NaN")))],
    ),
    "NUL character": ("data.jsonl", b'{"text": "a\\u0000b"}\n', [err(1, None, importers.NUL_CHARACTER)]),
    "bad encoding": ("data.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', [err(2, None, importers.NOT_UTF8)]),
    "empty jsonl": ("data.jsonl", b"", [f"data.jsonl: {importers.EMPTY_FILE}"]),
    "blank lines only": ("data.jsonl", b"\n  \n", [f"data.jsonl: {importers.EMPTY_FILE}"]),
    "ragged csv row": (
        "data.csv",
        b"text,label\nfine,positive\ntoo,many,cells\n",
        [err(3, None, importers.RAGGED_ROW.format(expected=2, found=3), "data.csv")],
    ),
    "csv without the text column": (
        "data.csv",
        b"body,label\nfine,positive\n",
        [err(1, "text", importers.NO_SUCH_COLUMN, "data.csv")],
    ),
    "csv with a repeated column": (
        "data.csv",
        b"text,text\na,b\n",
        [err(1, "text", importers.DUPLICATE_COLUMN, "data.csv")],
    ),
    "unreadable csv": (
        "data.csv",
        b'text\n"fine"\n"bad"quote\n',
        [err(3, None, importers.BAD_CSV.format(reason="',' expected after '\"'"), "data.csv")],
    ),
    "the same text with another label": (
        "data.jsonl",
        jsonl({"text": "same", "label": "positive"}, {"text": "other"}, {"text": "  SAME", "label": "negative"}),
        [err(3, "label", importers.CONFLICTING_DUPLICATE.format(line=1))],
    ),
    "semicolon-separated csv": (
        "data.csv",
        b"text;label\nhello;positive\n",
        [err(1, None, importers.ONE_COLUMN_HEADER.format(header="text;label", separator="semicolons"), "data.csv")],
    ),
    "csv header only": ("data.csv", b"text,label\n", [f"data.csv: {importers.EMPTY_FILE}"]),
    "empty csv": ("data.csv", b"", [f"data.csv: {importers.EMPTY_FILE}"]),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_imports_nothing_and_says_where(project, owner, case):
    name, data, expected = BAD_FILES[case]
    before = Item.objects.count()
    job = run_import(project, owner, data, name=name)
    assert job.status == ImportStatus.FAILED
    assert messages(job) == expected
    assert job.rows_imported == 0 and job.finished_at is not None
    assert Item.objects.count() == before


def test_a_long_csv_field_imports_like_a_long_jsonl_one(project, owner):
    """The csv module's own 128 KiB cap refused a 200,000-character text that JSONL took; the line limit rules."""
    long_text = "word " * 40_000
    job = run_import(project, owner, f"text,label\n\"{long_text}\",positive\n".encode(), name="long.csv")
    assert job.status == ImportStatus.SUCCEEDED and job.rows_imported == 1
    assert len(Item.objects.filter(project=project).latest("pk").text) >= 199_999


def test_copies_of_a_text_with_and_without_a_label_are_a_conflict_and_neither_is_imported(project, owner):
    rows = [{"text": "fine", "label": "positive"}, {"text": "same"}, {"text": "same", "label": "negative"}]
    job = run_import(project, owner, jsonl(*rows), partial=True)
    assert messages(job) == [err(3, "label", importers.CONFLICTING_DUPLICATE.format(line=2))]
    assert job.rows_imported == 1 and job.rows_rejected == 2  # both copies left out: which label is right is unknown
    assert not Item.objects.filter(project=project, text="same").exists()
    again = run_import(project, owner, jsonl({"text": "same", "label": "negative"}))  # fixed: now it imports
    assert again.status == ImportStatus.SUCCEEDED and again.rows_imported == 1


def test_a_conflicting_pair_of_a_text_already_in_the_project_is_skipped_as_ever(project, owner):
    run_import(project, owner, jsonl({"text": "known"}))
    rows = [{"text": "known", "label": "positive"}, {"text": "known", "label": "negative"}]
    job = run_import(project, owner, jsonl(*rows))
    assert job.status == ImportStatus.SUCCEEDED and (job.rows_imported, job.duplicates) == (0, 2)


def test_the_same_text_with_the_same_label_is_still_a_plain_duplicate(project, owner):
    same = {"text": "same", "label": "positive"}
    job = run_import(project, owner, jsonl(same, same))
    assert job.status == ImportStatus.SUCCEEDED and (job.rows_imported, job.duplicates) == (1, 1)


def test_one_bad_row_at_the_end_of_a_long_file_imports_nothing(project, owner, settings):
    settings.LABELLOOP_IMPORT_BATCH_SIZE = 10
    rows = [{"text": f"good row {i}"} for i in range(95)] + [{"text": ""}]
    job = run_import(project, owner, jsonl(*rows))
    assert job.status == ImportStatus.FAILED
    assert messages(job) == [err(96, "text", importers.EMPTY)]
    assert job.rows_read == 96 and imported(project) == []


def test_every_problem_of_a_row_is_reported(project, owner):
    job = run_import(project, owner, jsonl({"text": "", "id": {"a": 1}, "label": "nope"}))
    assert [(e["line"], e["field"]) for e in job.errors] == [(1, "id"), (1, "label"), (1, "text")]


def test_external_id_already_in_the_project_is_an_error(project, owner):
    add_items(project, ["old text"], external_id="taken")
    job = run_import(project, owner, jsonl({"id": "taken", "text": "new text"}))
    assert messages(job) == [err(1, "id", importers.EXISTING_EXTERNAL_ID)]
    assert imported(project) == []


def test_stored_errors_are_capped_and_the_rest_counted(project, owner):
    job = run_import(project, owner, jsonl(*({"text": ""} for _ in range(150))))
    assert job.status == ImportStatus.FAILED
    assert len(job.errors) == importers.MAX_STORED_ERRORS + 1
    assert job.errors[-1] == {"line": None, "field": None, "message": "data.jsonl: 50 more errors not shown"}


def test_a_missing_stored_file_fails_the_job(project, owner, settings):
    job = ImportJob.objects.create(
        project=project,
        created_by=owner,
        file_name="gone.jsonl",
        file_format="jsonl",
        file_path="imports/nowhere.jsonl",
    )
    job = svc.import_run(job_id=job.pk)
    assert job.status == ImportStatus.FAILED and messages(job) == [f"gone.jsonl: {svc.FILE_MISSING}"]


def test_a_clash_with_a_concurrent_change_rolls_everything_back(project, owner, monkeypatch):
    """The unique constraint is the backstop when items arrive between the passes."""
    add_items(project, ["arrived meanwhile"])
    nothing = importers.digests(b"")
    monkeypatch.setattr(svc, "_existing_digests", lambda project: (nothing, nothing))
    job = run_import(project, owner, jsonl({"text": "new one"}, {"text": "arrived meanwhile"}))
    assert job.status == ImportStatus.FAILED and messages(job) == [f"data.jsonl: {svc.CONCURRENT_CHANGE}"]
    assert imported(project) == []


# --- Refused requests: nothing stored ---------------------------------------------------------------


def test_unknown_extension_needs_an_explicit_format(project, owner):
    with pytest.raises(ServiceError) as exc:
        run_import(project, owner, b"text\nhello\n", name="data.txt")
    assert exc.value.field == "file_format"
    assert not ImportJob.objects.exists()
    job = run_import(project, owner, b"text\nhello\n", name="data.txt", file_format="csv")
    assert job.status == ImportStatus.SUCCEEDED and job.file_format == "csv"


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"txt": "body"}, "mapping"),
        ({"text": ""}, "text"),
        ({"metadata": "some"}, "metadata"),
        ({"response": 3}, "response"),
    ],
)
def test_a_malformed_mapping_is_refused(project, owner, mapping, field):
    with pytest.raises(ServiceError) as exc:
        run_import(project, owner, jsonl({"text": "x"}), mapping=mapping)
    assert exc.value.field == field
    assert not ImportJob.objects.exists()


def test_only_owners_may_import(project, annotator, reviewer, outsider):
    for user in (annotator, reviewer):
        with pytest.raises(PermissionDenied):
            run_import(project, user, jsonl({"text": "x"}))
    with pytest.raises(Http404):
        run_import(project, outsider, jsonl({"text": "x"}))
    assert not ImportJob.objects.exists()


# --- Big files go through a real RQ worker -------------------------------------------------------------


@pytest.fixture
def imports_queue():
    queue = django_rq.get_queue(svc.QUEUE_NAME)
    queue.empty()
    yield queue
    queue.empty()


def work(queue) -> bool:
    return django_rq.get_worker(svc.QUEUE_NAME, worker_class=JsonSimpleWorker).work(burst=True)


def test_a_big_file_is_enqueued_on_commit_and_run_by_a_worker(
    project, owner, settings, imports_queue, django_capture_on_commit_callbacks
):
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 3
    data = jsonl(*({"text": f"queued {i}"} for i in range(4)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = run_import(project, owner, data)
        assert imports_queue.job_ids == []  # not before the commit
    assert len(callbacks) == 1
    assert job.status == ImportStatus.PENDING
    assert imports_queue.job_ids == [svc.job_rq_id(job.pk)]
    assert svc.import_progress(job).phase == "Queued"

    assert work(imports_queue)
    job.refresh_from_db()
    assert job.status == ImportStatus.SUCCEEDED and job.rows_imported == 4
    assert imports_queue.fetch_job(svc.job_rq_id(job.pk)).is_finished
    assert len(imported(project)) == 4


def test_a_job_delivered_twice_imports_once(
    project, owner, settings, imports_queue, django_capture_on_commit_callbacks
):
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(project, owner, jsonl({"text": "once"}, {"text": "twice"}))
    imports_queue.enqueue(svc.JOB_FUNCTION, job.pk)  # a second delivery of the same import
    assert work(imports_queue)
    assert len(imported(project)) == 2
    job.refresh_from_db()
    finished_at = job.finished_at
    assert svc.import_run(job_id=job.pk).finished_at == finished_at  # and a third, called directly
    assert len(imported(project)) == 2


def test_redis_down_fails_the_job_instead_of_running_it_inline(
    project, owner, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    class DeadQueue:
        def enqueue(self, *args, **kwargs):
            raise RedisConnectionError("connection refused")

    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 0
    monkeypatch.setattr(svc.django_rq, "get_queue", lambda name, **kwargs: DeadQueue())
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(project, owner, jsonl({"text": "x"}))
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert messages(job) == [f"data.jsonl: {svc.QUEUE_UNAVAILABLE}"]
    assert imported(project) == []


def test_progress_phases(project, owner):
    job = ImportJob(project=project, created_by=owner, status=ImportStatus.RUNNING, total_bytes=1000)
    job.processed_bytes = 500
    assert svc.import_progress(job) == svc.ImportProgress(25, "Checking rows", False, "running")
    job.processed_bytes, job.rows_read, job.duplicates, job.rows_imported = 1000, 110, 10, 50
    assert svc.import_progress(job) == svc.ImportProgress(75, "Writing rows", False, "running")
    job.rows_rejected = 50  # a partial import writes the other 50
    assert svc.import_progress(job) == svc.ImportProgress(100, "Writing rows", False, "running")
    job.status = ImportStatus.SUCCEEDED
    assert svc.import_progress(job) == svc.ImportProgress(100, "Imported, some rows rejected", True, "partial")
    job.rows_rejected = 0
    assert svc.import_progress(job) == svc.ImportProgress(100, "Imported", True, "succeeded")


def test_a_failed_import_is_not_a_full_bar(project, owner):
    """A failure keeps the bar where checking stopped, in the failed state: only success fills it."""
    job = ImportJob(project=project, created_by=owner, status=ImportStatus.FAILED, total_bytes=1000)
    job.processed_bytes = 1000
    phase = "Failed: every row checked, nothing written"  # half a bar is the checking half, not half the rows
    assert svc.import_progress(job) == svc.ImportProgress(50, phase, True, "failed")
    job.processed_bytes = 0  # failed before reading (the upload went missing, the queue was down)
    assert svc.import_progress(job).state == "failed" and svc.import_progress(job).percent < 50


def test_pass_one_progress_reaches_the_job_row(project, owner, monkeypatch):
    seen = []
    monkeypatch.setattr(svc, "PROGRESS_INTERVAL_S", 0)
    monkeypatch.setattr(importers, "PROGRESS_EVERY_ROWS", 2)
    original = svc._Progress.scanned

    def spy(self, processed_bytes, rows):
        original(self, processed_bytes, rows)
        seen.append(ImportJob.objects.values_list("rows_read", "status").get(pk=self.job_id))

    monkeypatch.setattr(svc._Progress, "scanned", spy)
    run_import(project, owner, jsonl(*({"text": f"p {i}"} for i in range(5))))
    assert seen == [(2, "running"), (4, "running"), (5, "running")]


def test_sqlite_page_cache_is_raised_for_the_import_and_restored_after(project, owner, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("a SQLite setting")

    def cache_size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = cache_size()
    during = []
    original = svc._ItemWriter.write

    def write_and_look(self, batch, *, digests):
        during.append(cache_size())
        return original(self, batch, digests=digests)

    monkeypatch.setattr(svc._ItemWriter, "write", write_and_look)
    assert run_import(project, owner, jsonl({"text": "cached"})).status == ImportStatus.SUCCEEDED
    assert during == [-svc.SQLITE_IMPORT_CACHE_KIB] and cache_size() == before != during[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pass_two_progress_is_visible_to_other_connections(project, owner, settings, monkeypatch):
    """On PostgreSQL, rows written so far show while the writing transaction is still open."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has one writer at a time")
    settings.LABELLOOP_IMPORT_BATCH_SIZE = 2
    monkeypatch.setattr(svc, "PROGRESS_INTERVAL_S", 0)
    seen = []
    original = svc._ItemWriter.write

    def write_and_look(self, batch, *, digests):
        written = original(self, batch, digests=digests)
        observer = connections.create_connection("default")
        try:
            with observer.cursor() as cursor:
                cursor.execute("SELECT rows_imported FROM annotation_importjob ORDER BY id DESC LIMIT 1")
                seen.append(cursor.fetchone()[0])
                cursor.execute("SELECT count(*) FROM annotation_item WHERE import_job_id IS NOT NULL")
                seen.append(cursor.fetchone()[0])
        finally:
            observer.close()
        return written

    monkeypatch.setattr(svc._ItemWriter, "write", write_and_look)
    job = run_import(project, owner, jsonl(*({"text": f"v {i}"} for i in range(6))))
    assert job.status == ImportStatus.SUCCEEDED
    # (rows_imported seen, items visible) after each batch: progress shows, the items do not until commit
    assert seen == [0, 0, 2, 0, 4, 0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_inside_a_callers_transaction_does_not_wait_for_itself(project, owner, settings, monkeypatch):
    """The claim locks the job row until the caller commits: pass 2 must not update it from elsewhere."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no second writer to wait for")
    settings.LABELLOOP_IMPORT_BATCH_SIZE = 1
    monkeypatch.setattr(svc, "PROGRESS_INTERVAL_S", 0)
    monkeypatch.setattr(svc, "_enqueue", lambda job: None)  # leave it pending, committed
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 0
    job = run_import(project, owner, jsonl({"text": "a"}, {"text": "b"}))
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=3000")  # new connections: a regression fails, not hangs
    with transaction.atomic():
        job = svc.import_run(job_id=job.pk)
    assert job.status == ImportStatus.SUCCEEDED and job.rows_imported == 2


# --- The pure reader ----------------------------------------------------------------------------------


def scan(data: bytes, fmt: str = "jsonl", mapping: dict | None = None, task=TaskType.SINGLE_LABEL):
    return importers.scan(
        io.BytesIO(data), file_format=fmt, mapping=Mapping.from_dict(mapping), task_type=task, label_names=LABELS
    )


def test_mapping_defaults_resolve_from_the_first_row():
    schema = scan(jsonl({"prompt": "p", "external_id": "e", "group": "g", "labels": "positive"})).schema
    assert (schema.text, schema.external_id, schema.group_key, schema.prelabel) == (
        "prompt",
        "external_id",
        "group",
        "labels",
    )


def test_switched_off_fields_go_to_metadata():
    spill = io.BytesIO()
    result = importers.scan(
        io.BytesIO(jsonl({"text": "t", "label": "zzz", "id": "1"})),
        file_format="jsonl",
        mapping=Mapping.from_dict({"prelabel": "", "metadata": "*"}),
        task_type=TaskType.SINGLE_LABEL,
        label_names=LABELS,
        spill=spill,
    )
    assert result.error_count == 0 and result.schema.prelabel is None
    assert list(importers.read_spill(spill)) == [[(0, "t", "", "1", {"label": "zzz"}, "", None)]]


def test_the_spill_holds_every_valid_row_in_order_and_stops_at_the_first_error(monkeypatch):
    monkeypatch.setattr(importers, "SPILL_CHUNK_ROWS", 2)
    spill = io.BytesIO()
    data = jsonl(*({"text": f"t{i}", "user": i, "label": "positive"} for i in range(5)))
    importers.scan(
        io.BytesIO(data),
        file_format="jsonl",
        mapping=Mapping.from_dict({"group_key": "user"}),
        task_type=TaskType.SINGLE_LABEL,
        label_names=LABELS,
        spill=spill,
    )
    chunks = list(importers.read_spill(spill))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert chunks[2] == [(4, "t4", "", "", {}, "4", {"label": "positive"})]

    spill = io.BytesIO()
    importers.scan(
        io.BytesIO(jsonl({"text": "a"}, {"text": ""}, {"text": "c"})),
        file_format="jsonl",
        mapping=Mapping(),
        task_type=TaskType.SINGLE_LABEL,
        label_names=LABELS,
        spill=spill,
    )
    assert list(importers.read_spill(spill)) == []  # one chunk was not full yet: nothing written


def test_csv_errors_name_the_line_a_record_starts_on_and_reading_goes_on():
    data = b'\xef\xbb\xbftext,label\n"one\ntwo\nthree",positive\nx\n"ok",negative\n'
    result = scan(data, "csv")
    assert result.rows == 3
    assert [e.describe("f.csv") for e in result.errors] == [
        RowError(5, None, importers.RAGGED_ROW.format(expected=2, found=1)).describe("f.csv")
    ]


def test_a_line_longer_than_the_limit_is_an_error_not_a_memory_spike(monkeypatch):
    monkeypatch.setattr(importers, "MAX_LINE_BYTES", 64)
    result = scan(jsonl({"text": "x" * 200}, {"text": "short"}))
    assert [(e.line, e.message) for e in result.errors] == [(1, importers.LINE_TOO_LONG)]
    assert result.rows == 2 and result.bytes_read == len(jsonl({"text": "x" * 200}, {"text": "short"}))


def test_scan_keeps_a_fixed_number_of_bytes_per_row():
    result = scan(jsonl(*({"text": "t" * 1000 + str(i)} for i in range(50))))
    assert len(result.content) == len(result.ids) == 50 * importers.DIGEST_BYTES
    assert len(result.lines) == 50


# --- The management command -------------------------------------------------------------------------


def test_command_imports_a_file(project, owner, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("body,who\nFrom the command,me\nFrom the command,me\n")
    out = io.StringIO()
    call_command("import_items", project=project.pk, file=str(path), text_field="body", group_field="who", stdout=out)
    assert "Imported 1 items from items.csv" in out.getvalue() and "line 3 duplicates line 2" in out.getvalue()
    (item,) = imported(project)
    assert (item.text, item.group_key, item.metadata) == ("From the command", "me", {})


def test_command_reports_errors_and_fails(project, owner, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(jsonl({"text": "ok"}, {"text": ""}))
    err_out = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_items", project=project.pk, file=str(path), stderr=err_out)
    assert "bad.jsonl line 2, field 'text': empty" in err_out.getvalue()
    assert imported(project) == []


def test_command_refuses_a_user_who_is_not_an_owner(project, annotator, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(jsonl({"text": "x"}))
    with pytest.raises(CommandError, match="not an owner"):
        call_command("import_items", project=project.pk, file=str(path), user=annotator.username)


def test_command_queues_a_big_file(project, owner, tmp_path, settings, imports_queue):
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 1
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl({"text": "a"}, {"text": "b"}))
    out = io.StringIO()
    call_command("import_items", project=project.pk, file=str(path), stdout=out)
    assert "queued" in out.getvalue()
    call_command("import_items", project=project.pk, file=str(path), now=True, metadata_fields="", stdout=out)
    assert "Imported 2 items" in out.getvalue()


# --- Duplicates over digests: exact, not approximate ---------------------------------------------------


def made_scan(content: list[bytes], ids: list[bytes] | None = None) -> importers.Scan:
    from array import array

    schema = Mapping().resolve({"text", "id"}, task_type=TaskType.SINGLE_LABEL, label_names=LABELS)
    ids = ids or [importers.NO_DIGEST] * len(content)
    return importers.Scan(
        schema=schema,
        rows=len(content),
        content=bytearray(b"".join(content)),
        ids=bytearray(b"".join(ids)),
        lines=array("I", range(1, len(content) + 1)),
    )


NONE = importers.digests(bytearray())


def test_digests_sharing_a_half_or_trailing_zero_bytes_are_not_duplicates():
    a = b"\x01" * 8 + b"\x02" * 8
    same_first_half = b"\x01" * 8 + b"\x03" * 8
    trailing_zeros = b"\x05" * 14 + b"\x00\x00"
    fewer_zeros = b"\x05" * 15 + b"\x00"
    result = made_scan([a, same_first_half, trailing_zeros, fewer_zeros, a, trailing_zeros])
    plan = importers.plan(result, existing_content=NONE, existing_ids=NONE)
    assert plan.skip.tolist() == [False, False, False, False, True, True]
    assert [(line, first) for line, first, _ in plan.examples] == [(5, 1), (6, 3)]
    assert plan.examples[1][2] == trailing_zeros  # the full digest, zeros kept, to look the item up


def test_rows_already_in_the_project_are_found_by_binary_search(monkeypatch):
    monkeypatch.setattr(importers, "MEMBERSHIP_CHUNK", 2)  # several chunks
    rows = [bytes([i]) * 16 for i in range(7)]
    existing = importers.digests(bytearray(rows[5] + rows[1] + b"\xff" * 16))
    plan = importers.plan(made_scan(rows), existing_content=existing, existing_ids=NONE)
    assert plan.skip.tolist() == [False, True, False, False, False, True, False]
    assert [(line, first) for line, first, _ in plan.examples] == [(2, None), (6, None)]


def test_repeated_ids_beyond_the_stored_errors_are_counted():
    n = importers.MAX_STORED_ERRORS + 21
    result = made_scan([i.to_bytes(16, "big") for i in range(n)], [importers.id_digest("same")] * n)
    importers.plan(result, existing_content=NONE, existing_ids=NONE)
    assert result.error_count == n - 1
    assert len(result.errors) == importers.MAX_STORED_ERRORS
    assert result.errors[0] == RowError(2, "id", importers.DUPLICATE_EXTERNAL_ID.format(line=1))
    assert result.error_summary()[-1].message == importers.MORE_ERRORS.format(count=20)


# --- Faults: a process killed mid-import, a job lost with Redis's data ------------------------------------------


def _running(project, owner, *, seconds_ago: float, name: str = "killed.jsonl") -> ImportJob:
    """An import as a killed process leaves it: claimed, its heartbeat stopped, no items (pass 2 rolled back)."""
    beat = timezone.now() - dt.timedelta(seconds=seconds_ago)
    return ImportJob.objects.create(
        project=project, created_by=owner, file_name=name, file_format="jsonl",
        status=ImportStatus.RUNNING, started_at=beat, heartbeat_at=beat,
    )


def test_an_import_whose_process_died_is_failed_as_abandoned_and_importing_again_works(project, owner, settings):
    stale = _running(project, owner, seconds_ago=settings.LABELLOOP_RUN_STALE_AFTER_S + 1)
    live = _running(project, owner, seconds_ago=settings.LABELLOOP_RUN_HEARTBEAT_S)
    assert svc.imports_mark_abandoned() == [stale.pk]
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.status == ImportStatus.FAILED and stale.finished_at is not None
    assert messages(stale) == [f"killed.jsonl: {svc.ABANDONED}"]
    assert live.status == ImportStatus.RUNNING
    assert svc.imports_mark_abandoned() == []

    retry = run_import(project, owner, jsonl({"text": "first"}, {"text": "second"}), name="killed.jsonl")
    assert retry.status == ImportStatus.SUCCEEDED and len(imported(project)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_running_import_beats_and_a_finished_one_cannot_be_swept(project, owner, settings, monkeypatch):
    """Outside a transaction (a request, an RQ job) the import beats from a thread while it works."""
    settings.LABELLOOP_RUN_HEARTBEAT_S = 0.02
    beats = []
    monkeypatch.setattr(svc, "_import_heartbeat", lambda *, job_id: beats.append(job_id) or True)
    original = svc._ItemWriter.write

    def slow_write(self, batch, *, digests):
        time.sleep(0.2)
        return original(self, batch, digests=digests)

    monkeypatch.setattr(svc._ItemWriter, "write", slow_write)
    job = run_import(project, owner, jsonl({"text": "beats"}))
    assert job.status == ImportStatus.SUCCEEDED and job.heartbeat_at is not None
    assert len(beats) >= 2 and set(beats) == {job.pk}
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    assert svc.imports_mark_abandoned() == []


@pytest.mark.django_db(transaction=True)
def test_an_import_swept_while_it_writes_commits_none_of_its_rows(project, owner, monkeypatch):
    """The sweep won the race: the last statement of pass 2 (running -> succeeded) finds the import failed,
    and the whole pass rolls back. bench/faults.py shows the same with a real SIGKILL.

    The sweep is another process: on PostgreSQL its UPDATE comes from a second connection (pass 2's own
    connection is busy with its COPY); SQLite has one writer, so there it is the same connection's."""
    original = svc._ItemWriter.write

    def sweep(job_id: int) -> None:
        if connection.vendor != "postgresql":
            ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.FAILED)
            return
        side = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with side.cursor() as cursor:
                sql = "UPDATE annotation_importjob SET status = %s WHERE id = %s"
                cursor.execute(sql, [ImportStatus.FAILED, job_id])
        finally:
            side.close()

    def write_then_lose_the_race(self, batch, *, digests):
        written = original(self, batch, digests=digests)
        sweep(self.template[self.at["import_job"]])
        return written

    monkeypatch.setattr(svc._ItemWriter, "write", write_then_lose_the_race)
    job = run_import(project, owner, jsonl({"text": "one"}, {"text": "two"}))
    assert job.status != ImportStatus.SUCCEEDED
    assert imported(project) == []


def test_a_pending_import_whose_job_was_lost_gets_it_back_and_runs(
    project, owner, settings, imports_queue, django_capture_on_commit_callbacks
):
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(project, owner, jsonl({"text": "lost 1"}, {"text": "lost 2"}))
    imports_queue.empty()  # Redis restarted without its data
    assert svc.imports_requeue_lost() == []  # too young: its enqueue may still be on its way
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    assert svc.imports_requeue_lost() == [job.pk]
    assert svc.imports_requeue_lost() == []  # pending in the queue again
    assert work(imports_queue)
    job.refresh_from_db()
    assert job.status == ImportStatus.SUCCEEDED and len(imported(project)) == 2


def test_the_runs_sweep_command_sweeps_imports_too(project, owner, imports_queue):
    stale = _running(project, owner, seconds_ago=10)
    out = io.StringIO()
    call_command("runs_sweep", "--stale-after", "1", stdout=out)
    assert f"imports abandoned: {stale.pk}; imports requeued: none" in out.getvalue()
    stale.refresh_from_db()
    assert stale.status == ImportStatus.FAILED
