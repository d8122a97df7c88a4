"""LABELLOOP_MAX_UPLOAD_MB: a larger import is refused with a clear error on the page and the API, nothing kept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from annotation.imports.services import FILE_TOO_LARGE, IMPORTS_DIR, import_create
from annotation.models import ImportJob, Item
from core.errors import ServiceError
from tests.fixtures.api import api_as, url

LIMIT_MB = 1
TOO_BIG = b'{"text": "x"}\n' * (LIMIT_MB * 1024 * 1024 // 14 + 10)  # a little over 1 MB of valid rows
MESSAGE = FILE_TOO_LARGE.format(limit=LIMIT_MB)


def _stored_files() -> list[Path]:
    return [p for p in (Path(settings.MEDIA_ROOT) / IMPORTS_DIR).rglob("*") if p.is_file()]


@pytest.fixture(autouse=True)
def _small_limit():
    with override_settings(LABELLOOP_MAX_UPLOAD_MB=LIMIT_MB):
        yield


def test_the_api_answers_413_and_keeps_nothing(project, owner):
    before = (_stored_files(), Item.objects.count())
    response = api_as(owner).post(
        url("api-import-list", project), {"file": SimpleUploadedFile("big.jsonl", TOO_BIG)}, format="multipart"
    )
    assert response.status_code == 413
    assert (response.data["detail"], response.data["field"]) == (MESSAGE, "file")
    assert not ImportJob.objects.exists()
    assert (_stored_files(), Item.objects.count()) == before


def test_the_page_shows_the_error_and_keeps_nothing(project, owner, client):
    client.force_login(owner)
    before = (_stored_files(), Item.objects.count())
    response = client.post(
        reverse("import-page", args=[project.pk]),
        {"file": SimpleUploadedFile("big.jsonl", TOO_BIG), "file_format": "", "metadata": "all"},
    )
    assert response.status_code == 400
    assert MESSAGE in response.content.decode()
    assert not ImportJob.objects.exists()
    assert (_stored_files(), Item.objects.count()) == before


def test_a_stream_without_a_size_is_counted_as_it_is_copied_and_its_partial_copy_removed(project, owner):
    before = _stored_files()
    with pytest.raises(ServiceError) as refused:
        import_create(project=project, user=owner, file_name="big.jsonl", fileobj=io.BytesIO(TOO_BIG))
    assert (refused.value.message, refused.value.status_code) == (MESSAGE, 413)
    assert _stored_files() == before and not ImportJob.objects.exists()


def test_a_file_under_the_limit_is_still_imported(project, owner):
    rows = b'{"text": "fits"}\n'
    job = import_create(project=project, user=owner, file_name="ok.jsonl", fileobj=io.BytesIO(rows))
    assert job.pk and Item.objects.filter(text="fits").exists()
