"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/suggestions/", views.suggestion_list, name="suggestion-list"),
    path("projects/<id:project_id>/suggestions/runs/", views.suggestion_run_start, name="suggestion-run-start"),
    path(
        "projects/<id:project_id>/suggestions/runs/<id:run_id>/",
        views.suggestion_run_detail,
        name="suggestion-run-detail",
    ),
    path(
        "projects/<id:project_id>/suggestions/runs/<id:run_id>/apply/",
        views.suggestion_run_apply,
        name="suggestion-run-apply",
    ),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(f"{P}/suggestion-runs/", apis.SuggestionRunListApi.as_view(), name="api-suggestion-run-list"),
    path(
        f"{P}/suggestion-runs/<int:run_id>/", apis.SuggestionRunDetailApi.as_view(), name="api-suggestion-run-detail"
    ),
    path(
        f"{P}/suggestion-runs/<int:run_id>/suggestions/", apis.SuggestionListApi.as_view(), name="api-suggestion-list"
    ),
]
