"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/review/", views.review_queue, name="review-queue"),
    path("projects/<int:project_id>/review/<int:task_id>/decide/", views.review_decide, name="review-decide"),
    path("projects/<int:project_id>/items/<int:item_id>/history/", views.item_history, name="item-history"),
]

api_urlpatterns = [
    path("projects/<int:project_id>/review-tasks/", apis.ReviewTaskListApi.as_view(), name="api-review-tasks"),
    path(
        "projects/<int:project_id>/review-tasks/<int:task_id>/decide/",
        apis.ReviewDecideApi.as_view(),
        name="api-review-decide",
    ),
    path(
        "projects/<int:project_id>/items/<int:item_id>/history/", apis.ItemHistoryApi.as_view(), name="api-item-history"
    ),
]
