"""Accounts by API: an owner creates a user with a one-time password, which must be changed at first sign-in."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import AccountSetup
from tests.fixtures.api import api_as, url


def test_a_created_user_gets_a_one_time_password_and_must_change_it(project, owner, client):
    response = api_as(owner).post(
        url("api-member-list", project), {"username": "newbie", "role": "annotator", "create": True}, format="json"
    )
    assert response.status_code == 201, response.data
    password = response.data["one_time_password"]
    user = get_user_model().objects.get(username="newbie")
    assert password and user.password != password and user.check_password(password)  # stored only hashed

    token = APIClient().post(url("api-token"), {"username": "newbie", "password": password}).data["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api.get(url("api-me")).data
    assert (me["must_change_password"], [p["role"] for p in me["projects"]]) == (True, ["annotator"])

    client.post(url("login"), {"username": "newbie", "password": password})
    assert client.get("/").url == url("password_change")
    assert "One-time password" in client.get(url("password_change")).content.decode()  # not "Old password"
    changed = client.post(
        url("password_change"),
        {"old_password": password, "new_password1": "A-much-better-one-42", "new_password2": "A-much-better-one-42"},
    )
    assert changed.status_code == 302
    assert client.get("/").status_code == 200
    assert not AccountSetup.objects.get(user=user).must_change_password
    assert api.get(url("api-me")).data["must_change_password"] is False


def test_tokens_are_rotated_and_revoked_by_api(annotator):
    api = api_as(annotator)
    old = api.get(url("api-token")).data
    assert old["exists"] is True
    new_key = api.post(url("api-token-rotate")).data["token"]
    assert api.get(url("api-me")).status_code == 401  # the old key stopped working
    api.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert api.delete(url("api-token")).status_code == 204
    response = api.get(url("api-me"))
    assert (response.status_code, set(response.data)) == (401, {"detail", "field"})


def test_lists_page_and_refuse_unknown_filters(ready, owner):
    api = api_as(owner)
    page = api.get(url("api-item-list", ready), {"limit": 2}).data
    assert (page["count"], len(page["results"])) == (5, 2) and page["next"]
    assert api.get(url("api-item-list", ready), {"limit": 5000}).data["count"] == 5  # capped, not refused
    unknown = api.get(url("api-item-list", ready), {"colour": "red"})
    assert (unknown.status_code, unknown.data["field"]) == (400, "colour")
    bad = api.get(url("api-item-list", ready), {"status": "done"})
    assert (bad.status_code, bad.data["field"]) == (400, "status")
    assert api.get(url("api-item-list", ready), {"q": "NUMBER 3"}).data["count"] == 1


def test_annotators_do_not_see_the_items_list_or_others_annotations(ready, annotator, annotator2):
    from tests.fixtures.api import next_item, submit

    for user, label in ((annotator, "positive"), (annotator2, "negative")):
        client = api_as(user)
        submit(client, ready, next_item(client, ready)["item_id"], {"label": label})
    assert api_as(annotator).get(url("api-item-list", ready)).status_code == 403
    assert api_as(annotator).get(url("api-item-export", ready)).status_code == 403
    mine = api_as(annotator).get(url("api-annotation-list", ready)).data["results"]
    assert [a["annotator"] for a in mine] == ["annotator1"]
