"""Webhook deliveries end to end: a real local receiver, the RQ worker, retries with backoff, the log, the
auto-disable, and events fired once after commit (never on a rollback) from the services that own them."""

from __future__ import annotations

import datetime as dt
import json
import time

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone

from annotation.models import DeliveryStatus, Item, ItemStatus, WebhookDelivery, WebhookEvent
from annotation.webhooks import services, transport
from annotation.webhooks.events import items_approved
from core.errors import ServiceError
from core.queues import JsonSimpleWorker
from tests.annotation.webhooks.receiver import receiver

ALL = services.SUBSCRIBABLE


@pytest.fixture
def capture_on_commit(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def queue():
    q = django_rq.get_queue(services.QUEUE)
    q.empty()
    for job_id in q.scheduled_job_registry.get_job_ids():
        q.scheduled_job_registry.remove(job_id)
    yield q
    q.empty()


def work(queue) -> None:
    django_rq.get_worker(services.QUEUE, worker_class=JsonSimpleWorker).work(burst=True)


def run_scheduled(queue) -> list[float]:
    """Move the retries RQ's scheduler would (each at its time) onto the queue; return their delays in seconds."""
    registry = queue.scheduled_job_registry
    delays = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        delays.append((registry.get_scheduled_time(job) - timezone.now()).total_seconds())
        registry.remove(job)
        queue.enqueue_job(job)
    return delays


def test_an_event_reaches_a_local_receiver_signed_and_is_logged(project, owner, queue, capture_on_commit):
    with receiver() as hook:
        endpoint = services.endpoint_create(project=project, user=owner, url=hook.url, events=ALL)
        with capture_on_commit(execute=True):
            services.event_emit(
                project_id=project.pk, event=WebhookEvent.SNAPSHOT_CREATED, data={"snapshot": {"id": 7}}
            )
        work(queue)
        assert len(hook.requests) == 1
        request = hook.requests[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    timestamp, signature = headers["x-labelloop-timestamp"], headers["x-labelloop-signature"]
    assert transport.verify(endpoint.secret, timestamp, request.body, signature)
    body = json.loads(request.body)
    assert body["event"] == "snapshot.created" and body["data"] == {"snapshot": {"id": 7}}
    assert body["project"] == {"id": project.pk, "name": project.name}
    assert headers["x-labelloop-event"] == "snapshot.created" and headers["content-type"] == "application/json"
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert str(delivery.event_id) == body["id"] and headers["x-labelloop-delivery"] == str(delivery.delivery_id)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.response_status == 200 and delivery.response_excerpt == '{"ok": true}'
    assert delivery.duration_ms is not None and delivery.error == ""


def test_a_500_is_retried_with_backoff_then_succeeds(project, owner, queue, settings):
    settings.LABELLOOP_WEBHOOKS_RETRY_DELAYS = [30, 120]
    with receiver() as hook:
        hook.statuses = [500, 503]
        hook.answer = b"x" * 10_000  # the log keeps a bounded excerpt
        endpoint = services.endpoint_create(project=project, user=owner, url=hook.url, events=ALL)
        delivery = services._fan_out(project_id=project.pk, event=WebhookEvent.RUN_FAILED, data={})[0]
        work(queue)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1
        assert delivery.response_status == 500 and len(delivery.response_excerpt) == transport.EXCERPT_BYTES
        assert delivery.error == "The endpoint answered 500."
        assert delivery.next_attempt_at > timezone.now() + dt.timedelta(seconds=25)
        assert 25 < run_scheduled(queue)[0] <= 30
        work(queue)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 2 and delivery.response_status == 503
        assert 115 < run_scheduled(queue)[0] <= 120  # the second wait is longer
        work(queue)
        assert len(hook.requests) == 3
        assert len({r.headers["X-Labelloop-Delivery"] for r in hook.requests}) == 1  # one delivery, three attempts
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3 and delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.failure_streak == 0


def test_an_endpoint_is_disabled_after_consecutive_failed_deliveries(project, owner, queue, settings):
    settings.LABELLOOP_WEBHOOKS_RETRY_DELAYS = []
    settings.LABELLOOP_WEBHOOKS_DISABLE_AFTER = 2
    with receiver() as hook:
        hook.statuses = [500, 500, 500]
        endpoint = services.endpoint_create(project=project, user=owner, url=hook.url, events=ALL)
        for _ in range(2):
            services._fan_out(project_id=project.pk, event=WebhookEvent.RUN_FAILED, data={})
            work(queue)
        endpoint.refresh_from_db()
        assert not endpoint.enabled and "2 deliveries in a row failed" in endpoint.disabled_reason
        assert services._fan_out(project_id=project.pk, event=WebhookEvent.RUN_FAILED, data={}) == []
        # A test event still goes (to check a fix), and enabling again clears the count.
        test = services.send_test_event(endpoint=endpoint)
        services.delivery_attempt(delivery_id=test.pk)
        assert len(hook.requests) == 3
    services.endpoint_update(endpoint=endpoint, enabled=True)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failure_streak == 0 and endpoint.disabled_reason == ""


def test_redelivery_sends_the_same_event_again_as_a_new_delivery(project, owner, queue):
    with receiver() as hook:
        hook.statuses = [410]
        endpoint = services.endpoint_create(project=project, user=owner, url=hook.url, events=ALL)
        first = services.send_test_event(endpoint=endpoint)
        services.delivery_attempt(delivery_id=first.pk)
        first.refresh_from_db()
        assert first.status == DeliveryStatus.FAILED  # a test event is not retried
        again = services.delivery_redeliver(delivery=first)
        services.delivery_attempt(delivery_id=again.pk)
        assert hook.requests[0].body == hook.requests[1].body
    again.refresh_from_db()
    assert again.status == DeliveryStatus.SUCCEEDED and again.event_id == first.event_id
    assert again.redelivery_of_id == first.pk and again.delivery_id != first.delivery_id


def test_private_addresses_are_refused_at_registration_and_at_delivery(project, owner, settings, monkeypatch):
    settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/", "http://[::1]/", "http://169.254.169.254/latest", "http://10.2.3.4/"):
        with pytest.raises(ServiceError) as refused:
            services.endpoint_create(project=project, user=owner, url=url, events=ALL)
        assert refused.value.field == "url"
    settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=ALL)
    settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = False  # the operator turned it off since
    delivery = services.send_test_event(endpoint=endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "loopback" in delivery.error
    assert delivery.response_status is None


def test_unknown_or_no_events_are_refused(project, owner):
    with pytest.raises(ServiceError, match="not an event"):
        services.endpoint_create(project=project, user=owner, url="http://127.0.0.1/", events=["ping"])
    with pytest.raises(ServiceError, match="at least one"):
        services.endpoint_create(project=project, user=owner, url="http://127.0.0.1/", events=[])


def test_events_are_sent_once_after_commit_and_never_on_rollback(project, owner, queue, capture_on_commit):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=ALL)
    with capture_on_commit(execute=True) as callbacks, transaction.atomic():
        services.event_emit(project_id=project.pk, event=WebhookEvent.ROUND_STARTED, data={})
        assert not WebhookDelivery.objects.exists()  # nothing before the commit
    assert len(callbacks) == 1 and WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    with capture_on_commit(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.event_emit(project_id=project.pk, event=WebhookEvent.ROUND_STARTED, data={})
                raise RuntimeError("the caller's work failed")
        except RuntimeError:
            pass
    assert WebhookDelivery.objects.count() == 1
    assert queue.count == 1


def test_a_bulk_approval_is_one_items_approved_event(project, owner, queue, capture_on_commit):
    endpoint = services.endpoint_create(
        project=project, user=owner, url="http://127.0.0.1:9/", events=[WebhookEvent.ITEMS_APPROVED]
    )
    items = list(Item.objects.filter(project=project).order_by("pk"))
    with capture_on_commit(execute=True), transaction.atomic():
        for item in items:  # what a bulk accept does: one approval after another in one transaction
            Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED)
            items_approved(project_id=project.pk, item_ids=[item.pk])
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    assert len(deliveries) == 1 and queue.count == 1
    body = json.loads(deliveries[0].body)
    assert body["data"] == {"item_ids": [i.pk for i in items], "count": len(items)}


def test_approvals_without_subscribers_queue_nothing(project, owner, queue, capture_on_commit):
    services.endpoint_create(
        project=project, user=owner, url="http://127.0.0.1:9/", events=[WebhookEvent.RUN_FAILED]
    )
    item = Item.objects.filter(project=project).first()
    with capture_on_commit(execute=True) as callbacks:
        items_approved(project_id=project.pk, item_ids=[item.pk])
    assert callbacks == [] and not WebhookDelivery.objects.exists()


def test_snapshot_and_review_services_fire_their_events(
    project, owner, annotator, annotator2, queue, capture_on_commit
):
    from annotation.annotate.services import annotation_submit, claim_next
    from annotation.datasets.services import snapshot_create
    from annotation.projects.selectors import label_list
    from tests.fixtures.people import acknowledge_guidelines

    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=ALL)
    acknowledge_guidelines(project, owner, annotator, annotator2)
    names = [label.name for label in label_list(project=project)]
    with capture_on_commit(execute=True):
        item = claim_next(annotator=annotator, project=project).item
        for user in (annotator, annotator2):
            assert claim_next(annotator=user, project=project).item == item
            annotation_submit(annotator=user, item=item, value={"label": names[0]}, label_names=names)
    item.refresh_from_db()
    approved = WebhookDelivery.objects.filter(endpoint=endpoint, event=WebhookEvent.ITEMS_APPROVED)
    if item.status == ItemStatus.APPROVED:  # unless sampled for an audit
        assert json.loads(approved.get().body)["data"]["item_ids"] == [item.pk]
    with capture_on_commit(execute=True):
        snapshot = snapshot_create(project=project, user=owner, name="first")
    sent = WebhookDelivery.objects.get(endpoint=endpoint, event=WebhookEvent.SNAPSHOT_CREATED)
    assert json.loads(sent.body)["data"]["snapshot"]["id"] == snapshot.pk


def test_an_emit_error_never_reaches_the_caller(project, owner, monkeypatch, capture_on_commit):
    services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=ALL)

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services.WebhookDelivery.objects, "bulk_create", broken)
    with capture_on_commit(execute=True):
        services.event_emit(project_id=project.pk, event=WebhookEvent.ROUND_STARTED, data={})
    assert not WebhookDelivery.objects.exists()


def test_a_slow_endpoint_times_out(project, owner, settings):
    import socket

    settings.LABELLOOP_WEBHOOKS_READ_TIMEOUT_S = 0.3
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        endpoint = services.endpoint_create(project=project, user=owner, url=url, events=ALL)
        delivery = services.send_test_event(endpoint=endpoint)
        started = time.monotonic()
        services.delivery_attempt(delivery_id=delivery.pk)
        assert time.monotonic() - started < 3
    finally:
        listener.close()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "Timed out" in delivery.error
