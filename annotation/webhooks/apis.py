"""REST API of webhooks (owners only): endpoints, their secret, a test event, the deliveries log, redelivery.

Conventions of docs/api.md: collections page (`GET`) and create (`POST`: 201), members read (`GET`), change
(`PATCH`) and go (`DELETE`: 204); a test event or a redelivery is queued (202) and shows in the log.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from annotation.permissions import MANAGE, access_project
from annotation.webhooks import selectors, services
from core.api import DENIED, PAGE_PARAMETERS, REFUSED, ApiView, choice, paginated, validated

NO_SUCH_WEBHOOK = "No such webhook."
NO_SUCH_DELIVERY = "No such delivery."
EVENT_CHOICES = services.SUBSCRIBABLE


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(help_text="Why it was disabled automatically; empty otherwise.")
    failure_streak = serializers.IntegerField(help_text="Deliveries that failed in a row (every attempt).")
    created_at = serializers.DateTimeField()


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Verifies the X-Labelloop-Signature header (docs/webhooks.md).")


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delivery_id = serializers.UUIDField(help_text="The X-Labelloop-Delivery header.")
    event_id = serializers.UUIDField(help_text="The body's `id`: the same for every delivery of one event.")
    event = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(help_text="The start of the answer's body (at most 2 KB).")
    duration_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    manual = serializers.BooleanField(help_text="A test event or a redelivery.")
    redelivery_of = serializers.IntegerField(source="redelivery_of_id", allow_null=True)
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class DeliveryDetailSerializer(DeliverySerializer):
    body = serializers.CharField(help_text="The JSON that was sent.")


def _endpoint(user, project_id: int, webhook_id: int) -> WebhookEndpoint:
    project, _ = access_project(user=user, project_id=project_id, roles=MANAGE)
    endpoint = selectors.endpoint_get(project=project, endpoint_id=webhook_id)
    if endpoint is None:
        raise Http404(NO_SUCH_WEBHOOK)
    return endpoint


def _delivery(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    delivery = selectors.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    if delivery is None:
        raise Http404(NO_SUCH_DELIVERY)
    return delivery


class WebhookListApi(ApiView):
    """The project's webhook endpoints; the owner adds one (its secret is in this answer)."""

    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=2000, help_text="http(s); public addresses only (docs/webhooks.md).")
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), allow_empty=False)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(WebhookSerializer), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        self.filter_values(request)
        return self.page(request, selectors.endpoint_list(project=project), WebhookSerializer)

    @extend_schema(request=InputSerializer, responses={201: WebhookWithSecretSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        endpoint = services.endpoint_create(project=project, user=self.user, **data)
        return Response(WebhookWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(ApiView):
    """One endpoint: change its URL, events or description, enable or disable it, rotate its secret, remove it."""

    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=2000, required=False)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EVENT_CHOICES), allow_empty=False, required=False
        )
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False, help_text="true again clears the failure count.")
        rotate_secret = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses={200: WebhookSerializer, **DENIED})
    def get(self, request: Request, project_id: int, webhook_id: int) -> Response:
        return Response(WebhookSerializer(_endpoint(self.user, project_id, webhook_id)).data)

    @extend_schema(request=InputSerializer, responses={200: WebhookSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int, webhook_id: int) -> Response:
        endpoint = _endpoint(self.user, project_id, webhook_id)
        data = validated(self.InputSerializer, request.data)
        endpoint = services.endpoint_update(endpoint=endpoint, **data)
        return Response(WebhookSerializer(endpoint).data)

    @extend_schema(responses={204: None, **DENIED})
    def delete(self, request: Request, project_id: int, webhook_id: int) -> Response:
        services.endpoint_delete(endpoint=_endpoint(self.user, project_id, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretApi(ApiView):
    """The endpoint's signing secret (owners only); rotate it with PATCH rotate_secret."""

    class OutputSerializer(serializers.Serializer):
        secret = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int, webhook_id: int) -> Response:
        endpoint = _endpoint(self.user, project_id, webhook_id)
        return Response(self.OutputSerializer({"secret": endpoint.secret}).data)


class WebhookTestApi(ApiView):
    """Queue a `ping` event to the endpoint (sent even while it is disabled); follow it in the deliveries."""

    @extend_schema(request=None, responses={202: DeliverySerializer, **DENIED})
    def post(self, request: Request, project_id: int, webhook_id: int) -> Response:
        delivery = services.send_test_event(endpoint=_endpoint(self.user, project_id, webhook_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryListApi(ApiView):
    """The endpoint's deliveries, newest first, each with its latest attempt's answer."""

    filters = {"status": choice(DeliveryStatus.values)}

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(DeliverySerializer), **REFUSED})
    def get(self, request: Request, project_id: int, webhook_id: int) -> Response:
        endpoint = _endpoint(self.user, project_id, webhook_id)
        values = self.filter_values(request)
        rows = selectors.delivery_list(endpoint=endpoint)
        if "status" in values:
            rows = rows.filter(status=values["status"])
        return self.page(request, rows, DeliverySerializer)


class WebhookDeliveryDetailApi(ApiView):
    """One delivery, with the body that was sent."""

    @extend_schema(responses={200: DeliveryDetailSerializer, **DENIED})
    def get(self, request: Request, project_id: int, webhook_id: int, delivery_id: int) -> Response:
        endpoint = _endpoint(self.user, project_id, webhook_id)
        return Response(DeliveryDetailSerializer(_delivery(endpoint, delivery_id)).data)


class WebhookRedeliverApi(ApiView):
    """Send a delivery's event again (same event id and body, new signature): a new delivery, queued."""

    @extend_schema(request=None, responses={202: DeliverySerializer, **DENIED})
    def post(self, request: Request, project_id: int, webhook_id: int, delivery_id: int) -> Response:
        endpoint = _endpoint(self.user, project_id, webhook_id)
        delivery = services.delivery_redeliver(delivery=_delivery(endpoint, delivery_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
