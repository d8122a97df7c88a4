"""Span training as a run: started from the runs API, trained by the worker (RQ, in this process), evaluated at
entity level beside the gazetteer with bootstrap intervals, its adapter in the run's folder as safetensors, and
its spans on new items as outputs (the rating flow) that become pre-annotations."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.datasets.services import snapshot_create
from annotation.imports import services as imports
from annotation.models import Item, LabelsAs, TaskType
from annotation.projects.services import project_create, token_issue
from tests.fixtures.people import add_items
from tests.fixtures.runs import *  # noqa: F403
from tests.fixtures.runs import run_worker
from tests.training.test_span_training import conll
from training.explanations.services import explanation_request
from training.ml.spans import SpanRecipe
from training.models import ModelOutput, RunEvent, RunStatus, TrainingRun
from training.ratings.selectors import rateable_runs, rating_run_get
from training.runs import runner, selectors, services, serving

SPAN_SPEC = {"base_model": "tiny-bert", "epochs": 6, "learning_rate": 0.01, "batch_size": 8, "max_length": 32}


@pytest.fixture(autouse=True)
def _fresh_predictors():
    """Run ids restart in every test: a model another test's run 1 left in this process's cache is not ours."""
    serving._predictors.clear()
    yield
    serving._predictors.clear()


@pytest.fixture
def span_snapshot(owner, tiny_models):
    project = project_create(owner=owner, name="NER", task_type=TaskType.SPANS, labels=["PER", "LOC"], overlap=1)
    job = imports.import_create(
        project=project, user=owner, file_name="ner.conll", fileobj=io.BytesIO(conll(40)), labels_as=LabelsAs.FINAL
    )
    assert job.status == "succeeded", job.errors
    return snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)


def test_span_runs_take_lora_only(span_snapshot, owner):
    with pytest.raises(services.RunInputError) as caught:
        services.run_spec_check(snapshot=span_snapshot, data={**SPAN_SPEC, "method": "ia3"})
    assert "lora" in caught.value.errors["method"]
    spec = services.run_spec_check(snapshot=span_snapshot, data={"base_model": "tiny-bert"})
    assert spec.task == "spans" and spec.learning_rate == 2e-3 and spec.epochs == 5


@pytest.mark.slow
def test_a_span_run_from_the_api_trains_in_the_worker_and_shows_entity_f1(
    span_snapshot, owner, queues, client, django_capture_on_commit_callbacks
):
    project = span_snapshot.project
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=owner).key}")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            reverse("api-run-list", kwargs={"project_id": project.pk}),
            {"snapshot_id": span_snapshot.pk, "spec": SPAN_SPEC},
            format="json",
        )
    assert response.status_code == 201, response.data
    run = TrainingRun.objects.get(pk=response.data["id"])
    assert run.task == "spans" and run.status == RunStatus.QUEUED and len(queues[services.QUEUE]) == 1

    fresh = add_items(project, ["bob was in oslo today", "carol was in lima again"])
    with django_capture_on_commit_callbacks(execute=True):
        run_worker()  # the training job; its success queues the predictions people rate
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    test = run.metrics["test"]
    gazetteer = test["baselines"]["gazetteer"]
    assert test["entities"] == 2 * run.metrics["rows"]["test"]
    for figures in (test, gazetteer):
        low, high = figures["intervals"]["f1"]
        assert 0.0 <= low <= figures["f1"] <= high <= 1.0
    assert test["comparison"]["verdict"] in {"better", "not_better", "too_small_to_tell"}
    assert (selectors.run_artifact_path(run) / "adapter_model.safetensors").is_file()
    assert run.events.filter(kind=RunEvent.Kind.TRAIN).exists(), "live progress was recorded"
    assert run.progress["phase"] == "done" and run.progress["step"] == run.progress["total_steps"]

    outputs = {o.item_id: o for o in ModelOutput.objects.filter(run=run)}
    assert {item.pk for item in fresh} <= set(outputs), "new items were predicted for rating"
    for item in fresh:
        value = outputs[item.pk].value
        assert set(value) == {"spans"}
        assert all(span["label"] in {"PER", "LOC"} for span in value["spans"])
        assert 0.0 <= outputs[item.pk].confidence <= 1.0
        assert 0.0 <= outputs[item.pk].uncertainty < 1.0  # 1 - its least sure word's tag probability

    client.force_login(owner)
    page = client.get(reverse("run-detail", kwargs={"project_id": project.pk, "run_id": run.pk})).content.decode()
    assert "Entity F1" in page and "Gazetteer" in page
    assert f"{test['f1']:.3f}" in page and f"{gazetteer['f1']:.3f}" in page

    assert "Use these spans as pre-annotations" in page and "2 items nobody has annotated yet" in page
    kwargs = {"project_id": project.pk, "run_id": run.pk}
    card = client.get(reverse("run-model-card", kwargs=kwargs))
    assert card.status_code == 200 and "# Span tagger fine-tuned from tiny-bert" in card.content.decode()
    assert f"| entity f1 | {test['f1']:.3f}" in card.content.decode()
    assert client.get(reverse("run-artifact", kwargs=kwargs)).status_code == 200
    predicted = api.post(reverse("api-run-predict", kwargs=kwargs), {"texts": ["dave was in rome"]}, format="json")
    assert predicted.status_code == 200, predicted.data
    assert set(predicted.data["predictions"][0]) >= {"spans", "confidence"}

    explanation = explanation_request(output=outputs[fresh[0].pk], user=owner)  # "Why?" (tests/training/explanations)
    assert explanation.method == "span_integrated_gradients" and explanation.status == "queued"
    # The rating pages take span runs: correct / wrong, with the right spans (tests/training/ratings/).
    assert [r.pk for r in rateable_runs(project=project, rater=owner)] == [run.pk]
    assert rating_run_get(project=project, run_id=run.pk) == run

    response = api.post(reverse("api-run-span-prelabels", kwargs=kwargs), format="json")
    assert response.status_code == 200 and response.data == {"written": len(fresh)}
    for item in Item.objects.filter(pk__in=[i.pk for i in fresh]):
        assert item.prelabel == outputs[item.pk].value


def test_a_span_run_cancelled_before_its_first_step_fails_nothing_and_saves_nothing(
    span_snapshot, owner, queues, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(snapshot=span_snapshot, user=owner, spec_data=SPAN_SPEC)
    monkeypatch.setattr(services, "run_should_stop", lambda run_id: True)
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.artifact_dir == ""
    assert run.progress["phase"] == "cancelled" and run.metrics["outcome"]["step"] == 0
    messages = [event.data["message"] for event in run.events.filter(kind=RunEvent.Kind.LOG)]
    assert any("nothing was learnt yet" in message for message in messages), messages


def _api(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=user).key}")
    return api


def _cancel_at(monkeypatch, step: int, user) -> None:
    """The owner presses Cancel while training reports step `step` (the flag is read before every step)."""
    monkeypatch.setattr(runner, "CANCEL_CHECK_EVERY_S", 0.0)
    original = runner.DatabaseCallbacks.on_progress

    def on_progress(self, figures):
        original(self, figures)
        if figures["step"] == step:
            services.run_cancel(run=self.run, user=user)

    monkeypatch.setattr(runner.DatabaseCallbacks, "on_progress", on_progress)


def _log(run: TrainingRun) -> list[str]:
    return [event.data["message"] for event in run.events.filter(kind=RunEvent.Kind.LOG)]


RESUMABLE_SPEC = {**SPAN_SPEC, "epochs": 2, "lora_dropout": 0.1}


@pytest.mark.slow
def test_a_cancelled_span_run_resumes_from_its_checkpoint_from_the_page_and_the_api(
    span_snapshot, owner, queues, client, monkeypatch, django_capture_on_commit_callbacks
):
    project = span_snapshot.project
    with django_capture_on_commit_callbacks(execute=True):
        first = services.run_start(snapshot=span_snapshot, user=owner, spec_data=RESUMABLE_SPEC)
    _cancel_at(monkeypatch, 3, owner)
    run_worker()
    monkeypatch.undo()
    first.refresh_from_db()
    assert first.status == RunStatus.CANCELLED and first.progress["step"] == 3
    assert selectors.run_resume_point(first).step == 3
    kwargs = {"project_id": project.pk, "run_id": first.pk}
    assert _api(owner).get(reverse("api-run-detail", kwargs=kwargs)).data["resume_step"] == 3
    client.force_login(owner)
    page = client.get(reverse("run-detail", kwargs=kwargs)).content.decode()
    assert 'id="run-resume">Resume from step 3</button>' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("run-resume", kwargs=kwargs))  # the page's Resume button
    second = TrainingRun.objects.get(resumed_from=first)
    assert response.status_code == 302 and second.task == "spans" and second.spec == first.spec
    refused = _api(owner).post(reverse("api-run-resume", kwargs=kwargs), format="json")
    assert refused.status_code == 400 and "already being resumed" in str(refused.data)
    with django_capture_on_commit_callbacks(execute=True):
        run_worker()
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED, second.error
    total = second.progress["total_steps"]
    assert second.progress["resumed_from_step"] == 3 and second.progress["step"] == total == first.progress[
        "total_steps"
    ]
    steps = list(second.events.filter(kind=RunEvent.Kind.TRAIN).values_list("step", flat=True))
    assert steps[0] == 4 and steps[-1] == total
    assert f"Resumed from checkpoint step 3 of run {first.pk}" in _log(second)
    second_page = client.get(reverse("run-detail", kwargs={**kwargs, "run_id": second.pk})).content.decode()
    assert "resumed at step 3" in second_page
    # As for the other runs: the two newest checkpoints stay (pruned as they are written), the last at the end.
    kept = selectors.checkpoint_steps(selectors.media_path(second.checkpoint_dir))
    assert len(kept) <= 2 and kept[-1] == total
    assert "test" in second.metrics and (selectors.run_artifact_path(second) / "adapter_model.safetensors").is_file()

    second_kwargs = {**kwargs, "run_id": second.pk}
    finished = _api(owner).post(reverse("api-run-resume", kwargs=second_kwargs), format="json")
    assert finished.status_code == 400 and "Only a failed or cancelled run" in str(finished.data)


@pytest.mark.slow
def test_a_span_run_whose_worker_died_is_swept_as_abandoned_and_resumes(
    span_snapshot, owner, queues, monkeypatch, django_capture_on_commit_callbacks
):
    """The worker is killed mid-run (simulated: training raises out of the job after its step-2 checkpoint and
    nothing is written): the sweep fails the run as abandoned, and Resume continues from step 2."""
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(snapshot=span_snapshot, user=owner, spec_data={**RESUMABLE_SPEC, "save_steps": 2})
    claimed = services.run_claim(run_id=run.pk, worker="doomed")
    original = SpanRecipe._step

    def dies_at_step_three(self, batch):
        if self.state.step == 2:
            raise KeyboardInterrupt("SIGKILL")
        return original(self, batch)

    monkeypatch.setattr(SpanRecipe, "_step", dies_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        runner.train(claimed)
    monkeypatch.undo()
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    assert services.runs_mark_abandoned() == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error == services.ABANDONED
    assert selectors.run_can_resume(run) and selectors.run_resume_point(run).step == 2

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.run_resume(run=run, user=owner)
    run_worker()
    resumed.refresh_from_db()
    assert resumed.status == RunStatus.SUCCEEDED, resumed.error
    assert resumed.progress["resumed_from_step"] == 2
    assert resumed.events.filter(kind=RunEvent.Kind.TRAIN).order_by("step").first().step == 3


def test_a_queued_span_run_whose_job_was_lost_gets_it_back(
    span_snapshot, owner, queues, django_capture_on_commit_callbacks
):
    run = services.run_start(snapshot=span_snapshot, user=owner, spec_data=SPAN_SPEC)  # never committed: no job
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit inside a transaction
        assert services.runs_requeue_lost() == [run.pk]
    assert services.runs_requeue_lost() == []  # its job is pending now
    assert queues[services.QUEUE].fetch_job(services.job_id(run.pk)) is not None
