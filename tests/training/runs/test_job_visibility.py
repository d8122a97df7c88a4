"""Job visibility: which queue each job goes to, which workers listen where, a queued job's place in its real RQ queue
(page and API), phase progress with its own ETA after training, and preconditions checked before enqueueing."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import uuid
from pathlib import Path

import django_rq
import pytest
import yaml
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient
from rq.job import JobStatus

from annotation.datasets.services import snapshot_create
from annotation.imports import services as import_services
from annotation.models import ImportJob
from annotation.projects.services import project_create
from annotation.quality import services as quality_services
from core import queues as core_queues
from core.errors import ServiceError
from tests.fixtures.people import add_items
from tests.fixtures.runs import TINY_BERT_SPEC, approve, fake_run
from training.models import PredictionBatch, PredictionScope, PredictionStatus, RunStatus, TrainingRun
from training.runs import selectors, services
from training.runs.runner import DatabaseCallbacks

ROOT = Path(__file__).resolve().parents[3]
SHORT_JOB_QUEUES = {"imports", "quality", "default"}

pytestmark = pytest.mark.usefixtures("tiny_models", "queues")


# --- routing: which job goes to which queue, and which worker listens where ----------------------------------


def test_each_job_goes_to_its_queue(sentiment, owner, queues, django_capture_on_commit_callbacks):
    """Long jobs (runs, prediction batches) on "training"; imports, scans and the sweep on queues of their own."""
    assert set(settings.RQ_QUEUES) == {"training", *SHORT_JOB_QUEUES}
    assert services.QUEUE == "training" and services.SWEEP_QUEUE == "default"
    assert import_services.QUEUE_NAME == "imports" and quality_services.QUEUE == "quality"
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(snapshot=sentiment, user=owner, spec_data=TINY_BERT_SPEC, name="routed")
    assert queues["training"].get_job_position(run.rq_job_id) == 0
    assert queues["default"].get_job_position(run.rq_job_id) is None


def _worker_queues(command: str) -> list[str]:
    words = shlex.split(command)
    after = words[words.index("rqworker") + 1 :]
    return [word for word in after if not word.startswith("-")]


def _demo_workers() -> dict[str, list[str]]:
    script = (ROOT / "scripts" / "demo.sh").read_text()
    found = {}
    for line in script.splitlines():
        match = re.match(r"\$PY manage.py (rqworker .*?) > var/([\w-]+)\.log", line)
        if match:
            found[match.group(2)] = _worker_queues(match.group(1))
    return found


def _compose_workers() -> dict[str, list[str]]:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    return {
        name: _worker_queues(service["command"])
        for name, service in compose["services"].items()
        if "rqworker" in str(service.get("command", ""))
    }


@pytest.mark.parametrize("workers", [_demo_workers(), _compose_workers()], ids=["demo.sh", "compose"])
def test_a_long_training_run_cannot_block_imports_scans_or_the_sweep(workers):
    """Some worker never takes training jobs and serves every short queue; every queue has a worker; the training
    worker takes training first. So a run that trains for hours leaves a worker free for imports and scans."""
    assert len(workers) >= 2, workers
    served = set().union(*workers.values())
    assert served == set(settings.RQ_QUEUES)
    assert any("training" not in queues and set(queues) >= SHORT_JOB_QUEUES for queues in workers.values())
    assert all(queues[0] == "training" for queues in workers.values() if "training" in queues)


def test_make_stop_and_the_demo_script_know_every_process_it_starts():
    script = (ROOT / "scripts" / "demo.sh").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for name in _demo_workers():
        assert f"echo $! > var/{name}.pid" in script
        assert re.search(rf"for name in web [\w -]*\b{name}\b", script), name
        assert re.search(rf"for name in web [\w -]*\b{name}\b[\w -]* redis", makefile), name


# --- queue position ---------------------------------------------------------------------------------------


def _enqueue_other(queue_name: str, job_id: str) -> None:
    django_rq.get_queue(queue_name, commit_mode="auto").enqueue("training.runs.jobs.runs_sweep_job", job_id=job_id)


def test_a_queued_run_shows_how_many_jobs_are_ahead_of_it_on_its_page_and_in_the_api(
    sentiment, owner, client, queues, django_capture_on_commit_callbacks, monkeypatch
):
    # No worker runs here, but a shared Redis can still list one: a worker SIGKILLed by a fault test stays
    # registered until its TTL runs out. The count is RQ's; this test is about what the page makes of it.
    monkeypatch.setattr(core_queues.Worker, "count", classmethod(lambda cls, **kwargs: 0))
    _enqueue_other("training", "someone-elses-run")
    _enqueue_other("training", "another-run")
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("run-create", args=[sentiment.project_id, sentiment.pk]), {"name": "mine", **TINY_BERT_SPEC}
        )
    run = TrainingRun.objects.get(name="mine")
    page = client.get(response["Location"]).content.decode()
    assert "Queued — 2 jobs ahead of it in the training queue" in page
    assert "no worker serves the training queue" in page  # no worker runs in this test
    assert f"Run {run.pk} queued" not in page, "the live status says it; no flash that outlives the queued state"

    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(reverse("api-run-detail", args=[sentiment.project_id, run.pk])).json()
    assert body["queue_position"] == 2
    assert body["queue"] == {
        "name": "training", "state": "waiting", "position": 2, "workers": 0, "busy": None,
        "message": core_queues.QueuePlace("training", "waiting", 2, 0).text,
    }
    queues["training"].remove("someone-elses-run")
    listed = api.get(reverse("api-run-list", args=[sentiment.project_id])).json()["results"]
    assert [r["queue_position"] for r in listed if r["id"] == run.pk] == [1]
    assert "1 job ahead of it" in client.get(reverse("run-list", args=[sentiment.project_id])).content.decode()

    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    fragment = client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert "Queued —" not in fragment and 'id="run-queue"' not in fragment
    assert api.get(reverse("api-run-detail", args=[sentiment.project_id, run.pk])).json()["queue"] is None


def test_a_queued_run_whose_job_is_gone_from_redis_says_so(sentiment, owner, client, queues):
    run = fake_run(sentiment, owner, rq_job_id="train-gone")
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[sentiment.project_id, run.pk]))
    assert page.status_code == 200 and "no longer in the training queue" in page.content.decode()
    place = selectors.run_queue_place(run)
    assert place is not None and place.state == core_queues.MISSING and place.ahead is None


def test_redis_down_shows_the_queue_as_unreachable_and_the_page_still_renders(
    sentiment, owner, client, monkeypatch
):
    import redis

    def down(*args, **kwargs):
        raise redis.ConnectionError("down")

    run = fake_run(sentiment, owner, rq_job_id="train-x")
    monkeypatch.setattr(core_queues.django_rq, "get_queue", down)
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[sentiment.project_id, run.pk]))
    assert page.status_code == 200 and "the job queue cannot be reached right now" in page.content.decode()


def test_a_started_job_whose_row_still_says_queued_is_starting(sentiment, owner, queues):
    queue = django_rq.get_queue("training", commit_mode="auto")
    job = queue.enqueue("training.runs.jobs.runs_sweep_job", job_id="train-starting")
    queue.remove(job)
    job.set_status(JobStatus.STARTED)
    assert core_queues.queue_place("training", "train-starting").state == core_queues.STARTING


def test_a_job_a_worker_has_popped_but_not_yet_started_is_starting_not_lost(sentiment, owner, queues):
    """Between a worker popping a job off its queue and marking it started, RQ still says QUEUED: seen on every
    noise scan a new user started (the page said "Redis lost it" for its first second)."""
    queue = django_rq.get_queue("training", commit_mode="auto")
    job = queue.enqueue("training.runs.jobs.runs_sweep_job", job_id="train-popped")
    queue.remove(job)
    assert job.get_status() == JobStatus.QUEUED
    assert core_queues.queue_place("training", "train-popped").state == core_queues.STARTING
    assert core_queues.job_pending("train-popped", queue.connection)  # not requeued while a worker may start it
    # Still there a minute later: its worker died in that gap (or the queue key was lost). Missing, and requeued.
    job.enqueued_at = job.enqueued_at - dt.timedelta(seconds=core_queues.POPPED_GRACE_SECONDS + 1)
    job.save()
    assert core_queues.queue_place("training", "train-popped").state == core_queues.MISSING
    assert not core_queues.job_pending("train-popped", queue.connection)


def test_a_queued_prediction_batch_and_import_show_their_place(
    world, client, queues, django_capture_on_commit_callbacks
):
    owner = world.users["owner"]
    _enqueue_other("training", "a-run-first")
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.prediction_batch_start(run=world.done, user=owner, scope=PredictionScope.UNLABELLED)
    place = selectors.prediction_batch_queue_place(batch)
    assert place is not None and place.ahead == 1 and place.queue == "training"
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    assert "Queued — 1 job ahead of it in the training queue" in page
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(reverse("api-prediction-batch", args=[world.project.pk, world.done.pk, batch.pk])).json()
    assert body["queue_position"] == 1 and body["progress"]["eta_s"] is None

    job = ImportJob.objects.create(
        project=world.project, created_by=owner, file_name="big.jsonl", file_path="x", file_format="jsonl"
    )
    imports = django_rq.get_queue("imports", commit_mode="auto")
    imports.empty()
    _enqueue_other("imports", "an-import-first")
    imports.enqueue("annotation.imports.jobs.import_job", job.pk, job_id=import_services.job_rq_id(job.pk))
    fragment = client.get(reverse("import-detail", args=[world.project.pk, job.pk]), headers={"HX-Request": "true"})
    assert "Queued — 1 job ahead of it in the imports queue" in fragment.content.decode()
    body = api.get(reverse("api-import-detail", args=[world.project.pk, job.pk])).json()
    assert body["queue_position"] == 1 and body["queue"]["name"] == "imports"
    imports.empty()


# --- progress after training --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_evaluation_reports_its_own_progress_and_eta_never_the_training_eta_of_zero(sentiment, owner):
    run = fake_run(sentiment, owner, status=RunStatus.RUNNING)
    clock = Clock()
    callbacks = DatabaseCallbacks(run, clock=clock)
    callbacks.phase("training", total_steps=4)
    callbacks.on_progress({"step": 4, "total_steps": 4, "epoch": 1.0, "eta_s": 0.0, "elapsed_s": 8.0})
    run.refresh_from_db()
    assert run.progress["eta_s"] == 0.0 and selectors.run_progress_view(run)["eta"] == "0 s"

    evaluating = callbacks.phase_progress("evaluating", 200)
    run.refresh_from_db()
    view = selectors.run_progress_view(run)
    assert view["phase"] == "evaluating" and view["phase_total"] == 200 and view["phase_done"] == 0
    assert view["eta"] == "", "no rate yet: unknown, not the finished training's 0 s"
    assert run.progress["eta_s"] is None

    clock.now += 10.0
    evaluating.advance(40)  # 4 items/s, 160 left: 40 s
    run.refresh_from_db()
    view = selectors.run_progress_view(run)
    assert view["phase_done"] == 40 and view["phase_percent"] == 20 and view["eta"] == "40 s"

    clock.now += 0.2
    evaluating.advance(8)  # throttled: under a second since the last write
    run.refresh_from_db()
    assert run.progress["phase_done"] == 40
    clock.now += 1.0
    evaluating.advance(2)
    run.refresh_from_db()
    assert run.progress["phase_done"] == 50

    callbacks.phase("saving")
    run.refresh_from_db()
    assert "phase_done" not in run.progress and selectors.run_progress_view(run)["eta"] == ""


def test_the_live_panel_shows_the_evaluation_progress_and_its_eta(sentiment, owner, client):
    run = fake_run(sentiment, owner, status=RunStatus.RUNNING, progress={
        "phase": "evaluating", "step": 10, "total_steps": 10, "eta_s": None,
        "phase_done": 30, "phase_total": 120, "phase_unit": "items", "phase_eta_s": 95.0,
    })
    client.force_login(owner)
    html = client.get(reverse("run-detail", args=[sentiment.project_id, run.pk]), headers={"HX-Request": "true"})
    html = html.content.decode()
    assert "Evaluating: 30 of 120 items · ETA 1 min 35 s" in html and 'aria-valuenow="25"' in html
    assert ">0 s<" not in html


def test_a_running_prediction_batch_has_an_eta_from_its_own_rate(world):
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    batch = PredictionBatch(
        run=world.done, scope=PredictionScope.TEST, status=PredictionStatus.RUNNING, total=100, done=40, written=30,
        started_at=now - dt.timedelta(seconds=15),
    )
    figures = selectors.prediction_batch_progress(batch, now=now)
    # 30 written in 15 s (the 10 that existed took no time): 2 items/s, 60 left
    assert figures["items_per_s"] == 2.0 and figures["eta_s"] == 30.0 and figures["eta"] == "30 s"
    assert figures["percent"] == 40


# --- preconditions before enqueueing ------------------------------------------------------------------------


def _one_label_snapshot(owner):
    project = project_create(owner=owner, name="All spam", labels=["spam", "ham"])
    items = add_items(project, [f"buy now {i}" for i in range(20)])
    approve(items, [{"label": "spam"}] * 20)
    return snapshot_create(project=project, user=owner, name="v1")


def test_a_run_on_a_snapshot_with_one_train_label_is_refused_before_anything_is_queued(owner, client, queues):
    snapshot = _one_label_snapshot(owner)
    with pytest.raises(ServiceError) as exc:
        services.run_start(snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC)
    assert "one label only ('spam')" in exc.value.message and exc.value.field == "snapshot"
    assert not TrainingRun.objects.exists() and len(queues["training"]) == 0

    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(
        reverse("api-run-list", args=[snapshot.project_id]),
        {"snapshot_id": snapshot.pk, "spec": TINY_BERT_SPEC},
        format="json",
    )
    assert response.status_code == 400 and "at least 2 labels" in response.json()["detail"]

    client.force_login(owner)
    form = client.get(reverse("run-create", args=[snapshot.project_id, snapshot.pk])).content.decode()
    assert 'id="run-start" disabled' in form and "Not yet: " in form and "at least 2 labels" in form
    posted = client.post(reverse("run-create", args=[snapshot.project_id, snapshot.pk]), TINY_BERT_SPEC)
    assert posted.status_code == 400 and "at least 2 labels" in posted.content.decode()
    assert not TrainingRun.objects.exists() and len(queues["training"]) == 0


def test_predict_is_refused_while_a_batch_is_active_and_the_button_says_why(world, client, queues):
    owner = world.users["owner"]
    PredictionBatch.objects.create(run=world.done, scope=PredictionScope.UNLABELLED, created_by=owner)
    with pytest.raises(ServiceError) as exc:
        services.prediction_batch_start(run=world.done, user=owner, scope=PredictionScope.TEST)
    assert exc.value.message == services.PREDICTIONS_ACTIVE and len(queues["training"]) == 0
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    assert 'id="predict-start" disabled' in page and services.PREDICTIONS_ACTIVE in page


def test_a_scope_with_nothing_to_predict_is_disabled_and_refused(world, client, queues):
    owner = world.users["owner"]
    scopes = dict((value, missing) for value, _, missing in selectors.prediction_scope_choices(run=world.done))
    assert scopes[PredictionScope.UNLABELLED] == 4
    api = APIClient()
    api.force_authenticate(owner)
    empty_project_run = world.done
    from annotation.models import Item

    Item.objects.filter(project=world.project).update(status="approved")
    response = api.post(
        reverse("api-prediction-batch-list", args=[world.project.pk, empty_project_run.pk]),
        {"scope": PredictionScope.UNLABELLED},
        format="json",
    )
    assert response.status_code == 400 and response.json()["detail"].startswith("Nothing to predict")
    assert response.json()["field"] == "scope"
    assert PredictionBatch.objects.filter(run=world.done).count() == 1 and len(queues["training"]) == 0
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    assert re.search(r'<option value="unlabelled" disabled>[^<]*nothing to predict', page)



def test_the_sweep_gives_queued_batches_and_scans_whose_job_redis_lost_their_job_again(
    world, queues, django_capture_on_commit_callbacks
):
    """So "no longer in the queue (Redis lost it); it is queued again soon" holds for every kind of job."""
    import datetime as dt

    from django.utils import timezone

    from annotation.models import NoiseScan
    from training.runs.jobs import runs_sweep_job

    owner = world.users["owner"]
    old = timezone.now() - dt.timedelta(hours=1)
    batch = PredictionBatch.objects.create(run=world.done, scope=PredictionScope.UNLABELLED, created_by=owner)
    scan = NoiseScan.objects.create(project=world.project, created_by=owner)
    PredictionBatch.objects.filter(pk=batch.pk).update(created_at=old)
    NoiseScan.objects.filter(pk=scan.pk).update(created_at=old)
    quality = django_rq.get_queue("quality")
    quality.empty()
    assert selectors.prediction_batch_queue_place(batch).state == core_queues.MISSING

    with django_capture_on_commit_callbacks(execute=True):
        runs_sweep_job()

    assert selectors.prediction_batch_queue_place(batch).state == core_queues.WAITING
    scan.refresh_from_db()
    assert quality_services.noise_scan_queue_place(scan).state == core_queues.WAITING
    with django_capture_on_commit_callbacks(execute=True):
        runs_sweep_job()  # a second sweep finds their jobs pending and adds none
    assert len(queues["training"]) == 1 and len(quality) == 1
    quality.empty()


def test_a_job_next_in_line_says_when_it_waits_for_a_busy_worker(queues, monkeypatch):
    """A tester saw "0 jobs ahead of it" on a scan that did not start: the training worker was busy with a run."""
    from rq.worker import Worker, WorkerStatus

    queue = queues["training"]
    queue.enqueue("training.runs.jobs.runs_sweep_job", job_id="next-in-line")
    worker = Worker([queue], connection=queue.connection, name=f"busy-test-worker-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    # RQ's registry still counts a killed worker (its record expired), which Worker.all leaves out: only the live one
    # is asked; and only this one, whatever else a shared Redis lists
    monkeypatch.setattr(core_queues.Worker, "count", classmethod(lambda cls, **kwargs: 2))
    monkeypatch.setattr(
        core_queues.Worker, "all", classmethod(lambda cls, **kwargs: [Worker.find_by_key(worker.key, queue.connection)])
    )
    try:
        worker.set_state(WorkerStatus.BUSY)
        place = core_queues.queue_place("training", "next-in-line")
        assert (place.ahead, place.workers, place.busy) == (0, 1, 1)
        assert place.text == (
            "Queued — next in the training queue; its worker is busy with another job, and it starts when that ends"
        )
        worker.set_state(WorkerStatus.IDLE)
        assert core_queues.queue_place("training", "next-in-line").text == "Queued — next in the training queue"
    finally:
        worker.register_death()
    three = core_queues.QueuePlace("training", "waiting", ahead=0, workers=3, busy=3).text
    assert three.endswith("; all 3 of its workers are busy with other jobs, and it starts when one is free")
    two = core_queues.QueuePlace("training", "waiting", ahead=0, workers=2, busy=2).text
    assert two.endswith("; both of its workers are busy with other jobs, and it starts when one is free")
    assert core_queues.QueuePlace("training", "waiting", ahead=0, workers=2, busy=1).text == (
        "Queued — next in the training queue"
    )
    assert core_queues.QueuePlace("training", "waiting", ahead=2, workers=3).text == (
        "Queued — 2 jobs ahead of it in the training queue"
    )
