"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/import/", views.import_create_view, name="import-page"),
    path("projects/<id:project_id>/import/preview/", views.import_preview_view, name="import-preview"),
    path("projects/<id:project_id>/imports/<id:job_id>/", views.import_detail, name="import-detail"),
    path("projects/<id:project_id>/imports/<id:job_id>/errors.csv", views.import_errors_csv, name="import-errors"),
]

api_urlpatterns = [
    path("projects/<int:project_id>/imports/", apis.ImportListApi.as_view(), name="api-import-list"),
    path(
        "projects/<int:project_id>/imports/<int:import_id>/", apis.ImportDetailApi.as_view(), name="api-import-detail"
    ),
]
