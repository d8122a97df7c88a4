"""Browser pages for training runs (training/views.py), under a project."""

from django.urls import path

from . import views

RUN = "projects/<int:project_id>/runs/<int:run_id>/"

urlpatterns = [
    path("projects/<int:project_id>/runs/", views.run_list, name="run-list"),
    path("projects/<int:project_id>/runs/compare/", views.run_compare, name="run-compare"),
    path("projects/<int:project_id>/snapshots/<int:snapshot_id>/train/", views.run_create, name="run-create"),
    path(RUN, views.run_detail, name="run-detail"),
    path(RUN + "cancel/", views.run_cancel, name="run-cancel"),
    path(RUN + "resume/", views.run_resume, name="run-resume"),
    path(RUN + "artifact/", views.run_artifact, name="run-artifact"),
    path(RUN + "predictions/", views.prediction_batch_start, name="prediction-batch-start"),
]
