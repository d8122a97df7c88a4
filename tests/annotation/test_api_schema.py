"""The annotation API as a whole: refusals write nothing, the error body, the OpenAPI schema and docs."""

from __future__ import annotations

import json

from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from annotation.annotate import urls as annotate_urls
from annotation.imports import urls as imports_urls
from annotation.models import (
    GuidelineAcknowledgement,
)
from annotation.projects import urls as projects_urls
from tests.fixtures.api import api_as, url

OUR_API_MODULES = {"annotation.projects.apis", "annotation.imports.apis", "annotation.annotate.apis"}




# --- Errors and the schema -----------------------------------------------------------------------------


def test_refusals_write_nothing(ready, annotator, reviewer, outsider):
    assert api_as(annotator).delete(url("api-project-detail", ready)).status_code == 403
    assert api_as(outsider).delete(url("api-project-detail", ready)).status_code == 404
    response = api_as(reviewer).post(url("api-guideline-list", ready), {"body": "# mine now"}, format="json")
    assert response.status_code == 403
    ready.refresh_from_db()
    assert ready.archived_at is None
    assert not GuidelineAcknowledgement.objects.filter(user=outsider).exists()
    assert ready.guideline_versions.count() == 1


def test_invalid_json_gets_a_clear_400(ready, owner):
    response = api_as(owner).post(
        url("api-label-list", ready), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.data["detail"]


def _our_routes() -> list:
    """This module's routes (apis.py and the token endpoint), mounted where config/urls.py mounts them."""
    ours = [
        pattern
        for pattern in [*projects_urls.api_urlpatterns, *imports_urls.api_urlpatterns, *annotate_urls.api_urlpatterns]
        if pattern.callback.cls.__module__ in OUR_API_MODULES
    ]
    return [path("api/", include(ours))]


def test_schema_generates_without_warnings_and_validates(db):
    """What `manage.py spectacular --validate --fail-on-warn` checks, for every endpoint of apis.py."""
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=_our_routes()).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    documented = {(path_, method) for path_, ops in schema["paths"].items() for method in ops}
    assert ("/api/projects/{project_id}/claims/next/", "post") in documented
    methods = sum(len(set(p.callback.view_class.http_method_names) & {"get", "post", "put", "patch", "delete"}
                      & set(dir(p.callback.view_class))) for p in _our_routes()[0].url_patterns)
    assert len(documented) == methods


def test_schema_names_every_operation_after_its_api(db):
    schema = SchemaGenerator(patterns=_our_routes()).get_schema(request=None, public=True)
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    expected = ("project_list_create", "claim_next", "annotation_submit", "annotation_export", "guideline_list_create")
    assert set(expected) <= set(ids)
    components = schema["components"]["schemas"]
    assert {"LabelListInput", "GuidelineListOutput", "ClaimedItem", "Error"} <= set(components)


def test_schema_and_docs_are_served(db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/projects/{project_id}/annotations/export/" in json.loads(schema.content)["paths"]
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
