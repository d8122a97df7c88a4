"""Permission matrix: every review, quality, noise-scan and snapshot page and endpoint × every role.

Outsiders get 404 (ids reveal nothing), members with the wrong role 403, anonymous visitors the login
page (browser) or 401 (API). Blind: annotators never see another annotator's value or name on any of
these pages.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.datasets import services as snapshots
from annotation.models import Decision, Item, ItemStatus, NoiseScan, Project, ReviewTask, ScanStatus
from tests.fixtures.reviews import annotate_pair

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
MEMBERS = ("owner", "annotator", "reviewer")


@pytest.fixture
def world(project, owner, annotator, annotator2, reviewer, outsider):
    """A project with an item in review (a disagreement), approved items, a snapshot and a finished scan."""
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    from tests.fixtures.people import acknowledge_guidelines

    acknowledge_guidelines(project, annotator, annotator2)
    disputed = annotate_pair(project, annotator, annotator2, "positive", "negative")
    approved = annotate_pair(project, annotator, annotator2, "neutral", "neutral")
    annotate_pair(project, annotator, annotator2, "negative", "negative")
    snapshot = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=1)
    scan = NoiseScan.objects.create(
        project=project, created_by=owner, status=ScanStatus.FAILED, message="Too few items."
    )
    return {
        "project": project,
        "task": ReviewTask.objects.get(item=disputed),
        "item": approved,
        "snapshot": snapshot,
        "scan": scan,
        "users": {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider},
    }


def page_client(client, world, role):
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def api_client(world, role) -> APIClient:
    api = APIClient()
    if role != "anonymous":
        api.force_authenticate(world["users"][role])
    return api


def expected(role: str, allowed: tuple[str, ...], ok: int, *, api: bool = False) -> int:
    if role == "anonymous":
        return 401 if api else 302
    if role == "outsider":
        return 404
    return ok if role in allowed else 403


REVIEWERS = ("owner", "reviewer")

PAGES = [
    # (name, method, url(world), data, allowed roles, success status)
    ("review-queue", "get", lambda w: reverse("review-queue", args=[w["project"].pk]), None, REVIEWERS, 200),
    (
        "item-history", "get",
        lambda w: reverse("item-history", args=[w["project"].pk, w["item"].pk]), None, REVIEWERS, 200,
    ),
    ("quality", "get", lambda w: reverse("quality", args=[w["project"].pk]), None, MEMBERS, 200),
    (
        "noise-scan-detail", "get",
        lambda w: reverse("noise-scan-detail", args=[w["project"].pk, w["scan"].pk]), None, REVIEWERS, 200,
    ),
    ("snapshot-list", "get", lambda w: reverse("snapshot-list", args=[w["project"].pk]), None, REVIEWERS, 200),
    (
        "snapshot-detail", "get",
        lambda w: reverse("snapshot-detail", args=[w["project"].pk, w["snapshot"].pk]), None, REVIEWERS, 200,
    ),
    (
        "snapshot-download", "get",
        lambda w: reverse("snapshot-download", args=[w["project"].pk, w["snapshot"].pk]), None, REVIEWERS, 200,
    ),
    (
        "snapshot-compare", "get",
        lambda w: reverse("snapshot-compare", args=[w["project"].pk])
        + f"?old={w['snapshot'].pk}&new={w['snapshot'].pk}",
        None, REVIEWERS, 200,
    ),
    (
        "review-decide", "post",
        lambda w: reverse("review-decide", args=[w["project"].pk, w["task"].pk]),
        {"action": "fix", "label": "neutral"}, REVIEWERS, 302,
    ),
    (  # nothing ticked is refused with a message (400): the matrix checks who may ask at all
        "review-bulk-accept", "post", lambda w: reverse("review-bulk-accept", args=[w["project"].pk]),
        {}, REVIEWERS, 400,
    ),
    ("noise-scan-start", "post", lambda w: reverse("noise-scan-start", args=[w["project"].pk]), {}, REVIEWERS, 302),
    (  # the world's scan has ended: refused with a message on the quality page, after the role check
        "noise-scan-cancel", "post",
        lambda w: reverse("noise-scan-cancel", args=[w["project"].pk, w["scan"].pk]), {}, REVIEWERS, 302,
    ),
    (
        "snapshot-create", "post", lambda w: reverse("snapshot-list", args=[w["project"].pk]),
        {"name": "v2", "seed": 0, "train": 80, "validation": 10, "test": 10, "confirm": "1"}, ("owner",), 302,
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=[p[0] for p in PAGES])
def test_page_matrix(page, role, world, client, django_capture_on_commit_callbacks):
    name, method, url, data, allowed, ok = page
    c = page_client(client, world, role)
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(c, method)(url(world), data or {})
    assert response.status_code == expected(role, allowed, ok), (name, role, response.status_code)
    if role == "anonymous":
        assert reverse("login") in response["Location"]


API = [
    (
        "api-review-task-list", "get",
        lambda w: reverse("api-review-task-list", args=[w["project"].pk]), None, REVIEWERS, 200,
    ),
    (
        "api-item-history", "get",
        lambda w: reverse("api-item-history", args=[w["project"].pk, w["item"].pk]), None, REVIEWERS, 200,
    ),
    ("api-quality", "get", lambda w: reverse("api-quality", args=[w["project"].pk]), None, MEMBERS, 200),
    (
        "api-noise-scan-detail", "get",
        lambda w: reverse("api-noise-scan-detail", args=[w["project"].pk, w["scan"].pk]), None, REVIEWERS, 200,
    ),
    ("api-snapshot-list", "get", lambda w: reverse("api-snapshot-list", args=[w["project"].pk]), None, REVIEWERS, 200),
    (
        "api-snapshot-detail", "get",
        lambda w: reverse("api-snapshot-detail", args=[w["project"].pk, w["snapshot"].pk]), None, REVIEWERS, 200,
    ),
    (
        "api-snapshot-download", "get",
        lambda w: reverse("api-snapshot-download", args=[w["project"].pk, w["snapshot"].pk]), None, REVIEWERS, 200,
    ),
    (
        "api-snapshot-compare", "get",
        lambda w: reverse("api-snapshot-compare", args=[w["project"].pk])
        + f"?old={w['snapshot'].pk}&new={w['snapshot'].pk}",
        None, REVIEWERS, 200,
    ),
    (
        "api-review-task-decide", "post",
        lambda w: reverse("api-review-task-decide", args=[w["project"].pk, w["task"].pk]),
        {"action": "fix", "value": {"label": "neutral"}}, REVIEWERS, 200,
    ),
    (  # too few labelled items for a scan, refused before anything is queued: the matrix checks who may ask
        "api-noise-scan-list", "post",
        lambda w: reverse("api-noise-scan-list", args=[w["project"].pk]), {}, REVIEWERS, 400,
    ),
    (  # the world's scan has ended: a conflict, after the role check
        "api-noise-scan-cancel", "post",
        lambda w: reverse("api-noise-scan-cancel", args=[w["project"].pk, w["scan"].pk]), {}, REVIEWERS, 409,
    ),
    (
        "api-snapshot-list", "post",
        lambda w: reverse("api-snapshot-list", args=[w["project"].pk]), {"name": "v2"}, ("owner",), 201,
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", API, ids=[e[0] for e in API])
def test_api_matrix(endpoint, role, world, django_capture_on_commit_callbacks):
    name, method, url, data, allowed, ok = endpoint
    api = api_client(world, role)
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(api, method)(url(world), data or {}, format="json") if method == "post" else api.get(
            url(world)
        )
    assert response.status_code == expected(role, allowed, ok, api=True), (name, role, response.status_code)


def test_outsider_gets_404_for_an_item_of_another_project(world, other_project, client):
    """Ids reveal nothing: a reviewer asking for an item id of a project they are not in gets 404."""
    client.force_login(world["users"]["reviewer"])
    foreign = other_project.items.first()
    url = reverse("item-history", args=[world["project"].pk, foreign.pk])
    assert client.get(url).status_code == 404


def test_annotator_quality_page_shows_only_their_own_accuracy(world, client, annotator2):
    client.force_login(world["users"]["annotator"])
    html = client.get(reverse("quality", args=[world["project"].pk])).content.decode()
    assert "Your accuracy" in html
    assert annotator2.username not in html
    assert "reviewer" not in html.split("<main", 1)[1]


def test_annotator_quality_api_holds_only_their_own_accuracy(world, annotator2):
    data = api_client(world, "annotator").get(reverse("api-quality", args=[world["project"].pk])).json()
    text = json.dumps(data)
    assert annotator2.username not in text
    assert [a["annotator"] for a in data["annotators"]] == [world["users"]["annotator"].username]
    assert set(data) == {"view", "annotators"}


def test_owner_never_sees_values_of_an_item_they_can_still_annotate(world, client, owner):
    """The owner may annotate too: an item still open to them stays out of their queue and history."""
    project = world["project"]
    task = world["task"]
    # The item is open to annotators again (as an item a model's suggestion or a rating sent to review while it is
    # still in annotation is), and the owner has not claimed it. (Raising the overlap no longer re-opens items
    # past annotation: their annotations would change nothing.)
    Item.objects.filter(pk=task.item_id).update(is_open=True, status=ItemStatus.IN_ANNOTATION)
    client.force_login(owner)
    html = client.get(reverse("review-queue", args=[project.pk])).content.decode()
    assert f"Item {task.item_id}" not in html
    assert client.get(reverse("item-history", args=[project.pk, task.item_id])).status_code == 403
    # A reviewer, who cannot annotate, still sees it.
    client.force_login(world["users"]["reviewer"])
    assert f"Item {task.item_id}" in client.get(reverse("review-queue", args=[project.pk])).content.decode()


def test_a_successful_decision_through_the_matrix_is_recorded(world, client):
    client.force_login(world["users"]["reviewer"])
    client.post(reverse("review-decide", args=[world["project"].pk, world["task"].pk]),
                {"action": "fix", "label": "neutral"})
    decision = Decision.objects.get(review_task=world["task"])
    assert decision.value == {"label": "neutral"} and decision.reviewer == world["users"]["reviewer"]
    assert decision.item.status == ItemStatus.APPROVED
