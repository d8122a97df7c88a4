"""The imports API: upload with a mapping, refusals that name the line and write nothing."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.imports.services import import_create
from annotation.models import (
    ImportJob,
    Item,
)
from tests.fixtures.api import api_as, url

# --- Imports -------------------------------------------------------------------------------------------


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_import_a_small_file_with_a_mapping(ready, owner):
    data = b"id,prompt,who\nq1,First imported text,ann\nq2,Second imported text,bob\n"
    body = {"file": upload("batch.csv", data), "mapping": json.dumps({"text": "prompt"})}
    response = api_as(owner).post(url("api-import-list", ready), body, format="multipart")
    assert response.status_code == 201, response.data
    job = response.data
    assert (job["status"], job["file_format"], job["rows_imported"], job["errors"]) == ("succeeded", "csv", 2, [])
    assert job["progress"] == {"percent": 100, "phase": "Imported", "done": True, "state": "succeeded"}
    assert (job["partial"], job["rows_rejected"]) == (False, 0)
    item = Item.objects.get(project=ready, external_id="q1")
    assert (item.text, item.metadata) == ("First imported text", {"who": "ann"})

    detail = api_as(owner).get(url("api-import-detail", ready, import_id=job["id"]))
    assert (detail.status_code, detail.data["id"], detail.data["created_by"]) == (200, job["id"], "owner")


def test_import_with_bad_rows_fails_naming_the_line_and_writes_nothing(ready, owner):
    before = Item.objects.filter(project=ready).count()
    data = b'{"text": "fine"}\n{"txt": "no text here"}\n'
    response = api_as(owner).post(
        url("api-import-list", ready), {"file": upload("bad.jsonl", data)}, format="multipart"
    )
    assert response.status_code == 201, response.data
    assert response.data["status"] == "failed"
    [error] = response.data["errors"]
    assert (error["line"], error["field"]) == (2, "text")
    assert error["message"].startswith("bad.jsonl line 2")
    assert Item.objects.filter(project=ready).count() == before


def test_a_partial_import_writes_the_valid_rows_and_lists_the_others(ready, owner):
    before = Item.objects.filter(project=ready).count()
    data = b'{"text": "kept by the API"}\n{"txt": "no text here"}\n{"text": "also kept by the API"}\n'
    body = {"file": upload("mixed.jsonl", data), "partial": "true"}
    response = api_as(owner).post(url("api-import-list", ready), body, format="multipart")
    assert response.status_code == 201, response.data
    job = response.data
    assert (job["status"], job["partial"], job["rows_imported"], job["rows_rejected"]) == ("succeeded", True, 2, 1)
    assert job["progress"]["state"] == "partial"
    [error] = job["errors"]
    assert (error["line"], error["field"], error["message"]) == (2, "text", "mixed.jsonl line 2, field 'text': missing")
    assert Item.objects.filter(project=ready).count() == before + 2


def test_import_refuses_a_malformed_request_before_storing_anything(ready, owner):
    client = api_as(owner)
    response = client.post(url("api-import-list", ready), {"file": upload("items.txt", b"x\n")}, format="multipart")
    assert (response.status_code, response.data["field"]) == (400, "file_format")

    body = {"file": upload("items.jsonl", b'{"text": "x"}\n'), "mapping": json.dumps({"text": 3})}
    response = client.post(url("api-import-list", ready), body, format="multipart")
    assert (response.status_code, response.data["field"]) == (400, "mapping.text")

    body = {"file": upload("items.jsonl", b'{"text": "x"}\n'), "mapping": "{not json"}
    response = client.post(url("api-import-list", ready), body, format="multipart")
    assert (response.status_code, response.data["field"]) == (400, "mapping")

    response = client.post(url("api-import-list", ready), {}, format="multipart")
    assert (response.status_code, response.data["field"]) == (400, "file")
    assert not ImportJob.objects.filter(project=ready).exists()


def test_import_of_another_project_is_not_found(ready, owner, other_project):
    other_owner = other_project.memberships.get().user
    job = import_create(
        project=other_project, user=other_owner, file_name="o.jsonl", fileobj=upload("o.jsonl", b'{"text": "o"}\n')
    )
    assert api_as(owner).get(url("api-import-detail", ready, import_id=job.pk)).status_code == 404


