"""REST API routes for the next round: ratings (training/apis_ratings.py), mounted under /api/."""

urlpatterns: list = []
