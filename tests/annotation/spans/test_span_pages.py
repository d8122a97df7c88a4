"""Every page of a span project opens for its owner and reviewer once items are annotated, reviewed and
snapshotted (no page assumes a label-shaped value), and the project's API lists it as a span project."""

from __future__ import annotations

import pytest

from annotation.datasets.services import snapshot_create
from annotation.models import ReviewTask
from annotation.review import services as reviews
from tests.fixtures.api import api_as
from tests.fixtures.pages import url
from tests.fixtures.span_loop import annotate_all
from tests.fixtures.spans import span_project


@pytest.fixture
def loop(owner, annotator, annotator2, reviewer):
    project = span_project(owner, [annotator, annotator2], reviewer)
    annotate_all(project, annotator, {"Ada": [("Ada Lovelace", "PER")], "😀": [("Paris", "LOC")]})
    annotate_all(project, annotator2, {"Ada": [("Ada", "PER")], "😀": [("Paris", "LOC")]})
    for task in ReviewTask.objects.filter(item__project=project, status="open"):
        first = task.item.annotations.order_by("pk").first()
        reviews.review_act(reviewer=reviewer, task=task, action="accept", annotation_id=first.pk)
    snapshot = snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)
    return project, snapshot


PAGES = [
    ("project-detail", ()), ("project-settings", ()), ("import-page", ()), ("review-queue", ()), ("quality", ()),
    ("snapshot-list", ()), ("round-list", ()), ("round-plan", ()), ("rating-home", ()), ("run-list", ()),
    ("guideline-detail", ()),
]


@pytest.mark.parametrize(("name", "extra"), PAGES)
def test_every_page_opens(client, loop, owner, name, extra):
    project, _ = loop
    client.force_login(owner)
    response = client.get(url(name, project.pk, *extra))
    assert response.status_code == 200, (name, response.content[:500])


def test_the_snapshot_page_and_item_history(client, loop, owner):
    project, snapshot = loop
    client.force_login(owner)
    page = client.get(url("snapshot-detail", project.pk, snapshot.pk)).content.decode()
    assert 'id="span-exports"' in page and "PER" in page
    item = snapshot.project.items.order_by("pk").first()
    history = client.get(url("item-history", project.pk, item.pk)).content.decode()
    assert "(PER)" in history and "PER 0-" not in history  # the history quotes what a span covers


def test_the_api_describes_a_span_project(loop, owner):
    project, _ = loop
    body = api_as(owner).get(f"/api/projects/{project.pk}/").json()
    assert body["task_type"] == "spans" and body["allow_overlapping_spans"] is False
