"""Each area's service emits its event once it commits: imports (succeeded, failed), training runs (succeeded,
failed, cancelled). Items approved and snapshots: test_services.py."""

from __future__ import annotations

import io
import json

import pytest

from annotation.imports.services import import_create
from annotation.models import WebhookDelivery, WebhookEvent
from annotation.webhooks import services
from tests.fixtures.runs import fake_run
from training.models import RunStatus
from training.runs.services import run_cancel, run_fail, run_finish


def _endpoint(project, owner):
    return services.endpoint_create(
        project=project, user=owner, url="http://127.0.0.1:9/", events=services.SUBSCRIBABLE
    )


@pytest.fixture
def endpoint(project, owner):
    return _endpoint(project, owner)


def _sent(endpoint, event: str) -> list[dict]:
    return [json.loads(d.body) for d in WebhookDelivery.objects.filter(endpoint=endpoint, event=event)]


def test_an_import_that_succeeds_or_fails_says_so(project, owner, endpoint, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = import_create(
            project=project, user=owner, file_name="ok.jsonl", fileobj=io.BytesIO(b'{"text": "a fresh one"}\n'),
            inline=True,
        )
        import_create(
            project=project, user=owner, file_name="bad.jsonl", fileobj=io.BytesIO(b'{"text": \n'), inline=True
        )
    [done] = _sent(endpoint, WebhookEvent.IMPORT_SUCCEEDED)
    assert done["data"]["import"]["id"] == job.pk and done["data"]["import"]["rows_imported"] == 1
    [failed] = _sent(endpoint, WebhookEvent.IMPORT_FAILED)
    assert failed["data"]["import"]["file_name"] == "bad.jsonl" and failed["data"]["import"]["error_count"] >= 1
    assert failed["data"]["import"]["errors"][0]["line"] == 1


def test_runs_that_end_say_how(sentiment, owner, django_capture_on_commit_callbacks, monkeypatch):
    from training.runs import services as run_services

    monkeypatch.setattr(run_services, "prediction_batch_after_run", lambda **kwargs: None)
    snapshot = sentiment
    endpoint = _endpoint(snapshot.project, owner)
    with django_capture_on_commit_callbacks(execute=True):
        ok = fake_run(snapshot, owner, status=RunStatus.RUNNING)
        run_finish(run=ok, status=RunStatus.SUCCEEDED, metrics={"accuracy": 0.9}, progress={}, artifact_dir=None,
                   message="done")
        broken = fake_run(snapshot, owner, status=RunStatus.RUNNING)
        run_fail(run=broken, error="CUDA out of memory")
        waiting = fake_run(snapshot, owner)
        run_cancel(run=waiting, user=owner)
    [succeeded] = _sent(endpoint, WebhookEvent.RUN_SUCCEEDED)
    assert succeeded["data"]["run"]["id"] == ok.pk and succeeded["data"]["run"]["metrics"] == {"accuracy": 0.9}
    [failed] = _sent(endpoint, WebhookEvent.RUN_FAILED)
    assert failed["data"]["run"]["error"] == "CUDA out of memory"
    [cancelled] = _sent(endpoint, WebhookEvent.RUN_CANCELLED)
    assert cancelled["data"]["run"]["id"] == waiting.pk


def test_starting_the_next_round_says_so(project, owner, endpoint, django_capture_on_commit_callbacks):
    from training.rounds.options import plan_options_parse
    from training.rounds.services import round_advance

    with django_capture_on_commit_callbacks(execute=True):
        result = round_advance(project=project, user=owner, options=plan_options_parse(project=project, data={}))
    [started] = _sent(endpoint, WebhookEvent.ROUND_STARTED)
    assert started["data"]["round"]["id"] == result.opened.pk and started["data"]["round"]["number"] == 2
    assert started["data"]["round"]["previous_round_id"] == result.closed.pk
