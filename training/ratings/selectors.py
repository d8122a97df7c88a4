"""Reads of ratings: the next output to rate, blind pairs, summaries and the exports."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from annotation.models import Item, ItemStatus, Project, SnapshotItem, Split
from annotation.permissions import REVIEW, access_project
from core.errors import ServiceError
from training.models import Comparison, ModelOutput, Preference, Rating, RunStatus, TrainingRun

EXPORT_CHUNK = 500

KIND_TEST, KIND_UNLABELLED, KIND_LABELLED = "test", "unlabelled", "labelled"
NOT_IN_COMPARISON = "This item has no response from both runs of the comparison."
SECONDS_MAX = 3600.0  # a page left open over lunch is not an hour of rating
RUN_NOT_FOUND = "No such run to rate."
OUTPUT_NOT_FOUND = "No such output of this run."
COMPARISON_NOT_FOUND = "No such comparison."



def rateable_runs(*, project: Project, rater: User) -> list[TrainingRun]:
    """Succeeded runs with outputs, newest first, each with `output_count` and the rater's `rated_count`."""
    rated = (
        Rating.objects.filter(run=OuterRef("pk"), rater=rater)
        .order_by()
        .values("run")
        .annotate(n=Count("output", distinct=True))
        .values("n")
    )
    return list(
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .annotate(output_count=Count("outputs"), rated_count=Subquery(rated))
        .filter(output_count__gt=0)
        .order_by("-created_at", "-id")
    )


