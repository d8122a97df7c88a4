"""Permission matrix of the suggestion pages and API × every role.

Owners start runs and switch their uses; reviewers read runs and figures; annotators get 403 (model suggestions
reach them only as pre-labels, when the owner shows them); outsiders 404; anonymous visitors the login page (browser)
or 401 (API). A refused request writes nothing.
"""

from __future__ import annotations

import datetime as dt

import django_rq
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.fixtures.api import api_routes
from training.models import Suggestion, SuggestionMethod, SuggestionRun, SuggestionRunStatus
from training.suggestions import services as suggestions
from training.suggestions import urls as suggestion_urls

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
OWNER = ("owner",)
REVIEWERS = ("owner", "reviewer")


@pytest.fixture
def world(project, owner, annotator, reviewer, outsider):
    django_rq.get_queue(suggestions.QUEUE).empty()
    run = SuggestionRun.objects.create(
        project=project, method=SuggestionMethod.EMBEDDING_ZERO_SHOT, model_name="test", created_by=owner,
        status=SuggestionRunStatus.SUCCEEDED,
    )
    item = project.items.order_by("pk").first()
    Suggestion.objects.create(run=run, item=item, value={"label": "positive"}, score=0.6)
    return {
        "project": project,
        "run": run,
        "users": {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider},
    }


def expected(role: str, allowed: tuple[str, ...], ok: int, *, api: bool = False) -> int:
    if role == "anonymous":
        return 401 if api else 302
    if role == "outsider":
        return 404
    return ok if role in allowed else 403


START = {"method": SuggestionMethod.EMBEDDING_ZERO_SHOT}
PAGES = [
    ("suggestion-list", "get", False, {}, REVIEWERS, 200),
    ("suggestion-run-start", "post", False, START, OWNER, 302),
    ("suggestion-run-detail", "get", True, {}, REVIEWERS, 200),
    ("suggestion-run-apply", "post", True, {"use_for_ordering": "1"}, OWNER, 302),
]
APIS = [
    ("api-suggestion-run-list", "get", False, {}, REVIEWERS, 200),
    ("api-suggestion-run-list", "post", False, START, OWNER, 202),
    ("api-suggestion-run-detail", "get", True, {}, REVIEWERS, 200),
    ("api-suggestion-run-detail", "patch", True, {"use_for_ordering": True, "show_as_prelabels": False}, OWNER, 200),
    ("api-suggestion-list", "get", True, {}, REVIEWERS, 200),
]


def _args(world, with_run: bool) -> list[int]:
    return [world["project"].pk, world["run"].pk] if with_run else [world["project"].pk]


def _changed(world) -> tuple[int, bool]:
    run = SuggestionRun.objects.get(pk=world["run"].pk)
    return SuggestionRun.objects.count(), run.used_for_ordering


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=[p[0] for p in PAGES])
def test_page_matrix(page, role, world, client):
    name, method, with_run, data, allowed, ok = page
    if role != "anonymous":
        client.force_login(world["users"][role])
    response = getattr(client, method)(reverse(name, args=_args(world, with_run)), data)
    assert response.status_code == expected(role, allowed, ok), (name, role, response.status_code)
    count, ordering = _changed(world)
    assert count == (2 if name == "suggestion-run-start" and role == "owner" else 1)
    assert ordering == (name == "suggestion-run-apply" and role == "owner")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", APIS, ids=[f"{a[1]}-{a[0]}" for a in APIS])
def test_api_matrix(endpoint, role, world):
    name, method, with_run, data, allowed, ok = endpoint
    api = APIClient()
    if role != "anonymous":
        api.force_authenticate(world["users"][role])
    url = reverse(name, args=_args(world, with_run))
    response = api.get(url, data) if method == "get" else getattr(api, method)(url, data, format="json")
    assert response.status_code == expected(role, allowed, ok, api=True), (name, role, response.status_code)
    count, ordering = _changed(world)
    assert count == (2 if method == "post" and role == "owner" else 1)
    assert ordering == (method == "patch" and role == "owner")


def test_every_suggestion_endpoint_and_page_is_in_the_matrix():
    assert api_routes(suggestion_urls.api_urlpatterns) == {(a[1], a[0]) for a in APIS}
    assert {p.name for p in suggestion_urls.urlpatterns} == {p[0] for p in PAGES}


def test_the_api_refuses_a_bad_method_and_a_run_of_another_project(world, other_project):
    api = APIClient()
    api.force_authenticate(world["users"]["owner"])
    project = world["project"]
    response = api.post(reverse("api-suggestion-run-list", args=[project.pk]), {"method": "guess"}, format="json")
    assert response.status_code == 400 and "method" in str(response.json())
    response = api.post(
        reverse("api-suggestion-run-list", args=[project.pk]),
        {"method": "embedding_zero_shot", "max_items": 10**6},
        format="json",
    )
    assert response.status_code == 400 and "1 to 20000" in str(response.json())
    foreign = SuggestionRun.objects.create(
        project=other_project, method="embedding_zero_shot", created_by=other_project.memberships.first().user
    )
    assert api.get(reverse("api-suggestion-run-detail", args=[project.pk, foreign.pk])).status_code == 404
    assert SuggestionRun.objects.filter(project=project).count() == 1


def test_a_queued_run_cannot_be_used_yet(world):
    api = APIClient()
    api.force_authenticate(world["users"]["owner"])
    SuggestionRun.objects.filter(pk=world["run"].pk).update(status=SuggestionRunStatus.RUNNING)
    url = reverse("api-suggestion-run-detail", args=[world["project"].pk, world["run"].pk])
    response = api.patch(url, {"use_for_ordering": True, "show_as_prelabels": True}, format="json")
    assert response.status_code == 400 and "this one is running" in str(response.json())
    assert not SuggestionRun.objects.get(pk=world["run"].pk).shown_as_prelabels


def test_a_queued_run_whose_job_redis_lost_is_queued_again_by_the_sweep(
    project, owner, django_capture_on_commit_callbacks
):
    queue = django_rq.get_queue(suggestions.QUEUE)
    queue.empty()
    run = SuggestionRun.objects.create(project=project, method="embedding_zero_shot", created_by=owner)
    assert suggestions.suggestion_runs_requeue_lost() == []  # too young: its job may still be on its way
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit inside a transaction
        assert suggestions.suggestion_runs_requeue_lost(older_than=dt.timedelta(0)) == [run.pk]
    assert queue.fetch_job(suggestions.job_id(run.pk)) is not None
    assert suggestions.suggestion_runs_requeue_lost(older_than=dt.timedelta(0)) == []  # now pending: left alone
    queue.empty()
