"""Routing, append-only decisions, send-back and undo: services/reviews.py through the real submit path."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.annotate import services as ann_svc
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Decision,
    DecisionSource,
    Draft,
    Item,
    ItemStatus,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
)
from annotation.projects.services import membership_set
from annotation.review import routing
from annotation.review import services as reviews
from core.errors import ServiceError
from tests.fixtures.people import FIXED, acknowledge_guidelines, fixed_routing, make_user
from tests.fixtures.reviews import annotate_pair, submit

LABELS = ["positive", "negative", "neutral"]


@pytest.fixture
def quiet(project, annotator, annotator2) -> Project:
    """The sentiment project with no audit sampling, its annotators past the guidelines."""
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    return project


def open_task(item: Item) -> ReviewTask:
    return ReviewTask.objects.select_related("item__project").get(item=item, status=ReviewStatus.OPEN)


def test_agreement_is_approved_with_an_agreement_decision(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    assert item.status == ItemStatus.APPROVED
    decision = Decision.objects.get(item=item)
    assert decision.source == DecisionSource.AGREEMENT and decision.reviewer is None
    assert decision.value == {"label": "positive"}
    assert decision.guideline_version.version == 1
    assert not ReviewTask.objects.exists()


def test_disagreement_goes_to_review_without_a_decision(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    assert item.status == ItemStatus.IN_REVIEW
    task = open_task(item)
    assert task.reasons == [ReviewReason.DISAGREEMENT]
    assert not Decision.objects.filter(item=item).exists()


@fixed_routing
def test_unsure_goes_to_review_even_when_the_labels_agree(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "neutral", "neutral", unsure=True)
    assert item.status == ItemStatus.IN_REVIEW
    assert open_task(item).reasons == [ReviewReason.UNSURE]


def test_an_unsure_note_reaches_a_reviewer_under_adaptive_routing_too(quiet, annotator, annotator2):
    """The form says the reviewer sees the note; adaptive routing approved a tester's agreed item at once ("97 %
    likely right") and the note reached nobody. Unsure without a note still only counts half."""
    Project.objects.filter(pk=quiet.pk).update(routing_policy="adaptive", routing_budget=2.5, audit_rate=0)
    quiet.refresh_from_db()
    item = annotate_pair(quiet, annotator, annotator2, "neutral", "neutral", unsure=True, note="sarcasm?")
    assert item.status == ItemStatus.IN_REVIEW and open_task(item).reasons == [ReviewReason.UNSURE]
    from annotation.review.selectors import ADAPTIVE_NOTE, review_panel

    assert open_task(item).routing["why"] == "note"  # recorded, so the panel explains it whatever the reasons
    panel = review_panel(task=open_task(item), project=quiet)
    assert panel.routing_note.startswith(ADAPTIVE_NOTE)  # the note is why, not a vote in doubt (a tester was told so)
    quiet_item = annotate_pair(quiet, annotator, annotator2, "neutral", "neutral", unsure=True)
    assert quiet_item.status == ItemStatus.APPROVED  # no note: the vote is weighed, half for the unsure one


def test_the_reviewers_answer_to_a_note_takes_the_askers_place_in_the_vote(quiet, annotator, annotator2, reviewer):
    """A tester's reviewer answered an unsure annotator's "is this promo?" with spam; the asker's own half vote and the
    other annotator's kept ham at 59 %. The one who asked defers: their answer leaves the vote once a reviewer's is in,
    and the reviewer then stands against the other annotator alone."""
    Project.objects.filter(pk=quiet.pk).update(routing_policy="adaptive", routing_budget=2.5, audit_rate=0)
    quiet.refresh_from_db()
    item = annotate_pair(quiet, annotator, annotator2, "neutral", "neutral", unsure=True, note="is this sarcasm?")
    decision = reviews.review_decide(reviewer=reviewer, task=open_task(item), value={"label": "negative"})
    assert decision.value == {"label": "negative"} and decision.source == DecisionSource.REVIEWER
    # the reviewer (0.85 unmeasured) against the other annotator (0.8) alone: no weighted decision overrode them
    assert list(item.decisions.values_list("source", flat=True)) == [DecisionSource.REVIEWER]
    from annotation.review.selectors import NOTE_IN_VOTE, review_panel

    disputed = annotate_pair(quiet, annotator, annotator2, "neutral", "negative", unsure=True, note="which one?")
    panel = review_panel(task=open_task(disputed), project=quiet, viewer=reviewer)  # opened as a disagreement
    assert panel.routing_note.endswith(NOTE_IN_VOTE)  # the reviewer is told the asker's label leaves the vote


