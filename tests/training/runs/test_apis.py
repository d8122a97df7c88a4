"""The training API: its permission matrix (every endpoint × role, token auth), starting runs with per-field
errors, predictions served from a model loaded once per process, the model download, and its OpenAPI schema.

    endpoint                                 owner  annotator  reviewer  outsider  anonymous
    GET  projects/{id}/runs/                  200     403        200       404       401
    GET  projects/{id}/runs/defaults/         200     403        403       404       401
    POST projects/{id}/runs/create/           201     403        403       404       401
    GET  runs/{run}/                          200     403        200       404       401
    GET  runs/{run}/events/                   200     403        200       404       401
    POST runs/{run}/cancel/                   200     403        403       404       401
    POST runs/{run}/resume/                   201     403        403       404       401
    GET  runs/{run}/artifact/                 200     403        403       404       401
    POST runs/{run}/predict/                  200     403        403       404       401
    POST runs/{run}/predictions/              201     403        403       404       401
    GET  runs/{run}/predictions/{batch}/      200     403        200       404       401
    GET  runs/{run}/outputs/                  200     403        200       404       401
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from django.urls import include, path, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from annotation.projects.services import token_issue
from tests.fixtures.runs import TINY_BERT_SPEC, World
from training.ml.predict import Predictor
from training.models import TrainingRun
from training.runs import services, serving
from training.runs import urls as runs_urls

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    expected: tuple[int, int, int, int, int]
    # (world) -> (url kwargs, request body)
    prepare: Callable[[World], tuple[dict, dict]]


def _project(world: World) -> tuple[dict, dict]:
    return {"project_id": world.project.pk}, {}


def _done(world: World) -> tuple[dict, dict]:
    return {"run_id": world.done.pk}, {}


# fmt: off
MATRIX = [
    Row("get",  "api-run-list",               (200, 403, 200, 404, 401), _project),
    Row("get",  "api-run-defaults",           (200, 403, 403, 404, 401), _project),
    Row("post", "api-run-start",              (201, 403, 403, 404, 401),
        lambda w: ({"project_id": w.project.pk}, {"snapshot_id": w.snapshot.pk, "spec": TINY_BERT_SPEC})),
    Row("get",  "api-run-detail",             (200, 403, 200, 404, 401), _done),
    Row("get",  "api-run-events",             (200, 403, 200, 404, 401), _done),
    Row("post", "api-run-cancel",             (200, 403, 403, 404, 401), lambda w: ({"run_id": w.queued().pk}, {})),
    Row("post", "api-run-resume",             (201, 403, 403, 404, 401),
        lambda w: ({"run_id": w.cancelled_with_checkpoint().pk}, {})),
    Row("get",  "api-run-artifact",           (200, 403, 403, 404, 401), _done),
    Row("post", "api-run-predict",            (200, 403, 403, 404, 401),
        lambda w: ({"run_id": w.done.pk}, {"texts": ["a great film"]})),
    Row("post", "api-prediction-batch-start", (201, 403, 403, 404, 401),
        lambda w: ({"run_id": w.done.pk}, {"scope": "test"})),
    Row("get",  "api-prediction-batch",       (200, 403, 200, 404, 401),
        lambda w: ({"run_id": w.done.pk, "batch_id": w.batch.pk}, {})),
    Row("get",  "api-run-outputs",            (200, 403, 200, 404, 401), _done),
]
# fmt: on


def api_as(world: World, role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=world.users[role]).key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_predictors():
    serving._predictors.clear()
    yield
    serving._predictors.clear()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method}-{row.name}")
def test_api_status_per_role(world, row, role):
    kwargs, body = row.prepare(world)
    response = getattr(api_as(world, role), row.method)(reverse(row.name, kwargs=kwargs), body, format="json")
    assert response.status_code == row.expected[ROLES.index(role)], getattr(response, "data", response)


def test_an_unknown_run_is_404_for_everyone(world):
    response = api_as(world, "owner").get(reverse("api-run-detail", kwargs={"run_id": 10**6}))
    assert response.status_code == 404


def test_the_table_above_is_the_matrix():
    rows = [line.split() for line in __doc__.splitlines() if line.strip().split(" ")[0] in ("GET", "POST")]
    assert [(cells[0].lower(), tuple(int(c) for c in cells[-5:])) for cells in rows] == [
        (row.method, row.expected) for row in MATRIX
    ]


def test_every_training_endpoint_is_in_the_matrix():
    assert {pattern.name for pattern in runs_urls.api_urlpatterns} == {row.name for row in MATRIX}


def test_starting_with_invalid_settings_names_every_field_and_queues_nothing(world, queues):
    before = TrainingRun.objects.count()
    response = api_as(world, "owner").post(
        reverse("api-run-start", kwargs={"project_id": world.project.pk}),
        {"snapshot_id": world.snapshot.pk, "spec": {"base_model": "gpt-9", "epochs": 0, "lr_scheduler": "wavy"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.data["detail"] == services.INVALID_SETTINGS
    assert set(response.data["errors"]) == {"base_model", "epochs", "lr_scheduler"}
    assert response.data["errors"]["lr_scheduler"] == "must be one of: linear, cosine, constant"
    assert TrainingRun.objects.count() == before and len(queues[services.QUEUE]) == 0


def test_a_run_started_through_the_api_is_queued_with_the_defaults_filled_in(
    world, queues, django_capture_on_commit_callbacks
):
    client = api_as(world, "owner")
    defaults = client.get(reverse("api-run-defaults", kwargs={"project_id": world.project.pk}), {"method": "ia3"})
    assert defaults.data["task"] == "classification" and defaults.data["spec"]["learning_rate"] == 1e-2
    assert defaults.data["base_models"][0] == "minilm" and "tiny-bert" in defaults.data["base_models"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api-run-start", kwargs={"project_id": world.project.pk}),
            {"snapshot_id": world.snapshot.pk, "name": "api", "spec": {"base_model": "tiny-bert", "method": "ia3"}},
            format="json",
        )
    assert response.status_code == 201
    assert response.data["status"] == "queued" and response.data["spec"]["learning_rate"] == 1e-2
    assert queues[services.QUEUE].fetch_job(f"train-{response.data['id']}") is not None


def test_predict_returns_labels_with_probabilities_and_loads_the_model_once(world, monkeypatch):
    loads = []
    original = Predictor.load.__func__
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)))
    client = api_as(world, "owner")
    url = reverse("api-run-predict", kwargs={"run_id": world.done.pk})
    first = client.post(url, {"texts": ["a great lovely film", "awful sad plot"]}, format="json")
    assert first.status_code == 200, first.data
    predictions = first.data["predictions"]
    assert len(predictions) == 2 and first.data["task"] == "classification"
    for prediction in predictions:
        assert prediction["label"] in ("pos", "neg")
        assert set(prediction["probabilities"]) == {"pos", "neg"}
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert prediction["confidence"] == max(prediction["probabilities"].values()) and prediction["entropy"] >= 0
    second = client.post(url, {"prompts": ["the acting was excellent"]}, format="json")
    assert second.status_code == 200 and len(second.data["predictions"]) == 1
    assert len(loads) == 1, "the second request reuses the model the first one loaded"
    assert serving.loaded_run_ids() == [world.done.pk]


def test_predict_refuses_bad_input_and_runs_without_a_model(world):
    client = api_as(world, "owner")
    url = reverse("api-run-predict", kwargs={"run_id": world.done.pk})
    for body in ({}, {"texts": ["a"], "prompts": ["b"]}, {"texts": []}, {"texts": ["x"] * 65}, {"texts": "a film"}):
        assert client.post(url, body, format="json").status_code == 400, body
    queued = world.queued()
    response = client.post(reverse("api-run-predict", kwargs={"run_id": queued.pk}), {"texts": ["a"]}, format="json")
    assert response.status_code == 400 and response.data["detail"] == services.NO_ARTIFACT


def test_the_predictor_cache_keeps_the_most_recently_used_models(world, settings):
    settings.LABELLOOP_PREDICTOR_CACHE_SIZE = 1
    other = world.cancelled_with_checkpoint()
    TrainingRun.objects.filter(pk=other.pk).update(artifact_dir=world.done.artifact_dir)
    other.refresh_from_db()
    serving.predict(world.done, ["good"])
    serving.predict(other, ["good"])
    assert serving.loaded_run_ids() == [other.pk]


def test_the_downloaded_model_loads_for_inference_without_unpickling(world, tmp_path, monkeypatch):
    response = api_as(world, "owner").get(reverse("api-run-artifact", kwargs={"run_id": world.done.pk}))
    assert response.status_code == 200
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(tmp_path / "model")

    def refuse(*args, **kwargs):
        raise AssertionError("nothing in an artifact may be unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    from training.runs import selectors

    predictor = Predictor.load(tmp_path / "model", registry=selectors.model_registry())
    assert predictor.classify(["a lovely film"])[0].label in ("pos", "neg")


def test_the_run_api_shows_progress_metrics_and_events(world):
    client = api_as(world, "reviewer")
    detail = client.get(reverse("api-run-detail", kwargs={"run_id": world.done.pk})).data
    assert detail["status"] == "succeeded" and detail["has_artifact"] and detail["resume_step"] is None
    assert detail["metrics"]["test"]["accuracy"] == 0.75
    services.log_event(run=world.done, message="one")
    services.log_event(run=world.done, message="two")
    events = client.get(reverse("api-run-events", kwargs={"run_id": world.done.pk})).data
    assert [e["data"]["message"] for e in events] == ["one", "two"]
    newer = client.get(reverse("api-run-events", kwargs={"run_id": world.done.pk}), {"after": events[0]["id"]}).data
    assert [e["data"]["message"] for e in newer] == ["two"]


def test_schema_of_the_training_api_generates_without_warnings_and_validates(db):
    GENERATOR_STATS.reset()
    routes = [path("api/", include(runs_urls.api_urlpatterns))]
    schema = SchemaGenerator(patterns=routes).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    operations = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operations) == len(set(operations)) == len(runs_urls.api_urlpatterns)
    assert {"run_start", "run_predict", "run_cancel", "run_resume"} <= set(operations)
