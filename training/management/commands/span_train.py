"""Train a span model on a span snapshot, print its entity-level test figures beside the gazetteer baseline,
and (with --prelabel) pre-annotate the items still to annotate with its spans."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Snapshot
from core.errors import ServiceError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("snapshot_id", type=int)
        parser.add_argument("--base-model", default="minilm")
        parser.add_argument("--epochs", type=int, default=5)
        parser.add_argument("--learning-rate", type=float, default=2e-3)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--prelabel", action="store_true", help="Pre-annotate the project's new items.")

    def handle(self, *args: Any, **options: Any) -> None:
        from training.runs.span_training import span_model_train, span_prelabels_write

        snapshot = Snapshot.objects.select_related("project").filter(pk=options["snapshot_id"]).first()
        if snapshot is None:
            raise CommandError(f"No snapshot {options['snapshot_id']}.")
        try:
            result = span_model_train(
                snapshot=snapshot,
                base_model=options["base_model"],
                epochs=options["epochs"],
                learning_rate=options["learning_rate"],
                seed=options["seed"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Adapter saved in {result.artifact_dir}")
        self.stdout.write(json.dumps({"rows": result.rows, **result.metrics}, indent=2, default=str))
        if options["prelabel"]:
            written = span_prelabels_write(project=snapshot.project, recipe=result.recipe)
            self.stdout.write(f"Pre-annotated {written} new items with the model's spans.")
