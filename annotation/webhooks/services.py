"""Writes of webhooks: endpoints, the events other areas emit, and each delivery's attempts.

Areas emit events from their own services (`event_emit`, `items_approved`); nothing is sent inside a
request: the fan-out runs after the transaction commits (nothing on a rollback), writes one delivery row
per subscribed endpoint and queues an RQ job on the "default" queue for each. A job makes one attempt;
a failed attempt is queued again after the next delay of settings.LABELLOOP_WEBHOOKS_RETRY_DELAYS (the
RQ scheduler moves it back), and an endpoint whose deliveries keep failing is disabled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from annotation.models import (
    DeliveryStatus,
    Item,
    ItemStatus,
    Project,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from annotation.webhooks import transport
from core.errors import ServiceError

logger = logging.getLogger(__name__)

QUEUE = "default"
JOB_FUNCTION = "annotation.webhooks.jobs.webhook_deliver_job"
JOB_TIMEOUT_S = 60
MAX_ENDPOINTS = 20
# One items.approved event names at most this many items; a bigger batch is split into several events.
APPROVED_IDS_PER_EVENT = 1000

SUBSCRIBABLE = [event for event in WebhookEvent.values if event != WebhookEvent.PING]
TOO_MANY = f"A project has at most {MAX_ENDPOINTS} webhook endpoints."
NO_EVENTS = "Choose at least one event."
UNKNOWN_EVENT = "{event!r} is not an event; use: {allowed}."
QUEUE_UNAVAILABLE = "The job queue (Redis) was unavailable; redeliver it once the queue is back."
ENDPOINT_DISABLED = "Not sent: the endpoint was disabled."
DISABLED_AFTER = "Disabled on {when} after {count} deliveries in a row failed; the last: {error}"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str) -> str:
    """The URL, stripped, if a webhook may go there now; a ServiceError on field "url" otherwise."""
    url = url.strip()
    try:
        target = transport.parse_url(url)
        transport.resolve(target, allow_private=settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE)
    except transport.AddressRefused as exc:
        raise ServiceError(str(exc), field="url") from None
    return url


def _check_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    for event in chosen:
        if event not in SUBSCRIBABLE:
            raise ServiceError(UNKNOWN_EVENT.format(event=event, allowed=", ".join(SUBSCRIBABLE)), field="events")
    if not chosen:
        raise ServiceError(NO_EVENTS, field="events")
    return [event for event in SUBSCRIBABLE if event in chosen]


def endpoint_create(
    *, project: Project, user: User, url: str, events: Iterable[str], description: str = ""
) -> WebhookEndpoint:
    url = check_url(url)
    chosen = _check_events(events)
    if WebhookEndpoint.objects.filter(project=project).count() >= MAX_ENDPOINTS:
        raise ServiceError(TOO_MANY)
    return WebhookEndpoint.objects.create(
        project=project, url=url, events=chosen, description=description.strip(), secret=new_secret(), created_by=user
    )


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    rotate_secret: bool = False,
) -> WebhookEndpoint:
    """Change what was given; enabling again clears the failure count and the reason it was disabled."""
    if url is not None and url.strip() != endpoint.url:
        endpoint.url = check_url(url)
    if events is not None:
        endpoint.events = _check_events(events)
    if description is not None:
        endpoint.description = description.strip()
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.failure_streak = 0
        endpoint.disabled_reason = "" if enabled else endpoint.disabled_reason
    if rotate_secret:
        endpoint.secret = new_secret()
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- Events ---------------------------------------------------------------------------------------


def _body(*, event_id: uuid.UUID, event: str, project: Project, data: Mapping[str, Any]) -> str:
    document = {
        "id": str(event_id),
        "event": event,
        "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "project": {"id": project.pk, "name": project.name},
        "data": data,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def event_emit(*, project_id: int, event: str, data: Mapping[str, Any]) -> None:
    """Send `event` to the project's endpoints once the current transaction commits (at once outside one).

    A failure here is logged, never raised: a webhook cannot undo or fail what the caller did.
    """
    transaction.on_commit(_safely(partial(_fan_out, project_id=project_id, event=event, data=dict(data))))


def _fan_out(*, project_id: int, event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(project_id=project_id, enabled=True).select_related("project")
        if event in endpoint.events
    ]
    if not endpoints:
        return []
    event_id = uuid.uuid4()
    body = _body(event_id=event_id, event=event, project=endpoints[0].project, data=data)
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, event_id=event_id, event=event, body=body) for endpoint in endpoints
    )
    for delivery in deliveries:
        _enqueue(delivery_id=delivery.pk)
    return deliveries


class _ApprovedBatch:
    """The items one transaction approved in a project: sent as one items.approved event when it commits."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.item_ids: list[int] = []

    def __call__(self) -> None:
        # Only those still approved: an item approved in a savepoint that rolled back is not one.
        ids = sorted(
            set(Item.objects.filter(pk__in=self.item_ids, status=ItemStatus.APPROVED).values_list("pk", flat=True))
        )
        for start in range(0, len(ids), APPROVED_IDS_PER_EVENT):
            chunk = ids[start : start + APPROVED_IDS_PER_EVENT]
            _fan_out(
                project_id=self.project_id,
                event=WebhookEvent.ITEMS_APPROVED,
                data={"item_ids": chunk, "count": len(chunk)},
            )


