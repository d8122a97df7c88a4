"""Correct final labels per human judgement: routing policies compared through the real services.

Each policy gets a fresh project holding the same items (annotation/crowd.py's `crowd_create`: the import
service, memberships). Simulated people then work it through the services a browser's requests call, in
this process: `claim_next` + `annotation_submit` (annotate/services.py, which routes each item once its
annotations are in: the adaptive policy measures every annotator as it goes) and `review_decide` for the
review tasks (review/services.py).

The crowd is bench/noise.py's: 6 annotators of accuracy 0.95, 0.90, 0.88, 0.85, 0.75, 0.60 on ordinary
items; 20 % of items are hard (lowest margin of an out-of-fold TF-IDF model trained on the true labels):
there everyone loses 0.3 of accuracy and errs toward the item's own confusable class (annotators err
together); elsewhere an error goes to a neighbouring class 70 % of the time. Each step a random annotator
with work left takes the next item the product hands them. The reviewer is as noisy as a good annotator
(accuracy 0.90, the same hard items). The model (adaptive and adaptive+audit only) is an out-of-fold TF-IDF logistic
regression trained on the *true* labels of the other folds, voting with its measured accuracy: a
stand-in for a trained run's outputs, better informed than a model trained on noisy finals would be
(`--model noisy`: trained on one simulated annotator's label per item instead, as a first run would be).

`--data vader` replaces the simulated crowd with a real one (bench/_data.py): 1,200 sentiment-lexicon tokens, each
rated by ten humans; five ratings make the token's reference label and every judgement a policy asks for, an
annotator's or the reviewer's, is the token's next unused rating of the other five (so the reviewer is as noisy as
an annotator, and nobody is better than the crowd's average rater). The stand-in model adds MiniLM embeddings to
its TF-IDF features there (single tokens share no words).

Policies:
- 1-annotator: overlap 1, the one label is final;
- 2+review: overlap 2, fixed routing (the default before migration 0013) without audit: a disagreement goes to
  the reviewer;
- majority-5: overlap 5, the plurality of the five labels (ties: a seeded coin), a plain script's answer;
- 2+third: overlap 2, and where the two disagree a plain script asks a further annotator (one who has not labelled
  the item, at random) until one label leads the others: the "third rater on disagreement" script issue 17
  measured the fixed routing losing to. No reviewer; the extra labels are asked outside the product, as such a
  script would (export, send the disagreements out again, take the plurality);
- adaptive: overlap 2, routing_policy "adaptive" with `--budget` (default 2.5), no audit;
- adaptive-no-model: the same without the model's vote (`--no-model-variant` skips it);
- adaptive+audit: adaptive as a new project gets it, the audit included (`audit_rate` at the model field's
  default, 0.1): an agreed item is sampled for a reviewer's audit while the budget has a judgement to spare.

`--scan` then runs the product's noise scan on each routed project as it stands (the RQ job's own calls:
`noise_scan_claim` + `noise_scan_execute`: MiniLM embeddings, out-of-fold model, CROWDLAB, the calibration
on the project's audits) and prints how many audits it calibrated on, the vote weight, the flags' precision,
recall and F1 against the dataset's labels; the reviewer then decides every flag's review task, and the
policy's row is printed again as "<policy> +flags" with the accuracy and judgements after those reviews.
`--scan-model encoder` makes it the scan that also fine-tunes the encoder on each fold (the card's *Sharper* choice).

Printed per policy: final-label accuracy against the dataset's labels with a 95 % bootstrap interval
(1,000 resamples of items), human judgements per item (annotations + reviewer decisions), and how the
items were settled.

    python bench/loop_lift.py                       # trec3 (3-class substitute), 1,200 items, seed 0
    python bench/loop_lift.py --quick               # 300 items
    python bench/loop_lift.py --data sms --items 1500 --seed 1
    python bench/loop_lift.py --data vader --seed 0     # a real crowd: ten human ratings per token
    python bench/loop_lift.py --policies 2+review adaptive adaptive+audit --scan
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BOOTSTRAP = 1000
REVIEWER_ACCURACY = 0.90
MODEL_VOTES: dict[int, object] = {}  # item id -> routing.ModelVote, read by `model_votes` (the settings hook)


def model_votes(project: object, item_ids: list[int]) -> dict[int, object]:
    """LABELLOOP_ROUTING_MODEL for the bench: the stand-in model's vote on these items."""
    return {i: MODEL_VOTES[i] for i in item_ids if i in MODEL_VOTES}


