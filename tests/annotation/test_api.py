"""The annotation API end to end: each caller authenticates with their own token, as a script would.

Permissions per role are in test_api_permissions.py; these tests check what each endpoint does, the
error shape ({"detail", "field"}), imports, the blind promise, the JSONL export and the OpenAPI schema.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.annotate import urls as annotate_urls
from annotation.annotate.services import (
    DRAFT_NOT_HELD,
    GUIDELINES_NOT_ACKNOWLEDGED,
    NOT_YOUR_CLAIM,
    NOTHING_TO_UNDO,
    SKIP_REASON_REQUIRED,
)
from annotation.imports import urls as imports_urls
from annotation.imports.services import import_create
from annotation.management.commands.create_token import NO_SUCH_USER
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    GuidelineAcknowledgement,
    ImportJob,
    Item,
    Membership,
    Project,
    Role,
    TaskType,
)
from annotation.projects import urls as projects_urls
from annotation.projects.apis import NO_SUCH_VERSION
from annotation.projects.services import (
    GUIDELINE_NOT_CURRENT,
    GUIDELINE_UNCHANGED,
    HOTKEY_RESERVED,
    LABEL_LISTED_TWICE,
    LABEL_NAME_TAKEN,
    LAST_OWNER,
    USER_NOT_FOUND,
    guideline_publish,
)
from tests.fixtures.api import api_as, next_item, submit, url
from tests.fixtures.people import add_items

OUR_API_MODULES = {"annotation.projects.apis", "annotation.imports.apis", "annotation.annotate.apis"}




# --- Tokens --------------------------------------------------------------------------------------------


def test_token_endpoint_returns_the_users_token(annotator):
    response = APIClient().post(url("api-token"), {"username": "annotator1", "password": "pw-annotator1"})
    assert response.status_code == 200
    assert response.data["token"] == Token.objects.get(user=annotator).key


def test_token_endpoint_refuses_a_wrong_password(annotator):
    response = APIClient().post(url("api-token"), {"username": "annotator1", "password": "nope"})
    assert response.status_code == 400
    assert not Token.objects.filter(user=annotator).exists()


def test_create_token_command_prints_a_stable_key_and_rotates_on_request(annotator):
    out = StringIO()
    call_command("create_token", "annotator1", stdout=out)
    key = out.getvalue().strip()
    assert key == Token.objects.get(user=annotator).key

    again = StringIO()
    call_command("create_token", "annotator1", stdout=again)
    assert again.getvalue().strip() == key

    rotated = StringIO()
    call_command("create_token", "annotator1", "--rotate", stdout=rotated)
    assert rotated.getvalue().strip() != key
    assert not Token.objects.filter(key=key).exists()


def test_create_token_command_names_an_unknown_user(db):
    with pytest.raises(CommandError, match=NO_SUCH_USER.format(username="ghost")):
        call_command("create_token", "ghost")


def test_token_authenticates_and_session_is_not_required(ready, annotator):
    assert APIClient().get(url("api-project-list")).status_code == 401
    response = api_as(annotator).get(url("api-project-list"))
    assert response.status_code == 200
    assert [row["name"] for row in response.data["results"]] == ["Sentiment"]


# --- Projects ------------------------------------------------------------------------------------------


def test_create_project_makes_the_caller_owner_with_labels_and_guidelines(outsider):
    body = {
        "name": "Topics",
        "task_type": TaskType.MULTI_LABEL,
        "labels": ["sport", "politics", "tech"],
        "overlap": 3,
        "lease_seconds": 120,
        "goal_metric": "accuracy",
        "guidelines": "# Topics\n\nTick every topic the text is about.",
    }
    response = api_as(outsider).post(url("api-project-list"), body, format="json")
    assert response.status_code == 201, response.data
    data = response.data
    assert data["role"] == Role.OWNER
    assert (data["task_type"], data["overlap"], data["lease_seconds"], data["goal_metric"]) == (
        "multi_label", 3, 120, "accuracy",
    )
    assert [(label["name"], label["hotkey"]) for label in data["labels"]] == [
        ("sport", "1"), ("politics", "2"), ("tech", "3"),
    ]
    assert data["guideline_version"] == 1
    assert Membership.objects.get(project_id=data["id"], user=outsider).role == Role.OWNER


def test_create_project_refuses_bad_input_with_the_field_and_writes_nothing(outsider):
    client = api_as(outsider)
    response = client.post(url("api-project-list"), {"name": "X", "labels": ["a", "A"]}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "labels"
    assert response.data["detail"] == LABEL_LISTED_TWICE.format(name="A")

    response = client.post(url("api-project-list"), {"name": "X", "labels": ["only"]}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "labels"  # the service's refusal: a classifier needs two labels

    response = client.post(url("api-project-list"), {"name": "X", "labels": ["a", "b"], "overlap": 0}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "overlap"
    assert not Project.objects.filter(name="X").exists()


def test_project_list_shows_only_my_live_projects_with_my_role(ready, other_project, reviewer, owner):
    rows = api_as(reviewer).get(url("api-project-list")).data["results"]
    assert [(row["id"], row["role"]) for row in rows] == [(ready.pk, Role.REVIEWER)]

    assert api_as(owner).delete(url("api-project-detail", ready)).status_code == 204
    assert api_as(reviewer).get(url("api-project-list")).data["results"] == []


def test_archive_keeps_everything_and_hides_the_project(ready, owner, annotator):
    client = api_as(annotator)
    item = next_item(client, ready)
    submit(client, ready, item["item_id"], {"label": "positive"})

    assert api_as(owner).delete(url("api-project-detail", ready)).status_code == 204
    ready.refresh_from_db()
    assert ready.archived_at is not None
    assert Annotation.objects.filter(item__project=ready).count() == 1
    assert api_as(owner).get(url("api-project-detail", ready)).status_code == 404


def test_project_detail_and_settings_update(ready, owner):
    client = api_as(owner)
    detail = client.get(url("api-project-detail", ready)).data
    assert (detail["overlap"], detail["lease_seconds"], detail["guideline_version"]) == (2, 900, 1)
    assert [label["name"] for label in detail["labels"]] == ["positive", "negative", "neutral"]

    response = client.patch(url("api-project-detail", ready), {"overlap": 1, "lease_seconds": 60}, format="json")
    assert response.status_code == 200, response.data
    assert (response.data["overlap"], response.data["lease_seconds"]) == (1, 60)
    ready.refresh_from_db()
    assert (ready.overlap, ready.lease_seconds) == (1, 60)

    response = client.patch(url("api-project-detail", ready), {"lease_seconds": 5}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "lease_seconds"
    ready.refresh_from_db()
    assert ready.lease_seconds == 60


# --- Members and labels --------------------------------------------------------------------------------


def test_members_add_by_username_change_role_and_keep_an_owner(ready, owner, outsider):
    client = api_as(owner)
    response = client.post(url("api-member-list", ready), {"username": "outsider", "role": "reviewer"}, format="json")
    assert response.status_code == 201
    assert (response.data["username"], response.data["one_time_password"]) == ("outsider", None)
    assert api_as(outsider).get(url("api-project-detail", ready)).data["role"] == Role.REVIEWER

    members = {row["username"]: row["role"] for row in client.get(url("api-member-list", ready)).data["results"]}
    assert members == {
        "owner": "owner", "annotator1": "annotator", "annotator2": "annotator", "reviewer": "reviewer",
        "outsider": "reviewer",
    }
    response = client.post(url("api-member-list", ready), {"username": "outsider", "role": "annotator"}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "username")
    response = client.patch(url("api-member-detail", ready, user_id=outsider.pk), {"role": "annotator"}, format="json")
    assert (response.status_code, response.data["role"]) == (200, "annotator")

    response = client.post(url("api-member-list", ready), {"username": "ghost", "role": "annotator"}, format="json")
    assert (response.status_code, response.data["detail"], response.data["field"]) == (400, USER_NOT_FOUND, "username")

    response = client.patch(url("api-member-detail", ready, user_id=owner.pk), {"role": "annotator"}, format="json")
    assert (response.status_code, response.data["detail"], response.data["field"]) == (400, LAST_OWNER, "role")
    response = client.delete(url("api-member-detail", ready, user_id=owner.pk))
    assert (response.status_code, response.data["detail"]) == (400, LAST_OWNER)

    response = client.patch(url("api-member-detail", ready, user_id=outsider.pk), {"role": "boss"}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "role")

    assert client.delete(url("api-member-detail", ready, user_id=outsider.pk)).status_code == 204
    assert api_as(outsider).get(url("api-project-detail", ready)).status_code == 404


def test_labels_create_with_auto_hotkey_and_refusals(ready, owner, annotator):
    client = api_as(owner)
    response = client.post(url("api-label-list", ready), {"name": "mixed", "color": "#123456"}, format="json")
    assert response.status_code == 201, response.data
    assert (response.data["name"], response.data["color"], response.data["hotkey"]) == ("mixed", "#123456", "4")

    response = client.post(url("api-label-list", ready), {"name": "mixed"}, format="json")
    assert (response.status_code, response.data["detail"]) == (400, LABEL_NAME_TAKEN.format(name="mixed"))

    response = client.post(url("api-label-list", ready), {"name": "other", "hotkey": "S"}, format="json")
    assert (response.status_code, response.data["detail"], response.data["field"]) == (400, HOTKEY_RESERVED, "hotkey")

    response = client.post(url("api-label-list", ready), {"name": "bad", "color": "red"}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "color")

    names = [label["name"] for label in api_as(annotator).get(url("api-label-list", ready)).data["results"]]
    assert names == ["positive", "negative", "neutral", "mixed"]


# --- Guidelines ----------------------------------------------------------------------------------------


def test_publish_returns_the_diff_and_sanitised_html(ready, owner):
    body = "# Sentiment\n\nPick the feeling the *writer* expresses.\n\nSarcasm counts as negative.<script>x()</script>"
    response = api_as(owner).post(
        url("api-guideline-list", ready), {"body": body, "change_note": "sarcasm"}, format="json"
    )
    assert response.status_code == 201, response.data
    data = response.data
    assert (data["version"], data["previous_version"], data["change_note"], data["author"]) == (
        2, 1, "sarcasm", "owner",
    )
    added = [line["text"] for line in data["diff"] if line["kind"] == "added"]
    assert added == ["", "Sarcasm counts as negative.<script>x()</script>"]
    assert "<script>" not in data["html"]
    assert "<em>writer</em>" in data["html"]


def test_publish_refuses_unchanged_guidelines(ready, owner):
    body = "# Sentiment\n\nPick the feeling the *writer* expresses."
    response = api_as(owner).post(url("api-guideline-list", ready), {"body": body}, format="json")
    assert (response.status_code, response.data["detail"], response.data["field"]) == (400, GUIDELINE_UNCHANGED, "body")


def test_guideline_history_current_and_acknowledgement(ready, owner, annotator):
    guideline_publish(project=ready, author=owner, body="# v2\n\nNew rules.", change_note="rewrite")
    client = api_as(annotator)

    versions = client.get(url("api-guideline-list", ready)).data["results"]
    assert [(v["version"], v["change_note"]) for v in versions] == [(2, "rewrite"), (1, "")]

    current = client.get(url("api-guideline-current", ready)).data
    assert (current["version"], current["acknowledged"]) == (2, False)
    assert "<h1>v2</h1>" in current["html"]

    response = client.post(url("api-guideline-acknowledgement", ready, version=1))
    assert (response.status_code, response.data["detail"], response.data["field"]) == (
        409, GUIDELINE_NOT_CURRENT, "version",
    )
    response = client.post(url("api-guideline-acknowledgement", ready, version=2))
    assert (response.status_code, response.data["version"]) == (201, 2)
    assert client.get(url("api-guideline-current", ready)).data["acknowledged"] is True


def test_guidelines_absent(owner):
    client = api_as(owner)
    created = client.post(url("api-project-list"), {"name": "Bare", "labels": ["a", "b"]}, format="json").data
    project = Project.objects.get(pk=created["id"])
    assert client.get(url("api-guideline-current", project)).status_code == 404
    response = client.post(url("api-guideline-acknowledgement", project, version=1))
    assert (response.status_code, response.data["detail"]) == (404, NO_SUCH_VERSION)


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
    assert job["progress"] == {"percent": 100, "phase": "Imported", "done": True}
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


# --- Errors and the schema -----------------------------------------------------------------------------


def test_refusals_write_nothing(ready, annotator, reviewer, outsider):
    assert api_as(annotator).delete(url("api-project-detail", ready)).status_code == 403
    assert api_as(outsider).delete(url("api-project-detail", ready)).status_code == 404
    response = api_as(reviewer).post(url("api-guideline-list", ready), {"body": "# mine now"}, format="json")
    assert response.status_code == 403
    ready.refresh_from_db()
    assert ready.archived_at is None
    assert not GuidelineAcknowledgement.objects.filter(user=outsider).exists()
    assert ready.guideline_versions.count() == 1


def test_invalid_json_gets_a_clear_400(ready, owner):
    response = api_as(owner).post(
        url("api-label-list", ready), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.data["detail"]


def _our_routes() -> list:
    """This module's routes (apis.py and the token endpoint), mounted where config/urls.py mounts them."""
    ours = [
        pattern
        for pattern in [*projects_urls.api_urlpatterns, *imports_urls.api_urlpatterns, *annotate_urls.api_urlpatterns]
        if pattern.callback.cls.__module__ in OUR_API_MODULES
    ]
    return [path("api/", include(ours))]


def test_schema_generates_without_warnings_and_validates(db):
    """What `manage.py spectacular --validate --fail-on-warn` checks, for every endpoint of apis.py."""
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=_our_routes()).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    documented = {(path_, method) for path_, ops in schema["paths"].items() for method in ops}
    assert ("/api/projects/{project_id}/claims/next/", "post") in documented
    methods = sum(len(set(p.callback.view_class.http_method_names) & {"get", "post", "put", "patch", "delete"}
                      & set(dir(p.callback.view_class))) for p in _our_routes()[0].url_patterns)
    assert len(documented) == methods


def test_schema_names_every_operation_after_its_api(db):
    schema = SchemaGenerator(patterns=_our_routes()).get_schema(request=None, public=True)
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    expected = ("project_list_create", "claim_next", "annotation_submit", "annotation_export", "guideline_list_create")
    assert set(expected) <= set(ids)
    components = schema["components"]["schemas"]
    assert {"LabelListInput", "GuidelineListOutput", "ClaimedItem", "Error"} <= set(components)


def test_schema_and_docs_are_served(db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/projects/{project_id}/annotations/export/" in json.loads(schema.content)["paths"]
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
