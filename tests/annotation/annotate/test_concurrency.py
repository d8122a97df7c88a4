"""The overlap promise under real concurrency: many threads claim and submit at once.

Runs on whichever database the suite uses; CI runs it on PostgreSQL (row locks, SKIP LOCKED) and on SQLite
(IMMEDIATE write transactions). Every item must end with exactly `overlap` distinct annotators and every
accepted submission must be stored.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import OperationalError, connection, connections

from annotation.annotate import services as svc
from annotation.models import Annotation, AnnotationStatus, Item, Project, Role
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

N_THREADS = 8
# The full size runs where row locking is real (PostgreSQL); SQLite serialises writers, so a smaller
# project exercises the same code paths without minutes of lock waiting.
N_ITEMS = {"postgresql": 1000}.get(connection.vendor, 150)
LABELS = ["yes", "no"]


def _annotate_until_done(user, project: Project, accepted: list, errors: list) -> None:
    try:
        while True:
            try:
                nxt = svc.claim_next(annotator=user, project=project)
                if nxt.claim is None:
                    return
                ann = svc.annotation_submit(
                    annotator=user, item=nxt.item, value={"label": LABELS[nxt.item.pk % 2]}, label_names=LABELS
                )
                accepted.append(ann.pk)
            except OperationalError as exc:  # SQLite "database is locked" past its timeout: retry, like a client would
                if "locked" not in str(exc):
                    raise
    except Exception as exc:  # surfaced by the test, not swallowed
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_eight_annotators_at_once_give_every_item_exactly_two(db):
    n_items = N_ITEMS
    owner = make_user("owner")
    project = project_create(owner=owner, name="Race", labels=LABELS, overlap=2, guidelines="Pick one.")
    add_items(project, [f"text {i}" for i in range(n_items)])
    users = [make_user(f"ann{i}") for i in range(N_THREADS)]
    for user in users:
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    acknowledge_guidelines(project, *users)

    accepted: list[int] = []
    errors: list[Exception] = []
    threads = [threading.Thread(target=_annotate_until_done, args=(u, project, accepted, errors)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors[:3]

    stored = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    assert stored.count() == len(accepted) == n_items * 2, "a submission was lost or stored twice"
    per_item = Counter(stored.values_list("item_id", flat=True))
    assert set(per_item.values()) == {2}
    pairs = set(stored.values_list("item_id", "annotator_id"))
    assert len(pairs) == n_items * 2, "an annotator annotated an item twice"
    assert not Item.objects.filter(project=project, is_open=True).exists()
    assert set(Item.objects.filter(project=project).values_list("slots_taken", "submitted_count").distinct()) == {
        (2, 2)
    }
    # Work was shared, not done by one thread while others waited.
    by_user = Counter(stored.values_list("annotator_id", flat=True))
    assert len(by_user) == N_THREADS
    print(f"{connection.vendor}: {dict(sorted(Counter(by_user.values()).items()))}")
