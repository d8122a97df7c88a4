"""RQ on JSON, never pickle: what the queues write and what the workers read.

RQ's default serializer is pickle, so anyone who can write to Redis could make a worker run code by
unpickling a crafted job. Every queue in settings.RQ_QUEUES names JSON_SERIALIZER, and the worker
classes here read with it whatever `rqworker --serializer` says (settings.RQ["WORKER_CLASS"] makes
`manage.py rqworker` use JsonWorker). A job's arguments are therefore plain JSON values (ids), and its
function is named by its dotted path; jobs return nothing, their outcome lives in the database.
"""

from __future__ import annotations

from typing import Any

from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, Worker

JSON_SERIALIZER = "rq.serializers.JSONSerializer"


class JsonWorker(Worker):
    """The forking worker of `manage.py rqworker`, reading jobs as JSON."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)


class JsonSimpleWorker(SimpleWorker):
    """The same in-process (no fork): what tests and burst runs use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)
