"""Importing items from JSONL and CSV files: store the upload, validate all of it, then write all of it.

- `import_create` stores the upload under MEDIA_ROOT/imports/, counting its lines as it copies. A file of
  at most settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS lines runs in the request; a bigger one becomes an RQ
  job on the "imports" queue, enqueued on commit with the id "import-<pk>".
- `import_run` (what the job calls) claims the ImportJob with a conditional UPDATE pending -> running,
  so a job delivered twice imports once. Pass 1 (`importers.scan`) validates every row and keeps
  compact digests, spilling the parsed rows to a temporary file; any bad row fails the import and
  nothing is written, unless the owner chose a partial import: then the valid rows are written and the
  others are reported (line and field) on the job. An error about the file itself (its CSV header, a
  mapped column it lacks, no rows) fails either kind. Pass 2 streams the spill back and inserts in
  batches inside one transaction: one COPY on PostgreSQL, executemany elsewhere.
- `import_preview` runs pass 1 and the duplicate checks over the start of an upload, stores nothing, and
  says how the file's columns map before the owner commits to the import.
- Progress lives on the ImportJob row: processed_bytes/rows_read during pass 1, rows_imported during
  pass 2. Pass 2 runs inside a transaction, so its progress is written through a second connection on
  PostgreSQL; SQLite allows one writer at a time, so there the bar waits at the end of pass 1.
- A running import stamps `heartbeat_at` from a background thread (core.heartbeat). When the process
  running it dies (a web worker or RQ horse killed mid-import), `imports_sweep` fails it as abandoned:
  pass 2 is one transaction whose last statement is the conditional running -> succeeded, so an import
  the sweep failed can never commit items afterwards. Pending imports whose RQ job is gone (Redis
  restarted without its data) get their job again.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import django_rq
import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from annotation.annotate.services import annotations_import
from annotation.imports import importers, selectors
from annotation.models import ImportJob, ImportStatus, Item, LabelsAs, Project
from annotation.permissions import MANAGE, access_project
from annotation.projects.services import guideline_current, import_annotator
from annotation.review.services import decisions_import
from annotation.tasktypes import value_display
from annotation.webhooks import events as webhook_events
from core.errors import ServiceError
from core.heartbeat import heartbeat

logger = logging.getLogger(__name__)


IMPORTS_DIR = "imports"


QUEUE_NAME = selectors.IMPORTS_QUEUE


JOB_FUNCTION = "annotation.imports.jobs.import_job_run"


COPY_CHUNK_BYTES = 1024 * 1024


PROGRESS_INTERVAL_S = 0.5


EXISTING_CHUNK = 20_000


SQLITE_IMPORT_CACHE_KIB = 64 * 1024


FILE_TOO_LARGE = "The file is larger than the {limit} MB an import accepts (LABELLOOP_MAX_UPLOAD_MB); split it."
UNKNOWN_FORMAT = "Cannot tell the format of {name!r} from its extension: choose jsonl or csv."


BAD_FORMAT = "Unknown format {fmt!r}: use jsonl or csv."


FILE_MISSING = "The stored upload is missing; upload the file again."


QUEUE_UNAVAILABLE = "The import queue is unavailable (Redis did not answer); try again later."


CONCURRENT_CHANGE = (
    "Items were added to the project while this import ran, and some clash with it; "
    "import the file again (duplicates will be skipped)."
)


UNEXPECTED = "The import stopped unexpectedly: {error}"


BAD_LABELS_AS = "Unknown labels_as {value!r}: use one of {choices}."


NOTHING_VALID = "No row could be imported: every row has an error."


NO_LABEL_COLUMN = (
    "Labels were to be imported as {what}, but the file has no label column "
    "(looked for {looked}; name yours in the mapping's prelabel)."
)


ADOPT_BATCH = 2000


ABANDONED = (
    "The import stopped: the process running it went away (heartbeat lost). "
    "Nothing was imported; import the file again."
)


PENDING_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


class _Abandoned(Exception):
    """The sweep failed this import while it was writing: its transaction must roll back."""


JOB_NOT_FOUND = "No such import."


class UploadTooLarge(ServiceError):
    """The upload exceeds settings.LABELLOOP_MAX_UPLOAD_MB: refused (HTTP 413), nothing kept."""

    status_code = 413


def _upload_limit_bytes() -> int:
    return settings.LABELLOOP_MAX_UPLOAD_MB * 1024 * 1024


def _too_large() -> UploadTooLarge:
    return UploadTooLarge(FILE_TOO_LARGE.format(limit=settings.LABELLOOP_MAX_UPLOAD_MB), field="file")


job_rq_id = selectors.job_rq_id


def import_create(
    *,
    project: Project,
    user: User,
    file_name: str,
    fileobj: BinaryIO,
    file_format: str | None = None,
    mapping: dict[str, Any] | None = None,
    labels_as: str | None = None,
    partial: bool = False,
    inline: bool | None = None,
) -> ImportJob:
    """Store the upload and import it: now when it is small (or `inline=True`), else through the queue.

    `partial`: import the valid rows and report the others, instead of importing nothing when a row is bad.

    `labels_as` says what the file's label column becomes (LabelsAs): suggestions shown to annotators (the
    default), one annotation per item by the project's import account, or final labels.
    Returns the ImportJob; after an inline run it has already succeeded or failed (with its errors).
    A malformed request (format, mapping, labels_as) raises ServiceError and stores nothing.
    """
    access_project(user=user, project_id=project.pk, roles=MANAGE)
    name, fmt, labels_as, _ = _request_checked(file_name, file_format, labels_as, mapping)
    declared = getattr(fileobj, "size", None)  # Django's uploads know their size; a plain stream is counted below
    if isinstance(declared, int) and declared > _upload_limit_bytes():
        raise _too_large()

    relative_path, size, lines = _store_upload(project=project, fileobj=fileobj, suffix=fmt)
    job = ImportJob.objects.create(
        project=project,
        created_by=user,
        file_name=name,
        file_path=relative_path,
        file_format=fmt,
        mapping=mapping or {},
        labels_as=labels_as,
        partial=partial,
        total_bytes=size,
    )
    run_now = inline if inline is not None else lines <= settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS
    if run_now:
        return import_run(job_id=job.pk)
    transaction.on_commit(lambda: _enqueue(job=job))
    job.refresh_from_db()  # outside a transaction the enqueue already ran, and may have failed the job
    return job


def _request_checked(
    file_name: str, file_format: str | None, labels_as: str | None, mapping: dict[str, Any] | None
) -> tuple[str, str, str, importers.Mapping]:
    """(file name, format, labels_as, mapping) of an import request, or ServiceError naming the field at fault."""
    name = Path(file_name.replace("\\", "/")).name.strip()[:255] or "upload"
    fmt = (file_format or "").strip().lower() or importers.detect_format(name)
    if fmt is None:
        raise ServiceError(UNKNOWN_FORMAT.format(name=name), field="file_format")
    if fmt not in importers.FORMATS:
        raise ServiceError(BAD_FORMAT.format(fmt=fmt), field="file_format")
    labels_as = labels_as or LabelsAs.SUGGESTION
    if labels_as not in LabelsAs.values:
        raise ServiceError(BAD_LABELS_AS.format(value=labels_as, choices=LabelsAs.values), field="labels_as")
    try:
        return name, fmt, labels_as, importers.Mapping.from_dict(mapping)
    except importers.MappingError as exc:
        raise ServiceError(str(exc), field=exc.field) from exc


PREVIEW_MAX_BYTES = 4 * 1024 * 1024
LABEL_STUDIO_NO_PREVIEW = (
    "A Label Studio export is one JSON array, read whole: one over {mib} MiB cannot be previewed. Import it "
    "directly; every task is checked the same way and a bad one is named by its number."
)


PREVIEW_ROWS = 5


PREVIEW_ERRORS = 10


@dataclass(frozen=True)
class PreviewRow:
    line: int
    text: str
    response: str
    external_id: str
    group_key: str
    label: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ImportPreview:
    """How a file would be read, from its first PREVIEW_MAX_BYTES: nothing is stored or written."""

    file_name: str
    file_format: str
    columns: tuple[str, ...]
    mapping: dict[str, Any]  # Schema.as_mapping(): which column feeds which item field
    metadata_columns: tuple[str, ...]
    labels_as: str
    rows: list[PreviewRow]
    row_count: int
    whole_file: bool  # False: only the first PREVIEW_MAX_BYTES were read, so the counts are of those
    error_count: int
    rejected: int
    duplicates: int
    errors: list[str]
    fatal: bool  # an error about the file itself: nothing of it can be imported


def import_preview(
    *,
    project: Project,
    user: User,
    file_name: str,
    fileobj: BinaryIO,
    file_format: str | None = None,
    mapping: dict[str, Any] | None = None,
    labels_as: str | None = None,
) -> ImportPreview:
    """Read the start of an upload as the import would and say how it maps, before anything is committed.

    The same parser, mapping and checks (duplicates and ids against the project included) as the import,
    over at most PREVIEW_MAX_BYTES, cut at a line end; nothing is stored. A malformed request raises
    ServiceError as import_create does.
    """
    access_project(user=user, project_id=project.pk, roles=MANAGE)
    name, fmt, labels_as, parsed_mapping = _request_checked(file_name, file_format, labels_as, mapping)

    head = fileobj.read(PREVIEW_MAX_BYTES + 1)
    whole_file = len(head) <= PREVIEW_MAX_BYTES
    if not whole_file:
        head = head[: head.rfind(b"\n", 0, PREVIEW_MAX_BYTES) + 1] or head[:PREVIEW_MAX_BYTES]
    label_names = list(project.labels.values_list("name", flat=True))

    def read(data: bytes) -> tuple[importers.Scan, io.BytesIO]:
        spill = io.BytesIO()
        found = importers.scan(
            io.BytesIO(data),
            file_format=fmt,
            mapping=parsed_mapping,
            task_type=project.task_type,
            label_names=label_names,
            spill=spill,
            partial=True,
            allow_overlap=project.allow_overlapping_spans,
        )
        return found, spill

    if not whole_file and fmt == importers.LABEL_STUDIO:
        raise ServiceError(LABEL_STUDIO_NO_PREVIEW.format(mib=PREVIEW_MAX_BYTES // (1024 * 1024)), field="file")
    scan, spill = read(head)
    if not whole_file and fmt == importers.CSV and scan.rows > 1:
        # The cut may fall inside a quoted field that spans lines: leave out the last record, which may be partial.
        head = head[: _line_start(head, scan.lines[-1])]
        scan, spill = read(head)
    rejected = duplicates = 0
    left_out: set[int] = set()
    if scan.schema is not None and not scan.fatal:
        existing_content, existing_ids = _existing_digests(project=project)
        plan = importers.plan(scan, existing_content=existing_content, existing_ids=existing_ids)
        rejected, duplicates = plan.rejected, plan.duplicates
        skipped = plan.skip if plan.rejects is None else plan.skip | plan.rejects
        left_out = set(np.flatnonzero(skipped).tolist())
    errors = [e.describe(name) for e in scan.error_summary()[:PREVIEW_ERRORS]]
    if scan.schema is not None and labels_as != LabelsAs.SUGGESTION and scan.schema.prelabel is None:
        what = "final labels" if labels_as == LabelsAs.FINAL else "annotations"
        errors.insert(0, NO_LABEL_COLUMN.format(what=what, looked=", ".join(importers.DEFAULT_FIELDS["prelabel"])))
    return ImportPreview(
        file_name=name,
        file_format=fmt,
        columns=scan.columns,
        mapping=scan.schema.as_mapping() if scan.schema else {},
        metadata_columns=_metadata_columns(scan),
        labels_as=labels_as,
        rows=_preview_rows(scan, spill, left_out=left_out),
        row_count=scan.rows,
        whole_file=whole_file,
        error_count=scan.error_count,
        rejected=rejected,
        duplicates=duplicates,
        errors=errors,
        fatal=scan.fatal,
    )


def _line_start(data: bytes, line: int) -> int:
    """The offset at which 1-based `line` starts."""
    offset = 0
    for _ in range(line - 1):
        offset = data.index(b"\n", offset) + 1
    return offset


def _metadata_columns(scan: importers.Scan) -> tuple[str, ...]:
    if scan.schema is None:
        return ()
    if scan.schema.metadata is not None:
        return scan.schema.metadata
    return tuple(c for c in scan.columns if c not in scan.schema.used)


def _preview_rows(scan: importers.Scan, spill: BinaryIO, *, left_out: set[int]) -> list[PreviewRow]:
    """The first rows that would be written (not rejected, not duplicates), as the items they would become."""
    rows: list[PreviewRow] = []
    for chunk in importers.read_spill(spill):
        kept = [row for row in chunk if row[0] not in left_out]
        for index, text, response, external_id, metadata, group_key, prelabel in kept[: PREVIEW_ROWS - len(rows)]:
            label = "" if prelabel is None else value_display(prelabel)
            rows.append(
                PreviewRow(scan.lines[index], text, response, external_id, group_key, label, metadata)
            )
        if len(rows) >= PREVIEW_ROWS:
            break
    return rows


def import_run(*, job_id: int) -> ImportJob:
    """Run one import to its end; a job that is not pending any more (run twice) is returned untouched."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PENDING).update(
        status=ImportStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    job = ImportJob.objects.select_related("project").get(pk=job_id)
    if not claimed:
        return job
    try:
        with ExitStack() as stack:
            # Inside a caller's transaction our claim holds the row's lock: a beat from another connection
            # would wait for it, and the caller's commit comes after the import anyway.
            if not connection.in_atomic_block:
                stack.enter_context(heartbeat(partial(_import_heartbeat, job_id=job_id)))
            _run(job)
    except _Abandoned:
        logger.warning("import %s was failed by the sweep while it ran; its rows were rolled back", job_id)
    except IntegrityError:
        logger.warning("import %s clashed with a concurrent change", job_id, exc_info=True)
        _finish_failed(job, errors=[importers.RowError(None, None, CONCURRENT_CHANGE)])
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        _finish_failed(job, errors=[importers.RowError(None, None, UNEXPECTED.format(error=exc))])
    job.refresh_from_db()
    webhook_events.import_finished(job=job)
    return job


