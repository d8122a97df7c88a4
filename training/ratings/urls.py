"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/ratings/", views.rating_home, name="rating-home"),
    path("projects/<id:project_id>/ratings/runs/<id:run_id>/", views.rating_page, name="rating-page"),
    path(
        "projects/<id:project_id>/ratings/runs/<id:run_id>/outputs/<id:output_id>/",
        views.rating_submit,
        name="rating-submit",
    ),
    path("projects/<id:project_id>/ratings/comparisons/", views.comparison_create, name="comparison-create"),
    path(
        "projects/<id:project_id>/ratings/comparisons/<id:comparison_id>/",
        views.comparison_page,
        name="comparison-page",
    ),
    path(
        "projects/<id:project_id>/ratings/comparisons/<id:comparison_id>/items/<id:item_id>/",
        views.comparison_submit,
        name="comparison-submit",
    ),
    path("projects/<id:project_id>/ratings/export/ratings.jsonl", views.ratings_export, name="ratings-export"),
    path(
        "projects/<id:project_id>/ratings/export/preferences.jsonl",
        views.preferences_export,
        name="preferences-export",
    ),
]

RUN = "projects/<int:project_id>/runs/<int:run_id>/"
COMPARISON = "projects/<int:project_id>/comparisons/<int:comparison_id>/"

api_urlpatterns = [
    path(RUN + "ratings/", apis.RatingListApi.as_view(), name="api-rating-list"),
    path(RUN + "ratings/next/", apis.RatingNextApi.as_view(), name="api-rating-next"),
    path("projects/<int:project_id>/comparisons/", apis.ComparisonListApi.as_view(), name="api-comparison-list"),
    path(COMPARISON, apis.ComparisonDetailApi.as_view(), name="api-comparison-detail"),
    path(COMPARISON + "next/", apis.ComparisonNextApi.as_view(), name="api-comparison-next"),
    path(COMPARISON + "preferences/", apis.ComparisonPreferenceApi.as_view(), name="api-comparison-preferences"),
    path(COMPARISON + "results/", apis.ComparisonResultsApi.as_view(), name="api-comparison-results"),
    path("projects/<int:project_id>/ratings/export/", apis.RatingsExportApi.as_view(), name="api-ratings-export"),
    path(
        "projects/<int:project_id>/preferences/export/",
        apis.PreferencePairsExportApi.as_view(),
        name="api-preferences-export",
    ),
]
