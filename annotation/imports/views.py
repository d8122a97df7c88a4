"""The import page: upload a JSONL or CSV file, then watch its job until it is done. Owners only.

static/js/upload.js sends the form by XHR (so the browser reports upload progress) with an
`HX-Request` header; the answer is the job's progress fragment, which polls itself through htmx until
the job has finished. Without JavaScript the form posts normally and lands on the job's page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.imports.importers import ALL_OTHER_FIELDS, CSV, JSONL
from annotation.imports.selectors import import_queue_place
from annotation.imports.services import import_create, import_get_for_user, import_list, import_progress
from annotation.models import ImportJob, LabelsAs
from annotation.permissions import MANAGE, access_project
from core.errors import ServiceError
from core.http import AuthedRequest

NOT_USED = "-"


# mapping key -> form field, so that a ServiceError about a mapping key lands on its input
MAPPING_FIELDS = {
    "text": "text_field",
    "response": "response_field",
    "external_id": "id_field",
    "group_key": "group_field",
    "prelabel": "prelabel_field",
}


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL (one JSON object a line) or CSV with a header row, UTF-8.")
    file_format = forms.ChoiceField(
        choices=[("", "From the file's extension"), (JSONL, "JSONL"), (CSV, "CSV")], required=False, label="Format"
    )
    text_field = forms.CharField(
        required=False, max_length=255, label="Text or prompt", help_text="default: text, then prompt"
    )
    response_field = forms.CharField(required=False, max_length=255, label="Response", help_text="default: response")
    id_field = forms.CharField(
        required=False, max_length=255, label="External id", help_text="default: id, then external_id"
    )
    group_field = forms.CharField(
        required=False,
        max_length=255,
        label="Group key",
        help_text="e.g. a user or document id; default: group_key, group",
    )
    prelabel_field = forms.CharField(
        required=False, max_length=255, label="Labels", help_text="default: label, labels, prelabel"
    )
    labels_as = forms.ChoiceField(
        choices=LabelsAs.choices,
        initial=LabelsAs.SUGGESTION,
        required=False,
        label="Labels in the file are",
        help_text="Suggestions are shown to annotators only if the project shows pre-labels; one annotation each "
        "leaves the rest of the overlap to people, blind; final labels approve the items as imported.",
    )
    metadata = forms.ChoiceField(
        choices=[("all", "All other fields"), ("listed", "Only the fields listed"), ("none", "None")],
        initial="all",
        label="Metadata",
    )
    metadata_fields = forms.CharField(
        required=False, max_length=2000, label="Metadata fields", help_text="comma-separated"
    )

    def mapping(self) -> dict[str, Any]:
        """Blank inputs keep the defaults; "-" switches an optional field off."""
        data = self.cleaned_data
        mapping: dict[str, Any] = {}
        for key, name in MAPPING_FIELDS.items():
            value = data[name].strip()
            if value:
                mapping[key] = "" if value == NOT_USED else value
        if data["metadata"] == "listed":
            mapping["metadata"] = [f.strip() for f in data["metadata_fields"].split(",") if f.strip()]
        elif data["metadata"] == "none":
            mapping["metadata"] = []
        else:
            mapping["metadata"] = ALL_OTHER_FIELDS
        return mapping


def _progress_context(job: ImportJob) -> dict[str, Any]:
    return {
        "job": job,
        "project": job.project,
        "progress": import_progress(job),
        "queue_place": import_queue_place(job),
    }


@login_required
@require_http_methods(["GET", "POST"])
def import_create_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, _role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = ImportForm()
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_create(
                    project=project,
                    user=request.user,
                    file_name=upload.name,
                    fileobj=upload,
                    file_format=form.cleaned_data["file_format"] or None,
                    mapping=form.mapping(),
                    labels_as=form.cleaned_data["labels_as"] or None,
                )
            except ServiceError as exc:
                name = MAPPING_FIELDS.get(exc.field or "", exc.field)
                form.add_error(name if name in form.fields else None, exc.message)
            else:
                if request.htmx:
                    return render(request, "annotation/_import_progress.html", _progress_context(job))
                return redirect("import-detail", project_id=project.pk, job_id=job.pk)
        status = 400
        if request.htmx:
            return render(request, "annotation/_import_form_errors.html", {"form": form}, status=status)
    context = {"project": project, "form": form, "imports": import_list(project=project)}
    return render(request, "annotation/import_create.html", context, status=status)


@login_required
@require_GET
def import_detail(request: AuthedRequest, project_id: int, job_id: int) -> HttpResponse:
    """The job's page, or (htmx) its progress fragment, which the page polls until the job is done."""
    job = import_get_for_user(user=request.user, project_id=project_id, job_id=job_id)
    template = "annotation/_import_progress.html" if request.htmx else "annotation/import_detail.html"
    return render(request, template, _progress_context(job))