def setup_django(db_path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django
    from django.conf import settings

    django.setup()
    settings.LABELLOOP_ROUTING_MODEL = "loop_lift.model_votes"
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


REAL_CROWD: dict[str, list[str]] = {}  # --data vader: text -> its five spare human judgements
VADER_SPARE = 5


def load(name: str, n: int) -> tuple[list[str], list[str], list[str]]:
    """(texts, labels, classes in neighbour order): bench/noise.py's data sets, first n of a seeded shuffle.
    vader's labels are its five-rater reference; its spare judgements go to REAL_CROWD."""
    from _data import DATASETS, load_trec, load_vader
    from noise import ORDER, TREC3, trec3_rows

    spare: list[list[str]] = []
    if name == "trec3":
        texts, labels = load_trec()
        keep = trec3_rows(len(texts))
        texts, labels = [texts[i] for i in keep], [TREC3[labels[i]] for i in keep]
    elif name == "vader":
        texts, labels, spare = load_vader()
    else:
        texts, labels = DATASETS[name]()
    from annotation.text import content_hash

    seen: set[str] = set()
    keep = []
    for i in np.random.default_rng(4321).permutation(len(texts)).tolist():
        digest = content_hash(texts[i])
        if digest not in seen:  # the import skips exact duplicates: keep the first, as it would
            seen.add(digest)
            keep.append(i)
    keep = keep[:n]
    if spare:  # the kept row's own judgements (a text the lexicon has twice keeps its first row's, as the import does)
        REAL_CROWD.update((texts[i], spare[i]) for i in keep)
    classes = ORDER.get(name, sorted(set(labels)))
    return [texts[i] for i in keep], [labels[i] for i in keep], classes


def stand_in_features(name: str, texts: list[str]) -> object:
    """The stand-in model's features: TF-IDF words (bench/noise.py's), with MiniLM embeddings for vader, whose
    items are single tokens that no other item's words say anything about."""
    from _data import embedded

    from annotation.quality import noise

    X = embedded(name, texts) if name == "vader" else np.zeros((len(texts), 1))
    return noise.with_text_features(X, texts, chars=False)  # the stand-in model as measured (docs/benchmarks.md)


def clean_probs(name: str, texts: list[str], truth: np.ndarray) -> np.ndarray:
    """Out-of-fold logistic regression on the true labels: which items are hard, and the model's vote."""
    from annotation.quality import noise

    return noise.out_of_fold_probs(stand_in_features(name, texts), truth, seed=99)


def noisy_model_probs(
    name: str, texts: list[str], truth: np.ndarray, probs: np.ndarray, classes: list[str], seed: int
) -> np.ndarray:
    """The stand-in model as a first run would know it: out-of-fold, trained on one random annotator's label per
    item (the same crowd, its own random stream, so the people in the loop answer as with `--model true`; for
    vader one of the item's spare human judgements at random)."""
    from noise import Crowd

    from annotation.quality import noise

    if name == "vader":
        rng = np.random.default_rng(seed + 1000)
        code = {c: k for k, c in enumerate(classes)}
        single = np.asarray([code[REAL_CROWD[t][int(rng.integers(len(REAL_CROWD[t])))]] for t in texts])
    else:
        crowd = Crowd(truth, probs, classes, seed + 1000)
        single = np.asarray([crowd.says(crowd.pick(1)[0], i) for i in range(len(truth))])
    return noise.out_of_fold_probs(stand_in_features(name, texts), single, seed=99)


class People:
    """bench/noise.py's crowd plus a reviewer, answering through the item's text.

    With a real crowd (REAL_CROWD, --data vader) every judgement, annotator's or reviewer's, is the item's next
    unused spare human judgement, in an order shuffled per seed: who asks does not matter, since the raters are not
    identified across items. An item asked more often than it has spare judgements gets one of them again at
    random (`reused` counts those)."""

    def __init__(self, texts: list[str], truth: np.ndarray, probs: np.ndarray, classes: list[str], seed: int):
        from noise import Crowd

        self.crowd = Crowd(truth, probs, classes, seed)
        self.row = {t: i for i, t in enumerate(texts)}
        self.classes = classes
        self.real = bool(REAL_CROWD)
        self.rng = np.random.default_rng([seed, 31])
        self.queue = {t: [REAL_CROWD[t][k] for k in self.rng.permutation(len(REAL_CROWD[t]))] for t in texts} \
            if self.real else {}
        self.asked: Counter = Counter()
        self.reused = 0

    def real_says(self, text: str) -> str:
        said, k = self.queue[text], self.asked[text]
        self.asked[text] += 1
        if k < len(said):
            return said[k]
        self.reused += 1
        return said[int(self.rng.integers(len(said)))]

    def says(self, who: int, text: str) -> str:
        if self.real:
            return self.real_says(text)
        return self.classes[self.crowd.says(who, self.row[text])]

    def reviewer_says(self, text: str) -> str:
        if self.real:
            return self.real_says(text)
        i = self.row[text]
        accuracy = REVIEWER_ACCURACY - (0.30 if self.crowd.hard[i] else 0.0)
        if self.crowd.rng.random() < accuracy:
            return self.classes[int(self.crowd.truth[i])]
        if self.crowd.hard[i]:
            return self.classes[int(self.crowd.confusable[i])]
        from noise import NEIGHBOUR_SHARE, other_class

        neighbour = self.crowd.rng.random() < NEIGHBOUR_SHARE
        return self.classes[other_class(self.crowd.rng, self.classes, int(self.crowd.truth[i]), neighbour=neighbour)]


def make_project(
    name: str, texts: list[str], labels: list[str], overlap: int, policy: str, budget: float, tag: str, audit: float
):
    from django.contrib.auth import get_user_model
    from noise import ACCURACY

    from annotation.crowd import Dataset, crowd_create
    from annotation.models import Project, Role
    from annotation.projects.services import membership_set, project_routing_set
    from annotation.simulate import Persona

    annotators = [Persona(name=f"a{k}", error_rate=1 - acc) for k, acc in enumerate(ACCURACY)]
    crowd = crowd_create(
        base_url="http://in-process",
        dataset=Dataset(texts=texts, labels=labels),
        annotators=annotators,
        reviewers=[],
        overlap=overlap,
        name=f"{name} {tag}",
    )
    project = Project.objects.get(pk=crowd.project_id)
    project_routing_set(project=project, routing_policy=policy, routing_budget=budget, audit_rate=audit)
    reviewer, _ = get_user_model().objects.get_or_create(username="rev")
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=[p.name for p in annotators])}
    return project, [users[p.name] for p in annotators], reviewer


