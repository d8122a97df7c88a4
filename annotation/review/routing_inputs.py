"""What adaptive routing reads from the database: voters' measured accuracy, the model's vote, the budget.

Accuracy is measured over every judgement in the project (routing.measured_accuracies, one-coin
Dawid-Skene), not taken from the noise scan's leave-one-out figure: that one judges an annotator against
the consensus of the *other* votes, which with two annotators per item is one noisy partner, and reads
far below the real accuracy. An unmeasured annotator counts as routing.PRIOR_ACCURACY, an unmeasured
reviewer as REVIEWER_PRIOR, and each one's measure is pulled toward the figure they count at unmeasured. The model's
vote is `settings.LABELLOOP_ROUTING_MODEL` (a dotted path to
`fn(project, item_ids) -> {item id: ModelVote}`), by default the newest output of the project's latest
succeeded training run for the item, weighted by that run's test accuracy: items reach routing before
they have a final label, so a run's output for them is out of sample. Where it has none, an item a noise scan
flagged gets, on its review, the out-of-fold model's vote of its newest flag that has one (`scan_votes`). The
default source's and the scans' accuracies are pulled down by how few items measured them
(routing.model_accuracy); a custom source's are its own. Test-split items get no model vote, and their votes are
weighed by accuracies measured without any (`voter_accuracies(humans_only=True)`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, Q, QuerySet, Sum, When
from django.db.models.functions import Greatest
from django.utils.module_loading import import_string

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Label,
    Membership,
    NoiseFlag,
    NoiseScan,
    Project,
    ReviewStatus,
    ReviewTask,
    Role,
    RoutingPolicy,
    ScanStatus,
    Split,
)
from annotation.review import routing

DEFAULT_MODEL_SOURCE = "annotation.review.routing_inputs.latest_run_votes"


# A reviewer nobody has measured yet counts as a little better than an unmeasured annotator: on a
# 1-1-1 split their word decides; two agreeing annotators still outweigh it until measured otherwise.
REVIEWER_PRIOR = round(routing.PRIOR_ACCURACY + 0.05, 6)


ROUTED_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


# Voters' accuracies are measured again when the project's judgements grew by this share, or got this old.
REMEASURE_GROWTH = 0.1
REMEASURE_SECONDS = 300.0


# (project id, created, humans only) -> (when, judgements, {voter: (accuracy, items)}); `created` tells a reused
# id apart
_measured: dict[tuple[int, Any, bool], tuple[float, int, dict[str, tuple[float, float]]]] = {}
_measured_lock = threading.Lock()


def project_votes(*, project: Project) -> dict[int, list[routing.Vote]]:
    """{item id: its human judgements}: its current annotations and the reviewers' decisions (their last word)."""
    by_item: dict[int, dict[str, routing.Vote]] = {}
    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).values_list(
        "item_id", "annotator__username", "value", "unsure"
    )
    for item_id, who, value, unsure in annotations.iterator(chunk_size=5000):
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            weight = routing.UNSURE_WEIGHT if unsure else 1.0
            by_item.setdefault(item_id, {})[who] = routing.Vote(who, value["label"], weight)
    for item_id, said in reviewer_votes(Decision.objects.filter(item__project=project)).items():
        if item_id in by_item:
            by_item[item_id].update(said)
    return {item_id: list(votes.values()) for item_id, votes in by_item.items()}


def reviewer_votes(decisions: QuerySet[Decision]) -> dict[int, dict[str, routing.Vote]]:
    """{item id: {reviewer: their vote}} from these decisions' reviewer decisions: each reviewer's last word on an item
    (single labels only). The one reading of reviews as votes, for measuring accuracy and for weighing. An owner's
    overrule is no vote: the item has left the weighted vote (review.selectors.item_overruled)."""
    rows = (
        decisions.filter(source=DecisionSource.REVIEWER, reviewer__isnull=False)
        .order_by("created_at", "id")
        .values_list("item_id", "reviewer__username", "value")
    )
    return reviewer_votes_of(rows.iterator(chunk_size=5000))


