"""Reads of projects: memberships, labels, guideline versions and the project overview."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from rest_framework.authtoken.models import Token

from annotation.models import (
    AccountSetup,
    Annotation,
    AnnotationStatus,
    Decision,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Item,
    ItemStatus,
    Label,
    Membership,
    Project,
    ReviewStatus,
    ReviewTask,
    Role,
)
from annotation.tasktypes import spans_overlap

# Items whose every overlap slot has a submitted annotation (or that were approved without one)
LABELLED_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


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


@dataclass(frozen=True)
class ProjectCard:
    """One row of the project list: the user's membership and where the project stands."""

    membership: Membership
    items: int = 0
    labelled: int = 0  # every overlap slot annotated (or approved as imported)
    reviewed: int = 0  # a reviewer decided at least once
    final: int = 0  # approved: the final label is there
    open_items: int = 0  # open to annotation (slots left)
    open_reviews: int = 0

    @property
    def project(self) -> Project:
        return self.membership.project

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def percent_labelled(self) -> int:
        return round(100 * self.labelled / self.items) if self.items else 0

    @property
    def percent_final(self) -> int:
        return round(100 * self.final / self.items) if self.items else 0


def project_cards_for_user(*, user: User) -> list[ProjectCard]:
    """The user's projects with their counts, newest first. Four queries whatever the number of projects."""
    memberships = project_memberships_for_user(user=user)
    ids = [m.project_id for m in memberships]
    if not ids:
        return []
    counts = {
        row.pop("project_id"): row
        for row in Item.objects.filter(project_id__in=ids)
        .values("project_id")
        .annotate(
            items=Count("pk"),
            labelled=Count("pk", filter=Q(status__in=LABELLED_STATUSES)),
            final=Count("pk", filter=Q(status=ItemStatus.APPROVED)),
            open_items=Count("pk", filter=Q(is_open=True)),
        )
        .order_by()
    }
    reviewed = dict(
        Decision.objects.filter(item__project_id__in=ids, reviewer__isnull=False)
        .values("item__project_id")
        .annotate(n=Count("item_id", distinct=True))
        .order_by()
        .values_list("item__project_id", "n")
    )
    reviews = dict(
        ReviewTask.objects.filter(project_id__in=ids, status=ReviewStatus.OPEN)
        .values("project_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("project_id", "n")
    )
    return [
        ProjectCard(
            membership=m,
            reviewed=reviewed.get(m.project_id, 0),
            open_reviews=reviews.get(m.project_id, 0),
            **counts.get(m.project_id, {}),
        )
        for m in memberships
    ]


def user_may_start_projects(*, user: User, cards: list[ProjectCard]) -> bool:
    """Whom the list offers "New project": staff, owners of a project, and newcomers with no project at all.

    Annotators and reviewers of others' projects are not offered it: it is not their job here.
    """
    return user.is_staff or not cards or any(card.role == Role.OWNER for card in cards)


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


# Rows read per round trip when stored span values are checked: memory stays bounded on big projects.
SPAN_SCAN_CHUNK = 2000


# How many item ids an overlap report keeps to name in a message.
SPAN_OVERLAP_EXAMPLES = 5


@dataclass
class SpanOverlapReport:
    """Stored span values of a project that hold overlapping spans: how many, where, and a few item ids."""

    count: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    item_ids: list[int] = field(default_factory=list)  # the first SPAN_OVERLAP_EXAMPLES items, in id order met

    def add(self, *, source: str, item_id: int) -> None:
        self.count += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        if item_id not in self.item_ids and len(self.item_ids) < SPAN_OVERLAP_EXAMPLES:
            self.item_ids.append(item_id)


def _span_value_sources(project: Project) -> list[tuple[str, QuerySet[Any]]]:
    """(what people call it, a query of (item id, value)) for every place a project keeps spans that a later
    write or a round reuses. Only values with two spans or more can overlap, so the database leaves out the rest.

    Left out on purpose: retracted annotations and superseded decisions (history, never reused), drafts (saved
    unvalidated as work in progress; a submit is checked), snapshots (frozen) and model outputs (decoded from BIO
    tags, which cannot overlap).
    """
    from training.models import Rating  # training depends on annotation; read lazily, as routing_inputs does

    newer = Decision.objects.filter(item_id=OuterRef("item_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
    )
    two = {"value__spans__1__isnull": False}
    return [
        (
            "annotation",
            Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED, **two).values_list(
                "item_id", "value"
            ),
        ),
        (
            "final label",
            Decision.objects.filter(item__project=project, **two)
            .filter(~Exists(newer))
            .values_list("item_id", "value"),
        ),
        (
            "pre-annotation",
            Item.objects.filter(project=project, prelabel__spans__1__isnull=False).values_list("pk", "prelabel"),
        ),
        (
            "review suggestion",
            ReviewTask.objects.filter(
                project=project, status=ReviewStatus.OPEN, suggested_value__spans__1__isnull=False
            ).values_list("item_id", "suggested_value"),
        ),
        (
            "rating correction",
            Rating.objects.filter(project=project, correction__spans__1__isnull=False).values_list(
                "item_id", "correction"
            ),
        ),
    ]


def span_overlaps(*, project: Project) -> SpanOverlapReport:
    """Every stored span value of the project that holds overlapping spans (what turning overlaps off would make
    invalid). One streamed query per place spans are kept, read in chunks; the overlap test is
    `tasktypes.spans_overlap`, the rule `Spans.normalise` applies."""
    report = SpanOverlapReport()
    for source, rows in _span_value_sources(project):
        for item_id, value in rows.order_by().iterator(chunk_size=SPAN_SCAN_CHUNK):
            if spans_overlap(value):
                report.add(source=source, item_id=item_id)
    return report
