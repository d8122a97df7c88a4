"""REST API routes for the next round: rounds (training/apis_rounds.py), mounted under /api/."""

urlpatterns: list = []
