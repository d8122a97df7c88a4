"""The review API's input checks: a filter given twice, and a field another action takes (an annotation_id beside
fix or send_back, a value beside accept, a comment beside fix) are refused (400 naming the field, nothing decided)
rather than taken silently."""

from __future__ import annotations

import pytest

from annotation.models import Project, ReviewStatus, ReviewTask
from annotation.review.apis import ACTION_TAKES, FIELD_ONLY_WITH, FIELD_WHAT
from core.api import REPEATED_FILTER
from tests.fixtures.api import api_as, url
from tests.fixtures.people import fixed_routing
from tests.fixtures.reviews import annotate_pair


@pytest.fixture
def disputed(ready, annotator, annotator2) -> ReviewTask:
    """An open review task: the two annotators disagreed (fixed routing, no audits)."""
    Project.objects.filter(pk=ready.pk).update(audit_rate=0.0)
    ready.refresh_from_db()
    item = annotate_pair(ready, annotator, annotator2, "positive", "negative")
    return ReviewTask.objects.get(item=item, status=ReviewStatus.OPEN)


@fixed_routing
def test_one_reason_filters_and_two_are_a_400_naming_reason(disputed, reviewer):
    client = api_as(reviewer)
    listed = client.get(url("api-review-task-list", disputed.project), {"reason": "disagreement"})
    assert [t["id"] for t in listed.json()["results"]] == [disputed.pk]
    assert client.get(url("api-review-task-list", disputed.project), {"reason": "audit"}).json()["count"] == 0

    response = client.get(url("api-review-task-list", disputed.project) + "?reason=audit&reason=disagreement")
    assert (response.status_code, response.json()["field"]) == (400, "reason")
    assert response.json()["detail"] == REPEATED_FILTER.format(name="reason", count=2)


@fixed_routing
@pytest.mark.parametrize(
    ("action", "extra"), [("fix", {"value": {"label": "neutral"}}), ("send_back", {"comment": "look again"})]
)
def test_annotation_id_beside_fix_or_send_back_is_a_400_and_decides_nothing(disputed, reviewer, action, extra):
    annotation = disputed.item.annotations.first()
    body = {"action": action, "annotation_id": annotation.pk, **extra}
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), body, format="json"
    )
    assert (response.status_code, response.json()["field"]) == (400, "annotation_id")
    what, takes = FIELD_WHAT["annotation_id"], ACTION_TAKES[action]
    expected = FIELD_ONLY_WITH.format(field="annotation_id", owner="accept", what=what, action=action, takes=takes)
    assert response.json()["detail"] == expected
    disputed.refresh_from_db()
    assert disputed.status == ReviewStatus.OPEN and not disputed.item.decisions.exists()


@fixed_routing
def test_accept_with_its_annotation_id_still_decides(disputed, reviewer):
    annotation = disputed.item.annotations.get(annotator__username="annotator2")
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk),
        {"action": "accept", "annotation_id": annotation.pk},
        format="json",
    )
    assert response.status_code == 200 and response.json()["value"] == {"label": "negative"}


@fixed_routing
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "accept", "annotation_id": 0, "value": {"label": "neutral"}}, "value"),
        ({"action": "send_back", "comment": "x", "value": {"label": "neutral"}}, "value"),
        ({"action": "fix", "value": {"label": "neutral"}, "comment": "why"}, "comment"),
    ],
)
def test_a_field_another_action_takes_is_a_400_naming_it(disputed, reviewer, body, field):
    """A tester's accept with a value, and a fix with a comment, were taken with the extra field dropped."""
    if body["action"] == "accept":
        body["annotation_id"] = disputed.item.annotations.first().pk
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), body, format="json"
    )
    assert (response.status_code, response.json()["field"]) == (400, field)
    disputed.refresh_from_db()
    assert disputed.status == ReviewStatus.OPEN and not disputed.item.decisions.exists()


@fixed_routing
def test_an_empty_comment_beside_fix_is_no_comment(disputed, reviewer):
    body = {"action": "fix", "value": {"label": "neutral"}, "comment": ""}
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), body, format="json"
    )
    assert response.status_code == 200


@fixed_routing
def test_fix_without_a_value_says_fix_takes_one(disputed, reviewer):
    from annotation.review.apis import FIX_NEEDS_VALUE

    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), {"action": "fix"}, format="json"
    )
    assert (response.status_code, response.json()["field"]) == (400, "value")
    assert response.json()["detail"] == FIX_NEEDS_VALUE


@fixed_routing
def test_a_reason_with_send_back_is_a_400_naming_it(disputed, reviewer):
    from annotation.review.apis import REASON_NOT_WITH_SEND_BACK

    body = {"action": "send_back", "comment": "look", "reason": "why not"}
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), body, format="json"
    )
    assert (response.status_code, response.json()["field"]) == (400, "reason")
    assert response.json()["detail"] == REASON_NOT_WITH_SEND_BACK


@fixed_routing
def test_a_reason_longer_than_the_form_takes_is_a_400_naming_it_and_decides_nothing(disputed, reviewer):
    """A tester's 1,200-character reason was taken by the API; the page's box stops at 1,000."""
    from annotation.review.services import REASON_MAX

    body = {"action": "fix", "value": {"label": "positive"}, "reason": "x" * (REASON_MAX + 1)}
    response = api_as(reviewer).post(
        url("api-review-task-decide", disputed.project, task_id=disputed.pk), body, format="json"
    )
    assert (response.status_code, response.json()["field"]) == (400, "reason")
    disputed.refresh_from_db()
    assert disputed.status == ReviewStatus.OPEN
