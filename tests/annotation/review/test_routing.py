"""Adaptive routing: decisions on constructed votes (review/routing.py), and the product path that uses them."""

from __future__ import annotations

import math
import random
import re
from dataclasses import replace

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Membership,
    NoiseFlag,
    NoiseScan,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    Role,
    RoutingPolicy,
    ScanStatus,
    Split,
)
from annotation.projects.services import membership_set
from annotation.review import routing, routing_inputs
from annotation.review import services as reviews
from tests.fixtures.api import api_as, url
from tests.fixtures.people import acknowledge_guidelines, add_items, fixed_routing, make_user
from tests.fixtures.reviews import submit

LABELS = ["positive", "negative", "neutral"]
ROOMY = routing.Budget(per_item=5.0, routed=100, spent=200, total_items=100)
TIGHT = routing.Budget(per_item=2.5, routed=100, spent=249, total_items=100, overlap=2)
SPENT = routing.Budget(per_item=2.5, routed=100, spent=250, total_items=100, overlap=2)


def votes(*pairs: tuple[str, str]) -> list[routing.Vote]:
    return [routing.Vote(who, label) for who, label in pairs]


# --- decisions on constructed cases ------------------------------------------------------------


def test_agreeing_good_annotators_are_done():
    d = routing.decide(votes(("a", "positive"), ("b", "positive")), LABELS, {"a": 0.9, "b": 0.9}, budget=ROOMY)
    assert (d.action, d.label) == (routing.DONE, "positive")
    assert d.confidence > 0.97


def test_a_disagreement_gets_a_third_annotator_when_the_budget_allows():
    d = routing.decide(votes(("a", "positive"), ("b", "negative")), LABELS, {"a": 0.85, "b": 0.85}, budget=ROOMY)
    assert d.action == routing.ANNOTATOR


def test_a_disagreement_goes_to_a_reviewer_when_the_budget_is_tight():
    d = routing.decide(votes(("a", "positive"), ("b", "negative")), LABELS, {"a": 0.85, "b": 0.85}, budget=TIGHT)
    assert TIGHT.spare() == 1
    assert d.action == routing.REVIEWER


def test_the_plan_asks_a_reviewer_where_no_further_annotator_is_left():
    """As routing does: with two annotators in the project, a 1-1 split can only go to a reviewer."""
    split = [(votes(("a", "positive"), ("b", "negative")), None)] * 2
    split.append((votes(("a", "neutral"), ("b", "neutral")), None))
    enough = routing.plan(split, LABELS, {}, per_item=2.5, total_items=10)
    two = routing.plan(split, LABELS, {}, per_item=2.5, total_items=10, annotators=2)
    three = routing.plan(split, LABELS, {}, per_item=2.5, total_items=10, annotators=3)
    assert (enough.done, enough.annotator, enough.reviewer) == (1, 2, 0)
    assert (two.done, two.annotator, two.reviewer) == (1, 0, 2)
    assert (three.done, three.annotator, three.reviewer) == (1, 2, 0)


def test_the_plan_counts_the_audits_routing_would_draw_while_the_budget_has_room():
    """A tester set audit_rate 0 then 1 and the plan said "reviewer 0" both times, while audits were opened."""
    agreed = [(votes(("a", "neutral"), ("b", "neutral")), None)] * 4
    accurate = {"a": 0.95, "b": 0.95}
    none = routing.plan(agreed, LABELS, accurate, per_item=2.5, total_items=4)
    every = routing.plan(agreed, LABELS, accurate, per_item=2.5, total_items=4, audit=[True] * 4)
    tight = routing.plan(agreed, LABELS, accurate, per_item=2.0, total_items=4, audit=[True] * 4)
    assert (none.done, none.audit) == (4, 0)
    assert (every.done, every.audit) == (2, 2)  # half a judgement per item to spare: 2 of 4
    assert (tight.done, tight.audit) == (4, 0)  # no judgement to spare: no audit, as routing does
    forced = routing.plan(agreed, LABELS, accurate, per_item=2.0, total_items=4, review_all=True)
    assert (forced.done, forced.audit) == (0, 4)  # review all: every accepted item, budget or not
    noted = routing.plan(agreed, LABELS, accurate, per_item=2.0, total_items=4, noted=[True, False, False, False])
    assert (noted.done, noted.reviewer, noted.audit) == (3, 1, 0)  # an unsure note is answered by a reviewer
    assert routing.audit_drawn(7, 0.0) is False and routing.audit_drawn(7, 1.0) is True


def test_with_the_budget_spent_the_weighted_vote_stands():
    d = routing.decide(votes(("a", "positive"), ("b", "negative")), LABELS, {"a": 0.9, "b": 0.7}, budget=SPENT)
    assert (d.action, d.label) == (routing.DONE, "positive")


def test_a_low_quality_annotators_dissent_weighs_less():
    good_vs_poor = routing.decide(
        votes(("good", "positive"), ("poor", "negative")), LABELS, {"good": 0.97, "poor": 0.5}, budget=ROOMY
    )
    assert (good_vs_poor.action, good_vs_poor.label) == (routing.DONE, "positive")
    even = routing.decide(
        votes(("good", "positive"), ("other", "negative")), LABELS, {"good": 0.97, "other": 0.97}, budget=ROOMY
    )
    assert even.action == routing.ANNOTATOR
    assert good_vs_poor.confidence > even.confidence


def test_a_reviewers_single_word_does_not_override_two_agreeing_annotators():
    v = [*votes(("a", "positive"), ("b", "positive")), routing.Vote("rev", "negative")]
    post = routing.posterior(v, LABELS, {"a": 0.8, "b": 0.8, "rev": 0.85})
    assert routing.weighted_label(post, LABELS)[0] == "positive"


def test_a_reviewer_overrides_agreement_when_measured_quality_says_so():
    v = [*votes(("a", "positive"), ("b", "positive")), routing.Vote("rev", "negative")]
    post = routing.posterior(v, LABELS, {"a": 0.55, "b": 0.55, "rev": 0.99})
    assert routing.weighted_label(post, LABELS)[0] == "negative"


def test_the_model_is_one_more_voter_weighted_by_its_accuracy():
    split = votes(("a", "positive"), ("b", "negative"))
    acc = {"a": 0.8, "b": 0.8}
    good = routing.posterior(split, LABELS, acc, model=routing.ModelVote("negative", 0.9))
    weak = routing.posterior(split, LABELS, acc, model=routing.ModelVote("negative", 0.4))
    assert routing.weighted_label(good, LABELS)[0] == "negative"
    assert good["negative"] > weak["negative"] > 0.5


def test_an_unsure_vote_counts_less():
    sure = routing.posterior(votes(("a", "positive"), ("b", "negative")), LABELS, {})
    unsure = routing.posterior([routing.Vote("a", "positive"), routing.Vote("b", "negative", 0.5)], LABELS, {})
    assert unsure["positive"] > sure["positive"]


def test_measured_accuracies_tell_good_from_poor_annotators():
    rng = random.Random(0)
    truth = [rng.choice(LABELS) for _ in range(400)]
    skill = {"good": 0.95, "fair": 0.8, "poor": 0.55}

    def says(who: str, gold: str) -> str:
        return gold if rng.random() < skill[who] else rng.choice([x for x in LABELS if x != gold])

    items = [[routing.Vote(who, says(who, gold)) for who in rng.sample(list(skill), 2)] for gold in truth]
    measured = routing.measured_accuracies(items, LABELS)
    assert measured["good"][0] > measured["fair"][0] > measured["poor"][0]
    assert abs(measured["good"][0] - 0.95) < 0.06 and abs(measured["poor"][0] - 0.55) < 0.1


def test_a_reviewers_measure_starts_from_the_figure_they_count_at_unmeasured():
    """A tester's reviewer went from 0.85 (unmeasured) to 0.73 after one review: the measure was pulled toward an
    annotator's 0.8. Pulled toward the reviewer's own prior, a reviewer who sides with the likelier label gains."""
    split = votes(("a", "positive"), ("b", "negative"), ("rev", "positive"))
    items = [split, votes(("a", "neutral"), ("b", "neutral"))]
    plain = routing.measured_accuracies(items, LABELS)
    primed = routing.measured_accuracies(items, LABELS, priors={"rev": 0.85})
    assert plain["rev"][0] < 0.85 <= primed["rev"][0] and primed["rev"][1] == 1
    assert primed["a"][0] > primed["b"][0]  # the reviewer's word still tells the annotators apart


