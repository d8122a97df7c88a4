"""Runs end to end through a real RQ SimpleWorker on the embedded Redis, on the tiny models: both tasks, the
claim that makes a second delivery a no-op, cancel, resume, the heartbeat sweep, and every invalid setting
refused with nothing queued."""

from __future__ import annotations

import datetime as dt
import json

import django_rq
import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import TaskType
from annotation.projects.services import project_create
from core.errors import ServiceError
from tests.fixtures.people import add_items, make_user
from tests.fixtures.runs import (
    TINY_BERT_SPEC,
    TINY_LLAMA_SPEC,
    annotate,
    approve,
    run_worker,
    sentiment_snapshot,
)
from training.models import (
    ModelOutput,
    PredictionBatch,
    PredictionScope,
    PredictionStatus,
    RunEvent,
    RunStatus,
    TrainingRun,
)
from training.runs import jobs, runner, selectors, services
from training.spec import ERROR_BETWEEN, ERROR_FREEZE_NEEDS_FULL, ERROR_POSITIVE, ERROR_WHOLE_NUMBER

pytestmark = pytest.mark.usefixtures("tiny_models", "queues")


def start(snapshot, user, capture, spec=TINY_BERT_SPEC, **changes) -> TrainingRun:
    with capture(execute=True):
        return services.run_start(snapshot=snapshot, user=user, spec_data={**spec, **changes}, name="tiny")


def reload(run: TrainingRun) -> TrainingRun:
    return TrainingRun.objects.select_related("snapshot", "resumed_from").get(pk=run.pk)


def messages(run: TrainingRun) -> list[str]:
    return [e.data["message"] for e in RunEvent.objects.filter(run=run, kind=RunEvent.Kind.LOG)]


def cancel_at(monkeypatch, step: int, user) -> None:
    """The owner presses Cancel while training reports step `step` (the flag is read before every step)."""
    monkeypatch.setattr(runner, "CANCEL_CHECK_EVERY_S", 0.0)
    original = runner.DatabaseCallbacks.on_progress

    def on_progress(self, figures):
        original(self, figures)
        if figures["step"] == step:
            services.run_cancel(run=self.run, user=user)

    monkeypatch.setattr(runner.DatabaseCallbacks, "on_progress", on_progress)