def _store_upload(*, project: Project, fileobj: BinaryIO, suffix: str) -> tuple[str, int, int]:
    """Copy the upload in chunks to MEDIA_ROOT/imports/<project>/; return (relative path, bytes, lines).

    A stream that passes the size limit is refused and its partial copy removed: nothing is kept.
    """
    relative = f"{IMPORTS_DIR}/{project.pk}/{uuid.uuid4().hex}.{suffix}"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    size = lines = 0
    last = b""
    limit = _upload_limit_bytes()
    with target.open("wb") as out:
        while chunk := fileobj.read(COPY_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                break
            out.write(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if size > limit:
        target.unlink(missing_ok=True)
        raise _too_large()
    if size and last != b"\n":
        lines += 1
    return relative, size, lines


def _enqueue(*, job: ImportJob) -> None:
    """Hand the job to the queue; with Redis down the job fails visibly instead of running inline."""
    try:
        # commit_mode="auto": this already runs on commit, and a Redis error must surface here
        queue = django_rq.get_queue(QUEUE_NAME, commit_mode="auto")
        queue.enqueue(JOB_FUNCTION, job.pk, job_id=job_rq_id(job.pk))
    except RedisError:
        logger.exception("could not enqueue import %s", job.pk)
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.PENDING).update(
            status=ImportStatus.FAILED,
            finished_at=timezone.now(),
            errors=[importers.RowError(None, None, QUEUE_UNAVAILABLE).as_json(job.file_name)],
        )


def _run(job: ImportJob) -> None:
    path = Path(settings.MEDIA_ROOT) / job.file_path
    if not job.file_path or not path.is_file():
        _finish_failed(job, errors=[importers.RowError(None, None, FILE_MISSING)])
        return
    project = job.project
    progress = _Progress(job_id=job.pk)
    started = time.monotonic()
    with path.open("rb") as stream, tempfile.TemporaryFile(prefix="labelloop-import-") as spill:
        scan = importers.scan(
            stream,
            file_format=job.file_format,
            mapping=importers.Mapping.from_dict(job.mapping),
            task_type=project.task_type,
            label_names=list(project.labels.values_list("name", flat=True)),
            spill=spill,
            on_progress=progress.scanned,
            partial=job.partial,
            allow_overlap=project.allow_overlapping_spans,
        )
        plan = None
        if scan.schema is not None:
            existing_content, existing_ids = _existing_digests(project=project)
            plan = importers.plan(scan, existing_content=existing_content, existing_ids=existing_ids)
        summary = {
            "rows_read": scan.rows,
            "processed_bytes": scan.bytes_read,
            "mapping": scan.schema.as_mapping() if scan.schema else job.mapping,
            "duplicates": plan.duplicates if plan else 0,
            "duplicate_examples": _describe_duplicates(project=project, plan=plan) if plan else [],
            "rows_rejected": plan.rejected if plan else 0,
        }
        if plan is None or scan.fatal or (scan.error_count and not job.partial):
            _finish_failed(job, errors=scan.error_summary(), **summary)
            return
        if plan.rejected and plan.rejected + plan.duplicates >= scan.rows:
            errors = [importers.RowError(None, None, NOTHING_VALID), *scan.error_summary()]
            _finish_failed(job, errors=errors, **summary)
            return
        if job.labels_as != LabelsAs.SUGGESTION and scan.schema is not None and scan.schema.prelabel is None:
            looked = ", ".join(importers.DEFAULT_FIELDS["prelabel"])
            what = "final labels" if job.labels_as == LabelsAs.FINAL else "annotations"
            message = NO_LABEL_COLUMN.format(what=what, looked=looked)
            _finish_failed(job, errors=[importers.RowError(None, "prelabel", message)], **summary)
            return

        checked = time.monotonic()
        ImportJob.objects.filter(pk=job.pk).update(**summary)  # pass 1 is over: the bar moves to its second half
        left_out = plan.skip if plan.rejects is None else plan.skip | plan.rejects
        skip = left_out.tolist()  # a list of bools: 8 bytes a row, and fast to index
        rows = (row for chunk in importers.read_spill(spill) for row in chunk if not skip[row[0]])
        written = 0
        try:
            with transaction.atomic():
                with _ItemWriter(job=job) as writer:
                    for batch in _batches(rows, settings.LABELLOOP_IMPORT_BATCH_SIZE):
                        written += writer.write(batch, digests=scan.content)
                        progress.written(written)
                adopted = _labels_adopt(job=job)
                progress.close()
                if not ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
                    status=ImportStatus.SUCCEEDED,
                    finished_at=timezone.now(),
                    rows_imported=written,
                    errors=[e.as_json(job.file_name) for e in scan.error_summary()],  # a partial import's rejects
                ):
                    raise _Abandoned
        finally:
            progress.close()
    logger.info(
        "import %s: checked %d rows in %.1fs, wrote %d in %.1fs (%d labels as %s)",
        job.pk,
        scan.rows,
        checked - started,
        written,
        time.monotonic() - checked,
        adopted,
        job.labels_as,
    )


