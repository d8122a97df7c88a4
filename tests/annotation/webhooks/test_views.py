"""The webhooks pages: owners only, the add form with its clear refusals, test event and redelivery via htmx."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import WebhookDelivery, WebhookEndpoint
from annotation.webhooks import services

LOGIN = "/accounts/login/"


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_only_owners_open_the_webhooks_page(client, project, users_by_role, role, status):
    client.force_login(users_by_role[role])
    assert client.get(reverse("webhook-list", args=[project.pk])).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client, project):
    response = client.get(reverse("webhook-list", args=[project.pk]))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_the_settings_page_links_to_webhooks(client, project, owner):
    client.force_login(owner)
    page = client.get(reverse("project-settings", args=[project.pk])).content.decode()
    assert reverse("webhook-list", args=[project.pk]) in page


def test_add_then_test_event_then_redeliver(client, project, owner):
    client.force_login(owner)
    added = client.post(
        reverse("webhook-list", args=[project.pk]),
        {"url": "http://127.0.0.1:9/in", "events": ["snapshot.created", "run.failed"]},
    )
    endpoint = WebhookEndpoint.objects.get(project=project)
    assert added.status_code == 302 and added["Location"] == reverse("webhook-detail", args=[project.pk, endpoint.pk])
    page = client.get(added["Location"]).content.decode()
    assert "Send test event" in page and endpoint.secret not in page  # hidden until revealed
    assert endpoint.secret in client.get(reverse("webhook-secret", args=[project.pk, endpoint.pk])).content.decode()
    swapped = client.post(reverse("webhook-test", args=[project.pk, endpoint.pk]), HTTP_HX_REQUEST="true")
    assert swapped.status_code == 200 and 'id="deliveries"' in swapped.content.decode()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event == "ping"
    client.post(reverse("webhook-redeliver", args=[project.pk, endpoint.pk, delivery.pk]), HTTP_HX_REQUEST="true")
    assert WebhookDelivery.objects.filter(endpoint=endpoint, redelivery_of=delivery).count() == 1


def test_a_private_url_is_refused_on_the_form_naming_why(client, project, owner, settings):
    settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(owner)
    response = client.post(
        reverse("webhook-list", args=[project.pk]), {"url": "http://10.0.0.8/in", "events": ["run.failed"]}
    )
    assert response.status_code == 400
    assert "a private address: webhooks go to public addresses only" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_disabled_endpoint_says_why(client, project, owner):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=["run.failed"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="Disabled after 10 failures.")
    client.force_login(owner)
    page = client.get(reverse("webhook-detail", args=[project.pk, endpoint.pk])).content.decode()
    assert "This webhook is disabled" in page and "Disabled after 10 failures." in page
    client.post(reverse("webhook-update", args=[project.pk, endpoint.pk]), {"action": "enable"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_paging_the_deliveries_log(client, project, owner):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=["run.failed"])
    for _ in range(25):
        services.send_test_event(endpoint=endpoint)
    client.force_login(owner)
    first = client.get(reverse("webhook-deliveries", args=[project.pk, endpoint.pk])).content.decode()
    assert "Page 1 of 2" in first and first.count('id="delivery-') == 20
    second = client.get(reverse("webhook-deliveries", args=[project.pk, endpoint.pk]) + "?page=2").content.decode()
    assert second.count('id="delivery-') == 5
    third = client.get(reverse("webhook-deliveries", args=[project.pk, endpoint.pk]) + "?page=3")
    assert third.status_code == 404 and "its pages are numbered 1 to 2." in third.content.decode()


def test_remove_asks_first_then_goes_back_to_the_list(client, project, owner):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=["run.failed"])
    client.force_login(owner)
    page = client.get(reverse("webhook-detail", args=[project.pk, endpoint.pk])).content.decode()
    assert "hx-confirm=" in page
    response = client.post(reverse("webhook-delete", args=[project.pk, endpoint.pk]), HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == reverse("webhook-list", args=[project.pk])
    assert not WebhookEndpoint.objects.exists()
