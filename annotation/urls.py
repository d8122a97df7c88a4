"""Browser pages. Each area adds its routes in its own block."""

from django.urls import path

from . import views, views_imports, views_review

urlpatterns = [
    path("", views.project_list, name="project-list"),
]

# --- Projects, settings, guidelines and the annotate workspace (views.py) ---
urlpatterns += [
    path("projects/new/", views.project_create_view, name="project-create"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project-settings"),
    path("projects/<int:project_id>/settings/labels/", views.label_create_view, name="label-create"),
    path("projects/<int:project_id>/settings/labels/<int:label_id>/", views.label_update_view, name="label-update"),
    path("projects/<int:project_id>/settings/members/", views.member_set_view, name="member-set"),
    path("projects/<int:project_id>/guidelines/", views.guideline_detail, name="guideline-detail"),
    path("projects/<int:project_id>/guidelines/publish/", views.guideline_publish_view, name="guideline-publish"),
    path("projects/<int:project_id>/guidelines/acknowledge/", views.guideline_ack_view, name="guideline-ack"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/annotate/progress/", views.annotate_progress, name="annotate-progress"),
    path("projects/<int:project_id>/annotate/undo/", views.annotate_undo, name="annotate-undo"),
    path("projects/<int:project_id>/items/<int:item_id>/submit/", views.annotate_submit, name="annotate-submit"),
    path("projects/<int:project_id>/items/<int:item_id>/skip/", views.annotate_skip, name="annotate-skip"),
    path("projects/<int:project_id>/items/<int:item_id>/draft/", views.annotate_draft, name="annotate-draft"),
]

# --- Review, quality and snapshots (views_review.py) ---
urlpatterns += [
    path("projects/<int:project_id>/review/", views_review.review_queue, name="review-queue"),
    path("projects/<int:project_id>/review/<int:task_id>/decide/", views_review.review_decide, name="review-decide"),
    path("projects/<int:project_id>/items/<int:item_id>/history/", views_review.item_history, name="item-history"),
    path("projects/<int:project_id>/quality/", views_review.quality, name="quality"),
    path("projects/<int:project_id>/quality/scans/", views_review.noise_scan_start, name="noise-scan-start"),
    path(
        "projects/<int:project_id>/quality/scans/<int:scan_id>/",
        views_review.noise_scan_detail,
        name="noise-scan-detail",
    ),
    path("projects/<int:project_id>/snapshots/", views_review.snapshot_list, name="snapshot-list"),
    path("projects/<int:project_id>/snapshots/compare/", views_review.snapshot_compare, name="snapshot-compare"),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/", views_review.snapshot_detail, name="snapshot-detail"
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/download/",
        views_review.snapshot_download,
        name="snapshot-download",
    ),
]

# --- Imports (views_imports.py) ---
urlpatterns += [
    path("projects/<int:project_id>/import/", views_imports.import_create_view, name="import-page"),
    path("projects/<int:project_id>/imports/<int:job_id>/", views_imports.import_detail, name="import-detail"),
]
