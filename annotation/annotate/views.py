"""The annotate page: the workspace, submit → next in one round trip, skip, draft autosave, undo, progress."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from annotation.annotate.selectors import annotator_progress, claim_active_get, draft_get, project_progress
from annotation.annotate.services import (
    NextItem,
    annotation_submit_and_next,
    annotation_undo,
    claim_next,
    claim_skip,
    draft_autosave,
)
from annotation.annotate.span_pages import span_editor_context
from annotation.models import Label, Project
from annotation.permissions import ANNOTATE, access_item, access_project
from annotation.projects.guideline_pages import ack_context, guideline_html
from annotation.projects.selectors import label_list
from annotation.review.selectors import send_back_comment
from annotation.tasktypes import value_display
from core.errors import ServiceError, StateConflict
from core.http import AuthedRequest

# The event the page listens for to refresh its progress strip after a write.
PROGRESS_EVENT = "progress-changed"


def _next_for(request: AuthedRequest, project: Project, *, prefer_item_id: int | None = None) -> NextItem:
    """The item to show: the one the user asked for while they still hold it, else their next claim."""
    state = claim_next(annotator=request.user, project=project)
    if state.needs_ack or prefer_item_id is None or (state.item is not None and state.item.pk == prefer_item_id):
        return state
    held = claim_active_get(user=request.user, project=project, item_id=prefer_item_id)
    return NextItem(claim=held, guideline=state.guideline, needs_ack=False) if held else state


def _selected_names(value: dict[str, Any]) -> list[str]:
    if "label" in value:
        return [value["label"]]
    return list(value.get("labels", []))


def _workspace_context(
    request: AuthedRequest,
    project: Project,
    state: NextItem,
    labels: list[Label],
    *,
    error: str = "",
    flash: str = "",
    posted: dict[str, Any] | None = None,
    skip_open: bool = False,
) -> dict[str, Any]:
    """Everything `_annotate_workspace.html` shows: the item with the user's own draft, or the ack panel, or done.

    `posted` re-shows what the user just sent when the item stays on screen after a refusal. Blind by
    construction: nothing here reads another annotator's annotation or draft.
    """
    item = state.item
    context: dict[str, Any] = {
        "project": project,
        "labels": labels,
        "item": item,
        "claim": state.claim,
        "needs_ack": state.needs_ack,
        "error": error,
        "flash": flash,
        "skip_open": skip_open,
        "kind": project.task_kind,
    }
    if state.needs_ack and state.guideline is not None:
        context.update(ack_context(user=request.user, project=project, guideline=state.guideline))
        context["ack_next"] = reverse("annotate", args=[project.pk])
    if item is None:
        return context
    # A pre-label (imported, or the model's from the last round) only when the owner shows them: it biases
    # blind labelling. The item row is already loaded, so this costs no query.
    prelabel = item.prelabel if project.show_prelabels and isinstance(item.prelabel, dict) else None
    if prelabel:
        context["prelabel"] = value_display(prelabel)
    if posted is None:
        # A claim made just now is the user's first hold on the item, so it cannot have a draft.
        draft = None if state.fresh else draft_get(user=request.user, item=item)
        blank = {"value": prelabel or {}}
        posted = {"value": draft.value, "unsure": draft.unsure, "note": draft.note} if draft else blank
    if not state.fresh:  # a sent-back item comes back through its old claim, never a fresh one
        context["review_comment"] = send_back_comment(item=item)
    value = posted["value"]
    if project.task_kind.needs_text:
        context.update(span_editor_context(text=item.text, value=value, labels=labels))
    context.update(
        selected=_selected_names(value),
        response=value.get("response", item.response) if project.task_kind.generative else "",
        unsure=posted.get("unsure", False),
        note=posted.get("note", ""),
        has_draft=(bool(value) and value is not prelabel) or bool(posted.get("note")),
    )
    return context


def _workspace_response(
    request: AuthedRequest,
    project: Project,
    role: str,
    state: NextItem,
    labels: list[Label],
    *,
    status: int = 200,
    **kw,
) -> HttpResponse:
    """The `#workspace` fragment for htmx, or the whole annotate page (guidelines beside it, progress above it)."""
    context = _workspace_context(request, project, state, labels, **kw)
    if request.htmx:
        # htmx swaps 2xx only: a refusal is still a page to show, its message inside.
        return render(request, "annotation/_annotate_workspace.html", context)
    guideline = state.guideline
    context.update(
        role=role,
        guideline=guideline,
        guideline_html=guideline_html(guideline.body) if guideline else "",
        progress=project_progress(project=project),
        mine=annotator_progress(user=request.user, project=project),
    )
    return render(request, "annotation/item_annotate.html", context, status=status)


@login_required
def annotate(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The annotate page (or, for htmx, its workspace): the claimed item, `?item=<id>` to return to one held."""
    project, role = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    wanted = request.GET.get("item", "")
    state = _next_for(request, project, prefer_item_id=int(wanted) if wanted.isdigit() else None)
    return _workspace_response(request, project, role, state, label_list(project=project))


