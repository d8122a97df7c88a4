"""Pages of webhooks (owners only): the list and the add form, one endpoint with its secret and deliveries log.

htmx swaps the deliveries log after a test event, a redelivery or a page change; every action is a plain form
too, so the pages work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.models import DeliveryStatus, WebhookEndpoint
from annotation.permissions import MANAGE, access_project
from annotation.webhooks import selectors, services
from annotation.webhooks.forms import WebhookForm
from core.errors import ServiceError
from core.forms import add_service_error
from core.http import AuthedRequest
from core.paging import page_or_404

DELIVERIES_PER_PAGE = 20


def _endpoint(request: AuthedRequest, project_id: int, webhook_id: int) -> WebhookEndpoint:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    endpoint = selectors.endpoint_get(project=project, endpoint_id=webhook_id)
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(project=project, user=request.user, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Webhook added. Copy its secret now to verify signatures.")
            return redirect("webhook-detail", project.pk, endpoint.pk)
    context = {"project": project, "endpoints": selectors.endpoint_list(project=project), "form": form}
    return render(request, "annotation/webhook_list.html", context, status=400 if form.errors else 200)


def _deliveries_context(request: AuthedRequest, endpoint: WebhookEndpoint) -> dict[str, Any]:
    page = page_or_404(selectors.delivery_list(endpoint=endpoint), DELIVERIES_PER_PAGE, request.GET.get("page"))
    # The log polls only while a delivery on it is still on its way, and stops once all are settled.
    busy = any(d.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING) for d in page)
    return {"project": endpoint.project, "endpoint": endpoint, "deliveries": page, "busy": busy}


@login_required
@require_GET
def webhook_detail(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    endpoint = _endpoint(request, project_id, webhook_id)
    context = {**_deliveries_context(request, endpoint), "reveal": request.GET.get("secret") == "shown"}
    return render(request, "annotation/webhook_detail.html", context)


@login_required
@require_GET
def webhook_deliveries(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    """The deliveries log alone: what htmx swaps in (paging, refresh, after a test event or a redelivery)."""
    endpoint = _endpoint(request, project_id, webhook_id)
    return render(request, "annotation/_webhook_deliveries.html", _deliveries_context(request, endpoint))


@login_required
@require_GET
def webhook_secret(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    endpoint = _endpoint(request, project_id, webhook_id)
    return render(request, "annotation/_webhook_secret.html", {"endpoint": endpoint, "reveal": True})


def _after_action(request: AuthedRequest, endpoint: WebhookEndpoint, message: str) -> HttpResponse:
    if request.htmx:
        response = render(request, "annotation/_webhook_deliveries.html", _deliveries_context(request, endpoint))
        response["HX-Trigger"] = "webhook-delivery-queued"
        return response
    messages.success(request, message)
    return redirect("webhook-detail", endpoint.project_id, endpoint.pk)


@login_required
@require_POST
def webhook_test(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    endpoint = _endpoint(request, project_id, webhook_id)
    services.send_test_event(endpoint=endpoint)
    return _after_action(request, endpoint, "Test event queued; its delivery shows below.")


@login_required
@require_POST
def webhook_redeliver(request: AuthedRequest, project_id: int, webhook_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, project_id, webhook_id)
    delivery = selectors.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    if delivery is None:
        raise Http404("No such delivery.")
    services.delivery_redeliver(delivery=delivery)
    return _after_action(request, endpoint, "Redelivery queued.")


@login_required
@require_POST
def webhook_update(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    """Enable, disable or rotate the secret (one button each); edits of URL and events go through the API."""
    endpoint = _endpoint(request, project_id, webhook_id)
    action = request.POST.get("action")
    if action not in ("enable", "disable", "rotate"):
        return HttpResponse("Unknown action.", status=400)
    if action == "rotate":
        services.endpoint_update(endpoint=endpoint, rotate_secret=True)
        messages.success(request, "New secret made: the old one no longer verifies deliveries.")
        return redirect(reverse("webhook-detail", args=[endpoint.project_id, endpoint.pk]) + "?secret=shown")
    services.endpoint_update(endpoint=endpoint, enabled=action == "enable")
    messages.success(request, "Webhook enabled." if action == "enable" else "Webhook disabled.")
    return redirect("webhook-detail", endpoint.project_id, endpoint.pk)


@login_required
@require_POST
def webhook_delete(request: AuthedRequest, project_id: int, webhook_id: int) -> HttpResponse:
    endpoint = _endpoint(request, project_id, webhook_id)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, "Webhook removed, with its deliveries log.")
    if request.htmx:  # asked to confirm first (hx-confirm): a full page load of the list
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("webhook-list", args=[project_id])
        return response
    return redirect("webhook-list", project_id)
