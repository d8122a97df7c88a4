"""HTTP responses that a page and an API of runs both send: the trained model as a zip download, its model card."""

from __future__ import annotations

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils.text import slugify

from training.ml.model_card import CARD_FILE
from training.models import TrainingRun
from training.runs import selectors, services

NO_MODEL_CARD = "This run's model has no model card."


def artifact_response(run: TrainingRun) -> StreamingHttpResponse:
    """The run's model folder as a zip, streamed: safetensors, JSON, the tokenizer and the model card."""
    path = selectors.run_artifact_path(run)
    if path is None:
        raise Http404(services.NO_ARTIFACT)
    name = f"labelloop-run-{run.pk}-{slugify(run.name or run.base_model)[:40] or 'model'}.zip"
    response = StreamingHttpResponse(selectors.zip_chunks(path), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def model_card_response(run: TrainingRun) -> HttpResponse:
    """The artifact's README.md as plain text, shown in the browser (saved as README.md if downloaded)."""
    path = selectors.run_artifact_path(run)
    card = path / CARD_FILE if path is not None else None
    if card is None or not card.is_file():
        raise Http404(NO_MODEL_CARD)
    response = HttpResponse(card.read_text(encoding="utf-8"), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{CARD_FILE}"'
    return response
