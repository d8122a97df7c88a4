"""The API's error body where no API class answers: a path under /api/ that no route matches is a JSON 404 (pages
keep their HTML 404), and paging and repeated filters are refused naming the parameter and saying what is expected."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.api import BAD_FILTER_VALUE, ID_MAX, NO_QUERY, PAGE_LIMIT_EXPECTED, REPEATED_FILTER, UNKNOWN_FILTER
from core.pagination import Pagination
from core.views import NO_SUCH_ROUTE
from tests.fixtures.api import api_as, url

UNMATCHED = [
    "/api/projects/abc/",
    "/api/projects/{pk}/review-tasks/abc/",
    "/api/projects/{pk}/noise-scans/x/flags/",
    "/api/projects/{pk}/items/1.5/",
    "/api/no-such-route/",
]


def _json_404(response, path: str) -> None:
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": NO_SUCH_ROUTE.format(path=path), "field": None}


@pytest.mark.parametrize("template", UNMATCHED)
@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_an_unmatched_api_path_is_a_json_404(project, owner, template, method):
    path = template.format(pk=project.pk)
    _json_404(getattr(api_as(owner), method)(path), path)


def test_an_unmatched_api_path_is_a_json_404_for_anonymous_callers_too(project):
    path = f"/api/projects/{project.pk}/review-tasks/abc/"
    _json_404(APIClient().get(path), path)


@pytest.mark.parametrize("path", ["/projects/abc/", "/no-such-page/"])
def test_a_page_404_stays_html(client, owner, path):
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("template", ["/api/projects/{huge}/", "/api/projects/{pk}/review-tasks/{huge}/"])
def test_an_id_beyond_a_bigint_stays_a_400_naming_it(project, owner, template):
    huge = 2**64
    response = api_as(owner).get(template.format(pk=project.pk, huge=huge))
    field = "task_id" if "review-tasks" in template else "project_id"
    assert (response.status_code, response.json()["field"]) == (400, field)
    assert str(ID_MAX) in response.json()["detail"]
    assert APIClient().get(template.format(pk=project.pk, huge=huge)).status_code == 401


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1.5"])
def test_a_limit_under_1_says_the_bound(project, owner, limit):
    response = api_as(owner).get(url("api-member-list", project), {"limit": limit})
    assert (response.status_code, response.json()["field"]) == (400, "limit")
    reason = PAGE_LIMIT_EXPECTED.format(largest=Pagination.max_limit)
    assert response.json()["detail"] == BAD_FILTER_VALUE.format(value=limit, reason=reason)


def test_a_limit_of_any_size_is_capped(project, owner):
    response = api_as(owner).get(url("api-member-list", project), {"limit": "9" * 25})
    assert response.status_code == 200 and len(response.json()["results"]) == 4


def test_leading_zeros_in_a_limit_count_for_nothing(project, owner):
    response = api_as(owner).get(url("api-member-list", project), {"limit": "0" * 20 + "2"})
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    assert api_as(owner).get(url("api-member-list", project), {"limit": "0" * 30}).status_code == 400


@pytest.mark.parametrize(
    ("name", "query"),
    [("role", "?role=owner&role=annotator"), ("limit", "?limit=1&limit=2"), ("offset", "?offset=0&offset=1")],
)
def test_a_parameter_given_twice_is_a_400_naming_it(project, owner, name, query):
    response = api_as(owner).get(url("api-member-list", project) + query)
    assert (response.status_code, response.json()["field"]) == (400, name)
    assert response.json()["detail"] == REPEATED_FILTER.format(name=name, count=2)


@pytest.mark.parametrize("route", ["api-quality", "api-annotator-quality", "api-routing-plan", "api-project-detail"])
def test_a_read_that_takes_no_query_refuses_one_naming_it(project, owner, route):
    """A tester's `?view=all` on the quality report was answered as if it were the report it asked for."""
    response = api_as(owner).get(url(route, project) + "?view=all")
    assert (response.status_code, response.json()["field"]) == (400, "view")
    assert response.json()["detail"] == NO_QUERY.format(name="view")
    assert api_as(owner).get(url(route, project) + "?limit=5").json()["field"] == "limit"  # not a list: no paging
    assert api_as(owner).get(url(route, project) + "?format=json").status_code == 200


def test_a_bad_query_from_an_outsider_still_gets_the_404_first(project, outsider):
    """The query is checked after the handler found the project: an outsider learns nothing new from it."""
    assert api_as(outsider).get(url("api-quality", project) + "?view=all").status_code == 404
    assert api_as(outsider).get(url("api-member-list", project) + "?who=x").status_code == 404


def test_an_unknown_filter_of_a_list_names_the_ones_it_takes(project, owner):
    response = api_as(owner).get(url("api-member-list", project) + "?who=ann")
    assert (response.status_code, response.json()["field"]) == (400, "who")
    assert response.json()["detail"] == UNKNOWN_FILTER.format(name="who", allowed="role, limit, offset")


def test_a_field_the_project_shows_but_the_api_cannot_change_says_why(project, owner):
    """A tester's `{"review_all": true}` was called an unknown field, though the project's own answer holds it."""
    response = api_as(owner).patch(url("api-project-detail", project), {"review_all": True}, format="json")
    assert (response.status_code, response.json()["field"]) == (400, "review_all")
    assert response.json()["detail"].startswith("review_all cannot be changed here: a site administrator sets it")
    project.refresh_from_db()
    assert project.review_all is False


def test_a_bulk_accept_of_no_task_says_so_in_words(project, owner):
    """DRF's own words were "Ensure this field has at least 1 elements."."""
    response = api_as(owner).post(url("api-review-task-bulk-accept", project), {"task_ids": []}, format="json")
    assert (response.status_code, response.json()["field"]) == (400, "task_ids")
    assert response.json()["detail"] == "Name at least one review task to accept."
