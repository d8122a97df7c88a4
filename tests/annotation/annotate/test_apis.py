"""The annotate API: claim, submit, skip, undo, draft, progress, the blind promise and the annotations export."""

from __future__ import annotations

import json

from annotation.annotate.services import (
    DRAFT_NOT_HELD,
    GUIDELINES_NOT_ACKNOWLEDGED,
    NOT_YOUR_CLAIM,
    NOTHING_TO_UNDO,
    SKIP_REASON_REQUIRED,
)
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    Item,
    Project,
    ReviewStatus,
    ReviewTask,
)
from tests.fixtures.api import api_as, next_item, submit, url
from tests.fixtures.people import add_items, fixed_routing

# --- The annotate loop ---------------------------------------------------------------------------------


def test_next_requires_acknowledged_guidelines(project, annotator):
    client = api_as(annotator)
    response = client.post(url("api-claim-next", project))
    assert response.status_code == 409
    assert (response.data["detail"], response.data["field"], response.data["guideline_version"]) == (
        GUIDELINES_NOT_ACKNOWLEDGED, "guidelines", 1,
    )
    assert not Claim.objects.filter(annotator=annotator).exists()

    assert client.post(url("api-guideline-acknowledgement", project, version=1)).status_code == 201
    assert client.post(url("api-claim-next", project)).status_code == 200


def test_next_claims_an_item_and_returns_the_same_one_until_it_is_done(ready, annotator):
    client = api_as(annotator)
    first = next_item(client, ready)
    item = Item.objects.get(pk=first["item_id"])
    assert (first["text"], first["draft"]) == (item.text, None)
    claim = Claim.objects.get(annotator=annotator, item=item)
    assert first["lease_expires_at"] == claim.lease_expires_at.isoformat().replace("+00:00", "Z")
    assert "prelabel" not in first
    assert next_item(client, ready)["item_id"] == first["item_id"]


def test_next_answers_204_when_nothing_is_left(ready, annotator):
    client = api_as(annotator)
    for _ in range(5):
        item = next_item(client, ready)
        assert submit(client, ready, item["item_id"], {"label": "neutral"}).status_code == 201
    response = client.post(url("api-claim-next", ready))
    assert response.status_code == 204
    assert not response.content


def test_submit_stores_once_and_validates_the_value(ready, annotator):
    client = api_as(annotator)
    item = next_item(client, ready)

    response = submit(client, ready, item["item_id"], {"label": "angry"})
    assert (response.status_code, response.data["field"]) == (400, "label")
    assert "angry" in response.data["detail"]

    response = submit(client, ready, item["item_id"], {"label": "positive"}, unsure=True, note="irony?")
    assert response.status_code == 201, response.data
    data = response.data
    assert (data["item_id"], data["value"], data["unsure"], data["note"], data["guideline_version"]) == (
        item["item_id"], {"label": "positive"}, True, "irony?", 1,
    )
    again = submit(client, ready, item["item_id"], {"label": "positive"}, unsure=True, note="irony?")
    assert (again.status_code, again.data["id"]) == (201, data["id"])
    assert Annotation.objects.filter(annotator=annotator).count() == 1


def test_submit_on_an_item_not_held(ready, annotator):
    item = Item.objects.filter(project=ready).first()
    response = submit(api_as(annotator), ready, item.pk, {"label": "positive"})
    assert (response.status_code, response.data["detail"]) == (400, NOT_YOUR_CLAIM)


def test_submit_multi_label_and_instruction_values(owner, annotator):
    client = api_as(owner)
    multi = client.post(
        url("api-project-list"), {"name": "M", "task_type": "multi_label", "labels": ["a", "b", "c"]}, format="json"
    ).data
    chat = client.post(url("api-project-list"), {"name": "C", "task_type": "instruction"}, format="json").data
    for data in (multi, chat):
        project = Project.objects.get(pk=data["id"])
        client.post(url("api-member-list", project), {"username": "annotator1", "role": "annotator"}, format="json")
    multi_project, chat_project = Project.objects.get(pk=multi["id"]), Project.objects.get(pk=chat["id"])
    add_items(multi_project, ["a text about a and c"])
    add_items(chat_project, ["Say hello."], response="Hi.")

    me = api_as(annotator)
    item = next_item(me, multi_project)
    response = submit(me, multi_project, item["item_id"], {"labels": ["c", "a"]})
    assert response.data["value"] == {"labels": ["a", "c"]}

    item = next_item(me, chat_project)
    assert item["response"] == "Hi."
    response = submit(me, chat_project, item["item_id"], {"response": "  Hello there!  "})
    assert response.data["value"] == {"response": "Hello there!"}


