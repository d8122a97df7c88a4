"""Fixtures for the Django side of training: snapshots of tiny projects and the tiny models under registry names.

Imported by the run, view, API and worker test modules (`from .run_fixtures import *`); the tiny models come
from conftest.py, registered through settings.LABELLOOP_MODEL_REGISTRY as an installation would add models.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_rq
import pytest
from django.conf import settings
from rq import SimpleWorker

from annotation.models import Annotation, Decision, DecisionSource, Item, ItemStatus, Role, Snapshot, TaskType
from annotation.services.projects import membership_set, project_create
from annotation.services.snapshots import snapshot_create
from tests.conftest import add_items
from training import selectors, services
from training.models import PredictionBatch, PredictionScope, PredictionStatus, RunStatus, TrainingRun
from training.spec import TrainingSpec

from .conftest import qa_rows, sentiment_rows

# Fast settings for the tiny models (see conftest.TINY_CLASSIFICATION): few steps, no warmup, a high rate.
TINY_BERT_SPEC = {
    "base_model": "tiny-bert",
    "learning_rate": 0.02,
    "epochs": 2,
    "batch_size": 8,
    "warmup_ratio": 0.0,
    "max_length": 32,
    "early_stopping_patience": 0,
}
TINY_LLAMA_SPEC = {
    "base_model": "tiny-llama",
    "learning_rate": 0.01,
    "epochs": 1,
    "batch_size": 8,
    "warmup_ratio": 0.0,
    "max_length": 48,
    "max_new_tokens": 4,
    "early_stopping_patience": 0,
}


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads make tiny steps 20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_models(one_torch_thread, settings, tiny_bert, tiny_llama, tmp_path_factory, tmp_path):
    """The tiny BERT and Llama as registered base models; a long heartbeat so no thread writes mid-test; runs'
    folders in this test's own MEDIA_ROOT (run ids restart in every test)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LABELLOOP_MODEL_REGISTRY = {"tiny-bert": str(tiny_bert), "tiny-llama": str(tiny_llama)}
    settings.LABELLOOP_MODEL_CACHE = tmp_path_factory.mktemp("model-cache")
    settings.LABELLOOP_RUN_HEARTBEAT_S = 3600
    return settings.LABELLOOP_MODEL_REGISTRY


def _clear(queue) -> None:
    queue.empty()
    for job_id in queue.scheduled_job_registry.get_job_ids():
        queue.scheduled_job_registry.remove(job_id, delete_job=True)


@pytest.fixture
def queues():
    """Empty training and sweep queues (scheduled jobs too) before and after the test."""
    named = {name: django_rq.get_queue(name) for name in (services.QUEUE, services.SWEEP_QUEUE)}
    for queue in named.values():
        _clear(queue)
    yield named
    for queue in named.values():
        _clear(queue)


def run_worker() -> bool:
    """Drain the training queue in this process (RQ's SimpleWorker, burst mode) on the embedded Redis."""
    return django_rq.get_worker(services.QUEUE, worker_class=SimpleWorker).work(burst=True)


def approve(items: list[Item], values: list[dict]) -> None:
    for item, value in zip(items, values, strict=True):
        Decision.objects.create(item=item, value=value, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[item.pk for item in items]).update(status=ItemStatus.APPROVED)


def team(project, annotator, reviewer) -> None:
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)


def sentiment_snapshot(owner, *, count: int = 48, unlabelled: int = 4, balance_mode: str = "") -> Snapshot:
    """A pos/neg project whose words give the label away, approved, snapshotted 80/10/10; plus unlabelled items."""
    project = project_create(owner=owner, name="Sentiment", labels=["pos", "neg"])
    rows = sentiment_rows(count, seed=5)
    items = add_items(project, [f"{row['text']} #{i}" for i, row in enumerate(rows)])
    approve(items, [{"label": row["label"]} for row in rows])
    add_items(project, [f"{row['text']} unlabelled {i}" for i, row in enumerate(sentiment_rows(unlabelled, seed=9))])
    return snapshot_create(project=project, user=owner, name="v1", balance_mode=balance_mode)


def qa_snapshot(owner, *, count: int = 40) -> Snapshot:
    project = project_create(owner=owner, name="Colours", task_type=TaskType.INSTRUCTION)
    rows = qa_rows(count, seed=5)
    items = add_items(project, [f"{row['prompt']} ({i})" for i, row in enumerate(rows)])
    approve(items, [{"response": row["response"]} for row in rows])
    return snapshot_create(project=project, user=owner, name="v1")


