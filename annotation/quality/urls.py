"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/quality/", views.quality, name="quality"),
    path("projects/<id:project_id>/quality/scans/", views.noise_scan_start, name="noise-scan-start"),
    path("projects/<id:project_id>/quality/scans/<id:scan_id>/", views.noise_scan_detail, name="noise-scan-detail"),
    path(
        "projects/<id:project_id>/quality/scans/<id:scan_id>/cancel/", views.noise_scan_cancel, name="noise-scan-cancel"
    ),
    path(
        "projects/<id:project_id>/quality/scans/<id:scan_id>/flags/", views.noise_flag_list_page, name="noise-flag-list"
    ),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(f"{P}/quality/", apis.QualityApi.as_view(), name="api-quality"),
    path(f"{P}/annotator-quality/", apis.AnnotatorQualityApi.as_view(), name="api-annotator-quality"),
    path(f"{P}/routing-plan/", apis.RoutingPlanApi.as_view(), name="api-routing-plan"),
    path(f"{P}/noise-scans/", apis.NoiseScanListApi.as_view(), name="api-noise-scan-list"),
    path(f"{P}/noise-scans/<int:scan_id>/", apis.NoiseScanDetailApi.as_view(), name="api-noise-scan-detail"),
    path(f"{P}/noise-scans/<int:scan_id>/cancel/", apis.NoiseScanCancelApi.as_view(), name="api-noise-scan-cancel"),
    path(f"{P}/noise-scans/<int:scan_id>/flags/", apis.NoiseFlagListApi.as_view(), name="api-noise-flag-list"),
]