def test_skip_needs_a_reason_and_is_not_offered_again(ready, annotator):
    client = api_as(annotator)
    item = next_item(client, ready)
    response = client.post(url("api-item-skip", ready, item_id=item["item_id"]), {"reason": "  "}, format="json")
    assert (response.status_code, response.data["detail"], response.data["field"]) == (
        400, SKIP_REASON_REQUIRED, "reason",
    )
    skip_url = url("api-item-skip", ready, item_id=item["item_id"])
    response = client.post(skip_url, {"reason": "Not English"}, format="json")
    assert (response.status_code, response.data["status"], response.data["reason"]) == (200, "skipped", "Not English")
    assert next_item(client, ready)["item_id"] != item["item_id"]


def test_undo_gives_the_item_back_with_the_value_as_draft(ready, annotator):
    client = api_as(annotator)
    response = client.post(url("api-annotation-undo", ready))
    assert (response.status_code, response.data["detail"]) == (400, NOTHING_TO_UNDO)

    item = next_item(client, ready)
    submit(client, ready, item["item_id"], {"label": "negative"}, note="hmm")
    response = client.post(url("api-annotation-undo", ready))
    assert response.status_code == 200, response.data
    assert response.data["item_id"] == item["item_id"]
    assert (response.data["draft"]["value"], response.data["draft"]["note"]) == ({"label": "negative"}, "hmm")
    assert Annotation.objects.get(annotator=annotator).status == AnnotationStatus.RETRACTED
    assert next_item(client, ready)["draft"]["value"] == {"label": "negative"}


def test_draft_saves_while_held_and_409_after(ready, annotator):
    client = api_as(annotator)
    item = next_item(client, ready)
    draft_url = url("api-item-draft", ready, item_id=item["item_id"])
    response = client.put(draft_url, {"value": {"label": "neu"}, "note": "typing"}, format="json")
    assert response.status_code == 200, response.data
    assert (response.data["value"], response.data["note"]) == ({"label": "neu"}, "typing")
    assert next_item(client, ready)["draft"]["note"] == "typing"

    response = client.put(draft_url, {"value": "not an object"}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "value")

    client.post(url("api-item-skip", ready, item_id=item["item_id"]), {"reason": "unclear"}, format="json")
    response = client.put(draft_url, {"value": {"label": "neutral"}}, format="json")
    assert (response.status_code, response.data["detail"]) == (409, DRAFT_NOT_HELD)


# --- Progress ------------------------------------------------------------------------------------------


def test_progress_for_the_project_and_for_me(ready, annotator, annotator2):
    mine, theirs = api_as(annotator), api_as(annotator2)
    for client in (mine, theirs):
        item = next_item(client, ready)
        submit(client, ready, item["item_id"], {"label": "positive"})
    next_item(mine, ready)

    project = mine.get(url("api-progress", ready)).data
    assert project["total"] == 5
    assert project["done"] + project["in_annotation"] + project["new"] == 5
    assert project["done"] == Item.objects.filter(project=ready, submitted_count=2).count()

    me = mine.get(url("api-progress-me", ready)).data
    assert (me["submitted"], me["skipped"], me["holding"]) == (1, 0, 1)
    still_open = Item.objects.filter(project=ready, is_open=True).exclude(claims__annotator=annotator)
    assert me["open_for_me"] == still_open.count()


# --- Blind promise and the export ----------------------------------------------------------------------


