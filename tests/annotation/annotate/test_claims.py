"""The overlap promise: claims, submissions, skips, undo and lease expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from annotation.annotate import services as svc
from annotation.models import Annotation, AnnotationStatus, Claim, ClaimStatus, Draft, Item, ItemStatus
from core.errors import ServiceError
from tests.fixtures.people import acknowledge_guidelines, make_user

LABELS = ["positive", "negative", "neutral"]


def submit_next(user, project, label="positive", now=None):
    nxt = svc.claim_next(annotator=user, project=project, now=now)
    assert nxt.claim is not None
    return svc.annotation_submit(annotator=user, item=nxt.item, value={"label": label}, label_names=LABELS, now=now)


def test_guidelines_must_be_acknowledged_before_an_item(project, annotator):
    nxt = svc.claim_next(annotator=annotator, project=project)
    assert nxt.needs_ack and nxt.claim is None
    acknowledge_guidelines(project, annotator)
    assert svc.claim_next(annotator=annotator, project=project).claim is not None


def test_each_item_gets_exactly_overlap_distinct_annotators(project, annotator, annotator2):
    third = make_user("annotator3")
    from annotation.projects.services import membership_set

    membership_set(project=project, user=third, role="annotator")
    acknowledge_guidelines(project, annotator, annotator2, third)
    for user in (annotator, annotator2, third):
        while (nxt := svc.claim_next(annotator=user, project=project)).claim is not None:
            svc.annotation_submit(annotator=user, item=nxt.item, value={"label": "positive"}, label_names=LABELS)
    for item in Item.objects.filter(project=project):
        annotators = list(Annotation.objects.filter(item=item).values_list("annotator_id", flat=True))
        assert len(annotators) == 2 == len(set(annotators))
        # Fully annotated, then routed at once (services/reviews.py): agreed items are approved or audited.
        assert item.status in (ItemStatus.APPROVED, ItemStatus.IN_REVIEW) and not item.is_open


def test_next_returns_the_same_claim_until_submitted(project, annotator):
    acknowledge_guidelines(project, annotator)
    first = svc.claim_next(annotator=annotator, project=project).claim
    again = svc.claim_next(annotator=annotator, project=project).claim
    assert first.pk == again.pk


def test_a_submission_sent_twice_is_stored_once(project, annotator):
    acknowledge_guidelines(project, annotator)
    item = svc.claim_next(annotator=annotator, project=project).item
    a = svc.annotation_submit(annotator=annotator, item=item, value={"label": "negative"}, label_names=LABELS)
    b = svc.annotation_submit(annotator=annotator, item=item, value={"label": "negative"}, label_names=LABELS)
    assert a.pk == b.pk
    assert Annotation.objects.filter(item=item).count() == 1
    item.refresh_from_db()
    assert item.submitted_count == 1


def test_invalid_label_names_the_field_and_writes_nothing(project, annotator):
    acknowledge_guidelines(project, annotator)
    item = svc.claim_next(annotator=annotator, project=project).item
    with pytest.raises(ServiceError) as exc:
        svc.annotation_submit(annotator=annotator, item=item, value={"label": "meh"}, label_names=LABELS)
    assert exc.value.field == "label" and "meh" in exc.value.message
    assert not Annotation.objects.exists()


def test_annotation_records_guideline_version_and_time(project, annotator):
    acknowledge_guidelines(project, annotator)
    now = timezone.now()
    item = svc.claim_next(annotator=annotator, project=project, now=now).item
    ann = svc.annotation_submit(
        annotator=annotator,
        item=item,
        value={"label": "positive"},
        label_names=LABELS,
        now=now + dt.timedelta(seconds=7),
    )
    assert ann.guideline_version.version == 1
    assert ann.seconds_spent == pytest.approx(7)


def test_skip_returns_the_slot_and_hides_the_item_from_the_skipper(project, annotator, annotator2):
    acknowledge_guidelines(project, annotator, annotator2)
    item = svc.claim_next(annotator=annotator, project=project).item
    with pytest.raises(ServiceError):
        svc.claim_skip(annotator=annotator, item=item, reason="  ")
    svc.claim_skip(annotator=annotator, item=item, reason="not English")
    item.refresh_from_db()
    assert item.slots_taken == 0 and item.is_open
    assert svc.claim_next(annotator=annotator, project=project).item.pk != item.pk


def test_undo_keeps_the_retracted_row_and_restores_the_draft(project, annotator):
    acknowledge_guidelines(project, annotator)
    first = submit_next(annotator, project, "negative")
    claim = svc.annotation_undo(annotator=annotator, project=project)
    assert claim.item_id == first.item_id and claim.status == ClaimStatus.ACTIVE
    first.refresh_from_db()
    assert first.status == AnnotationStatus.RETRACTED
    assert Draft.objects.get(item_id=first.item_id, annotator=annotator).value == {"label": "negative"}
    assert svc.claim_next(annotator=annotator, project=project).item.pk == first.item_id
    again = svc.annotation_submit(annotator=annotator, item=claim.item, value={"label": "positive"}, label_names=LABELS)
    assert Annotation.objects.filter(item_id=first.item_id).count() == 2
    assert again.status == AnnotationStatus.SUBMITTED


def test_undo_is_refused_once_the_item_is_approved(project, annotator):
    acknowledge_guidelines(project, annotator)
    ann = submit_next(annotator, project)
    Item.objects.filter(pk=ann.item_id).update(status=ItemStatus.APPROVED)
    with pytest.raises(ServiceError, match="reviewed"):
        svc.annotation_undo(annotator=annotator, project=project)


def test_expired_lease_returns_the_item_and_never_loses_a_submission(project, annotator, annotator2):
    third = make_user("annotator3")
    from annotation.projects.services import membership_set

    membership_set(project=project, user=third, role="annotator")
    acknowledge_guidelines(project, annotator, annotator2, third)
    t0 = timezone.now()
    submitted = submit_next(annotator, project, now=t0)
    stale = svc.claim_next(annotator=annotator2, project=project, now=t0).claim  # same first item, never submitted
    assert stale.item_id == submitted.item_id
    later = t0 + dt.timedelta(seconds=project.lease_seconds + 1)
    taken = svc.claim_next(annotator=third, project=project, now=later).claim
    assert taken.item_id == submitted.item_id  # the expired slot went back to the pool
    assert Claim.objects.get(pk=stale.pk).status == ClaimStatus.EXPIRED
    assert Annotation.objects.filter(pk=submitted.pk, status=AnnotationStatus.SUBMITTED).exists()
    svc.annotation_submit(annotator=third, item=taken.item, value={"label": "neutral"}, label_names=LABELS, now=later)
    # The stale annotator's late submission finds the item full: refused, their work kept as a draft.
    with pytest.raises(ServiceError, match="expired"):
        svc.annotation_submit(
            annotator=annotator2, item=stale.item, value={"label": "negative"}, label_names=LABELS, now=later
        )
    assert Draft.objects.filter(item_id=stale.item_id, annotator=annotator2).exists()
    assert Annotation.objects.filter(item_id=stale.item_id, status=AnnotationStatus.SUBMITTED).count() == 2


def test_late_submission_counts_when_a_slot_is_still_free(project, annotator):
    acknowledge_guidelines(project, annotator)
    t0 = timezone.now()
    claim = svc.claim_next(annotator=annotator, project=project, now=t0).claim
    later = t0 + dt.timedelta(seconds=project.lease_seconds + 1)
    assert svc.claims_release_expired(project=project, now=later) == 1
    ann = svc.annotation_submit(
        annotator=annotator, item=claim.item, value={"label": "positive"}, label_names=LABELS, now=later
    )
    item = Item.objects.get(pk=ann.item_id)
    assert (item.slots_taken, item.submitted_count) == (1, 1)


@pytest.mark.parametrize("holders", [1, 2])
def test_a_late_submit_keeps_an_item_that_a_correction_approved(project, annotator, annotator2, reviewer, holders):
    """A reviewer's correction of a model output approves an item someone still holds a claim on: their
    submit is stored (it counts for agreement) but the item stays approved with the correction final."""
    from annotation.models import Decision, DecisionSource, ReviewTask

    acknowledge_guidelines(project, annotator, annotator2)
    users = [annotator, annotator2][:holders]
    claims = [svc.claim_next(annotator=user, project=project) for user in users]
    item = claims[0].item
    assert all(c.item.pk == item.pk for c in claims)  # the queue's first item, one overlap slot each
    correction = Decision.objects.create(
        item=item, value={"label": "neutral"}, source=DecisionSource.MODEL_CORRECTED, reviewer=reviewer
    )
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED, is_open=False)  # as a round applies it
    for user, label in zip(users, ["positive", "negative"], strict=False):
        svc.annotation_submit(annotator=user, item=item, value={"label": label}, label_names=LABELS)
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED and item.submitted_count == holders
    assert Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED).count() == holders
    assert Decision.objects.filter(item=item).order_by("-created_at", "-id").first() == correction
    assert not ReviewTask.objects.filter(item=item).exists()
