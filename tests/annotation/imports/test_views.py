"""The import page and the job's progress fragment, through Django's test client."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.imports import importers
from annotation.imports.services import UNKNOWN_FORMAT
from annotation.models import ImportJob, ImportStatus, Item

HTMX = {"HTTP_HX_REQUEST": "true"}
ROLE_STATUS = {"owner": 200, "annotator": 403, "reviewer": 403, "outsider": 404}


def page_url(project) -> str:
    return reverse("import-page", args=[project.pk])


def job_url(job) -> str:
    return reverse("import-detail", args=[job.project_id, job.pk])


def upload(data: bytes, name: str = "items.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def form(data: bytes, name: str = "items.jsonl", **fields) -> dict:
    return {"file": upload(data, name), "file_format": "", "metadata": "all", **fields}


@pytest.fixture
def job(project, owner) -> ImportJob:
    return ImportJob.objects.create(
        project=project, created_by=owner, file_name="big.jsonl", file_format="jsonl", total_bytes=1000
    )


# --- Who may import --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLE_STATUS)
def test_only_owners_see_the_page_and_the_progress(client, project, users_by_role, job, role):
    client.force_login(users_by_role[role])
    assert client.get(page_url(project)).status_code == ROLE_STATUS[role]
    assert client.get(job_url(job), **HTMX).status_code == ROLE_STATUS[role]


@pytest.mark.parametrize("role", ROLE_STATUS)
def test_only_owners_may_upload(client, project, users_by_role, role):
    client.force_login(users_by_role[role])
    response = client.post(page_url(project), form(jsonl({"text": "sneaky"})), **HTMX)
    assert response.status_code == ROLE_STATUS[role]
    assert Item.objects.filter(text="sneaky").exists() == (role == "owner")


def test_anonymous_users_go_to_the_login_page(client, project, job):
    for url in (page_url(project), job_url(job)):
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client.post(page_url(project), form(jsonl({"text": "x"}))).status_code == 302
    assert not Item.objects.filter(text="x").exists()


def test_a_job_of_another_project_is_not_found(client, project, owner, other_project):
    foreign = ImportJob.objects.create(
        project=other_project, created_by=other_project.created_by, file_name="f.jsonl", file_format="jsonl"
    )
    client.force_login(owner)  # owns `project`, not `other_project`
    assert client.get(reverse("import-detail", args=[project.pk, foreign.pk])).status_code == 404
    assert client.get(reverse("import-detail", args=[other_project.pk, foreign.pk])).status_code == 404


# --- Uploading ---------------------------------------------------------------------------------------


def test_the_page_lists_recent_imports(client, project, owner, job):
    client.force_login(owner)
    response = client.get(page_url(project))
    body = response.content.decode()
    assert 'id="import-form"' in body and 'enctype="multipart/form-data"' in body
    assert "js/upload.js" in body
    assert job_url(job) in body and "big.jsonl" in body


def test_a_plain_post_redirects_to_the_job_page(client, project, owner):
    client.force_login(owner)
    response = client.post(page_url(project), form(jsonl({"text": "one"}, {"text": "two"})))
    job = ImportJob.objects.get(project=project)
    assert response.status_code == 302 and response["Location"] == job_url(job)
    page = client.get(job_url(job)).content.decode()
    assert "Imported 2 items." in page and "hx-trigger" not in page


def test_an_htmx_post_answers_with_the_finished_progress_fragment(client, project, owner):
    client.force_login(owner)
    data = jsonl({"text": "fresh"}, {"text": "FRESH"}, {"text": "review number 1"})
    response = client.post(page_url(project), form(data), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Imported 1 item." in body and "Skipped 2 exact duplicates: the item already there keeps" in body
    assert "line 2 repeats line 1" in body and "already in the project" in body
    assert "hx-get" not in body  # done: no more polling


def test_a_bad_file_shows_every_error_and_writes_nothing(client, project, owner):
    client.force_login(owner)
    before = Item.objects.count()
    response = client.post(page_url(project), form(jsonl({"text": "ok"}, {"text": ""}, {"text": 5})), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was imported" in body
    assert "items.jsonl line 2, field &#x27;text&#x27;: empty" in body
    assert "items.jsonl line 3, field &#x27;text&#x27;: must be a string, not a number" in body
    assert Item.objects.count() == before


def test_the_mapping_inputs_reach_the_import(client, project, owner):
    client.force_login(owner)
    data = b"body,label,doc,who,src,junk\nHello,positive,d1,u1,web,zzz\n"
    fields = {
        "text_field": "body",
        "prelabel_field": "-",
        "id_field": "doc",
        "group_field": "who",
        "metadata": "listed",
        "metadata_fields": "src, label",
    }
    response = client.post(page_url(project), form(data, "items.csv", **fields), **HTMX)
    assert response.status_code == 200
    item = Item.objects.get(project=project, text="Hello")
    assert (item.external_id, item.group_key, item.prelabel) == ("d1", "u1", None)
    assert item.metadata == {"src": "web", "label": "positive"}


def test_a_refused_upload_says_why_with_status_400(client, project, owner):
    client.force_login(owner)
    response = client.post(page_url(project), form(b"text\nhi\n", "items.txt"), **HTMX)
    assert response.status_code == 400
    assert UNKNOWN_FORMAT.format(name="items.txt").replace("'", "&#x27;") in response.content.decode()
    response = client.post(page_url(project), {"metadata": "all"}, **HTMX)
    assert response.status_code == 400 and "File: This field is required." in response.content.decode()
    response = client.post(page_url(project), form(b"text\nhi\n", "items.txt"))  # without JS: the page again
    assert response.status_code == 400 and 'id="import-form"' in response.content.decode()
    assert not ImportJob.objects.exists()


# --- Watching a job ------------------------------------------------------------------------------------


def test_a_running_job_polls_until_it_is_done(client, project, owner, job, django_assert_max_num_queries):
    client.force_login(owner)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, processed_bytes=500, rows_read=40)
    with django_assert_max_num_queries(4):  # session, user, membership, job
        response = client.get(job_url(job), **HTMX)
    body = response.content.decode()
    assert 'hx-trigger="every 1s"' in body and f'hx-get="{job_url(job)}"' in body
    assert "Checking rows" in body and 'aria-valuenow="25"' in body and "40 rows read" in body

    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.SUCCEEDED, rows_imported=40)
    body = client.get(job_url(job), **HTMX).content.decode()
    assert "hx-trigger" not in body and "Imported 40 items." in body


def test_the_job_page_without_htmx_is_a_whole_page(client, project, owner, job):
    client.force_login(owner)
    body = client.get(job_url(job)).content.decode()
    assert "<html" in body and "Import of big.jsonl" in body and "Queued" in body


def test_stored_error_count_line_is_shown(client, project, owner):
    client.force_login(owner)
    client.post(page_url(project), form(jsonl(*({"text": ""} for _ in range(importers.MAX_STORED_ERRORS + 3)))))
    job = ImportJob.objects.get(project=project)
    assert "items.jsonl: 3 more errors not shown" in client.get(job_url(job)).content.decode()
