"""Permission matrix for the rounds pages and API × every role, the rounds API (paged list, plan, advance,
next-round settings) and its schema.

Owners see and apply the plan and edit the next-round settings; reviewers see rounds read-only; annotators get
403 (blind to model outputs); outsiders 404 (ids reveal nothing); anonymous visitors the login page (browser) or
401 (API).
"""

from __future__ import annotations

import pytest
from django.urls import include, path, reverse
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from annotation.models import Project
from tests.fixtures.api import api_routes
from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Round, Verdict
from training.rounds import urls as rounds_urls
from training.rounds.forms import DUPLICATE_CRITERIA, NO_CRITERIA

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
    ("round-advance", "post", {"round": "1", "queue_order": "entropy", "prelabels": "0", "confirm": "1"}, OWNER, 302),
]
APIS = [
    ("api-round-list", "get", {}, REVIEWERS, 200),
    ("api-round-plan", "get", {"random_share": "0.5"}, OWNER, 200),
    ("api-round-advance", "post", {"round": 1, "queue_order": "random"}, OWNER, 201),
    ("api-round-settings", "get", {}, OWNER, 200),
    ("api-round-settings", "patch", {"random_share": 0.3}, OWNER, 200),
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
@pytest.mark.parametrize("endpoint", APIS, ids=[f"{a[1]}-{a[0]}" for a in APIS])
def test_api_matrix(endpoint, role, world):
    name, method, data, allowed, ok = endpoint
    api = APIClient()
    if role != "anonymous":
        api.force_authenticate(world["users"][role])
    url = reverse(name, args=[world["project"].pk])
    response = api.get(url, data) if method == "get" else getattr(api, method)(url, data, format="json")
    assert response.status_code == expected(role, allowed, ok, api=True), (name, role, response.status_code)
    closed = Round.objects.filter(project=world["project"], closed_at__isnull=False).count()
    assert closed == (1 if name == "api-round-advance" and role == "owner" else 0)
    share = Project.objects.get(pk=world["project"].pk).random_share
    assert (share == 0.3) == (method == "patch" and role == "owner"), "only an owner's PATCH changes the settings"


def test_every_rounds_endpoint_and_page_is_in_the_matrix():
    assert api_routes(rounds_urls.api_urlpatterns) == {(a[1], a[0]) for a in APIS}

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
    assert listed["count"] == 2 and [r["number"] for r in listed["results"]] == [1, 2]
    closed = listed["results"][0]
    assert closed["figures"]["main_metric"] == 0.8 and closed["changes"]["correction"] == 1
    assert closed["closed_by"] == "owner" and listed["results"][1]["closed_at"] is None
    assert closed["worse"] == []
    page = api.get(reverse("api-round-list", args=[project.pk]), {"limit": 1, "offset": 1}).json()
    assert [r["number"] for r in page["results"]] == [2] and page["next"] is None


def test_the_rounds_list_says_which_round_made_a_figure_worse(world):
    project = world["project"]
    owner = world["users"]["owner"]
    for number, metric in ((1, 0.8), (2, 0.7)):
        Round.objects.create(project=project, number=number, figures={"main_metric": metric, "metric_name": "macro_f1"},
                             closed_at=timezone.now(), closed_by=owner)
    api = APIClient()
    api.force_authenticate(world["users"]["reviewer"])
    rounds = api.get(reverse("api-round-list", args=[project.pk])).json()["results"]
    assert [r["number"] for r in rounds][:2] == [1, 2]  # then the open round 3, however it is opened
    assert rounds[0]["worse"] == [] and rounds[1]["worse"] == ["Round 2 made macro-F1 worse: 0.80 → 0.70"]


def test_the_plan_refuses_unknown_or_bad_options_by_name(world):
    api = APIClient()
    api.force_authenticate(world["users"]["owner"])
    url = reverse("api-round-plan", args=[world["project"].pk])
    for query, field in (({"queue": "random"}, "queue"), ({"random_share": "2"}, "random_share"),
                         ({"run": str(10**30)}, "run")):
        response = api.get(url, query)
        assert response.status_code == 400 and response.json()["field"] == field, response.json()
    response = api.post(reverse("api-round-advance", args=[world["project"].pk]), {"run": 10**30}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "run"
    assert not Round.objects.filter(project=world["project"], closed_at__isnull=False).exists()


def test_the_next_round_settings_are_read_and_patched_field_by_field(world):
    api = APIClient()
    api.force_authenticate(world["users"]["owner"])
    project = world["project"]
    url = reverse("api-round-settings", args=[project.pk])
    before = api.get(url).json()
    assert set(before) == {"queue_order", "random_share", "disagreement_confidence", "show_prelabels",
                           "show_model_confidence", "rating_criteria"}
    after = api.patch(url, {"queue_order": "margin", "rating_criteria": [" clear ", "kind"]}, format="json").json()
    assert after == {**before, "queue_order": "margin", "rating_criteria": ["clear", "kind"]}
    project.refresh_from_db()
    assert project.queue_order == "margin" and project.rating_criteria == ["clear", "kind"]
    assert project.random_share == before["random_share"], "a field not sent keeps its value"
    for body, field, message in (
        ({"rating_criteria": ["a", "a"]}, "rating_criteria", DUPLICATE_CRITERIA),
        ({"rating_criteria": [" "]}, "rating_criteria", NO_CRITERIA),
        ({"random_share": 1.5}, "random_share", None),
        ({"queue_order": "loudest"}, "queue_order", None),
    ):
        response = api.patch(url, body, format="json")
        assert response.status_code == 400 and response.json()["field"] == field, response.json()
        assert message is None or response.json()["detail"] == message
    project.refresh_from_db()
    assert project.queue_order == "margin" and project.rating_criteria == ["clear", "kind"]


def test_schema_of_the_rounds_api_generates_without_warnings_and_validates(db):
    GENERATOR_STATS.reset()
    routes = [path("api/", include(rounds_urls.api_urlpatterns))]
    schema = SchemaGenerator(patterns=routes).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    operations = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert sorted(operations) == [
        "round_advance", "round_list", "round_plan", "round_settings", "round_settings_update"
    ]