def test_a_reviewer_who_corrects_what_the_model_doubted_is_not_measured_down_for_it():
    """A tester's reviewer fell from 0.85 to 0.70 in two right corrections: flag reviews go against two agreeing
    annotators by construction, and measured against the humans alone each correction counted as a miss."""
    items = [votes(("a", "positive"), ("b", "positive"), ("rev", "positive")) for _ in range(10)]
    models: list[routing.ModelVote | None] = [None] * 10
    items += [votes(("a", "negative"), ("b", "negative")) for _ in range(20)]
    models += [routing.ModelVote("negative", 0.95)] * 20
    # five agreed labels a scan's model (as accurate as the annotators) doubted; the reviewer sided with it on each
    items += [votes(("a", "positive"), ("b", "positive"), ("rev", "neutral")) for _ in range(5)]
    models += [routing.ModelVote("neutral", 0.95)] * 5
    humans = routing.measured_accuracies(items, LABELS)
    with_model = routing.measured_accuracies(items, LABELS, models)
    assert humans["rev"][0] < 0.75  # scored against the annotators alone: each correction a miss
    assert with_model["rev"][0] > routing.PRIOR_ACCURACY
    assert with_model["a"][0] < humans["a"][0]  # the agreed errors count against the annotators now
    assert routing.measured_accuracies(items, LABELS, [None] * len(items)) == humans


def test_a_models_measured_accuracy_is_shrunk_by_how_many_items_measured_it():
    assert routing.model_accuracy(1.0, 96) == pytest.approx((96 + routing.PRIOR_ACCURACY * routing.PRIOR_ITEMS) / 106)
    assert routing.model_accuracy(0.5, 10) == 0.5  # never pulled up toward the prior: a weak model earns no say
    assert routing.model_accuracy(0.9, 100_000) == pytest.approx(0.9, abs=1e-3)
    assert routing.model_accuracy(0.93, None) == 0.93  # a run that recorded no n: as measured
    # no longer worth two agreeing annotators of 0.9 on its own
    two = votes(("a", "positive"), ("b", "positive"))
    model = routing.ModelVote("negative", routing.model_accuracy(1.0, 96))
    post = routing.posterior(two, LABELS, {"a": 0.9, "b": 0.9}, model=model)
    assert routing.weighted_label(post, LABELS)[0] == "positive"


def test_a_simulated_batch_stays_within_the_budget():
    rng = random.Random(1)
    spent, counts = 0, {routing.DONE: 0, routing.ANNOTATOR: 0, routing.REVIEWER: 0}
    n = 500
    for routed in range(1, n + 1):
        item = votes(("a", rng.choice(LABELS[:2])), ("b", rng.choice(LABELS[:2])))
        spent += 2
        while True:
            budget = routing.Budget(per_item=2.5, routed=routed, spent=spent, total_items=n, overlap=2)
            d = routing.decide(item, LABELS, {}, budget=budget)
            counts[d.action] += 1
            if d.action == routing.DONE:
                break
            spent += 1
            if d.action == routing.REVIEWER:
                break
            item.append(routing.Vote(f"x{len(item)}", rng.choice(LABELS[:2])))
    # Nobody is measured, so every 1-1 item is a tie: ties go to a reviewer even when the allowance is spent, and
    # the allowance then holds the items after them back; the average ends a hair over (1,257 for 1,250 here).
    assert spent / n <= 2.5 + 0.02
    assert counts[routing.ANNOTATOR] and counts[routing.REVIEWER]


def test_the_doubt_bar_is_zero_while_the_budget_pays_for_every_decision_in_doubt():
    # each item's doubt at its first decision, and after a further annotator where it had one
    items = [[0.5, 0.2]] * 20 + [[0.2]] * 20 + [[0.01]] * 160
    # 60 decisions in doubt; 0.5 spare per item pays for 100
    assert routing.doubt_bar(items, per_item=2.5, overlap=2) == 0.0
    assert routing.doubt_bar(items[:40], per_item=2.0, overlap=2) == 0.0  # under BAR_MIN_ITEMS: the allowance rules


def test_under_a_tight_budget_the_bar_keeps_the_judgements_for_the_most_doubtful_decisions():
    # splits, whose third opinion left a two-to-one majority still in doubt; weak agreements; sure agreements
    items = [[0.5, 0.2]] * 40 + [[0.15]] * 40 + [[0.01]] * 120
    # 0.2 spare per item pays for 40 decisions: the splits' first, not their majorities' nor the weak agreements'
    assert routing.doubt_bar(items, per_item=2.2, overlap=2) == pytest.approx(0.5)
    assert routing.doubt_bar(items, per_item=2.3, overlap=2) == pytest.approx(0.2)  # 60: the majorities' too
    assert routing.doubt_bar(items, per_item=2.0, overlap=2) == pytest.approx(0.5)  # nothing spare: the worst first


def test_an_item_under_the_bar_is_done_though_the_allowance_has_room():
    accuracies = {"a": 0.8, "b": 0.8, "c": 0.85}
    majority = votes(("a", "positive"), ("b", "positive"), ("c", "negative"))
    split = votes(("a", "positive"), ("c", "negative"))
    on_track = routing.Budget(per_item=2.5, routed=100, spent=250, total_items=200, overlap=2)  # spending the average
    assert on_track.spare() == routing.BURST
    barred = replace(on_track, bar=0.3)
    assert routing.decide(majority, LABELS, accuracies, budget=on_track).action != routing.DONE  # 0.86: in doubt
    d = routing.decide(majority, LABELS, accuracies, budget=barred)
    assert (d.action, d.label, d.bar) == (routing.DONE, "positive", 0.3)
    assert routing.decide(split, LABELS, accuracies, budget=barred).action == routing.ANNOTATOR
    assert routing.decide(split, LABELS, accuracies, budget=replace(on_track, bar=0.6)).bar == 0.6  # 0.53 sure
    exactly = 1 - routing.weighted_label(routing.posterior(split, LABELS, accuracies), LABELS)[1]
    assert routing.decide(split, LABELS, accuracies, budget=replace(on_track, bar=exactly)).action == routing.ANNOTATOR
    tie = votes(("a", "positive"), ("b", "negative"))  # a tie passes any bar: label order cannot settle it
    assert routing.decide(tie, LABELS, accuracies, budget=replace(on_track, bar=0.9)).action == routing.ANNOTATOR
    # spending far behind the average (fewer items above the bar came than it expected): the bar lifts
    spent = replace(on_track, spent=254, bar=0.3)  # with nothing to spare the vote stands as it would without a bar
    assert routing.decide(majority, LABELS, accuracies, budget=spent).bar == 0.0
    lagging = replace(on_track, spent=240, bar=0.3)
    assert lagging.spare() >= routing.BAR_LIFTS
    assert routing.decide(majority, LABELS, accuracies, budget=lagging).action == routing.ANNOTATOR


BAR_VOTERS = {"a": 0.85, "b": 0.8, "c": 0.6, "d": 0.6}  # a and b unequal: no tie (a tie goes past the budget)
WEAK_AGREEMENT = votes(("c", "positive"), ("d", "positive"))  # 82 % sure
SPLIT = votes(("a", "positive"), ("b", "negative"))  # nearly a coin


def routed_batch(first: list[list[routing.Vote]], *, per_item: float, bar: float) -> tuple[int, int]:
    """(splits given a further judgement, judgements spent) routing these items' first decisions in order."""
    spent, asked = 0, 0
    n = len(first)
    for routed, item in enumerate(first, start=1):
        spent += len(item)
        budget = routing.Budget(per_item=per_item, routed=routed, spent=spent, total_items=n, overlap=2, bar=bar)
        if routing.decide(item, LABELS, BAR_VOTERS, budget=budget).action != routing.DONE:
            spent += 1
            asked += item is SPLIT
    return asked, spent


def test_with_a_bar_the_splits_get_the_judgements_the_weak_agreements_took():
    """The running allowance alone gives the budget to whichever item in doubt comes first."""
    first = [WEAK_AGREEMENT] * 100 + [SPLIT] * 100
    random.Random(0).shuffle(first)
    post = [routing.posterior(v, LABELS, BAR_VOTERS) for v in first]
    bar = routing.doubt_bar([[1 - routing.weighted_label(p, LABELS)[1]] for p in post], per_item=2.3, overlap=2)
    assert 1 - routing.weighted_label(routing.posterior(WEAK_AGREEMENT, LABELS, BAR_VOTERS), LABELS)[1] < bar
    without, _ = routed_batch(first, per_item=2.3, bar=0.0)
    with_bar, spent = routed_batch(first, per_item=2.3, bar=bar)
    assert without < 40 and with_bar >= 55  # of 60 judgements to spare
    assert spent <= 2.3 * 200


