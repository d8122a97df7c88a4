"""The import page: upload a JSONL or CSV file, then watch its job until it is done. Owners only.

Choosing a file (or changing the mapping) posts the form through htmx to the preview, which shows how
the columns map, the first rows as parsed and the first errors; nothing is stored. static/js/upload.js
sends the form by XHR (so the browser reports upload progress) with an `HX-Request` header; the answer
is the job's progress fragment, which polls itself through htmx until the job has finished, and then
tells the page (event `import-finished`) to refresh its list of recent imports. Without JavaScript the
form posts normally and lands on the job's page.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.imports.importers import ALL_OTHER_FIELDS, FORMAT_NAMES
from annotation.imports.selectors import import_queue_place
from annotation.imports.services import (
    import_create,
    import_get_for_user,
    import_list,
    import_preview,
    import_progress,
)
from annotation.models import ImportJob, LabelsAs
from annotation.permissions import MANAGE, access_project
from core.errors import ServiceError
from core.http import AuthedRequest

NOT_USED = "-"


FINISHED_EVENT = "import-finished"


BAD_ROWS_FAIL = "fail"


BAD_ROWS_SKIP = "skip"


# mapping key -> form field, so that a ServiceError about a mapping key lands on its input
MAPPING_FIELDS = {
    "text": "text_field",
    "response": "response_field",
    "external_id": "id_field",
    "group_key": "group_field",
    "prelabel": "prelabel_field",
}


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL (one JSON object a line) or CSV with a header row, UTF-8; span projects also take "
        "CoNLL/BIO (.conll, .bio) and Label Studio's JSON export (.json)."
    )
    file_format = forms.ChoiceField(
        choices=[("", "From the file's extension"), *FORMAT_NAMES.items()], required=False, label="Format"
    )
    text_field = forms.CharField(
        required=False, max_length=255, label="Text (or prompt) column", help_text="Default: text, then prompt."
    )
    response_field = forms.CharField(
        required=False, max_length=255, label="Response column", help_text="Default: response."
    )
    id_field = forms.CharField(
        required=False,
        max_length=255,
        label="Id column",
        help_text="Your own id for each row. Default: id, then external_id.",
    )
    group_field = forms.CharField(
        required=False,
        max_length=255,
        label="Group key column",
        help_text="Rows sharing it always share a split (e.g. a user or document id). Default: group_key, group.",
    )
    prelabel_field = forms.CharField(
        required=False, max_length=255, label="Label column", help_text="Default: label, labels, prelabel."
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
        choices=[("all", "All other columns"), ("listed", "Only the columns listed"), ("none", "None")],
        initial="all",
        label="Metadata",
    )
    metadata_fields = forms.CharField(
        required=False,
        max_length=2000,
        label="Metadata columns",
        help_text="Comma-separated, for “Only the columns listed”.",
    )
    bad_rows = forms.ChoiceField(
        choices=[(BAD_ROWS_FAIL, "Import nothing"), (BAD_ROWS_SKIP, "Import the valid rows")],
        initial=BAD_ROWS_FAIL,
        required=False,
        label="If some rows have errors",
        help_text="Either way, every error is listed by line and field.",
    )

    def partial(self) -> bool:
        return self.cleaned_data.get("bad_rows") == BAD_ROWS_SKIP

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
            try:
                job = import_create(
                    project=project, user=request.user, partial=form.partial(), **_file_and_mapping(form)
                )
            except ServiceError as exc:
                _add_service_error(form, exc)
            else:
                if request.htmx:
                    return _progress_response(request, job)
                return redirect("import-detail", project_id=project.pk, job_id=job.pk)
        status = 400
        if request.htmx:
            return render(request, "annotation/_import_form_errors.html", {"form": form}, status=status)
    elif request.htmx:  # the page's list of recent imports, refreshed when an import finishes
        context = {"project": project, "imports": import_list(project=project)}
        return render(request, "annotation/_import_recent.html", context)
    context = {"project": project, "form": form, "imports": import_list(project=project)}
    return render(request, "annotation/import_create.html", context, status=status)


def _file_and_mapping(form: ImportForm) -> dict[str, Any]:
    """What an import and its preview both read from a valid form: the file, its format, the mapping."""
    upload = form.cleaned_data["file"]
    return {
        "file_name": upload.name,
        "fileobj": upload,
        "file_format": form.cleaned_data["file_format"] or None,
        "mapping": form.mapping(),
        "labels_as": form.cleaned_data["labels_as"] or None,
    }


def _add_service_error(form: ImportForm, exc: ServiceError) -> None:
    name = MAPPING_FIELDS.get(exc.field or "", exc.field)
    form.add_error(name if name in form.fields else None, exc.message)


def _progress_response(request: AuthedRequest, job: ImportJob) -> HttpResponse:
    """The progress fragment; once the job is done it also tells the page, which refreshes its recent imports."""
    context = _progress_context(job)
    response = render(request, "annotation/_import_progress.html", context)
    if context["progress"].done:
        response["HX-Trigger"] = FINISHED_EVENT
    return response


@login_required
@require_POST
def import_preview_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """(htmx) How the chosen file would be read with the form's mapping: nothing is stored or imported."""
    project, _role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "annotation/_import_preview.html", {"form": form, "preview": None})
    try:
        preview = import_preview(project=project, user=request.user, **_file_and_mapping(form))
    except ServiceError as exc:
        _add_service_error(form, exc)
        return render(request, "annotation/_import_preview.html", {"form": form, "preview": None})
    context = {"form": form, "preview": preview, "partial": form.partial(), "project": project}
    return render(request, "annotation/_import_preview.html", context)


@login_required
@require_GET
def import_detail(request: AuthedRequest, project_id: int, job_id: int) -> HttpResponse:
    """The job's page, or (htmx) its progress fragment, which the page polls until the job is done."""
    job = import_get_for_user(user=request.user, project_id=project_id, job_id=job_id)
    if request.htmx:
        return _progress_response(request, job)
    return render(request, "annotation/import_detail.html", _progress_context(job))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A spreadsheet would run a cell starting like a formula; the file's own field names can."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@login_required
@require_GET
def import_errors_csv(request: AuthedRequest, project_id: int, job_id: int) -> HttpResponse:
    """The import's errors as CSV (line, field, message): the rows to fix and import again."""
    job = import_get_for_user(user=request.user, project_id=project_id, job_id=job_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "field", "message"])
    for error in job.errors:
        writer.writerow([error.get("line") or "", _cell(error.get("field")), _cell(error.get("message"))])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
