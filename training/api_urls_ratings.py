"""REST API routes for the next round: ratings and blind comparisons (training/apis_ratings.py), under /api/."""

from django.urls import path

from . import apis_ratings as apis

PROJECT = "projects/<int:project_id>/"
RUN = "runs/<int:run_id>/"
COMPARISON = "comparisons/<int:comparison_id>/"

urlpatterns = [
    path(RUN + "ratings/next/", apis.RatingNextApi.as_view(), name="api-rating-next"),
    path(RUN + "ratings/", apis.RatingSubmitApi.as_view(), name="api-rating-submit"),
    path(PROJECT + "comparisons/", apis.ComparisonCreateApi.as_view(), name="api-comparison-create"),
    path(COMPARISON + "next/", apis.ComparisonNextApi.as_view(), name="api-comparison-next"),
    path(COMPARISON + "preferences/", apis.ComparisonSubmitApi.as_view(), name="api-comparison-submit"),
    path(COMPARISON + "results/", apis.ComparisonResultsApi.as_view(), name="api-comparison-results"),
    path(PROJECT + "ratings/export/", apis.RatingsExportApi.as_view(), name="api-ratings-export"),
    path(PROJECT + "preferences/export/", apis.PreferencePairsExportApi.as_view(), name="api-preferences-export"),
]