def test_questions_alone_leave_earlier_reviewers_in_the_vote(quiet, annotator, annotator2, reviewer, owner):
    """A review's second reviewer found: with every annotation a noted question, the reviewer deciding last had the
    final word over two earlier reviewers who said otherwise (the panel listed them as in the vote)."""
    Project.objects.filter(pk=quiet.pk).update(routing_policy="adaptive", routing_budget=2.5, audit_rate=0)
    quiet.refresh_from_db()
    a = submit(annotator, quiet, "neutral", unsure=True, note="sarcasm?")
    submit(annotator2, quiet, "neutral", unsure=True, note="or not?")
    item = Item.objects.get(pk=a.item_id)
    reviews.review_decide(reviewer=reviewer, task=open_task(item), value={"label": "negative"})  # the only word: final
    assert item.decisions.latest("id").value == {"label": "negative"}
    second = make_user("reviewer2")
    membership_set(project=quiet, user=second, role="reviewer")
    reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "negative"})
    reviews.review_decide(reviewer=second, task=open_task(item), value={"label": "negative"})
    reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "positive"})
    last = reviews.review_decide(reviewer=owner, task=open_task(item), value={"label": "positive"})
    assert last.source == DecisionSource.WEIGHTED and last.value == {"label": "negative"}  # two reviewers to one


def test_disagreement_and_unsure_are_both_reasons_disagreement_first(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "neutral", "negative", unsure=True)
    assert open_task(item).reasons == [ReviewReason.DISAGREEMENT, ReviewReason.UNSURE]


def test_review_all_sends_agreed_items_to_audit(quiet, annotator, annotator2):
    Project.objects.filter(pk=quiet.pk).update(review_all=True)
    quiet.refresh_from_db()
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    assert item.status == ItemStatus.IN_REVIEW
    assert open_task(item).reasons == [ReviewReason.AUDIT]


def test_audit_sample_is_deterministic_and_close_to_the_rate():
    picked = [routing.audit_drawn(i, 0.1) for i in range(20_000)]
    assert picked == [routing.audit_drawn(i, 0.1) for i in range(20_000)]
    assert 0.09 < sum(picked) / len(picked) < 0.11
    assert not any(routing.audit_drawn(i, 0.0) for i in range(1000))
    assert all(routing.audit_drawn(i, 1.0) for i in range(1000))


def test_audit_rate_routes_exactly_the_sampled_item(quiet, annotator, annotator2):
    Project.objects.filter(pk=quiet.pk).update(audit_rate=0.5)
    quiet.refresh_from_db()
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    expected = ItemStatus.IN_REVIEW if routing.audit_drawn(item.pk, 0.5) else ItemStatus.APPROVED
    assert item.status == expected


def test_accepting_one_annotation_approves_the_item(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    task = open_task(item)
    chosen = Annotation.objects.get(item=item, annotator=annotator2)
    decision = reviews.review_accept(reviewer=reviewer, task=task, annotation_id=chosen.pk, reason="sarcasm")
    assert decision.value == {"label": "negative"} and decision.source == DecisionSource.REVIEWER
    assert decision.reviewer == reviewer and decision.review_task == task and decision.reason == "sarcasm"
    assert decision.guideline_version.version == 1
    item.refresh_from_db()
    task.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert task.status == ReviewStatus.DONE and task.resolved_by == reviewer and task.resolved_at is not None


def test_accepting_an_annotation_of_another_item_is_refused(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    other = annotate_pair(quiet, annotator, annotator2, "neutral", "neutral")
    stranger = Annotation.objects.filter(item=other).first()
    with pytest.raises(ServiceError) as exc:
        reviews.review_accept(reviewer=reviewer, task=open_task(item), annotation_id=stranger.pk)
    assert exc.value.message == reviews.NOT_AN_ANNOTATION
    assert not Decision.objects.filter(item=item).exists()
    with pytest.raises(ServiceError) as exc:
        reviews.review_act(reviewer=reviewer, task=open_task(item), action="accept")
    assert exc.value.message == reviews.ACCEPT_WHICH


def test_accept_on_an_item_nobody_annotated_says_to_fix_with_the_label_to_keep(quiet, reviewer):
    """A noise flag on a label imported as final: 'not one of the current annotations' named a field never sent."""
    item = Item.objects.filter(project=quiet).first()
    Decision.objects.create(item=item, value={"label": "neutral"}, source=DecisionSource.IMPORT)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "positive"})
    with pytest.raises(ServiceError) as exc:
        reviews.review_act(reviewer=reviewer, task=task, action="accept")
    assert exc.value.message == reviews.NOTHING_TO_ACCEPT


