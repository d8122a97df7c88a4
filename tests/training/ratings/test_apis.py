"""The ratings API: the permission matrix (every route and method × role), rating the next output with errors by
field, paged and filtered lists, comparisons that stay blind for raters, streamed exports, huge ids, the schema.
Every route is under /api/projects/{id}/.

    endpoint                                     owner  annotator  reviewer  outsider  anonymous
    GET  runs/{run}/ratings/                      200     403        200       404       401
    POST runs/{run}/ratings/                      201     403        201       404       401
    GET  runs/{run}/ratings/next/                 200     403        200       404       401
    GET  comparisons/                             200     403        200       404       401
    POST comparisons/                             201     403        403       404       401
    GET  comparisons/{c}/                         200     403        200       404       401
    GET  comparisons/{c}/next/                    200     403        200       404       401
    POST comparisons/{c}/preferences/             201     403        201       404       401
    GET  comparisons/{c}/results/                 200     403        403       404       401
    GET  ratings/export/                          200     403        200       404       401
    GET  preferences/export/                      200     403        200       404       401
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import include, path, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from annotation.models import Project
from tests.fixtures.api import api_routes, matrix_table
from tests.fixtures.ratings import RatingWorld, classification_world, generation_world
from training.models import Comparison, Preference, Rating
from training.ratings import urls as ratings_urls
from training.ratings.services import comparison_create, preference_submit, rating_submit

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
HUGE = 10**30


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    expected: tuple[int, int, int, int, int]
    # (world, comparison) -> (url kwargs, body)
    prepare: Callable[[RatingWorld, Comparison], tuple[dict, dict]]


def _project(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk}, {}


def _run(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "run_id": w.run.pk}, {}


def _rate(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    scores = {"correct": 4, "helpful": 5, "follows the guidelines": 3}
    return _run(w, c)[0], {"output_id": w.outputs[0].pk, "scores": scores}


def _compare(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk}, {"run_a": w.run.pk, "run_b": w.other_run.pk}


def _comparison(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "comparison_id": c.pk}, {}


def _choice(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return _comparison(w, c)[0], {"item_id": w.outputs[0].item_id, "choice": "tie"}


# fmt: off
MATRIX = [
    Row("get",  "api-rating-list",            (200, 403, 200, 404, 401), _run),
    Row("post", "api-rating-list",            (201, 403, 201, 404, 401), _rate),
    Row("get",  "api-rating-next",            (200, 403, 200, 404, 401), _run),
    Row("get",  "api-comparison-list",        (200, 403, 200, 404, 401), _project),
    Row("post", "api-comparison-list",        (201, 403, 403, 404, 401), _compare),
    Row("get",  "api-comparison-detail",      (200, 403, 200, 404, 401), _comparison),
    Row("get",  "api-comparison-next",        (200, 403, 200, 404, 401), _comparison),
    Row("post", "api-comparison-preferences", (201, 403, 201, 404, 401), _choice),
    Row("get",  "api-comparison-results",     (200, 403, 403, 404, 401), _comparison),
    Row("get",  "api-ratings-export",         (200, 403, 200, 404, 401), _project),
    Row("get",  "api-preferences-export",     (200, 403, 200, 404, 401), _project),
]
# fmt: on


@pytest.fixture
def gen(users_by_role) -> RatingWorld:
    return generation_world(users_by_role)


@pytest.fixture
def comparison(gen) -> Comparison:
    return comparison_create(project=gen.project, user=gen.users["owner"], run_a=gen.run, run_b=gen.other_run)


@pytest.fixture
def cls(users_by_role) -> RatingWorld:
    return classification_world(users_by_role)


def api_as(world: RatingWorld, role: str) -> APIClient:
    api = APIClient()
    if role != "anonymous":
        api.force_authenticate(world.users[role])
    return api


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method}-{row.name}")
def test_api_status_per_role(gen, comparison, row, role):
    kwargs, body = row.prepare(gen, comparison)
    written = Rating.objects.count() + Preference.objects.count()
    response = getattr(api_as(gen, role), row.method)(reverse(row.name, kwargs=kwargs), body, format="json")
    assert response.status_code == row.expected[ROLES.index(role)], getattr(response, "data", response)
    if response.status_code >= 400:
        assert Rating.objects.count() + Preference.objects.count() == written, "a refused request wrote nothing"


def test_the_table_above_is_the_matrix():
    assert matrix_table(__doc__) == [(row.method, row.expected) for row in MATRIX]


def test_every_ratings_api_route_and_method_is_in_the_matrix():
    assert api_routes(ratings_urls.api_urlpatterns) == {(row.method, row.name) for row in MATRIX}


def test_a_run_or_comparison_of_another_project_is_404(gen, comparison, users_by_role):
    other = generation_world(users_by_role)
    api = api_as(gen, "owner")
    assert api.get(reverse("api-rating-next", kwargs={"project_id": gen.project.pk, "run_id": other.run.pk})
                   ).status_code == 404
    elsewhere = {"project_id": other.project.pk, "comparison_id": comparison.pk}
    assert api.get(reverse("api-comparison-detail", kwargs=elsewhere)).status_code == 404


# --- Rating outputs ------------------------------------------------------------------------------


def test_the_api_rates_the_next_output_and_refuses_bad_input_by_field(cls):
    api = api_as(cls, "reviewer")
    next_url = reverse("api-rating-next", args=[cls.project.pk, cls.run.pk])
    rate_url = reverse("api-rating-list", args=[cls.project.pk, cls.run.pk])
    output = api.get(next_url).data["output"]
    assert output["id"] == cls.outputs[0].pk and output["value"] == {"label": "positive"}
    for body, field in (
        ({"output_id": output["id"], "verdict": "wrong"}, "label"),
        ({"output_id": output["id"], "verdict": "wrong", "correction": {"label": "angry"}}, "label"),
        ({"output_id": output["id"], "verdict": "perhaps"}, "verdict"),
        ({"output_id": output["id"], "verdict": "correct", "scores": {"x": 9}}, "scores"),
        ({"output_id": HUGE, "verdict": "correct"}, "output_id"),
    ):
        response = api.post(rate_url, body, format="json")
        assert response.status_code == 400 and response.data["field"] == field, response.data
    assert api.post(rate_url, {"output_id": 10**9, "verdict": "correct"}, format="json").status_code == 404
    assert not Rating.objects.exists()
    created = api.post(rate_url, {"output_id": output["id"], "verdict": "wrong", "correction": {"label": "neutral"},
                                  "seconds_spent": 3.5}, format="json")
    assert created.status_code == 201 and created.data["rater"] == "reviewer" and created.data["guideline_version"] == 1
    assert api.get(next_url).data["output"]["id"] == cls.outputs[1].pk


def test_confidence_is_hidden_from_raters_unless_the_owner_shows_it(cls):
    api = api_as(cls, "reviewer")
    next_url = reverse("api-rating-next", args=[cls.project.pk, cls.run.pk])
    assert api.get(next_url).data["output"]["confidence"] is None
    Project.objects.filter(pk=cls.project.pk).update(show_model_confidence=True)
    body = api.get(next_url).data
    assert body["output"]["confidence"] == 0.7 and body["output"]["kind"] == "test" and body["remaining"] == 4


def test_the_ratings_of_a_run_are_paged_and_filtered(cls):
    reviewer, owner = cls.users["reviewer"], cls.users["owner"]
    rating_submit(rater=reviewer, output=cls.outputs[0], project=cls.project, verdict="correct")
    rating_submit(rater=reviewer, output=cls.outputs[0], project=cls.project, verdict="wrong",
                  correction={"label": "negative"})
    rating_submit(rater=owner, output=cls.outputs[1], project=cls.project, verdict="correct")
    api = api_as(cls, "reviewer")
    url = reverse("api-rating-list", args=[cls.project.pk, cls.run.pk])
    everything = api.get(url).data
    assert everything["count"] == 3 and [r["verdict"] for r in everything["results"]] == ["correct", "wrong", "correct"]
    current = api.get(url, {"current": "true"}).data
    assert [(r["rater"], r["verdict"]) for r in current["results"]] == [("reviewer", "wrong"), ("owner", "correct")]
    assert api.get(url, {"rater": "owner"}).data["count"] == 1
    assert api.get(url, {"verdict": "wrong"}).data["count"] == 1
    page = api.get(url, {"limit": 2, "offset": 2}).data
    assert len(page["results"]) == 1 and page["previous"] is not None
    for bad in ({"verdict": "maybe"}, {"current": "often"}, {"run": "1"}):
        response = api.get(url, bad)
        assert response.status_code == 400 and response.data["field"] == next(iter(bad)), bad


# --- Blind A/B -----------------------------------------------------------------------------------

RUN_PKS = (913577, 913583)
OUTPUT_PK_BASE = 771100


def assert_blind(body: str, world: RatingWorld) -> None:
    secrets = [str(pk) for pk in RUN_PKS] + [str(o.pk) for o in world.outputs + world.other_outputs]
    leaked = [secret for secret in secrets if re.search(rf"\b{secret}\b", body)]
    assert not leaked, f"the answer names a run or an output: {leaked}"


def test_a_rater_reaches_comparisons_without_learning_which_run_is_which(users_by_role):
    world = generation_world(users_by_role, prompts=6, run_pks=RUN_PKS, output_pk_base=OUTPUT_PK_BASE)
    comparison = comparison_create(project=world.project, user=world.users["owner"], run_a=world.run,
                                   run_b=world.other_run)
    rater = api_as(world, "reviewer")
    kwargs = {"project_id": world.project.pk, "comparison_id": comparison.pk}
    listed = rater.get(reverse("api-comparison-list", args=[world.project.pk])).content.decode()
    assert_blind(listed, world)
    assert json.loads(listed)["results"][0]["run_a"] is None
    detail = rater.get(reverse("api-comparison-detail", kwargs=kwargs))
    assert_blind(detail.content.decode(), world)
    assert detail.data["total"] == 6 and detail.data["judged"] == 0
    for i in range(6):
        body = rater.get(reverse("api-comparison-next", kwargs=kwargs)).content.decode()
        assert_blind(body, world)
        pair = json.loads(body)["pair"]
        assert set(pair) == {"item_id", "prompt", "response_1", "response_2"}
        answer = rater.post(reverse("api-comparison-preferences", kwargs=kwargs),
                            {"item_id": pair["item_id"], "choice": ("1", "2", "tie")[i % 3]}, format="json")
        assert answer.status_code == 201 and answer.data["remaining"] == 5 - i
        assert_blind(answer.content.decode(), world)
    assert rater.get(reverse("api-comparison-next", kwargs=kwargs)).data == {"remaining": 0, "pair": None}
    assert rater.get(reverse("api-comparison-detail", kwargs=kwargs)).data["judged"] == 6
    owner = api_as(world, "owner")
    assert owner.get(reverse("api-comparison-detail", kwargs=kwargs)).data["run_a"] == RUN_PKS[0]
    results = owner.get(reverse("api-comparison-results", kwargs=kwargs)).data
    assert results["wins_a"] + results["wins_b"] == 4 and results["ties"] == 2 and results["raters"] == 1


def test_creating_a_comparison_names_the_run_field_it_refuses(gen):
    api = api_as(gen, "owner")
    url = reverse("api-comparison-list", args=[gen.project.pk])
    for body, field in (({"run_a": gen.run.pk, "run_b": 10**6}, "run_b"), ({"run_a": HUGE, "run_b": 1}, "run_a"),
                        ({"run_a": gen.run.pk, "run_b": gen.run.pk}, "run_b")):
        response = api.post(url, body, format="json")
        assert response.status_code == 400 and response.data["field"] == field, response.data
    first = api.post(url, {"run_a": gen.run.pk, "run_b": gen.other_run.pk}, format="json")
    again = api.post(url, {"run_a": gen.other_run.pk, "run_b": gen.run.pk}, format="json")
    assert first.status_code == again.status_code == 201 and first.data["id"] == again.data["id"]
    assert api.get(url).data["count"] == 1


# --- Exports -------------------------------------------------------------------------------------


def test_exports_stream_jsonl(gen, comparison):
    preference_submit(comparison=comparison, rater=gen.users["reviewer"], item_id=gen.outputs[0].item_id, choice="1")
    rating_submit(rater=gen.users["reviewer"], output=gen.outputs[1], project=gen.project,
                  scores={"correct": 2, "helpful": 2, "follows the guidelines": 2},
                  correction={"response": "Green, of course."})
    api = api_as(gen, "reviewer")
    response = api.get(reverse("api-preferences-export", args=[gen.project.pk]))
    assert response.streaming and response["Content-Type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(lines) == 2 and all(set(line) == {"prompt", "chosen", "rejected"} for line in lines)
    response = api.get(reverse("api-ratings-export", args=[gen.project.pk]))
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["correction"] for line in lines] == [{"response": "Green, of course."}]
    assert 'filename="project-' in response["Content-Disposition"]


def test_huge_ids_in_paths_are_400(gen, comparison):
    api = api_as(gen, "owner")
    for url in (
        f"/api/projects/{gen.project.pk}/runs/{HUGE}/ratings/",
        f"/api/projects/{HUGE}/comparisons/",
        f"/api/projects/{gen.project.pk}/comparisons/{HUGE}/next/",
    ):
        response = api.get(url)
        assert response.status_code == 400 and response.data["field"] in ("run_id", "project_id", "comparison_id")


def test_schema_of_the_ratings_api_generates_without_warnings_and_validates(db):
    GENERATOR_STATS.reset()
    routes = [path("api/", include(ratings_urls.api_urlpatterns))]
    schema = SchemaGenerator(patterns=routes).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    operations = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operations) == len(set(operations)) == len(MATRIX)
