"""Writes for explanations: ask for one (cached per run and text), claim, finish or fail it; the sweep's part.

Asking twice for the same output, or for two items with the same text, gives the same row: the unique (run,
text hash) constraint makes the second ask find the first. A failed explanation is asked again by the same
call; one whose job Redis lost is enqueued again by the every-minute sweep. Jobs are enqueued on commit with a
deterministic id.
"""

from __future__ import annotations

import datetime as dt
import logging

import django_rq
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job

from core.errors import ServiceError
from training.explanations import selectors
from training.models import Explanation, ExplanationStatus, ModelOutput, RunStatus
from training.runs.selectors import run_artifact_path
from training.spec import (
    EXPLAIN_INTEGRATED_GRADIENTS,
    EXPLAIN_RESPONSE_LOGPROBS,
    EXPLAIN_SPAN_INTEGRATED_GRADIENTS,
    TASK_CLASSIFICATION,
    TASK_SPANS,
)

NO_MODEL = "This run has no saved model to explain its outputs with."


ABANDONED = "abandoned: the worker stopped before the explanation was done; ask for it again"


# An explanation job runs one text: a few seconds on a CPU for MiniLM, far less on a GPU.
JOB_TIMEOUT_S = 600


PENDING = ("queued", "scheduled", "started", "deferred")


logger = logging.getLogger(__name__)


def _enqueue(explanation_id: int) -> None:
    """Enqueue the job; with Redis unreachable the row stays queued (the page says so) and the sweep enqueues it
    later. Never runs the job inline."""
    try:
        django_rq.get_queue(selectors.EXPLANATIONS_QUEUE).enqueue(
            "training.explanations.jobs.explanation_job",
            explanation_id,
            job_id=selectors.explanation_job_id(explanation_id),
            job_timeout=JOB_TIMEOUT_S,
        )
    except (RedisError, OSError) as exc:
        logger.warning("explanation %s not enqueued, the sweep will retry: %r", explanation_id, exc)


def _job_pending(explanation_id: int) -> bool:
    """Whether the job is in Redis and still to run; True when Redis cannot be asked (never enqueue blindly)."""
    try:
        queue = django_rq.get_queue(selectors.EXPLANATIONS_QUEUE)
        job = Job.fetch(selectors.explanation_job_id(explanation_id), connection=queue.connection)
    except NoSuchJobError:
        return False
    except (RedisError, OSError):
        return True
    return job.get_status(refresh=False) in PENDING


# How each task's outputs are explained (training/ml/explain.py); generation is the rest.
METHODS = {TASK_CLASSIFICATION: EXPLAIN_INTEGRATED_GRADIENTS, TASK_SPANS: EXPLAIN_SPAN_INTEGRATED_GRADIENTS}


def explanation_request(*, output: ModelOutput, user: User) -> Explanation:
    """The output's explanation: the cached one, or a new one queued (again, when it had failed). A queued one
    whose job Redis lost is left to the sweep, which enqueues it again (never twice from here)."""
    run = output.run
    if run.status not in (RunStatus.SUCCEEDED, RunStatus.CANCELLED) or run_artifact_path(run) is None:
        raise ServiceError(NO_MODEL)
    key = selectors.explanation_key(output)
    method = METHODS.get(run.task, EXPLAIN_RESPONSE_LOGPROBS)
    try:
        with transaction.atomic():
            explanation, created = Explanation.objects.get_or_create(
                run=run, text_hash=key, defaults={"item": output.item, "method": method, "requested_by": user}
            )
            if created:
                transaction.on_commit(lambda: _enqueue(explanation.pk))
                return explanation
    except IntegrityError:  # another request created it between our read and our insert
        explanation = Explanation.objects.get(run=run, text_hash=key)
    if explanation.status == ExplanationStatus.FAILED:
        if Explanation.objects.filter(pk=explanation.pk, status=ExplanationStatus.FAILED).update(
            status=ExplanationStatus.QUEUED, error="", requested_by=user, started_at=None, finished_at=None
        ):
            transaction.on_commit(lambda: _enqueue(explanation.pk))
        explanation.refresh_from_db()
    return explanation


def explanation_claim(*, explanation_id: int) -> Explanation | None:
    """queued → running; None when another delivery of the job claimed it first."""
    if not Explanation.objects.filter(pk=explanation_id, status=ExplanationStatus.QUEUED).update(
        status=ExplanationStatus.RUNNING, started_at=timezone.now()
    ):
        return None
    return Explanation.objects.select_related("run", "run__project", "item").get(pk=explanation_id)


def explanation_finish(*, explanation: Explanation, result: dict) -> None:
    Explanation.objects.filter(pk=explanation.pk, status=ExplanationStatus.RUNNING).update(
        status=ExplanationStatus.SUCCEEDED, result=result, finished_at=timezone.now()
    )


def explanation_fail(*, explanation: Explanation, error: str) -> None:
    Explanation.objects.filter(pk=explanation.pk, status=ExplanationStatus.RUNNING).update(
        status=ExplanationStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def explanations_sweep() -> tuple[list[int], list[int]]:
    """Fail explanations running past their job's timeout (their worker died); requeue queued ones whose job
    Redis lost. Returns (failed ids, requeued ids)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=JOB_TIMEOUT_S + settings.LABELLOOP_RUN_STALE_AFTER_S)
    running = Explanation.objects.filter(status=ExplanationStatus.RUNNING, started_at__lt=stale)
    failed = list(running.values_list("pk", flat=True))
    running.filter(pk__in=failed).update(status=ExplanationStatus.FAILED, error=ABANDONED, finished_at=now)
    cutoff = now - dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    queued = Explanation.objects.filter(status=ExplanationStatus.QUEUED, created_at__lt=cutoff)
    lost = [pk for pk in queued.values_list("pk", flat=True) if not _job_pending(pk)]
    for pk in lost:
        _enqueue(pk)
    return failed, lost
