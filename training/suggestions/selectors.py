"""Reads of pre-labelling: a project's suggestion runs, one run, its suggestions with their provenance."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotation.models import Project
from training.models import Suggestion, SuggestionRun


def suggestion_run_list(*, project: Project) -> QuerySet[SuggestionRun]:
    return SuggestionRun.objects.filter(project=project).select_related("guideline_version", "created_by")


def suggestion_run_get(*, project: Project, run_id: int) -> SuggestionRun | None:
    return suggestion_run_list(project=project).filter(pk=run_id).first()


def suggestion_run_latest(*, project: Project) -> SuggestionRun | None:
    return suggestion_run_list(project=project).first()


def suggestion_list(*, run: SuggestionRun) -> QuerySet[Suggestion]:
    """The run's suggestions, least sure first (what an owner checks first), then by item."""
    return Suggestion.objects.filter(run=run).select_related("item").order_by("score", "item_id")


def provenance(run: SuggestionRun) -> dict[str, Any]:
    """Where every suggestion of a run comes from: method, model, guideline version, few-shot examples, time."""
    return {
        "run_id": run.pk,
        "method": run.method,
        "model": run.model_name,
        "guideline_version": run.guideline_version.version if run.guideline_version else None,
        "few_shot_item_ids": list(run.shot_item_ids),
        "created_at": run.created_at.isoformat(),
        "created_by": run.created_by.username,
    }


def suggestion_as_json(suggestion: Suggestion, run: SuggestionRun) -> dict[str, Any]:
    return {
        "item_id": suggestion.item_id,
        "value": suggestion.value,
        "score": suggestion.score,
        "probabilities": suggestion.probabilities,
        "created_at": suggestion.created_at.isoformat(),
        "provenance": provenance(run),
    }


def comparison_rows(run: SuggestionRun) -> list[dict[str, Any]]:
    """The run's figures on labelled items, then each baseline's on the same items, best accuracy first."""
    evaluation = run.summary.get("evaluation") or {}
    rows = []
    if evaluation.get("suggestions"):
        rows.append({"name": f"This run ({run.get_method_display()})", "this": True, **evaluation["suggestions"]})
    for name, figures in sorted(
        (evaluation.get("baselines") or {}).items(), key=lambda pair: -(pair[1].get("accuracy") or 0.0)
    ):
        rows.append({"name": BASELINE_NAMES.get(name, name), "this": False, **figures})
    return rows


BASELINE_NAMES = {
    "majority": "Baseline: majority label",
    "tfidf_logreg": "Baseline: TF-IDF + logistic regression",
    "logreg_embeddings": "Baseline: embedding logistic regression",
    "zero_shot": "Baseline: zero-shot nearest label",
    "k_shot": "Baseline: k-shot nearest centroid",
}