def annotate(item: Item, users, labels: list[str]) -> None:
    for user, label in zip(users, labels, strict=True):
        Annotation.objects.create(item=item, annotator=user, value={"label": label})


@pytest.fixture
def sentiment(owner, annotator, reviewer) -> Snapshot:
    snapshot = sentiment_snapshot(owner)
    team(snapshot.project, annotator, reviewer)
    return snapshot


@pytest.fixture
def colours(owner, annotator, reviewer) -> Snapshot:
    snapshot = qa_snapshot(owner)
    team(snapshot.project, annotator, reviewer)
    return snapshot


@pytest.fixture(scope="session")
def tiny_artifact(one_torch_thread, registry, tmp_path_factory) -> Path:
    """A real saved classifier (tiny BERT + LoRA, labels pos/neg), trained once for the whole session."""
    from training.ml.recipe import Recipe
    from training.spec import TrainingSpec

    spec = TrainingSpec.from_dict({"task": "classification", **TINY_BERT_SPEC, "epochs": 1})
    folder = tmp_path_factory.mktemp("tiny-artifact")
    recipe = Recipe(spec, train=sentiment_rows(32, seed=1), labels=["pos", "neg"], checkpoint_dir=folder / "ck",
                    registry=registry)
    recipe.setup()
    recipe.train()
    return recipe.save(folder / "artifact", snapshot_hash="0" * 64, metrics={})


@dataclass
class World:
    """A snapshot with runs in every state a permission check needs, built without training anything."""

    snapshot: Snapshot
    users: dict[str, Any]
    done: TrainingRun
    batch: PredictionBatch

    @property
    def project(self):
        return self.snapshot.project

    def queued(self) -> TrainingRun:
        return fake_run(self.snapshot, self.users["owner"])

    def cancelled_with_checkpoint(self) -> TrainingRun:
        run = fake_run(self.snapshot, self.users["owner"], status=RunStatus.CANCELLED)
        checkpoint = Path(settings.MEDIA_ROOT) / run.checkpoint_dir / "step-000003"
        checkpoint.mkdir(parents=True)
        (checkpoint / "state.json").write_text("{}")
        return run


def fake_run(snapshot: Snapshot, user, *, status: str = RunStatus.QUEUED, **fields) -> TrainingRun:
    """A run row in any state, with the tiny model's spec for the snapshot's task; nothing trains."""
    task = selectors.project_task(snapshot.project)
    spec = TrainingSpec.from_dict({"task": task, **(TINY_BERT_SPEC if task == "classification" else TINY_LLAMA_SPEC)})
    run = TrainingRun.objects.create(
        project=snapshot.project, snapshot=snapshot, snapshot_hash=snapshot.content_hash, task=spec.task,
        base_model=spec.base_model, spec=spec.to_dict(), created_by=user, status=status, **fields,
    )
    TrainingRun.objects.filter(pk=run.pk).update(checkpoint_dir=f"runs/{run.pk}/checkpoints")
    run.refresh_from_db()
    return run


FAKE_TEST_METRICS = {
    "n": 4, "accuracy": 0.75, "macro_f1": 0.73, "ece": 0.12, "loss": 0.5,
    "per_class": {"pos": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2},
                  "neg": {"precision": 0.667, "recall": 1.0, "f1": 0.8, "support": 2}},
    "confusion_matrix": {"labels": ["pos", "neg"], "matrix": [[1, 1], [0, 2]]},
    "baselines": {"majority": {"n": 4, "accuracy": 0.5, "macro_f1": 0.333, "ece": 0.0},
                  "logreg_embeddings": {"n": 4, "accuracy": 0.625, "macro_f1": 0.6, "ece": 0.2, "loss": 0.7}},
}


@pytest.fixture
def world(tiny_models, tiny_artifact, sentiment, owner, annotator, reviewer, outsider) -> World:
    users = {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}
    done = fake_run(sentiment, owner, status=RunStatus.SUCCEEDED, metrics={"test": FAKE_TEST_METRICS},
                    progress={"step": 10, "total_steps": 10, "phase": "done"})
    target = Path(settings.MEDIA_ROOT) / "runs" / str(done.pk) / "artifact"
    shutil.copytree(tiny_artifact, target)
    TrainingRun.objects.filter(pk=done.pk).update(artifact_dir=f"runs/{done.pk}/artifact")
    done.refresh_from_db()
    batch = PredictionBatch.objects.create(run=done, scope=PredictionScope.TEST, created_by=owner,
                                           status=PredictionStatus.SUCCEEDED)
    return World(snapshot=sentiment, users=users, done=done, batch=batch)
