"""RQ on JSON, never pickle: what the queues write and what the workers read.

RQ's default serializer is pickle, so anyone who can write to Redis could make a worker run code by
unpickling a crafted job. Every queue in settings.RQ_QUEUES names JSON_SERIALIZER, and the worker
classes here read with it whatever `rqworker --serializer` says (settings.RQ["WORKER_CLASS"] makes
`manage.py rqworker` use JsonWorker). A job's arguments are therefore plain JSON values (ids), and its
function is named by its dotted path; jobs return nothing, their outcome lives in the database.

`queue_place` says where a queued job stands, from RQ's own queue (`Queue.get_job_position`, an LPOS on the queue's
list): how many jobs are ahead of it, how many workers serve that queue and, once it is next, how many of them are
busy with another job (what it then waits for). The pages and the API show it for
every queued run, prediction batch, import and noise scan; the database row stays the truth about the job itself.

The forking worker also runs settings.LABELLOOP_WORKER_MAINTENANCE (dotted paths) with RQ's own maintenance: at
start and then every RQ maintenance interval while it waits for jobs. That is how the every-minute sweep comes back
after Redis lost its data: nothing else would schedule it again until the next run start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django_rq
from django.conf import settings
from django.utils.module_loading import import_string
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, Worker, WorkerStatus

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


PENDING_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


# A worker marks a job started within milliseconds of popping it off its queue; a job still QUEUED but in no queue
# this long after it was enqueued lost its place (a worker killed in that gap, a queue key lost): it is requeued.
POPPED_GRACE_SECONDS = 60


def _queued_long_ago(job: Job) -> bool:
    """QUEUED and enqueued over POPPED_GRACE_SECONDS ago (in its queue or not: the caller knows or asks)."""
    if job.get_status(refresh=False) != JobStatus.QUEUED or job.enqueued_at is None:
        return False
    enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=dt.UTC)
    return (dt.datetime.now(dt.UTC) - enqueued).total_seconds() > POPPED_GRACE_SECONDS


def job_pending(job_id: str, connection: Any) -> bool:
    """True while RQ still holds job `job_id` to run (queued, scheduled, deferred or started)."""
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=False) not in PENDING_JOB_STATUSES:
        return False
    if not _queued_long_ago(job):
        return True
    from rq import Queue

    return Queue(job.origin, connection=connection).get_job_position(job.id) is not None  # else popped, lost


def requeue_lost(
    queued_ids: Any, *, queue: str, job_id: Callable[[int], str], enqueue: Callable[[int], None]
) -> list[int]:
    """Enqueue again each of `queued_ids` (ids of rows still queued) whose RQ job is gone from Redis (flushed, or
    down at commit), so a queued row never waits for a job that no longer exists; the ids requeued."""
    connection = django_rq.get_queue(queue).connection
    lost = [pk for pk in queued_ids if not job_pending(job_id(pk), connection)]
    for pk in lost:
        enqueue(pk)
    return lost


# Where a queued job stands; `state` says which of the texts below applies.
WAITING, STARTING, SCHEDULED, MISSING, UNREACHABLE = "waiting", "starting", "scheduled", "missing", "unreachable"


@dataclass(frozen=True)
class QueuePlace:
    """A queued job's place: jobs ahead of it in its queue (None unless waiting), the workers serving the queue, and
    how many of them are busy with a job (counted only when it is next: then that is what it waits for)."""

    queue: str
    state: str
    ahead: int | None = None
    workers: int | None = None
    busy: int | None = None

    @property
    def text(self) -> str:
        if self.state == WAITING:
            jobs = "job" if self.ahead == 1 else "jobs"
            text = f"Queued — {self.ahead} {jobs} ahead of it in the {self.queue} queue"
            if self.ahead == 0:
                text = f"Queued — next in the {self.queue} queue"
                if self.workers and self.busy is not None and self.busy >= self.workers:
                    if self.workers == 1:
                        text += "; its worker is busy with another job, and it starts when that ends"
                    else:
                        who = "both" if self.workers == 2 else f"all {self.workers}"
                        text += f"; {who} of its workers are busy with other jobs, and it starts when one is free"
            if self.workers == 0:
                text += f"; no worker serves the {self.queue} queue now (start one: docs/OPERATIONS.md)"
            return text
        if self.state == STARTING:
            return f"Queued — a worker of the {self.queue} queue is starting it"
        if self.state == SCHEDULED:
            return f"Queued — scheduled to enter the {self.queue} queue"
        if self.state == MISSING:
            return f"Queued — its job is no longer in the {self.queue} queue (Redis lost it); it is queued again soon"
        return "Queued — the job queue cannot be reached right now"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.queue, "state": self.state, "position": self.ahead, "workers": self.workers,
                "busy": self.busy, "message": self.text}


def queue_place(queue_name: str, job_id: str) -> QueuePlace:
    """Where job `job_id` stands in queue `queue_name`; never raises for a job gone from Redis or Redis down."""
    try:
        queue = django_rq.get_queue(queue_name)
        ahead = queue.get_job_position(job_id)
        if ahead is not None:
            workers = Worker.count(queue=queue)
            busy = None
            if ahead == 0 and workers:  # next: whether it waits for a worker to finish another job
                live = Worker.all(queue=queue)  # leaves out workers whose record expired (killed), which count() keeps
                workers, busy = len(live), sum(worker.get_state() == WorkerStatus.BUSY for worker in live)
            return QueuePlace(queue_name, WAITING, ahead=int(ahead), workers=workers, busy=busy)
        try:
            job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return QueuePlace(queue_name, MISSING)
        status = job.get_status()
        if _queued_long_ago(job):  # and in no queue (`ahead` above): popped long ago and lost
            return QueuePlace(queue_name, MISSING)
    except (RedisError, OSError):
        return QueuePlace(queue_name, UNREACHABLE)
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return QueuePlace(queue_name, SCHEDULED)
    if status in (JobStatus.STARTED, JobStatus.QUEUED):
        # QUEUED but in no queue, lately: a worker has popped it and not yet marked it started (`requeue_lost` leaves
        # it alone too); past POPPED_GRACE_SECONDS it is missing (above) and requeued.
        return QueuePlace(queue_name, STARTING)
    return QueuePlace(queue_name, MISSING)  # finished or failed in Redis while the row still says queued