def rating_run_get(*, project: Project, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.filter(project=project, pk=run_id, status=RunStatus.SUCCEEDED).first()
    if run is None:
        raise Http404(RUN_NOT_FOUND)
    run.project = project
    return run


def rating_run_get_for_user(
    *, user: User | AnonymousUser, project_id: int, run_id: int
) -> tuple[TrainingRun, str]:
    """A succeeded run of the project to rate: 404 when missing or the user is outside, 403 for annotators."""
    project, role = access_project(user=user, project_id=project_id, roles=REVIEW)
    return rating_run_get(project=project, run_id=run_id), role


def rating_list(
    *, run: TrainingRun, current: bool = False, rater: str | None = None, verdict: str | None = None
) -> QuerySet[Rating]:
    """The run's ratings in the order they were made: every one (ratings are appended, never updated), or with
    `current` only the latest per output and rater; optionally one rater's (by username) or one verdict's."""
    ratings = ratings_current(project=run.project, run=run) if current else Rating.objects.filter(run=run)
    if rater is not None:
        ratings = ratings.filter(rater__username=rater)
    if verdict is not None:
        ratings = ratings.filter(verdict=verdict)
    return ratings.select_related("rater", "guideline_version").order_by("created_at", "id")


def _with_kind(outputs: QuerySet[ModelOutput], run: TrainingRun) -> QuerySet[ModelOutput]:
    in_test = SnapshotItem.objects.filter(snapshot_id=run.snapshot_id, item_id=OuterRef("item_id"), split=Split.TEST)
    return outputs.select_related("item").annotate(in_test=Exists(in_test))


def output_kind(output: ModelOutput) -> str:
    """Where the item stands for this run: in its test split, still unlabelled, or labelled since."""
    if getattr(output, "in_test", False):
        return KIND_TEST
    return KIND_LABELLED if output.item.status == ItemStatus.APPROVED else KIND_UNLABELLED


@dataclass(frozen=True)
class RatingTask:
    """The next output a rater judges, and how many are left for them in this run (this one included)."""

    output: ModelOutput | None
    remaining: int

    @property
    def kind(self) -> str:
        return output_kind(self.output) if self.output is not None else ""


def rating_next(*, run: TrainingRun, rater: User) -> RatingTask:
    """The run's outputs this rater has not rated yet: test-split items first, then by item id. Two queries."""
    todo = ModelOutput.objects.filter(run=run).exclude(
        pk__in=Rating.objects.filter(run=run, rater=rater).values("output_id")
    )
    output = _with_kind(todo, run).order_by("-in_test", "item_id").first()
    return RatingTask(output=output, remaining=todo.count() if output is not None else 0)


def rating_output_get(*, run: TrainingRun, output_id: int) -> ModelOutput:
    output = _with_kind(ModelOutput.objects.filter(run=run, pk=output_id), run).first()
    if output is None:
        raise Http404(OUTPUT_NOT_FOUND)
    return output


def probabilities_sorted(output: ModelOutput) -> list[tuple[str, float]]:
    return sorted((output.probabilities or {}).items(), key=lambda kv: -kv[1])


def seconds_since(shown_at: str | float | None) -> float:
    """Seconds since the page showed the output (its hidden `shown_at` stamp); 0 when missing or garbled."""
    try:
        started = float(shown_at or 0)
    except (TypeError, ValueError):
        return 0.0
    return min(max(time.time() - started, 0.0), SECONDS_MAX) if started else 0.0


def ratings_current(*, project: Project, run: TrainingRun | None = None) -> QuerySet[Rating]:
    """The latest rating per (output, rater): the ones that count. Ids grow with time, so the latest is the max."""
    scope = Rating.objects.filter(project=project)
    if run is not None:
        scope = scope.filter(run=run)
    latest = scope.order_by().values("output_id", "rater_id").annotate(last=Max("id")).values("last")
    return Rating.objects.filter(pk__in=Subquery(latest))


def rating_history(*, output: ModelOutput, rater: User) -> list[Rating]:
    return list(Rating.objects.filter(output=output, rater=rater).order_by("id"))


def comparison_list(*, project: Project) -> list[Comparison]:
    return list(comparison_rows(project=project))


def comparison_rows(*, project: Project) -> QuerySet[Comparison]:
    """The project's comparisons, newest first, as a query (the API pages it)."""
    return Comparison.objects.filter(project=project).select_related("run_a", "run_b").order_by("-created_at", "-id")


def comparison_get(*, project: Project, comparison_id: int) -> Comparison:
    comparison = Comparison.objects.filter(project=project, pk=comparison_id).first()
    if comparison is None:
        raise Http404(COMPARISON_NOT_FOUND)
    comparison.project = project
    return comparison


def comparison_get_for_user(
    *, user: User | AnonymousUser, project_id: int, comparison_id: int, roles: frozenset[str] = REVIEW
) -> tuple[Comparison, str]:
    """A comparison of the project: 404 when missing or the user is outside, 403 for the wrong role."""
    project, role = access_project(user=user, project_id=project_id, roles=roles)
    return comparison_get(project=project, comparison_id=comparison_id), role


def comparison_runs_get(*, project: Project, run_a: int, run_b: int) -> tuple[TrainingRun, TrainingRun]:
    """The two runs a new comparison names, by id; ServiceError naming the field of one not in the project."""
    runs = {run.pk: run for run in TrainingRun.objects.filter(project=project, pk__in=[run_a, run_b])}
    for field, run_id in (("run_a", run_a), ("run_b", run_b)):
        if run_id not in runs:
            raise ServiceError(RUN_NOT_FOUND, field=field)
    return runs[run_a], runs[run_b]


def first_is_a(*, comparison_id: int, item_id: int, rater_id: int) -> bool:
    """Whether run A's response is shown first to this rater for this item: a keyed hash nobody can predict."""
    message = f"labelloop-ab:{comparison_id}:{item_id}:{rater_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()[0] % 2 == 0


def _shared_items(comparison: Comparison) -> QuerySet[Item]:
    both = ModelOutput.objects.filter(item_id=OuterRef("pk"))
    return Item.objects.filter(
        Exists(both.filter(run_id=comparison.run_a_id)), Exists(both.filter(run_id=comparison.run_b_id))
    )


def _ordered_outputs(comparison: Comparison, item_id: int, rater_id: int) -> tuple[ModelOutput, ModelOutput]:
    outputs = {
        output.run_id: output
        for output in ModelOutput.objects.filter(item_id=item_id, run_id__in=[comparison.run_a_id, comparison.run_b_id])
    }
    a, b = outputs.get(comparison.run_a_id), outputs.get(comparison.run_b_id)
    if a is None or b is None:
        raise ServiceError(NOT_IN_COMPARISON, field="item")
    return (a, b) if first_is_a(comparison_id=comparison.pk, item_id=item_id, rater_id=rater_id) else (b, a)


@dataclass(frozen=True)
class BlindPair:
    """What a rater may see of one comparison item: the prompt and two responses by side. Nothing else."""

    item_id: int
    prompt: str
    responses: tuple[str, str]
    remaining: int

    @property
    def response_1(self) -> str:
        return self.responses[0]

    @property
    def response_2(self) -> str:
        return self.responses[1]


def comparison_next(*, comparison: Comparison, rater: User) -> BlindPair | None:
    """The next item with responses from both runs that this rater has not judged, in item order."""
    judged = Preference.objects.filter(comparison=comparison, rater=rater).values("item_id")
    todo = _shared_items(comparison).exclude(pk__in=judged).order_by("pk")
    item = todo.only("pk", "text").first()
    if item is None:
        return None
    first, second = _ordered_outputs(comparison, item.pk, rater.pk)
    return BlindPair(
        item_id=item.pk,
        prompt=item.text,
        responses=(str(first.value.get("response", "")), str(second.value.get("response", ""))),
        remaining=todo.count(),
    )


def comparison_progress(*, comparison: Comparison, rater: User) -> dict[str, int]:
    total = _shared_items(comparison).count()
    judged = Preference.objects.filter(comparison=comparison, rater=rater).values("item_id").distinct().count()
    return {"total": total, "judged": judged}


def preferences_current(*, project: Project, comparison: Comparison | None = None) -> QuerySet[Preference]:
    """The latest preference per (comparison, item, rater)."""
    scope = Preference.objects.filter(comparison__project=project)
    if comparison is not None:
        scope = scope.filter(comparison=comparison)
    latest = scope.order_by().values("comparison_id", "item_id", "rater_id").annotate(last=Max("id")).values("last")
    return Preference.objects.filter(pk__in=Subquery(latest))


@dataclass(frozen=True)
class ComparisonSummary:
    comparison: Comparison
    wins_a: int
    wins_b: int
    ties: int
    raters: int

    @property
    def judged(self) -> int:
        return self.wins_a + self.wins_b + self.ties


def comparison_summary(*, comparison: Comparison) -> ComparisonSummary:
    """Wins per run and ties over the current preferences: for owners, never shown on the rating page."""
    rows = preferences_current(project=comparison.project, comparison=comparison)
    counts = rows.aggregate(
        wins_a=Count("pk", filter=Q(chosen__run_id=comparison.run_a_id)),
        wins_b=Count("pk", filter=Q(chosen__run_id=comparison.run_b_id)),
        ties=Count("pk", filter=Q(tie=True)),
        raters=Count("rater", distinct=True),
    )
    return ComparisonSummary(comparison=comparison, **counts)


def quoted(value: Any, text: str) -> Any:
    """A spans value with each span's text beside its offsets (as span imports read them back); others as they are."""
    spans = value.get("spans") if isinstance(value, dict) else None
    if not isinstance(spans, list):
        return value
    return {
        **value,
        "spans": [
            {**span, "text": text[span["start"] : span["end"]]}
            if isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("end"), int)
            else span
            for span in spans
        ],
    }


