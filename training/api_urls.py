"""REST API routes for training (training/apis.py), mounted under /api/ beside the annotation API."""

from django.urls import path

from . import apis

PROJECT = "projects/<int:project_id>/"
RUN = "runs/<int:run_id>/"

urlpatterns = [
    path(PROJECT + "runs/", apis.RunListApi.as_view(), name="api-run-list"),
    path(PROJECT + "runs/defaults/", apis.RunDefaultsApi.as_view(), name="api-run-defaults"),
    path(PROJECT + "runs/create/", apis.RunStartApi.as_view(), name="api-run-start"),
    path(RUN, apis.RunDetailApi.as_view(), name="api-run-detail"),
    path(RUN + "events/", apis.RunEventsApi.as_view(), name="api-run-events"),
    path(RUN + "cancel/", apis.RunCancelApi.as_view(), name="api-run-cancel"),
    path(RUN + "resume/", apis.RunResumeApi.as_view(), name="api-run-resume"),
    path(RUN + "artifact/", apis.RunArtifactApi.as_view(), name="api-run-artifact"),
    path(RUN + "predict/", apis.RunPredictApi.as_view(), name="api-run-predict"),
    path(RUN + "predictions/", apis.PredictionBatchStartApi.as_view(), name="api-prediction-batch-start"),
    path(RUN + "predictions/<int:batch_id>/", apis.PredictionBatchDetailApi.as_view(), name="api-prediction-batch"),
    path(RUN + "outputs/", apis.RunOutputsApi.as_view(), name="api-run-outputs"),
]
