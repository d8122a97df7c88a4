"""Queue the demo's first training run: the default LoRA recipe on the labelled demo project's snapshot.

`make demo` runs it after `load_demo`; the worker that `make demo` starts trains it, so the run page shows
live progress on first login and a finished run with its test figures and baselines a minute or two later.
Running it twice queues nothing new.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands.load_demo import DEMO_SNAPSHOT, LABELLED_PROJECT
from annotation.models import Snapshot
from training.models import TrainingRun
from training.runs.services import run_start
from training.spec import TASK_CLASSIFICATION, TrainingSpec

RUN_NAME = "Demo: MiniLM + LoRA"


class Command(BaseCommand):
    help = "Queue a training run on the labelled demo project's snapshot (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(username="owner").first()
        snapshot = (
            Snapshot.objects.filter(project__name=LABELLED_PROJECT, project__created_by=owner, name=DEMO_SNAPSHOT)
            .order_by("-pk")
            .first()
        )
        if owner is None or snapshot is None:
            raise CommandError(f"No {LABELLED_PROJECT!r} snapshot: run `manage.py load_demo` first.")
        if TrainingRun.objects.filter(snapshot=snapshot).exists():
            self.stdout.write(f"{LABELLED_PROJECT}: a run on snapshot {snapshot.pk} exists already")
            return
        spec = TrainingSpec.defaults(TASK_CLASSIFICATION).to_dict()
        run = run_start(snapshot=snapshot, user=owner, spec_data=spec, name=RUN_NAME)
        self.stdout.write(f"{LABELLED_PROJECT}: run {run.pk} queued on snapshot {snapshot.pk} ({run.base_model})")