def annotate(project, users, people: People, rng: random.Random) -> int:
    """Random annotators with work left claim and submit until none has any; again while escalations re-open items."""
    from annotation.annotate.services import annotation_submit, claim_next
    from annotation.models import Label
    from annotation.projects.services import guideline_acknowledge_current, guideline_current

    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    version = guideline_current(project=project)
    if version is not None:
        for user in users:
            guideline_acknowledge_current(user=user, version=version)
    done = 0
    while True:
        working, before = list(range(len(users))), done
        while working:
            k = rng.choice(working)
            claimed = claim_next(annotator=users[k], project=project)
            if claimed.item is None:
                working.remove(k)
                continue
            value = {"label": people.says(k, claimed.item.text)}
            annotation_submit(annotator=users[k], item=claimed.item, value=value, label_names=labels)
            done += 1
        if done == before:
            return done


def review(project, reviewer, people: People) -> int:
    """The reviewer decides every open review task with their own (noisy) label."""
    from annotation.models import ReviewStatus, ReviewTask
    from annotation.review.services import review_decide

    n = 0
    while True:
        tasks = list(ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).select_related("item"))
        if not tasks:
            return n
        for task in tasks:
            value = {"label": people.reviewer_says(task.item.text)}
            review_decide(reviewer=reviewer, task=task, value=value, reason="bench reviewer")
            n += 1


def finals(project, rng: random.Random, *, majority: bool) -> tuple[dict[str, str], int, Counter]:
    """({external id: final label}, human judgements, how items were settled)."""
    from annotation.models import Annotation, AnnotationStatus, Decision, DecisionSource
    from annotation.review.selectors import latest_decisions

    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    reviews = Decision.objects.filter(item__project=project, source=DecisionSource.REVIEWER).count()
    judgements = annotations.count() + reviews
    settled: Counter = Counter()
    out: dict[str, str] = {}
    if majority:
        by_item: dict[str, list[str]] = {}
        for ext, value in annotations.values_list("item__external_id", "value"):
            by_item.setdefault(ext, []).append(value["label"])
        for ext, said in by_item.items():
            counts = Counter(said).most_common()
            top = [label for label, c in counts if c == counts[0][1]]
            out[ext] = rng.choice(sorted(top))
            settled["plurality" if len(top) == 1 else "tie: coin"] += 1
        return out, judgements, settled
    for ext, value, source in latest_decisions(project=project).values_list("item__external_id", "value", "source"):
        out[ext] = value["label"]
        settled[source] += 1
    return out, judgements, settled


