"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/annotate/progress/", views.annotate_progress, name="annotate-progress"),
    path("projects/<int:project_id>/annotate/undo/", views.annotate_undo, name="annotate-undo"),
    path("projects/<int:project_id>/items/<int:item_id>/submit/", views.annotate_submit, name="annotate-submit"),
    path("projects/<int:project_id>/items/<int:item_id>/skip/", views.annotate_skip, name="annotate-skip"),
    path("projects/<int:project_id>/items/<int:item_id>/draft/", views.annotate_draft, name="annotate-draft"),
]

api_urlpatterns = [
    path("projects/<int:project_id>/next/", apis.NextItemApi.as_view(), name="api-next"),
    path(
        "projects/<int:project_id>/items/<int:item_id>/submit/", apis.AnnotationSubmitApi.as_view(), name="api-submit"
    ),
    path("projects/<int:project_id>/items/<int:item_id>/skip/", apis.ClaimSkipApi.as_view(), name="api-skip"),
    path("projects/<int:project_id>/items/<int:item_id>/draft/", apis.DraftSaveApi.as_view(), name="api-draft"),
    path("projects/<int:project_id>/undo/", apis.AnnotationUndoApi.as_view(), name="api-undo"),
    path("projects/<int:project_id>/progress/", apis.ProjectProgressApi.as_view(), name="api-progress"),
    path("projects/<int:project_id>/progress/me/", apis.MyProgressApi.as_view(), name="api-my-progress"),
    path(
        "projects/<int:project_id>/annotations/export/",
        apis.AnnotationExportApi.as_view(),
        name="api-annotation-export",
    ),
]