def test_a_bar_set_too_high_leaves_no_budget_unspent():
    """Fewer items above the bar than it expected: spending lags the average, the bar lifts, the budget is spent."""
    first = [WEAK_AGREEMENT] * 180 + [SPLIT] * 20
    random.Random(0).shuffle(first)
    _, spent_without = routed_batch(first, per_item=2.3, bar=0.0)
    split_doubt = 1 - routing.weighted_label(routing.posterior(SPLIT, LABELS, BAR_VOTERS), LABELS)[1]
    asked, spent = routed_batch(first, per_item=2.3, bar=split_doubt)  # as if half the items were splits
    assert asked == 20
    assert spent >= spent_without - routing.BAR_LIFTS


def test_the_expected_confidence_after_one_more_vote_is_the_expectation_over_its_answers():
    """The linear-time sum equals the definition: for each answer, the joint's best label, summed."""
    rng = random.Random(3)
    for _ in range(300):
        labels = [f"l{i}" for i in range(rng.randint(2, 9))]
        weights = [rng.random() ** 3 for _ in labels]
        post = {label: w / sum(weights) for label, w in zip(labels, weights, strict=True)}
        if rng.random() < 0.2:
            post = dict.fromkeys(labels, 1 / len(labels))  # every label tied
        if rng.random() < 0.2:
            post = {**post, "voted-but-not-a-label": 0.0}  # a vote for a label the project no longer has
        accuracy = rng.uniform(0.2, 0.99)
        hit, miss = (math.exp(x) for x in routing._log_likelihood(accuracy, len(labels)))
        by_definition = sum(max(p * (hit if c == said else miss) for c, p in post.items()) for said in post)
        assert routing.expected_confidence_after(post, labels, accuracy) == pytest.approx(by_definition, abs=1e-12)
    assert routing.expected_confidence_after({"a": 0.5, "b": 0.5}, ["a", "b"], 0.9) == pytest.approx(0.9)


def test_the_decision_says_when_a_voter_was_counted_at_the_prior_not_measured():
    """A tester read "by each one's measured accuracy" on a project whose plan said 0 people measured."""
    from annotation.review.services import _weighed_reason

    d = routing.decide(votes(("a", "positive"), ("b", "positive")), LABELS, {}, budget=ROOMY)
    assert "nobody measured yet: an annotator counts as 0.80, a reviewer 0.85" in _weighed_reason(
        replace(d, unmeasured=2), 2
    )
    assert "(1 not measured yet, counted at the prior)" in _weighed_reason(replace(d, unmeasured=1), 2)
    assert "by each one's measured accuracy: positive" in _weighed_reason(d, 2)


def test_a_tie_goes_to_a_reviewer_even_with_no_judgement_to_spare():
    spent_out = routing.Budget(per_item=2.0, routed=10, spent=20, total_items=10, overlap=2)
    tie = routing.decide(votes(("a", LABELS[0]), ("b", LABELS[1])), LABELS, {}, budget=spent_out)
    assert tie.action == routing.REVIEWER and tie.posterior[LABELS[0]] == pytest.approx(tie.posterior[LABELS[1]])
    lean = routing.decide(votes(("a", LABELS[0]), ("b", LABELS[1])), LABELS, {"a": 0.9}, budget=spent_out)
    assert lean.action == routing.DONE and lean.label == LABELS[0]  # a measured lean stands


# --- the product path --------------------------------------------------------------------------


@pytest.fixture
def adaptive(project, annotator, annotator2, reviewer) -> Project:
    """The sentiment project under adaptive routing, no audit, with a third annotator."""
    third = make_user("annotator3")
    membership_set(project=project, user=third, role=Role.ANNOTATOR)
    Project.objects.filter(pk=project.pk).update(
        routing_policy=RoutingPolicy.ADAPTIVE, routing_budget=2.5, audit_rate=0.0
    )
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2, third, reviewer)
    return project


MODEL_SAYS: dict[int, routing.ModelVote] = {}


def fake_model(project, item_ids):
    return {i: MODEL_SAYS[i] for i in item_ids if i in MODEL_SAYS}


def test_adaptive_agreement_is_approved(adaptive, annotator, annotator2):
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "positive")
    item = Item.objects.get(pk=a.item_id)
    assert item.status == ItemStatus.APPROVED
    assert Decision.objects.get(item=item).source == DecisionSource.AGREEMENT


def test_adaptive_disagreement_asks_a_third_annotator_then_a_reviewer_as_the_budget_tightens(
    adaptive, annotator, annotator2
):
    add_items(adaptive, ["more text 1", "more text 2"])  # 7 items at 2.3: 16.1 judgements, 14 taken by overlap
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=2.3)
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "negative")
    item = Item.objects.get(pk=a.item_id)
    assert (item.status, item.extra_slots, item.is_open) == (ItemStatus.IN_ANNOTATION, 1, True)
    assert item.blind_count == 2  # what agreement is measured on (quality.selectors.agreement_rows)
    assert not ReviewTask.objects.filter(item=item).exists()
    third = Project.objects.get(pk=adaptive.pk).memberships.get(user__username="annotator3").user
    assert submit(third, adaptive, "positive").item_id == item.pk
    item.refresh_from_db()
    assert item.blind_count == 2
    # 2-1 among unmeasured annotators is not yet sure enough, and one judgement is left to spare: a reviewer.
    assert item.status == ItemStatus.IN_REVIEW
    task = ReviewTask.objects.get(item=item, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.DISAGREEMENT] and task.suggested_value == {"label": "positive"}


def test_adaptive_disagreement_goes_to_review_when_the_budget_is_tight(adaptive, annotator, annotator2):
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=2.2)  # 5 items: 11 judgements, 10 taken by overlap
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "negative")
    item = Item.objects.get(pk=a.item_id)
    assert item.status == ItemStatus.IN_REVIEW
    task = ReviewTask.objects.get(item=item, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.DISAGREEMENT]
    # two annotators nobody has measured yet: a tie, so no label is suggested (the first in label order would be)
    assert task.suggested_value is None
    from annotation.review.selectors import review_panel

    panel = review_panel(task=task, project=adaptive)
    assert panel.suggestion_kind == "tie"


@override_settings(LABELLOOP_ROUTING_MODEL="tests.annotation.review.test_routing.fake_model")
def test_the_model_vote_counts_on_train_items_and_not_on_test_items(adaptive, annotator, annotator2):
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=1.0)  # no judgement to spare: the vote decides
    train, test = list(Item.objects.filter(project=adaptive).order_by("pk"))[:2]
    ItemSplit.objects.create(item=test, split=Split.TEST)
    MODEL_SAYS.clear()
    MODEL_SAYS.update({train.pk: routing.ModelVote("negative", 0.95), test.pk: routing.ModelVote("negative", 0.95)})
    seen = routing_inputs.model_votes(project=adaptive, item_ids=[train.pk, test.pk])
    assert seen == {train.pk: MODEL_SAYS[train.pk]}
    for item in (train, test):
        assert submit(annotator, adaptive, "positive").item_id == item.pk
        submit(annotator2, adaptive, "negative")
    assert Decision.objects.get(item=train).value == {"label": "negative"}  # 1-1, the model breaks the tie
    # On the test item humans alone decide: a 1-1 tie has no label to stand, so a reviewer settles it even
    # with no judgement to spare (the label order is no way to decide).
    assert not Decision.objects.filter(item=test).exists()
    task = ReviewTask.objects.get(item=test, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.DISAGREEMENT]


@override_settings(LABELLOOP_ROUTING_MODEL="tests.annotation.review.test_routing.fake_model")
def test_agreement_the_weighted_vote_doubts_goes_to_review_as_doubt_not_as_an_audit(adaptive, annotator, annotator2):
    """Only the audit draw is an audit sample (the noise scan calibrates on those, review.selectors.audit_labels)."""
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=0.0, routing_budget=2.2)  # a reviewer, not a third
    item = Item.objects.filter(project=adaptive).order_by("pk").first()
    MODEL_SAYS.clear()
    MODEL_SAYS[item.pk] = routing.ModelVote("negative", 0.95)  # sure, against two unmeasured annotators
    assert submit(annotator, adaptive, "positive").item_id == item.pk
    submit(annotator2, adaptive, "positive")
    task = ReviewTask.objects.get(item=item, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.DOUBT]
    from annotation.review.selectors import routing_note

    assert "whether or not the annotators agreed" in routing_note(project=adaptive, reasons=task.reasons)


