"""Writes for rounds: open the first round, and start the next one by applying a precomputed plan.

`round_advance` computes the plan (`selectors.round_plan`) before its transaction, then in one short
transaction closes the open round (a conditional UPDATE, so two concurrent calls cannot both apply it),
hands the item-level changes to annotation's review services (the only writers of decisions, review tasks
and item status, which re-check each item under lock), sets the queue order and pre-labels through
annotation's annotate services, saves the chosen options through annotation's project services, and
records the round's figures and a RoundChange for every item-level change with the rating or output that
caused it. Pre-labels are a suggestion, never a value: they are counted in `Round.changes` only. Test-split
items are never changed by a round (the plan leaves them out; the review services hold any that got their split
since): `Round.changes["test_held"]` counts them and `Round.plan["test_split"]` says why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.annotate.services import item_prelabels_set, item_priorities_set
from annotation.models import Project, ReviewReason, Snapshot
from annotation.projects.services import guideline_current, project_round_settings_set
from annotation.review.selectors import latest_decisions
from annotation.review.services import proposals_apply
from annotation.webhooks import events as webhook_events
from core.errors import ServiceError
from training.models import Round, RoundChange
from training.rounds.options import PlanOptions
from training.rounds.selectors import Proposal, round_current, round_figures, round_plan, round_runs

ROUND_MOVED_ON = "Round {number} is already closed: the plan you saw is out of date, look at it again."


def round_open(*, project: Project) -> Round:
    """The project's open round, written now as round 1 (with the current guidelines) if it has none."""
    current = round_current(project=project)
    if current.pk is not None:
        return current
    try:
        with transaction.atomic():
            current.save()
            return current
    except IntegrityError:  # opened by a concurrent request: one open round per project
        return Round.objects.get(project=project, closed_at__isnull=True)


@dataclass(frozen=True)
class AdvanceResult:
    closed: Round
    opened: Round
    applied: bool  # False when another request had already started the next round (nothing was done)


def _apply(
    *, project: Project, round_: Round, proposals: list[Proposal], counts: dict[str, int], held: list[int]
) -> None:
    """Hand one section of the plan to annotation's review services and record what each change did.

    An item the review services held (it joined the test split after the plan was read) is added to `held`."""
    changes = []
    outcomes = proposals_apply(project=project, proposals=[p.to_value() for p in proposals])
    for proposal, outcome in zip(proposals, outcomes, strict=True):
        data = {"value": proposal.value, "reason": proposal.reason, **proposal.extra}
        if outcome.action == "held":
            held.append(outcome.item_id)
            continue
        if outcome.action == "unchanged":  # the item changed since the plan: its value is already final
            continue
        if outcome.action == "decide":
            data["decision_id"] = outcome.decision_id
            kind = proposal.kind
            counts[kind] += 1
        else:
            data.update(task_id=outcome.task_id, review_reason=outcome.review_reason, meant=proposal.kind)
            kind = RoundChange.Kind.REVIEW
            counts["review_model" if outcome.review_reason == ReviewReason.MODEL else "review_rating"] += 1
            if proposal.kind != RoundChange.Kind.REVIEW:
                counts[f"{proposal.kind}_to_review"] += 1
        changes.append(
            RoundChange(
                round=round_,
                item_id=proposal.item.pk,
                kind=kind,
                rating=proposal.rating,
                output=proposal.output,
                data=data,
            )
        )
    RoundChange.objects.bulk_create(changes, batch_size=1000)


def round_advance(
    *, project: Project, user: User, options: PlanOptions, round_number: int | None = None
) -> AdvanceResult:
    """Close the open round by applying its plan and open the next.

    Idempotent: `round_number` is the round the owner saw the plan of; if it is closed already (a second
    click, a retry) nothing more happens. The plan is read first, outside the transaction; the transaction
    only writes, after closing the round with a conditional UPDATE on `closed_at IS NULL` for that number.
    """
    current = round_current(project=project)
    if round_number is not None and round_number != current.number:
        closed = Round.objects.filter(project=project, number=round_number, closed_at__isnull=False).first()
        if closed is None:
            raise ServiceError(ROUND_MOVED_ON.format(number=round_number), field="round")
        return AdvanceResult(closed=closed, opened=round_open(project=project), applied=False)
    plan = round_plan(project=project, options=options, full=True, round_=current)  # a bad run id raises here
    runs = round_runs(project=project, round_=current, run=plan.run)
    figures = round_figures(project=project, runs=runs)
    snapshot = Snapshot.objects.filter(project=project).order_by("-created_at", "-id").first()
    with transaction.atomic():
        current = round_open(project=project)
        won = Round.objects.filter(pk=current.pk, number=plan.round.number, closed_at__isnull=True).update(
            closed_at=timezone.now(), closed_by=user
        )
        if not won:  # another request started the next round since this plan was read
            closed = Round.objects.get(project=project, number=plan.round.number)
            return AdvanceResult(closed=closed, opened=round_open(project=project), applied=False)
        counts: dict[str, int] = defaultdict(int)
        held_late: list[int] = []
        for section in (plan.corrections, plan.examples, plan.label_errors):
            _apply(project=project, round_=current, proposals=section, counts=counts, held=held_late)
        test_split = plan.test_split_summary()
        test_split["held_at_apply"] = len(held_late)  # got their split between the plan and now
        counts["test_held"] = test_split["count"] + len(held_late)
        queue = plan.queue
        n = len(queue.ids)
        counts["queued"] = item_priorities_set(
            project=project, priorities=((float(n - i), int(pk)) for i, pk in enumerate(queue.ids))
        )
        counts["queued_random"] = int(queue.random.sum())
        if options.prelabels and plan.run is not None:
            counts["prelabels"] = item_prelabels_set(
                project=project, prelabels=((value, item_id) for item_id, value in queue.outputs.items())
            )
        project_round_settings_set(
            project=project,
            queue_order=options.queue_order,
            random_share=options.random_share,
            disagreement_confidence=options.disagreement_confidence,
            show_prelabels=options.prelabels,
        )
        current.runs.add(*runs)
        figures["items_labelled"] = latest_decisions(project=project).count()  # after this round's decisions
        Round.objects.filter(pk=current.pk).update(
            figures=figures,
            changes={
                "correction": 0,
                "example": 0,
                "review_model": 0,
                "review_rating": 0,
                "prelabels": 0,
                "test_held": 0,
                **counts,
            },
            plan={
                **options.to_dict(),
                "run_id": plan.run.pk if plan.run else None,
                "queue_order_used": queue.order,
                "notes": plan.notes + queue.notes,
                "test_split": test_split,
            },
            snapshot=snapshot,
        )
        opened = Round.objects.create(
            project=project, number=current.number + 1, guideline_version=guideline_current(project=project)
        )
        webhook_events.round_started(round=opened, previous=current)
    current.refresh_from_db()
    return AdvanceResult(closed=current, opened=opened, applied=True)