def _after_write(request: AuthedRequest, response: HttpResponse) -> HttpResponse:
    """Tell the page that counts changed: the progress fragment refreshes itself, off this request."""
    if request.htmx:
        response["HX-Trigger"] = PROGRESS_EVENT
    return response


@login_required
@require_POST
def annotate_submit(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """Store the label and answer with the next item: one round trip, a constant number of queries."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    labels = label_list(project=project)
    value = project.task_kind.value_from_form(request.POST)
    unsure, note = bool(request.POST.get("unsure")), request.POST.get("note", "")
    try:
        _, state = annotation_submit_and_next(
            annotator=request.user,
            item=item,
            value=value,
            label_names=[label.name for label in labels],
            unsure=unsure,
            note=note,
        )
    except ServiceError as exc:
        state = _next_for(request, project, prefer_item_id=item.pk)
        same = state.item is not None and state.item.pk == item.pk
        posted = {"value": value, "unsure": unsure, "note": note} if same else None
        return _workspace_response(request, project, role, state, labels, error=exc.message, posted=posted, status=400)
    if not request.htmx:
        return redirect("annotate", project.pk)
    flash = f"Saved item #{item.pk}."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_skip(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """Give the item back with a reason; the annotator is not offered it again."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    labels = label_list(project=project)
    try:
        claim_skip(annotator=request.user, item=item, reason=request.POST.get("reason", ""))
    except ServiceError as exc:
        state = _next_for(request, project, prefer_item_id=item.pk)
        skip_open = state.item is not None and state.item.pk == item.pk
        return _workspace_response(
            request, project, role, state, labels, error=exc.message, skip_open=skip_open, status=400
        )
    if not request.htmx:
        return redirect("annotate", project.pk)
    state = claim_next(annotator=request.user, project=project)
    flash = f"Skipped item #{item.pk}."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_undo(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Take back the last submission while nobody has reviewed it: its item comes back with the value as a draft."""
    project, role = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    labels = label_list(project=project)
    try:
        claim = annotation_undo(annotator=request.user, project=project)
    except ServiceError as exc:
        state = claim_next(annotator=request.user, project=project)
        return _workspace_response(request, project, role, state, labels, error=exc.message, status=400)
    if not request.htmx:
        return redirect(f"{reverse('annotate', args=[project.pk])}?item={claim.item_id}")
    state = NextItem(claim=claim, guideline=None, needs_ack=False)
    flash = f"Item #{claim.item_id} is back: change it and submit again."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_draft(request: AuthedRequest, project_id: int, item_id: int) -> HttpResponse:
    """Autosave of the form as it is, valid or not yet; only while the user holds the item."""
    item, _ = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    try:
        draft = draft_autosave(
            annotator=request.user,
            item=item,
            value=project.task_kind.value_from_form(request.POST),
            unsure=bool(request.POST.get("unsure")),
            note=request.POST.get("note", ""),
        )
    except StateConflict as exc:
        refusal = format_html('<span class="error">{}</span>', exc.message)
        return HttpResponse(refusal, status=200 if request.htmx else exc.status_code)
    if not request.htmx:
        return redirect(f"{reverse('annotate', args=[project.pk])}?item={item.pk}")
    return HttpResponse(format_html("Draft saved {}", draft.updated_at.strftime("%H:%M:%S")))


@login_required
def annotate_progress(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The progress strip alone: the page asks for it after each write (the `progress-changed` event)."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    context = {
        "project": project,
        "progress": project_progress(project=project),
        "mine": annotator_progress(user=request.user, project=project),
    }
    return render(request, "annotation/_annotate_progress.html", context)
