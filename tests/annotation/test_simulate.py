"""The crowd simulator over a live server: counts and accuracy bookkeeping on a small run."""

from __future__ import annotations

import json
import random

import pytest
from django.db import connection

from annotation import simulate
from annotation.crowd import crowd_create, crowd_work_in_process, dataset_load, personas
from annotation.models import Annotation, AnnotationStatus, Decision, Item, ReviewStatus, ReviewTask, Role
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import FIXED, add_items, make_user

N_ITEMS = 20
LABELS = ["ham", "spam"]
# The suite's in-memory SQLite takes table locks without waiting: concurrent writers only on a real server.
PARALLEL = connection.vendor == "postgresql"


@pytest.fixture
def dataset_file(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "tiny.jsonl"
    rows = [{"text": f"message number {i}", "label": rng.choice(LABELS)} for i in range(N_ITEMS)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_persona_errs_towards_the_lookalike_label():
    rng = random.Random(0)
    persona = simulate.Persona(name="p", error_rate=0.5, confuses={"a": "b"})
    picks = [persona.choose("a", ["a", "b", "c"], rng) for _ in range(2000)]
    assert 0.4 < picks.count("a") / 2000 < 0.6
    assert picks.count("b") > 3 * picks.count("c")  # the confusion pattern, not uniform noise


@pytest.mark.django_db(transaction=True)
def test_two_annotators_label_every_item_once_each_over_http(live_server, dataset_file):
    data = dataset_load(str(dataset_file))
    crowd = crowd_create(
        base_url=live_server.url,
        dataset=data,
        annotators=personas(prefix="a", count=2, labels=data.label_names, error_rate=0.0, think_seconds=0, seed=1),
        reviewers=[],
        overlap=2,
    )
    result = simulate.run(crowd, seconds=120, parallel=PARALLEL)

    rec = result.recorder
    assert dict(rec.errors) == {}
    assert result.accepted == 2 * N_ITEMS  # each annotator submitted each item once, then got 204
    assert len(set(rec.accepted)) == 2 * N_ITEMS
    stored = Annotation.objects.filter(item__project_id=crowd.project_id, status=AnnotationStatus.SUBMITTED)
    assert stored.count() == 2 * N_ITEMS
    assert len(rec.latencies[simulate.SUBMIT_AND_NEXT]) == 2 * N_ITEMS
    # Error-free annotators agree: every item is approved with the dataset's label, but for the few the
    # project's audit sample sends to review (no reviewer here), which stay unlabelled.
    decided = Decision.objects.filter(item__project_id=crowd.project_id).count()
    audited = ReviewTask.objects.filter(project_id=crowd.project_id, status=ReviewStatus.OPEN).count()
    assert decided + audited == N_ITEMS and decided >= N_ITEMS // 2
    assert result.final == {"items": N_ITEMS, "labelled": decided, "correct": decided, "accuracy": 1.0}
    assert "annotations/s" in simulate.report(result)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_reviewer_settles_disagreements_and_accuracy_counts_final_labels(live_server, dataset_file):
    data = dataset_load(str(dataset_file))
    crowd = crowd_create(
        base_url=live_server.url,
        dataset=data,
        annotators=[simulate.Persona(name="right"), simulate.Persona(name="wrong", error_rate=1.0)],
        reviewers=[simulate.Persona(name="judge", error_rate=0.0)],
        overlap=2,
        routing_policy=FIXED,  # every disagreement to the reviewer, whose word is final
    )
    crowd.annotators[0] = simulate.Seat(persona=simulate.Persona(name="right", error_rate=0.0),
                                        token=crowd.annotators[0].token)
    result = simulate.run(crowd, seconds=120, parallel=PARALLEL)

    assert dict(result.recorder.errors) == {}
    assert result.accepted == 2 * N_ITEMS
    # Every item has a disagreement; the error-free reviewer picks the right annotation each time.
    assert result.recorder.decisions == N_ITEMS
    assert result.final["accuracy"] == 1.0 and result.final["labelled"] == N_ITEMS
    assert Item.objects.filter(project_id=crowd.project_id, status="approved").count() == N_ITEMS


# --- In process: the demo's labelled project ------------------------------------------------------


def crowd_project(owner, texts, **routing):
    project = project_create(
        owner=owner, name="Crowd", labels=LABELS, guidelines="# Crowd\n\nSpam or not.", **routing
    )
    add_items(project, texts)
    return project


def seat(project, username: str, error_rate: float, role: str):
    """A simulated person with an account in the project."""
    user = make_user(username)
    membership_set(project=project, user=user, role=role)
    return user, simulate.Persona(name=username, error_rate=error_rate)


def test_careful_people_in_process_agree_on_every_item(owner):
    texts = [f"a long enough message number {i}" for i in range(12)]
    gold = {t: LABELS[i % 2] for i, t in enumerate(texts)}
    project = crowd_project(owner, texts)
    people = [seat(project, f"careful{i}", 0.0, Role.ANNOTATOR) for i in range(2)]

    work = crowd_work_in_process(
        project=project, gold_by_text=gold, annotators=people, reviewer=None, review_share=0.5, seed=1
    )

    assert work.annotations == 24 and work.reviews == 0
    finals = {d.item.text: d.value["label"] for d in Decision.objects.filter(item__project=project)}
    open_tasks = ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).count()
    assert work.left_for_review == open_tasks  # only audit samples can be waiting
    assert all(finals[t] == gold[t] for t in finals) and len(finals) + open_tasks == 12


def test_a_careless_annotator_makes_review_work_and_the_reviewer_takes_its_share(owner):
    texts = [f"a long enough message number {i}" for i in range(20)]
    gold = {t: "ham" for t in texts}
    project = crowd_project(owner, texts, routing_policy=FIXED)  # every disagreement to review
    # The second annotator is always wrong: every item disagrees.
    people = [seat(project, "crowd0", 0.0, Role.ANNOTATOR), seat(project, "crowd1", 1.0, Role.ANNOTATOR)]
    reviewer = seat(project, "boss", 0.0, Role.REVIEWER)

    work = crowd_work_in_process(
        project=project, gold_by_text=gold, annotators=people, reviewer=reviewer, review_share=0.5, seed=1
    )

    assert Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).count() == 40
    assert work.reviews == 10 and work.left_for_review == 10
    decided = Decision.objects.filter(item__project=project, reviewer=reviewer[0])
    assert decided.count() == 10 and all(d.value == {"label": "ham"} for d in decided)
    assert ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).count() == 10
