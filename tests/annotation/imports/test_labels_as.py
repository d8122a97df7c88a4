"""Importing existing labels: as suggestions (the default), as one annotation per item, or as final labels."""

from __future__ import annotations

import io
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.annotate import services as ann_svc
from annotation.imports import services as svc
from annotation.models import (
    Annotation,
    Decision,
    DecisionSource,
    ImportStatus,
    Item,
    ItemStatus,
    LabelsAs,
    Project,
    ReviewReason,
    ReviewTask,
)
from annotation.projects.services import guideline_acknowledge_current, guideline_current, project_set_overlap
from core.errors import ServiceError
from tests.fixtures.people import fixed_routing
from tests.fixtures.reviews import LABELS

ROWS = [
    {"text": "what a lovely day", "label": "positive"},
    {"text": "this is awful", "label": "negative"},
    {"text": "no label on this one"},
]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def run_import(project, user, rows=ROWS, **kwargs):
    return svc.import_create(
        project=project, user=user, file_name="labelled.jsonl", fileobj=io.BytesIO(jsonl(rows)), **kwargs
    )


def label_everything(user, project, label: str) -> list[Item]:
    """Everything the annotator is handed, in order, each given `label`."""
    guideline_acknowledge_current(user=user, version=guideline_current(project=project))
    handed = []
    while (nxt := ann_svc.claim_next(annotator=user, project=project)).claim is not None:
        handed.append(nxt.item)
        ann_svc.annotation_submit(annotator=user, item=nxt.item, value={"label": label}, label_names=LABELS)
    return handed


def by_text(project) -> dict[str, Item]:
    return {i.text: i for i in Item.objects.filter(project=project, import_job__isnull=False)}


def test_by_default_labels_stay_suggestions(project, owner):
    job = run_import(project, owner)

    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert job.labels_as == LabelsAs.SUGGESTION
    items = by_text(project)
    assert items["this is awful"].prelabel == {"label": "negative"}
    assert items["this is awful"].status == ItemStatus.NEW
    assert not Decision.objects.filter(item__project=project).exists()


def test_final_labels_approve_the_items_with_an_import_decision(project, owner):
    job = run_import(project, owner, labels_as=LabelsAs.FINAL)

    assert job.status == ImportStatus.SUCCEEDED, job.errors
    items = by_text(project)
    lovely = items["what a lovely day"]
    assert lovely.status == ItemStatus.APPROVED and not lovely.is_open and lovely.prelabel is None
    decision = Decision.objects.get(item=lovely)
    assert decision.value == {"label": "positive"}
    assert decision.source == DecisionSource.IMPORT and decision.reviewer is None
    assert f"import #{job.pk}" in decision.reason and "labelled.jsonl" in decision.reason
    assert decision.guideline_version == guideline_current(project=project)
    unlabelled = items["no label on this one"]  # a row without a label is an ordinary new item
    assert unlabelled.status == ItemStatus.NEW and unlabelled.is_open
    assert not Decision.objects.filter(item=unlabelled).exists()


def test_items_with_final_labels_are_never_handed_to_annotators(project, owner, annotator):
    run_import(project, owner, labels_as=LabelsAs.FINAL)
    imported = set(by_text(project).values())
    handed = set(label_everything(annotator, project, "neutral"))
    assert {i.text for i in handed & imported} == {"no label on this one"}


@fixed_routing  # a disagreement with the file goes to review; adaptive routing would ask one more annotator first
def test_imported_annotations_take_one_overlap_slot_and_people_label_the_rest_blind(
    project, owner, annotator, annotator2
):
    # No audit sample: it is drawn by item id, and on PostgreSQL ids depend on the tests run before this one.
    Project.objects.filter(pk=project.pk).update(audit_rate=0)
    project.refresh_from_db()
    job = run_import(project, owner, labels_as=LabelsAs.ANNOTATION)

    assert job.status == ImportStatus.SUCCEEDED, job.errors
    items = by_text(project)
    lovely, awful = items["what a lovely day"], items["this is awful"]
    imported = Annotation.objects.get(item=lovely)
    assert imported.annotator.username == f"import:{project.pk}"
    assert not imported.annotator.is_active and not imported.annotator.has_usable_password()
    assert imported.value == {"label": "positive"} and f"import #{job.pk}" in imported.note
    assert imported.guideline_version == guideline_current(project=project)
    assert lovely.status == ItemStatus.IN_ANNOTATION and lovely.submitted_count == 1 and lovely.is_open
    assert lovely.prelabel is None  # blind: the next annotator does not see the imported value

    # The fixture project's own five items come first; work through everything one annotator can have.
    seen = {item.pk: item.prelabel for item in label_everything(annotator, project, "positive")}
    assert seen[lovely.pk] is None and seen[awful.pk] is None

    lovely.refresh_from_db()
    awful.refresh_from_db()
    assert lovely.status == ItemStatus.APPROVED  # the person agreed with the file
    assert Decision.objects.get(item=lovely).source == DecisionSource.AGREEMENT
    assert awful.status == ItemStatus.IN_REVIEW  # the person disagreed: review decides
    assert ReviewReason.DISAGREEMENT in ReviewTask.objects.get(item=awful).reasons
    # Two annotations each, never more than the overlap: the second annotator gets none of these.
    assert not {lovely, awful} & set(label_everything(annotator2, project, "neutral"))