def reviewer_votes_of(rows: Iterable[tuple[int, str, Any]]) -> dict[int, dict[str, routing.Vote]]:
    """`reviewer_votes` from (item id, reviewer, value) rows of reviewer decisions, oldest first (decisions already
    read: the review panel's)."""
    by_item: dict[int, dict[str, routing.Vote]] = {}
    for item_id, who, value in rows:
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            by_item.setdefault(item_id, {})[who] = routing.Vote(who, value["label"])
    return by_item


def voter_accuracies(*, project: Project, humans_only: bool = False) -> dict[str, float]:
    """{username: accuracy} measured over every judgement in the project: `voter_measures` without the item counts."""
    return {who: accuracy for who, (accuracy, _n) in voter_measures(project=project, humans_only=humans_only).items()}


def voter_measures(*, project: Project, humans_only: bool = False) -> dict[str, tuple[float, float]]:
    """{username: (accuracy, items it was measured on)} over every judgement in the project
    (routing.measured_accuracies), each item's posterior with the model's vote where it has one (`model_votes`).

    `humans_only`: measured on the human judgements alone, for weighing a test-split item's votes: a test label is
    people's word, and accuracies the model helped measure would lean it toward the annotators who agree with the
    model (the figures the test split exists for would flatter it).

    Cached per process: measured again once the judgements grew by REMEASURE_GROWTH or REMEASURE_SECONDS
    passed, so routing an item costs one count query, not a pass over the project (a new run's or scan's votes
    are in the accuracies within REMEASURE_SECONDS).
    """
    count = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).count()
    now = time.monotonic()
    key = (project.pk, project.created_at, humans_only)
    with _measured_lock:
        cached = _measured.get(key)
    if cached is not None:
        when, seen, measured = cached
        if count <= seen * (1 + REMEASURE_GROWTH) + 20 and now - when < REMEASURE_SECONDS and count >= seen:
            return dict(measured)
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    votes = project_votes(project=project)
    shared = [item_id for item_id, said in votes.items() if len(said) >= 2]
    models = {} if humans_only else model_votes(project=project, item_ids=shared)
    measured = routing.measured_accuracies(
        [votes[item_id] for item_id in shared],
        labels,
        [models.get(item_id) for item_id in shared],
        priors=dict.fromkeys(reviewers(project=project), REVIEWER_PRIOR),
    )
    with _measured_lock:
        _measured[key] = (now, count, measured)
    return dict(measured)


def reviewers(*, project: Project) -> set[str]:
    """Who counts as a reviewer unmeasured (REVIEWER_PRIOR): the project's reviewer members and anyone who made a
    review decision in it (owners included)."""
    members = Membership.objects.filter(project=project, role=Role.REVIEWER).values_list("user__username", flat=True)
    decided = (
        Decision.objects.filter(item__project=project, source=DecisionSource.REVIEWER, reviewer__isnull=False)
        .values_list("reviewer__username", flat=True)
        .distinct()
    )
    return set(members) | set(decided)


def measured_ago(*, project: Project) -> float | None:
    """Seconds since this process last measured the project's voters (`voter_measures`), or None if it has not."""
    with _measured_lock:
        cached = _measured.get((project.pk, project.created_at, False))
    return None if cached is None else time.monotonic() - cached[0]


def judgements_given(*, project: Project) -> tuple[dict[str, int], dict[str, int]]:
    """({username: submitted annotations}, {username: review decisions}) in the project: what the plan weighs its
    annotator and reviewer figures by, and what `vote_weights` lists."""
    annotations = (
        Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
        .values_list("annotator__username")
        .annotate(n=Count("id"))
    )
    reviews = (
        Decision.objects.filter(item__project=project, source=DecisionSource.REVIEWER, reviewer__isnull=False)
        .values_list("reviewer__username")
        .annotate(n=Count("id"))
    )
    return dict(annotations), dict(reviews)


