"""Adaptive routing: after an item's overlap annotations, done, one more annotator, or a reviewer (no Django).

Every judgement is a vote weighed by its voter's measured accuracy (a one-coin Dawid-Skene model: a
voter of accuracy a says the true label with probability a and each other label with (1 - a)/(K - 1)),
so the posterior is the product of the votes' likelihoods. The model counts as one more voter, voting
its likeliest label with its own measured accuracy, except on test-split items (the test split is
sacred: nothing model-driven decides a test label). The final label is the posterior's argmax: a
reviewer's single word outweighs two agreeing annotators only when their measured accuracies say so.

`decide` asks for a further judgement only while the posterior's best label is under `CONFIDENT` and
the budget has a judgement to spare: one more annotator when it has two (a third opinion may need a
fourth), a reviewer (one decisive judgement) when it has one; otherwise the weighted vote stands, unless it
is a tie (two labels equally likely, as when two annotators nobody has measured yet disagree): a tie goes
to a reviewer even past the budget, since only the label order could settle it. Where the budget cannot pay
for every item in doubt, `doubt_bar` keeps it for the most doubtful: an item less in doubt than the bar is
accepted on its vote (ties apart), so a two-to-one majority does not take the judgement a split will need,
unless the allowance has BAR_LIFTS judgements to spare (spending a BURST behind the average).
`Budget` keeps the owner's average: a running allowance, earned `budget` per item routed, never lets
the judgements committed exceed `budget` times the items seen (plus a small burst, capped by the
project's total), so the average over the project stays at or under the budget, ties apart (above).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DONE = "done"
ANNOTATOR = "annotator"
REVIEWER = "reviewer"

FIXED = "fixed"
ADAPTIVE = "adaptive"

# A voter nobody has measured yet counts as this accurate; a measured one is pulled toward it by
# PRIOR_ITEMS pseudo-items, so a handful of lucky items does not make anyone an oracle.
PRIOR_ACCURACY = 0.8
PRIOR_ITEMS = 10.0

# Accuracies are clipped here: nobody is certain, and nobody is worse than a coin among K labels.
MAX_ACCURACY = 0.99

# An unsure annotator's vote counts this much of an ordinary one.
UNSURE_WEIGHT = 0.5

# The posterior's best label must reach this before an item is done without a further judgement.
CONFIDENT = 0.9

# Judgements one item may get at most, annotators and reviewer together.
MAX_PER_ITEM = 5

# Judgements the running allowance may lend ahead of the average (early items are not starved).
BURST = 4.0

# The doubt bar (`doubt_bar`) is set once this many items have their overlap in; before, the allowance alone rules.
BAR_MIN_ITEMS = 50

# The bar lifts while the allowance has this many judgements to spare (spending a BURST behind the average, where
# fewer items came above the bar than it expected): they go to the items under it, so the bar leaves at most a few
# judgements of the budget unspent.
BAR_LIFTS = 2 * BURST


@dataclass(frozen=True)
class Vote:
    voter: str
    label: str
    weight: float = 1.0  # UNSURE_WEIGHT for an unsure annotator


@dataclass(frozen=True)
class ModelVote:
    """The model's out-of-sample opinion of an item and how often it is right."""

    label: str
    accuracy: float


@dataclass(frozen=True)
class Decision:
    action: str  # DONE, ANNOTATOR or REVIEWER
    label: str  # the weighted vote's label now
    confidence: float  # its posterior probability
    posterior: dict[str, float]
    model: ModelVote | None = None  # the model's vote, where it had one
    unmeasured: int = 0  # votes whose voter nobody has measured yet (counted at the prior)
    bar: float = 0.0  # accepted though in doubt: the budget keeps its judgements for items at least this much in doubt


def shrunk_accuracy(agreed: float, n: float, prior: float = PRIOR_ACCURACY) -> float:
    """A voter's accuracy pulled toward `prior` (what they count at unmeasured) by PRIOR_ITEMS pseudo-items."""
    return (agreed + prior * PRIOR_ITEMS) / (n + PRIOR_ITEMS)


