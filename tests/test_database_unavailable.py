"""PostgreSQL unreachable for a moment: the request that hit it answers 503 with a clear message (the API's error
body under /api/, a styled page elsewhere), its transaction rolls back so nothing is half-written, and the same
request sent again once the database is back is stored once. bench/faults.py does the same against a real
PostgreSQL behind a loopback proxy that it stops and restarts (connections kept by CONN_MAX_AGE recover)."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from annotation.annotate import services as annotate_services
from annotation.models import Annotation, Claim, ClaimStatus, Item
from core.views import DATABASE_UNAVAILABLE, RETRY_AFTER_S
from tests.fixtures.api import api_as, next_item, submit
from tests.fixtures.pages import HTMX, held_item
from tests.fixtures.pages import url as page_url
from tests.fixtures.people import acknowledge_guidelines


@pytest.fixture
def database_drops_mid_submit(monkeypatch):
    """The connection dies after the claim, the annotation and the item counter were written, before the commit."""

    count_submission = annotate_services._count_submission

    def lost(**kwargs):
        count_submission(**kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(annotate_services, "_count_submission", lost)
    return monkeypatch


def _nothing_written(item: Item, annotator) -> None:
    assert not Annotation.objects.filter(item=item).exists()
    assert Claim.objects.get(item=item, annotator=annotator).status == ClaimStatus.ACTIVE
    assert Item.objects.get(pk=item.pk).submitted_count == 0


def test_the_api_answers_503_and_writes_nothing_then_the_retry_is_stored_once(
    ready, annotator, database_drops_mid_submit
):
    client = api_as(annotator)
    client.raise_request_exception = False
    item = next_item(client, ready)
    response = submit(client, ready, item["item_id"], {"label": "positive"})
    assert response.status_code == 503
    assert response.json() == {"detail": DATABASE_UNAVAILABLE, "field": None}
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    _nothing_written(Item.objects.get(pk=item["item_id"]), annotator)

    database_drops_mid_submit.undo()  # the database is back
    for _ in range(2):  # the client retries, maybe twice
        assert submit(client, ready, item["item_id"], {"label": "positive"}).status_code == 201
    assert Annotation.objects.filter(item_id=item["item_id"]).count() == 1


def test_a_page_answers_with_the_styled_503_and_writes_nothing(client, project, annotator, database_drops_mid_submit):
    acknowledge_guidelines(project, annotator)
    client.force_login(annotator)
    client.raise_request_exception = False
    item = held_item(annotator, project)
    response = client.post(page_url("annotate-submit", project.pk, item.pk), {"label": "negative"}, **HTMX)
    assert response.status_code == 503 and response["Retry-After"] == str(RETRY_AFTER_S)
    html = response.content.decode()
    assert "The database is unavailable for a moment" in html and "nothing was half-written" in html
    _nothing_written(item, annotator)


def test_other_errors_stay_500_and_the_api_keeps_its_error_body(ready, annotator, monkeypatch):
    def bug(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(annotate_services, "_count_submission", bug)
    client = api_as(annotator)
    client.raise_request_exception = False
    item = next_item(client, ready)
    response = submit(client, ready, item["item_id"], {"label": "positive"})
    assert (response.status_code, response.json()) == (500, {"detail": "Server error.", "field": None})
    assert not Annotation.objects.filter(item_id=item["item_id"]).exists()
