"""Tables of webhooks: the URLs an owner registers for a project's events, and every delivery to them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from annotation.models.projects import Project


class WebhookEvent(models.TextChoices):
    """What an endpoint can subscribe to; `ping` is the test event, sent only when an owner asks for it."""

    IMPORT_SUCCEEDED = "import.succeeded", "Import finished"
    IMPORT_FAILED = "import.failed", "Import failed"
    ITEMS_APPROVED = "items.approved", "Items approved"
    SNAPSHOT_CREATED = "snapshot.created", "Snapshot created"
    RUN_SUCCEEDED = "run.succeeded", "Training run succeeded"
    RUN_FAILED = "run.failed", "Training run failed"
    RUN_CANCELLED = "run.cancelled", "Training run cancelled"
    ROUND_STARTED = "round.started", "Round started"
    PING = "ping", "Test event"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookEndpoint(models.Model):
    """One URL that receives a project's events, signed with its own secret."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The WebhookEvent values it receives.")
    secret = models.CharField(max_length=100, help_text="Signs every delivery (HMAC-SHA256); shown to owners only.")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failure_streak = models.PositiveIntegerField(default=0, help_text="Deliveries failed in a row (all attempts).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"webhook {self.pk} → {self.url}"


class WebhookDelivery(models.Model):
    """One event sent to one endpoint, with the outcome of its latest attempt; a redelivery is a new row."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_id = models.UUIDField(help_text="The event's id: the same in every delivery (and redelivery) of it.")
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    body = models.TextField(help_text="The exact JSON sent, so a redelivery sends the same bytes.")
    manual = models.BooleanField(default=False, help_text="A test event or a redelivery: sent while disabled too.")
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="The start of the response body (bounded).")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent")]

    def __str__(self) -> str:
        return f"delivery {self.delivery_id} ({self.event})"
