"""Rows for the rounds tests, made directly: runs, outputs and ratings without training anything."""

from __future__ import annotations

import math

from django.utils import timezone

from annotation.models import Decision, DecisionSource, Item, ItemStatus, Project, Snapshot
from training.models import ModelOutput, Rating, RunStatus, TrainingRun


def snapshot_row(project: Project, user, name: str = "s") -> Snapshot:
    return Snapshot.objects.create(
        project=project,
        name=name,
        content_hash="0" * 64,
        item_count=0,
        seed=0,
        manifest={},
        file_path="",
        created_by=user,
    )


def run_row(project: Project, user, *, task: str = "classification", metrics: dict | None = None, snapshot=None):
    snapshot = snapshot or snapshot_row(project, user)
    return TrainingRun.objects.create(
        project=project,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        task=task,
        base_model="tiny",
        spec={},
        status=RunStatus.SUCCEEDED,
        metrics=metrics or {},
        created_by=user,
        finished_at=timezone.now(),
    )


def output_row(
    run: TrainingRun,
    item: Item,
    label: str | None = None,
    *,
    probabilities: dict | None = None,
    response: str | None = None,
) -> ModelOutput:
    if response is not None:
        return ModelOutput.objects.create(run=run, item=item, value={"response": response})
    probabilities = probabilities or {label: 1.0}
    label = label or max(probabilities, key=probabilities.get)
    entropy = -sum(p * math.log(p) for p in probabilities.values() if p > 0)
    return ModelOutput.objects.create(
        run=run,
        item=item,
        value={"label": label},
        probabilities=probabilities,
        confidence=max(probabilities.values()),
        uncertainty=entropy,
    )


def rating_row(output: ModelOutput, rater, **fields) -> Rating:
    return Rating.objects.create(
        project_id=output.run.project_id, output=output, item=output.item, run=output.run, rater=rater, **fields
    )


def approve(item: Item, value: dict, *, reviewer=None, source: str = DecisionSource.AGREEMENT) -> Decision:
    decision = Decision.objects.create(item=item, value=value, source=source, reviewer=reviewer)
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED, is_open=False)
    item.refresh_from_db()
    return decision