def third_on_disagreement(project, people: People, rng: random.Random) -> tuple[dict[str, str], int, Counter]:
    """2+third's finals: the product's two labels per item; on disagreement further annotators (not yet on the item,
    drawn at random) are asked until one label leads the others (all six asked and still tied: a seeded coin)."""
    from noise import ACCURACY

    from annotation.models import Annotation, AnnotationStatus

    said: dict[str, list[tuple[int, str]]] = {}
    texts: dict[str, str] = {}
    rows = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).order_by("pk")
    for ext, text, who, value in rows.values_list("item__external_id", "item__text", "annotator__username", "value"):
        said.setdefault(ext, []).append((int(who[1:]), value["label"]))
        texts[ext] = text
    judgements = sum(len(v) for v in said.values())
    settled: Counter = Counter()
    out: dict[str, str] = {}
    for ext in sorted(said, key=int):
        votes = said[ext]
        asked = 0
        while True:
            counts = Counter(label for _, label in votes).most_common()
            if len(counts) == 1 or counts[0][1] > counts[1][1]:
                out[ext] = counts[0][0]
                break
            left = sorted(set(range(len(ACCURACY))) - {who for who, _ in votes})
            if not left:
                out[ext] = rng.choice(sorted(label for label, c in counts if c == counts[0][1]))
                settled["tie: coin"] += 1
                break
            who = rng.choice(left)
            votes.append((who, people.says(who, texts[ext])))
            asked += 1
        judgements += asked
        settled["agreement" if not asked else f"{len(votes)} labels"] += 1
    return out, judgements, settled


def bootstrap(right: np.ndarray, seed: int) -> tuple[float, float, float]:
    weights = np.random.default_rng(seed).multinomial(len(right), np.full(len(right), 1 / len(right)), size=BOOTSTRAP)
    samples = weights @ right / len(right)
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(right.mean()), float(low), float(high)


def run_policy(tag: str, args, texts, labels, classes, probs, truth, model_probs) -> tuple:
    from annotation.models import Item, Project
    from annotation.review import routing

    overlap, policy = {
        "1-annotator": (1, "fixed"), "2+review": (2, "fixed"), "majority-5": (5, "fixed"), "2+third": (2, "fixed")
    }.get(tag, (2, "adaptive"))
    audit = Project._meta.get_field("audit_rate").default if tag == "adaptive+audit" else 0.0
    start = time.perf_counter()
    project, users, reviewer = make_project(args.data, texts, labels, overlap, policy, args.budget, tag, audit)
    people = People(texts, truth, probs, classes, args.seed)
    rng = random.Random(args.seed)
    MODEL_VOTES.clear()
    if tag in ("adaptive", "adaptive+audit"):
        accuracy = float((model_probs.argmax(axis=1) == truth).mean())
        ids = dict(Item.objects.filter(project=project).values_list("external_id", "pk"))
        for row in range(len(texts)):
            label = classes[int(model_probs[row].argmax())]
            MODEL_VOTES[ids[str(row)]] = routing.ModelVote(label=label, accuracy=accuracy)
    annotate(project, users, people, rng)
    if tag == "2+third":
        final, judgements, settled = third_on_disagreement(project, people, rng)
    else:
        if tag != "majority-5":  # a plain script takes the plurality: nobody reviews
            review(project, reviewer, people)
        final, judgements, settled = finals(project, rng, majority=tag == "majority-5")
    gold = {str(i): label for i, label in enumerate(labels)}
    right = right_of(final, gold)
    RIGHT[tag] = right
    PROJECTS[tag] = (project, reviewer, people, rng)
    return tag, bootstrap(right, args.seed), judgements / len(gold), len(final), settled, time.perf_counter() - start


PROJECTS: dict[str, tuple] = {}  # policy -> (project, reviewer, people, rng), for --scan


def print_reused(tag: str) -> None:
    """With a real crowd: how many judgements so far repeated one of an item's spare human judgements."""
    people = PROJECTS[tag.removesuffix(" +flags")][2]
    if people.reused:
        print(f"  {tag}: {people.reused} judgements reused a spare human judgement (items asked more than "
              f"{VADER_SPARE} times)", flush=True)


