"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<id:project_id>/runs/", views.run_list, name="run-list"),
    path("projects/<id:project_id>/runs/compare/", views.run_compare, name="run-compare"),
    path("projects/<id:project_id>/snapshots/<id:snapshot_id>/train/", views.run_create, name="run-create"),
    path("projects/<id:project_id>/runs/<id:run_id>/", views.run_detail, name="run-detail"),
    path("projects/<id:project_id>/runs/<id:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("projects/<id:project_id>/runs/<id:run_id>/resume/", views.run_resume, name="run-resume"),
    path("projects/<id:project_id>/runs/<id:run_id>/distil/", views.run_distil, name="run-distil"),
    path("projects/<id:project_id>/runs/<id:run_id>/artifact/", views.run_artifact, name="run-artifact"),
    path("projects/<id:project_id>/runs/<id:run_id>/model-card/", views.run_model_card, name="run-model-card"),
    path(
        "projects/<id:project_id>/runs/<id:run_id>/predictions/",
        views.prediction_batch_start,
        name="prediction-batch-start",
    ),
    path(
        "projects/<id:project_id>/runs/<id:run_id>/span-prelabels/",
        views.run_span_prelabels,
        name="run-span-prelabels",
    ),
]

RUN = "projects/<int:project_id>/runs/<int:run_id>/"

api_urlpatterns = [
    path("projects/<int:project_id>/runs/", apis.RunListApi.as_view(), name="api-run-list"),
    path("projects/<int:project_id>/runs/defaults/", apis.RunDefaultsApi.as_view(), name="api-run-defaults"),
    path(RUN, apis.RunDetailApi.as_view(), name="api-run-detail"),
    path(RUN + "events/", apis.RunEventListApi.as_view(), name="api-run-events"),
    path(RUN + "cancel/", apis.RunCancelApi.as_view(), name="api-run-cancel"),
    path(RUN + "resume/", apis.RunResumeApi.as_view(), name="api-run-resume"),
    path(RUN + "distil/", apis.RunDistilApi.as_view(), name="api-run-distil"),
    path(RUN + "artifact/", apis.RunArtifactApi.as_view(), name="api-run-artifact"),
    path(RUN + "model-card/", apis.RunModelCardApi.as_view(), name="api-run-model-card"),
    path(RUN + "predict/", apis.RunPredictApi.as_view(), name="api-run-predict"),
    path(RUN + "predictions/", apis.PredictionBatchListApi.as_view(), name="api-prediction-batch-list"),
    path(RUN + "predictions/<int:batch_id>/", apis.PredictionBatchDetailApi.as_view(), name="api-prediction-batch"),
    path(RUN + "outputs/", apis.RunOutputListApi.as_view(), name="api-run-outputs"),
    path(RUN + "span-prelabels/", apis.RunSpanPrelabelsApi.as_view(), name="api-run-span-prelabels"),
]
