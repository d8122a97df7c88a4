"""Browser pages for snapshots: list and create, detail, download and compare."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from annotation.datasets import selectors as datasets_selectors
from annotation.datasets import services as snapshots
from annotation.datasets.responses import snapshot_export
from annotation.datasets.selectors import diff_examples, manifest_label_rows, snapshot_get, snapshot_pair
from annotation.models import Project, Snapshot, Split
from annotation.permissions import MANAGE, REVIEW, ROLE_REQUIRED, access_project
from core.api import SEED_MAX
from core.errors import ServiceError
from core.http import AuthedRequest

SPLITS_NOT_100 = "Train, validation and test must add up to 100 %; they add up to {total} %."


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=200)
    seed = forms.IntegerField(
        initial=0, min_value=0, max_value=SEED_MAX, help_text="Seeds the split of items that have none yet.")
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
    allow_small_test = forms.BooleanField(
        required=False, label="Allow a small test split",
        help_text="Only for a first look: the snapshot and its runs will warn that test figures mean little.",
    )

    def clean(self) -> dict[str, Any]:
        """The sizes are typed in %, so their error is said in %: the service's ratios add up to 1."""
        data = super().clean() or {}
        parts = [data.get(name) for name in ("train", "validation", "test")]
        sizes = [p for p in parts if isinstance(p, float)]
        if len(sizes) == len(parts):
            total = sum(sizes)
            if abs(total - 100) > 1e-6:
                self.add_error(None, SPLITS_NOT_100.format(total=f"{total:g}"))
        return data

    def ratios(self) -> tuple[float, float, float]:
        d = self.cleaned_data
        return (d["train"] / 100, d["validation"] / 100, d["test"] / 100)


def _snapshot_or_404(project: Project, snapshot_id: int) -> Snapshot:
    snapshot = snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    return snapshot


@login_required
def snapshot_list(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The project's snapshots; the owner creates a new one here, after a confirmation that says how many items
    it freezes and how many get their split for good (`confirm=1`)."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    form = SnapshotForm(request.POST or None, initial={"name": f"{project.name} snapshot"})
    status = 200
    if request.method == "POST":
        if role not in MANAGE:
            raise PermissionDenied(ROLE_REQUIRED)
        preview = datasets_selectors.snapshot_preview(project=project) if form.is_valid() else None
        if preview is not None and preview.items and request.POST.get("confirm") != "1":
            context = {
                "project": project,
                "preview": preview,
                "form": form,
                "posted": [(k, v) for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirm")],
            }
            return render(request, "annotation/snapshot_confirm.html", context)
        if form.is_valid():
            d = form.cleaned_data
            try:
                snapshot = snapshots.snapshot_create(
                    project=project, user=request.user, name=d["name"], seed=d["seed"], ratios=form.ratios(),
                    group_field=d["group_field"], balance_mode=d["balance_mode"],
                    allow_small_test=d["allow_small_test"],
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
        "snapshots": datasets_selectors.snapshot_list(project=project),
    }
    return render(request, "annotation/snapshot_list.html", context, status=status)


@login_required
def snapshot_detail(request: AuthedRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = _snapshot_or_404(project, snapshot_id)
    context = {
        "project": project,
        "role": role,
        "snapshot": snapshot,
        "manifest": snapshot.manifest,
        "manifest_json": json.dumps(snapshot.manifest, indent=2, sort_keys=True),
        "label_rows": manifest_label_rows(snapshot.manifest),
        "others": datasets_selectors.snapshot_list(project=project).exclude(pk=snapshot.pk),
        "splits": Split.values,
    }
    return render(request, "annotation/snapshot_detail.html", context)


@login_required
def snapshot_download(
    request: AuthedRequest, project_id: int, snapshot_id: int
) -> HttpResponse | StreamingHttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = _snapshot_or_404(project, snapshot_id)
    try:
        return snapshot_export(
            snapshot=snapshot, split=request.GET.get("split", ""), fmt=request.GET.get("export", "")
        )
    except ServiceError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")


@login_required
def snapshot_compare(request: AuthedRequest, project_id: int) -> HttpResponse:
    """What changed between two snapshots: items added, removed and relabelled."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    try:
        old, new = snapshot_pair(
            project=project, old_id=request.GET.get("old"), new_id=request.GET.get("new")
        )
    except ServiceError as exc:
        return render(
            request, "annotation/snapshot_compare.html",
            {"project": project, "error": exc.message, "snapshots": datasets_selectors.snapshot_list(project=project)},
            status=400,
        )
    diff = snapshots.snapshot_compare(old=old, new=new)
    context = {
        "project": project,
        "role": role,
        "old": old,
        "new": new,
        "diff": diff,
        "examples": diff_examples(diff),
        "snapshots": datasets_selectors.snapshot_list(project=project),
    }
    return render(request, "annotation/snapshot_compare.html", context)