def ratings_export_rows(*, project: Project) -> Iterator[dict[str, Any]]:
    """One dict per current rating, in rating order, read in chunks."""
    rows = (
        ratings_current(project=project)
        .select_related("item", "output", "rater", "guideline_version")
        .order_by("id")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for rating in rows:
        yield {
            "item_id": rating.item_id,
            "external_id": rating.item.external_id,
            "text": rating.item.text,
            "run_id": rating.run_id,
            "output": quoted(rating.output.value, rating.item.text),
            "verdict": rating.verdict or None,
            "scores": rating.scores or None,
            "correction": quoted(rating.correction, rating.item.text),
            "note": rating.note,
            "rater": rating.rater.username,
            "guideline_version": rating.guideline_version.version if rating.guideline_version else None,
            "seconds_spent": round(rating.seconds_spent, 1),
            "created_at": rating.created_at.isoformat(),
        }


def preference_pairs(*, project: Project) -> Iterator[dict[str, str]]:
    """DPO pairs {"prompt", "chosen", "rejected"}: current non-tie preferences, then corrected responses."""
    preferences = (
        preferences_current(project=project)
        .filter(tie=False)
        .select_related("item", "chosen", "rejected")
        .order_by("id")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for preference in preferences:
        chosen, rejected = preference.chosen, preference.rejected
        if chosen is None or rejected is None:  # never: a check constraint gives every non-tie both outputs
            continue
        pair = _pair(preference.item.text, chosen.value, rejected.value)
        if pair is not None:
            yield pair
    corrections = (
        ratings_current(project=project)
        .filter(correction__has_key="response")
        .select_related("item", "output")
        .order_by("id")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for rating in corrections:
        pair = _pair(rating.item.text, rating.correction, rating.output.value)
        if pair is not None:
            yield pair


def _pair(prompt: str, chosen: Any, rejected: Any) -> dict[str, str] | None:
    chosen_text = chosen.get("response") if isinstance(chosen, dict) else None
    rejected_text = rejected.get("response") if isinstance(rejected, dict) else None
    if not isinstance(chosen_text, str) or not isinstance(rejected_text, str):
        return None
    if not chosen_text.strip() or chosen_text.strip() == rejected_text.strip():
        return None
    return {"prompt": prompt, "chosen": chosen_text, "rejected": rejected_text}
