"""Browser pages of augmentation: start one from a snapshot, follow it, see its rows beside their sources.

Owners start augmentations (they start runs too); reviewers see them; annotators get 403 and people outside the
project 404, as on the run pages.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.datasets.selectors import snapshot_get
from annotation.models import Project, Snapshot
from annotation.permissions import MANAGE, REVIEW, access_project
from core.errors import ServiceError
from core.http import AuthedRequest
from training.augment import selectors, services
from training.models import Augmentation, AugmentationStatus

NO_SUCH_SNAPSHOT = "No such snapshot."
NO_SUCH_AUGMENTATION = "No such augmentation."
POLL_EVERY = "every 2s"


def _snapshot_or_404(project: Project, snapshot_id: int) -> Snapshot:
    snapshot = snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404(NO_SUCH_SNAPSHOT)
    return snapshot


def _augmentation_or_404(project: Project, augmentation_id: int) -> Augmentation:
    augmentation = selectors.augmentation_get(project=project, augmentation_id=augmentation_id)
    if augmentation is None:
        raise Http404(NO_SUCH_AUGMENTATION)
    return augmentation


@login_required
@require_http_methods(["GET", "POST"])
def augmentation_create(request: AuthedRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    """The snapshot's augmentations and the form for a new one (owners); posting starts it."""
    roles = MANAGE if request.method == "POST" else REVIEW
    project, role = access_project(user=request.user, project_id=project_id, roles=roles)
    snapshot = _snapshot_or_404(project, snapshot_id)
    values: dict[str, Any] = {"methods": [], "per_row": 1, "seed": 0, "max_paraphrases": ""}
    error, field, status = "", "", 200
    if request.method == "POST":
        values = {
            "methods": request.POST.getlist("methods"),
            "per_row": request.POST.get("per_row", "1"),
            "seed": request.POST.get("seed", "0"),
            "max_paraphrases": request.POST.get("max_paraphrases", ""),
        }
        try:
            augmentation = services.augmentation_start(snapshot=snapshot, user=request.user, **values)
        except ServiceError as exc:
            error, field, status = exc.message, exc.field or "", 400
        else:
            return redirect(reverse("augmentation-detail", args=[project.pk, augmentation.pk]))
    choices = services.method_choices_for(project)
    if request.method == "GET":
        values["methods"] = [c.method for c in choices if c.available and c.method != "paraphrase"]
    context = {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "snapshot": snapshot,
        "train_rows": snapshot.manifest.get("splits", {}).get("train", 0),
        "choices": choices,
        "values": values,
        "error": error,
        "error_field": field,
        "per_row_max": services.PER_ROW_MAX,
        "paraphrase_default": services.MAX_PARAPHRASES_DEFAULT,
        "augmentations": selectors.augmentation_list(snapshot=snapshot),
    }
    return render(request, "training/augmentation_create.html", context, status=status)


@login_required
def augmentation_detail(request: AuthedRequest, project_id: int, augmentation_id: int) -> HttpResponse:
    """Progress while it runs (the fragment polls itself), then the counts and a sample of rows beside sources."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    augmentation = _augmentation_or_404(project, augmentation_id)
    context = {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "augmentation": augmentation,
        "snapshot": augmentation.snapshot,
        "poll": POLL_EVERY if augmentation.is_active else "",
        "queue_place": services.augmentation_queue_place(augmentation),
        "sample": selectors.augmentation_sample(augmentation=augmentation),
        "labels": services.METHOD_LABELS,
    }
    template = "training/_augmentation_status.html" if request.htmx else "training/augmentation_detail.html"
    return render(request, template, context)


@login_required
def augmentation_download(request: AuthedRequest, project_id: int, augmentation_id: int) -> FileResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    augmentation = _augmentation_or_404(project, augmentation_id)
    if augmentation.status != AugmentationStatus.SUCCEEDED:
        raise Http404(NO_SUCH_AUGMENTATION)
    path = services.augmentation_file(augmentation)
    name = f"augmentation-{augmentation.pk}-{augmentation.content_hash[:12]}.jsonl"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type="application/jsonl")