def vote_weights(
    *, project: Project, given: tuple[dict[str, int], dict[str, int]] | None = None
) -> list[dict[str, Any]]:
    """Each person's word in the weighted vote as routing weighs it now: their measured accuracy (`voter_measures`),
    as the vote counts it (clipped as routing.posterior clips it), with its 95 % interval (routing.accuracy_interval)
    and the judgements it was measured on, beside the annotations and reviews they gave (`given`:
    `judgements_given`, read here unless passed). One nobody has measured yet is listed at the prior they count at:
    REVIEWER_PRIOR for a reviewer member or anyone who reviewed (a review counts at it), else PRIOR_ACCURACY, with no
    interval. Annotators first, then reviewers and owners, then people no longer members (their judgements still
    vote); by name within each. Owners and reviewers only: it names everyone's accuracy."""
    measured = voter_measures(project=project)
    annotations, reviews = given if given is not None else judgements_given(project=project)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    labelling = {name for name, role in roles.items() if role in (Role.ANNOTATOR, Role.REVIEWER)}
    k = Label.objects.filter(project=project).count()
    order = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.OWNER: 2}
    rows = []
    for name in set(measured) | set(annotations) | set(reviews) | labelling:
        role = roles.get(name, "")
        low = high = None
        if name in measured:
            accuracy, n = measured[name]
            low, high = routing.accuracy_interval(accuracy, n)
            accuracy = routing.counted_accuracy(accuracy, k)
        else:
            reviewing = role == Role.REVIEWER or reviews.get(name, 0) > 0
            accuracy, n = (REVIEWER_PRIOR if reviewing else routing.PRIOR_ACCURACY), 0.0
        rows.append(
            {
                "who": name,
                "role": role,
                "accuracy": accuracy,
                "low": low,
                "high": high,
                "measured_on": int(n),
                "annotations": annotations.get(name, 0),
                "reviews": reviews.get(name, 0),
            }
        )
    return sorted(rows, key=lambda row: (order.get(row["role"], 3), row["who"]))


def _by_share(
    counts: Mapping[str, float], members: Iterable[str], accuracies: Mapping[str, float], prior: float
) -> float:
    """Accuracy expected of the next judgement of a kind: each person's measured accuracy (`prior` for one nobody has
    measured yet) weighed by how many such judgements they gave; before any, the members' mean (`members` is read
    only then); else `prior`."""
    weights = dict(counts) or dict.fromkeys(members, 1.0)
    if not weights:
        return prior
    return sum(accuracies.get(name, prior) * w for name, w in weights.items()) / sum(weights.values())


def reviewer_accuracy(
    *, project: Project, accuracies: Mapping[str, float], reviews: Mapping[str, int] | None = None
) -> float:
    """What the routing plan expects of a review: the measured accuracy of whoever reviews (owners included), weighed
    by how many reviews each gave; before any review, the reviewer members' mean; REVIEWER_PRIOR for one nobody has
    measured yet, and for a project without reviewers. `reviews`: {username: review decisions}
    (`judgements_given`), read here unless passed."""
    given = reviews if reviews is not None else judgements_given(project=project)[1]
    members = Membership.objects.filter(project=project, role=Role.REVIEWER).values_list("user__username", flat=True)
    return _by_share({name: float(n) for name, n in given.items()}, members, accuracies, REVIEWER_PRIOR)


def annotator_accuracy(
    *, project: Project, accuracies: Mapping[str, float], annotations: Mapping[str, int] | None = None
) -> float:
    """What the routing plan expects of one more annotator: the measured accuracy of those who annotate, weighed by
    their annotations in the project (PRIOR_ACCURACY for one nobody has measured yet). `annotations`: {username:
    submitted annotations} (`judgements_given`), read here unless passed."""
    given = annotations if annotations is not None else judgements_given(project=project)[0]
    members = Membership.objects.filter(project=project, role=Role.ANNOTATOR).values_list("user__username", flat=True)
    return _by_share({name: float(n) for name, n in given.items()}, members, accuracies, routing.PRIOR_ACCURACY)


