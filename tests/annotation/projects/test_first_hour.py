"""What a new user meets first: the project list (counts, progress, next step per role), empty projects,
guidelines their author need not acknowledge, human form labels, GitHub-style Markdown lists."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.annotate.selectors import AnnotatorProgress
from annotation.datasets.views import SPLITS_NOT_100, SnapshotForm
from annotation.models import Decision, DecisionSource, Item, ItemStatus, ReviewTask, Role, TaskType
from annotation.projects.forms import ProjectCreateForm
from annotation.projects.guidelines import render_markdown
from annotation.projects.selectors import project_cards_for_user
from annotation.projects.services import guideline_needs_ack, guideline_publish, membership_set, project_create
from tests.fixtures.people import add_items, make_user
from training.ml.registry import MINILM, SMOLLM2, ModelRegistry
from training.models import PredictionBatch
from training.rounds.forms import NextRoundSettingsForm
from training.runs.forms import LABELS, form_fields
from training.spec import TASK_CAUSAL_LM, TASK_CLASSIFICATION

# --- The project list ------------------------------------------------------------------------------------


@pytest.fixture
def staged(project, reviewer):
    """The project's five items at every stage: 2 new, 1 annotated, 1 in review, 1 approved by a reviewer."""
    items = list(Item.objects.filter(project=project).order_by("pk"))
    Item.objects.filter(pk=items[2].pk).update(status=ItemStatus.ANNOTATED, is_open=False)
    Item.objects.filter(pk=items[3].pk).update(status=ItemStatus.IN_REVIEW, is_open=False)
    Item.objects.filter(pk=items[4].pk).update(status=ItemStatus.APPROVED, is_open=False)
    ReviewTask.objects.create(project=project, item=items[3], reasons=["disagreement"])
    value = {"label": "positive"}
    Decision.objects.create(item=items[4], reviewer=reviewer, value=value, source=DecisionSource.REVIEWER)
    Decision.objects.create(item=items[4], reviewer=None, value=value, source=DecisionSource.AGREEMENT)
    return project


def test_the_cards_count_items_by_stage_in_four_queries(staged, owner, django_assert_num_queries):
    empty = project_create(owner=owner, name="Empty", labels=["a", "b"])
    with django_assert_num_queries(4):
        cards = {c.project.name: c for c in project_cards_for_user(user=owner)}
    card = cards["Sentiment"]
    counts = (card.items, card.labelled, card.reviewed, card.final, card.open_items, card.open_reviews)
    assert counts == (5, 3, 1, 1, 2, 1)
    assert (card.percent_labelled, card.percent_final, card.role) == (60, 20, Role.OWNER)
    assert (cards["Empty"].items, cards["Empty"].percent_labelled) == (0, 0)
    assert empty.pk == cards["Empty"].project.pk


def list_page(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("project-list")).content.decode()


def test_the_list_shows_counts_progress_and_the_owners_next_step(client, staged, owner):
    project_create(owner=owner, name="Empty", labels=["a", "b"])
    body = list_page(client, owner)
    counts = zip(("Items", "Labelled", "Reviewed", "Final"), (5, 3, 1, 1), strict=True)
    assert "".join(f'<td class="num" data-label="{name}">{n}</td>' for name, n in counts) in body
    assert 'aria-valuenow="60"' in body and "60% labelled · 20% final" in body
    assert f'href="{reverse("review-queue", args=[staged.pk])}">Review 1 item</a>' in body
    empty = staged.__class__.objects.get(name="Empty")
    assert f'href="{reverse("import-page", args=[empty.pk])}">Import data</a>' in body
    assert "No items yet" in body
    assert ">New project</a>" in body


def test_annotators_are_offered_annotation_not_new_projects(client, staged, annotator, owner):
    empty = project_create(owner=owner, name="Empty", labels=["a", "b"])
    membership_set(project=empty, user=annotator, role=Role.ANNOTATOR)
    body = list_page(client, annotator)
    assert ">New project</a>" not in body
    assert f'href="{reverse("annotate", args=[staged.pk])}">Start annotating</a>' in body
    assert "Nothing to annotate yet: the owner has not imported items." in body
    assert f'href="{reverse("annotate", args=[empty.pk])}"' not in body
    assert reverse("import-page", args=[empty.pk]) not in body


def test_reviewers_are_offered_the_review_queue(client, staged, reviewer):
    body = list_page(client, reviewer)
    assert f'href="{reverse("review-queue", args=[staged.pk])}">Review 1 item</a>' in body
    assert ">New project</a>" not in body and "Start annotating" not in body


def test_newcomers_and_staff_may_start_a_project(client, db):
    assert ">New project</a>" in list_page(client, make_user("newcomer"))
    staff = make_user("staffer", is_staff=True)
    other = project_create(owner=make_user("someone"), name="Theirs", labels=["a", "b"])
    membership_set(project=other, user=staff, role=Role.ANNOTATOR)
    assert ">New project</a>" in list_page(client, staff)


# --- An empty project ------------------------------------------------------------------------------------


def test_an_empty_project_says_to_import_to_its_owner_and_offers_no_annotation(client, owner, annotator):
    empty = project_create(owner=owner, name="Empty", labels=["a", "b"], guidelines="# Rules\n\nBe kind.")
    membership_set(project=empty, user=annotator, role=Role.ANNOTATOR)
    client.force_login(owner)
    body = client.get(reverse("project-detail", args=[empty.pk])).content.decode()
    assert "This project has no items yet." in body and ">Import data</a>" in body
    assert "Start annotating" not in body and 'aria-label="Project progress"' not in body

    client.force_login(annotator)
    body = client.get(reverse("project-detail", args=[empty.pk])).content.decode()
    assert "Nothing to annotate yet." in body and "Import data" not in body
    assert "Start annotating" not in body and 'aria-label="Your progress"' not in body
    assert "is new to you" not in body  # nothing to annotate: no acknowledgement asked for yet


