"""What each event's `data` holds (docs/webhooks.md), built where the event happens and emitted after commit.

Training's rows are read by attribute (runs and rounds are training's tables; annotation does not import them).
"""

from __future__ import annotations

from typing import Any

from annotation.models import ImportJob, ImportStatus, Snapshot, WebhookEvent
from annotation.webhooks.services import event_emit, items_approved

__all__ = ["import_finished", "items_approved", "round_started", "run_finished", "snapshot_created"]

RUN_EVENTS = {
    "succeeded": WebhookEvent.RUN_SUCCEEDED,
    "failed": WebhookEvent.RUN_FAILED,
    "cancelled": WebhookEvent.RUN_CANCELLED,
}
ERRORS_SHOWN = 5


def import_finished(*, job: ImportJob) -> None:
    if job.status not in (ImportStatus.SUCCEEDED, ImportStatus.FAILED):
        return
    event = WebhookEvent.IMPORT_SUCCEEDED if job.status == ImportStatus.SUCCEEDED else WebhookEvent.IMPORT_FAILED
    data = {
        "import": {
            "id": job.pk,
            "file_name": job.file_name,
            "status": job.status,
            "labels_as": job.labels_as,
            "rows_read": job.rows_read,
            "rows_imported": job.rows_imported,
            "errors": list(job.errors or [])[:ERRORS_SHOWN],
            "error_count": len(job.errors or []),
            "finished_at": job.finished_at,
        }
    }
    event_emit(project_id=job.project_id, event=event, data=data)


def snapshot_created(*, snapshot: Snapshot) -> None:
    data = {
        "snapshot": {
            "id": snapshot.pk,
            "name": snapshot.name,
            "content_hash": snapshot.content_hash,
            "item_count": snapshot.item_count,
            "created_at": snapshot.created_at,
        }
    }
    event_emit(project_id=snapshot.project_id, event=WebhookEvent.SNAPSHOT_CREATED, data=data)


def run_finished(*, run: Any, status: str) -> None:
    """A training run ended: succeeded, failed or cancelled (`run` is a training.models.TrainingRun)."""
    event = RUN_EVENTS.get(status)
    if event is None:
        return
    data = {
        "run": {
            "id": run.pk,
            "name": run.name,
            "status": status,
            "base_model": run.base_model,
            "snapshot_id": run.snapshot_id,
            "metrics": run.metrics if status == "succeeded" else {},
            "error": (run.error or "")[:1000] if status == "failed" else "",
        }
    }
    event_emit(project_id=run.project_id, event=event, data=data)


def round_started(*, round: Any, previous: Any | None = None) -> None:
    """A new annotation round opened (`round` is a training.models.Round)."""
    data = {
        "round": {
            "id": round.pk,
            "number": round.number,
            "started_at": round.started_at,
            "previous_round_id": previous.pk if previous is not None else None,
        }
    }
    event_emit(project_id=round.project_id, event=WebhookEvent.ROUND_STARTED, data=data)