def _labels_adopt(*, job: ImportJob) -> int:
    """Turn the labels this import just wrote as pre-labels into annotations or final labels, as chosen.

    Runs inside the import's transaction: the items and their labels commit together or not at all.
    """
    if job.labels_as == LabelsAs.SUGGESTION:
        return 0
    project = job.project
    provenance = f"Imported from {job.file_name} (import #{job.pk})."
    ids = list(Item.objects.filter(import_job=job, prelabel__isnull=False).order_by("pk").values_list("pk", flat=True))
    adopt: Callable[[list[tuple[int, dict[str, Any]]]], int]
    if job.labels_as == LabelsAs.FINAL:
        adopt = partial(decisions_import, project=project, reason=provenance)
    else:
        adopt = partial(
            annotations_import,
            project=project,
            annotator=import_annotator(project=project),
            guideline_version=guideline_current(project=project),
            note=provenance,
        )
    adopted = 0
    for start in range(0, len(ids), ADOPT_BATCH):
        chunk = ids[start : start + ADOPT_BATCH]
        adopted += adopt(rows=list(Item.objects.filter(pk__in=chunk).order_by("pk").values_list("pk", "prelabel")))
    return adopted


def _finish_failed(job: ImportJob, *, errors: list[importers.RowError], **fields: Any) -> None:
    ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
        status=ImportStatus.FAILED,
        finished_at=timezone.now(),
        rows_imported=0,
        errors=[e.as_json(job.file_name) for e in errors],
        **fields,
    )