def test_a_classification_run_trains_evaluates_against_baselines_and_saves_its_model(
    sentiment, owner, queues, settings, django_capture_on_commit_callbacks
):
    run = start(sentiment, owner, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.QUEUED and run.task == "classification"
    assert run.snapshot_hash == sentiment.content_hash
    job = queues[services.QUEUE].fetch_job(f"train-{run.pk}")
    assert job is not None and job.timeout == settings.LABELLOOP_TRAINING_JOB_TIMEOUT
    assert run.rq_job_id == job.id

    assert run_worker()
    run = reload(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.started_at and run.finished_at and run.heartbeat_at and run.worker
    test = run.metrics["test"]
    assert test["n"] == sentiment.manifest["splits"]["test"]
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "ece", "loss"} <= set(test)
    assert set(test["baselines"]) == {"majority", "tfidf_logreg", "logreg_embeddings", "zero_shot", "k_shot"}
    assert set(test["intervals"]) == {"accuracy", "macro_f1"} and test["comparison"]["message"]
    assert run.metrics["outcome"]["status"] == "completed"
    assert run.progress["phase"] == "done" and run.progress["step"] == run.progress["total_steps"] > 0

    evals = RunEvent.objects.filter(run=run, kind=RunEvent.Kind.EVAL)
    assert evals.count() == TINY_BERT_SPEC["epochs"]  # validation at the end of every epoch
    steps = list(RunEvent.objects.filter(run=run, kind=RunEvent.Kind.TRAIN).values_list("step", flat=True))
    assert steps[0] == 1 and steps[-1] == run.progress["total_steps"] and steps == sorted(set(steps))
    assert messages(run)[-1].startswith("Finished at step")

    artifact = selectors.run_artifact_path(run)
    assert artifact == settings.MEDIA_ROOT / "runs" / str(run.pk) / "artifact"
    assert {"adapter_model.safetensors", "adapter_config.json", "run.json", "README.md"} <= {
        p.name for p in artifact.iterdir()
    }
    info = json.loads((artifact / "run.json").read_text())
    assert info["snapshot_hash"] == sentiment.content_hash and info["labels"] == ["pos", "neg"]
    assert info["metrics"]["accuracy"] == test["accuracy"]
    assert selectors.checkpoint_steps(settings.MEDIA_ROOT / run.checkpoint_dir)


def test_an_instruction_run_generates_and_is_compared_with_the_base_model(
    colours, owner, django_capture_on_commit_callbacks
):
    run = start(colours, owner, django_capture_on_commit_callbacks, spec=TINY_LLAMA_SPEC)
    assert run.task == "causal_lm"
    run_worker()
    run = reload(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    test = run.metrics["test"]
    assert {"loss", "perplexity", "rouge_l", "bleu", "samples"} <= set(test)
    assert {"loss", "perplexity", "rouge_l", "bleu"} <= set(test["baselines"]["base_model"])
    assert test["loss"] < test["baselines"]["base_model"]["loss"]


def test_every_invalid_setting_is_named_and_nothing_is_queued(sentiment, owner, queues):
    bad = {
        **TINY_BERT_SPEC,
        "lora_r": 0,
        "learning_rate": "fast",
        "warmup_ratio": 0.9,
        "epochs": 1.5,
        "freeze_layers": 1,
        "class_weights": {"maybe": 2.0},
        "colour": "blue",
    }
    with pytest.raises(services.RunInputError) as caught:
        services.run_start(snapshot=sentiment, user=owner, spec_data=bad, name="x" * 201)
    errors = caught.value.errors
    assert errors["lora_r"] == "must be at least 1"
    assert errors["learning_rate"] == "must be a number"
    assert errors["warmup_ratio"] == ERROR_BETWEEN.format(low=0.0, high=0.5)
    assert errors["epochs"] == ERROR_WHOLE_NUMBER
    assert errors["freeze_layers"] == ERROR_FREEZE_NEEDS_FULL
    assert errors["colour"] == "is not a training setting"
    assert errors["name"] == services.NAME_TOO_LONG
    assert set(errors) == {"lora_r", "learning_rate", "warmup_ratio", "epochs", "freeze_layers", "colour", "name"}

    # Checks the spec cannot make alone: the registry, the base model's depth, the snapshot's labels.
    with pytest.raises(services.RunInputError) as caught:
        services.run_start(
            snapshot=sentiment,
            user=owner,
            spec_data={**TINY_BERT_SPEC, "method": "full", "freeze_layers": 3, "class_weights": {"maybe": 2.0}},
        )
    assert caught.value.errors == {
        "freeze_layers": services.FREEZE_TOO_MANY.format(layers=2),
        "class_weights": services.CLASS_WEIGHT_LABEL.format(label="maybe", labels="pos, neg"),
    }
    with pytest.raises(services.RunInputError) as caught:
        services.run_start(snapshot=sentiment, user=owner, spec_data={"base_model": "gpt-9", "max_grad_norm": 0})
    assert caught.value.errors["base_model"].startswith("must be one of the registered base models: ")
    assert "tiny-bert" in caught.value.errors["base_model"]
    assert caught.value.errors["max_grad_norm"] == ERROR_POSITIVE
    with pytest.raises(services.RunInputError) as caught:  # a causal LM is no classification base
        services.run_start(snapshot=sentiment, user=owner, spec_data={**TINY_BERT_SPEC, "base_model": "smollm2-135m"})
    assert caught.value.errors["base_model"] == services.WRONG_TASK_BASE_MODEL.format(
        name="smollm2-135m", names="minilm, tiny-bert, tiny-llama"
    )

    assert not TrainingRun.objects.exists()
    assert all(len(queue) == 0 and not queue.scheduled_job_registry.get_job_ids() for queue in queues.values())


def test_multi_label_projects_are_refused_with_a_clear_message(owner):
    project = project_create(owner=owner, name="Tags", task_type=TaskType.MULTI_LABEL, labels=["a", "b"])
    items = add_items(project, ["one", "two", "three", "four", "five"])
    approve(items, [{"labels": ["a"]}] * 5)
    from annotation.datasets.services import snapshot_create

    snapshot = snapshot_create(project=project, user=owner, name="tags")
    with pytest.raises(ServiceError, match="Multi-label projects cannot be trained yet"):
        services.run_start(snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC)
    assert not TrainingRun.objects.exists()


def test_a_run_delivered_twice_trains_once(sentiment, owner, queues, monkeypatch, django_capture_on_commit_callbacks):
    trained = []
    original = runner.train
    monkeypatch.setattr(runner, "train", lambda run: trained.append(run.pk) or original(run))
    run = start(sentiment, owner, django_capture_on_commit_callbacks, epochs=1)
    queues[services.QUEUE].enqueue("training.runs.jobs.training_run_job", run.pk, job_id=f"train-{run.pk}-again")
    run_worker()
    jobs.training_run_job(run.pk)  # and a third delivery, straight in
    assert trained == [run.pk]
    assert reload(run).status == RunStatus.SUCCEEDED
    assert sum(m.startswith("Started on") for m in messages(run)) == 1


def test_a_queued_run_cancelled_before_it_starts_never_trains(sentiment, owner, django_capture_on_commit_callbacks):
    run = start(sentiment, owner, django_capture_on_commit_callbacks)
    run = services.run_cancel(run=run, user=owner)
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    run_worker()
    run = reload(run)
    assert run.status == RunStatus.CANCELLED and run.started_at is None and not run.artifact_dir
    with pytest.raises(ServiceError, match="Only a queued or running run"):
        services.run_cancel(run=run, user=owner)


def test_cancel_stops_within_one_step_and_keeps_what_was_learnt(
    sentiment, owner, monkeypatch, django_capture_on_commit_callbacks
):
    cancel_at(monkeypatch, 3, owner)
    run = start(sentiment, owner, django_capture_on_commit_callbacks, epochs=3)
    run_worker()
    run = reload(run)
    assert run.status == RunStatus.CANCELLED and run.cancel_requested
    assert run.progress["step"] == 3 and run.metrics["outcome"]["status"] == "cancelled"
    assert "test" not in run.metrics  # the owner chose not to wait for the evaluation
    assert (selectors.run_artifact_path(run) / "adapter_model.safetensors").is_file()
    assert selectors.run_resume_point(run).step == 3
    assert messages(run)[-1] == "Cancelled at step 3 of 15; the model as of step 3 is saved"


def test_resume_continues_from_the_last_checkpoint_in_a_new_run(
    sentiment, owner, monkeypatch, django_capture_on_commit_callbacks
):
    cancel_at(monkeypatch, 4, owner)
    first = start(sentiment, owner, django_capture_on_commit_callbacks, epochs=2)
    run_worker()
    first = reload(first)
    assert first.status == RunStatus.CANCELLED
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        second = services.run_resume(run=first, user=owner)
    assert second.resumed_from == first and second.spec == first.spec and second.snapshot_id == first.snapshot_id
    with pytest.raises(ServiceError, match="already being resumed"):
        services.run_resume(run=first, user=owner)
    run_worker()
    second = reload(second)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert second.progress["resumed_from_step"] == 4
    steps = list(RunEvent.objects.filter(run=second, kind=RunEvent.Kind.TRAIN).values_list("step", flat=True))
    assert steps[0] == 5 and steps[-1] == second.progress["total_steps"] == 10
    assert f"Resumed from checkpoint step 4 of run {first.pk}" in messages(second)
    with pytest.raises(ServiceError, match="Only a failed or cancelled run"):
        services.run_resume(run=second, user=owner)


def test_a_run_whose_heartbeat_stopped_is_failed_as_abandoned_and_a_live_one_is_not(sentiment, owner):
    now = timezone.now()

    def running(seconds_ago: float) -> TrainingRun:
        return TrainingRun.objects.create(
            project=sentiment.project, snapshot=sentiment, snapshot_hash=sentiment.content_hash, task="classification",
            base_model="tiny-bert", spec={}, created_by=owner, status=RunStatus.RUNNING,
            started_at=now, heartbeat_at=now - dt.timedelta(seconds=seconds_ago),
        )

    stale, live = running(120), running(5)
    assert services.runs_mark_abandoned() == [stale.pk]
    stale, live = reload(stale), reload(live)
    assert stale.status == RunStatus.FAILED and stale.error == services.ABANDONED == (
        "abandoned: the worker stopped (heartbeat lost)"
    )
    assert live.status == RunStatus.RUNNING
    assert services.run_heartbeat(run_id=live.pk) and not services.run_heartbeat(run_id=stale.pk)
    call_command("runs_sweep", "--stale-after", "1", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert reload(live).status == RunStatus.RUNNING  # its heartbeat was just stamped
    assert services.run_finish(
        run=stale, status=RunStatus.SUCCEEDED, metrics={}, progress={}, artifact_dir=None, message="late"
    ) is False, "a worker that comes back late cannot overwrite the abandoned status"


# RQ's scheduler moves a due job onto its queue within a second (rq.scheduler.RQScheduler interval); the sweep
# itself takes well under the rest of this slack.
SCHEDULER_SLACK_S = 5
DETECTION_BOUND_S = 120


def test_the_default_settings_detect_a_killed_worker_within_two_minutes(sentiment, owner, settings):
    """Worst case: the last beat just before the kill, the run turns stale LABELLOOP_RUN_STALE_AFTER_S later, and
    the next sweep comes at most SWEEP_EVERY after that. Several heartbeats must fit in the stale window, so a
    slow write (a busy SQLite file waits up to 30 s) does not fail a healthy run."""
    from config.settings import base  # the shipped values (a fixture slows the suite's heartbeat down)

    stale_s, beat_s = base.LABELLOOP_RUN_STALE_AFTER_S, base.LABELLOOP_RUN_HEARTBEAT_S
    settings.LABELLOOP_RUN_STALE_AFTER_S = stale_s
    assert stale_s + services.SWEEP_EVERY.total_seconds() + SCHEDULER_SLACK_S <= DETECTION_BOUND_S
    assert stale_s >= 4 * beat_s

    now = timezone.now()
    last_beat = now - dt.timedelta(seconds=stale_s + 1)
    killed = TrainingRun.objects.create(
        project=sentiment.project, snapshot=sentiment, snapshot_hash=sentiment.content_hash, task="classification",
        base_model="tiny-bert", spec={}, created_by=owner, status=RunStatus.RUNNING, started_at=last_beat,
        heartbeat_at=last_beat,
    )
    slow = TrainingRun.objects.create(
        project=sentiment.project, snapshot=sentiment, snapshot_hash=sentiment.content_hash, task="classification",
        base_model="tiny-bert", spec={}, created_by=owner, status=RunStatus.RUNNING, started_at=now,
        heartbeat_at=now - dt.timedelta(seconds=3 * beat_s),  # three beats missed: still alive
    )
    assert services.runs_mark_abandoned() == [killed.pk]  # the default threshold, as the sweep job uses it
    assert reload(slow).status == RunStatus.RUNNING


def test_the_sweep_job_reschedules_itself_under_the_other_id_and_sweeps(sentiment, owner, queues, settings):
    from core.queues import JsonSimpleWorker

    sweep = queues[services.SWEEP_QUEUE]
    services.runs_sweep_ensure()
    services.runs_sweep_ensure()
    assert sweep.scheduled_job_registry.get_job_ids() == ["runs-sweep-a"]

    stale = TrainingRun.objects.create(
        project=sentiment.project, snapshot=sentiment, snapshot_hash=sentiment.content_hash, task="classification",
        base_model="tiny-bert", spec={}, created_by=owner, status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - dt.timedelta(minutes=5),
    )
    job = sweep.fetch_job("runs-sweep-a")
    sweep.scheduled_job_registry.remove(job)
    sweep.enqueue_job(job)  # what the scheduler does when the minute is up
    django_rq.get_worker(services.SWEEP_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)
    assert reload(stale).status == RunStatus.FAILED
    assert sweep.scheduled_job_registry.get_job_ids() == ["runs-sweep-b"]
    assert sweep.fetch_job("runs-sweep-a") is None  # result_ttl=0: nothing left under the id just used


def test_the_forking_worker_schedules_the_sweep_again_when_redis_lost_it(queues):
    """Redis restarted without its data loses the scheduled sweep (bench/faults.py redis-run); the worker's
    maintenance, at its start and then between jobs, schedules it again, once."""
    from core.queues import JsonWorker

    sweep = queues[services.SWEEP_QUEUE]
    assert sweep.scheduled_job_registry.get_job_ids() == []  # what an emptied Redis holds
    worker = django_rq.get_worker(services.SWEEP_QUEUE)
    assert isinstance(worker, JsonWorker)  # what `manage.py rqworker` runs
    worker.run_maintenance_tasks()
    worker.run_maintenance_tasks()
    assert sweep.scheduled_job_registry.get_job_ids() == ["runs-sweep-a"]


def test_a_queued_run_whose_job_was_lost_gets_it_back(sentiment, owner, queues, django_capture_on_commit_callbacks):
    run = start(sentiment, owner, django_capture_on_commit_callbacks)
    queues[services.QUEUE].empty()  # Redis lost the job
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit inside a transaction
        assert services.runs_requeue_lost() == [run.pk]
    assert services.runs_requeue_lost() == []  # its job is pending now
    assert queues[services.QUEUE].fetch_job(f"train-{run.pk}") is not None


def test_class_weights_and_resampling_follow_the_snapshots_balance_report(owner):
    weighted = sentiment_snapshot(owner, balance_mode="class_weights")
    weights = selectors.snapshot_class_weights(weighted)
    assert set(weights) == {"pos", "neg"} and all(w > 0 for w in weights.values())

    other = make_user("other")
    downsampled = sentiment_snapshot(other, count=40, balance_mode="downsample")
    spec = services.run_spec_check(snapshot=downsampled, data=TINY_BERT_SPEC)
    data = selectors.snapshot_training_data(snapshot=downsampled, spec=spec)
    kept = [row["label"] for row in data.train]
    assert data.balance == {"mode": "downsample", "before": downsampled.manifest["splits"]["train"], "after": len(kept)}
    assert kept.count("pos") == kept.count("neg") == downsampled.manifest["class_balance"]["report"]["after"]["pos"]


def test_the_guidelines_describe_each_label_for_the_zero_shot_baseline(owner):
    guidelines = "# Reviews\n\n- **pos**: the reviewer liked the film.\n- **neg**: the reviewer did not.\n"
    snapshot = sentiment_snapshot(owner, guidelines=guidelines)
    spec = services.run_spec_check(snapshot=snapshot, data=TINY_BERT_SPEC)
    data = selectors.snapshot_training_data(snapshot=snapshot, spec=spec)
    assert data.label_descriptions == {"pos": "the reviewer liked the film.", "neg": "the reviewer did not."}


def test_the_agreement_curriculum_scores_each_item_by_its_annotators(sentiment, owner, annotator, annotator2):
    rows = list(sentiment.rows.select_related("item").order_by("item_id")[:3])
    final = [row.value["label"] for row in rows]
    other = {"pos": "neg", "neg": "pos"}
    annotate(rows[0].item, [annotator, annotator2], [final[0], final[0]])
    annotate(rows[1].item, [annotator, annotator2], [final[1], other[final[1]]])
    annotate(rows[2].item, [annotator], [other[final[2]]])
    assert selectors.item_agreement(snapshot=sentiment) == {rows[0].item_id: 1.0, rows[1].item_id: 0.5,
                                                            rows[2].item_id: 0.0}
    spec = services.run_spec_check(snapshot=sentiment, data={**TINY_BERT_SPEC, "curriculum": "agreement"})
    data = selectors.snapshot_training_data(snapshot=sentiment, spec=spec)
    scored = [row for split in (data.train, data.validation, data.test) for row in split if "agreement" in row]
    assert sorted(row["agreement"] for row in scored) == [0.0, 0.5, 1.0]


def test_batch_predictions_write_each_output_once(sentiment, owner, django_capture_on_commit_callbacks):
    run = start(sentiment, owner, django_capture_on_commit_callbacks, epochs=1)
    run_worker()
    run = reload(run)
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.prediction_batch_start(run=run, user=owner, scope=PredictionScope.TEST_AND_UNLABELLED)
    with pytest.raises(ServiceError, match="already queued or running"):
        services.prediction_batch_start(run=run, user=owner, scope=PredictionScope.TEST)
    run_worker()
    batch.refresh_from_db()
    expected = sentiment.manifest["splits"]["test"] + 4  # the test split and the four unlabelled items
    assert batch.status == PredictionStatus.SUCCEEDED and batch.total == batch.done == batch.written == expected
    outputs = ModelOutput.objects.filter(run=run)
    assert outputs.count() == expected
    for output in outputs:
        assert output.value["label"] in ("pos", "neg")
        assert sum(output.probabilities.values()) == pytest.approx(1.0)
        assert output.confidence == max(output.probabilities.values()) and output.uncertainty >= 0

    # Nothing left to predict: refused before anything is queued, rather than a batch that does nothing.
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ServiceError) as refused:
        services.prediction_batch_start(run=run, user=owner, scope=PredictionScope.TEST_AND_UNLABELLED)
    assert refused.value.message.startswith("Nothing to predict") and refused.value.field == "scope"
    assert ModelOutput.objects.filter(run=run).count() == expected
    assert PredictionBatch.objects.filter(run=run).count() == 1
    assert django_rq.get_queue(services.QUEUE).count == 0
