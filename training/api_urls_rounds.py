"""REST API routes for the next round: rounds (training/apis_rounds.py), mounted under /api/."""

from django.urls import path

from . import apis_rounds

ROUNDS = "projects/<int:project_id>/rounds/"

urlpatterns = [
    path(ROUNDS, apis_rounds.RoundListApi.as_view(), name="api-round-list"),
    path(ROUNDS + "plan/", apis_rounds.RoundPlanApi.as_view(), name="api-round-plan"),
    path(ROUNDS + "advance/", apis_rounds.RoundAdvanceApi.as_view(), name="api-round-advance"),
]
