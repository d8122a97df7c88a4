"""Reads of projects: memberships, labels, guideline versions and the project overview."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef

from annotation.models import (
    GuidelineAcknowledgement,
    GuidelineVersion,
    Label,
    Membership,
    Project,
)


def label_list(*, project: Project) -> list[Label]:
    return list(Label.objects.filter(project=project).order_by("position", "pk"))


def membership_list(*, project: Project) -> list[Membership]:
    return list(Membership.objects.filter(project=project).select_related("user").order_by("role", "user__username"))


def project_memberships_for_user(*, user: User) -> list[Membership]:
    return list(
        Membership.objects.select_related("project")
        .filter(user=user, project__archived_at__isnull=True)
        .order_by("-project__created_at")
    )


def guideline_versions(*, project: Project) -> list[GuidelineVersion]:
    """Every published version, newest first, with its author."""
    return list(GuidelineVersion.objects.filter(project=project).select_related("created_by").order_by("-version"))


def guideline_last_acknowledged(*, user: User, project: Project) -> GuidelineVersion | None:
    """The newest version this user acknowledged: the base of the diff they are shown for a new one."""
    acked = GuidelineAcknowledgement.objects.filter(guideline_version=OuterRef("pk"), user=user)
    return GuidelineVersion.objects.filter(project=project).filter(Exists(acked)).order_by("-version").first()


@dataclass(frozen=True)
class ProjectOverview:
    """A project as one member sees it: their role, its labels in order and the current guideline version."""

    project: Project
    role: str
    labels: list[Label]
    guideline_version: int | None


def project_overview(*, project: Project, role: str) -> ProjectOverview:
    """Two queries: labels, and the number of the newest guideline version."""
    current = GuidelineVersion.objects.filter(project=project).order_by("-version").values_list("version", flat=True)
    return ProjectOverview(
        project=project, role=role, labels=label_list(project=project), guideline_version=current.first()
    )
