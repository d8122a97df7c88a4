"""The webhooks API beyond its permission matrix (tests/annotation/test_api_permissions.py): what owners see."""

from __future__ import annotations

from annotation.models import WebhookEndpoint
from annotation.webhooks import services
from tests.fixtures.api import api_as, url


def test_create_shows_the_secret_once_and_refuses_private_addresses(project, owner, settings):
    client = api_as(owner)
    created = client.post(
        url("api-webhook-list", project),
        {"url": "http://127.0.0.1:9/in", "events": ["items.approved", "run.failed"], "description": "CI"},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["secret"].startswith("whsec_") and created.data["events"] == ["items.approved", "run.failed"]
    detail = client.get(url("api-webhook-detail", project, webhook_id=created.data["id"]))
    assert "secret" not in detail.data
    secret = client.get(url("api-webhook-secret", project, webhook_id=created.data["id"]))
    assert secret.data["secret"] == created.data["secret"]

    settings.LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = False
    refused = client.post(
        url("api-webhook-list", project), {"url": "http://169.254.169.254/", "events": ["run.failed"]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.data["field"] == "url" and "link-local" in refused.data["detail"]
    bad_event = client.post(
        url("api-webhook-list", project), {"url": "http://127.0.0.1/", "events": ["nope"]}, format="json"
    )
    assert bad_event.status_code == 400 and bad_event.data["field"] == "events.0"


def test_patch_rotates_the_secret_and_disables(project, owner):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=["run.failed"])
    old = endpoint.secret
    response = api_as(owner).patch(
        url("api-webhook-detail", project, webhook_id=endpoint.pk), {"rotate_secret": True, "enabled": False},
        format="json",
    )
    assert response.status_code == 200 and response.data["enabled"] is False
    endpoint.refresh_from_db()
    assert endpoint.secret != old and not endpoint.enabled


def test_deliveries_page_newest_first_with_the_body_in_detail(project, owner):
    endpoint = services.endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/", events=["run.failed"])
    first = services.send_test_event(endpoint=endpoint)
    second = services.delivery_redeliver(delivery=first)
    client = api_as(owner)
    page = client.get(url("api-webhook-delivery-list", project, webhook_id=endpoint.pk) + "?limit=1")
    assert page.status_code == 200 and page.data["count"] == 2
    assert [row["id"] for row in page.data["results"]] == [second.pk] and page.data["next"]
    assert page.data["results"][0]["redelivery_of"] == first.pk
    detail = client.get(url("api-webhook-delivery-detail", project, webhook_id=endpoint.pk, delivery_id=first.pk))
    assert '"event":"ping"' in detail.data["body"]
    wrong = client.get(url("api-webhook-delivery-list", project, webhook_id=endpoint.pk) + "?status=lost")
    assert wrong.status_code == 400 and wrong.data["field"] == "status"


def test_another_projects_webhook_is_not_found(project, other_project, owner):
    theirs = WebhookEndpoint.objects.create(
        project=other_project, url="http://127.0.0.1/", events=["run.failed"], secret="x", created_by=owner
    )
    response = api_as(owner).get(url("api-webhook-detail", project, webhook_id=theirs.pk))
    assert response.status_code == 404