def test_a_reviewer_cannot_override_two_agreeing_annotators_alone(adaptive, annotator, annotator2, reviewer):
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    task = ReviewTask.objects.select_related("item__project").get(item_id=a.item_id, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.AUDIT]
    final = reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    assert final.value == {"label": "neutral"} and final.source == DecisionSource.WEIGHTED
    history = list(Decision.objects.filter(item_id=a.item_id).order_by("id").values_list("source", "value"))
    assert history == [
        (DecisionSource.REVIEWER, {"label": "negative"}),  # the reviewer's word is kept
        (DecisionSource.WEIGHTED, {"label": "neutral"}),
    ]


def test_every_reviewers_word_is_in_the_weighted_vote(adaptive, annotator, annotator2, reviewer, owner):
    """A tester's case: a reviewer overturned an audit (outvoted by the two agreeing annotators), a noise flag on
    the item later went to a second reviewer who said the same, and the vote still counted 3 judgements: the
    first reviewer's word was left out, so no review of the flag could ever correct the agreed label."""
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    audit = ReviewTask.objects.select_related("item__project").get(item_id=a.item_id, status=ReviewStatus.OPEN)
    first = reviews.review_decide(reviewer=reviewer, task=audit, value={"label": "negative"})
    assert first.value == {"label": "neutral"} and "3 judgements" in first.reason
    item = Item.objects.get(pk=a.item_id)
    flag = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "negative"})
    flag = ReviewTask.objects.select_related("item__project").get(pk=flag.pk)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.review.selectors import review_panel

    with CaptureQueriesContext(connection) as queries:
        panel = review_panel(task=flag, project=adaptive, annotations=[])
    assert panel.earlier_reviews == (("reviewer", "negative"),)  # the flag's reviewer sees who else is in the vote
    assert len(queries) == 2  # the earlier reviewers come from the decisions the panel reads anyway
    second = reviews.review_decide(reviewer=owner, task=flag, value={"label": "negative"})
    # two reviewers against two annotators, each unmeasured reviewer at REVIEWER_PRIOR: the reviewers' label wins
    assert second.source == DecisionSource.REVIEWER and second.value == {"label": "negative"}
    assert Decision.objects.filter(item=item).latest("id") == second
    # the same reviewer deciding again replaces their own earlier word rather than adding a second vote
    again = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "neutral"})
    again = ReviewTask.objects.select_related("item__project").get(pk=again.pk)
    third = reviews.review_decide(reviewer=owner, task=again, value={"label": "neutral"})
    assert third.value == {"label": "neutral"}  # owner's word is now neutral: three of four say neutral


def flagged_by_a_scan(item: Item, owner, *, model_says: str, accuracy: float, scanned: int = 400) -> ReviewTask:
    """What noise_scan_execute leaves for a flag: a succeeded scan (its model's out-of-fold accuracy in the summary),
    the flag with the model's label, and the flag's review task."""
    scan = NoiseScan.objects.create(
        project=item.project, created_by=owner, status=ScanStatus.SUCCEEDED, finished_at=timezone.now(),
        summary={"scanned": scanned, "model": {"accuracy": accuracy}},
    )
    final = Decision.objects.filter(item=item).latest("id").value
    NoiseFlag.objects.create(
        scan=scan, item=item, score=0.2, given=final, suggested={"label": model_says},
        model_value={"label": model_says},
    )
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": model_says})
    return ReviewTask.objects.select_related("item__project").get(pk=task.pk)


def test_a_reviewer_who_confirms_a_flag_corrects_an_agreed_label_with_the_scans_model(
    adaptive, annotator, annotator2, reviewer, owner, client
):
    """A tester's flagged item (two annotators said spam; the flag's reviewer and the scan's model said ham) stayed
    spam: the weighted vote heard the annotators and the reviewer, not the model whose doubt opened the review. The
    scan's out-of-fold model now votes on its flags, at its measured accuracy."""
    items = []
    for _ in range(2):
        a = submit(annotator, adaptive, "neutral")
        submit(annotator2, adaptive, "neutral")
        items.append(Item.objects.get(pk=a.item_id))
    heard, unheard = items
    flag = flagged_by_a_scan(heard, owner, model_says="negative", accuracy=0.97)
    assert routing_inputs.model_votes(project=adaptive, item_ids=[heard.pk]) == {
        heard.pk: routing.ModelVote("negative", routing.model_accuracy(0.97, 400))
    }
    final = reviews.review_decide(reviewer=reviewer, task=flag, value={"label": "negative"})
    assert final.source == DecisionSource.REVIEWER and final.value == {"label": "negative"}
    # the same review without the model's vote (a flag written before it was stored): two agreeing annotators
    # outweigh one reviewer, as they should where nothing else speaks against them
    flag = flagged_by_a_scan(unheard, owner, model_says="negative", accuracy=0.97)
    NoiseFlag.objects.filter(item=unheard).update(model_value=None)
    kept = reviews.review_decide(reviewer=reviewer, task=flag, value={"label": "negative"})
    assert kept.source == DecisionSource.WEIGHTED and kept.value == {"label": "neutral"}
    assert re.search(r": neutral \(\d+% likely right by these votes\)\.", kept.reason), kept.reason  # not the scan's
    # the owner sees where a reviewer was outvoted, with a way to the item's history (where they may overrule it)
    client.force_login(owner)
    html = client.get(reverse("quality", args=[adaptive.pk])).content.decode()
    card = html[html.index('id="outvoted-reviews"') :]
    assert "Reviews the weighted vote outvoted (1)" in card
    assert reverse("item-history", args=[adaptive.pk, unheard.pk]) in card and "overrule the label there" in card
    assert reverse("item-history", args=[adaptive.pk, heard.pk]) not in card  # the reviewer's word stood there
    # the scan's flags page says so too (it said "(kept)", which a tester read as the reviewer's confirmation)
    scans = {item.pk: NoiseFlag.objects.filter(item=item).latest("id").scan_id for item in items}
    row = client.get(reverse("noise-flag-list", args=[adaptive.pk, scans[unheard.pk]])).content.decode()
    assert "neutral <span class=\"muted\">(kept by the weighted vote; the reviewer said negative: you can" in row
    client.force_login(reviewer)  # who cannot overrule is told who can
    row = client.get(reverse("noise-flag-list", args=[adaptive.pk, scans[unheard.pk]])).content.decode()
    assert "the reviewer said negative: the owner can overrule it on the item's history page)" in row
    client.force_login(owner)
    reviews.item_overrule(owner=owner, item=unheard, value={"label": "negative"}, reason="The reviewer was right.")
    row = client.get(reverse("noise-flag-list", args=[adaptive.pk, scans[unheard.pk]])).content.decode()
    assert "weighted vote" not in row and "<strong>negative</strong> <span class=\"muted\">(changed since the" in row
    row = client.get(reverse("noise-flag-list", args=[adaptive.pk, scans[heard.pk]])).content.decode()
    assert "<strong>negative</strong> <span class=\"muted\">(changed since the scan)" in row
    # a reviewer who keeps the agreed label against a flag keeps it
    again = flagged_by_a_scan(heard, owner, model_says="positive", accuracy=0.97)
    assert reviews.review_decide(reviewer=owner, task=again, value={"label": "negative"}).value == {"label": "negative"}
    # a vote that moved the label away from the scan's and from the reviewer's word says both
    task = reviews.review_task_open(item=heard, reasons=[ReviewReason.NOISE], suggested_value={"label": "positive"})
    Decision.objects.create(
        item=heard, value={"label": "positive"}, source=DecisionSource.REVIEWER, reviewer=reviewer, review_task=task
    )
    Decision.objects.create(item=heard, value={"label": "negative"}, source=DecisionSource.WEIGHTED, review_task=task)
    ReviewTask.objects.filter(pk=task.pk).update(status=ReviewStatus.DONE)
    row = client.get(reverse("noise-flag-list", args=[adaptive.pk, scans[heard.pk]])).content.decode()
    said = '<strong>negative</strong> <span class="muted">(changed by the weighted vote; the reviewer said positive'
    assert said in row


