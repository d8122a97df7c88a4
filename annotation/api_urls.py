"""REST API routes (Django REST framework)."""

from django.urls import path

from . import apis_review as review

urlpatterns: list = []

# --- Review, quality, noise scans and snapshots (apis_review.py) ---
urlpatterns += [
    path("projects/<int:project_id>/review-tasks/", review.ReviewTaskListApi.as_view(), name="api-review-tasks"),
    path(
        "projects/<int:project_id>/review-tasks/<int:task_id>/decide/",
        review.ReviewDecideApi.as_view(),
        name="api-review-decide",
    ),
    path(
        "projects/<int:project_id>/items/<int:item_id>/history/",
        review.ItemHistoryApi.as_view(),
        name="api-item-history",
    ),
    path("projects/<int:project_id>/quality/", review.QualityApi.as_view(), name="api-quality"),
    path("projects/<int:project_id>/noise-scans/", review.NoiseScanStartApi.as_view(), name="api-noise-scan-start"),
    path(
        "projects/<int:project_id>/noise-scans/<int:scan_id>/",
        review.NoiseScanDetailApi.as_view(),
        name="api-noise-scan-detail",
    ),
    path("projects/<int:project_id>/snapshots/", review.SnapshotListApi.as_view(), name="api-snapshot-list"),
    path("projects/<int:project_id>/snapshots/create/", review.SnapshotCreateApi.as_view(), name="api-snapshot-create"),
    path(
        "projects/<int:project_id>/snapshots/compare/", review.SnapshotCompareApi.as_view(), name="api-snapshot-compare"
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/",
        review.SnapshotDetailApi.as_view(),
        name="api-snapshot-detail",
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/download/",
        review.SnapshotDownloadApi.as_view(),
        name="api-snapshot-download",
    ),
]