def items_approved(*, project_id: int, item_ids: Iterable[int]) -> None:
    """Record items as approved: one items.approved event per project and transaction, after it commits.

    Nothing is queued unless the project has an endpoint subscribed, so approving stays cheap: one query per
    transaction (the first approval in it), none for the rest of a bulk operation.
    """
    ids = list(item_ids)
    if not ids:
        return
    if connection.in_atomic_block:
        for entry in connection.run_on_commit:  # (savepoint ids, callback, robust) since Django 4.2
            batch = getattr(entry[1], "approved_batch", None)
            if isinstance(batch, _ApprovedBatch) and batch.project_id == project_id:
                batch.item_ids.extend(ids)
                return
    if not _subscribed(project_id=project_id, event=WebhookEvent.ITEMS_APPROVED):
        return
    batch = _ApprovedBatch(project_id)
    batch.item_ids.extend(ids)
    callback = _safely(batch)
    callback.approved_batch = batch  # type: ignore[attr-defined]
    transaction.on_commit(callback)


def _safely(work: Callable[[], Any]) -> Callable[[], None]:
    """`work` for on_commit: an error is logged, never raised into the code that committed."""

    def run() -> None:
        try:
            work()
        except Exception:
            logger.exception("webhook fan-out failed")

    return run


def _subscribed(*, project_id: int, event: str) -> bool:
    return any(
        event in events
        for events in WebhookEndpoint.objects.filter(project_id=project_id, enabled=True).values_list(
            "events", flat=True
        )
    )


# --- Deliveries -----------------------------------------------------------------------------------


def _enqueue(*, delivery_id: int, delay_s: float = 0) -> None:
    """Queue one attempt; with Redis down the delivery is marked failed, saying so, and can be redelivered."""
    try:
        queue = django_rq.get_queue(QUEUE, commit_mode="auto")
        if delay_s > 0:
            queue.enqueue_in(dt.timedelta(seconds=delay_s), JOB_FUNCTION, delivery_id, job_timeout=JOB_TIMEOUT_S)
        else:
            queue.enqueue(JOB_FUNCTION, delivery_id, job_timeout=JOB_TIMEOUT_S)
    except RedisError:
        logger.exception("could not enqueue webhook delivery %s", delivery_id)
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED, error=QUEUE_UNAVAILABLE, next_attempt_at=None
        )


def _manual_delivery(*, endpoint: WebhookEndpoint, event_id: uuid.UUID, event: str, body: str, **fields: Any):
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=event_id, event=event, body=body, manual=True, **fields
    )
    transaction.on_commit(_safely(partial(_enqueue, delivery_id=delivery.pk)))
    return delivery


