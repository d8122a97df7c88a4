"""Reads for rounds: the open round, the rounds so far, the plan of the next round, and a round's figures.

Nothing here writes. The open round is the saved one, or - before a project's first round is written - an
unsaved round 1 (`pk` None) carrying the current guidelines: `services.round_open` writes it when a write
needs it. `round_plan` lists what starting the next round would change:

- corrections: a rater's correction of a model output becomes the item's final value (a Decision with
  source MODEL_CORRECTED), unless a reviewer decided after the rating or the item waits in review: then
  it goes to review with the correction as the suggestion, so no reviewer's decision is overwritten; a
  correction against a final value two annotators agreed on goes to review too (ReviewReason.CORRECTION);
- possible label errors: the chosen run confidently disagreeing with a final label, or a rater marking
  the model's label correct against it, opens a review task (ReviewReason.MODEL / RATING);
- the annotation queue: unlabelled open items get `Item.priority` from the model's uncertainty (entropy
  or margin) with a random share interleaved evenly, or a random order;
- pre-labels (optional): the model's value becomes `Item.prelabel`, shown only under `show_prelabels`;
- well-rated responses: prompts without a final value whose response every current rater scored at
  or above the threshold on every criterion become Decisions with source MODEL_RATED.

The test split is sacred: none of these model-driven changes touches a test-split item (its label stays what
people decided, so later test figures do not drift toward the model). The plan counts them instead
(`RoundPlan.test_held`), and `proposals_apply` holds any that got their split after the plan was read.

Queue ordering reads the candidates once into numpy arrays (16 bytes an item), so 100k+ items stay within
a few MiB. `services.round_advance` computes the plan here, outside its write transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from annotation.models import (
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Label,
    NoiseScan,
    Project,
    QueueOrder,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    ScanStatus,
    Split,
)
from annotation.projects.services import guideline_current
from annotation.quality import agreement
from annotation.quality.selectors import agreement_rows
from annotation.review.selectors import agreement_backed, latest_decisions
from annotation.review.services import ValueProposal
from annotation.tasktypes import InvalidValue, value_display, value_key
from core.errors import ServiceError
from training.models import ModelOutput, Rating, Round, RoundChange, RunStatus, TrainingRun, Verdict
from training.ratings.selectors import ratings_current
from training.rounds.options import EXAMPLES, NO_SUCH_RUN, PlanOptions
from training.rounds.ordering import entropy, margin, queue_order
from training.spec import LEAST_WORD, TASK_CLASSIFICATION, TASK_SPANS

READ_CHUNK = 5000


IDS_PER_QUERY = 900  # ids per `IN (...)`: under SQLite's 999-parameter limit of older builds


# The sections of the plan a test-split item is held from: corrections, well-rated responses, label errors found
# by a rater ("rating") or by the model ("model").
TEST_HELD_SECTIONS = ("corrections", "examples", ReviewReason.RATING.value, ReviewReason.MODEL.value)


TEXT_PREVIEW = 160


# The statuses of an item still waiting for annotators: the queue orders these, pre-labels go on these.
QUEUE_STATUSES = (ItemStatus.NEW, ItemStatus.IN_ANNOTATION)


NO_RUN_NOTE = "No succeeded run yet: the queue keeps its order, and no model output can be checked."


GENERATION_RANDOM_NOTE = (
    "Run {run} generates responses and recorded no uncertainty: the queue is in random order instead."
)


NO_OUTPUTS_NOTE = (
    "Run {run} has no outputs on the items waiting for annotation: predict them from the run's page first "
    "(its prediction batch covers the test split and the items without a final label)."
)


SPAN_SCORE_NOTE = (
    "Span run {run}: an item's uncertainty is 1 − the probability of its least sure word's tag (every word, "
    "O-tagged ones too, so possibly missed entities count); it orders the queue for entropy and margin alike."
)


SPAN_SCORE_NAME = "least sure word"


SPAN_OLDER_NOTE = (
    "{count} output(s) of span run {run} were predicted before outputs recorded their least sure word: they neither "
    "order the queue nor suggest label errors. Predict the waiting items again from the run's page to use them."
)


QUEUE_TEST_NOTE = (
    "{count} test-split item(s) waiting for annotators get no score from the model: they go after the scored items, "
    "as items without an output do, and its output does not pre-label them (the test split is sacred)."
)


TEST_SPLIT_NOTE = (
    "{count} test-split item(s) where the model or a rating disagrees with the label are left as they are: "
    "the test split is sacred, so only people reviewing their own disagreements change a test label, and "
    "the test figures stay an honest measure of the model."
)


MULTI_LABEL_NOTE = "Multi-label projects have no model disagreement check: the model predicts single labels."


def round_current(*, project: Project) -> Round:
    """The project's open round; before its first round is written, an unsaved round 1 (`pk` None)."""
    current = Round.objects.filter(project=project, closed_at__isnull=True).first()
    if current is not None:
        return current
    last = Round.objects.filter(project=project).order_by("-number").values_list("number", flat=True).first()
    return Round(project=project, number=(last or 0) + 1, guideline_version=guideline_current(project=project))