def test_the_scans_vote_outlives_a_newer_scan_that_did_not_flag_the_item(
    adaptive, annotator, annotator2, reviewer, owner
):
    """A scan reads approved items only: one that ran while the flag waited in review (or after the correction, its
    model then agreeing) flags nothing there, and must not take the first scan's vote away."""
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    item = Item.objects.get(pk=a.item_id)
    flag = flagged_by_a_scan(item, owner, model_says="negative", accuracy=0.97)
    NoiseScan.objects.create(
        project=adaptive, created_by=owner, status=ScanStatus.SUCCEEDED, finished_at=timezone.now(),
        summary={"scanned": 400, "model": {"accuracy": 0.5}},
    )
    assert routing_inputs.model_votes(project=adaptive, item_ids=[item.pk]) == {
        item.pk: routing.ModelVote("negative", routing.model_accuracy(0.97, 400))  # its own scan's accuracy
    }
    final = reviews.review_decide(reviewer=reviewer, task=flag, value={"label": "negative"})
    assert final.value == {"label": "negative"} and final.source == DecisionSource.REVIEWER
    # and the newest flag of an item wins where several scans flagged it
    newer = flagged_by_a_scan(item, owner, model_says="positive", accuracy=0.9)
    assert routing_inputs.model_votes(project=adaptive, item_ids=[item.pk])[item.pk].label == "positive"
    assert newer.reasons == [ReviewReason.NOISE]


def test_model_votes_are_the_same_read_in_chunks_or_whole(adaptive, annotator, annotator2, owner, monkeypatch):
    """Measuring accuracies asks for every item's vote: past MODEL_SOURCE_CHUNK ids the test split is read by
    project, the default run source whole, and past SCAN_VOTE_IN_LIST the flags whole."""
    items = []
    for label in ("neutral", "positive", "negative"):
        a = submit(annotator, adaptive, label)
        submit(annotator2, adaptive, label)
        items.append(Item.objects.get(pk=a.item_id))
    flagged_by_a_scan(items[0], owner, model_says="negative", accuracy=0.9)
    flagged_by_a_scan(items[1], owner, model_says="neutral", accuracy=0.8)
    ItemSplit.objects.create(item=items[1], split=Split.TEST)
    ids = [item.pk for item in items]
    whole = routing_inputs.model_votes(project=adaptive, item_ids=ids)
    assert set(whole) == {items[0].pk}  # the test item has none, the unflagged one neither
    monkeypatch.setattr(routing_inputs, "MODEL_SOURCE_CHUNK", 1)
    monkeypatch.setattr(routing_inputs, "SCAN_VOTE_IN_LIST", 0)
    assert routing_inputs.model_votes(project=adaptive, item_ids=ids) == whole


def test_routing_an_items_first_annotations_never_reads_the_scans(adaptive, annotator, annotator2):
    """A scan flags approved items only, so the item routed on its first annotations cannot have a flag: the path
    every annotation goes through does not pay for looking."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a = submit(annotator, adaptive, "neutral")
    item = Item.objects.get(pk=a.item_id)
    votes = [routing.Vote("annotator1", "neutral"), routing.Vote("annotator2", "positive")]
    reviews._weighed(project=adaptive, item_id=item.pk, votes=votes)  # warms the measured accuracies
    with CaptureQueriesContext(connection) as first:
        reviews._weighed(project=adaptive, item_id=item.pk, votes=votes)
    assert not any("noiseflag" in q["sql"].lower() for q in first.captured_queries)
    with CaptureQueriesContext(connection) as review:
        reviews._weighed(project=adaptive, item_id=item.pk, votes=votes, reviewed=True)
    assert any("noiseflag" in q["sql"].lower() for q in review.captured_queries)


def test_the_outvoted_card_is_for_owners_and_reviewers_only(adaptive, annotator, annotator2, reviewer, owner, client):
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    item = Item.objects.get(pk=a.item_id)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "negative"})
    task = ReviewTask.objects.select_related("item__project").get(pk=task.pk)
    assert reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"}).source == "weighted"
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[adaptive.pk])).content.decode()
    assert 'id="outvoted-reviews"' in html and "owner can overrule such a label" in html
    client.force_login(annotator)
    html = client.get(reverse("quality", args=[adaptive.pk])).content.decode()
    assert 'id="outvoted-reviews"' not in html and 'id="own-accuracy"' in html  # their own accuracy only


def test_a_scans_model_has_no_vote_on_test_items_nor_where_it_learnt_nothing(adaptive, annotator, annotator2, owner):
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    item = Item.objects.get(pk=a.item_id)
    flagged_by_a_scan(item, owner, model_says="negative", accuracy=0.9)
    assert item.pk in routing_inputs.model_votes(project=adaptive, item_ids=[item.pk])
    ItemSplit.objects.create(item=item, split=Split.TEST)
    assert routing_inputs.model_votes(project=adaptive, item_ids=[item.pk]) == {}
    ItemSplit.objects.filter(item=item).delete()
    NoiseFlag.objects.update(model_value=None)  # a flag of a scan whose model knew nothing (or written before)
    assert routing_inputs.model_votes(project=adaptive, item_ids=[item.pk]) == {}


def test_a_tie_after_two_reviewers_goes_to_the_reviewer_deciding_now(adaptive, annotator, annotator2, reviewer, owner):
    """A reviewer's read: annotators split 1-1, one reviewer settles it, a later flag goes to a second reviewer
    who says the other label. The vote is 2-2; label order must not decide it: the reviewer deciding now does."""
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=2.0)  # no third annotator: straight to review
    a = submit(annotator, adaptive, "negative")
    submit(annotator2, adaptive, "neutral")
    task = ReviewTask.objects.select_related("item__project").get(item_id=a.item_id, status=ReviewStatus.OPEN)
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    item = Item.objects.get(pk=a.item_id)
    # the second reviewer says neutral, which comes after negative in the project's label order
    flag = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "neutral"})
    flag = ReviewTask.objects.select_related("item__project").get(pk=flag.pk)
    final = reviews.review_decide(reviewer=owner, task=flag, value={"label": "neutral"})
    assert final.value == {"label": "neutral"} and final.source == DecisionSource.REVIEWER


def test_the_panel_tells_no_weighing_to_a_reviewer_whose_own_annotation_is_the_only_one(adaptive, annotator, reviewer):
    """Their review replaces their annotation, so nothing else is weighed and their word is final (review_decide)."""
    from annotation.review.selectors import ADAPTIVE_WEIGHED, review_panel

    a = submit(annotator, adaptive, "positive")
    item = Item.objects.get(pk=a.item_id)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "negative"})
    assert review_panel(task=task, project=adaptive, viewer=annotator).routing_note == ""
    assert review_panel(task=task, project=adaptive, viewer=reviewer).routing_note.startswith(ADAPTIVE_WEIGHED)


def test_a_task_keeps_the_routing_it_was_opened_under(adaptive, annotator, annotator2, reviewer):
    """Items already routed keep their route (the settings page says so): a tester changed the budget to 10 and the
    panel said "no further annotator available within the budget of 10"; switched to fixed, the note vanished and
    the reviewer's word would have overridden two agreeing annotators on a task adaptive routing had opened."""
    from annotation.review.selectors import review_panel

    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    task = ReviewTask.objects.select_related("item__project").get(item_id=a.item_id, status=ReviewStatus.OPEN)
    assert task.routing == {"policy": "adaptive", "budget": 2.5, "review_all": False}
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=10.0, routing_policy=RoutingPolicy.FIXED)
    project = Project.objects.get(pk=adaptive.pk)
    note = review_panel(task=task, project=project).routing_note
    assert "2.5 judgements per item" in note and "10" not in note
    task.item.project = project
    final = reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    assert final.value == {"label": "neutral"} and final.source == DecisionSource.WEIGHTED  # still weighed

    # And the other way: an audit fixed routing opened stays the reviewer's call after a switch to adaptive, where
    # a lone reviewer could not have overturned two agreeing annotators.
    b = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    fixed_task = ReviewTask.objects.select_related("item__project").get(item_id=b.item_id, status=ReviewStatus.OPEN)
    assert fixed_task.routing["policy"] == "fixed" and fixed_task.reasons == [ReviewReason.AUDIT]
    Project.objects.filter(pk=adaptive.pk).update(routing_policy=RoutingPolicy.ADAPTIVE)
    fixed_task.item.project = Project.objects.get(pk=adaptive.pk)
    assert review_panel(task=fixed_task, project=fixed_task.item.project).routing_note == ""
    final = reviews.review_decide(reviewer=reviewer, task=fixed_task, value={"label": "negative"})
    assert final.value == {"label": "negative"} and final.source == DecisionSource.REVIEWER