def test_fix_with_an_unknown_label_names_the_field_and_writes_nothing(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    task = open_task(item)
    with pytest.raises(ServiceError) as exc:
        reviews.review_decide(reviewer=reviewer, task=task, value={"label": "furious"})
    assert exc.value.field == "label" and "furious" in exc.value.message
    assert not Decision.objects.filter(item=item).exists()
    assert open_task(item).pk == task.pk


def test_a_second_reviewer_on_the_same_task_loses(quiet, annotator, annotator2, reviewer, owner):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    stale = open_task(item)
    also_stale = open_task(item)
    reviews.review_decide(reviewer=reviewer, task=stale, value={"label": "neutral"})
    with pytest.raises(reviews.TaskClosed) as exc:
        reviews.review_decide(reviewer=owner, task=also_stale, value={"label": "positive"})
    assert exc.value.message == reviews.TASK_CLOSED.format(how=f"decided by {reviewer.username}")
    with pytest.raises(reviews.TaskClosed) as exc:
        reviews.review_decide(reviewer=reviewer, task=also_stale, value={"label": "positive"})
    assert exc.value.message == reviews.TASK_CLOSED.format(how="decided by you")
    assert list(Decision.objects.filter(item=item).values_list("value", flat=True)) == [{"label": "neutral"}]


@fixed_routing  # the reviewer's word is final; under adaptive routing it is weighed (test_routing.py)
def test_a_new_decision_supersedes_and_both_stay(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], noise_score=0.1,
                                    suggested_value={"label": "negative"})
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    history = list(Decision.objects.filter(item=item).order_by("created_at", "id"))
    assert [d.source for d in history] == [DecisionSource.AGREEMENT, DecisionSource.REVIEWER]
    assert history[-1].value == {"label": "negative"}


def test_decisions_cannot_be_updated_in_the_database(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.filter(item=item).update(value={"label": "negative"})
    assert Decision.objects.get(item=item).value == {"label": "positive"}


def test_reasons_merge_into_the_one_open_task(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    merged = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], noise_score=0.2,
                                      suggested_value={"label": "neutral"})
    assert ReviewTask.objects.filter(item=item).count() == 1
    assert merged.reasons == [ReviewReason.DISAGREEMENT, ReviewReason.NOISE]
    assert open_task(item).suggested_value == {"label": "neutral"}


@fixed_routing  # the disagreement goes to review although a third annotator could take it
def test_send_back_reopens_the_item_to_the_same_annotators(quiet, annotator, annotator2, reviewer):
    third = make_user("annotator3")
    membership_set(project=quiet, user=third, role="annotator")
    acknowledge_guidelines(quiet, third)
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    task = open_task(item)
    reviews.review_send_back(reviewer=reviewer, task=task, comment="Read rule 3 on sarcasm.")
    task.refresh_from_db()
    item.refresh_from_db()
    assert task.status == ReviewStatus.SENT_BACK and task.comment == "Read rule 3 on sarcasm."
    assert item.status == ItemStatus.IN_ANNOTATION and item.submitted_count == 0 and item.slots_taken == 2
    assert not item.is_open
    assert set(Annotation.objects.filter(item=item).values_list("status", flat=True)) == {AnnotationStatus.RETRACTED}
    assert Draft.objects.get(item=item, annotator=annotator).value == {"label": "positive"}
    assert set(Claim.objects.filter(item=item).values_list("status", flat=True)) == {ClaimStatus.ACTIVE}

    # A third annotator is never offered it: its slots belong to the first round's annotators.
    third_item = ann_svc.claim_next(annotator=third, project=quiet).item
    assert third_item.pk != item.pk
    # The original annotators get it back first and label it again; this round agrees.
    again = annotate_pair(quiet, annotator, annotator2, "negative", "negative")
    assert again.pk == item.pk and again.status == ItemStatus.APPROVED
    assert Annotation.objects.filter(item=item).count() == 4
    assert Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED).count() == 2
    assert Decision.objects.get(item=item).value == {"label": "negative"}