def right_of(final: dict[str, str], gold: dict[str, str]) -> np.ndarray:
    """1.0 per item whose final label is the dataset's (in `gold` order; an item without a final label is wrong)."""
    return np.asarray([final.get(ext) == label for ext, label in gold.items()], dtype=float)


def print_row(tag: str, accuracy: tuple[float, float, float], per_item: float, seconds: float | None, settled) -> None:
    acc, low, high = accuracy
    how = ", ".join(f"{k} {v}" for k, v in settled.most_common())
    took = f"{seconds:6.0f}" if seconds is not None else " " * 6
    print(f"{tag:18} {acc:8.3f} [{low:.3f}, {high:.3f}] {per_item:15.2f} {took}  {how}", flush=True)


def ambiguity_note(ambiguity: dict | None) -> str:
    """How the scan's count weighed the ambiguity reading (the summary's `ambiguity`), for the scan's line."""
    if not ambiguity:
        return ""
    counted = ambiguity["ambiguity_count"]
    return (
        f"ambiguity weight {ambiguity['weight']} (model {ambiguity['model_count']:.0f}, ambiguity "
        f"{'not drawn' if counted is None else f'{counted:.0f}'}); "
    )


def scan_and_review(tag: str, labels: list[str], seed: int, model: str = "linear") -> None:
    """The product's noise scan on the policy's project, scored against the dataset's labels; then the reviewer
    works the flags' review tasks and the policy's accuracy and judgements are printed again."""
    from noise import bootstrap as prf_bootstrap

    from annotation.models import Item, NoiseScan, Project
    from annotation.quality.services import noise_scan_claim, noise_scan_execute
    from annotation.review.selectors import latest_decisions

    project, reviewer, people, rng = PROJECTS[tag]
    gold = {str(i): label for i, label in enumerate(labels)}
    final, *_ = finals(project, rng, majority=False)  # before the scan: a flagged item leaves the decided ones
    sources = dict(latest_decisions(project=project).values_list("item__external_id", "source"))
    start = time.perf_counter()
    queued = NoiseScan.objects.create(project=project, created_by=reviewer, params={"seed": seed, "model": model})
    scan = noise_scan_claim(scan_id=queued.pk)
    summary = noise_scan_execute(scan=scan)
    externals = dict(Item.objects.filter(project=project).values_list("pk", "external_id"))
    flagged_ids = {externals[i] for i in scan.flags.values_list("item_id", flat=True)}
    order = sorted(gold)
    wrong = np.asarray([final.get(ext) != gold[ext] for ext in order])
    flagged = np.asarray([ext in flagged_ids for ext in order])
    m = prf_bootstrap(flagged, wrong, seed)
    cells = "  ".join(f"{name} {p:.3f} [{lo:.2f}, {hi:.2f}]" for name, (p, lo, hi) in m.items())
    calibration = summary.get("calibration") or {}
    weight = f"{calibration.get('vote_weight')} ({'calibrated' if calibration.get('calibrated') else 'default'})"
    by_source = Counter()
    for k, ext in enumerate(order):
        by_source[(sources.get(ext), "wrong")] += int(wrong[k])
        by_source[(sources.get(ext), "flagged")] += int(flagged[k])
        by_source[(sources.get(ext), "hits")] += int(wrong[k] and flagged[k])
    print(
        f"  scan of {tag}: {int(wrong.sum())} wrong finals, {int(flagged.sum())} flagged; {cells}; "
        f"{calibration.get('audited', 0)} audits ({calibration.get('overturned', 0)} overturned), "
        f"vote weight {weight}; {ambiguity_note(summary.get('ambiguity'))}"
        f"the page's expected precision {summary.get('expected_precision')}; model {model}; "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    for source in sorted({src for src, _ in by_source}, key=str):
        wrong_n, flagged_n, hits = (by_source[(source, what)] for what in ("wrong", "flagged", "hits"))
        print(f"    settled by {source}: {wrong_n} wrong, {flagged_n} flagged, {hits} of the flags wrong", flush=True)
    review(Project.objects.get(pk=project.pk), reviewer, people)
    final, judgements, settled = finals(project, rng, majority=False)
    right = right_of(final, gold)
    print_row(tag + " +flags", bootstrap(right, seed), judgements / len(gold), None, settled)
    RIGHT[tag + " +flags"] = right


RIGHT: dict[str, np.ndarray] = {}  # policy -> per item, 1.0 where its final label is the dataset's


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float, float]:
    """Accuracy of a minus b on the same items, with a 95 % bootstrap interval (items resampled together)."""
    return bootstrap(a - b, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        choices=["trec3", "trec", "sms", "vader"],
        default="trec3",
        help="vader: a real crowd (ten human sentiment ratings per token; bench/_data.py), no simulated annotator",
    )
    parser.add_argument("--items", type=int, default=1200)
    parser.add_argument("--quick", action="store_true", help="300 items")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=2.5)
    parser.add_argument(
        "--confident", type=float, default=None, help="override routing.CONFIDENT (exploring the threshold)"
    )
    parser.add_argument("--no-model-variant", action="store_true", help="skip adaptive-no-model")
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=["1-annotator", "2+review", "majority-5", "2+third", "adaptive", "adaptive-no-model", "adaptive+audit"],
        default=["1-annotator", "2+review", "majority-5", "2+third", "adaptive", "adaptive-no-model"],
    )
    parser.add_argument(
        "--model",
        choices=["true", "noisy"],
        default="true",
        help="what the adaptive policies' stand-in model learnt from: the true labels of the other folds (default), "
        "or one simulated annotator's label per item, as a first run trained on single labels would",
    )
    parser.add_argument(
        "--count",
        choices=["audits", "model", "ambiguity"],
        default="audits",
        help="how --scan counts where items have several votes (noise.COUNT): audits, what ships (the project's "
        "audits weigh the model's count against the ambiguity count); model, the model's count alone (before "
        "2026-12-06); ambiguity, the ambiguity count alone (noise.ambiguity_doubt)",
    )
    parser.add_argument(
        "--scan-model",
        choices=["linear", "encoder"],
        default="linear",
        help="the --scan's model (NoiseScan.params['model']): linear, the default, or encoder (the shipped MiniLM "
        "fine-tuned on each fold beside it: 4-12 minutes per thousand words or questions on two cores)",
    )
    parser.add_argument("--db", help="keep the projects in this SQLite file (a new one) to look at afterwards")
    parser.add_argument(
        "--scan", action="store_true", help="then run the noise scan on each routed project and review its flags"
    )
    args = parser.parse_args()
    if args.db and Path(args.db).exists():
        parser.error(f"--db {args.db} exists: name a new file (its projects would mix with this run's)")
    sys.modules["loop_lift"] = sys.modules[__name__]  # the settings hooks import this module by name
    if args.confident is not None:
        from annotation.review import routing

        routing.CONFIDENT = args.confident
    if args.count != "audits":
        from annotation.quality import noise as noise_scan

        noise_scan.COUNT = args.count
    n = 300 if args.quick else args.items
    policies = [p for p in args.policies if not (args.no_model_variant and p == "adaptive-no-model")]
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(args.db or str(Path(tmp) / "bench.sqlite3"))
        print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
        texts, labels, classes = load(args.data, n)
        code = {c: k for k, c in enumerate(classes)}
        truth = np.asarray([code[label] for label in labels])
        probs = clean_probs(args.data, texts, truth)
        model_probs = (
            probs if args.model == "true" else noisy_model_probs(args.data, texts, truth, probs, classes, args.seed)
        )
        model_acc = float((model_probs.argmax(axis=1) == truth).mean())
        print(f"{args.data}: {len(texts)} items, classes {classes}, seed {args.seed}, budget {args.budget}, "
              f"stand-in model ({args.model} labels) accuracy {model_acc:.3f}", flush=True)
        print(f"{'policy':18} {'accuracy [95% CI]':>24} {'judgements/item':>15} {'s':>6}  settled by", flush=True)
        for tag in policies:
            tag, (acc, low, high), per_item, _, settled, seconds = run_policy(
                tag, args, texts, labels, classes, probs, truth, model_probs
            )
            print_row(tag, (acc, low, high), per_item, seconds, settled)
            print_reused(tag)
            if args.scan and tag not in ("1-annotator", "majority-5", "2+third"):
                scan_and_review(tag, labels, args.seed, args.scan_model)
                print_reused(tag + " +flags")
        for baseline in ("majority-5", "2+third"):
            if baseline not in RIGHT:
                continue
            for tag in [t for t in RIGHT if t not in ("majority-5", "2+third", "1-annotator")]:
                diff, low, high = paired_difference(RIGHT[tag], RIGHT[baseline], args.seed)
                print(f"{tag} - {baseline} (same items): {diff:+.3f} [{low:+.3f}, {high:+.3f}]")
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