def test_a_reviewer_settles_a_disagreement(adaptive, annotator, annotator2, reviewer):
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=2.2)
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "negative")
    task = ReviewTask.objects.select_related("item__project").get(item_id=a.item_id, status=ReviewStatus.OPEN)
    final = reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    assert final.value == {"label": "negative"} and final.source == DecisionSource.REVIEWER


def test_adaptive_routing_keeps_the_average_within_the_budget(adaptive, annotator, annotator2, reviewer):
    add_items(adaptive, [f"batch text {i}" for i in range(35)])  # 40 items
    Project.objects.filter(pk=adaptive.pk).update(routing_budget=2.4)
    people = [annotator, annotator2, Project.objects.get(pk=adaptive.pk).memberships.get(
        user__username="annotator3").user]
    rng = random.Random(3)
    working = list(people)
    while working:
        who = rng.choice(working)
        from annotation.annotate.services import annotation_submit, claim_next

        nxt = claim_next(annotator=who, project=adaptive)
        if nxt.item is None:
            working.remove(who)
            continue
        annotation_submit(annotator=who, item=nxt.item, value={"label": rng.choice(LABELS[:2])}, label_names=LABELS)
    for task in ReviewTask.objects.filter(project=adaptive, status=ReviewStatus.OPEN).select_related("item__project"):
        reviews.review_decide(reviewer=reviewer, task=task, value={"label": "positive"})
    annotations = Annotation.objects.filter(item__project=adaptive, status=AnnotationStatus.SUBMITTED).count()
    judgements = annotations + Decision.objects.filter(item__project=adaptive, source=DecisionSource.REVIEWER).count()
    assert judgements / 40 <= 2.4
    assert annotations > 80  # some third annotators were asked
    assert not Item.objects.filter(project=adaptive).exclude(status=ItemStatus.APPROVED).exists()


def test_adaptive_routing_is_the_default(project):
    assert project.routing_policy == RoutingPolicy.ADAPTIVE and project.routing_budget == 2.5


@fixed_routing
def test_the_marker_pins_the_fixture_to_fixed_routing(project):
    assert project.routing_policy == RoutingPolicy.FIXED and project.routing_budget == 2.5


# --- settings and plan through the API ---------------------------------------------------------


def test_routing_settings_round_trip_through_the_api(project, owner):
    client = api_as(owner)
    body = {"routing_policy": "adaptive", "routing_budget": 2.2, "audit_rate": 0.05}
    response = client.patch(url("api-project-detail", project), body, format="json")
    assert response.status_code == 200, response.data
    data = client.get(url("api-project-detail", project)).data
    assert (data["routing_policy"], data["routing_budget"], data["audit_rate"]) == ("adaptive", 2.2, 0.05)
    project.refresh_from_db()
    assert project.routing_policy == RoutingPolicy.ADAPTIVE


@pytest.mark.parametrize(
    "body", [{"routing_policy": "oracle"}, {"routing_budget": 0.5}, {"audit_rate": 1.5}, {"routing_budget": "x"}]
)
def test_bad_routing_settings_are_refused_and_change_nothing(project, owner, body):
    Project.objects.filter(pk=project.pk).update(routing_policy=RoutingPolicy.FIXED, routing_budget=3.0)
    response = api_as(owner).patch(url("api-project-detail", project), body, format="json")
    assert response.status_code == 400
    field = next(iter(body))
    assert field in str(response.data)
    project.refresh_from_db()
    assert (project.routing_policy, project.routing_budget, project.audit_rate) == ("fixed", 3.0, 0.1)


def test_an_annotator_cannot_change_routing(project, annotator):
    response = api_as(annotator).patch(url("api-project-detail", project), {"routing_budget": 3}, format="json")
    assert response.status_code == 403


