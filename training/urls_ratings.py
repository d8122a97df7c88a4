"""Browser pages for the next round: ratings (training/views_ratings.py)."""

urlpatterns: list = []