def round_list(*, project: Project) -> list[Round]:
    """Every round of the project, oldest first, the open one last (unsaved if not written yet)."""
    found = list(
        Round.objects.filter(project=project)
        .select_related("guideline_version", "snapshot", "closed_by")
        .prefetch_related("runs")
        .order_by("number")
    )
    if not found or found[-1].closed_at is not None:
        found.append(round_current(project=project))
    return found


def round_worst_slice(round_: Round) -> dict[str, Any] | None:
    """The worst flagged slice (training/ml/slices.py) of the round's run the figures name as best, else its
    newest run with per-slice figures: so the rounds page shows whether a slice's gap closes round over round.

    None when no run of the round was evaluated per slice (no slice fields set, or runs older than the feature);
    {"run": id, "flagged": 0} when one was and nothing was flagged.
    """
    if round_.pk is None:
        return None
    from training.ml.slices import METRIC_NAMES  # numpy and scikit-learn: not at a web process's import

    runs = sorted(round_.runs.all(), key=lambda run: run.pk, reverse=True)
    best = (round_.figures or {}).get("best_run")
    runs.sort(key=lambda run: run.pk != best)
    for run in runs:
        report = ((run.metrics or {}).get("test") or {}).get("slices")
        if report:
            worst = report.get("worst")
            found = {"run": run.pk, "flagged": report.get("flagged", 0), **(worst or {})}
            if worst:
                found["metric"] = METRIC_NAMES.get(worst.get("metric"), worst.get("metric"))
            return found
    return None


def runs_succeeded(*, project: Project) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED).order_by("-finished_at", "-id")


def plan_run(*, project: Project, run_id: int | None) -> TrainingRun | None:
    """The run the plan reads outputs from: the one asked for, or the latest succeeded run."""
    runs = runs_succeeded(project=project)
    if run_id is None:
        return runs.first()
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise ServiceError(NO_SUCH_RUN, field="run")
    return run


def _final_decision(item_ids: Iterable[int]) -> dict[int, Decision]:
    """The latest decision of each listed item (approved or not), one query."""
    latest: dict[int, Decision] = {}
    for decision in Decision.objects.filter(item_id__in=list(item_ids)).order_by("item_id", "created_at", "id"):
        latest[decision.item_id] = decision
    return latest


def _open_review_items(item_ids: Iterable[int]) -> set[int]:
    tasks = ReviewTask.objects.filter(item_id__in=list(item_ids), status=ReviewStatus.OPEN)
    return set(tasks.values_list("item_id", flat=True))


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_PREVIEW else text[: TEXT_PREVIEW - 1] + "…"


@dataclass
class Proposal:
    """One item-level change the plan proposes: a decision, or a review task when a decision would overwrite."""

    kind: str  # RoundChange.Kind
    item: Item
    value: dict[str, Any]
    reason: str
    action: str  # "decide" or "review"
    source: str = ""  # DecisionSource for "decide"
    review_reason: str = ""  # ReviewReason for "review"
    rating: Rating | None = None
    output: ModelOutput | None = None
    reviewer_id: int | None = None
    since: dt.datetime | None = None  # a decision after this overwrites nobody's: it goes to review instead
    skip_if_final: bool = True  # False for raters' conflicting corrections: review them whatever the final is
    extra: dict[str, Any] = field(default_factory=dict)

    def to_value(self) -> ValueProposal:
        """What annotation's review services apply: they re-check the routing under lock."""
        return ValueProposal(
            item_id=self.item.pk,
            value=self.value,
            reason=self.reason,
            decide=self.action == "decide",
            source=self.source,
            review_reason=self.review_reason or ReviewReason.RATING,
            since=self.since,
            reviewer_id=self.reviewer_id,
            guideline_version_id=self.rating.guideline_version_id if self.rating else None,
            skip_if_final=self.skip_if_final,
        )

    def example(self) -> dict[str, Any]:
        row = {
            "item_id": self.item.pk,
            "text": _preview(self.item.text),
            "value": value_display(self.value, self.item.text),
            "action": self.action,
            "reason": self.reason,
        }
        return {**row, **{k: v for k, v in self.extra.items() if k in ("final", "confidence", "raters")}}


