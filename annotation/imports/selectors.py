"""Reads of imports: a project's import jobs."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import ImportJob, ImportStatus, Project
from core.queues import QueuePlace, queue_place

# Imports too big for the request: short jobs, never behind a training run (docs/OPERATIONS.md).
IMPORTS_QUEUE = "imports"


def import_list(*, project: Project, status: str | None = None) -> QuerySet[ImportJob]:
    """The project's imports, newest first."""
    jobs = ImportJob.objects.filter(project=project).select_related("created_by")
    if status is not None:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-pk")


def import_queue_place(job: ImportJob) -> QueuePlace | None:
    """Where a pending import stands in the imports queue; None once a worker took it (or it ran in the request)."""
    if job.status != ImportStatus.PENDING:
        return None
    return queue_place(IMPORTS_QUEUE, job_rq_id(job.pk))


def job_rq_id(job_id: int) -> str:
    """Deterministic, so enqueueing the same import twice names one RQ job."""
    return f"import-{job_id}"
