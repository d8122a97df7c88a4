"""The crowd simulator over a live server: counts and accuracy bookkeeping on a small run."""

from __future__ import annotations

import json
import random

import pytest
from django.db import connection

from annotation import simulate
from annotation.crowd import crowd_create, dataset_load, personas
from annotation.models import Annotation, AnnotationStatus, Decision, Item, ReviewStatus, ReviewTask

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
