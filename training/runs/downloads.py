"""Downloads of a run's files as streamed responses, shared by the run page and the API."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django.utils.text import slugify

from training.models import TrainingRun
from training.runs import selectors, services


def artifact_response(run: TrainingRun) -> StreamingHttpResponse:
    """The run's model folder as a zip, streamed: safetensors, JSON, the tokenizer and the model card."""
    path = selectors.run_artifact_path(run)
    if path is None:
        raise Http404(services.NO_ARTIFACT)
    name = f"labelloop-run-{run.pk}-{slugify(run.name or run.base_model)[:40] or 'model'}.zip"
    response = StreamingHttpResponse(selectors.zip_chunks(path), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
