"""Browser pages of review: the queue, deciding a task, and an item's history."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import Project
from annotation.permissions import REVIEW, access_item, access_project, access_review_task
from annotation.review import selectors as review_selectors
from annotation.review import services as reviews
from annotation.review.selectors import current_decision
from annotation.tasktypes import value_display
from core.errors import ServiceError
from core.http import AuthedRequest

# What the page says after each action.
DONE = {"accept": "Accepted.", "fix": "Fixed.", "send_back": "Sent back to the annotators."}


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _review_page(
    request: AuthedRequest,
    project: Project,
    role: str,
    *,
    task_id: int | None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    queue = review_selectors.review_queue(project=project, user=request.user, role=role, task_id=task_id)
    context = {"project": project, "role": role, "queue": queue, "panel": queue.panel, "error": error, "notice": notice}
    template = "annotation/_review_workspace.html" if request.htmx else "annotation/review_queue.html"
    return render(request, template, context, status=200 if request.htmx else status)


@login_required
def review_queue(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The queue of open review tasks and the current one, each saying why it is there."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return _review_page(request, project, role, task_id=_int_or_none(request.GET.get("task")))


@login_required
@require_POST
def review_decide(request: AuthedRequest, project_id: int, task_id: int) -> HttpResponse:
    """Accept one annotation, fix the value, or send the item back; then show the next task."""
    task, role = access_review_task(user=request.user, project_id=project_id, task_id=task_id)
    project = task.item.project
    action = request.POST.get("action", "")
    try:
        reviews.review_act(
            reviewer=request.user,
            task=task,
            action=action,
            annotation_id=_int_or_none(request.POST.get("annotation")),
            value=project.task_kind.value_from_form(request.POST) if action == "fix" else None,
            reason=request.POST.get("reason", ""),
            comment=request.POST.get("comment", ""),
        )
    except ServiceError as exc:
        return _review_page(request, project, role, task_id=task.pk, error=exc.message, status=400)
    done = DONE[action]
    if request.htmx:
        return _review_page(request, project, role, task_id=None, notice=f"Item {task.item_id}: {done}")
    messages.success(request, f"Item {task.item_id}: {done}")
    return redirect(reverse("review-queue", args=[project.pk]))


@login_required
def item_history(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """Everything that happened to one item: annotations, decisions, reviews and noise flags."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=REVIEW)
    events = review_selectors.item_history_for(user=request.user, role=role, item=item)
    final = current_decision(item=item)
    context = {
        "project": item.project,
        "role": role,
        "item": item,
        "events": events,
        "final": final,
        "final_display": value_display(final.value) if final else "",
    }
    return render(request, "annotation/review_history.html", context)
