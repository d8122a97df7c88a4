"""RQ on JSON, never pickle: what the queues write and what the workers read.

RQ's default serializer is pickle, so anyone who can write to Redis could make a worker run code by
unpickling a crafted job. Every queue in settings.RQ_QUEUES names JSON_SERIALIZER, and the worker
classes here read with it whatever `rqworker --serializer` says (settings.RQ["WORKER_CLASS"] makes
`manage.py rqworker` use JsonWorker). A job's arguments are therefore plain JSON values (ids), and its
function is named by its dotted path; jobs return nothing, their outcome lives in the database.

The forking worker also runs settings.LABELLOOP_WORKER_MAINTENANCE (dotted paths) with RQ's own maintenance: at
start and then every RQ maintenance interval while it waits for jobs. That is how the every-minute sweep comes back
after Redis lost its data: nothing else would schedule it again until the next run start.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, Worker

JSON_SERIALIZER = "rq.serializers.JSONSerializer"


class JsonWorker(Worker):
    """The forking worker of `manage.py rqworker`, reading jobs as JSON."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        for path in settings.LABELLOOP_WORKER_MAINTENANCE:
            import_string(path)()


class JsonSimpleWorker(SimpleWorker):
    """The same in-process (no fork): what tests and burst runs use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)