def _import_heartbeat(*, job_id: int) -> bool:
    return bool(
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.RUNNING).update(heartbeat_at=timezone.now())
    )


def imports_mark_abandoned(*, stale_after_s: float | None = None) -> list[int]:
    """Fail every running import whose heartbeat is older than the stale threshold (its process is gone)."""
    stale = settings.LABELLOOP_RUN_STALE_AFTER_S if stale_after_s is None else stale_after_s
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=stale)
    swept = []
    for job in ImportJob.objects.filter(status=ImportStatus.RUNNING, heartbeat_at__lt=cutoff).only("pk", "file_name"):
        if ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=ImportStatus.FAILED,
            finished_at=now,
            rows_imported=0,
            errors=[importers.RowError(None, None, ABANDONED).as_json(job.file_name)],
        ):
            swept.append(job.pk)
            webhook_events.import_finished(job=ImportJob.objects.get(pk=job.pk))
    return swept


def imports_requeue_lost() -> list[int]:
    """Pending imports whose RQ job is gone (Redis restarted without its data, or flushed) get their job again."""
    queue = django_rq.get_queue(QUEUE_NAME, commit_mode="auto")  # starts the embedded Redis if need be
    cutoff = timezone.now() - dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    lost = []
    for job in ImportJob.objects.filter(status=ImportStatus.PENDING, created_at__lt=cutoff).only("pk", "file_name"):
        if not _rq_job_pending(job_rq_id(job.pk), queue.connection):
            _enqueue(job=job)
            lost.append(job.pk)
    return lost


