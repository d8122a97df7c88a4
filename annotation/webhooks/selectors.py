"""Reads of webhooks: a project's endpoints and an endpoint's deliveries, newest first."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Project, WebhookDelivery, WebhookEndpoint


def endpoint_list(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project).order_by("pk")


def endpoint_get(*, project: Project, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.select_related("project").filter(project=project, pk=endpoint_id).first()


def delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-pk")


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.select_related("endpoint__project").filter(endpoint=endpoint, pk=delivery_id).first()
