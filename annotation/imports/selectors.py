"""Reads of imports: a project's import jobs."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import ImportJob, Project


def import_list(*, project: Project, status: str | None = None) -> QuerySet[ImportJob]:
    """The project's imports, newest first."""
    jobs = ImportJob.objects.filter(project=project).select_related("created_by")
    if status is not None:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-pk")
