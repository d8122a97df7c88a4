"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/quality/", views.quality, name="quality"),
    path("projects/<int:project_id>/quality/scans/", views.noise_scan_start, name="noise-scan-start"),
    path("projects/<int:project_id>/quality/scans/<int:scan_id>/", views.noise_scan_detail, name="noise-scan-detail"),
]

api_urlpatterns = [
    path("projects/<int:project_id>/quality/", apis.QualityApi.as_view(), name="api-quality"),
    path("projects/<int:project_id>/noise-scans/", apis.NoiseScanStartApi.as_view(), name="api-noise-scan-start"),
    path(
        "projects/<int:project_id>/noise-scans/<int:scan_id>/",
        apis.NoiseScanDetailApi.as_view(),
        name="api-noise-scan-detail",
    ),
]