@fixed_routing  # the plan is what adaptive routing would do before the owner switches to it
def test_the_plan_shows_what_adaptive_routing_would_do(project, owner, annotator, annotator2):
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    acknowledge_guidelines(project, annotator, annotator2)
    for first, second in [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral")]:
        submit(annotator, project, first)
        submit(annotator2, project, second)
    plan = api_as(owner).get(url("api-routing-plan", project)).data
    assert plan["policy"] == "fixed" and plan["items"] == 3
    assert plan["done"] + plan["annotator"] + plan["reviewer"] == 3
    assert plan["annotator"] + plan["reviewer"] >= 1  # the disagreement
    assert 0 < plan["expected_accuracy"] <= 1 and 0 < plan["fixed_expected_accuracy"] <= 1
    assert api_as(annotator).get(url("api-routing-plan", project)).status_code == 403
    # the fixed routing's disagreement is worth its reviewers' accuracy (unmeasured here: REVIEWER_PRIOR), not an
    # unmeasured annotator's
    assert plan["reviewer_accuracy"] == pytest.approx(routing_inputs.REVIEWER_PRIOR) == pytest.approx(0.85)
    accuracies = routing_inputs.voter_accuracies(project=project)
    # one more annotator is worth what those who annotate were measured at (three annotations each here)
    assert plan["annotator_accuracy"] == pytest.approx((accuracies["annotator1"] + accuracies["annotator2"]) / 2)
    annotating = plan["annotator_accuracy"]
    pairs = [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral")]
    first = [(votes(("annotator1", a), ("annotator2", b)), None) for a, b in pairs]
    fixed = [
        routing.plan(
            first, LABELS, accuracies, per_item=2.5, total_items=3, reviewer_accuracy=r, annotator_accuracy=annotating
        )
        for r in (routing_inputs.REVIEWER_PRIOR, routing.PRIOR_ACCURACY)
    ]
    assert plan["fixed_expected_accuracy"] == pytest.approx(fixed[0].fixed_expected_accuracy)
    assert plan["expected_accuracy"] == pytest.approx(fixed[0].expected_accuracy)
    assert fixed[0].fixed_expected_accuracy - fixed[1].fixed_expected_accuracy == pytest.approx(0.05 / 3)


@fixed_routing
def test_each_persons_weight_in_the_vote_is_listed_with_its_interval(
    project, owner, annotator, annotator2, reviewer, client
):
    """A tester read "a review is worth 0.90" in the plan and found no reviewer's figure anywhere: the weights the
    vote uses are listed per person, owners' and reviewers' eyes only."""
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    acknowledge_guidelines(project, annotator, annotator2)
    idle = make_user("idle")
    membership_set(project=project, user=idle, role=Role.ANNOTATOR)
    pairs = [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral"), ("negative", "negative")]
    for first, second in pairs:
        submit(annotator, project, first)
        submit(annotator2, project, second)
    split = Annotation.objects.filter(item__project=project, value={"label": "negative"}, annotator=annotator2).first()
    Decision.objects.create(
        item_id=split.item_id, value={"label": "positive"}, source=DecisionSource.REVIEWER, reviewer=reviewer
    )
    plan = api_as(owner).get(url("api-routing-plan", project)).data
    rows = {row["who"]: row for row in plan["voters"]}
    assert [row["who"] for row in plan["voters"]] == ["annotator1", "annotator2", "idle", "reviewer"]
    measured = routing_inputs.voter_measures(project=project)
    for who in ("annotator1", "annotator2", "reviewer"):
        accuracy, n = measured[who]
        assert rows[who]["accuracy"] == pytest.approx(accuracy) and rows[who]["measured_on"] == n
        assert rows[who]["low"] < accuracy < rows[who]["high"]
    assert (rows["annotator1"]["measured_on"], rows["annotator1"]["annotations"]) == (4, 4)
    assert (rows["reviewer"]["measured_on"], rows["reviewer"]["reviews"]) == (1, 1)
    assert rows["reviewer"]["role"] == "reviewer"
    # the one who sided with the reviewer measures above the one the reviewer overrode
    assert rows["annotator1"]["accuracy"] > rows["annotator2"]["accuracy"]
    # the plan's review figure is the reviewers' weights, weighed by their reviews: here the one reviewer's
    assert plan["reviewer_accuracy"] == pytest.approx(rows["reviewer"]["accuracy"])
    # nobody measured an idle annotator: listed at the prior they count at, with no interval
    assert rows["idle"]["accuracy"] == routing.PRIOR_ACCURACY and rows["idle"]["low"] is None
    assert rows["idle"]["measured_on"] == 0
    # few judgements: a wide interval, within what the prior's ten pseudo-items allow
    assert rows["reviewer"]["high"] - rows["reviewer"]["low"] > 0.3
    assert api_as(annotator).get(url("api-routing-plan", project)).status_code == 403
    client.force_login(owner)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="vote-weights-table"' in html and 'id="vote-weights-prior"' in html  # the idle annotator's prior
    low, high = rows["reviewer"]["low"], rows["reviewer"]["high"]
    weight = rows["reviewer"]["accuracy"]
    assert f"<td>reviewer</td><td>reviewer</td><td>{weight:.3f}</td><td>{low:.2f}–{high:.2f}" in html
    assert "these weights only feed the plan above" in html  # fixed routing: the reviewer's word is final
    # an owner who reviewed an item nobody annotated is unmeasured, at a reviewer's prior; one who left is still
    # listed while their judgements vote
    lone = add_items(project, ["imported alone"])[0]
    Decision.objects.create(item=lone, value={"label": "neutral"}, source=DecisionSource.REVIEWER, reviewer=owner)
    Membership.objects.filter(project=project, user=annotator2).delete()
    voters = api_as(owner).get(url("api-routing-plan", project)).data["voters"]
    rows = {row["who"]: row for row in voters}
    assert (rows["owner"]["role"], rows["owner"]["accuracy"]) == ("owner", routing_inputs.REVIEWER_PRIOR)
    assert rows["annotator2"]["role"] == "" and rows["annotator2"]["measured_on"] == 4
    assert voters[-1]["who"] == "annotator2"  # former members last
    client.force_login(annotator)
    assert 'id="vote-weights-table"' not in client.get(reverse("quality", args=[project.pk])).content.decode()


@fixed_routing
def test_the_bar_is_measured_on_the_projects_decisions_and_shown_in_the_plan(
    project, owner, annotator, annotator2, monkeypatch, client
):
    monkeypatch.setattr(routing, "BAR_MIN_ITEMS", 3)
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0, routing_budget=2.2)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    pairs = [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral"), ("negative", "neutral")]
    for first, second in [*pairs, ("positive", "positive")]:
        submit(annotator, project, first)
        submit(annotator2, project, second)
    # five items, 0.2 judgements spare on each: one decision of the two splits' can be paid for (each split a tie
    # between two like annotators, the third label keeping a little: 53 % in doubt)
    bar = routing_inputs.budget_rules(project=project)[0]
    assert 0.5 < bar < 0.6
    assert routing_inputs.budget_state(project=project).bar == pytest.approx(bar)
    assert routing_inputs.budget_state(project=project, bar=False).bar == 0.0
    assert api_as(owner).get(url("api-routing-plan", project)).data["bar"] == pytest.approx(bar)
    client.force_login(owner)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "Under adaptive routing: The budget cannot" in html  # the project routes fixed: what it would do
    assert f"under {100 * bar:.1f} % in doubt is accepted on it" in html
    assert "wait for their audit" not in html and "none: the audit rate is 0" in html  # no audit to wait for
    # a budget at the overlap pays for nothing further: the page says so rather than quote a bar (a tester read
    # "under 46.5 % in doubt is accepted" where no judgement could be paid for)
    Project.objects.filter(pk=project.pk).update(routing_budget=2.0)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "The budget is the overlap (2 judgements per item), so it pays for no further judgement" in html
    assert "% in doubt is accepted on it" not in html
    # under it (fixed routing allows that) there is no plan, and the page and the API say why
    Project.objects.filter(pk=project.pk).update(routing_budget=1.5)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="routing-plan-table"' not in html and "No plan: the budget (1.5 judgements per item)" in html
    plan = api_as(owner).get(url("api-routing-plan", project)).data
    assert plan["blocked"].startswith("No plan: the budget (1.5") and plan["items"] == 0
    assert plan["expected_accuracy"] is None
    Project.objects.filter(pk=project.pk).update(routing_budget=1.0, routing_policy=RoutingPolicy.FIXED)
    plan = api_as(owner).get(url("api-routing-plan", project)).data  # one judgement, and what is in force
    assert plan["blocked"].startswith("No plan: the budget (1 judgement per item) is under the overlap (2)")
    assert "; the project uses fixed routing." in plan["blocked"]
    Project.objects.filter(pk=project.pk).update(routing_budget=2.5)
    project.refresh_from_db()
    assert routing_inputs.budget_rules(project=project)[0] == 0.0  # both splits paid for
    Project.objects.filter(pk=project.pk).update(routing_budget=2.0, review_all=True)
    project.refresh_from_db()
    assert routing_inputs.budget_rules(project=project)[0] == 0.0  # every accepted item is reviewed: no budget to keep
    plan = api_as(owner).get(url("api-routing-plan", project)).data
    assert plan["bar"] == 0.0 and plan["audit"] == 3  # the three agreements, audited under review_all
    assert 'id="routing-bar"' not in client.get(reverse("quality", args=[project.pk])).content.decode()


def test_a_majority_under_the_bar_is_accepted_and_its_decision_says_why(adaptive, annotator, annotator2, monkeypatch):
    monkeypatch.setattr(routing_inputs, "budget_rules", lambda **_: (0.3, True))
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "negative")  # a tie between two unmeasured annotators passes any bar
    third = Project.objects.get(pk=adaptive.pk).memberships.get(user__username="annotator3").user
    assert submit(third, adaptive, "positive").item_id == a.item_id
    item = Item.objects.get(pk=a.item_id)
    assert item.status == ItemStatus.APPROVED  # 2-1 among unmeasured annotators: 88 % sure, 12 % in doubt
    decision = Decision.objects.get(item=item)
    assert decision.source == DecisionSource.WEIGHTED and decision.value == {"label": "positive"}
    assert re.search(r"Under 90% sure \(1\d\.\d% in doubt\), but the budget keeps its further judgements for items at "
                     r"least 30\.0% in doubt\.$", decision.reason)
    # a test-split item's label is people's word, and a review is never held back: no bar on either
    majority = votes(("x", "positive"), ("y", "positive"), ("z", "negative"))  # nobody measured: 88 % sure
    train, test = Item.objects.filter(project=adaptive, status=ItemStatus.NEW).order_by("pk")[:2]
    ItemSplit.objects.create(item=test, split=Split.TEST)
    assert reviews._weighed(project=adaptive, item_id=train.pk, votes=majority)[0].bar == 0.3
    decision, budget = reviews._weighed(project=adaptive, item_id=test.pk, votes=majority)
    assert decision.bar == 0.0 and budget.bar == 0.3  # the budget as its rules stand, for the audit draw after it


@pytest.mark.parametrize(("rules", "audited"), [((0.3, True), False), ((0.0, False), False), ((0.0, True), True)])
def test_a_test_split_agreement_drawn_for_audit_follows_the_audit_rule(
    adaptive, annotator, annotator2, monkeypatch, rules, audited
):
    """A test item's decision ignores the doubt bar, but its audit waits where audits do not fit, as any item's."""
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)
    monkeypatch.setattr(routing_inputs, "budget_rules", lambda **_: rules)
    for item in Item.objects.filter(project=adaptive, status=ItemStatus.NEW):
        ItemSplit.objects.create(item=item, split=Split.TEST)
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "positive")
    assert ReviewTask.objects.filter(item_id=a.item_id).exists() == audited


def test_routing_an_agreement_drawn_for_audit_reads_the_budget_once(adaptive, annotator, annotator2, monkeypatch):
    """The audit draw asks the budget the decision just read: one count of the project's items and reviews, not two."""
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)
    read = []
    budget_state = routing_inputs.budget_state
    monkeypatch.setattr(routing_inputs, "budget_state", lambda **kw: read.append(kw) or budget_state(**kw))
    a = submit(annotator, adaptive, "positive")
    submit(annotator2, adaptive, "positive")
    assert ReviewTask.objects.get(item_id=a.item_id).reasons == [ReviewReason.AUDIT]
    assert len(read) == 1


def test_the_plan_values_one_more_annotator_at_what_annotators_were_measured():
    """A tester's plan said adaptive routing would be less right than fixed where every annotator measured 0.87-0.97:
    the further annotator an escalated item gets was valued at the unmeasured 0.8."""
    split = [(votes(("a", "positive"), ("b", "negative")), None)] * 3
    good = {"a": 0.95, "b": 0.94}
    flat, measured = (
        routing.plan(split, LABELS, good, per_item=4.0, total_items=3, annotator_accuracy=acc) for acc in (0.8, 0.95)
    )
    assert (flat.annotator, measured.annotator) == (3, 3)
    assert measured.expected_accuracy > flat.expected_accuracy


