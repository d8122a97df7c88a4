"""What adaptive routing reads from the database: voters' measured accuracy, the model's vote, the budget.

Accuracy is measured over every judgement in the project (routing.measured_accuracies, one-coin
Dawid-Skene), not taken from the noise scan's leave-one-out figure: that one judges an annotator against
the consensus of the *other* votes, which with two annotators per item is one noisy partner, and reads
far below the real accuracy. An unmeasured annotator counts as routing.PRIOR_ACCURACY, an unmeasured
reviewer as REVIEWER_PRIOR. The model's vote is `settings.LABELLOOP_ROUTING_MODEL` (a dotted path to
`fn(project, item_ids) -> {item id: ModelVote}`), by default the newest output of the project's latest
succeeded training run for the item, weighted by that run's test accuracy: items reach routing before
they have a final label, so a run's output for them is out of sample. Test-split items get no model vote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, Q, Sum, When
from django.db.models.functions import Greatest
from django.utils.module_loading import import_string

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Label,
    Project,
    ReviewStatus,
    ReviewTask,
    Split,
)
from annotation.review import routing

DEFAULT_MODEL_SOURCE = "annotation.review.routing_inputs.latest_run_votes"


# A reviewer nobody has measured yet counts as a little better than an unmeasured annotator: on a
# 1-1-1 split their word decides; two agreeing annotators still outweigh it until measured otherwise.
REVIEWER_PRIOR = routing.PRIOR_ACCURACY + 0.05


ROUTED_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


# Voters' accuracies are measured again when the project's judgements grew by this share, or got this old.
REMEASURE_GROWTH = 0.1
REMEASURE_SECONDS = 300.0


_measured: dict[int, tuple[float, int, dict[str, float]]] = {}  # project id -> (when, judgements, accuracies)
_measured_lock = threading.Lock()


def project_votes(*, project: Project) -> list[list[routing.Vote]]:
    """Every item's human judgements: its current annotations and the reviewers' decisions (their last word)."""
    by_item: dict[int, dict[str, routing.Vote]] = {}
    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).values_list(
        "item_id", "annotator__username", "value", "unsure"
    )
    for item_id, who, value, unsure in annotations.iterator(chunk_size=5000):
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            weight = routing.UNSURE_WEIGHT if unsure else 1.0
            by_item.setdefault(item_id, {})[who] = routing.Vote(who, value["label"], weight)
    decisions = Decision.objects.filter(
        item__project=project, source=DecisionSource.REVIEWER, reviewer__isnull=False
    ).order_by("created_at", "id")
    for item_id, who, value in decisions.values_list("item_id", "reviewer__username", "value").iterator(
        chunk_size=5000
    ):
        if item_id in by_item and isinstance(value, dict) and isinstance(value.get("label"), str):
            by_item[item_id][who] = routing.Vote(who, value["label"])
    return [list(votes.values()) for votes in by_item.values()]


def voter_accuracies(*, project: Project) -> dict[str, float]:
    """{username: accuracy} measured over every judgement in the project (routing.measured_accuracies).

    Cached per process: measured again once the judgements grew by REMEASURE_GROWTH or REMEASURE_SECONDS
    passed, so routing an item costs one count query, not a pass over the project.
    """
    count = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).count()
    now = time.monotonic()
    with _measured_lock:
        cached = _measured.get(project.pk)
    if cached is not None:
        when, seen, accuracies = cached
        if count <= seen * (1 + REMEASURE_GROWTH) + 20 and now - when < REMEASURE_SECONDS and count >= seen:
            return dict(accuracies)
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    measured = routing.measured_accuracies(project_votes(project=project), labels)
    accuracies = {who: accuracy for who, (accuracy, _n) in measured.items()}
    with _measured_lock:
        _measured[project.pk] = (now, count, accuracies)
    return dict(accuracies)


def model_source() -> Callable[[Project, Sequence[int]], dict[int, routing.ModelVote]]:
    return import_string(getattr(settings, "LABELLOOP_ROUTING_MODEL", DEFAULT_MODEL_SOURCE))


def latest_run_votes(project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """The latest succeeded classification run's output for these items, weighted by its test accuracy."""
    from training.models import ModelOutput, RunStatus, TrainingRun  # training depends on annotation

    run = (
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .only("pk", "metrics")
        .first()
    )
    accuracy = ((run.metrics or {}).get("test") or {}).get("accuracy") if run is not None else None
    if run is None or not isinstance(accuracy, int | float):
        return {}
    outputs = ModelOutput.objects.filter(run=run, item_id__in=list(item_ids)).values_list("item_id", "value")
    return {
        item_id: routing.ModelVote(label=value["label"], accuracy=float(accuracy))
        for item_id, value in outputs
        if isinstance(value, dict) and isinstance(value.get("label"), str)
    }


def model_votes(*, project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """The model's vote on each item that may have one: never on a test-split item (humans only there)."""
    test = set(ItemSplit.objects.filter(item_id__in=list(item_ids), split=Split.TEST).values_list("item_id", flat=True))
    allowed = [item_id for item_id in item_ids if item_id not in test]
    if not allowed:
        return {}
    votes = model_source()(project, allowed)
    return {item_id: vote for item_id, vote in votes.items() if item_id in allowed}


def budget_state(*, project: Project) -> routing.Budget:
    """The running allowance: items routed so far, judgements given or committed on them, items in all.

    Judgements: each routed item's taken slots (its overlap and any extra annotator asked for, claimed or
    not), plus every review task that was not withdrawn (audits and noise reviews are human work too).
    Two queries.
    """
    routed = Q(status__in=ROUTED_STATUSES) | Q(extra_slots__gt=0)
    slots = Case(
        When(extra_slots__gt=0, then=Greatest(F("slots_taken"), F("extra_slots") + project.overlap)),
        default=F("slots_taken"),
    )
    totals: dict[str, Any] = Item.objects.filter(project=project).aggregate(
        items=Count("pk"), routed=Count("pk", filter=routed), slots=Sum(slots, filter=routed)
    )
    reviews = ReviewTask.objects.filter(project=project).exclude(status=ReviewStatus.WITHDRAWN).count()
    return routing.Budget(
        per_item=project.routing_budget,
        routed=totals["routed"] or 0,
        spent=(totals["slots"] or 0) + reviews,
        total_items=totals["items"] or 0,
        overlap=project.overlap,
    )
