"""Browser pages of review: the queue, deciding a task, and an item's history."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from annotation.annotate.span_pages import pieces_html, span_editor_context
from annotation.models import Decision, Item, ItemStatus, Project, Role
from annotation.permissions import MANAGE, REVIEW, access_item, access_project, access_review_task
from annotation.projects.selectors import label_list
from annotation.review import selectors as review_selectors
from annotation.review import services as reviews
from annotation.review.keys import review_keys
from annotation.review.selectors import current_decision
from annotation.tasktypes import span_sides, value_display
from core.errors import ServiceError
from core.http import AuthedRequest

# What the page says after each action.
DONE = {
    "accept": "Accepted: {value} is the final label.",
    "fix": "Saved: {value} is the final label.",
    "send_back": "Sent back to the annotators.",
}

# ... unless adaptive routing's weighted vote kept another label than the reviewer's (review_decide).
OUTVOTED = (
    "Your label ({said}) joined the weighted vote, which keeps {final} as the final label (see the history, where "
    "the project's owner can overrule it)."
)


UNKNOWN_REASON = "There is no review reason {reason!r}: every open task is shown."


def _done(action: str, decision: Decision | None, text: str) -> tuple[str, bool]:
    """What the page says after the action, and whether the weighted vote kept another label (said as a warning,
    not a success: the reviewer's label is not what the item got)."""
    said = review_selectors.outvoted_value(decision=decision) if decision is not None else None
    if decision is not None and said is not None:
        return OUTVOTED.format(said=value_display(said, text), final=value_display(decision.value, text)), True
    value = value_display(decision.value, text) if decision is not None else ""
    return DONE[action].format(value=value), False


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _queue_state(request: AuthedRequest) -> dict[str, Any]:
    """The queue's filter and page, from the query string (the forms post to URLs that carry them)."""
    return {"reason": request.GET.get("reason", ""), "page": _int_or_none(request.GET.get("page")) or 1}


def _span_review_context(project: Project, panel: Any) -> dict[str, Any]:
    """The side-by-side span view (each answer's spans, words they disagree on marked) and the fix editor,
    filled with the current final value, else the first answer."""
    labels = label_list(project=project)
    item = panel.item
    values = [a.value for a in panel.annotations]
    sides = [
        {
            "letter": letter,
            "row": row,
            "pieces": pieces_html(segments),
            "spans_json": json.dumps(row.value.get("spans", [])),
        }
        for (row, letter, _), segments in zip(panel.accept_rows, span_sides(item.text, values), strict=True)
    ]
    start = panel.current_final.value if panel.current_final else values[0] if values else {}
    editor = span_editor_context(text=item.text, value=start, labels=labels)
    return {"span_sides": sides, "span_labels": labels, **editor}


def _hotkeys(project: Project) -> list[str]:
    return [label.hotkey for label in label_list(project=project)]


def _filter_query(reason: str, page: int) -> str:
    return urlencode({"reason": reason, "page": page} if reason else {"page": page})


def _review_page(
    request: AuthedRequest,
    project: Project,
    role: str,
    *,
    task_id: int | None,
    error: str = "",
    notice: str = "",
    notice_warns: bool = False,
    status: int = 200,
) -> HttpResponse:
    state = _queue_state(request)
    queue = review_selectors.review_queue(project=project, user=request.user, role=role, task_id=task_id, **state)
    if state["reason"] and state["reason"] != queue.reason and not notice:  # an old or mistyped link
        notice = UNKNOWN_REASON.format(reason=state["reason"])
    context = {
        "project": project,
        "role": role,
        "queue": queue,
        "panel": queue.panel,
        "kind": project.task_kind,
        "error": error,
        "notice": notice,
        "notice_warns": notice_warns,
        "filter_query": (filter_query := _filter_query(queue.reason, queue.page)),
        # with no task in the panel, the key that opens one (the panel's own Next key where a task is shown)
        "next_key": "" if queue.panel is not None else review_keys(annotations=0, hotkeys=_hotkeys(project)).next,
    }
    if project.task_kind.needs_text and queue.panel is not None:
        context.update(_span_review_context(project, queue.panel))
    template = "annotation/_review_workspace.html" if request.htmx else "annotation/review_queue.html"
    response = render(request, template, context, status=200 if request.htmx else status)
    # Back to the queue from another page (a task's History link) asks the server again: a kept copy would show
    # decided tasks as open (htmx's own snapshots are off: base.html); a half-typed note is lost then, as on a reload
    add_never_cache_headers(response)
    if request.htmx and request.method == "POST":
        # the address bar follows the task now shown: a reload after a decision reopens it, not the decided one
        shown = f"&task={queue.panel.task.pk}" if queue.panel is not None else ""
        response["HX-Replace-Url"] = reverse("review-queue", args=[project.pk]) + "?" + filter_query + shown
        # the whole workspace, wherever the form aimed (a bulk accept's first post aims at the panel, for its confirm)
        response["HX-Retarget"] = "#review-workspace"
        response["HX-Reswap"] = "innerHTML show:#review-panel:top"
    return response


@login_required
def review_queue(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The queue of open review tasks (filtered by reason, paged) and the current one, each saying why it is
    there; the reviewer's progress today."""
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
        decision = reviews.review_act(
            reviewer=request.user,
            task=task,
            action=action,
            annotation_id=_int_or_none(request.POST.get("annotation")),
            value=project.task_kind.value_from_form(request.POST) if action == "fix" else None,
            reason=request.POST.get("reason", ""),
            comment=request.POST.get("comment", ""),
        )
    except ServiceError as exc:
        # a task closed meanwhile: its error says so; the page shows the queue, not a second note about the link
        shown = None if isinstance(exc, reviews.TaskClosed) else task.pk
        return _review_page(request, project, role, task_id=shown, error=exc.message, status=400)
    done, outvoted = _done(action, decision, task.item.text)
    if request.htmx:
        notice = f"Item {task.item_id}: {done}"
        return _review_page(request, project, role, task_id=None, notice=notice, notice_warns=outvoted)
    (messages.warning if outvoted else messages.success)(request, f"Item {task.item_id}: {done}")
    return redirect(reverse("review-queue", args=[project.pk]) + "?" + urlencode(_queue_state(request)))


@login_required
@require_POST
def review_bulk_accept(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Accept the agreed label of the ticked audit items, after a confirmation that says how many items get
    which label. Refuses (changing nothing) when any ticked task is not an agreed audit sample."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    task_ids = [i for i in (_int_or_none(raw) for raw in request.POST.getlist("task")) if i is not None]
    try:
        plan = reviews.review_bulk_plan(project=project, user=request.user, role=role, task_ids=task_ids)
    except ServiceError as exc:
        return _review_page(request, project, role, task_id=None, error=exc.message, status=400)
    if request.POST.get("confirm") != "1":
        context = {"project": project, "plan": plan, "queue_state": urlencode(_queue_state(request))}
        template = "annotation/_review_bulk_confirm.html" if request.htmx else "annotation/review_bulk_confirm.html"
        return render(request, template, context)
    result = reviews.review_bulk_accept(reviewer=request.user, plan=plan)
    notice = f"Accepted {len(result.decisions)} audit item{pluralize(len(result.decisions))}."
    if result.already_closed:
        closed = len(result.already_closed)
        notice += f" {closed} had been closed meanwhile (decided, sent back or withdrawn): left as they are."
    if request.htmx:
        return _review_page(request, project, role, task_id=None, notice=notice)
    messages.success(request, notice)
    return redirect(reverse("review-queue", args=[project.pk]) + "?" + urlencode(_queue_state(request)))


@login_required
@require_POST
def item_overrule(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """The owner sets an approved item's final label outright, with a reason (reviews.item_overrule)."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=MANAGE)
    value = item.project.task_kind.value_from_form(request.POST)
    reason = request.POST.get("reason", "")
    confirm = request.POST.get("confirm_test_split") == "1"
    try:
        decision = reviews.item_overrule(
            owner=request.user, item=item, value=value, reason=reason, confirm_test_split=confirm
        )
    except ServiceError as exc:
        typed = {"value": value, "reason": reason, "confirm": confirm}  # the form keeps what was typed
        try:
            return _history_page(request, item, role, error=exc.message, typed=typed, status=400)
        except PermissionDenied:  # an item the owner may still annotate: its history stays hidden, not the refusal
            return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    messages.success(request, f"Item {item.pk}: {value_display(decision.value, item.text)} is now its final label.")
    return redirect(reverse("item-history", args=[item.project_id, item.pk]))


def _history_page(
    request: AuthedRequest,
    item: Item,
    role: str,
    *,
    error: str | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    events = review_selectors.item_history_for(user=request.user, role=role, item=item)
    final = current_decision(item=item)
    kind = item.project.task_kind
    can_overrule = role == Role.OWNER and item.status == ItemStatus.APPROVED and kind.single_class
    typed = typed or {}
    chosen = typed.get("value", {}).get(kind.value_field) if can_overrule else None  # one label: single-label only
    context = {
        "project": item.project,
        "role": role,
        "item": item,
        "events": events,
        "final": final,
        "final_display": value_display(final.value, item.text) if final else "",
        "kind": kind,
        "can_overrule": can_overrule,
        "labels": label_list(project=item.project) if can_overrule else [],
        "chosen": chosen,
        "typed_reason": typed.get("reason", ""),
        "typed_confirm": typed.get("confirm", False),
        "error": error,
    }
    return render(request, "annotation/review_history.html", context, status=status)


@login_required
def item_history(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """Everything that happened to one item: annotations, decisions, reviews and noise flags."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=REVIEW)
    return _history_page(request, item, role)
