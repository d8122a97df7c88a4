"""The projects API end to end as a script would use it: tokens, projects, members, labels, guidelines."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.management.commands.create_token import NO_SUCH_USER
from annotation.models import (
    Annotation,
    Membership,
    Project,
    Role,
    TaskType,
)
from annotation.projects.apis import NO_SUCH_VERSION
from annotation.projects.services import (
    BUDGET_UNDER_OVERLAP,
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




# --- Routing settings: what a refusal says, what PATCH does not take ---------------------------------------


def test_a_budget_of_1_under_the_overlap_is_refused_in_plain_words(project, owner):
    response = api_as(owner).patch(url("api-project-detail", project), {"routing_budget": 1}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "routing_budget")
    assert response.data["detail"] == BUDGET_UNDER_OVERLAP.format(overlap=2, budget=1.0)
    assert "1 judgements" not in response.data["detail"]
    assert "a budget of 1 (judgements per item)" in response.data["detail"]


def test_review_all_is_read_only_in_the_api(project, owner):
    response = api_as(owner).patch(url("api-project-detail", project), {"review_all": True}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "review_all")
    project.refresh_from_db()
    assert project.review_all is False
    assert api_as(owner).get(url("api-project-detail", project)).data["review_all"] is False
