"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from . import apis, views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/new/", views.project_create_view, name="project-create"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project-settings"),
    path("projects/<int:project_id>/settings/labels/", views.label_create_view, name="label-create"),
    path("projects/<int:project_id>/settings/labels/<int:label_id>/", views.label_update_view, name="label-update"),
    path("projects/<int:project_id>/settings/members/", views.member_set_view, name="member-set"),
    # The settings page's "Next round" form: the project's round settings (its fields are annotation's).
    path("projects/<int:project_id>/rounds/settings/", views.round_settings_view, name="round-settings"),
    path("projects/<int:project_id>/guidelines/", views.guideline_detail, name="guideline-detail"),
    path("projects/<int:project_id>/guidelines/publish/", views.guideline_publish_view, name="guideline-publish"),
    path("projects/<int:project_id>/guidelines/acknowledge/", views.guideline_ack_view, name="guideline-ack"),
]

api_urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("projects/", apis.ProjectListApi.as_view(), name="api-project-list"),
    path("projects/create/", apis.ProjectCreateApi.as_view(), name="api-project-create"),
    path("projects/<int:project_id>/", apis.ProjectDetailApi.as_view(), name="api-project-detail"),
    path("projects/<int:project_id>/update/", apis.ProjectUpdateApi.as_view(), name="api-project-update"),
    path("projects/<int:project_id>/archive/", apis.ProjectArchiveApi.as_view(), name="api-project-archive"),
    path("projects/<int:project_id>/members/", apis.MemberListApi.as_view(), name="api-member-list"),
    path("projects/<int:project_id>/members/set/", apis.MemberSetApi.as_view(), name="api-member-set"),
    path("projects/<int:project_id>/labels/", apis.LabelListApi.as_view(), name="api-label-list"),
    path("projects/<int:project_id>/labels/create/", apis.LabelCreateApi.as_view(), name="api-label-create"),
    path("projects/<int:project_id>/guidelines/", apis.GuidelineListApi.as_view(), name="api-guideline-list"),
    path(
        "projects/<int:project_id>/guidelines/current/",
        apis.GuidelineCurrentApi.as_view(),
        name="api-guideline-current",
    ),
    path(
        "projects/<int:project_id>/guidelines/publish/",
        apis.GuidelinePublishApi.as_view(),
        name="api-guideline-publish",
    ),
    path(
        "projects/<int:project_id>/guidelines/acknowledge/",
        apis.GuidelineAcknowledgeApi.as_view(),
        name="api-guideline-acknowledge",
    ),
]