def accuracy_interval(accuracy: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of a voter's accuracy as `measured_accuracies` gives it: a Beta whose mean is the
    shrunk accuracy, over the `n` items measured and the PRIOR_ITEMS pseudo-items that shrink it. Wide for a voter
    measured on few items."""
    from scipy.special import betaincinv

    strength = n + PRIOR_ITEMS
    mean = min(max(accuracy, 1e-6), 1 - 1e-6)
    tail = (1 - level) / 2
    a, b = mean * strength, (1 - mean) * strength
    return float(betaincinv(a, b, tail)), float(betaincinv(a, b, 1 - tail))


def counted_accuracy(accuracy: float, k: int) -> float:
    """The accuracy `posterior` counts a voter of this measured accuracy at among k labels: clipped to just above
    chance and to MAX_ACCURACY."""
    return min(MAX_ACCURACY, max(1.0 / max(2, k) + 1e-3, accuracy))


def model_accuracy(accuracy: float, n: float | None) -> float:
    """A model's accuracy measured on n held-out items, pulled down toward PRIOR_ACCURACY like a voter's: a run right
    on all 96 of its test items is no oracle either (unshrunk, clipped to MAX_ACCURACY, its one vote outweighed two
    agreeing annotators). Never pulled up: a weak model measured on few items keeps its low figure (pulled toward
    0.8, a run at 0.5 on 10 items would weigh 0.65). Without n (a run that did not record it) it is taken as
    measured."""
    if n is None:
        return accuracy
    return min(accuracy, shrunk_accuracy(accuracy * n, n))


def accuracies_from_quality(rows: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """{voter: shrunk accuracy} from annotator-quality rows ({annotator, n, agreed}) as a noise scan stores them."""
    out: dict[str, float] = {}
    for row in rows:
        n = float(row.get("n") or 0)  # type: ignore[arg-type]
        agreed = float(row.get("agreed") or 0)  # type: ignore[arg-type]
        out[str(row["annotator"])] = shrunk_accuracy(agreed, n)
    return out


def _log_likelihood(accuracy: float, k: int) -> tuple[float, float]:
    """(log P(says c | true c), log P(says c | true other)) for a voter of this accuracy among k labels."""
    a = counted_accuracy(accuracy, k)
    return math.log(a), math.log((1 - a) / (k - 1))


def posterior(
    votes: Sequence[Vote],
    labels: Sequence[str],
    accuracies: Mapping[str, float],
    *,
    model: ModelVote | None = None,
    default_accuracy: float = PRIOR_ACCURACY,
) -> dict[str, float]:
    """P(true label | every vote and the model), uniform prior; labels nobody voted keep their share."""
    k = max(2, len(labels))
    scores = dict.fromkeys(labels, 0.0)
    voters: list[tuple[str, float, float]] = [
        (v.label, accuracies.get(v.voter, default_accuracy), v.weight) for v in votes
    ]
    if model is not None:
        voters.append((model.label, model.accuracy, 1.0))
    for label, accuracy, weight in voters:
        if label not in scores:
            scores[label] = 0.0
        hit, miss = _log_likelihood(accuracy, k)
        for candidate in scores:
            scores[candidate] += weight * (hit if candidate == label else miss)
    top = max(scores.values())
    exp = {c: math.exp(s - top) for c, s in scores.items()}
    total = sum(exp.values())
    return {c: e / total for c, e in exp.items()}


def weighted_label(post: Mapping[str, float], labels: Sequence[str]) -> tuple[str, float]:
    """The posterior's best label (ties go to the earlier label in the project's order) and its probability."""
    order = {name: i for i, name in enumerate(labels)}
    best = min(post, key=lambda c: (-post[c], order.get(c, len(order)), c))
    return best, post[best]


EM_ROUNDS = 20


def measured_accuracies(
    items: Sequence[Sequence[Vote]],
    labels: Sequence[str],
    models: Sequence[ModelVote | None] = (),
    priors: Mapping[str, float] | None = None,
) -> dict[str, tuple[float, float]]:
    """{voter: (shrunk accuracy, items)} by one-coin Dawid-Skene EM over every item with two or more votes.

    Judged against the posterior of all the votes, not against one partner: with two annotators per item,
    "agreement with the other one" counts the partner's errors as theirs and puts everyone far below
    their real accuracy (a 0.95 annotator measures 0.77 against partners of 0.6-0.9). Each voter's
    accuracy is the expected share of their votes that are right, pulled toward PRIOR_ACCURACY.

    `models[i]`: the model's vote on item i, where it has one, counted in that item's posterior at its own
    measured accuracy (never re-measured here), as it is in the weighted vote. Without it a reviewer sent to
    items *because* a model doubts their annotators' agreement (a noise flag, routing's doubt) was scored
    against those annotators alone: each right correction counted as a miss, and their word weighed less on the
    next flag (a tester's reviewer fell from 0.85 to 0.70 in two corrections the model agreed with).

    `priors`: {voter: the accuracy they count at unmeasured}, which their measure starts from and is pulled toward
    (PRIOR_ACCURACY for anyone not named). A reviewer counts at routing_inputs.REVIEWER_PRIOR unmeasured: pulled
    toward PRIOR_ACCURACY instead, their weight fell on their first reviews even where every one was right (a tester
    saw 0.85 become 0.73 after one).
    """
    votes_and_models = zip(items, models or [None] * len(items), strict=True)
    shared = [(votes, model) for votes, model in votes_and_models if len(votes) >= 2]
    voters = sorted({v.voter for votes, _ in shared for v in votes})
    prior = {who: (priors or {}).get(who, PRIOR_ACCURACY) for who in voters}
    accuracy = dict(prior)
    n = dict.fromkeys(voters, 0.0)
    for votes, _ in shared:
        for v in votes:
            n[v.voter] += 1
    for _ in range(EM_ROUNDS):
        right = dict.fromkeys(voters, 0.0)
        for votes, model in shared:
            post = posterior(votes, labels, accuracy, model=model)
            for v in votes:
                right[v.voter] += post.get(v.label, 0.0)
        accuracy = {who: shrunk_accuracy(right[who], n[who], prior[who]) for who in voters}
    return {who: (accuracy[who], n[who]) for who in voters}


@dataclass
class Budget:
    """The owner's average judgements per item, as a running allowance over the items routed so far."""

    per_item: float
    routed: int  # items that reached routing, this one included
    spent: int  # judgements given or committed so far (annotations, extra slots, reviews), this item's included
    total_items: int  # items in the project: the average is kept over them all
    overlap: int = 2  # what each item not routed yet will cost at least
    bar: float = 0.0  # the doubt (1 - confidence) an item needs for a further judgement: `doubt_bar`
    audits: bool = True  # the budget pays for the audits beside every item in doubt: `audits_fit`

    def spare(self) -> float:
        """Judgements that may still be committed now without breaking the average over the whole project."""
        waiting = max(0, self.total_items - self.routed)
        ceiling = self.per_item * max(self.total_items, self.routed) - self.overlap * waiting
        return min(self.per_item * self.routed + BURST, ceiling) - self.spent


def decide(
    votes: Sequence[Vote],
    labels: Sequence[str],
    accuracies: Mapping[str, float],
    *,
    budget: Budget,
    model: ModelVote | None = None,
    reviewed: bool = False,
    annotators_left: int | None = None,
) -> Decision:
    """Done, one more annotator or a reviewer, for an item with these votes (see the module docstring).

    `reviewed`: a reviewer already judged it (their vote is among `votes`): nothing more is asked.
    `annotators_left`: how many annotators could still take the item (None: enough); with none a
    further opinion can only come from a reviewer.
    """
    post = posterior(votes, labels, accuracies, model=model)
    label, confidence = weighted_label(post, labels)
    action = DONE
    barred = 0.0
    if not reviewed and confidence < CONFIDENT and len(votes) < MAX_PER_ITEM:
        spare = budget.spare()
        can_ask = annotators_left is None or annotators_left > 0
        if is_tie(post):  # label order is no way to settle it: past the bar, and to a reviewer past the budget
            action = ANNOTATOR if spare >= 2 and len(votes) + 2 <= MAX_PER_ITEM and can_ask else REVIEWER
        elif 1 - confidence < budget.bar - TIE and 1 <= spare < BAR_LIFTS:
            barred = budget.bar  # the budget is kept for the items more in doubt
        elif spare >= 2 and len(votes) + 2 <= MAX_PER_ITEM and can_ask:
            action = ANNOTATOR
        elif spare >= 1:
            action = REVIEWER
    return Decision(action=action, label=label, confidence=confidence, posterior=post, model=model, bar=barred)


def is_tie(post: Mapping[str, float]) -> bool:
    """Whether two labels share the posterior's top probability (two unmeasured annotators who disagree)."""
    top = sorted(post.values(), reverse=True)[:2]
    return len(top) == 2 and top[0] - top[1] < TIE


TIE = 1e-9


def doubt_bar(items: Sequence[Sequence[float]], *, per_item: float, overlap: int) -> float:
    """The least doubt an item must have for the budget to be spent on it, where it cannot be spent on every item in
    doubt.

    `items[i]`: item i's doubt (1 - confidence) at each decision routing made or will make on it that could ask for
    more: with its overlap votes, then with each further annotator's vote it got. Each decision that asks costs one
    judgement; the budget beyond the overlap pays for that many decisions per item. The bar is the doubt of the last
    decision it can pay for, the most doubtful first (as doubtful as it pass too): a two-to-one majority does not take
    the judgement a one-to-one split will need, as under the running allowance alone, which serves whichever item
    comes first. 0 while every decision in doubt can be paid for (agreed items are then drawn for audit only where
    their audits fit beside them: `audits_fit`), and under BAR_MIN_ITEMS items. The decisions after a further
    annotator are those routing asked for under the bar before: a lower bar makes more of them, which raises the next
    one (damped: the bar is measured again only as the project grows by a tenth).
    """
    if len(items) < BAR_MIN_ITEMS:
        return 0.0
    in_doubt = sorted(_in_doubt(items), reverse=True)
    affordable = int(max(0.0, per_item - overlap) * len(items) + 1e-9)
    if affordable >= len(in_doubt):
        return 0.0
    return in_doubt[max(affordable, 1) - 1]


def _in_doubt(items: Sequence[Sequence[float]]) -> list[float]:
    """The doubts of the decisions that are in doubt (under CONFIDENT sure), every item's."""
    return [d for doubts in items for d in doubts if d > 1 - CONFIDENT]


def audits_fit(items: Sequence[Sequence[float]], *, per_item: float, overlap: int, audit_rate: float) -> bool:
    """Whether the budget beyond the overlap pays for every decision in doubt (`doubt_bar`'s `items`) and, beside
    them, the audits of the items accepted on their vote. Where it does not, agreed items wait for their audit: a
    judgement on an item in doubt is worth more than a check of an agreement (under BAR_MIN_ITEMS items they fit)."""
    if len(items) < BAR_MIN_ITEMS or audit_rate <= 0:
        return True
    in_doubt = len(_in_doubt(items))
    accepted = sum(1 for doubts in items if not doubts or doubts[-1] <= 1 - CONFIDENT)
    return in_doubt + audit_rate * accepted <= max(0.0, per_item - overlap) * len(items) + 1e-9


def expected_confidence_after(
    post: Mapping[str, float], labels: Sequence[str], accuracy: float
) -> float:
    """Expected probability that the weighted vote is right after one more vote of this accuracy.

    The next vote says label l with probability sum_c post(c) P(l | c); each answer gives a new posterior
    whose best label is right with its own probability: the expectation over answers.
    """
    k = max(2, len(labels))
    hit, miss = (math.exp(x) for x in _log_likelihood(accuracy, k))
    # After the answer `said` the best label is `said` itself or the likeliest of the others: O(K), not O(K^2) (the
    # quality page's plan replays up to 2,000 items: 0.9 s on 50 labels the quadratic way)
    top = heapq.nlargest(2, post, key=post.__getitem__)
    first = post[top[0]] if top else 0.0
    second = post[top[1]] if len(top) > 1 else 0.0
    return sum(max(p * hit, (second if said == top[0] else first) * miss) for said, p in post.items())


@dataclass(frozen=True)
class PlanRow:
    done: int
    annotator: int
    reviewer: int  # in doubt with no further annotator to ask, or an unsure annotator's note; audits not included
    expected_accuracy: float | None  # adaptive: expected share of final labels right
    fixed_expected_accuracy: float | None  # today's routing on the same items
    audit: int = 0  # accepted on the vote, then drawn for audit while the budget allowed (`audit_affordable`)


def plan(
    items: Sequence[tuple[Sequence[Vote], ModelVote | None]],
    labels: Sequence[str],
    accuracies: Mapping[str, float],
    *,
    per_item: float,
    total_items: int,
    reviewer_accuracy: float = PRIOR_ACCURACY,
    annotator_accuracy: float = PRIOR_ACCURACY,
    annotators: int | None = None,
    audit: Sequence[bool] = (),
    review_all: bool = False,
    noted: Sequence[bool] = (),
    bar: float = 0.0,
    audits: bool = True,
) -> PlanRow:
    """What adaptive routing would do with these items' first votes, and how right it would be.

    The items are replayed in order against a fresh allowance. `annotators`: how many people may annotate
    (None: enough); an item's further annotator must be one who has not voted on it, so where none is left
    the replay asks a reviewer, as routing does. `audit[i]`: whether item i is drawn for audit (`audit_drawn`); an
    accepted item drawn goes to a reviewer while the budget allows (`audit_affordable`), as routing does, and is
    counted apart; under `review_all` every accepted item is audited, budget or not. `noted[i]`: an unsure annotator
    of item i wrote a note, which a reviewer answers whatever the vote says (counted as a reviewer).
    Expected accuracy: the posterior's best
    label's probability for an accepted item, and the expectation after one more vote for an escalated
    one (a further annotator's need for a fourth is not followed: a lower bound). The fixed routing's
    figure: agreement stands (its posterior), a disagreement takes the reviewer's word (their accuracy).
    """
    counts = {DONE: 0, ANNOTATOR: 0, REVIEWER: 0}
    audited = 0
    spent = 0
    expected: list[float] = []
    fixed: list[float] = []
    for routed, (votes, model) in enumerate(items, start=1):
        spent += len(votes)
        budget = Budget(
            per_item=per_item,
            routed=routed,
            spent=spent,
            total_items=max(total_items, len(items)),
            overlap=len(votes),
            bar=bar,
            audits=audits,
        )
        left = None if annotators is None else max(0, annotators - len(votes))
        d = decide(votes, labels, accuracies, budget=budget, model=model, annotators_left=left)
        drawn = routed <= len(audit) and audit[routed - 1] and audit_affordable(budget)
        if d.action == DONE and routed <= len(noted) and noted[routed - 1]:
            counts[REVIEWER] += 1
            spent += 1
            expected.append(expected_confidence_after(d.posterior, labels, reviewer_accuracy))
        elif d.action == DONE and (review_all or drawn):
            audited += 1
            spent += 1
            expected.append(expected_confidence_after(d.posterior, labels, reviewer_accuracy))
        elif d.action == DONE:
            counts[DONE] += 1
            expected.append(d.confidence)
        else:
            counts[d.action] += 1
            spent += 1
            accuracy = reviewer_accuracy if d.action == REVIEWER else annotator_accuracy
            expected.append(expected_confidence_after(d.posterior, labels, accuracy))
        agreed = len({v.label for v in votes}) == 1
        human = posterior(votes, labels, accuracies)
        fixed.append(human.get(votes[0].label, 0.0) if agreed else reviewer_accuracy)
    return PlanRow(
        done=counts[DONE],
        annotator=counts[ANNOTATOR],
        reviewer=counts[REVIEWER],
        expected_accuracy=sum(expected) / len(expected) if expected else None,
        fixed_expected_accuracy=sum(fixed) / len(fixed) if fixed else None,
        audit=audited,
    )


def audit_affordable(budget: Budget) -> bool:
    """Whether an item drawn for audit gets its reviewer: while the budget has a judgement to spare and pays for every
    item in doubt and the audits beside them (no doubt bar, `audits_fit`). Where it cannot, the items in doubt come
    first: a review there is worth more than a check of an agreement. As the bar lifts where spending lags the average
    (BAR_LIFTS), so do the audits: the spare judgements go to them rather than unspent."""
    spare = budget.spare()
    return spare >= 1 and ((budget.bar == 0 and budget.audits) or spare >= BAR_LIFTS)


def audit_drawn(item_id: int, rate: float) -> bool:
    """Whether an agreed item goes to audit: a pure function of its id, so routing (and its plan) is reproducible."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"labelloop-audit:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate
