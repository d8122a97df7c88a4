"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/rounds/", views.round_list, name="round-list"),
    path("projects/<id:project_id>/rounds/plan/", views.round_plan, name="round-plan"),
    path("projects/<id:project_id>/rounds/advance/", views.round_advance, name="round-advance"),
]

api_urlpatterns = [
    path("projects/<int:project_id>/rounds/", apis.RoundListApi.as_view(), name="api-round-list"),
    path("projects/<int:project_id>/rounds/plan/", apis.RoundPlanApi.as_view(), name="api-round-plan"),
    path("projects/<int:project_id>/rounds/advance/", apis.RoundAdvanceApi.as_view(), name="api-round-advance"),
    path("projects/<int:project_id>/rounds/settings/", apis.RoundSettingsApi.as_view(), name="api-round-settings"),
]
