"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path
from django.views.generic import RedirectView

from . import apis, views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("", views.project_list, name="project-list"),
    # the list lives at /; /projects/ is where people look for it (every project page is under it)
    path("projects/", RedirectView.as_view(pattern_name="project-list", permanent=False)),
    path("projects/new/", views.project_create_view, name="project-create"),
    path("projects/<id:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<id:project_id>/settings/", views.project_settings, name="project-settings"),
    path("projects/<id:project_id>/settings/labels/", views.label_create_view, name="label-create"),
    path("projects/<id:project_id>/settings/labels/<id:label_id>/", views.label_update_view, name="label-update"),
    path("projects/<id:project_id>/settings/members/", views.member_set_view, name="member-set"),
    path(
        "projects/<id:project_id>/settings/members/<id:user_id>/remove/",
        views.member_remove_view,
        name="member-remove",
    ),
    # The settings page's "Next round" form: the project's round settings (its fields are annotation's).
    path("projects/<id:project_id>/rounds/settings/", views.round_settings_view, name="round-settings"),
    path("projects/<id:project_id>/guidelines/", views.guideline_detail, name="guideline-detail"),
    path("projects/<id:project_id>/guidelines/publish/", views.guideline_publish_view, name="guideline-publish"),
    path("projects/<id:project_id>/guidelines/acknowledge/", views.guideline_ack_view, name="guideline-ack"),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path("auth/token/", apis.TokenApi.as_view(), name="api-token"),
    path("auth/token/rotate/", apis.TokenRotateApi.as_view(), name="api-token-rotate"),
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("projects/", apis.ProjectListApi.as_view(), name="api-project-list"),
    path(f"{P}/", apis.ProjectDetailApi.as_view(), name="api-project-detail"),
    path(f"{P}/members/", apis.MemberListApi.as_view(), name="api-member-list"),
    path(f"{P}/members/<int:user_id>/", apis.MemberDetailApi.as_view(), name="api-member-detail"),
    path(f"{P}/labels/", apis.LabelListApi.as_view(), name="api-label-list"),
    path(f"{P}/labels/<int:label_id>/", apis.LabelDetailApi.as_view(), name="api-label-detail"),
    path(f"{P}/guidelines/", apis.GuidelineListApi.as_view(), name="api-guideline-list"),
    path(f"{P}/guidelines/current/", apis.GuidelineCurrentApi.as_view(), name="api-guideline-current"),
    path(
        f"{P}/guidelines/<int:version>/acknowledgements/",
        apis.GuidelineAcknowledgementApi.as_view(),
        name="api-guideline-acknowledgement",
    ),
]
