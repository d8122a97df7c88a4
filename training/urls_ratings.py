"""Browser pages for the next round: ratings, blind A/B comparisons and their exports (training/views_ratings.py)."""

from django.urls import path

from . import views_ratings as views

RATINGS = "projects/<int:project_id>/ratings/"

urlpatterns = [
    path(RATINGS, views.rating_home, name="rating-home"),
    path(RATINGS + "runs/<int:run_id>/", views.rating_page, name="rating-page"),
    path(RATINGS + "runs/<int:run_id>/outputs/<int:output_id>/", views.rating_submit, name="rating-submit"),
    path(RATINGS + "comparisons/", views.comparison_create, name="comparison-create"),
    path(RATINGS + "comparisons/<int:comparison_id>/", views.comparison_page, name="comparison-page"),
    path(
        RATINGS + "comparisons/<int:comparison_id>/items/<int:item_id>/",
        views.comparison_submit,
        name="comparison-submit",
    ),
    path(RATINGS + "export/ratings.jsonl", views.ratings_export, name="ratings-export"),
    path(RATINGS + "export/preferences.jsonl", views.preferences_export, name="preferences-export"),
]
