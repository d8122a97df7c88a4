"""Browser pages for the next round: rounds (training/views_rounds.py)."""

from django.urls import path

from . import views_rounds

ROUNDS = "projects/<int:project_id>/rounds/"

urlpatterns = [
    path(ROUNDS, views_rounds.round_list, name="round-list"),
    path(ROUNDS + "plan/", views_rounds.round_plan, name="round-plan"),
    path(ROUNDS + "advance/", views_rounds.round_advance, name="round-advance"),
    path(ROUNDS + "settings/", views_rounds.round_settings, name="round-settings"),
]
