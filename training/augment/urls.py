"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path(
        "projects/<id:project_id>/snapshots/<id:snapshot_id>/augment/",
        views.augmentation_create,
        name="augmentation-create",
    ),
    path(
        "projects/<id:project_id>/augmentations/<id:augmentation_id>/",
        views.augmentation_detail,
        name="augmentation-detail",
    ),
    path(
        "projects/<id:project_id>/augmentations/<id:augmentation_id>/download/",
        views.augmentation_download,
        name="augmentation-download",
    ),
]

P = "projects/<int:project_id>"

api_urlpatterns = [
    path(
        f"{P}/snapshots/<int:snapshot_id>/augmentations/",
        apis.AugmentationListApi.as_view(),
        name="api-augmentation-list",
    ),
    path(f"{P}/augmentations/<int:augmentation_id>/", apis.AugmentationDetailApi.as_view(), name="api-augmentation"),
]
