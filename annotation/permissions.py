"""Role checks shared by views and the API: fetch and authorise in one call.

A user outside a project gets `Http404` (ids reveal nothing); a member whose role does not allow the
action gets `PermissionDenied`. Owners may do everything in their project.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404

from annotation.models import Item, Membership, Project, ReviewTask, Role

ANY_ROLE: frozenset[str] = frozenset(Role.values)
ANNOTATE: frozenset[str] = frozenset({Role.OWNER, Role.ANNOTATOR})
REVIEW: frozenset[str] = frozenset({Role.OWNER, Role.REVIEWER})
MANAGE: frozenset[str] = frozenset({Role.OWNER})

NOT_FOUND = "No such project."
ITEM_NOT_FOUND = "No such item."
TASK_NOT_FOUND = "No such review task."
ROLE_REQUIRED = "Your role in this project does not allow this."


def membership_get(*, user: User | AnonymousUser, project_id: int) -> Membership | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("project")
        .filter(user=user, project_id=project_id, project__archived_at__isnull=True)
        .first()
    )


def access_project(
    *, user: User | AnonymousUser, project_id: int, roles: Iterable[str] = ANY_ROLE
) -> tuple[Project, str]:
    """Return (project, the user's role) or raise: 404 for outsiders, 403 for the wrong role."""
    membership = membership_get(user=user, project_id=project_id)
    if membership is None:
        raise Http404(NOT_FOUND)
    if membership.role not in roles:
        raise PermissionDenied(ROLE_REQUIRED)
    return membership.project, membership.role


def access_item(
    *, user: User | AnonymousUser, project_id: int, item_id: int, roles: Iterable[str] = ANY_ROLE
) -> tuple[Item, str]:
    """Like `access_project`, for one item of the project. One query: the item, its project and the user's role."""
    item = None
    if user.is_authenticated:
        role_in_project = Membership.objects.filter(project_id=OuterRef("project_id"), user=user).values("role")[:1]
        item = (
            Item.objects.select_related("project")
            .filter(pk=item_id, project_id=project_id, project__archived_at__isnull=True)
            .annotate(member_role=Subquery(role_in_project))
            .first()
        )
    if item is None or item.member_role is None:
        # An outsider, or a member asking for an item that is not there: access_project says which (404 or 403).
        access_project(user=user, project_id=project_id, roles=roles)
        raise Http404(ITEM_NOT_FOUND)
    if item.member_role not in roles:
        raise PermissionDenied(ROLE_REQUIRED)
    return item, item.member_role


def access_review_task(
    *, user: User | AnonymousUser, project_id: int, task_id: int, roles: Iterable[str] = REVIEW
) -> tuple[ReviewTask, str]:
    """Return (review task with its item, the user's role) or raise like `access_project`; 404 for another project's."""
    project, role = access_project(user=user, project_id=project_id, roles=roles)
    task = ReviewTask.objects.select_related("item").filter(project=project, pk=task_id).first()
    if task is None:
        raise Http404(TASK_NOT_FOUND)
    task.item.project = project
    return task, role
