"""Permission matrix for the rounds pages and API × every role, and the rounds API schema.

Owners see and apply the plan; reviewers see rounds read-only; annotators get 403 (blind to model
outputs); outsiders 404 (ids reveal nothing); anonymous visitors the login page (browser) or 401 (API).
"""

from __future__ import annotations

import pytest
from django.urls import include, path, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Round, Verdict
from training.rounds import urls as rounds_urls

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
OWNER = ("owner",)
REVIEWERS = ("owner", "reviewer")


@pytest.fixture
def world(project, owner, annotator, reviewer, outsider):
    items = list(project.items.order_by("pk"))
    approve(items[0], {"label": "positive"})
    run = run_row(project, owner, metrics={"test": {"macro_f1": 0.8}})
    output_row(run, items[0], probabilities={"negative": 0.95, "positive": 0.05})
    rating_row(output_row(run, items[1], "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "neutral"})
    return {
        "project": project,
        "users": {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider},
    }


def expected(role: str, allowed: tuple[str, ...], ok: int, *, api: bool = False) -> int:
    if role == "anonymous":
        return 401 if api else 302
    if role == "outsider":
        return 404
    return ok if role in allowed else 403


PAGES = [
    ("round-list", "get", {}, REVIEWERS, 200),
    ("round-plan", "get", {"queue_order": "margin"}, OWNER, 200),
    ("round-advance", "post", {"round": "1", "queue_order": "entropy", "prelabels": "0"}, OWNER, 302),
]
APIS = [
    ("api-round-list", "get", {}, REVIEWERS, 200),
    ("api-round-plan", "get", {"random_share": "0.5"}, OWNER, 200),
    ("api-round-advance", "post", {"round": 1, "queue_order": "random"}, OWNER, 201),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=[p[0] for p in PAGES])
def test_page_matrix(page, role, world, client):
    name, method, data, allowed, ok = page
    if role != "anonymous":
        client.force_login(world["users"][role])
    response = getattr(client, method)(reverse(name, args=[world["project"].pk]), data)
    assert response.status_code == expected(role, allowed, ok), (name, role, response.status_code)
    if role == "anonymous":
        assert "/accounts/login/" in response["Location"]
    closed = Round.objects.filter(project=world["project"], closed_at__isnull=False).count()
    assert closed == (1 if name == "round-advance" and role == "owner" else 0)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", APIS, ids=[a[0] for a in APIS])
def test_api_matrix(endpoint, role, world):
    name, method, data, allowed, ok = endpoint
    api = APIClient()
    if role != "anonymous":
        api.force_authenticate(world["users"][role])
    url = reverse(name, args=[world["project"].pk])
    response = api.get(url, data) if method == "get" else api.post(url, data, format="json")
    assert response.status_code == expected(role, allowed, ok, api=True), (name, role, response.status_code)
    closed = Round.objects.filter(project=world["project"], closed_at__isnull=False).count()
    assert closed == (1 if name == "api-round-advance" and role == "owner" else 0)


def test_every_rounds_endpoint_and_page_is_in_the_matrix():
    assert {p.name for p in rounds_urls.api_urlpatterns} == {a[0] for a in APIS}

    assert {p.name for p in rounds_urls.urlpatterns} == {p[0] for p in PAGES}


def test_the_api_plan_advance_and_list_round_trip(world):
    api = APIClient()
    api.force_authenticate(world["users"]["owner"])
    project = world["project"]
    plan = api.get(reverse("api-round-plan", args=[project.pk])).json()
    assert plan["round"] == 1 and plan["next_round"] == 2
    assert plan["corrections"]["count"] == 1 and plan["label_errors"]["count"] == 1
    first = api.post(reverse("api-round-advance", args=[project.pk]), {"round": 1}, format="json")
    again = api.post(reverse("api-round-advance", args=[project.pk]), {"round": 1}, format="json")
    assert first.status_code == 201 and first.json()["applied"] and first.json()["opened"]["number"] == 2
    assert again.status_code == 200 and not again.json()["applied"]
    listed = api.get(reverse("api-round-list", args=[project.pk])).json()
    assert [r["number"] for r in listed["rounds"]] == [1, 2]
    closed = listed["rounds"][0]
    assert closed["figures"]["main_metric"] == 0.8 and closed["changes"]["correction"] == 1
    assert closed["closed_by"] == "owner" and listed["rounds"][1]["closed_at"] is None


def test_schema_of_the_rounds_api_generates_without_warnings_and_validates(db):
    GENERATOR_STATS.reset()
    routes = [path("api/", include(rounds_urls.api_urlpatterns))]
    schema = SchemaGenerator(patterns=routes).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    operations = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert sorted(operations) == ["round_advance", "round_list", "round_plan"]
