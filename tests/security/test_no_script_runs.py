"""What users type is shown, never run: names, labels, item text and guidelines are escaped or sanitised.

Also: every htmx request carries the CSRF token (and one without it is refused), artifacts load only as
safetensors, and nothing in the app fetches a URL.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from annotation.projects.services import guideline_publish, label_create, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items

SCRIPT = "<script>alert(1)</script>"
HANDLER = '<img src=x onerror="alert(1)">'
JS_LINK = "[click](javascript:alert(1))"
HOSTILE = f"{SCRIPT}{HANDLER}"
CODE_ROOTS = ("annotation", "training", "core", "config")


def _assert_inert(html: str) -> None:
    assert SCRIPT not in html
    assert "<img src=x onerror" not in html
    assert 'href="javascript:' not in html.lower()


def test_hostile_names_text_and_guidelines_are_rendered_inert(owner):
    project = project_create(
        owner=owner, name=f"P {HOSTILE}", labels=["ok", f"L2 {HANDLER}"], guidelines=f"# G\n\n{HOSTILE}\n\n{JS_LINK}"
    )
    label_create(project=project, name=f"L {SCRIPT}")
    add_items(project, [f"item {HOSTILE}"])
    guideline_publish(project=project, author=owner, body=f"v2 {HOSTILE} {JS_LINK}", change_note=SCRIPT)
    acknowledge_guidelines(project, owner)
    client = Client()
    client.force_login(owner)
    pages = ["project-list", "project-detail", "project-settings", "guideline-detail", "annotate", "import-page"]
    for name in pages:
        response = client.get(reverse(name, args=[] if name == "project-list" else [project.pk]))
        assert response.status_code == 200, name
        html = response.content.decode()
        assert "&lt;script&gt;" in html or "alert(1)" not in html, name  # shown as text, or removed
        _assert_inert(html)


def test_every_htmx_request_sends_the_csrf_token_and_one_without_it_is_refused(project, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    token = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page)
    assert token, "base.html sets hx-headers on <body>"
    url = reverse("label-create", args=[project.pk])
    refused = client.post(url, {"name": "new"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    accepted = client.post(url, {"name": "new"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token.group(1))
    assert accepted.status_code != 403


def _python_sources() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [p for root in CODE_ROOTS for p in (base / root).rglob("*.py") if "migrations" not in p.parts]


def test_artifacts_load_only_as_safetensors():
    """No torch.load, pickle or joblib anywhere in the code: a run's folder is safetensors and JSON."""
    unsafe = re.compile(r"torch\.load\(|import pickle|from pickle|pickle\.load|joblib|weights_only=False|\.bin\"")
    offenders = [str(p) for p in _python_sources() if unsafe.search(p.read_text())]
    assert offenders == []


def test_the_app_fetches_no_url():
    """No HTTP client in the code but two: nothing a user types (a guideline link, an import field) is ever fetched."""
    fetchers = re.compile(r"urlopen|import requests|from requests|import httpx|from httpx|urllib3|aiohttp|http\.client")
    # The crowd simulator is an API client (manage.py simulate, bench/load.py): it calls the base URL the
    # operator gives on its command line, and no request of the web app ever reaches it.
    # Webhooks POST to the URLs owners register, from the worker only, through one module that refuses
    # loopback and private addresses (unless the operator allows them) and follows no redirect (docs/webhooks.md).
    clients = {
        Path(settings.BASE_DIR) / "annotation" / "simulate.py",
        Path(settings.BASE_DIR) / "annotation" / "webhooks" / "transport.py",
    }
    offenders = [str(p) for p in _python_sources() if p not in clients and fetchers.search(p.read_text())]
    assert offenders == []
