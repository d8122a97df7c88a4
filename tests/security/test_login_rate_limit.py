"""Sign-in is rate limited per username and per address: past the limit even the right password is refused."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from core.ratelimit import TOO_MANY_FAILURES
from tests.fixtures.api import url

LIMIT = 10
REFUSED = TOO_MANY_FAILURES.split(":")[0]


def _login(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(url("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_login_page_refuses_the_eleventh_attempt_even_with_the_right_password(owner):
    client = Client()
    for _ in range(LIMIT):
        assert _login(client, "owner", "wrong").status_code == 200  # the form again, with its error
    refused = _login(client, "owner", "pw-owner")
    assert refused.status_code == 429
    assert REFUSED in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(owner):
    client = Client()
    for _ in range(LIMIT - 1):
        _login(client, "owner", "wrong")
    assert _login(client, "owner", "pw-owner").status_code == 302


def test_the_username_limit_holds_whatever_the_address(owner):
    client = Client()
    for n in range(LIMIT):
        _login(client, "owner", "wrong", address=f"10.0.1.{n}")
    assert _login(client, "owner", "pw-owner", address="10.0.2.1").status_code == 429


def test_the_address_limit_holds_whatever_the_username(owner, annotator):
    client = Client()
    for n in range(LIMIT):
        _login(client, f"nobody{n}", "wrong", address="10.0.3.1")
    assert _login(client, "annotator1", "pw-annotator1", address="10.0.3.1").status_code == 429
    assert _login(client, "annotator1", "pw-annotator1", address="10.0.3.2").status_code == 302


def test_the_token_endpoint_answers_429_after_the_limit(owner):
    api = APIClient()
    for _ in range(LIMIT):
        response = api.post(url("api-token"), {"username": "owner", "password": "wrong"}, REMOTE_ADDR="10.0.4.1")
        assert response.status_code == 400
    refused = api.post(url("api-token"), {"username": "owner", "password": "pw-owner"}, REMOTE_ADDR="10.0.4.1")
    assert refused.status_code == 429
    assert refused.data["detail"].startswith(REFUSED) and "token" not in refused.data


@pytest.mark.parametrize("route", ["login", "api-token"])
def test_failures_on_one_door_count_on_the_other(owner, route):
    """The page and the API share the counts: switching door does not reset the limit."""
    client = Client()
    for _ in range(LIMIT):
        if route == "login":
            _login(client, "owner", "wrong")
        else:
            APIClient().post(url("api-token"), {"username": "owner", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    other = APIClient().post(url("api-token"), {"username": "owner", "password": "pw-owner"}, REMOTE_ADDR="10.9.9.9")
    page = _login(Client(), "owner", "pw-owner", address="10.9.9.9")
    assert (other.status_code, page.status_code) == (429, 429)


@override_settings(LABELLOOP_LOGIN_WINDOW_S=1)
def test_the_limit_ends_with_its_window(owner):
    client = Client()
    for _ in range(LIMIT):
        _login(client, "owner", "wrong")
    assert _login(client, "owner", "pw-owner").status_code == 429
    time.sleep(1.1)
    assert _login(client, "owner", "pw-owner").status_code == 302
