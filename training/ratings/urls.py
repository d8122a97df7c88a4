"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/ratings/", views.rating_home, name="rating-home"),
    path("projects/<int:project_id>/ratings/runs/<int:run_id>/", views.rating_page, name="rating-page"),
    path(
        "projects/<int:project_id>/ratings/runs/<int:run_id>/outputs/<int:output_id>/",
        views.rating_submit,
        name="rating-submit",
    ),
    path("projects/<int:project_id>/ratings/comparisons/", views.comparison_create, name="comparison-create"),
    path(
        "projects/<int:project_id>/ratings/comparisons/<int:comparison_id>/",
        views.comparison_page,
        name="comparison-page",
    ),
    path(
        "projects/<int:project_id>/ratings/comparisons/<int:comparison_id>/items/<int:item_id>/",
        views.comparison_submit,
        name="comparison-submit",
    ),
    path("projects/<int:project_id>/ratings/export/ratings.jsonl", views.ratings_export, name="ratings-export"),
    path(
        "projects/<int:project_id>/ratings/export/preferences.jsonl",
        views.preferences_export,
        name="preferences-export",
    ),
]

api_urlpatterns = [
    path("runs/<int:run_id>/ratings/next/", apis.RatingNextApi.as_view(), name="api-rating-next"),
    path("runs/<int:run_id>/ratings/", apis.RatingSubmitApi.as_view(), name="api-rating-submit"),
    path("projects/<int:project_id>/comparisons/", apis.ComparisonCreateApi.as_view(), name="api-comparison-create"),
    path("comparisons/<int:comparison_id>/next/", apis.ComparisonNextApi.as_view(), name="api-comparison-next"),
    path(
        "comparisons/<int:comparison_id>/preferences/", apis.ComparisonSubmitApi.as_view(), name="api-comparison-submit"
    ),
    path(
        "comparisons/<int:comparison_id>/results/", apis.ComparisonResultsApi.as_view(), name="api-comparison-results"
    ),
    path("projects/<int:project_id>/ratings/export/", apis.RatingsExportApi.as_view(), name="api-ratings-export"),
    path(
        "projects/<int:project_id>/preferences/export/",
        apis.PreferencePairsExportApi.as_view(),
        name="api-preferences-export",
    ),
]