def imports_sweep(*, stale_after_s: float | None = None) -> tuple[list[int], list[int]]:
    """What the every-minute sweep does for imports: (failed as abandoned, requeued)."""
    return imports_mark_abandoned(stale_after_s=stale_after_s), imports_requeue_lost()


def _rq_job_pending(rq_job_id: str, redis: Any) -> bool:
    try:
        job = Job.fetch(rq_job_id, connection=redis)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in PENDING_JOB_STATUSES


def _batches(rows: Iterator[importers.SpilledRow], size: int) -> Iterator[list[importers.SpilledRow]]:
    while batch := list(islice(rows, size)):
        yield batch


def _existing_digests(*, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """The project's items as compact digests (16 bytes each), read in chunks."""
    content = bytearray()
    ids = bytearray()
    rows = Item.objects.filter(project=project).values_list("content_hash", "external_id")
    for content_hash, external_id in rows.iterator(chunk_size=EXISTING_CHUNK):
        content += bytes.fromhex(content_hash)
        if external_id:
            ids += importers.id_digest(external_id)
    return importers.digests(content), importers.digests(ids)


def _describe_duplicates(*, project: Project, plan: importers.Plan) -> list[dict[str, Any]]:
    """[{line, first_line}] for copies within the file, [{line, item_id}] for copies of existing items."""
    in_project = {digest.hex() for _, first_line, digest in plan.examples if first_line is None}
    item_ids = dict(Item.objects.filter(project=project, content_hash__in=in_project).values_list("content_hash", "pk"))
    examples = []
    for line, first_line, digest in plan.examples:
        if first_line is None:
            examples.append({"line": line, "item_id": item_ids.get(digest.hex())})
        else:
            examples.append({"line": line, "first_line": first_line})
    return examples


class _Progress:
    """Writes a job's progress at most every PROGRESS_INTERVAL_S, where other connections can see it."""

    def __init__(self, *, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.side: Any = None  # pass 2's own connection (PostgreSQL only)
        # Inside a caller's transaction our claim keeps the job row locked until that transaction ends:
        # a second connection updating the row would wait for us while we wait for it.
        self.separate = connection.vendor != "sqlite" and not connection.in_atomic_block

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S:
            return False
        self.last = now
        return True

    def scanned(self, processed_bytes: int, rows: int) -> None:
        if self._due():
            ImportJob.objects.filter(pk=self.job_id).update(processed_bytes=processed_bytes, rows_read=rows)

    def written(self, rows: int) -> None:
        if not self.separate or not self._due():
            return
        if self.side is None:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        table = connection.ops.quote_name(ImportJob._meta.db_table)
        with self.side.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET rows_imported = %s WHERE id = %s", [rows, self.job_id])  # noqa: S608

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
            self.side = None


class _ItemWriter:
    """Inserts import rows fast: COPY on PostgreSQL, executemany elsewhere, the same columns either way.

    Columns the import does not set take their model default, prepared once, so an Item field added
    later with a default needs no change here.
    """

    IMPORTED = (
        "project",
        "import_job",
        "text",
        "response",
        "external_id",
        "metadata",
        "group_key",
        "content_hash",
        "prelabel",
    )

    def __init__(self, *, job: ImportJob) -> None:
        fields = [f for f in Item._meta.concrete_fields if not f.primary_key]
        now = timezone.now()
        self.template: list[Any] = []
        for f in fields:
            if f.name in self.IMPORTED:
                value = None
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value = f.get_db_prep_save(now, connection)
            else:
                value = f.get_db_prep_save(f.get_default(), connection)
            self.template.append(value.value if isinstance(value, enum.Enum) else value)
        self.at = {f.name: i for i, f in enumerate(fields)}
        self.template[self.at["project"]] = job.project_id
        self.template[self.at["import_job"]] = job.pk
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        table = quote(Item._meta.db_table)
        if connection.vendor == "postgresql":
            self.sql = f"COPY {table} ({columns}) FROM STDIN"
        else:
            self.sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
        self._stack = ExitStack()
        self._insert: Callable[[list[tuple]], Any] = self._closed

    def __enter__(self) -> _ItemWriter:
        cursor = self._stack.enter_context(connection.cursor())
        if connection.vendor == "postgresql":
            # One COPY for the whole pass: the server indexes rows while Python prepares the next ones.
            # It runs on the raw psycopg cursor, so its errors go through Django's wrapper (IntegrityError).
            self._stack.enter_context(connection.wrap_database_errors)
            copy = self._stack.enter_context(cursor.cursor.copy(self.sql))
            self._insert = partial(_write_rows, copy.write_row)
        else:
            # Random inserts into the content-hash and id indexes miss SQLite's 2 MB default page cache
            # at every row once a project is big; a larger cache for the import saves ~20% of its CPU.
            cursor.execute("PRAGMA cache_size")
            previous = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
            self._stack.callback(cursor.execute, f"PRAGMA cache_size = {int(previous)}")
            self._insert = partial(cursor.executemany, self.sql)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._insert = self._closed
        self._stack.__exit__(*exc_info)

    @staticmethod
    def _closed(values: list[tuple]) -> None:
        raise RuntimeError("write inside `with _ItemWriter(...)`")

    def write(self, batch: Iterable[importers.SpilledRow], *, digests: bytearray) -> int:
        at, template, size = self.at, self.template, importers.DIGEST_BYTES
        p_text, p_response, p_id = at["text"], at["response"], at["external_id"]
        p_meta, p_group, p_hash, p_pre = at["metadata"], at["group_key"], at["content_hash"], at["prelabel"]
        dumps = json.dumps
        values = []
        for index, text, response, external_id, metadata, group_key, prelabel in batch:
            v = template.copy()
            v[p_text] = text
            v[p_response] = response
            v[p_id] = external_id
            v[p_meta] = dumps(metadata)
            v[p_group] = group_key
            v[p_hash] = digests[index * size : (index + 1) * size].hex()
            v[p_pre] = None if prelabel is None else dumps(prelabel)
            values.append(tuple(v))
        self._insert(values)
        return len(values)


def _write_rows(write_row: Callable[[tuple], None], values: list[tuple]) -> None:
    for row in values:
        write_row(row)


def import_list(*, project: Project, limit: int = 20) -> QuerySet[ImportJob]:
    """A project's most recent imports, newest first."""
    return ImportJob.objects.filter(project=project).select_related("created_by").order_by("-created_at")[:limit]


def import_get_for_user(*, user: User, project_id: int, job_id: int) -> ImportJob:
    """The import, for an owner of its project: 404 for outsiders and other projects' ids, 403 for other roles."""
    project, _role = access_project(user=user, project_id=project_id, roles=MANAGE)
    job = ImportJob.objects.filter(project=project, pk=job_id).select_related("created_by").first()
    if job is None:
        raise Http404(JOB_NOT_FOUND)
    job.project = project
    return job


@dataclass(frozen=True)
class ImportProgress:
    percent: int
    phase: str
    done: bool
    state: str  # queued, running, succeeded, partial (some rows rejected) or failed: the bar's colour


def import_progress(job: ImportJob) -> ImportProgress:
    """The bar: the first half follows pass 1 (bytes checked), the second pass 2 (rows written).

    A failed import keeps the bar where it stopped, in the failed colour: a full bar means imported.
    """
    if job.status == ImportStatus.PENDING:
        return ImportProgress(0, "Queued", False, "queued")
    if job.status == ImportStatus.SUCCEEDED:
        if job.rows_rejected:
            return ImportProgress(100, "Imported, some rows rejected", True, "partial")
        return ImportProgress(100, "Imported", True, "succeeded")
    if job.processed_bytes < job.total_bytes or job.status == ImportStatus.FAILED:
        percent = 50 * min(job.processed_bytes, job.total_bytes) // max(job.total_bytes, 1)
        if job.status == ImportStatus.FAILED:
            # the bar stops at the checking half: say so, or half a bar reads as half the rows (a tester's reading)
            checked = job.processed_bytes >= job.total_bytes > 0
            phase = "Failed: every row checked, nothing written" if checked else "Failed"
            return ImportProgress(max(percent, 2), phase, True, "failed")
        return ImportProgress(percent, "Checking rows", False, "running")
    to_write = max(job.rows_read - job.duplicates - job.rows_rejected, 1)
    return ImportProgress(50 + 50 * min(job.rows_imported, to_write) // to_write, "Writing rows", False, "running")