def in_test_split(*, item_id: int) -> bool:
    return ItemSplit.objects.filter(item_id=item_id, split=Split.TEST).exists()


def model_source() -> Callable[[Project, Sequence[int]], dict[int, routing.ModelVote]]:
    return import_string(getattr(settings, "LABELLOOP_ROUTING_MODEL", DEFAULT_MODEL_SOURCE))


def _latest_run(project: Project) -> tuple[Any, float] | None:
    """(the latest succeeded run, its vote's weight: test accuracy shrunk by the test items, routing.model_accuracy),
    or None where no run has a test accuracy."""
    from training.models import RunStatus, TrainingRun  # training depends on annotation

    run = (
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .only("pk", "metrics")
        .first()
    )
    test = ((run.metrics or {}).get("test") or {}) if run is not None else {}
    accuracy, n = test.get("accuracy"), test.get("n")
    if run is None or not isinstance(accuracy, int | float):
        return None
    return run, routing.model_accuracy(float(accuracy), float(n) if isinstance(n, int | float) else None)


def _run_votes(run: Any, weight: float, item_ids: Sequence[int] | None) -> dict[int, routing.ModelVote]:
    from training.models import ModelOutput

    outputs = ModelOutput.objects.filter(run=run)
    if item_ids is not None:
        outputs = outputs.filter(item_id__in=list(item_ids))
    return {
        item_id: routing.ModelVote(label=value["label"], accuracy=weight)
        for item_id, value in outputs.values_list("item_id", "value").iterator(chunk_size=5000)
        if isinstance(value, dict) and isinstance(value.get("label"), str)
    }