def test_send_back_needs_a_comment(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    with pytest.raises(ServiceError) as exc:
        reviews.review_send_back(reviewer=reviewer, task=open_task(item), comment="  ")
    assert exc.value.message == reviews.COMMENT_REQUIRED and exc.value.field == "comment"
    assert Item.objects.get(pk=item.pk).status == ItemStatus.IN_REVIEW


def test_undo_in_review_withdraws_the_task(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    claim = ann_svc.annotation_undo(annotator=annotator2, project=quiet)
    assert claim.item_id == item.pk
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ANNOTATION and item.submitted_count == 1
    assert ReviewTask.objects.get(item=item).status == ReviewStatus.WITHDRAWN
    # Re-submitting routes the item afresh.
    ann_svc.annotation_submit(annotator=annotator2, item=item, value={"label": "positive"}, label_names=LABELS)
    assert Item.objects.get(pk=item.pk).status == ItemStatus.APPROVED


def test_undo_after_a_decision_is_refused(quiet, annotator, annotator2, reviewer):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    reviews.review_decide(reviewer=reviewer, task=open_task(item), value={"label": "positive"})
    with pytest.raises(ServiceError) as exc:
        ann_svc.annotation_undo(annotator=annotator2, project=quiet)
    assert exc.value.message == ann_svc.UNDO_TOO_LATE


def test_undo_of_a_reviewed_noise_suspect_is_refused(quiet, annotator, annotator2):
    item = annotate_pair(quiet, annotator, annotator2, "positive", "positive")
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
    reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE])
    with pytest.raises(ServiceError):
        ann_svc.annotation_undo(annotator=annotator2, project=quiet)
    assert open_task(item).status == ReviewStatus.OPEN


def test_a_decided_task_cannot_be_withdrawn(quiet, annotator, annotator2, reviewer):
    """The race between an undo and a decision: whoever closes the open task first wins."""
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    since = Annotation.objects.get(item=item, annotator=annotator2).created_at
    reviews.review_decide(reviewer=reviewer, task=open_task(item), value={"label": "positive"})
    assert reviews.review_withdraw(item=item, since=since, now=since) is False


@pytest.mark.parametrize("policy", ["fixed", "adaptive"])
def test_the_review_queue_page_runs_a_fixed_number_of_queries(quiet, annotator, annotator2, reviewer, client, policy):
    """The hot page for reviewers: its query count does not grow with the queue, whatever the routing."""
    # A budget wide enough that adaptive routing sends every 1-1 split to the reviewer (no third annotator here).
    Project.objects.filter(pk=quiet.pk).update(routing_policy=policy, routing_budget=20.0)
    quiet.refresh_from_db()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from tests.fixtures.people import add_items

    client.force_login(reviewer)
    url = reverse("review-queue", args=[quiet.pk])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    few = queries()
    add_items(quiet, [f"another disputed text {i}" for i in range(8)])
    for _ in range(8):
        annotate_pair(quiet, annotator, annotator2, "neutral", "negative")
    assert ReviewTask.objects.filter(status=ReviewStatus.OPEN).count() == 9
    assert queries() == few <= 10


