"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<id:project_id>/annotate/progress/", views.annotate_progress, name="annotate-progress"),
    path("projects/<id:project_id>/annotate/undo/", views.annotate_undo, name="annotate-undo"),
    path("projects/<id:project_id>/items/<id:item_id>/submit/", views.annotate_submit, name="annotate-submit"),
    path("projects/<id:project_id>/items/<id:item_id>/skip/", views.annotate_skip, name="annotate-skip"),
    path("projects/<id:project_id>/items/<id:item_id>/draft/", views.annotate_draft, name="annotate-draft"),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(f"{P}/claims/next/", apis.ClaimNextApi.as_view(), name="api-claim-next"),
    path(f"{P}/items/<int:item_id>/annotations/", apis.AnnotationSubmitApi.as_view(), name="api-item-annotate"),
    path(f"{P}/items/<int:item_id>/skip/", apis.ClaimSkipApi.as_view(), name="api-item-skip"),
    path(f"{P}/items/<int:item_id>/draft/", apis.DraftApi.as_view(), name="api-item-draft"),
    path(f"{P}/annotations/", apis.AnnotationListApi.as_view(), name="api-annotation-list"),
    path(f"{P}/annotations/undo/", apis.AnnotationUndoApi.as_view(), name="api-annotation-undo"),
    path(f"{P}/annotations/export/", apis.AnnotationExportApi.as_view(), name="api-annotation-export"),
    path(f"{P}/progress/", apis.ProjectProgressApi.as_view(), name="api-progress"),
    path(f"{P}/progress/me/", apis.MyProgressApi.as_view(), name="api-progress-me"),
]