def test_a_review_is_expected_as_right_as_those_who_review_weighed_by_their_reviews(project, owner, reviewer):
    """The owner reviews too (permissions.REVIEW): their reviews count; a reviewer member who never reviewed does
    not, once anyone has."""
    expect = routing_inputs.reviewer_accuracy
    assert expect(project=project, accuracies={"reviewer": 0.95}) == pytest.approx(0.95)  # before any review: members
    assert expect(project=project, accuracies={}) == pytest.approx(routing_inputs.REVIEWER_PRIOR)
    second = make_user("reviewer2")
    membership_set(project=project, user=second, role=Role.REVIEWER)
    both = pytest.approx((0.95 + routing_inputs.REVIEWER_PRIOR) / 2)
    assert expect(project=project, accuracies={"reviewer": 0.95}) == both
    items = list(Item.objects.filter(project=project)[:4])
    for item, who in zip(items, [owner, owner, owner, reviewer], strict=True):
        Decision.objects.create(item=item, value={"label": "positive"}, source=DecisionSource.REVIEWER, reviewer=who)
    measured = {"owner": 0.7, "reviewer": 0.95, "reviewer2": 0.5}
    assert expect(project=project, accuracies=measured) == pytest.approx((3 * 0.7 + 0.95) / 4)
    assert expect(project=project, accuracies={}) == pytest.approx(routing_inputs.REVIEWER_PRIOR)  # nobody measured
    Membership.objects.filter(project=project, role=Role.REVIEWER).delete()
    Decision.objects.filter(item__project=project).delete()
    assert expect(project=project, accuracies=measured) == pytest.approx(routing_inputs.REVIEWER_PRIOR)  # no reviewers


def test_an_audit_waits_for_a_spare_judgement_under_adaptive_routing(adaptive, annotator, annotator2):
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0, routing_budget=2.0)  # overlap takes it all
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    assert Item.objects.get(pk=a.item_id).status == ItemStatus.APPROVED
    assert not ReviewTask.objects.filter(item_id=a.item_id).exists()


def test_an_audit_waits_while_items_in_doubt_need_the_budget(adaptive, annotator, annotator2, monkeypatch):
    Project.objects.filter(pk=adaptive.pk).update(audit_rate=1.0)  # 2.5: a judgement to spare
    rules = {"now": (0.4, False)}  # the budget cannot pay for every item in doubt
    monkeypatch.setattr(routing_inputs, "budget_rules", lambda **_: rules["now"])
    a = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    assert Item.objects.get(pk=a.item_id).status == ItemStatus.APPROVED
    assert not ReviewTask.objects.filter(item_id=a.item_id).exists()
    rules["now"] = (0.0, False)  # it can, but not the audits beside them: the audit still waits
    b = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    assert not ReviewTask.objects.filter(item_id=b.item_id).exists()
    rules["now"] = (0.0, True)  # both: the next agreement is audited
    c = submit(annotator, adaptive, "neutral")
    submit(annotator2, adaptive, "neutral")
    assert ReviewTask.objects.get(item_id=c.item_id).reasons == [ReviewReason.AUDIT]


def test_audits_fit_only_where_the_budget_pays_for_the_items_in_doubt_and_them():
    items = [[0.5]] * 20 + [[0.01]] * 80  # 20 decisions in doubt, 80 items accepted
    assert routing.audits_fit(items, per_item=2.3, overlap=2, audit_rate=0.1)  # 30 pays for 20 + 8
    assert not routing.audits_fit(items, per_item=2.25, overlap=2, audit_rate=0.1)  # 25 does not
    assert routing.doubt_bar(items, per_item=2.25, overlap=2) == 0.0  # though it pays for the items in doubt
    assert routing.audits_fit(items, per_item=2.0, overlap=2, audit_rate=0.0)  # no audits: nothing to fit
    lagging = routing.Budget(per_item=2.5, routed=100, spent=240, total_items=200, overlap=2, bar=0.3, audits=False)
    assert routing.audit_affordable(lagging)  # spending lags the average: the spare judgements go to audits
    assert not routing.audit_affordable(replace(lagging, spent=250))


def test_the_plan_draws_no_audit_while_the_bar_holds():
    sure = [(votes(("a", "positive"), ("b", "positive")), None)] * 10
    accuracies = {"a": 0.9, "b": 0.9}
    drawn = [True] * 10
    free = routing.plan(sure, LABELS, accuracies, per_item=2.5, total_items=10, audit=drawn)
    held = routing.plan(sure, LABELS, accuracies, per_item=2.5, total_items=10, audit=drawn, bar=0.4)
    assert free.audit > 0 and held.audit == 0 and held.done == 10


# --- why an item is in review, as the review panel says it ----------------------------------------------


@pytest.mark.parametrize(
    ("policy", "task_type", "reasons", "says"),
    [
        ("adaptive", "single_label", ["disagreement"], "under 90 % sure"),
        ("adaptive", "single_label", ["unsure"], "under 90 % sure"),
        ("adaptive", "single_label", ["audit"], "An audit sample: the weighted vote was sure enough"),
        ("adaptive", "single_label", ["noise"], "weighed"),  # a noise scan opened it: only what the word does
        ("adaptive", "multi_label", ["disagreement"], ""),  # routed as fixed: adaptive is for single labels
        ("fixed", "single_label", ["disagreement"], ""),
    ],
)
def test_the_review_panel_says_why_adaptive_routing_sent_the_item(policy, task_type, reasons, says):
    from annotation.review.selectors import ADAPTIVE_WEIGHED, ADAPTIVE_WEIGHED_NOISE, routing_note

    project = Project(routing_policy=policy, task_type=task_type, routing_budget=2.5)
    note = routing_note(project=project, reasons=reasons)
    if says == "weighed":
        assert note == ADAPTIVE_WEIGHED + ADAPTIVE_WEIGHED_NOISE  # the scan's model votes on its flag's review
        assert routing_note(project=project, reasons=reasons, annotated=False) == ""  # imported label: word is final
    elif says:
        assert says in note and note.endswith(ADAPTIVE_WEIGHED) and "2.5 judgements per item" in note
    else:
        assert note == ""


@pytest.mark.parametrize(
    ("policy", "task_type", "adaptive"),
    [
        ("adaptive", "single_label", True),
        ("adaptive", "multi_label", False),
        ("adaptive", "spans", False),
        ("adaptive", "instruction", False),
        ("fixed", "single_label", False),
    ],
)
def test_adaptive_routing_is_in_force_only_for_single_label_tasks(policy, task_type, adaptive):
    """One rule for routing, the review panel, the quality page and the demo's report: the weighted vote weighs single
    labels only, so other task types route fixed whatever the setting says."""
    assert Project(routing_policy=policy, task_type=task_type).routes_adaptively is adaptive


def test_under_review_all_an_audit_is_not_said_to_come_from_the_budget():
    from annotation.review.selectors import ADAPTIVE_REVIEW_ALL, routing_note

    project = Project(routing_policy="adaptive", task_type="single_label", routing_budget=2.5, review_all=True)
    assert routing_note(project=project, reasons=["audit"]).startswith(ADAPTIVE_REVIEW_ALL)


def test_the_review_panel_of_an_adaptive_project_explains_the_route(project, annotator, annotator2, reviewer, client):
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    acknowledge_guidelines(project, annotator, annotator2)
    item = submit(annotator, project, "positive").item_id
    submit(annotator2, project, "negative")
    assert ReviewTask.objects.get(item_id=item).reasons == [ReviewReason.DISAGREEMENT]  # no third annotator here
    client.force_login(reviewer)
    body = client.get(url("review-queue", project)).content.decode()
    assert 'id="review-routing-note"' in body and "Your label joins the vote" in body
    assert "weighted vote so far: <strong>a tie</strong>" in body  # nobody measured yet: no label leads
    ReviewTask.objects.filter(item_id=item).update(suggested_value={"label": "positive"})  # one measured better
    body = client.get(url("review-queue", project)).content.decode()
    assert "weighted vote so far: <strong>positive</strong>" in body
    # the history says it the same way, not as the label the item had then
    history = client.get(reverse("item-history", args=[project.pk, item])).content.decode()
    assert "Sent to review: Annotators disagree; weighted vote so far: positive" in history
