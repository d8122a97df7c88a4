"""Browser pages for review, quality and snapshots: access check, one service or selector, render.

Each page view also serves its htmx fragment (`request.htmx`); links and forms keep real URLs, so
everything works without JavaScript too.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import selectors_review
from .models import Project, Snapshot, Split, TaskType
from .permissions import MANAGE, REVIEW, ROLE_REQUIRED, access_item, access_project
from .services import ServiceError, reviews, snapshots
from .services import quality as quality_svc
from .values import value_display

UNKNOWN_ACTION = "Choose accept, fix or send back."
TASK_GONE = "No such review task."


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _fix_value(project: Project, post: QueryDict) -> dict:
    """The reviewer's own final value from the fix form, in the shape of the project's task type."""
    if project.task_type == TaskType.MULTI_LABEL:
        return {"labels": post.getlist("labels")}
    if project.task_type == TaskType.INSTRUCTION:
        return {"response": post.get("response", "")}
    return {"label": post.get("label", "")}


def _review_page(
    request: HttpRequest,
    project: Project,
    role: str,
    *,
    task_id: int | None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    queue = selectors_review.review_queue(project=project, user=request.user, role=role, task_id=task_id)
    context = {"project": project, "role": role, "queue": queue, "panel": queue.panel, "error": error, "notice": notice}
    template = "annotation/_review_workspace.html" if request.htmx else "annotation/review_queue.html"
    return render(request, template, context, status=200 if request.htmx else status)


@login_required
def review_queue(request: HttpRequest, project_id: int) -> HttpResponse:
    """The queue of open review tasks and the current one, each saying why it is there."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return _review_page(request, project, role, task_id=_int_or_none(request.GET.get("task")))


