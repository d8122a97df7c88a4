"""REST API routes (Django REST framework)."""

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from . import apis
from . import apis_review as review

urlpatterns: list = []

# --- Token, projects, members, labels, guidelines, imports, annotate loop, progress, export (apis.py) ---
PROJECT = "projects/<int:project_id>/"
urlpatterns += [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("projects/", apis.ProjectListApi.as_view(), name="api-project-list"),
    path("projects/create/", apis.ProjectCreateApi.as_view(), name="api-project-create"),
    path(PROJECT, apis.ProjectDetailApi.as_view(), name="api-project-detail"),
    path(PROJECT + "update/", apis.ProjectUpdateApi.as_view(), name="api-project-update"),
    path(PROJECT + "archive/", apis.ProjectArchiveApi.as_view(), name="api-project-archive"),
    path(PROJECT + "members/", apis.MemberListApi.as_view(), name="api-member-list"),
    path(PROJECT + "members/set/", apis.MemberSetApi.as_view(), name="api-member-set"),
    path(PROJECT + "labels/", apis.LabelListApi.as_view(), name="api-label-list"),
    path(PROJECT + "labels/create/", apis.LabelCreateApi.as_view(), name="api-label-create"),
    path(PROJECT + "guidelines/", apis.GuidelineListApi.as_view(), name="api-guideline-list"),
    path(PROJECT + "guidelines/current/", apis.GuidelineCurrentApi.as_view(), name="api-guideline-current"),
    path(PROJECT + "guidelines/publish/", apis.GuidelinePublishApi.as_view(), name="api-guideline-publish"),
    path(PROJECT + "guidelines/acknowledge/", apis.GuidelineAcknowledgeApi.as_view(), name="api-guideline-acknowledge"),
    path(PROJECT + "imports/create/", apis.ImportCreateApi.as_view(), name="api-import-create"),
    path(PROJECT + "imports/<int:job_id>/", apis.ImportDetailApi.as_view(), name="api-import-detail"),
    path(PROJECT + "next/", apis.NextItemApi.as_view(), name="api-next"),
    path(PROJECT + "items/<int:item_id>/submit/", apis.AnnotationSubmitApi.as_view(), name="api-submit"),
    path(PROJECT + "items/<int:item_id>/skip/", apis.ClaimSkipApi.as_view(), name="api-skip"),
    path(PROJECT + "items/<int:item_id>/draft/", apis.DraftSaveApi.as_view(), name="api-draft"),
    path(PROJECT + "undo/", apis.AnnotationUndoApi.as_view(), name="api-undo"),
    path(PROJECT + "progress/", apis.ProjectProgressApi.as_view(), name="api-progress"),
    path(PROJECT + "progress/me/", apis.MyProgressApi.as_view(), name="api-my-progress"),
    path(PROJECT + "annotations/export/", apis.AnnotationExportApi.as_view(), name="api-annotation-export"),
]

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
