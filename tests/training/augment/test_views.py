"""Augmentation pages and API: who may see and start what, the form's disabled methods with their reasons, bad
input answered on the form with nothing created, and the path from a snapshot to a run trained with the rows.

    page                                   owner  annotator  reviewer  outsider
    GET  augmentation-create                200     403        200       404
    POST augmentation-create                302     403        403       404
    GET  augmentation-detail                200     403        200       404
    GET  augmentation-download              200     403        200       404
"""

from __future__ import annotations

import django_rq
import pytest
from django.urls import reverse

from core.queues import JsonSimpleWorker
from tests.fixtures.api import api_as
from tests.fixtures.runs import TINY_BERT_SPEC, sentiment_snapshot, team
from training.augment import services
from training.ml import augment as ml
from training.models import Augmentation, AugmentationStatus

pytestmark = pytest.mark.usefixtures("tiny_models", "queues", "short_queue")


@pytest.fixture
def short_queue(settings, tiny_bert):
    settings.LABELLOOP_MODEL_REGISTRY = {**settings.LABELLOOP_MODEL_REGISTRY, "minilm": str(tiny_bert)}
    queue = django_rq.get_queue(services.SHORT_QUEUE)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def snapshot(owner, annotator, reviewer):
    snapshot = sentiment_snapshot(owner, count=30)
    team(snapshot.project, annotator, reviewer)
    return snapshot


def done(snapshot, owner, capture) -> Augmentation:
    with capture(execute=True):
        augmentation = services.augmentation_start(snapshot=snapshot, user=owner, methods=["random_edits", "synonyms"])
    django_rq.get_worker(services.SHORT_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)
    augmentation.refresh_from_db()
    assert augmentation.status == AugmentationStatus.SUCCEEDED, augmentation.message
    return augmentation


@pytest.mark.parametrize(("role", "expected"), [("owner", 200), ("annotator", 403), ("reviewer", 200),
                                                ("outsider", 404)])
def test_who_sees_the_pages(client, snapshot, role, expected, request, django_capture_on_commit_callbacks):
    augmentation = done(snapshot, request.getfixturevalue("owner"), django_capture_on_commit_callbacks)
    client.force_login(request.getfixturevalue(role))
    project = snapshot.project.pk
    for url in (
        reverse("augmentation-create", args=[project, snapshot.pk]),
        reverse("augmentation-detail", args=[project, augmentation.pk]),
        reverse("augmentation-download", args=[project, augmentation.pk]),
    ):
        assert client.get(url).status_code == expected, url


@pytest.mark.parametrize(("role", "expected"), [("owner", 302), ("annotator", 403), ("reviewer", 403),
                                                ("outsider", 404)])
def test_only_the_owner_starts_one(client, snapshot, role, expected, request):
    client.force_login(request.getfixturevalue(role))
    url = reverse("augmentation-create", args=[snapshot.project.pk, snapshot.pk])
    response = client.post(url, {"methods": ["random_edits"], "per_row": "1", "seed": "0"})
    assert response.status_code == expected
    assert Augmentation.objects.count() == (1 if role == "owner" else 0)


def test_the_snapshot_page_leads_to_the_form_which_says_why_a_method_is_off(client, snapshot, owner):
    client.force_login(owner)
    page = client.get(reverse("snapshot-detail", args=[snapshot.project.pk, snapshot.pk])).content.decode()
    form_url = reverse("augmentation-create", args=[snapshot.project.pk, snapshot.pk])
    assert f'href="{form_url}"' in page
    form = client.get(form_url).content.decode()
    assert 'value="back_translation" disabled' in form
    assert ml.NO_TRANSLATION_MODEL.split(" (")[0] in form
    assert "Only train rows are augmented" in form


def test_bad_input_stays_on_the_form_with_the_message_and_creates_nothing(client, snapshot, owner):
    client.force_login(owner)
    url = reverse("augmentation-create", args=[snapshot.project.pk, snapshot.pk])
    response = client.post(url, {"methods": ["random_edits"], "per_row": "9"})
    assert response.status_code == 400
    assert services.BAD_PER_ROW in response.content.decode()
    response = client.post(url, {"per_row": "1"})
    assert services.NO_METHOD in response.content.decode()
    assert not Augmentation.objects.exists()


def test_from_the_finished_augmentation_to_a_run_that_says_it_was_augmented(
    client, snapshot, owner, django_capture_on_commit_callbacks
):
    augmentation = done(snapshot, owner, django_capture_on_commit_callbacks)
    client.force_login(owner)
    project = snapshot.project.pk
    detail = client.get(reverse("augmentation-detail", args=[project, augmentation.pk])).content.decode()
    assert augmentation.content_hash in detail and 'id="augmentation-sample"' in detail
    train_url = reverse("run-create", args=[project, snapshot.pk]) + f"?augmentation={augmentation.pk}"
    assert train_url in detail
    form = client.get(train_url).content.decode()
    assert f'<option value="{augmentation.pk}" selected>' in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("run-create", args=[project, snapshot.pk]),
            {"name": "with aug", "augmentation": str(augmentation.pk), **TINY_BERT_SPEC},
        )
    assert response.status_code == 302
    run_page = client.get(response["Location"]).content.decode()
    assert 'id="run-augmentation"' in run_page and f"{augmentation.row_count} augmented rows" in run_page


def test_the_api_starts_lists_and_reads_augmentations(snapshot, owner, reviewer):
    project = snapshot.project.pk
    url = reverse("api-augmentation-list", args=[project, snapshot.pk])
    assert api_as(reviewer).post(url, {"methods": ["random_edits"]}, format="json").status_code == 403
    response = api_as(owner).post(url, {"methods": ["back_translation"]}, format="json")
    assert response.status_code == 400 and "none is installed" in response.data["detail"]
    response = api_as(owner).post(url, {"methods": ["random_edits"], "seed": 5}, format="json")
    assert response.status_code == 201, response.data
    assert response.data["options"]["seed"] == 5 and response.data["status"] == "queued"
    listed = api_as(reviewer).get(url)
    assert [row["id"] for row in listed.data["results"]] == [response.data["id"]]
    detail = api_as(reviewer).get(reverse("api-augmentation", args=[project, response.data["id"]]))
    assert detail.status_code == 200 and detail.data["snapshot_hash"] == snapshot.content_hash
