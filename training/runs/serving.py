"""Serving trained runs: each run's model loaded once per process, then single requests and batch predictions.

A small LRU (settings.LABELLOOP_PREDICTOR_CACHE_SIZE) keeps the most recently used Predictors of this process,
so the predict API pays for loading a model once, not per request. Loading reads safetensors and JSON only
(training/ml/artifacts.py): nothing is unpickled. Imported lazily by the API and the jobs, because it imports
torch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from core.errors import ServiceError
from training.ml.predict import Predictor
from training.models import ModelOutput, PredictionBatch, TrainingRun
from training.runs import selectors, services
from training.spec import LEAST_WORD, TASK_CLASSIFICATION, TASK_SPANS

CHUNK = 64


_lock = threading.Lock()


_predictors: OrderedDict[int, Any] = OrderedDict()


def predictor_for(run: TrainingRun) -> Any:
    """The run's Predictor (a SpanRecipe for span runs), loaded on first use and kept while it is among the most
    recently used."""
    with _lock:
        predictor = _predictors.get(run.pk)
        if predictor is not None:
            _predictors.move_to_end(run.pk)
            return predictor
        path = selectors.run_artifact_path(run)
        if path is None:
            raise ServiceError(services.NO_ARTIFACT)
        if run.task == TASK_SPANS:
            from training.ml.spans import SpanRecipe

            predictor = SpanRecipe.load(path)
        else:
            predictor = Predictor.load(path, registry=selectors.model_registry())
        _predictors[run.pk] = predictor
        while len(_predictors) > max(settings.LABELLOOP_PREDICTOR_CACHE_SIZE, 1):
            _predictors.popitem(last=False)
        return predictor


def loaded_run_ids() -> list[int]:
    """The runs whose models this process holds, least recently used first."""
    with _lock:
        return list(_predictors)


def predict(run: TrainingRun, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Labels with their probabilities, or generated responses, in the order of `texts`."""
    predictor = predictor_for(run)
    if run.task == TASK_SPANS:
        return list(predictor.predict(list(texts)))
    if predictor.task != TASK_CLASSIFICATION:
        return [{"response": response} for response in predictor.generate(texts)]
    return [
        {
            "label": result.label,
            "probabilities": result.probabilities,
            "confidence": result.confidence,
            "entropy": result.uncertainty,
        }
        for result in predictor.classify(texts)
    ]


def predict_batch(batch: PredictionBatch) -> int:
    """Write an output for every item in the batch's scope that has none from this run; returns how many."""
    run = batch.run
    predictor = predictor_for(run)
    ids = selectors.prediction_missing_ids(run=run, scope=batch.scope)
    written = 0
    for start in range(0, len(ids), CHUNK):
        texts = selectors.item_texts(ids[start : start + CHUNK])
        chunk = [item_id for item_id in ids[start : start + CHUNK] if item_id in texts]
        outputs = _outputs(run, predictor, chunk, [texts[item_id] for item_id in chunk])
        written += services.model_outputs_write(batch=batch, outputs=outputs)
    return written


def _outputs(run: TrainingRun, predictor: Any, item_ids: list[int], texts: list[str]) -> list[ModelOutput]:
    if run.task == TASK_SPANS:
        # Spans checked like every span value (offsets in the text, known labels), so a rater or a pre-annotation
        # never receives one the annotate page would refuse. Uncertainty: 1 - the probability of the least sure
        # word's tag (training/ml/spans.py), what the next round orders the annotation queue by.
        names = list(predictor.config.labels)
        return [
            ModelOutput(
                run=run,
                item_id=item_id,
                value=run.project.value_normalise({"spans": result["spans"]}, names, text=text),
                confidence=result["confidence"],
                uncertainty=result.get("uncertainty", 1.0 - result["confidence"]),
                # Marks the least-sure-word uncertainty: outputs stored before it hold 1 - the mean span confidence
                # (0.0 with no span), which the next round must not read as "sure of every word".
                probabilities={LEAST_WORD: 1.0 - result["uncertainty"]} if "uncertainty" in result else None,
            )
            for item_id, text, result in zip(item_ids, texts, predictor.predict(texts), strict=True)
        ]
    if predictor.task != TASK_CLASSIFICATION:
        return [
            ModelOutput(run=run, item_id=item_id, value={"response": response})
            for item_id, response in zip(item_ids, predictor.generate(texts), strict=True)
        ]
    return [
        ModelOutput(
            run=run,
            item_id=item_id,
            value={"label": result.label},
            probabilities=result.probabilities,
            confidence=result.confidence,
            uncertainty=result.uncertainty,
        )
        for item_id, result in zip(item_ids, predictor.classify(texts), strict=True)
    ]


def explain(run: TrainingRun, text: str, *, response: str | None = None) -> dict[str, Any]:
    """Word attributions of `text` (classification: towards its label; spans: towards each span found), or the
    log-probability of each token of `response` to the prompt `text` (generation): training/ml/explain.py's JSON."""
    predictor = predictor_for(run)
    if run.task == TASK_SPANS or predictor.task == TASK_CLASSIFICATION:
        return predictor.explain(text)
    return predictor.logprobs(text, response or "")
