"""The webhooks page in a real browser: an owner adds an endpoint with the keyboard, sends a test event, a
real RQ worker delivers it to a local receiver, and the deliveries log shows the answer without a reload."""

from __future__ import annotations

import django_rq
import pytest
from playwright.sync_api import Page, expect

from annotation.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from annotation.projects.services import project_create
from annotation.webhooks import services, transport
from core.queues import JsonSimpleWorker
from tests.annotation.webhooks.receiver import receiver
from tests.browser.test_import_browser import log_in
from tests.fixtures.people import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def owned_project(transactional_db):
    owner = make_user("owner")
    return project_create(owner=owner, name="Hooks", labels=["spam", "ham"])


def test_add_an_endpoint_and_send_a_test_event(page: Page, owned_project, screenshot_dir):
    queue = django_rq.get_queue(services.QUEUE)
    queue.empty()
    url = f"/projects/{owned_project.pk}/settings/webhooks/"
    log_in(page, "owner", url)
    with receiver("/labelloop") as hook:
        hook.answer = b'{"received": true}'
        page.get_by_label("Payload URL").fill(hook.url)  # focused on arrival
        page.keyboard.press("Tab")
        page.keyboard.type("CI pipeline")
        page.get_by_label("Snapshot created (snapshot.created)").check()
        page.get_by_label("Training run succeeded (run.succeeded)").check()
        page.get_by_role("button", name="Add webhook").click()
        endpoint = WebhookEndpoint.objects.get(project=owned_project)
        page.wait_for_url(f"**/settings/webhooks/{endpoint.pk}/")
        expect(page.locator(".msg.success")).to_contain_text("Webhook added")

        page.get_by_role("button", name="Reveal").click()
        expect(page.locator("#secret-value")).to_have_text(endpoint.secret)

        page.get_by_role("button", name="Send test event").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#deliveries")).to_contain_text("Pending")
        assert django_rq.get_worker(services.QUEUE, worker_class=JsonSimpleWorker).work(burst=True)
        expect(page.locator("#deliveries")).to_contain_text("Delivered")  # the log's own polling brought it
        expect(page.locator("#deliveries")).to_contain_text("200")
        page.locator("#deliveries summary").first.click()
        expect(page.locator("#deliveries pre").first).to_contain_text('"received": true')
        page.screenshot(path=str(screenshot_dir / "webhooks.png"), full_page=True)

        request = hook.requests[0]
        assert request.path == "/labelloop"
        timestamp, signature = request.headers["X-Labelloop-Timestamp"], request.headers["X-Labelloop-Signature"]
        assert transport.verify(endpoint.secret, timestamp, request.body, signature)
    assert WebhookDelivery.objects.get(endpoint=endpoint).status == DeliveryStatus.SUCCEEDED
