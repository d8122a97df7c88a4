"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/review/", views.review_queue, name="review-queue"),
    path("projects/<id:project_id>/review/<id:task_id>/decide/", views.review_decide, name="review-decide"),
    path("projects/<id:project_id>/review/bulk-accept/", views.review_bulk_accept, name="review-bulk-accept"),
    path("projects/<id:project_id>/items/<id:item_id>/history/", views.item_history, name="item-history"),
    path("projects/<id:project_id>/items/<id:item_id>/overrule/", views.item_overrule, name="item-overrule"),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(f"{P}/review-tasks/", apis.ReviewTaskListApi.as_view(), name="api-review-task-list"),
    path(f"{P}/review-tasks/bulk-accept/", apis.ReviewBulkAcceptApi.as_view(), name="api-review-task-bulk-accept"),
    path(f"{P}/review-tasks/<int:task_id>/", apis.ReviewTaskDetailApi.as_view(), name="api-review-task-detail"),
    path(f"{P}/review-tasks/<int:task_id>/decide/", apis.ReviewDecideApi.as_view(), name="api-review-task-decide"),
    path(f"{P}/items/<int:item_id>/history/", apis.ItemHistoryApi.as_view(), name="api-item-history"),
    path(f"{P}/items/<int:item_id>/overrule/", apis.ItemOverruleApi.as_view(), name="api-item-overrule"),
]