def send_test_event(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `ping` event to this endpoint (enabled or not), to check it receives and verifies deliveries."""
    event_id = uuid.uuid4()
    data = {"message": "A test event from Labelloop.", "endpoint_id": endpoint.pk}
    body = _body(event_id=event_id, event=WebhookEvent.PING, project=endpoint.project, data=data)
    return _manual_delivery(endpoint=endpoint, event_id=event_id, event=WebhookEvent.PING, body=body)


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event (same id and body, a fresh signature and timestamp) again, as a new delivery."""
    return _manual_delivery(
        endpoint=delivery.endpoint,
        event_id=delivery.event_id,
        event=delivery.event,
        body=delivery.body,
        redelivery_of=delivery,
    )


def _headers(delivery: WebhookDelivery, secret: str) -> dict[str, str]:
    timestamp = int(timezone.now().timestamp())
    return {
        "Content-Type": "application/json",
        transport.EVENT_HEADER: delivery.event,
        transport.DELIVERY_HEADER: str(delivery.delivery_id),
        transport.TIMESTAMP_HEADER: str(timestamp),
        transport.SIGNATURE_HEADER: transport.sign(secret, timestamp, delivery.body.encode()),
    }


def delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt (the RQ job): record the answer, then succeed, schedule the retry, or fail for good."""
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, last_attempt_at=timezone.now())
    if not claimed:
        return None  # sent already (a duplicate job), or deleted with its endpoint
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled and not delivery.manual:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED, error=ENDPOINT_DISABLED, next_attempt_at=None
        )
        delivery.refresh_from_db()
        return delivery
    outcome = transport.post(
        endpoint.url,
        delivery.body.encode(),
        _headers(delivery, endpoint.secret),
        allow_private=settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE,
        connect_timeout=settings.LABELLOOP_WEBHOOKS_CONNECT_TIMEOUT_S,
        read_timeout=settings.LABELLOOP_WEBHOOKS_READ_TIMEOUT_S,
    )
    error = outcome.error or ("" if outcome.ok else f"The endpoint answered {outcome.status}.")
    fields: dict[str, Any] = {
        "response_status": outcome.status,
        "response_excerpt": outcome.excerpt,
        "duration_ms": outcome.duration_ms,
        "error": error[:500],
        "next_attempt_at": None,
    }
    delays = list(settings.LABELLOOP_WEBHOOKS_RETRY_DELAYS)
    if outcome.ok:
        fields["status"] = DeliveryStatus.SUCCEEDED
    elif delivery.attempts <= len(delays) and not delivery.manual:
        delay = delays[delivery.attempts - 1]
        fields["status"] = DeliveryStatus.RETRYING
        fields["next_attempt_at"] = timezone.now() + dt.timedelta(seconds=delay)
    else:
        fields["status"] = DeliveryStatus.FAILED
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    if fields["status"] == DeliveryStatus.RETRYING:
        _enqueue(delivery_id=delivery_id, delay_s=delays[delivery.attempts - 1])
    elif outcome.ok:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).exclude(failure_streak=0).update(failure_streak=0)
    elif not delivery.manual:
        _count_failure(endpoint=endpoint, error=fields["error"])
    delivery.refresh_from_db()
    return delivery


def _count_failure(*, endpoint: WebhookEndpoint, error: str) -> None:
    """One more delivery failed for good; at settings.LABELLOOP_WEBHOOKS_DISABLE_AFTER in a row, disable it."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_streak=F("failure_streak") + 1)
    limit = settings.LABELLOOP_WEBHOOKS_DISABLE_AFTER
    reason = DISABLED_AFTER.format(when=timezone.now().strftime("%Y-%m-%d %H:%M UTC"), count=limit, error=error)
    WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True, failure_streak__gte=limit).update(
        enabled=False, disabled_reason=reason[:300]
    )
