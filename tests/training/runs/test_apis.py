"""The training runs API: its permission matrix (every endpoint × role, token auth), starting runs with per-field
errors, pages and filters on every list, predictions served from a model loaded once per process, the model
download, huge ids refused with 400, and its OpenAPI schema. Every route is under /api/projects/{id}/.

    endpoint                                          owner  annotator  reviewer  outsider  anonymous
    GET  runs/                                         200     403        200       404       401
    POST runs/                                         201     403        403       404       401
    GET  runs/defaults/                                200     403        403       404       401
    GET  runs/{run}/                                   200     403        200       404       401
    GET  runs/{run}/events/                            200     403        200       404       401
    POST runs/{run}/cancel/                            200     403        403       404       401
    POST runs/{run}/resume/                            201     403        403       404       401
    POST runs/{run}/distil/                            201     403        403       404       401
    GET  runs/{run}/artifact/                          200     403        403       404       401
    GET  runs/{run}/model-card/                        200     403        200       404       401
    POST runs/{run}/predict/                           200     403        403       404       401
    GET  runs/{run}/predictions/                       200     403        200       404       401
    POST runs/{run}/predictions/                       201     403        403       404       401
    GET  runs/{run}/predictions/{batch}/               200     403        200       404       401
    GET  runs/{run}/outputs/                           200     403        200       404       401
    POST runs/{run}/span-prelabels/                    400     403        403       404       401
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

from annotation.models import SnapshotItem
from annotation.projects.services import token_issue
from tests.fixtures.api import api_routes, matrix_table
from tests.fixtures.runs import TINY_BERT_SPEC, World, fake_run, sentiment_snapshot
from training.ml.predict import Predictor
from training.models import ModelOutput, TrainingRun
from training.runs import services, serving
from training.runs import urls as runs_urls
from training.runs.apis import SNAPSHOT_NOT_FOUND

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
HUGE = 10**30


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
    return {"project_id": world.project.pk, "run_id": world.done.pk}, {}


def _run(run: TrainingRun, body: dict | None = None) -> tuple[dict, dict]:
    return {"project_id": run.project_id, "run_id": run.pk}, body or {}


# fmt: off
MATRIX = [
    Row("get",  "api-run-list",               (200, 403, 200, 404, 401), _project),
    Row("post", "api-run-list",               (201, 403, 403, 404, 401),
        lambda w: ({"project_id": w.project.pk}, {"snapshot_id": w.snapshot.pk, "spec": TINY_BERT_SPEC})),
    Row("get",  "api-run-defaults",           (200, 403, 403, 404, 401), _project),
    Row("get",  "api-run-detail",             (200, 403, 200, 404, 401), _done),
    Row("get",  "api-run-events",             (200, 403, 200, 404, 401), _done),
    Row("post", "api-run-cancel",             (200, 403, 403, 404, 401), lambda w: _run(w.queued())),
    Row("post", "api-run-resume",             (201, 403, 403, 404, 401), lambda w: _run(w.cancelled_with_checkpoint())),
    Row("post", "api-run-distil",             (201, 403, 403, 404, 401),
        lambda w: _run(w.done, {"spec": {"student_layers": 1}})),
    Row("get",  "api-run-artifact",           (200, 403, 403, 404, 401), _done),
    Row("get",  "api-run-model-card",         (200, 403, 200, 404, 401), _done),
    Row("post", "api-run-predict",            (200, 403, 403, 404, 401), lambda w: _run(w.done, {"texts": ["a film"]})),
    Row("get",  "api-prediction-batch-list",  (200, 403, 200, 404, 401), _done),
    Row("post", "api-prediction-batch-list",  (201, 403, 403, 404, 401), lambda w: _run(w.done, {"scope": "test"})),
    Row("get",  "api-prediction-batch",       (200, 403, 200, 404, 401),
        lambda w: ({**_done(w)[0], "batch_id": w.batch.pk}, {})),
    Row("get",  "api-run-outputs",            (200, 403, 200, 404, 401), _done),
    # The world's run is a classification run: the owner is told it has no spans (span runs: test_span_runs.py).
    Row("post", "api-run-span-prelabels",     (400, 403, 403, 404, 401), _done),
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


def test_an_unknown_run_or_another_projects_run_is_404(world, owner):
    client = api_as(world, "owner")
    response = client.get(reverse("api-run-detail", kwargs={"project_id": world.project.pk, "run_id": 10**6}))
    assert response.status_code == 404
    other = sentiment_snapshot(owner)
    elsewhere = fake_run(other, owner)
    response = client.get(reverse("api-run-detail", kwargs={"project_id": world.project.pk, "run_id": elsewhere.pk}))
    assert response.status_code == 404, "a run is reached only under its own project"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/projects/{HUGE}/runs/",
        "/api/projects/{project}/runs/" + str(HUGE) + "/",
        "/api/projects/{project}/runs/{run}/predictions/" + str(HUGE) + "/",
        "/api/projects/{project}/runs/?snapshot=" + str(HUGE),
        "/api/projects/{project}/runs/{run}/events/?after=" + str(HUGE),
        "/api/projects/{project}/runs/{run}/outputs/?max_confidence=1e400",
    ],
)
def test_huge_ids_are_refused_with_400_not_a_server_error(world, url):
    response = api_as(world, "owner").get(url.format(project=world.project.pk, run=world.done.pk))
    assert response.status_code == 400, response.data
    assert set(response.data) >= {"detail", "field"}


def test_an_offset_past_the_end_is_an_empty_page(world):
    url = reverse("api-run-outputs", kwargs=_done(world)[0])
    response = api_as(world, "owner").get(url, {"offset": HUGE})
    assert response.status_code == 200 and response.data["results"] == []


def test_a_huge_snapshot_id_in_the_body_is_400(world):
    response = api_as(world, "owner").post(
        reverse("api-run-list", kwargs={"project_id": world.project.pk}), {"snapshot_id": HUGE}, format="json"
    )
    assert response.status_code == 400 and response.data["field"] == "snapshot_id"
    response = api_as(world, "owner").post(
        reverse("api-run-list", kwargs={"project_id": world.project.pk}), {"snapshot_id": 10**6}, format="json"
    )
    assert response.status_code == 400 and response.data["detail"] == SNAPSHOT_NOT_FOUND


def test_the_table_above_is_the_matrix():
    assert matrix_table(__doc__) == [(row.method, row.expected) for row in MATRIX]


def test_every_runs_api_route_and_method_is_in_the_matrix():
    assert api_routes(runs_urls.api_urlpatterns) == {(row.method, row.name) for row in MATRIX}


def test_starting_with_invalid_settings_names_every_field_and_queues_nothing(world, queues):
    before = TrainingRun.objects.count()
    response = api_as(world, "owner").post(
        reverse("api-run-list", kwargs={"project_id": world.project.pk}),
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
            reverse("api-run-list", kwargs={"project_id": world.project.pk}),
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
    url = reverse("api-run-predict", kwargs=_done(world)[0])
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
    url = reverse("api-run-predict", kwargs=_done(world)[0])
    for body in ({}, {"texts": ["a"], "prompts": ["b"]}, {"texts": []}, {"texts": ["x"] * 65}, {"texts": "a film"}):
        assert client.post(url, body, format="json").status_code == 400, body
    queued = world.queued()
    response = client.post(reverse("api-run-predict", kwargs=_run(queued)[0]), {"texts": ["a"]}, format="json")
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
    response = api_as(world, "owner").get(reverse("api-run-artifact", kwargs=_done(world)[0]))
    assert response.status_code == 200
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(tmp_path / "model")

    def refuse(*args, **kwargs):
        raise AssertionError("nothing in an artifact may be unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    from training.runs import selectors

    predictor = Predictor.load(tmp_path / "model", registry=selectors.model_registry())
    assert predictor.classify(["a lovely film"])[0].label in ("pos", "neg")


def test_the_run_api_shows_progress_metrics_and_events_a_page_at_a_time(world):
    client = api_as(world, "reviewer")
    detail = client.get(reverse("api-run-detail", kwargs=_done(world)[0])).data
    assert detail["status"] == "succeeded" and detail["has_artifact"] and detail["resume_step"] is None
    assert detail["metrics"]["test"]["accuracy"] == 0.75
    assert detail["comparison"] is None  # a run evaluated before comparisons existed
    comparison = {"metric": "macro_f1", "best_baseline": "tfidf_logreg", "difference": 0.04,
                  "difference_interval": [0.01, 0.07], "verdict": "better", "message": "Better than the best baseline."}
    test = {**world.done.metrics["test"], "intervals": {"macro_f1": [0.7, 0.76]}, "comparison": comparison}
    TrainingRun.objects.filter(pk=world.done.pk).update(metrics={"test": test})
    detail = client.get(reverse("api-run-detail", kwargs=_done(world)[0])).data
    assert detail["comparison"] == comparison and detail["metrics"]["test"]["intervals"] == {"macro_f1": [0.7, 0.76]}
    listed = client.get(reverse("api-run-list", kwargs={"project_id": world.project.pk})).data["results"]
    assert next(r for r in listed if r["id"] == world.done.pk)["comparison"]["verdict"] == "better"
    services.log_event(run=world.done, message="one")
    services.log_event(run=world.done, message="two")
    services.event_add(run=world.done, kind="train", step=1, data={"train_loss": 0.5})
    url = reverse("api-run-events", kwargs=_done(world)[0])
    events = client.get(url).data
    assert events["count"] == 3 and events["next"] is None
    assert [e["data"].get("message") for e in events["results"]] == ["one", "two", None]
    newer = client.get(url, {"after": events["results"][0]["id"], "kind": "log"}).data
    assert [e["data"]["message"] for e in newer["results"]] == ["two"]
    first = client.get(url, {"limit": 1}).data
    assert first["count"] == 3 and len(first["results"]) == 1 and "offset=1" in first["next"]
    for bad in ({"after": "x"}, {"kind": "chatter"}, {"since": "1"}):
        response = client.get(url, bad)
        assert response.status_code == 400 and response.data["field"] == next(iter(bad)), bad


def test_runs_list_is_paged_and_filtered_by_status_and_snapshot(world):
    world.queued()
    world.queued()
    client = api_as(world, "reviewer")
    url = reverse("api-run-list", kwargs={"project_id": world.project.pk})
    everything = client.get(url).data
    assert everything["count"] == 3 and everything["results"][0]["status"] == "queued"
    assert client.get(url, {"status": "succeeded"}).data["count"] == 1
    assert client.get(url, {"status": "queued", "limit": 1}).data["count"] == 2
    assert len(client.get(url, {"status": "queued", "limit": 1}).data["results"]) == 1
    assert client.get(url, {"snapshot": world.snapshot.pk}).data["count"] == 3
    assert client.get(url, {"snapshot": 10**6}).data["count"] == 0
    assert client.get(url, {"status": "lost"}).status_code == 400
    assert client.get(url, {"limit": 5000}).status_code == 200, "a limit over the cap is capped, not refused"


def test_prediction_batches_are_listed_and_reached_only_under_their_run(world):
    client = api_as(world, "reviewer")
    listed = client.get(reverse("api-prediction-batch-list", kwargs=_done(world)[0])).data
    assert listed["count"] == 1 and listed["results"][0]["id"] == world.batch.pk
    other = world.queued()
    response = client.get(reverse("api-prediction-batch", kwargs={**_run(other)[0], "batch_id": world.batch.pk}))
    assert response.status_code == 404


def test_outputs_are_paged_and_filtered_by_split_label_and_confidence(world):
    items = list(world.project.items.order_by("pk"))
    test_ids = set(
        SnapshotItem.objects.filter(snapshot=world.snapshot, split="test").values_list("item_id", flat=True)
    )
    unlabelled = [item for item in items if item.status != "approved"]
    chosen = [item for item in items if item.pk in test_ids][:3] + unlabelled[:2]
    confidences = [0.55, 0.95, 0.7, 0.6, 0.99]
    labels = ["pos", "neg", "pos", "neg", "pos"]
    ModelOutput.objects.bulk_create(
        ModelOutput(run=world.done, item=item, value={"label": label}, confidence=conf, uncertainty=1 - conf)
        for item, label, conf in zip(chosen, labels, confidences, strict=True)
    )
    client = api_as(world, "reviewer")
    url = reverse("api-run-outputs", kwargs=_done(world)[0])

    def items_of(**query) -> list[int]:
        response = client.get(url, query)
        assert response.status_code == 200, response.data
        return [row["item"] for row in response.data["results"]]

    assert items_of() == sorted(item.pk for item in chosen)
    assert items_of(split="test") == sorted(item.pk for item in chosen[:3])
    assert items_of(labelled="false") == sorted(item.pk for item in chosen[3:])
    assert items_of(label="neg") == sorted([chosen[1].pk, chosen[3].pk])
    assert items_of(min_confidence="0.6", max_confidence="0.95") == sorted(item.pk for item in chosen[1:4])
    assert items_of(order="uncertainty")[0] == chosen[0].pk
    assert items_of(order="confidence", limit="2") == [chosen[0].pk, chosen[3].pk]
    page = client.get(url, {"limit": 2, "offset": 4}).data
    assert page["count"] == 5 and len(page["results"]) == 1 and page["next"] is None
    for bad in ({"min_confidence": "high"}, {"max_confidence": "2"}, {"order": "random"}, {"split": "dev"}):
        response = client.get(url, bad)
        assert response.status_code == 400 and response.data["field"] == next(iter(bad)), bad


def test_schema_of_the_training_api_generates_without_warnings_and_validates(db):
    GENERATOR_STATS.reset()
    routes = [path("api/", include(runs_urls.api_urlpatterns))]
    schema = SchemaGenerator(patterns=routes).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    operations = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operations) == len(set(operations)) == len(MATRIX)
    assert {"run_list", "run_list_create", "run_predict", "run_cancel", "run_resume"} <= set(operations)


def test_the_model_card_is_served_by_the_api_as_the_artifacts_readme(world):
    response = api_as(world, "reviewer").get(reverse("api-run-model-card", kwargs=_done(world)[0]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    card = response.content.decode()
    assert "from peft import" in card and "## " in card


def test_a_run_without_a_model_card_is_404_with_the_reason(world):
    response = api_as(world, "owner").get(reverse("api-run-model-card", kwargs=_run(world.queued())[0]))
    assert response.status_code == 404
    assert "model card" in response.json()["detail"]
