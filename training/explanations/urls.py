"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path(
        "projects/<id:project_id>/runs/<id:run_id>/outputs/<id:output_id>/explanation/",
        views.explanation_page,
        name="explanation-page",
    ),
]

api_urlpatterns = [
    path(
        "projects/<int:project_id>/runs/<int:run_id>/outputs/<int:output_id>/explanation/",
        apis.ExplanationApi.as_view(),
        name="api-output-explanation",
    ),
]