@fixed_routing
def test_with_overlap_one_an_imported_annotation_is_routed_at_once(project, owner):
    project_set_overlap(project=project, overlap=1)
    project.refresh_from_db()
    run_import(project, owner, labels_as=LabelsAs.ANNOTATION)

    lovely = by_text(project)["what a lovely day"]
    assert lovely.status in (ItemStatus.APPROVED, ItemStatus.IN_REVIEW)  # agreement, or an audit sample
    assert not lovely.is_open


def test_with_overlap_one_adaptive_routing_asks_a_person_to_confirm_an_imported_annotation(project, owner):
    """One unmeasured vote (the file's) is not sure enough to stand: one more annotator is asked, blind."""
    project_set_overlap(project=project, overlap=1)
    project.refresh_from_db()
    run_import(project, owner, labels_as=LabelsAs.ANNOTATION)

    lovely = by_text(project)["what a lovely day"]
    assert (lovely.status, lovely.is_open, lovely.extra_slots) == (ItemStatus.IN_ANNOTATION, True, 1)
    assert lovely.prelabel is None and not Decision.objects.filter(item=lovely).exists()


@pytest.mark.parametrize("overlap", [1, 3])
def test_a_change_of_overlap_never_hands_out_items_imported_as_final(project, owner, annotator, overlap):
    """A tester lowered (or raised) the overlap of a project of imported final labels: every approved item
    re-opened, annotators were handed them, their labels changed nothing and the export lost its final values."""
    run_import(project, owner, labels_as=LabelsAs.FINAL)
    imported = by_text(project)
    final = [imported["what a lovely day"], imported["this is awful"]]
    project_set_overlap(project=project, overlap=overlap)
    project.refresh_from_db()
    assert not Item.objects.filter(pk__in=[i.pk for i in final], is_open=True).exists()
    handed = label_everything(annotator, project, "neutral")
    assert not {i.pk for i in handed} & {i.pk for i in final}
    assert imported["no label on this one"].pk in {i.pk for i in handed}  # what still needs annotators gets them


@fixed_routing
def test_lowering_the_overlap_routes_items_whose_annotations_now_fill_it(project, owner, annotator, annotator2):
    """A reviewer's read: an item with 2 of 3 annotations stayed in annotation, closed, for ever after the overlap
    went down to 2: no submission would come to route it."""
    from tests.fixtures.people import acknowledge_guidelines

    project_set_overlap(project=project, overlap=3)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    first = ann_svc.claim_next(annotator=annotator, project=project).item
    ann_svc.annotation_submit(annotator=annotator, item=first, value={"label": "positive"}, label_names=LABELS)
    second = ann_svc.claim_next(annotator=annotator2, project=project).item
    assert second.pk == first.pk
    ann_svc.annotation_submit(annotator=annotator2, item=second, value={"label": "negative"}, label_names=LABELS)
    assert Item.objects.get(pk=first.pk).status == ItemStatus.IN_ANNOTATION
    project_set_overlap(project=project, overlap=2)
    routed = Item.objects.get(pk=first.pk)
    assert (routed.status, routed.is_open) == (ItemStatus.IN_REVIEW, False)
    assert ReviewTask.objects.get(item=routed).reasons == [ReviewReason.DISAGREEMENT]


def test_labels_as_without_a_label_column_fails_and_writes_nothing(project, owner):
    before = Item.objects.filter(project=project).count()
    job = run_import(project, owner, rows=[{"text": "a"}, {"text": "b"}], labels_as=LabelsAs.FINAL)

    assert job.status == ImportStatus.FAILED
    assert job.errors[0]["field"] == "prelabel"
    assert "no label column" in job.errors[0]["message"] and "final labels" in job.errors[0]["message"]
    assert Item.objects.filter(project=project).count() == before


def test_an_invalid_label_fails_the_whole_import(project, owner):
    rows = [{"text": "fine", "label": "positive"}, {"text": "odd", "label": "sarcastic"}]
    job = run_import(project, owner, rows=rows, labels_as=LabelsAs.FINAL)

    assert job.status == ImportStatus.FAILED
    assert not Item.objects.filter(project=project, import_job=job).exists()
    assert not Decision.objects.filter(item__project=project).exists()


def test_an_unknown_labels_as_is_refused(project, owner):
    with pytest.raises(ServiceError) as caught:
        run_import(project, owner, labels_as="gospel")
    assert caught.value.field == "labels_as"


def test_the_api_takes_labels_as(project, owner):
    client = APIClient()
    client.force_authenticate(owner)
    upload = io.BytesIO(jsonl(ROWS))
    upload.name = "labelled.jsonl"
    response = client.post(
        reverse("api-import-list", args=[project.pk]), {"file": upload, "labels_as": "final"}, format="multipart"
    )

    assert response.status_code == 201, response.data
    assert response.data["labels_as"] == "final" and response.data["status"] == "succeeded"
    assert by_text(project)["this is awful"].status == ItemStatus.APPROVED