def test_the_api_lists_tasks_with_every_label_and_accepts_one(quiet, annotator, annotator2, reviewer):
    from django.urls import reverse
    from rest_framework.test import APIClient

    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    api = APIClient()
    api.force_authenticate(reviewer)
    (task,) = api.get(reverse("api-review-task-list", args=[quiet.pk]), {"status": "open"}).json()["results"]
    assert task["item_id"] == item.pk and task["reasons"] == ["disagreement"]
    assert task["routing"] == {"policy": quiet.routing_in_force, "budget": quiet.routing_budget, "review_all": False}
    by_who = {a["annotator"]: a for a in task["annotations"]}
    assert by_who["annotator1"]["value"] == {"label": "positive"} and by_who["annotator2"]["guideline_version"] == 1
    url = reverse("api-review-task-decide", args=[quiet.pk, task["id"]])
    missing = api.post(url, {"action": "fix"}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "value"
    no_annotation = api.post(url, {"action": "accept"}, format="json")  # the body's field, not the page's form's
    assert no_annotation.status_code == 400 and no_annotation.json()["field"] == "annotation_id"
    done = api.post(url, {"action": "accept", "annotation_id": by_who["annotator2"]["id"]}, format="json")
    assert done.status_code == 200 and done.json()["value"] == {"label": "negative"}
    assert done.json()["final_source"] == "reviewer"
    again = api.post(url, {"action": "send_back", "comment": "late"}, format="json")
    assert again.status_code == 409 and again.json()["detail"] == reviews.TASK_CLOSED.format(how="decided by you")
    history = api.get(reverse("api-item-history", args=[quiet.pk, item.pk])).json()["results"]
    assert [e["kind"] for e in history].count("decision") == 1


def test_the_annotator_reads_the_send_back_note_and_only_their_own_label(
    quiet, annotator, annotator2, reviewer, client
):
    from django.urls import reverse

    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    reviews.review_send_back(reviewer=reviewer, task=open_task(item), comment="Is the writer being sarcastic?")
    client.force_login(annotator)
    html = client.get(reverse("annotate", args=[quiet.pk])).content.decode()
    assert f'data-item="{item.pk}"' in html
    assert "Is the writer being sarcastic?" in html
    checked = re.findall(r'name="label" value="(\w+)"[^>]*? checked', html)
    assert checked == ["positive"]  # their own earlier label, back as their draft
    assert "annotator2" not in html
    # Once they submit again, the note is gone from their next item.
    ann_svc.annotation_submit(annotator=annotator, item=item, value={"label": "negative"}, label_names=LABELS)
    html = client.get(reverse("annotate", args=[quiet.pk])).content.decode()
    assert "Is the writer being sarcastic?" not in html


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_and_an_undo_close_a_task_exactly_once(db):
    """Four reviewers decide and the annotator undoes, all at once: one of them wins, nothing is half-done."""
    import threading
    import time

    from django.db import OperationalError, connections

    from annotation.projects.services import project_create
    from tests.fixtures.people import add_items

    owner = make_user("race-owner")
    # Fixed routing: the one item's disagreement must reach review (adaptive routing's budget for a one-item
    # project has no judgement to spare, so the weighted vote would stand).
    project = project_create(owner=owner, name="Race", labels=LABELS, guidelines="Pick one.", routing_policy=FIXED)
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    first, second = make_user("race-a"), make_user("race-b")
    reviewers = [make_user(f"race-r{i}") for i in range(4)]
    for user in (first, second):
        membership_set(project=project, user=user, role="annotator")
    for user in reviewers:
        membership_set(project=project, user=user, role="reviewer")
    add_items(project, ["a contested sentence"])
    acknowledge_guidelines(project, first, second)
    item = annotate_pair(project, first, second, "positive", "negative")
    task_id = ReviewTask.objects.get(item=item).pk
    outcomes: list[str] = []
    barrier = threading.Barrier(5)

    def attempt(fn) -> None:
        try:
            barrier.wait()
            for _ in range(2000):
                try:
                    fn()
                    outcomes.append("won")
                    return
                except OperationalError as exc:  # SQLite's shared in-memory test database: "locked", retry
                    if "locked" not in str(exc):
                        raise
                    time.sleep(0.005)
            outcomes.append("gave up")
        except ServiceError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    def decide(reviewer):
        task = ReviewTask.objects.select_related("item__project").get(pk=task_id)
        reviews.review_decide(reviewer=reviewer, task=task, value={"label": "neutral"})

    threads = [threading.Thread(target=attempt, args=(lambda r=r: decide(r),)) for r in reviewers]
    threads.append(
        threading.Thread(target=attempt, args=(lambda: ann_svc.annotation_undo(annotator=second, project=project),))
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 4 + ["won"]
    task = ReviewTask.objects.get(pk=task_id)
    decisions = Decision.objects.filter(item=item).count()
    if task.status == ReviewStatus.DONE:
        assert decisions == 1 and Item.objects.get(pk=item.pk).status == ItemStatus.APPROVED
        assert Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED).count() == 2
    else:
        assert task.status == ReviewStatus.WITHDRAWN and decisions == 0
        assert Item.objects.get(pk=item.pk).status == ItemStatus.IN_ANNOTATION


# --- Values proposed from outside review (rounds): proposals_apply -----------------------------------


def _proposal(item, value, **fields) -> reviews.ValueProposal:
    return reviews.ValueProposal(
        item_id=item.pk, value=value, reason=fields.pop("reason", "a rater's correction"), **fields
    )


def test_a_proposed_decision_records_its_provenance_and_approves_the_item(project, reviewer):
    item = project.items.order_by("pk").first()
    [outcome] = reviews.proposals_apply(
        project=project,
        proposals=[
            _proposal(item, {"label": "negative"}, decide=True, source=DecisionSource.MODEL_CORRECTED,
                      reviewer_id=reviewer.pk)
        ],
    )
    decision = Decision.objects.get(pk=outcome.decision_id)
    assert outcome.action == "decide" and decision.item_id == item.pk
    assert (decision.source, decision.reviewer_id, decision.value) == (
        DecisionSource.MODEL_CORRECTED, reviewer.pk, {"label": "negative"}
    )
    assert decision.reason == "a rater's correction" and decision.guideline_version is not None
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED and not item.is_open


def test_proposals_applied_twice_change_nothing_the_second_time(project, reviewer):
    first, second = project.items.order_by("pk")[:2]
    proposals = [
        _proposal(first, {"label": "negative"}, decide=True, source=DecisionSource.MODEL_CORRECTED),
        _proposal(second, {"label": "positive"}, decide=False, review_reason=ReviewReason.MODEL),
    ]
    once = reviews.proposals_apply(project=project, proposals=proposals)
    twice = reviews.proposals_apply(project=project, proposals=proposals)
    assert [o.action for o in once] == ["decide", "review"]
    assert [o.action for o in twice] == ["unchanged", "review"] and twice[1].task_id == once[1].task_id
    assert Decision.objects.filter(item=first).count() == 1
    task = ReviewTask.objects.get(item=second)
    assert task.reasons == [ReviewReason.MODEL] and task.suggested_value == {"label": "positive"}


def test_a_new_value_supersedes_the_old_decision_and_keeps_the_history(project):
    item = project.items.order_by("pk").first()
    for label in ("negative", "positive"):
        reviews.proposals_apply(
            project=project,
            proposals=[_proposal(item, {"label": label}, decide=True, source=DecisionSource.MODEL_CORRECTED)],
        )
    history = list(Decision.objects.filter(item=item).order_by("created_at", "id").values_list("value", flat=True))
    assert history == [{"label": "negative"}, {"label": "positive"}], "appended, never updated"


def test_a_decision_made_after_the_rating_or_an_open_review_sends_the_value_to_review(project, reviewer):
    decided, waiting = project.items.order_by("pk")[:2]
    before = timezone.now() - dt.timedelta(minutes=5)
    reviews.proposals_apply(
        project=project,
        proposals=[_proposal(decided, {"label": "negative"}, decide=True, source=DecisionSource.MODEL_CORRECTED)],
    )
    reviews.review_task_open(item=waiting, reasons=[ReviewReason.AUDIT])
    outcomes = reviews.proposals_apply(
        project=project,
        proposals=[
            _proposal(decided, {"label": "positive"}, decide=True, source=DecisionSource.MODEL_CORRECTED, since=before),
            _proposal(waiting, {"label": "positive"}, decide=True, source=DecisionSource.MODEL_CORRECTED),
        ],
    )
    assert [(o.action, o.review_reason) for o in outcomes] == [("review", ReviewReason.RATING)] * 2
    assert Decision.objects.get(item=decided).value == {"label": "negative"}, "the later decision stands"
    assert not Decision.objects.filter(item=waiting).exists()
    merged = ReviewTask.objects.get(item=waiting, status=ReviewStatus.OPEN)
    assert set(merged.reasons) == {ReviewReason.AUDIT, ReviewReason.RATING}
    assert merged.suggested_value == {"label": "positive"}, "an empty suggestion is filled"
    decided.refresh_from_db()
    assert decided.status == ItemStatus.IN_REVIEW


def test_one_proposal_per_item_and_call(project):
    item = project.items.order_by("pk").first()
    proposal = _proposal(item, {"label": "negative"}, decide=False)
    with pytest.raises(ValueError, match="once"):
        reviews.proposals_apply(project=project, proposals=[proposal, proposal])


def test_a_reason_longer_than_the_form_takes_is_refused_by_name(quiet, annotator, annotator2, reviewer):
    """The form's box stops at 1,000 characters; a page post or a script through the service is held to it too."""
    item = annotate_pair(quiet, annotator, annotator2, "positive", "negative")
    with pytest.raises(ServiceError) as exc:
        reviews.review_decide(
            reviewer=reviewer, task=open_task(item), value={"label": "positive"}, reason="x" * (reviews.REASON_MAX + 1)
        )
    assert exc.value.field == "reason" and "1001 characters" in exc.value.message
    assert open_task(item).status == ReviewStatus.OPEN and not item.decisions.exists()