def test_nothing_reachable_and_nothing_done_is_not_a_full_bar():
    assert AnnotatorProgress(submitted=0, skipped=0, holding=0, open_for_me=0).percent == 0
    assert AnnotatorProgress(submitted=4, skipped=0, holding=0, open_for_me=0).percent == 100


# --- Guidelines ------------------------------------------------------------------------------------------


def test_the_author_of_guidelines_has_acknowledged_them(project, owner, annotator):
    assert guideline_needs_ack(user=owner, project=project) is None  # version 1, written at creation
    version = guideline_publish(project=project, author=owner, body="# Sentiment\n\nNew rules.")
    assert guideline_needs_ack(user=owner, project=project) is None
    assert guideline_needs_ack(user=annotator, project=project) == version


def test_a_list_right_under_a_paragraph_is_a_list():
    html = render_markdown("Pick one:\n- positive\n- negative\n\nThen:\n1. save\n2. next")
    assert "<p>Pick one:</p>\n<ul>\n<li>positive</li>\n<li>negative</li>\n</ul>" in html
    assert "<ol>\n<li>save</li>\n<li>next</li>\n</ol>" in html


def test_what_is_not_a_list_start_stays_text():
    assert "<ol>" not in render_markdown("The year\n2024. was long")  # only 1. interrupts a paragraph
    code = render_markdown("```\nPick:\n- not a list\n```")
    assert "<ul>" not in code and "- not a list" in code
    assert render_markdown("Pick:\n-not a list") == "<p>Pick:\n-not a list</p>"


# --- Form text -------------------------------------------------------------------------------------------


def test_the_run_form_speaks_in_words_not_attribute_names():
    groups = form_fields(task=TASK_CLASSIFICATION, values={}, errors={}, base_models=[MINILM])
    labels = {f.name: f.label for _title, fields in groups for f in fields}
    assert labels["lora_r"] == "LoRA rank (r)"
    assert labels["lr_scheduler"] == "Learning-rate schedule"
    assert labels["bf16"] == "bfloat16 mixed precision"
    assert labels["grad_accum"] == "Gradient accumulation steps"
    assert set(labels) <= set(LABELS)  # no field falls back to its attribute name
    fields = {f.name: f for _title, fs in groups for f in fs}
    assert ("cosine", "Cosine decay") in fields["lr_scheduler"].choices
    assert fields["grad_accum"].help and fields["bf16"].help


def test_project_forms_have_human_labels():
    form = ProjectCreateForm()
    assert form["overlap"].label == "Annotators per item (overlap)"
    assert form["name"].label == "Project name"
    # Routing is chosen where the project is made: adaptive first, both policies and the budget explained.
    assert (form["routing_policy"].label, form["routing_policy"].initial) == ("Routing", "adaptive")
    assert form["routing_budget"].label == "Budget (judgements per item)"
    assert form.fields["routing_budget"].widget.attrs["placeholder"] == "2.5, or the overlap + 0.5"  # empty: default
    assert "Adaptive (the default" in form["routing_policy"].help_text and "Fixed" in form["routing_policy"].help_text


def test_rating_criteria_are_offered_only_where_models_write_responses():
    assert "rating_criteria" not in NextRoundSettingsForm(generates=False).fields
    assert "rating_criteria" in NextRoundSettingsForm().fields


def test_split_sizes_typed_in_percent_are_refused_in_percent():
    form = SnapshotForm({"name": "s", "seed": 0, "train": 80, "validation": 10, "test": 5})
    assert not form.is_valid()
    assert form.non_field_errors() == [SPLITS_NOT_100.format(total="95")]
    assert SnapshotForm({"name": "s", "seed": 0, "train": 70, "validation": 15, "test": 15}).is_valid()


def test_the_snapshot_page_says_the_split_error_in_percent(client, project, owner):
    client.force_login(owner)
    data = {"name": "s", "seed": 0, "train": 80, "validation": 10, "test": 5}
    response = client.post(reverse("snapshot-list", args=[project.pk]), data)
    assert response.status_code == 400 and "must add up to 100 %; they add up to 95 %" in response.content.decode()


def test_smollm2_is_offered_for_responses_only(tmp_path):
    registry = ModelRegistry(extra={"mine": tmp_path}, cache_dir=tmp_path)
    assert SMOLLM2 not in registry.names_for(TASK_CLASSIFICATION)
    assert registry.names_for(TASK_CLASSIFICATION) == ["mine", MINILM]
    assert registry.names_for(TASK_CAUSAL_LM) == ["mine", SMOLLM2]


def test_the_admin_says_prediction_batches():
    assert PredictionBatch._meta.verbose_name_plural == "prediction batches"


@pytest.mark.parametrize("task_type", [TaskType.SINGLE_LABEL, TaskType.INSTRUCTION])
def test_guidelines_of_a_new_project_need_no_acknowledgement_from_their_author(owner, task_type):
    labels = ["a", "b"] if task_type == TaskType.SINGLE_LABEL else []
    project = project_create(owner=owner, name="New", task_type=task_type, labels=labels, guidelines="Read me.")
    add_items(project, ["one"])
    assert guideline_needs_ack(user=owner, project=project) is None
