"""What adaptive routing reads from the database: voters' measured accuracy, the model's vote, the budget.

Accuracy comes from the latest succeeded noise scan (each voter against the consensus of the others,
annotation/quality/noise.py); an unmeasured annotator counts as routing.PRIOR_ACCURACY, an unmeasured
reviewer as REVIEWER_PRIOR. The model's vote is `settings.LABELLOOP_ROUTING_MODEL` (a dotted path to
`fn(project, item_ids) -> {item id: ModelVote}`), by default the newest output of the project's latest
succeeded training run for the item, weighted by that run's test accuracy: items reach routing before
they have a final label, so a run's output for them is out of sample. Test-split items get no model vote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, Q, Sum, When
from django.db.models.functions import Greatest
from django.utils.module_loading import import_string

from annotation.models import Item, ItemSplit, ItemStatus, Project, ReviewStatus, ReviewTask, Split
from annotation.review import routing

DEFAULT_MODEL_SOURCE = "annotation.review.routing_inputs.latest_run_votes"


# A reviewer nobody has measured yet counts as a little better than an unmeasured annotator: on a
# 1-1-1 split their word decides; two agreeing annotators still outweigh it until measured otherwise.
REVIEWER_PRIOR = routing.PRIOR_ACCURACY + 0.05


ROUTED_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


def voter_accuracies(*, project: Project) -> dict[str, float]:
    """{username: shrunk accuracy} from the latest succeeded noise scan; {} before any scan measured anyone."""
    from annotation.quality.selectors import annotator_quality  # quality reads review: imported late

    quality = annotator_quality(project=project)
    return routing.accuracies_from_quality(quality["annotators"]) if quality else {}


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
    )