def _route(
    proposal: Proposal, *, since: dt.datetime, finals: dict[int, Decision], in_review: set[int]
) -> Proposal | None:
    """Decide or review: never overwrite a reviewer's later decision or an item waiting in review."""
    final = finals.get(proposal.item.pk)
    if final is not None:
        proposal.extra["final"] = value_display(final.value, proposal.item.text)
    if final is not None and value_key(final.value) == value_key(proposal.value):
        return None  # already the final value: nothing to change
    if proposal.item.pk in in_review or (final is not None and final.created_at > since):
        proposal.action, proposal.review_reason = "review", ReviewReason.RATING
    return proposal


def _label_names(project: Project) -> list[str]:
    return list(Label.objects.filter(project=project).values_list("name", flat=True))


def _applied(kind: str, *, ratings: Iterable[int] = (), outputs: Iterable[int] = ()) -> tuple[set[int], set[int]]:
    """Ratings and outputs an earlier round already turned into this kind of change: never apply twice."""
    done = RoundChange.objects.filter(kind=kind).filter(Q(rating_id__in=list(ratings)) | Q(output_id__in=list(outputs)))
    pairs = list(done.values_list("rating_id", "output_id"))
    return {r for r, _ in pairs if r}, {o for _, o in pairs if o}


def plan_corrections(*, project: Project) -> list[Proposal]:
    """Current ratings carrying a correction, as decisions (or reviews), one per item.

    Raters who corrected the same item differently go to review with the first correction as suggestion.
    """
    ratings = list(
        ratings_current(project=project)
        .filter(correction__isnull=False)
        .exclude(verdict=Verdict.CORRECT)
        .select_related("item", "rater", "run", "output")
        .order_by("created_at", "id")
    )
    if not ratings:
        return []
    done, _ = _applied(RoundChange.Kind.CORRECTION, ratings=[r.pk for r in ratings])
    names = _label_names(project)
    by_item: dict[int, list[tuple[Rating, dict[str, Any]]]] = defaultdict(list)
    for rating in ratings:
        if rating.pk in done:
            continue
        try:
            value = project.value_normalise(rating.correction, names, text=rating.item.text)
        except InvalidValue:
            continue  # a correction naming a label the project no longer has cannot become a value
        by_item[rating.item_id].append((rating, value))
    finals = _final_decision(by_item)
    in_review = _open_review_items(by_item)
    agreed = agreement_backed(finals={item_id: d.value for item_id, d in finals.items()})
    proposals = []
    for entries in by_item.values():
        rating, value = entries[-1]
        who = rating.rater.get_username()
        reason = (
            f"Rating {rating.pk} by {who} corrected the output of run {rating.run_id} "
            f"({value_display(rating.output.value, rating.item.text)} → {value_display(value, rating.item.text)})."
        )
        proposal = Proposal(
            kind=RoundChange.Kind.CORRECTION,
            item=rating.item,
            value=value,
            reason=reason,
            action="decide",
            source=DecisionSource.MODEL_CORRECTED,
            rating=rating,
            output=rating.output,
            reviewer_id=rating.rater_id,
            since=rating.created_at,
        )
        if len({value_key(v) for _, v in entries}) > 1:
            proposal.action, proposal.review_reason = "review", ReviewReason.RATING
            proposal.skip_if_final = False
            proposal.reason = f"Raters corrected run {rating.run_id}'s output differently: " + ", ".join(
                f"{r.rater.get_username()}: {value_display(v, r.item.text)}" for r, v in entries
            )
            proposals.append(proposal)
            continue
        routed = _route(proposal, since=rating.created_at, finals=finals, in_review=in_review)
        final = finals.get(routed.item.pk) if routed is not None else None
        overruled = final is not None and final.source == DecisionSource.OWNER
        if routed is not None and routed.action == "decide" and (routed.item.pk in agreed or overruled):
            routed.action, routed.review_reason = "review", ReviewReason.CORRECTION
            who = "The project's owner set" if overruled else "The annotators agreed on"
            routed.reason += f" {who} {routed.extra['final']}: a reviewer decides."
        if routed is not None:
            proposals.append(routed)
    return proposals


