"""The site's routes: each sub-area package brings its pages (`urlpatterns`) and its API (`api_urlpatterns`)."""

from importlib import import_module

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.views import healthz

# Every package that serves routes, in the order its pages are listed in the README's layout.
AREAS = (
    "annotation.projects",
    "annotation.imports",
    "annotation.annotate",
    "annotation.review",
    "annotation.quality",
    "annotation.datasets",
    "annotation.webhooks",
    "training.runs",
    "training.explanations",
    "training.augment",
    "training.ratings",
    "training.rounds",
    "training.suggestions",
)
_area_urls = [import_module(f"{area}.urls") for area in AREAS]

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    *(path("api/", include(module.api_urlpatterns)) for module in _area_urls),
    path("django-rq/", include("django_rq.urls")),
    *(path("", include(module.urlpatterns)) for module in _area_urls),
]

# 503 when the database is unreachable for a moment, the styled 500 otherwise (JSON under /api/).
handler500 = "core.views.server_error"
# A path no route matches: the API's JSON error body under /api/ (`/api/projects/abc/`), the styled 404 elsewhere.
handler404 = "core.views.page_not_found"
