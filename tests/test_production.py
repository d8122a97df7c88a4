"""The production settings as the README runs them: collectstatic, `check --deploy`, and gunicorn serving pages.

The HTML pages of a production server need collectstatic's manifest (CompressedManifestStaticFilesStorage):
without it every page answers 500. These run the real commands in subprocesses with production settings.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.fixtures.production import Session, manage, production_env

pytestmark = pytest.mark.slow


def test_check_deploy_is_clean_with_the_production_defaults(tmp_path):
    env = production_env(tmp_path)
    for key in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES"):  # the defaults: behind TLS
        env.pop(key)
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_refuses_a_weak_secret(tmp_path):
    env = production_env(tmp_path) | {"SECRET_KEY": "dev-insecure"}
    done = manage(env, "check")
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr


def test_pages_and_static_files_are_served_from_the_manifest(production_server):
    client = Session(production_server.url)
    status, body, _ = client.get("/accounts/login/")
    assert status == 200
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', body)
    assert css, "the page links the hashed (manifest) name of app.css"
    status, _, headers = client.get(css.group(1))
    assert status == 200 and "max-age" in headers.get("Cache-Control", "")

    client.login("owner")
    project = production_server.project_id
    for path in ("/", f"/projects/{project}/", f"/projects/{project}/settings/", f"/projects/{project}/guidelines/",
                 f"/projects/{project}/quality/", f"/projects/{project}/snapshots/", f"/projects/{project}/review/"):
        status, body, _ = client.get(path)
        assert status == 200, (path, body[:500])
        assert "/static/vendor/htmx/htmx." in body


def test_api_docs_load_their_assets_from_our_static_files(production_server):
    client = Session(production_server.url)
    client.login("owner")
    for path in ("/api/docs/", "/api/redoc/"):
        status, body, _ = client.get(path)
        assert status == 200
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', body)
        assert assets and all(asset.startswith("/static/drf_spectacular_sidecar/") for asset in assets), assets
        for asset in assets:
            assert client.get(asset)[0] == 200, asset
    status, body, _ = client.get("/api/schema/?format=json")
    assert status == 200 and json.loads(body)["info"]["title"] == "Labelloop API"


def test_errors_are_styled_pages_that_reveal_no_internals(production_server):
    client = Session(production_server.url)
    status, body, _ = client.get("/no/such/page/")
    assert status == 404
    assert "Not found" in body and "URLconf" not in body and "urlpatterns" not in body
    client.login("annotator1")
    status, body, _ = client.get(f"/projects/{production_server.project_id}/settings/")
    assert status == 403
    assert "can't do this here" in body and "/static/css/app." in body


def test_health_check_answers_without_a_login(production_server):
    client = Session(production_server.url)
    assert client.get("/healthz/")[:2] == (200, "ok\n")
