"""Browser pages for the next round: rounds (training/views_rounds.py)."""

urlpatterns: list = []