def latest_run_votes(project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """The latest succeeded classification run's output for these items, weighted by its test accuracy (shrunk by
    the number of test items, routing.model_accuracy)."""
    latest = _latest_run(project)
    return {} if latest is None else _run_votes(*latest, item_ids)


def _every_run_vote(project: Project) -> Callable[[Project, Sequence[int]], dict[int, routing.ModelVote]]:
    """latest_run_votes for a whole project at once (measuring accuracies): the run looked up and read once."""
    latest = _latest_run(project)
    every = {} if latest is None else _run_votes(*latest, None)
    return lambda _project, item_ids: {i: every[i] for i in item_ids if i in every}


def scan_votes(project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """A noise scan's out-of-fold model on the items it flagged among these: for each item the newest flag of a
    succeeded scan that has one, its likeliest label (NoiseFlag.model_value) weighted by that scan's out-of-fold
    accuracy on the final labels it scanned (shrunk by their number). A flag's review is where a model doubts the
    annotators' agreement: without this vote a reviewer who confirmed the flag was outweighed by the two annotators
    the flag doubted (a tester's item stayed "spam" at 69 % after two reviewers and the scan said "ham"). Not only the
    newest scan's: a scan reads approved items only, so one that ran while a flag waited in review, or after the
    reviewer corrected the label (its model then agrees and flags nothing), would drop the vote. Flags written before
    the field existed, or by a scan whose model learnt nothing, have none. Two queries."""
    flags = NoiseFlag.objects.filter(
        scan__project=project, scan__status=ScanStatus.SUCCEEDED, model_value__isnull=False
    )
    if len(item_ids) <= SCAN_VOTE_IN_LIST:
        flags = flags.filter(item_id__in=list(item_ids))
    wanted = set(item_ids)
    newest: dict[int, tuple[int, dict[str, Any]]] = {}
    rows = flags.order_by("scan__finished_at", "scan_id").values_list("item_id", "scan_id", "model_value")
    for item_id, scan_id, value in rows.iterator(chunk_size=5000):
        if item_id in wanted and isinstance(value, dict) and isinstance(value.get("label"), str):
            newest[item_id] = (scan_id, value)  # later rows are newer scans
    if not newest:
        return {}
    summaries = dict(
        NoiseScan.objects.filter(pk__in={scan_id for scan_id, _ in newest.values()}).values_list("pk", "summary")
    )
    weights: dict[int, float | None] = {}
    for scan_id, summary in summaries.items():
        accuracy, scanned = ((summary or {}).get("model") or {}).get("accuracy"), (summary or {}).get("scanned")
        weights[scan_id] = (
            routing.model_accuracy(float(accuracy), float(scanned) if isinstance(scanned, int | float) else None)
            if isinstance(accuracy, int | float)
            else None
        )
    return {
        item_id: routing.ModelVote(label=value["label"], accuracy=weight)
        for item_id, (scan_id, value) in newest.items()
        if (weight := weights.get(scan_id)) is not None
    }


SCAN_VOTE_IN_LIST = 1000  # more items than this: the scan's flags are read whole (a scan flags a few hundred)
MODEL_SOURCE_CHUNK = 2000  # item ids per call of the model source (an IN list SQLite and PostgreSQL both take)


def model_votes(
    *, project: Project, item_ids: Sequence[int], test: set[int] | None = None, scans: bool = True
) -> dict[int, routing.ModelVote]:
    """The model's vote on each item that may have one: never on a test-split item (humans only there).

    The trained model's (`settings.LABELLOOP_ROUTING_MODEL`) where it has one, else, with `scans`, a noise scan's
    out-of-fold model on an item it flagged (`scan_votes`; routing an item's first annotations skips it: a scan
    flags approved items only). `test`: the test-split items among `item_ids`, where the caller knows them (else
    one query finds them)."""
    ids = list(item_ids)
    if test is None:
        split = ItemSplit.objects.filter(split=Split.TEST)
        by_ids = split.filter(item__project=project) if len(ids) > MODEL_SOURCE_CHUNK else split.filter(item_id__in=ids)
        test = set(by_ids.values_list("item_id", flat=True))
    allowed = [item_id for item_id in ids if item_id not in test]
    if not allowed:
        return {}
    source = model_source()
    votes: dict[int, routing.ModelVote] = {}
    if source is latest_run_votes and len(allowed) > MODEL_SOURCE_CHUNK:
        source = _every_run_vote(project)  # the run looked up once, its outputs read whole: no IN lists
    for start in range(0, len(allowed), MODEL_SOURCE_CHUNK):
        chunk = allowed[start : start + MODEL_SOURCE_CHUNK]
        asked = set(chunk)
        votes.update({i: vote for i, vote in source(project, chunk).items() if i in asked})
    rest = [item_id for item_id in allowed if item_id not in votes]
    if rest and scans:
        votes.update(scan_votes(project, rest))
    return votes


def annotators_left(*, project: Project, item_id: int) -> int:
    """Members with the annotator role who never held this item: who could give it a further opinion.

    Owners may annotate too, but routing does not count on them: an item must not wait for a person who
    may never come.
    """
    held = Claim.objects.filter(item_id=item_id).values("annotator_id")
    return Membership.objects.filter(project=project, role=Role.ANNOTATOR).exclude(user_id__in=held).count()


def budget_state(*, project: Project, bar: bool = True) -> routing.Budget:
    """The running allowance: items routed so far, judgements given or committed on them, items in all, the doubt
    bar and whether audits fit (`budget_rules`; `bar=False` leaves them 0 and True, for the weighing of a review).

    Judgements: each routed item's taken slots (its overlap and any extra annotator asked for, claimed or
    not), plus every review task that was not withdrawn (audits and noise reviews are human work too).
    Two queries (the bar's are none while routing's accuracies are cached: `budget_rules`).
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
    doubt, audits = budget_rules(project=project) if bar else (0.0, True)
    return routing.Budget(
        per_item=project.routing_budget,
        routed=totals["routed"] or 0,
        spent=(totals["slots"] or 0) + reviews,
        total_items=totals["items"] or 0,
        overlap=project.overlap,
        bar=doubt,
        audits=audits,
    )


PLAN_ITEMS = 2000  # the latest items with their overlap in: enough for the figures, bounded work


def ordered_votes(*, project: Project) -> tuple[list[int], dict[int, list[routing.Vote]], set[int]]:
    """The latest PLAN_ITEMS items with their overlap in, oldest first: (their ids, {id: its annotators' votes in the
    order given}, ids whose unsure annotator among the first `overlap` wrote a note)."""
    item_ids = list(
        Item.objects.filter(project=project, submitted_count__gte=project.overlap)
        .order_by("-id")
        .values_list("pk", flat=True)[:PLAN_ITEMS]
    )
    item_ids.reverse()
    given: dict[int, list[routing.Vote]] = {}
    rows = (
        Annotation.objects.filter(item_id__in=item_ids, status=AnnotationStatus.SUBMITTED)
        .order_by("created_at", "id")
        .values_list("item_id", "annotator__username", "value", "unsure", "note")
    )
    noted_ids: set[int] = set()
    for item_id, who, value, unsure, note in rows.iterator(chunk_size=5000):
        votes = given.setdefault(item_id, [])
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            if len(votes) < project.overlap and unsure and note.strip():
                noted_ids.add(item_id)
            votes.append(routing.Vote(who, value["label"], routing.UNSURE_WEIGHT if unsure else 1.0))
    kept = [i for i in item_ids if len(given.get(i, [])) >= project.overlap]
    return kept, given, noted_ids


# (project id, created, budget, audit rate, overlap) -> (when the voters' accuracies it used were measured, bar,
# whether the audits fit)
_bars: dict[tuple[int, Any, float, float, int], tuple[float, float, bool]] = {}


def _rules(
    *,
    project: Project,
    labels: Sequence[str],
    accuracies: Mapping[str, float],
    kept: Sequence[int],
    given: Mapping[int, Sequence[routing.Vote]],
    models: Mapping[int, routing.ModelVote],
) -> tuple[float, bool]:
    """(routing.doubt_bar, routing.audits_fit) over these items' decisions: each at its overlap votes and at every
    further annotator's. (0, True) under `review_all`: every accepted item is reviewed, budget or not."""
    if project.review_all:
        return 0.0, True
    points = []
    for i in kept:
        votes, model = given[i], models.get(i)
        asking = range(project.overlap, min(len(votes), routing.MAX_PER_ITEM - 1) + 1)  # at MAX_PER_ITEM none asks
        points.append(
            [
                1 - routing.weighted_label(routing.posterior(votes[:n], labels, accuracies, model=model), labels)[1]
                for n in asking
            ]
        )
    per_item, overlap = project.routing_budget, project.overlap
    return (
        routing.doubt_bar(points, per_item=per_item, overlap=overlap),
        routing.audits_fit(points, per_item=per_item, overlap=overlap, audit_rate=project.audit_rate),
    )


def budget_rules(*, project: Project) -> tuple[float, bool]:
    """(the doubt bar, whether the audits fit beside the items in doubt) over the latest items' decisions (their
    overlap votes, then each further annotator's, with the model's vote, weighed by today's measured accuracies), for
    this project's budget and audit rate: routing.doubt_bar, routing.audits_fit. Cached per process beside the voters'
    accuracies and measured again with them (REMEASURE_GROWTH, REMEASURE_SECONDS), so routing an item reads it with no
    query of its own (it measured the accuracies just before); one entry per project. (0, True) for a project that is
    not single-label and under `review_all`."""
    if not project.task_kind.single_class or project.review_all:
        return 0.0, True
    key = (project.pk, project.created_at, project.routing_budget, project.audit_rate, project.overlap)
    measured_key = (project.pk, project.created_at, False)
    with _measured_lock:
        measured, cached = _measured.get(measured_key), _bars.get(key)
    if measured is not None and cached is not None and cached[0] == measured[0]:
        return cached[1], cached[2]  # routing measured the accuracies a moment ago (`_weighed`): no second count
    accuracies = voter_accuracies(project=project)
    with _measured_lock:
        when = _measured[measured_key][0]
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    kept, given, _noted = ordered_votes(project=project)
    models = model_votes(project=project, item_ids=kept, scans=False)
    bar, audits = _rules(project=project, labels=labels, accuracies=accuracies, kept=kept, given=given, models=models)
    with _measured_lock:
        for old in [k for k in _bars if k[0] == project.pk]:  # a budget tried before is gone with it
            del _bars[old]
        _bars[key] = (when, bar, audits)
    return bar, audits


PLAN_UNDER_OVERLAP = (
    "No plan: the budget ({budget:g} {judgements} per item) is under the overlap ({overlap}), which adaptive routing "
    "cannot keep{policy}. Raise the budget to {overlap} or more to see what adaptive routing would do."
)


def routing_plan(*, project: Project) -> dict[str, Any]:
    """What adaptive routing would do with the latest items whose annotations are in, before it is switched on.

    Each item's first `overlap` annotations are replayed through routing.plan against the project's
    budget, with today's measured accuracies and the model's votes (none on test-split items): how many
    would be accepted, get a further annotator or a reviewer, and the expected share of right final
    labels, beside the same figure for the fixed routing; and each person's weight in the vote (`vote_weights`).
    Owners and reviewers only.
    """
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    base: dict[str, Any] = {
        "policy": project.routing_in_force,
        "budget": project.routing_budget,
        "confident": routing.CONFIDENT,
        "audit_rate": project.audit_rate,
        "items": 0,
        "done": 0,
        "annotator": 0,
        "reviewer": 0,
        "audit": 0,
        "expected_accuracy": None,
        "fixed_expected_accuracy": None,
        "measured_annotators": 0,
        "reviewer_accuracy": None,
        "annotator_accuracy": None,
        "bar": 0.0,
        "blocked": "",
        "voters": [],
        "measured_ago": None,
    }
    if not project.task_kind.single_class:
        return base
    counts = judgements_given(project=project)
    base["voters"] = vote_weights(project=project, given=counts)
    base["measured_ago"] = measured_ago(project=project)
    if project.routing_budget < project.overlap:  # allowed under fixed routing; adaptive routing refuses it
        blocked = PLAN_UNDER_OVERLAP.format(
            overlap=project.overlap,
            budget=project.routing_budget,
            judgements="judgement" if project.routing_budget == 1 else "judgements",
            policy="; the project uses fixed routing" if project.routing_in_force == RoutingPolicy.FIXED else "",
        )
        return {**base, "blocked": blocked}
    kept, given, noted_ids = ordered_votes(project=project)
    first = {i: given[i][: project.overlap] for i in kept}
    accuracies = voter_accuracies(project=project)
    models = model_votes(project=project, item_ids=kept, scans=False)  # as routing weighs annotations
    items = [(first[i], models.get(i)) for i in kept]
    audit = [routing.audit_drawn(i, project.audit_rate) for i in kept]
    if not items:
        return base
    total = Item.objects.filter(project=project).count()
    annotators = Membership.objects.filter(project=project, role=Role.ANNOTATOR).count()
    reviewing = reviewer_accuracy(project=project, accuracies=accuracies, reviews=counts[1])
    annotating = annotator_accuracy(project=project, accuracies=accuracies, annotations=counts[0])
    bar, audits = _rules(project=project, labels=labels, accuracies=accuracies, kept=kept, given=given, models=models)
    row = routing.plan(
        items,
        labels,
        accuracies,
        per_item=project.routing_budget,
        total_items=total,
        annotators=annotators,
        audit=audit,
        review_all=project.review_all,
        noted=[i in noted_ids for i in kept],
        reviewer_accuracy=reviewing,
        annotator_accuracy=annotating,
        bar=bar,
        audits=audits,
    )
    return {
        **base,
        "items": len(items),
        "done": row.done,
        "annotator": row.annotator,
        "reviewer": row.reviewer,
        "audit": row.audit,
        "expected_accuracy": row.expected_accuracy,
        "fixed_expected_accuracy": row.fixed_expected_accuracy,
        "measured_annotators": len(accuracies),
        "reviewer_accuracy": reviewing,
        "annotator_accuracy": annotating,
        "bar": bar,
    }