def plan_well_rated(*, project: Project, min_rating: int, run: TrainingRun | None) -> list[Proposal]:
    """Generated responses to prompts without a final value that every current rater scored well on every
    criterion: they become reference responses (MODEL_RATED). Corrected ones are corrections instead."""
    if not project.task_kind.generative:
        return []
    criteria = list(project.rating_criteria or [])
    ratings = list(
        ratings_current(project=project)
        .exclude(item__status=ItemStatus.APPROVED)
        .select_related("item", "rater", "output")
        .order_by("created_at", "id")
    )
    by_output: dict[int, list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_output[rating.output_id].append(rating)
    _, done = _applied(RoundChange.Kind.EXAMPLE, outputs=list(by_output))

    def good(rating: Rating) -> bool:
        scores = rating.scores or {}
        keys = criteria or list(scores)
        return (
            bool(keys)
            and rating.correction is None
            and all(isinstance(scores.get(k), int | float) and scores[k] >= min_rating for k in keys)
        )

    best: dict[int, tuple[tuple[int, float], list[Rating]]] = {}
    for output_id, group in by_output.items():
        output = group[0].output
        if output_id in done or not all(good(r) for r in group) or not str(output.value.get("response", "")).strip():
            continue
        mean = float(np.mean([v for r in group for v in r.scores.values()]))
        rank = (1 if run is not None and output.run_id == run.pk else 0, mean)
        item_id = group[0].item_id
        if item_id not in best or rank > best[item_id][0]:
            best[item_id] = (rank, group)
    finals = _final_decision(best)
    in_review = _open_review_items(best)
    proposals = []
    for _, group in best.values():
        output, last = group[0].output, group[-1]
        raters = ", ".join(r.rater.get_username() for r in group)
        reason = (
            f"Run {output.run_id}'s response rated ≥ {min_rating} on every criterion by {raters} "
            f"(ratings {', '.join(str(r.pk) for r in group)})."
        )
        proposal = Proposal(
            kind=RoundChange.Kind.EXAMPLE,
            item=last.item,
            value={"response": output.value["response"].strip()},
            reason=reason,
            action="decide",
            source=DecisionSource.MODEL_RATED,
            rating=last,
            output=output,
            since=last.created_at,
            extra={"raters": raters, "ratings": [r.pk for r in group]},
        )
        routed = _route(proposal, since=last.created_at, finals=finals, in_review=in_review)
        if routed is not None:
            proposals.append(routed)
    return proposals


def _final_value_subquery() -> Subquery:
    latest = Decision.objects.filter(item_id=OuterRef("item_id")).order_by("-created_at", "-id")
    return Subquery(latest.values("value")[:1])


def plan_label_errors(
    *,
    project: Project,
    run: TrainingRun | None,
    confidence: float,
    skip_items: set[int],
    limit: int | None,
    test_held: dict[str, set[int]] | None = None,
) -> tuple[int, list[Proposal]]:
    """Final labels the chosen run confidently contradicts, and model labels raters called correct against
    the final label: (how many, the proposals — all of them when `limit` is None, else the first `limit`).

    Span projects: final spans a span run contradicts while sure of every word's tag (1 − its stored uncertainty,
    the least sure word's tag probability, at least `confidence`): its spans are the review's suggestion.

    Test-split items are never proposed: their ids go to `test_held` ("rating" / "model") instead."""
    spans = project.task_kind.needs_text
    if not (project.task_kind.single_class or spans):
        return 0, []
    proposals: list[Proposal] = []
    count = 0
    seen: set[int] = set(skip_items)
    # The owner's overrule is final against models and ratings too (review.services.item_overrule): never proposed.
    seen |= set(latest_decisions(project=project).filter(source=DecisionSource.OWNER).values_list("item_id", flat=True))
    held = test_held if test_held is not None else {}

    def keep(proposal: Proposal, split: str | None) -> None:
        nonlocal count
        seen.add(proposal.item.pk)
        if split == Split.TEST:
            held.setdefault(proposal.review_reason, set()).add(proposal.item.pk)
            return
        count += 1
        if limit is None or len(proposals) < limit:
            proposals.append(proposal)

    # Raters first: a person saying the model is right weighs more than the model's own confidence.
    rated = (
        ratings_current(project=project)
        .filter(verdict=Verdict.CORRECT, item__status=ItemStatus.APPROVED)
        .annotate(final=_final_value_subquery(), split=F("item__split_row__split"))
        .select_related("item", "rater", "output")
        .order_by("id")
    )
    done_ratings, _ = _applied(RoundChange.Kind.REVIEW, ratings=rated.values_list("id", flat=True))
    for rating in rated.iterator(chunk_size=READ_CHUNK):
        model = _model_value(rating.output.value)
        if rating.pk in done_ratings or rating.item_id in seen or not rating.final or model is None:
            continue
        if value_key(rating.final) == value_key(model):
            continue
        reason = (
            f"Rating {rating.pk} by {rating.rater.get_username()} marked run {rating.run_id}'s "
            f"“{value_display(model, rating.item.text)}” correct; the final {'spans are' if spans else 'label is'} "
            f"“{value_display(rating.final, rating.item.text)}”."
        )
        keep(
            Proposal(
                kind=RoundChange.Kind.REVIEW,
                item=rating.item,
                value=model,
                reason=reason,
                action="review",
                review_reason=ReviewReason.RATING,
                rating=rating,
                output=rating.output,
                extra={"final": value_display(rating.final, rating.item.text)},
            ),
            rating.split,
        )
    if run is None:
        return count, proposals
    if spans:  # how sure a span run is of a whole text: of its least sure word's tag, 1 − the stored uncertainty
        sure = Q(uncertainty__lte=1.0 - confidence, probabilities__has_key=LEAST_WORD)  # not an older output's
        most_sure_first = ("uncertainty", "id")
    else:
        sure, most_sure_first = Q(confidence__gte=confidence), ("-confidence", "id")
    outputs = (
        ModelOutput.objects.filter(sure, run=run, item__status=ItemStatus.APPROVED)
        .annotate(final=_final_value_subquery(), split=F("item__split_row__split"))
        .exclude(id__in=RoundChange.objects.filter(kind=RoundChange.Kind.REVIEW, output__run=run).values("output_id"))
        .select_related("item")
        .order_by(*most_sure_first)
    )
    for output in outputs.iterator(chunk_size=READ_CHUNK):
        sureness = 1.0 - output.uncertainty if spans and output.uncertainty is not None else output.confidence
        proposed = _model_value(output.value)
        if sureness is None or output.item_id in seen or not output.final or proposed is None:
            continue
        if value_key(output.final) == value_key(proposed):
            continue
        how = f"every word's tag at {sureness:.2f} or more" if spans else f"confidence {sureness:.2f}"
        reason = (
            f"Run {run.pk} predicts “{value_display(proposed, output.item.text)}” with {how}; "
            f"the final {'spans are' if spans else 'label is'} “{value_display(output.final, output.item.text)}”."
        )
        keep(
            Proposal(
                kind=RoundChange.Kind.REVIEW,
                item=output.item,
                value=proposed,
                reason=reason,
                action="review",
                review_reason=ReviewReason.MODEL,
                output=output,
                extra={"final": value_display(output.final, output.item.text), "confidence": round(sureness, 4)},
            ),
            output.split,
        )
    return count, proposals


def _model_value(value: Any) -> dict[str, Any] | None:
    """What a model output proposes as a final value: its label, or (span runs) its spans; None otherwise."""
    if not isinstance(value, dict):
        return None
    if value.get("label"):
        return {"label": value["label"]}
    if isinstance(value.get("spans"), list):
        return {"spans": value["spans"]}
    return None


def _queue_candidates(*, project: Project, exclude: set[int]) -> QuerySet[Item]:
    items = Item.objects.filter(project=project, is_open=True, status__in=QUEUE_STATUSES)
    return items.exclude(pk__in=exclude) if exclude else items


@dataclass
class QueuePlan:
    order: str  # what is used: entropy, margin or random
    ids: np.ndarray
    random: np.ndarray
    scored: int
    notes: list[str]
    outputs: dict[int, Any] = field(default_factory=dict)  # item id → output value, only when pre-labels are asked
    score_name: str = ""  # what a score is, as the page names it: the order, or SPAN_SCORE_NAME for span runs
    test_held: set[int] = field(default_factory=set)  # test-split candidates left unscored, without a pre-label
    older: set[int] = field(default_factory=set)  # span outputs predicted before the least-sure-word mark: unscored


def _least_word(probabilities: Any) -> bool:
    """Whether a span output stored its least sure word's tag probability (outputs predicted since it did)."""
    return isinstance(probabilities, dict) and LEAST_WORD in probabilities


def _uses_stored_uncertainty(run: TrainingRun) -> bool:
    """Span runs store one uncertainty per item and no label distribution: margin has nothing else to read."""
    return run.task == TASK_SPANS


def _test_split_candidates(candidates: QuerySet[Item]) -> set[int]:
    """Queued items that hold a test split (an item a reviewer sent back to annotators keeps its split)."""
    rows = ItemSplit.objects.filter(item__in=candidates, split=Split.TEST).values_list("item_id", flat=True)
    return set(rows)


def plan_queue(
    *, project: Project, run: TrainingRun | None, options: PlanOptions, seed: int, exclude: set[int], prelabels: bool
) -> QueuePlan:
    """Read each candidate once, streaming; keep only ids and scores (and values when pre-labelling)."""
    notes: list[str] = []
    ids = np.fromiter(
        _queue_candidates(project=project, exclude=exclude)
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator(chunk_size=READ_CHUNK),
        dtype=np.int64,
    )
    scores = np.full(len(ids), np.nan)
    order = options.queue_order
    outputs: dict[int, Any] = {}
    if run is None:
        order = QueueOrder.RANDOM if order != QueueOrder.RANDOM else order
        notes.append(NO_RUN_NOTE)
    scored = 0
    test_held: set[int] = set()
    older: set[int] = set()
    stored_only = run is not None and _uses_stored_uncertainty(run)
    if run is not None and len(ids):
        candidates = _queue_candidates(project=project, exclude=exclude)
        test_ids = _test_split_candidates(candidates)
        rows = (
            ModelOutput.objects.filter(run=run, item__in=candidates)
            .order_by("item_id")
            .values_list("item_id", "uncertainty", "probabilities", "value")
        )
        any_uncertainty = False
        for item_id, uncertainty, probabilities, value in rows.iterator(chunk_size=READ_CHUNK):
            position = int(np.searchsorted(ids, item_id))
            if position >= len(ids) or ids[position] != item_id:
                continue
            if item_id in test_ids:  # never moved up or pre-labelled by a model: the test split is sacred
                test_held.add(item_id)
                continue
            if stored_only and not _least_word(probabilities):
                older.add(item_id)  # a span output stored before the least-sure-word uncertainty: not comparable
                score = None
            elif order == QueueOrder.MARGIN and not stored_only:
                score = margin(probabilities)
            else:
                score = uncertainty if uncertainty is not None else entropy(probabilities)
            if score is not None and not math.isnan(score):
                scores[position] = score
                any_uncertainty = True
                scored += 1
            if prelabels:
                outputs[item_id] = value
        if order != QueueOrder.RANDOM and not any_uncertainty:
            if run.task not in (TASK_CLASSIFICATION, TASK_SPANS):
                notes.append(GENERATION_RANDOM_NOTE.format(run=run.pk))
                order = QueueOrder.RANDOM
            elif not scored:
                notes.append(NO_OUTPUTS_NOTE.format(run=run.pk))
        if stored_only and order != QueueOrder.RANDOM and scored:
            notes.append(SPAN_SCORE_NOTE.format(run=run.pk))
        if older:
            notes.append(SPAN_OLDER_NOTE.format(run=run.pk, count=len(older)))
    if test_held:
        notes.append(QUEUE_TEST_NOTE.format(count=len(test_held)))
    if order == QueueOrder.RANDOM:
        ordered, random = queue_order(ids, np.full(len(ids), np.nan), 1.0, seed)
    else:
        ordered, random = queue_order(ids, scores, options.random_share, seed)
    return QueuePlan(
        order=order,
        ids=ordered,
        random=random,
        scored=scored,
        notes=notes,
        outputs=outputs,
        score_name=SPAN_SCORE_NAME if stored_only and order != QueueOrder.RANDOM else order,
        test_held=test_held,
        older=older,
    )


@dataclass
class RoundPlan:
    round: Round
    run: TrainingRun | None
    options: PlanOptions
    corrections: list[Proposal]
    examples: list[Proposal]
    label_errors: list[Proposal]
    label_error_count: int
    queue: QueuePlan
    prelabel_count: int
    notes: list[str]
    test_held: dict[str, list[int]] = field(default_factory=dict)  # section → test-split item ids left alone

    def summary(self) -> dict[str, Any]:
        """JSON for the page and the API: counts and the first `options.examples` of each change."""
        n = self.options.examples
        queue_rows = []
        if n and len(self.queue.ids):
            head = [int(i) for i in self.queue.ids[:n]]
            texts = dict(Item.objects.filter(pk__in=head).values_list("pk", "text"))
            scores = self._scores(head)
            queue_rows = [
                {
                    "position": i + 1,
                    "item_id": pk,
                    "text": _preview(texts.get(pk, "")),
                    "random": bool(self.queue.random[i]),
                    "score": scores.get(pk),
                    "test_split": pk in self.queue.test_held,
                    "older_output": pk in self.queue.older,
                }
                for i, pk in enumerate(head)
            ]
        return {
            "round": self.round.number,
            "next_round": self.round.number + 1,
            "run": self.run.pk if self.run else None,
            "options": self.options.to_dict(),
            "notes": self.notes + self.queue.notes,
            "corrections": _section(self.corrections, n),
            "examples": _section(self.examples, n),
            "label_errors": {
                "count": self.label_error_count,
                "by_model": sum(p.review_reason == ReviewReason.MODEL for p in self.label_errors),
                "examples": [p.example() for p in self.label_errors[:n]],
            },
            "queue": {
                "count": len(self.queue.ids),
                "order": self.queue.order,
                "random": int(self.queue.random.sum()),
                "scored": self.queue.scored,
                "unscored": len(self.queue.ids) - self.queue.scored - len(self.queue.test_held),
                "score_name": self.queue.score_name,
                "test_held": len(self.queue.test_held),
                "examples": queue_rows,
            },
            "prelabels": {"enabled": self.options.prelabels, "count": self.prelabel_count},
            "test_split": self.test_split_summary(),
        }

    def test_split_summary(self) -> dict[str, Any]:
        """Test-split items the plan leaves alone, as counts only: no item, value or suggestion is shown."""
        items = {pk for ids in self.test_held.values() for pk in ids}
        return {
            "count": len(items),
            **{section: len(self.test_held.get(section, ())) for section in TEST_HELD_SECTIONS},
            "message": TEST_SPLIT_NOTE.format(count=len(items)) if items else "",
        }

    def _scores(self, ids: list[int]) -> dict[int, float | None]:
        if self.run is None:
            return {}
        out: dict[int, float | None] = {}
        rows = ModelOutput.objects.filter(run=self.run, item_id__in=ids).exclude(
            item__split_row__split=Split.TEST  # a test item's place owes nothing to the model: show no score
        )
        by_margin = self.queue.order == QueueOrder.MARGIN and not _uses_stored_uncertainty(self.run)
        for item_id, uncertainty, probabilities in rows.values_list("item_id", "uncertainty", "probabilities"):
            if item_id in self.queue.older:  # plan_queue found it predicted before the least-sure-word mark
                out[item_id] = None
                continue
            score = margin(probabilities) if by_margin else uncertainty
            out[item_id] = round(score, 4) if score is not None and not math.isnan(score) else None
        return out


def _section(proposals: list[Proposal], n: int) -> dict[str, Any]:
    return {
        "count": len(proposals),
        "decide": sum(p.action == "decide" for p in proposals),
        "review": sum(p.action == "review" for p in proposals),
        "examples": [p.example() for p in proposals[:n]],
    }


def _seed(project: Project, number: int) -> int:
    digest = hashlib.sha256(f"labelloop-queue:{project.pk}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def round_plan(*, project: Project, options: PlanOptions, full: bool = False, round_: Round | None = None) -> RoundPlan:
    """What starting the next round would change, without changing anything. `full` keeps every label-error
    proposal and the pre-label values (advance needs them), not just the first few the page shows."""
    current = round_ or round_current(project=project)
    run = plan_run(project=project, run_id=options.run_id)
    notes: list[str] = []
    if project.task_kind.multiple:
        notes.append(MULTI_LABEL_NOTE)
    corrections = plan_corrections(project=project)
    examples = plan_well_rated(project=project, min_rating=options.min_rating, run=run)
    touched = {p.item.pk for p in corrections} | {p.item.pk for p in examples}
    test = _test_split_ids(touched)
    held: dict[str, set[int]] = {
        "corrections": {p.item.pk for p in corrections if p.item.pk in test},
        "examples": {p.item.pk for p in examples if p.item.pk in test},
    }
    corrections = [p for p in corrections if p.item.pk not in test]
    examples = [p for p in examples if p.item.pk not in test]
    error_count, errors = plan_label_errors(
        project=project,
        run=run,
        confidence=options.disagreement_confidence,
        skip_items=touched,
        limit=None if full else options.examples,
        test_held=held,
    )
    decided = {p.item.pk for p in corrections + examples if p.action == "decide"}
    queue = plan_queue(
        project=project,
        run=run,
        options=options,
        seed=_seed(project, current.number),
        exclude=decided,
        prelabels=options.prelabels and full,
    )
    prelabel_count = 0
    if options.prelabels and run is not None:
        prelabel_count = (
            len(queue.outputs)
            if full
            else ModelOutput.objects.filter(run=run, item__in=_queue_candidates(project=project, exclude=decided))
            .exclude(item__split_row__split=Split.TEST)  # as plan_queue: a test item gets no model pre-label
            .count()
        )
    return RoundPlan(
        round=current,
        run=run,
        options=options,
        corrections=corrections,
        examples=examples,
        label_errors=errors,
        label_error_count=error_count,
        queue=queue,
        prelabel_count=prelabel_count,
        notes=notes,
        test_held={section: sorted(ids) for section, ids in held.items() if ids},
    )


def _test_split_ids(item_ids: Iterable[int]) -> set[int]:
    ids = list(item_ids)
    found: set[int] = set()
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        found.update(ItemSplit.objects.filter(item_id__in=chunk, split=Split.TEST).values_list("item_id", flat=True))
    return found


def round_runs(*, project: Project, round_: Round, run: TrainingRun | None) -> list[TrainingRun]:
    """The runs started since the previous round closed (all of them for round 1, which opens lazily, often
    after its first runs), plus the run the plan was made from."""
    previous = Round.objects.filter(project=project, number__lt=round_.number).order_by("-number").first()
    runs_here = TrainingRun.objects.filter(project=project).order_by("id")
    if previous is not None and previous.closed_at is not None:
        runs_here = runs_here.filter(created_at__gt=previous.closed_at)
    runs = list(runs_here)
    if run is not None and all(r.pk != run.pk for r in runs):
        runs.append(run)
    return runs


def round_figures(*, project: Project, runs: Iterable[TrainingRun]) -> dict[str, Any]:
    """A round's figures: its best run's main metric, agreement, noise rate, human ratings, items labelled."""
    runs = list(runs)
    goal = project.goal_metric
    figures: dict[str, Any] = {"metric_name": goal, "main_metric": None, "best_run": None}
    for run in runs:
        value = ((run.metrics or {}).get("test") or {}).get(goal)
        if isinstance(value, int | float) and (figures["main_metric"] is None or value > figures["main_metric"]):
            figures.update(main_metric=round(float(value), 6), best_run=run.pk)
    rows = [row[:3] for row in agreement_rows(project=project)]
    overall = agreement.agreement_summary(rows)["overall"] if rows else {}
    figures["agreement"] = overall.get("krippendorff_alpha")
    figures["kappa"] = overall.get("fleiss_kappa")
    scan = NoiseScan.objects.filter(project=project, status=ScanStatus.SUCCEEDED).order_by("-finished_at").first()
    summary = (scan.summary or {}) if scan else {}
    scanned = summary.get("scanned")
    figures["noise_rate"] = round(summary.get("flagged", 0) / scanned, 6) if scanned else None
    ratings = ratings_current(project=project).filter(run__in=[r.pk for r in runs])
    if project.task_kind.generative:
        totals: dict[str, list[float]] = defaultdict(list)
        for scores in ratings.values_list("scores", flat=True):
            for criterion, score in (scores or {}).items():
                if isinstance(score, int | float):
                    totals[criterion].append(float(score))
        per = {c: round(float(np.mean(v)), 4) for c, v in totals.items()}
        figures["ratings"] = per
        figures["rating"] = round(float(np.mean(list(per.values()))), 4) if per else None
        figures["rating_name"] = "mean rating"
    else:
        verdicts = list(ratings.exclude(verdict="").values_list("verdict", flat=True))
        correct = sum(v == Verdict.CORRECT for v in verdicts)
        figures["ratings"] = {"rated": len(verdicts), "correct": correct}
        figures["rating"] = round(correct / len(verdicts), 4) if verdicts else None
        figures["rating_name"] = "rated correct"
    figures["ratings_n"] = ratings.count()
    figures["items_labelled"] = latest_decisions(project=project).count()
    return figures


def round_changes_count(*, round_: Round) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for kind in RoundChange.objects.filter(round=round_).values_list("kind", flat=True):
        counts[kind] += 1
    return dict(counts)


def round_changes_examples(*, round_: Round, limit: int = EXAMPLES) -> list[RoundChange]:
    return list(RoundChange.objects.filter(round=round_).select_related("item").order_by("id")[:limit])
