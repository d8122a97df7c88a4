"""Partial imports (the valid rows in, the others reported), the mapping preview, and how a failure shows."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.imports import importers
from annotation.imports import services as svc
from annotation.models import Annotation, ImportJob, ImportStatus, Item, ItemStatus, LabelsAs
from core.errors import ServiceError
from tests.fixtures.people import add_items

HTMX = {"HTTP_HX_REQUEST": "true"}


def jsonl(*rows: dict | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def run_import(project, user, data: bytes, name: str = "data.jsonl", **kwargs) -> ImportJob:
    return svc.import_create(project=project, user=user, file_name=name, fileobj=io.BytesIO(data), **kwargs)


def imported(project) -> list[Item]:
    return list(Item.objects.filter(project=project, import_job__isnull=False).order_by("pk"))


MIXED = jsonl(
    {"id": "a", "text": "first good row", "label": "positive"},  # the first row's keys decide the columns
    {"text": "", "label": "positive"},
    '{"text": "broken',
    {"text": "fourth good row", "label": "sarcastic"},
    {"text": "fifth good row", "id": "k"},
    {"text": "sixth row reuses the id", "id": "k"},
    {"text": "first good row"},
    {"text": "eighth good row", "label": "negative"},
)


# --- Partial mode ----------------------------------------------------------------------------------------


def test_a_partial_import_writes_the_valid_rows_and_reports_the_others_by_line_and_field(project, owner):
    job = run_import(project, owner, MIXED, partial=True)

    assert job.status == ImportStatus.SUCCEEDED and job.partial
    assert [i.text for i in imported(project)] == ["first good row", "fifth good row", "eighth good row"]
    assert (job.rows_read, job.rows_imported, job.rows_rejected, job.duplicates) == (8, 3, 4, 1)
    assert [(e["line"], e["field"]) for e in job.errors] == [(2, "text"), (3, None), (4, "label"), (6, "id")]
    assert job.errors[1]["message"] == "data.jsonl line 3: invalid JSON: Unterminated string starting at column 10"
    assert job.errors[3]["message"] == "data.jsonl line 6, field 'id': the same id is used on line 5"
    assert svc.import_progress(job).state == "partial"


def test_all_or_nothing_is_unchanged_the_same_file_imports_nothing(project, owner):
    before = list(Item.objects.filter(project=project).values_list("pk", "text"))
    job = run_import(project, owner, MIXED)
    assert job.status == ImportStatus.FAILED and not job.partial
    assert [(e["line"], e["field"]) for e in job.errors] == [(2, "text"), (3, None), (4, "label"), (6, "id")]
    assert job.rows_imported == 0 and job.rows_rejected == 4
    assert list(Item.objects.filter(project=project).values_list("pk", "text")) == before
    assert svc.import_progress(job).state == "failed"


def test_a_partial_import_leaves_out_rows_whose_id_is_already_in_the_project(project, owner):
    add_items(project, ["old text"], external_id="taken")
    data = jsonl({"id": "taken", "text": "new text"}, {"id": "free", "text": "fine"})
    job = run_import(project, owner, data, partial=True)
    assert job.status == ImportStatus.SUCCEEDED and job.rows_rejected == 1
    assert [(i.external_id, i.text) for i in imported(project)] == [("free", "fine")]
    assert job.errors == [
        {"line": 1, "field": "id", "message": f"data.jsonl line 1, field 'id': {importers.EXISTING_EXTERNAL_ID}"}
    ]


def test_a_partial_import_with_no_valid_row_fails(project, owner):
    job = run_import(project, owner, jsonl({"text": ""}, {"body": "x"}), partial=True)
    assert job.status == ImportStatus.FAILED and imported(project) == []
    assert job.errors[0]["message"] == f"data.jsonl: {svc.NOTHING_VALID}"
    assert [(e["line"], e["field"]) for e in job.errors[1:]] == [(1, "text"), (2, "text")]


def test_an_error_about_the_file_itself_fails_a_partial_import_too(project, owner):
    job = run_import(project, owner, b"body,label\nhello,positive\n", name="t.csv", partial=True)
    assert job.status == ImportStatus.FAILED and imported(project) == []
    assert [(e["line"], e["field"], e["message"]) for e in job.errors] == [
        (1, "text", f"t.csv line 1, field 'text': {importers.NO_SUCH_COLUMN}")
    ]


def test_a_partial_import_of_labels_adopts_only_the_rows_it_wrote(project, owner):
    job = run_import(project, owner, MIXED, partial=True, labels_as=LabelsAs.FINAL)
    assert job.status == ImportStatus.SUCCEEDED
    statuses = {i.text: i.status for i in imported(project)}
    assert statuses == {
        "first good row": ItemStatus.APPROVED,
        "fifth good row": ItemStatus.NEW,
        "eighth good row": ItemStatus.APPROVED,
    }
    assert not Annotation.objects.filter(item__import_job=job).exists()


def test_a_partial_import_keeps_more_errors_than_an_all_or_nothing_one(project, owner):
    rows = [{"text": ""}] * (importers.MAX_STORED_ERRORS + 50) + [{"text": "the one good row"}]
    job = run_import(project, owner, jsonl(*rows), partial=True)
    assert job.status == ImportStatus.SUCCEEDED and job.rows_imported == 1
    assert len(job.errors) == job.rows_rejected == importers.MAX_STORED_ERRORS + 50


def test_the_command_imports_the_valid_rows_with_partial(project, owner, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(MIXED)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_items", project=project.pk, file=str(path), partial=True, stdout=out, stderr=err)
    assert "Imported 3 items from mixed.jsonl" in out.getvalue()
    assert "4 rows with errors were not imported" in err.getvalue()
    assert "mixed.jsonl line 4, field 'label': Unknown label 'sarcastic'" in err.getvalue()
    with pytest.raises(CommandError, match="nothing imported"):  # without --partial: all or nothing
        call_command("import_items", project=project.pk, file=str(path), stdout=out, stderr=err)


# --- The preview -----------------------------------------------------------------------------------------


def preview(project, user, data: bytes, name: str = "data.jsonl", **kwargs) -> svc.ImportPreview:
    return svc.import_preview(project=project, user=user, file_name=name, fileobj=io.BytesIO(data), **kwargs)


def test_the_preview_says_how_columns_map_and_shows_the_first_rows(project, owner):
    data = b"doc,body,gold,source,lang\n" + b"".join(
        f"d{i},Body number {i},{'positive' if i % 2 else 'negative'},web,en\n".encode() for i in range(8)
    )
    items_before = Item.objects.count()
    result = preview(project, owner, data, "r.csv", mapping={"text": "body", "external_id": "doc", "prelabel": "gold"})
    assert result.columns == ("doc", "body", "gold", "source", "lang")
    mapped = result.mapping
    assert (mapped["text"], mapped["external_id"], mapped["prelabel"]) == ("body", "doc", "gold")
    assert result.metadata_columns == ("source", "lang")
    assert (result.row_count, result.error_count, result.whole_file, result.fatal) == (8, 0, True, False)
    assert len(result.rows) == svc.PREVIEW_ROWS
    first = result.rows[0]
    assert (first.line, first.text, first.external_id, first.label) == (2, "Body number 0", "d0", "negative")
    assert first.metadata == {"source": "web", "lang": "en"}
    assert Item.objects.count() == items_before and not ImportJob.objects.exists()  # nothing stored


def test_the_preview_lists_the_first_errors_and_duplicates(project, owner):
    result = preview(project, owner, MIXED + jsonl({"text": "review number 1"}))
    assert result.row_count == 9 and result.rejected == 4 and result.duplicates == 2
    assert result.errors[0] == "data.jsonl line 2, field 'text': empty"
    assert "data.jsonl line 3: invalid JSON: Unterminated string starting at column 10" in result.errors
    assert [r.line for r in result.rows] == [1, 5, 8]  # the valid rows (duplicates are skipped later)


def test_the_preview_reads_only_the_start_of_a_big_file(project, owner, monkeypatch):
    monkeypatch.setattr(svc, "PREVIEW_MAX_BYTES", 100)
    data = jsonl(*({"text": f"row {i:04d}"} for i in range(50)))  # 21 bytes a row
    result = preview(project, owner, data)
    assert not result.whole_file and result.row_count == 4 and result.error_count == 0


def test_a_cut_inside_a_quoted_csv_field_is_not_reported_as_an_error(project, owner, monkeypatch):
    data = b"text,note\n" + b"".join(f'row {i},"two\nlines"\n'.encode() for i in range(40))  # 18 bytes a row
    monkeypatch.setattr(svc, "PREVIEW_MAX_BYTES", 112)  # cuts the 6th row after its first line
    result = preview(project, owner, data, "notes.csv")
    assert not result.whole_file and result.row_count == 5 and result.errors == []
    assert result.rows[0].metadata == {"note": "two\nlines"}


def test_the_preview_warns_when_labels_are_wanted_but_there_is_no_label_column(project, owner):
    result = preview(project, owner, jsonl({"text": "a"}), labels_as=LabelsAs.ANNOTATION)
    assert result.errors[0].startswith("Labels were to be imported as annotations")


def test_the_preview_refuses_what_the_import_would_refuse(project, owner, annotator):
    with pytest.raises(ServiceError) as refused:
        preview(project, owner, b"x", "items.txt")
    assert refused.value.field == "file_format"
    with pytest.raises(PermissionDenied):
        preview(project, annotator, jsonl({"text": "a"}))


# --- The page: preview, failure, recent imports, errors download -------------------------------------------


def page_url(project) -> str:
    return reverse("import-page", args=[project.pk])


def form(data: bytes, name: str = "items.jsonl", **fields) -> dict:
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return {"file": upload, "file_format": "", "metadata": "all", **fields}


def test_the_preview_view_shows_the_mapping_rows_and_errors_and_stores_nothing(client, project, owner):
    client.force_login(owner)
    response = client.post(reverse("import-preview", args=[project.pk]), form(MIXED), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Preview of items.jsonl" in body and "nothing is imported yet" in body
    assert "<strong>8</strong> rows" in body and "4 with errors" in body
    assert "<td>Label</td><td><code>label</code>, imported as suggestions (pre-labels)</td>" in body
    assert "first good row" in body and "eighth good row" in body
    assert "items.jsonl line 2, field &#x27;text&#x27;: empty" in body
    assert "<strong>nothing</strong> will be imported" in body
    body = client.post(
        reverse("import-preview", args=[project.pk]), form(MIXED, bad_rows="skip"), **HTMX
    ).content.decode()
    assert "the valid rows will be imported and the 4 rows with errors left out" in body
    assert not ImportJob.objects.exists()


def test_the_preview_view_without_a_file_asks_for_one(client, project, owner):
    client.force_login(owner)
    response = client.post(reverse("import-preview", args=[project.pk]), {"metadata": "all"}, **HTMX)
    assert response.status_code == 200 and "Choose a file" in response.content.decode()


@pytest.mark.parametrize("role,status", [("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_only_owners_may_preview(client, project, users_by_role, role, status):
    client.force_login(users_by_role[role])
    assert client.post(reverse("import-preview", args=[project.pk]), form(MIXED), **HTMX).status_code == status


def test_the_page_offers_the_preview_and_the_partial_choice(client, project, owner):
    client.force_login(owner)
    body = client.get(page_url(project)).content.decode()
    assert f'hx-post="{reverse("import-preview", args=[project.pk])}"' in body and 'id="import-preview"' in body
    assert "If some rows have errors" in body and "Import the valid rows" in body
    assert 'hx-trigger="import-finished from:body"' in body


def test_a_partial_upload_from_the_page_imports_the_valid_rows(client, project, owner):
    client.force_login(owner)
    response = client.post(page_url(project), form(MIXED, bad_rows="skip"), **HTMX)
    body = response.content.decode()
    assert response["HX-Trigger"] == "import-finished"
    assert "Imported 3 items." in body and "Left out 4 rows with errors" in body
    assert "import-bar-partial" in body and "Download the errors (CSV)" in body
    job = ImportJob.objects.get(project=project)
    assert job.partial and job.rows_rejected == 4


def test_a_failed_import_shows_a_failed_bar_and_its_error(client, project, owner):
    client.force_login(owner)
    response = client.post(page_url(project), form(jsonl({"text": "fine"}, '{"text": "broken')), **HTMX)
    body = response.content.decode()
    assert response["HX-Trigger"] == "import-finished"  # the page refreshes its recent imports after a failure too
    assert "import-state-failed" in body and "import-bar-failed" in body and 'aria-valuetext="Failed"' in body
    assert 'aria-valuenow="100"' not in body
    assert "Import failed." in body
    assert "items.jsonl line 2: invalid JSON: Unterminated string starting at column 10" in body


def test_the_recent_imports_fragment_lists_the_latest_import(client, project, owner):
    client.force_login(owner)
    client.post(page_url(project), form(jsonl({"text": ""})), **HTMX)
    body = client.get(page_url(project), **HTMX).content.decode()
    assert body.startswith('<section class="card" id="recent-imports"') and "items.jsonl" in body
    assert "import-failed" in body


def test_the_errors_download_is_a_csv_of_line_field_and_message(client, project, owner):
    client.force_login(owner)
    client.post(page_url(project), form(MIXED, "=evil.jsonl", bad_rows="skip"), **HTMX)
    job = ImportJob.objects.get(project=project)
    response = client.get(reverse("import-errors", args=[project.pk, job.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="import-{job.pk}-errors.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["line", "field", "message"]
    assert rows[1] == ["2", "text", "'=evil.jsonl line 2, field 'text': empty"]  # no spreadsheet formula
    assert len(rows) == 1 + job.rows_rejected


@pytest.mark.parametrize("role,status", [("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_only_owners_may_download_the_errors(client, project, owner, users_by_role, role, status):
    job = run_import(project, owner, MIXED, partial=True)
    client.force_login(users_by_role[role])
    assert client.get(reverse("import-errors", args=[project.pk, job.pk])).status_code == status