def test_nothing_in_the_annotate_loop_shows_another_annotators_work(ready, annotator, annotator2):
    """Annotator 2 labels and notes every item; annotator 1 then walks the same items and never sees it."""
    theirs = api_as(annotator2)
    for _ in range(5):
        item = next_item(theirs, ready)
        submit(theirs, ready, item["item_id"], {"label": "negative"}, note="SECRET-NOTE-OF-ANNOTATOR-2")

    mine = api_as(annotator)
    seen = []
    for _ in range(5):
        response = mine.post(url("api-claim-next", ready))
        seen.append(response.content)
        item = json.loads(response.content)
        draft = mine.post(url("api-item-draft", ready, item_id=item["item_id"]), {"value": {}}, format="json")
        skip = mine.post(url("api-item-skip", ready, item_id=item["item_id"]), {"reason": "testing"}, format="json")
        seen += [draft.content, skip.content]
    seen.append(mine.get(url("api-progress", ready)).content)
    seen.append(mine.get(url("api-progress-me", ready)).content)
    seen.append(mine.get(url("api-project-detail", ready)).content)
    for body in seen:
        assert b"SECRET-NOTE" not in body
        assert b"negative" not in body.replace(b'"name":"negative"', b"")
        assert b"annotator2" not in body
    assert mine.get(url("api-annotation-export", ready)).status_code == 403


def _export_lines(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def test_export_streams_one_line_per_submitted_annotation(ready, owner, reviewer, annotator, annotator2):
    Item.objects.filter(pk=Item.objects.filter(project=ready).order_by("pk").first().pk).update(external_id="ext-1")
    for user, label in ((annotator, "positive"), (annotator2, "negative")):
        client = api_as(user)
        item = next_item(client, ready)
        submit(client, ready, item["item_id"], {"label": label}, unsure=label == "negative", note=f"by {user}")
    undone = api_as(annotator)
    item = next_item(undone, ready)
    submit(undone, ready, item["item_id"], {"label": "neutral"})
    undone.post(url("api-annotation-undo", ready))  # retracted: history, not a label, so not exported

    response = api_as(reviewer).get(url("api-annotation-export", ready))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/jsonl")
    assert f"project-{ready.pk}-annotations.jsonl" in response["Content-Disposition"]
    lines = _export_lines(response)
    assert [(line["annotator"], line["value"], line["unsure"]) for line in lines] == [
        ("annotator1", {"label": "positive"}, False),
        ("annotator2", {"label": "negative"}, True),
    ]
    first = lines[0]
    assert set(first) == {
        "item_id", "external_id", "text", "annotator", "value", "unsure", "note", "guideline_version", "created_at",
    }
    item = Item.objects.get(pk=first["item_id"])
    assert (first["external_id"], first["text"], first["note"], first["guideline_version"]) == (
        "ext-1", item.text, "by annotator1", 1,
    )
    assert _export_lines(api_as(owner).get(url("api-annotation-export", ready))) == lines


def test_export_of_an_empty_project_is_empty(ready, owner):
    response = api_as(owner).get(url("api-annotation-export", ready), HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 200
    assert _export_lines(response) == []


def test_export_refusal_is_readable_when_asking_for_jsonl(ready, annotator):
    response = api_as(annotator).get(url("api-annotation-export", ready), HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 403
    assert json.loads(response.content)["detail"]




# --- Sent back by a reviewer -------------------------------------------------------------------------


@fixed_routing
def test_the_claim_carries_the_reviewers_send_back_comment(ready, annotator, annotator2, reviewer):
    """What the annotate page shows as "Sent back by the reviewer: ..." comes with the claim too, then goes."""
    client = api_as(annotator)
    first = next_item(client, ready)
    assert first["sent_back"] is None
    assert submit(client, ready, first["item_id"], {"label": "positive"}).status_code == 201
    other = api_as(annotator2)
    assert next_item(other, ready)["item_id"] == first["item_id"]
    assert submit(other, ready, first["item_id"], {"label": "negative"}).status_code == 201
    task = ReviewTask.objects.get(item_id=first["item_id"], status=ReviewStatus.OPEN)

    decided = api_as(reviewer).post(
        url("api-review-task-decide", ready, task_id=task.pk),
        {"action": "send_back", "comment": "look again"},
        format="json",
    )
    assert decided.status_code == 200
    task.refresh_from_db()

    again = next_item(client, ready)
    assert again["item_id"] == first["item_id"] and again["draft"]["value"] == {"label": "positive"}
    assert again["sent_back"] == {"comment": "look again", "at": task.resolved_at.isoformat().replace("+00:00", "Z")}
    assert submit(client, ready, first["item_id"], {"label": "negative"}).status_code == 201
    assert next_item(client, ready)["sent_back"] is None