@login_required
@require_POST
def review_decide(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    """Accept one annotation, fix the value, or send the item back; then show the next task."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    task = selectors_review.review_task_get(project=project, task_id=task_id)
    if task is None:
        raise Http404(TASK_GONE)
    task.item.project = project
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    try:
        if action == "accept":
            annotation_id = _int_or_none(request.POST.get("annotation"))
            if annotation_id is None:
                raise ServiceError(reviews.NOT_AN_ANNOTATION, field="annotation")
            reviews.review_accept(reviewer=request.user, task=task, annotation_id=annotation_id, reason=reason)
            done = "Accepted."
        elif action == "fix":
            reviews.review_decide(
                reviewer=request.user, task=task, value=_fix_value(project, request.POST), reason=reason
            )
            done = "Fixed."
        elif action == "send_back":
            reviews.review_send_back(reviewer=request.user, task=task, comment=request.POST.get("comment", ""))
            done = "Sent back to the annotators."
        else:
            raise ServiceError(UNKNOWN_ACTION, field="action")
    except ServiceError as exc:
        return _review_page(request, project, role, task_id=task.pk, error=exc.message, status=400)
    if request.htmx:
        return _review_page(request, project, role, task_id=None, notice=f"Item {task.item_id}: {done}")
    messages.success(request, f"Item {task.item_id}: {done}")
    return redirect(reverse("review-queue", args=[project.pk]))


@login_required
def item_history(request: HttpRequest, project_id: int, item_id: int) -> HttpResponse:
    """Everything that happened to one item: annotations, decisions, reviews and noise flags."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=REVIEW)
    if selectors_review.blind_to(user=request.user, role=role, item=item):
        raise PermissionDenied(selectors_review.STILL_ANNOTATABLE)
    final = selectors_review.current_decision(item=item)
    context = {
        "project": item.project,
        "role": role,
        "item": item,
        "events": selectors_review.item_history(item=item),
        "final": final,
        "final_display": value_display(final.value) if final else "",
    }
    return render(request, "annotation/review_history.html", context)


# --- Quality and noise scans ----------------------------------------------------------------------


@login_required
def quality(request: HttpRequest, project_id: int) -> HttpResponse:
    """Agreement, accuracy, confusion and trend for owners and reviewers; annotators see their own accuracy."""
    project, role = access_project(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "role": role,
        "can_review": role in REVIEW,
        "report": selectors_review.quality_report(project=project, user=request.user, role=role),
        "scan": selectors_review.noise_scan_latest(project=project) if role in REVIEW else None,
    }
    return render(request, "annotation/quality_report.html", context)


@login_required
@require_POST
def noise_scan_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    error = ""
    try:
        scan = quality_svc.noise_scan_start(project=project, user=request.user)
    except ServiceError as exc:
        error = exc.message
        scan = selectors_review.noise_scan_latest(project=project)
    if request.htmx:
        return render(request, "annotation/_quality_scan.html", {"project": project, "scan": scan, "error": error})
    if error:
        messages.error(request, error)
    return redirect(reverse("quality", args=[project.pk]))


@login_required
def noise_scan_detail(request: HttpRequest, project_id: int, scan_id: int) -> HttpResponse:
    """The scan's progress; the fragment keeps polling itself only while the scan is queued or running."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    scan = selectors_review.noise_scan_get(project=project, scan_id=scan_id)
    if scan is None:
        raise Http404("No such scan.")
    context = {"project": project, "scan": scan, "error": ""}
    template = "annotation/_quality_scan.html" if request.htmx else "annotation/quality_scan.html"
    return render(request, template, context)


# --- Snapshots ------------------------------------------------------------------------------------


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=200)
    seed = forms.IntegerField(initial=0, help_text="Seeds the split of items that have none yet.")
    train = forms.FloatField(initial=80, min_value=0, max_value=100, label="Train %")
    validation = forms.FloatField(initial=10, min_value=0, max_value=100, label="Validation %")
    test = forms.FloatField(initial=10, min_value=0, max_value=100, label="Test %")
    group_field = forms.CharField(
        required=False, max_length=100, label="Group by metadata field",
        help_text="Empty: items sharing a group key share a split.",
    )
    balance_mode = forms.ChoiceField(
        required=False, choices=[("", "No class-balance report"), *snapshots.BALANCE_MODES], label="Class balance"
    )

    def ratios(self) -> tuple[float, float, float]:
        d = self.cleaned_data
        return (d["train"] / 100, d["validation"] / 100, d["test"] / 100)


def _snapshot_or_404(project: Project, snapshot_id: int) -> Snapshot:
    snapshot = selectors_review.snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    return snapshot


@login_required
def snapshot_list(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's snapshots; the owner creates a new one here."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    form = SnapshotForm(request.POST or None, initial={"name": f"{project.name} snapshot"})
    status = 200
    if request.method == "POST":
        if role not in MANAGE:
            raise PermissionDenied(ROLE_REQUIRED)
        if form.is_valid():
            d = form.cleaned_data
            try:
                snapshot = snapshots.snapshot_create(
                    project=project, user=request.user, name=d["name"], seed=d["seed"], ratios=form.ratios(),
                    group_field=d["group_field"], balance_mode=d["balance_mode"],
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Snapshot {snapshot.name} created: {snapshot.item_count} items.")
                return redirect(reverse("snapshot-detail", args=[project.pk, snapshot.pk]))
        status = 400
    context = {
        "project": project,
        "role": role,
        "can_create": role in MANAGE,
        "form": form,
        "snapshots": selectors_review.snapshot_list(project=project),
    }
    return render(request, "annotation/snapshot_list.html", context, status=status)


@login_required
def snapshot_detail(request: HttpRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = _snapshot_or_404(project, snapshot_id)
    context = {
        "project": project,
        "role": role,
        "snapshot": snapshot,
        "manifest": snapshot.manifest,
        "manifest_json": json.dumps(snapshot.manifest, indent=2, sort_keys=True),
        "label_rows": selectors_review.manifest_label_rows(snapshot.manifest),
        "others": selectors_review.snapshot_list(project=project).exclude(pk=snapshot.pk),
        "splits": Split.values,
    }
    return render(request, "annotation/snapshot_detail.html", context)


def snapshot_stream(*, snapshot: Snapshot, split: str = "") -> StreamingHttpResponse:
    """The JSONL as a download, streamed line by line from its content-addressed file."""
    lines = snapshots.snapshot_lines(snapshot=snapshot, split=split)
    name = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}{'-' + split if split else ''}.jsonl"
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    if not split:
        response["X-Content-SHA256"] = snapshot.content_hash  # the whole file is what the hash covers
    return response


@login_required
def snapshot_download(request: HttpRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = _snapshot_or_404(project, snapshot_id)
    try:
        return snapshot_stream(snapshot=snapshot, split=request.GET.get("split", ""))
    except ServiceError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")


@login_required
def snapshot_compare(request: HttpRequest, project_id: int) -> HttpResponse:
    """What changed between two snapshots: items added, removed and relabelled."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    try:
        old, new = selectors_review.snapshot_pair(
            project=project, old_id=request.GET.get("old"), new_id=request.GET.get("new")
        )
    except ServiceError as exc:
        return render(
            request, "annotation/snapshot_compare.html",
            {"project": project, "error": exc.message, "snapshots": selectors_review.snapshot_list(project=project)},
            status=400,
        )
    diff = snapshots.snapshot_compare(old=old, new=new)
    context = {
        "project": project,
        "role": role,
        "old": old,
        "new": new,
        "diff": diff,
        "examples": selectors_review.diff_examples(diff),
        "snapshots": selectors_review.snapshot_list(project=project),
    }
    return render(request, "annotation/snapshot_compare.html", context)
