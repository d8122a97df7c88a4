"""RQ on JSON: every queue writes JSON, every worker reads JSON, and what the jobs carry is plain JSON."""

from __future__ import annotations

import json
import zlib
from io import BytesIO

import django_rq
from django.conf import settings
from django.core.management import call_command
from rq.serializers import JSONSerializer

from annotation.imports import services as imports
from core.queues import JSON_SERIALIZER, JsonSimpleWorker, JsonWorker


def test_every_queue_is_configured_with_the_json_serializer():
    assert {name: q.get("SERIALIZER") for name, q in settings.RQ_QUEUES.items()} == dict.fromkeys(
        settings.RQ_QUEUES, JSON_SERIALIZER
    )
    for name in settings.RQ_QUEUES:
        assert django_rq.get_queue(name).serializer is JSONSerializer


def test_the_workers_read_json_whatever_they_are_told():
    """`rqworker` passes `--serializer` (pickle by default); the configured worker class ignores it."""
    assert settings.RQ["WORKER_CLASS"] == "core.queues.JsonWorker"
    worker = django_rq.get_worker("default", serializer="rq.serializers.DefaultSerializer")
    assert isinstance(worker, JsonWorker) and worker.serializer is JSONSerializer
    simple = django_rq.get_worker("default", worker_class=JsonSimpleWorker)
    assert simple.serializer is JSONSerializer


def test_a_job_enqueued_by_a_service_is_stored_as_json(project, owner, django_capture_on_commit_callbacks):
    """An import big enough for the queue: the job in Redis is JSON text (no pickle), args are ids."""
    count = settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS + 1
    rows = "".join(json.dumps({"text": f"row {n}"}) + "\n" for n in range(count))
    with django_capture_on_commit_callbacks(execute=True):
        job = imports.import_create(project=project, user=owner, file_name="many.jsonl", fileobj=BytesIO(rows.encode()))
    queue = django_rq.get_queue(imports.QUEUE_NAME)
    rq_job = queue.fetch_job(imports.job_rq_id(job.pk))
    assert rq_job is not None
    raw = zlib.decompress(queue.connection.hget(rq_job.key, "data"))  # RQ compresses what the serializer wrote
    func_name, instance, args, kwargs = json.loads(raw)
    assert (func_name, instance, args, kwargs) == (imports.JOB_FUNCTION, None, [job.pk], {})
    django_rq.get_worker(imports.QUEUE_NAME, worker_class=JsonSimpleWorker).work(burst=True)
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_rqworker_command_uses_the_json_worker(monkeypatch):
    seen = {}

    def work(self, **kwargs):
        seen["worker"] = self

    monkeypatch.setattr(JsonWorker, "work", work)
    call_command("rqworker", "default", "--burst")
    assert isinstance(seen["worker"], JsonWorker) and seen["worker"].serializer is JSONSerializer
