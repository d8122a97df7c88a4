"""Drive a running server's REST API with a simulated crowd: `manage.py simulate --base-url http://127.0.0.1:8000`.

The project, its users and their tokens are made here, through the services, in the database this command's
settings name, which must be the one the server at --base-url uses. The crowd then works over HTTP only and
the command prints throughput, latency per endpoint and the final labels' accuracy (annotation/simulate.py).
`--demo` leaves the labelled project behind for a demo (and runs until every item is done); otherwise the
project is archived at the end.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import simulate
from annotation.crowd import SMS, crowd_create, dataset_load, personas
from annotation.models import Project, RoutingPolicy
from annotation.projects.services import project_archive
from core.errors import ServiceError

DEMO_SECONDS = 24 * 3600  # a demo runs until nothing is left


class Command(BaseCommand):
    help = "Simulate annotators and reviewers over a labelled dataset against a running server's API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The server (same database).")
        parser.add_argument("--dataset", default=SMS, help="'sms' (the shipped SMS spam set) or a JSONL file.")
        parser.add_argument("--items", type=int, default=200, help="How many rows of the dataset to import.")
        parser.add_argument("--annotators", type=int, default=4)
        parser.add_argument("--reviewers", type=int, default=1)
        parser.add_argument("--overlap", type=int, default=2)
        parser.add_argument(
            "--routing", choices=RoutingPolicy.values, default=None,
            help="The project's routing policy (default: a new project's, adaptive).",
        )
        parser.add_argument("--error-rate", type=float, default=0.1, help="Annotators' mean error rate.")
        parser.add_argument("--reviewer-error-rate", type=float, default=0.03)
        parser.add_argument("--think", type=float, default=0.0, help="Mean seconds of thought per decision.")
        parser.add_argument("--seconds", type=float, default=120.0, help="Stop after this long (not with --demo).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default="Simulated crowd")
        parser.add_argument("--demo", action="store_true", help="Keep the labelled project; run until done.")

    def handle(self, *args: object, **o: Any) -> None:
        try:
            data = dataset_load(str(o["dataset"]), limit=int(o["items"]))
        except (ServiceError, OSError, ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
        labels = data.label_names
        seed = int(o["seed"])
        crowd = crowd_create(
            base_url=str(o["base_url"]),
            dataset=data,
            annotators=personas(
                prefix="sim-annotator", count=int(o["annotators"]), labels=labels,
                error_rate=float(o["error_rate"]), think_seconds=float(o["think"]), seed=seed,
            ),
            reviewers=personas(
                prefix="sim-reviewer", count=int(o["reviewers"]), labels=labels,
                error_rate=float(o["reviewer_error_rate"]), think_seconds=float(o["think"]), seed=seed + 1,
            ),
            overlap=int(o["overlap"]),
            name=str(o["name"]),
            routing_policy=o["routing"],
        )
        policy = Project.objects.values_list("routing_policy", flat=True).get(pk=crowd.project_id)
        self.stdout.write(
            f"project {crowd.project_id}: {len(data.texts)} items, {len(crowd.annotators)} annotators, "
            f"{len(crowd.reviewers)} reviewers, {policy} routing, against {crowd.base_url}"
        )
        seconds = DEMO_SECONDS if o["demo"] else float(o["seconds"])
        try:
            result = simulate.run(crowd, seconds=seconds, seed=seed)
        except (OSError, RuntimeError) as exc:
            raise CommandError(f"The server at {crowd.base_url} did not answer as expected: {exc}") from exc
        self.stdout.write(simulate.report(result))
        if not o["demo"]:
            project_archive(project=Project.objects.get(pk=crowd.project_id))
        else:
            self.stdout.write(f"Demo project {crowd.project_id} kept; owner 'sim-owner' (manage.py create_token).")
