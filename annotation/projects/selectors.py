"""Reads of projects: memberships, labels, guideline versions and the project overview."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef
from rest_framework.authtoken.models import Token

from annotation.models import (
    AccountSetup,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Label,
    Membership,
    Project,
)


def label_list(*, project: Project) -> list[Label]:
    return list(Label.objects.filter(project=project).order_by("position", "pk"))


def membership_list(*, project: Project, role: str | None = None) -> list[Membership]:
    memberships = Membership.objects.filter(project=project).select_related("user")
    if role is not None:
        memberships = memberships.filter(role=role)
    return list(memberships.order_by("role", "user__username"))


def guideline_version_get(*, project: Project, version: int) -> GuidelineVersion | None:
    return GuidelineVersion.objects.filter(project=project, version=version).first()


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


def membership_get(*, project: Project, user_id: int) -> Membership | None:
    return Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()


def account_must_change_password(*, user: User) -> bool:
    """Whether the user still signs in with the one-time password an owner created them with."""
    return AccountSetup.objects.filter(user=user, must_change_password=True).exists()


def token_get(*, user: User) -> Token | None:
    return Token.objects.filter(user=user).first()
