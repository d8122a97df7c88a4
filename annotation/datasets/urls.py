"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/snapshots/", views.snapshot_list, name="snapshot-list"),
    path("projects/<id:project_id>/snapshots/compare/", views.snapshot_compare, name="snapshot-compare"),
    path("projects/<id:project_id>/snapshots/<id:snapshot_id>/", views.snapshot_detail, name="snapshot-detail"),
    path(
        "projects/<id:project_id>/snapshots/<id:snapshot_id>/download/",
        views.snapshot_download,
        name="snapshot-download",
    ),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(f"{P}/snapshots/", apis.SnapshotListApi.as_view(), name="api-snapshot-list"),
    path(f"{P}/snapshots/compare/", apis.SnapshotCompareApi.as_view(), name="api-snapshot-compare"),
    path(f"{P}/snapshots/<int:snapshot_id>/", apis.SnapshotDetailApi.as_view(), name="api-snapshot-detail"),
    path(
        f"{P}/snapshots/<int:snapshot_id>/download/", apis.SnapshotDownloadApi.as_view(), name="api-snapshot-download"
    ),
    path(f"{P}/items/", apis.ItemListApi.as_view(), name="api-item-list"),
    path(f"{P}/items/export/", apis.ItemExportApi.as_view(), name="api-item-export"),
    path(f"{P}/items/<int:item_id>/", apis.ItemDetailApi.as_view(), name="api-item-detail"),
]
