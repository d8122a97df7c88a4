"""Fail training runs and imports whose process stopped (heartbeat lost); requeue queued runs, prediction batches,
noise scans, explanations, augmentations, suggestion runs and pending imports whose job was lost (Redis restarted
without its data).

Run it from cron, or once with --schedule to start the every-minute sweep job on the RQ scheduler
(a worker started with --with-scheduler moves it onto the "default" queue each minute).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from annotation.imports.services import imports_sweep
from annotation.quality.services import noise_scans_requeue_lost
from training.augment.services import augmentations_requeue_lost
from training.explanations.services import explanations_sweep
from training.runs import services
from training.suggestions.services import suggestion_runs_requeue_lost


class Command(BaseCommand):
    help = (
        "Mark runs and imports with a stale heartbeat failed (abandoned); requeue queued runs and pending imports "
        "whose RQ job is gone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-after", type=float, default=None,
            help="Seconds without a heartbeat before a run counts as abandoned (default: LABELLOOP_RUN_STALE_AFTER_S).",
        )
        parser.add_argument("--schedule", action="store_true", help="Also make sure the every-minute sweep job exists.")

    def handle(self, *args: object, stale_after: float | None, schedule: bool, **options: object) -> None:
        swept = services.runs_mark_abandoned(stale_after_s=stale_after)
        requeued = services.runs_requeue_lost()
        batches = services.prediction_batches_requeue_lost()
        scans = noise_scans_requeue_lost()
        augmentations = augmentations_requeue_lost()
        suggestion_runs = suggestion_runs_requeue_lost()
        imports_abandoned, imports_requeued = imports_sweep(stale_after_s=stale_after)
        explanations_abandoned, explanations_requeued = explanations_sweep()
        if schedule:
            services.runs_sweep_ensure()
        self.stdout.write(
            f"abandoned: {_ids(swept)}; requeued: {_ids(requeued)}; "
            f"imports abandoned: {_ids(imports_abandoned)}; imports requeued: {_ids(imports_requeued)}; "
            f"prediction batches requeued: {_ids(batches)}; noise scans requeued: {_ids(scans)}; "
            f"explanations abandoned: {_ids(explanations_abandoned)}; "
            f"explanations requeued: {_ids(explanations_requeued)}; "
            f"augmentations requeued: {_ids(augmentations)}; suggestion runs requeued: {_ids(suggestion_runs)}"
        )


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"
