"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/snapshots/", views.snapshot_list, name="snapshot-list"),
    path("projects/<int:project_id>/snapshots/compare/", views.snapshot_compare, name="snapshot-compare"),
    path("projects/<int:project_id>/snapshots/<int:snapshot_id>/", views.snapshot_detail, name="snapshot-detail"),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/download/",
        views.snapshot_download,
        name="snapshot-download",
    ),
]

api_urlpatterns = [
    path("projects/<int:project_id>/snapshots/", apis.SnapshotListApi.as_view(), name="api-snapshot-list"),
    path("projects/<int:project_id>/snapshots/create/", apis.SnapshotCreateApi.as_view(), name="api-snapshot-create"),
    path(
        "projects/<int:project_id>/snapshots/compare/", apis.SnapshotCompareApi.as_view(), name="api-snapshot-compare"
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/",
        apis.SnapshotDetailApi.as_view(),
        name="api-snapshot-detail",
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/download/",
        apis.SnapshotDownloadApi.as_view(),
        name="api-snapshot-download",
    ),
]
