"""Claiming items and submitting annotations under the overlap promise.

Every item is annotated by exactly `project.overlap` distinct annotators, whatever the concurrency:
- a slot is taken by a conditional UPDATE (`slots_taken < overlap`); its rowcount says who won;
- `Claim(item, annotator)` is unique, so an annotator holds at most one slot of an item, ever;
- `Annotation(item, annotator, status=submitted)` is unique: a submission sent twice is stored once;
- on PostgreSQL the candidate row is locked with SKIP LOCKED so concurrent annotators fan out;
  SQLite runs write transactions one at a time (IMMEDIATE), which gives the same guarantee.
Every function runs a constant number of queries, whatever the size of the project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, Model, OuterRef, Value, When
from django.utils import timezone

from annotation.annotate.selectors import claim_active_get
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Draft,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Item,
    ItemStatus,
    Project,
)
from annotation.review import services as reviews
from annotation.tasktypes import InvalidValue
from core.errors import ServiceError, StateConflict

_M = TypeVar("_M", bound=Model)

DRAFT_NOT_HELD = "Not saved: you no longer hold this item."

CLAIM_ATTEMPTS = 5


# An item can be taken back by its annotator until a reviewer decides on it or it is approved;
# an undo while it waits in review withdraws its review task (see services/reviews.py).


UNDOABLE_STATUSES = (ItemStatus.IN_ANNOTATION, ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW)


EXPIRY_SWEEP_BATCH = 200


LEASE_LOST = (
    "Your lease on this item expired and other annotators took its places. Your draft is kept; "
    "press Next for another item."
)


NOT_YOUR_CLAIM = "You do not hold this item."


ALREADY_SKIPPED = "You skipped this item."


NOTHING_TO_UNDO = "There is no submission to undo."


UNDO_TOO_LATE = "This submission has been reviewed and can no longer be undone."


SKIP_REASON_REQUIRED = "Say why you skip this item."


GUIDELINES_NOT_ACKNOWLEDGED = "Read and acknowledge the current guidelines first."


# (current guideline version or None, whether the user still has to acknowledge it)
GuidelineState = tuple[GuidelineVersion | None, bool]


@dataclass(frozen=True)
class NextItem:
    """What the annotate page needs: the claim (with its item) or why there is none.

    `fresh` means the claim was just made: the annotator never held this item, so no draft can exist.
    """

    claim: Claim | None
    guideline: GuidelineVersion | None
    needs_ack: bool
    fresh: bool = False

    @property
    def item(self) -> Item | None:
        return self.claim.item if self.claim else None


def _take_slot(*, item_id: int, overlap: int) -> bool:
    """Take one overlap slot of an item; False when it was already full. One query."""
    return bool(
        Item.objects.filter(pk=item_id, slots_taken__lt=F("extra_slots") + overlap).update(
            slots_taken=F("slots_taken") + 1,
            is_open=Case(
                When(slots_taken__lt=F("extra_slots") + (overlap - 1), then=Value(True)), default=Value(False)
            ),
            status=Case(When(status=ItemStatus.NEW, then=Value(ItemStatus.IN_ANNOTATION)), default=F("status")),
        )
    )


def _give_back_slots(*, item_ids: list[int], overlap: int) -> None:
    """Return one slot per listed item id (ids may repeat). Queries: one per distinct repeat count."""
    counts: dict[int, int] = {}
    for item_id in item_ids:
        counts[item_id] = counts.get(item_id, 0) + 1
    by_count: dict[int, list[int]] = {}
    for item_id, n in counts.items():
        by_count.setdefault(n, []).append(item_id)
    for n, ids in by_count.items():
        Item.objects.filter(pk__in=ids).update(slots_taken=F("slots_taken") - n, is_open=Value(True))


def guideline_state(*, user: User, project: Project) -> GuidelineState:
    """(current guideline version, whether the user still has to acknowledge it). One query."""
    current = (
        GuidelineVersion.objects.filter(project=project)
        .annotate(acked=Exists(GuidelineAcknowledgement.objects.filter(guideline_version=OuterRef("pk"), user=user)))
        .order_by("-version")
        .first()
    )
    if current is None:
        return None, False
    return current, not current.acked


def claims_release_expired(*, project: Project, now: dt.datetime | None = None, limit: int = EXPIRY_SWEEP_BATCH) -> int:
    """Return expired leases' slots to the pool. Submitted work is never touched: only active claims expire."""
    now = now or timezone.now()
    expired = Claim.objects.filter(project=project, status=ClaimStatus.ACTIVE, lease_expires_at__lt=now)
    if not expired.exists():  # the usual case, answered from a partial index without a write transaction
        return 0
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            expired = expired.select_for_update(skip_locked=True)
        rows = list(expired.values_list("pk", "item_id")[:limit])
        if not rows:
            return 0
        Claim.objects.filter(pk__in=[pk for pk, _ in rows], status=ClaimStatus.ACTIVE).update(
            status=ClaimStatus.EXPIRED, finished_at=now
        )
        _give_back_slots(item_ids=[item_id for _, item_id in rows], overlap=project.overlap)
    return len(rows)


# Each process sweeps a project's expired leases at most this often while handing out items (and always before
# it answers "nothing left"): a lease is minutes long, so a few seconds' delay changes nothing, and the sweep's
# query leaves the claim path. Keyed by `now`, so a caller passing a later moment (a test) gets its sweep.
EXPIRY_SWEEP_EVERY = dt.timedelta(seconds=5)
_last_sweep: dict[int, dt.datetime] = {}
_last_sweep_lock = threading.Lock()


def _sweep_due(*, project: Project, now: dt.datetime) -> bool:
    with _last_sweep_lock:
        last = _last_sweep.get(project.pk)
        if last is not None and dt.timedelta(0) <= now - last < EXPIRY_SWEEP_EVERY:
            return False
        _last_sweep[project.pk] = now
        return True


def claim_next(
    *,
    annotator: User,
    project: Project,
    now: dt.datetime | None = None,
    guideline: GuidelineState | None = None,
) -> NextItem:
    """The annotator's current claim, or a newly claimed item; None when nothing is left for them.

    `guideline` is the caller's `guideline_state` when it has one already (saves a query in the loop).
    On PostgreSQL the held claim is looked up and a new one made in one statement (`_claim_statement`).
    """
    now = now or timezone.now()
    version, needs_ack = guideline or guideline_state(user=annotator, project=project)
    if needs_ack:
        return NextItem(claim=None, guideline=version, needs_ack=True)

    one_statement = connection.vendor == "postgresql"
    if not one_statement:
        current = _held(annotator=annotator, project=project, now=now)
        if current is not None:
            return NextItem(claim=current, guideline=version, needs_ack=False)

    swept = _sweep_due(project=project, now=now)
    if swept:
        claims_release_expired(project=project, now=now)
    for _attempt in range(CLAIM_ATTEMPTS):
        if one_statement:
            claim, fresh = _claim_statement(annotator=annotator, project=project, now=now)
            if claim is not None:
                return NextItem(claim=claim, guideline=version, needs_ack=False, fresh=fresh)
            # No row: nothing left, or the candidate was taken under us (a row lock re-check): look again.
            found = _candidates(annotator=annotator, project=project).exists()
        else:
            claim, found = _claim_one(annotator=annotator, project=project, now=now)
            if claim is not None:
                return NextItem(claim=claim, guideline=version, needs_ack=False, fresh=True)
        if not found:
            if swept or not claims_release_expired(project=project, now=now):
                break
            swept = True  # expired leases went back just now: one more look
    return NextItem(claim=None, guideline=version, needs_ack=False)


def _held(*, annotator: User, project: Project, now: dt.datetime) -> Claim | None:
    return (
        Claim.objects.select_related("item")
        .filter(annotator=annotator, project=project, status=ClaimStatus.ACTIVE, lease_expires_at__gt=now)
        .order_by("claimed_at")
        .first()
    )


def _candidates(*, annotator: User, project: Project):
    mine = Claim.objects.filter(item=OuterRef("pk"), annotator=annotator)
    return Item.objects.filter(project=project, is_open=True).filter(~Exists(mine)).order_by("-priority", "pk")


def _claim_one(*, annotator: User, project: Project, now: dt.datetime) -> tuple[Claim | None, bool]:
    """(claim, whether a candidate was found): a found candidate without a claim lost a race."""
    with transaction.atomic():
        candidates = _candidates(annotator=annotator, project=project)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        item = candidates.first()
        if item is None:
            return None, False
        if not _take_slot(item_id=item.pk, overlap=project.overlap):
            return None, True  # filled between our read and our update; try the next one
        try:
            with transaction.atomic():
                claim = Claim.objects.create(
                    item=item,
                    project=project,
                    annotator=annotator,
                    claimed_at=now,
                    lease_expires_at=now + dt.timedelta(seconds=project.lease_seconds),
                )
        except IntegrityError:
            # The unique (item, annotator) backstop: give the slot back and let the caller try again.
            _give_back_slots(item_ids=[item.pk], overlap=project.overlap)
            return None, True
    item.slots_taken += 1
    claim.item = item
    return claim, True


def _columns(model: type[Model], prefix: str) -> str:
    return ", ".join(f"{prefix}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


def _from_row(model: type[_M], values: Sequence[Any]) -> _M:
    """A model instance from raw columns (in `concrete_fields` order), converted as the ORM would."""
    fields = model._meta.concrete_fields
    converted = [_convert(model, f.name, value) for f, value in zip(fields, values, strict=True)]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


@functools.cache
def _claim_sql() -> str:
    """PostgreSQL: the caller's live claim if they hold one, else a new one, in one statement.

    `candidate` locks the first open item the annotator never claimed (SKIP LOCKED: concurrent annotators fan
    out), `taken` is `_take_slot` (READ COMMITTED re-checks `slots_taken < overlap` on the row's latest
    version), `claimed` inserts the claim; the unique (item, annotator) constraint fails the whole statement,
    slot included. Every column of the claim is written here: adding one to the model fails this loudly.
    """
    q = connection.ops.quote_name
    item, claim = Item._meta.db_table, Claim._meta.db_table
    inserted = [f for f in Claim._meta.concrete_fields if not f.primary_key]
    values = {
        "item_id": "taken.id",
        "project_id": "%(project)s",
        "annotator_id": "%(annotator)s",
        "status": "%(active)s",
        "claimed_at": "%(now)s",
        "lease_expires_at": "%(expires)s",
        "finished_at": "NULL",
        "skip_reason": "''",
    }
    if {f.column for f in inserted} != set(values):
        raise ImproperlyConfigured(f"_claim_sql writes {sorted(values)}, the Claim model has other columns")
    return f"""
        WITH held AS (
            SELECT {_columns(Claim, claim)} FROM {claim}
            WHERE annotator_id = %(annotator)s AND project_id = %(project)s AND status = %(active)s
              AND lease_expires_at > %(now)s
            ORDER BY claimed_at LIMIT 1
        ), candidate AS (
            SELECT i.id FROM {item} i
            WHERE NOT EXISTS (SELECT 1 FROM held) AND i.project_id = %(project)s AND i.is_open
              AND NOT EXISTS (SELECT 1 FROM {claim} c WHERE c.item_id = i.id AND c.annotator_id = %(annotator)s)
            ORDER BY i.priority DESC, i.id
            LIMIT 1 FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE {item} SET slots_taken = {item}.slots_taken + 1,
                is_open = {item}.slots_taken + 1 < %(overlap)s + {item}.extra_slots,
                status = CASE WHEN {item}.status = %(new)s THEN %(in_annotation)s ELSE {item}.status END
            FROM candidate WHERE {item}.id = candidate.id AND {item}.slots_taken < %(overlap)s + {item}.extra_slots
            RETURNING {_columns(Item, item)}
        ), claimed AS (
            INSERT INTO {claim} ({", ".join(q(f.column) for f in inserted)})
            SELECT {", ".join(values[f.column] for f in inserted)} FROM taken
            RETURNING {_columns(Claim, claim)}
        )
        SELECT held.*, {_columns(Item, "i")}, false FROM held JOIN {item} i ON i.id = held.item_id
        UNION ALL
        SELECT claimed.*, taken.*, true FROM claimed CROSS JOIN taken
    """  # noqa: S608 - table and column names from the models, values as parameters


def _claim_statement(*, annotator: User, project: Project, now: dt.datetime) -> tuple[Claim | None, bool]:
    """(the held or new claim with its item, whether it is new); (None, False) when the statement made none."""
    params: dict[str, Any] = {
        "annotator": annotator.pk,
        "project": project.pk,
        "overlap": project.overlap,
        "now": now,
        "expires": now + dt.timedelta(seconds=project.lease_seconds),
        "active": ClaimStatus.ACTIVE.value,
        "new": ItemStatus.NEW.value,
        "in_annotation": ItemStatus.IN_ANNOTATION.value,
    }
    # A failed statement aborts an enclosing transaction: inside one, a savepoint keeps it usable.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(_claim_sql(), params)
            row = cursor.fetchone()
    except IntegrityError:
        return None, False  # the same annotator claimed this item in a parallel request: look again
    if row is None:
        return None, False
    n_claim = len(Claim._meta.concrete_fields)
    claim = _from_row(Claim, row[:n_claim])
    claim.item = _from_row(Item, row[n_claim:-1])
    return claim, bool(row[-1])


def _claim_for(*, annotator: User, item: Item) -> Claim:
    claim = Claim.objects.filter(item=item, annotator=annotator).first()
    if claim is None:
        raise ServiceError(NOT_YOUR_CLAIM)
    return claim


def annotation_submit(
    *,
    annotator: User,
    item: Item,
    value: dict[str, Any],
    label_names: list[str],
    unsure: bool = False,
    note: str = "",
    now: dt.datetime | None = None,
    guideline: GuidelineState | None = None,
) -> Annotation:
    """Store the annotator's label for an item they hold. Idempotent: a repeat returns the stored one."""
    project = item.project
    now = now or timezone.now()
    try:
        value = project.value_normalise(value, label_names, text=item.text)
    except InvalidValue as exc:
        raise ServiceError(str(exc), field=exc.field) from exc
    version, needs_ack = guideline or guideline_state(user=annotator, project=project)
    if needs_ack:
        raise ServiceError(GUIDELINES_NOT_ACKNOWLEDGED, field="guidelines")

    try:
        with transaction.atomic():
            claimed_at = _claim_submitted(annotator=annotator, item=item, now=now)
            if claimed_at is None:  # not an active claim: a repeat, a late submission, or nothing to submit
                claim = _claim_for(annotator=annotator, item=item)
                if claim.status == ClaimStatus.SUBMITTED:
                    existing = _submitted(annotator=annotator, item=item)
                    if existing is not None:
                        return existing  # the same submission, sent twice
                if claim.status != ClaimStatus.EXPIRED:
                    raise ServiceError(ALREADY_SKIPPED if claim.status == ClaimStatus.SKIPPED else NOT_YOUR_CLAIM)
                # The lease expired and its slot went back: a late submission counts if a slot is still free.
                if not _take_slot(item_id=item.pk, overlap=project.overlap):
                    raise _LeaseLost
                if not Claim.objects.filter(pk=claim.pk, status=ClaimStatus.EXPIRED).update(
                    status=ClaimStatus.SUBMITTED, finished_at=now
                ):
                    raise ServiceError(NOT_YOUR_CLAIM)  # a parallel request changed it: its answer stands
                claimed_at = claim.claimed_at
            annotation = Annotation.objects.create(
                item=item,
                annotator=annotator,
                value=value,
                unsure=unsure,
                note=note.strip(),
                guideline_version=version,
                seconds_spent=max(0.0, (now - claimed_at).total_seconds()),
            )
            Draft.objects.filter(item=item, annotator=annotator).delete()
            if _count_submission(item=item, overlap=project.overlap) == ItemStatus.ANNOTATED:
                reviews.item_route(item=item)
    except _LeaseLost:
        # Outside the rolled-back transaction, so the annotator's work survives as a draft.
        draft_save(annotator=annotator, item=item, value=value, unsure=unsure, note=note)
        raise ServiceError(LEASE_LOST) from None
    return annotation


class _LeaseLost(Exception):
    pass


def annotation_submit_and_next(
    *,
    annotator: User,
    item: Item,
    value: dict[str, Any],
    label_names: list[str],
    unsure: bool = False,
    note: str = "",
    now: dt.datetime | None = None,
) -> tuple[Annotation, NextItem]:
    """The annotate loop's one round trip: store this label, then hand out the next item."""
    state = guideline_state(user=annotator, project=item.project)
    annotation = annotation_submit(
        annotator=annotator,
        item=item,
        value=value,
        label_names=label_names,
        unsure=unsure,
        note=note,
        now=now,
        guideline=state,
    )
    return annotation, claim_next(annotator=annotator, project=item.project, now=now, guideline=state)


def _claim_submitted(*, annotator: User, item: Item, now: dt.datetime) -> dt.datetime | None:
    """Mark the annotator's active claim on the item submitted; its `claimed_at`, or None when there was none.

    One conditional UPDATE ... RETURNING (PostgreSQL and SQLite): the usual submission's only claim query.
    """
    table = Claim._meta.db_table
    sql = (
        f"UPDATE {table} SET status = %s, finished_at = %s "  # noqa: S608 - the model's table, values as parameters
        "WHERE item_id = %s AND annotator_id = %s AND status = %s RETURNING claimed_at"
    )
    finished = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [ClaimStatus.SUBMITTED.value, finished, item.pk, annotator.pk, ClaimStatus.ACTIVE.value])
        row = cursor.fetchone()
    return None if row is None else _convert(Claim, "claimed_at", row[0])


def _count_submission(*, item: Item, overlap: int) -> str:
    """Count one submission on the item; its new status (annotated once `overlap` plus its extra slots are in).

    An item approved while this claim was out (a reviewer corrected the model's output for it) stays approved:
    the annotation still counts, the final value stays.
    """
    table = Item._meta.db_table
    sql = (
        f"UPDATE {table} SET submitted_count = submitted_count + 1, status = CASE "  # noqa: S608 - as above
        "WHEN status = %s THEN status WHEN submitted_count >= %s + extra_slots THEN %s ELSE %s END "
        "WHERE id = %s RETURNING status"
    )
    statuses = [ItemStatus.APPROVED.value, ItemStatus.ANNOTATED.value, ItemStatus.IN_ANNOTATION.value]
    params: list[Any] = [statuses[0], overlap - 1, statuses[1], statuses[2], item.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (status,) = cursor.fetchone()
    return status


def _convert(model: type[Model], name: str, value: Any) -> Any:
    """A raw column value as the ORM would return it (SQLite hands back datetimes as text)."""
    field: Any = model._meta.get_field(name)  # a concrete field (the stubs lack get_db_converters)
    column = field.get_col(model._meta.db_table)
    for convert in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
        value = convert(value, column, connection)
    return value


def _submitted(*, annotator: User, item: Item) -> Annotation | None:
    return Annotation.objects.filter(item=item, annotator=annotator, status=AnnotationStatus.SUBMITTED).first()


def claim_skip(*, annotator: User, item: Item, reason: str, now: dt.datetime | None = None) -> Claim:
    """Give the item back to the pool; the annotator will not be offered it again."""
    reason = reason.strip()
    if not reason:
        raise ServiceError(SKIP_REASON_REQUIRED, field="reason")
    now = now or timezone.now()
    with transaction.atomic():
        claim = _claim_for(annotator=annotator, item=item)
        was_active = claim.status == ClaimStatus.ACTIVE
        if claim.status not in (ClaimStatus.ACTIVE, ClaimStatus.EXPIRED):
            raise ServiceError(f"This item is already {claim.status}.")
        Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.SKIPPED, skip_reason=reason[:500], finished_at=now)
        if was_active:
            _give_back_slots(item_ids=[item.pk], overlap=item.project.overlap)
        Draft.objects.filter(item=item, annotator=annotator).delete()
    claim.status = ClaimStatus.SKIPPED
    claim.skip_reason = reason
    return claim


def annotation_undo(*, annotator: User, project: Project, now: dt.datetime | None = None) -> Claim:
    """Retract the annotator's latest submission while nobody has reviewed it; the item is theirs again.

    The retracted row stays (status=retracted) and its value becomes the draft, so nothing is lost.
    """
    now = now or timezone.now()
    with transaction.atomic():
        last = (
            Annotation.objects.select_related("item")
            .filter(annotator=annotator, item__project=project, status=AnnotationStatus.SUBMITTED)
            .order_by("-created_at", "-pk")
            .first()
        )
        if last is None:
            raise ServiceError(NOTHING_TO_UNDO)
        item = last.item
        if item.status not in UNDOABLE_STATUSES:
            raise ServiceError(UNDO_TOO_LATE)
        in_review = item.status == ItemStatus.IN_REVIEW
        if in_review and not reviews.review_withdraw(item=item, since=last.created_at, now=now):
            raise ServiceError(UNDO_TOO_LATE)
        undone = Annotation.objects.filter(pk=last.pk, status=AnnotationStatus.SUBMITTED).update(
            status=AnnotationStatus.RETRACTED, retracted_at=now
        )
        if not undone:
            raise ServiceError(NOTHING_TO_UNDO)
        Claim.objects.filter(item=item, annotator=annotator).update(
            status=ClaimStatus.ACTIVE,
            claimed_at=now,
            lease_expires_at=now + dt.timedelta(seconds=project.lease_seconds),
            finished_at=None,
        )
        Item.objects.filter(pk=item.pk).update(
            submitted_count=F("submitted_count") - 1, status=ItemStatus.IN_ANNOTATION
        )
        Draft.objects.update_or_create(
            item=item, annotator=annotator, defaults={"value": last.value, "unsure": last.unsure, "note": last.note}
        )
        claim = Claim.objects.select_related("item").get(item=item, annotator=annotator)
    return claim


def draft_save(*, annotator: User, item: Item, value: dict[str, Any], unsure: bool = False, note: str = "") -> Draft:
    """Autosave: keep whatever the annotator has so far, valid or not yet."""
    if not isinstance(value, dict):
        raise ServiceError("A draft value must be a JSON object.", field="value")
    draft, _ = Draft.objects.update_or_create(
        item=item, annotator=annotator, defaults={"value": value, "unsure": unsure, "note": note[:5000]}
    )
    return draft


# Rows per executemany batch when a round re-orders the queue: 100k items in seconds, bounded memory.


QUEUE_WRITE_BATCH = 5000


def _item_column_write(*, project: Project, column: str, rows: Iterable[tuple[Any, int]]) -> int:
    """UPDATE item SET <column> = %s WHERE id = %s AND project_id = %s, in executemany batches."""
    value = "CAST(%s AS jsonb)" if column == "prelabel" and connection.vendor == "postgresql" else "%s"
    table = Item._meta.db_table
    sql = f"UPDATE {table} SET {column} = {value} WHERE id = %s AND project_id = %s"  # noqa: S608 - model names
    written = 0
    batch: list[tuple[Any, int, int]] = []
    with connection.cursor() as cursor:
        for cell, item_id in rows:
            batch.append((cell, item_id, project.pk))
            if len(batch) >= QUEUE_WRITE_BATCH:
                cursor.executemany(sql, batch)
                written += len(batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
    return written


def item_priorities_set(*, project: Project, priorities: Iterable[tuple[float, int]]) -> int:
    """Set the annotation queue's order: (priority, item id) pairs, higher is labelled first. Returns how many."""
    return _item_column_write(project=project, column="priority", rows=priorities)


def item_prelabels_set(*, project: Project, prelabels: Iterable[tuple[dict[str, Any], int]]) -> int:
    """Set model pre-labels, (value, item id) pairs: suggestions shown only under `show_prelabels`."""
    return _item_column_write(
        project=project, column="prelabel", rows=((json.dumps(value), item_id) for value, item_id in prelabels)
    )


def item_prelabels_clear(*, project: Project, item_ids: Iterable[int]) -> int:
    """Remove pre-labels (an owner turned a source of them off). Returns how many items changed."""
    ids = list(item_ids)
    cleared = 0
    for start in range(0, len(ids), QUEUE_WRITE_BATCH):
        cleared += Item.objects.filter(project=project, pk__in=ids[start : start + QUEUE_WRITE_BATCH]).update(
            prelabel=None
        )
    return cleared


def draft_autosave(
    *, annotator: User, item: Item, value: dict[str, Any], unsure: bool = False, note: str = ""
) -> Draft:
    """The annotate page's and the API's autosave: only while the annotator holds the item (409 after)."""
    if claim_active_get(user=annotator, project=item.project, item_id=item.pk) is None:
        raise StateConflict(DRAFT_NOT_HELD)
    return draft_save(annotator=annotator, item=item, value=value, unsure=unsure, note=note)


def annotations_import(
    *,
    project: Project,
    annotator: User,
    guideline_version: GuidelineVersion | None,
    rows: Sequence[tuple[int, dict[str, Any]]],
    note: str,
) -> int:
    """Record labels from a file as one submitted annotation each, on items the same import just wrote.

    The import takes one overlap slot of each item: people annotate the rest blind (the value is not kept
    as a pre-label), and the usual routing (agreement, review) runs once the overlap is full.
    """
    if not rows:
        return 0
    Annotation.objects.bulk_create(
        Annotation(item_id=item_id, annotator=annotator, value=value, note=note, guideline_version=guideline_version)
        for item_id, value in rows
    )
    full = project.overlap <= 1
    ids = [item_id for item_id, _ in rows]
    Item.objects.filter(pk__in=ids, status=ItemStatus.NEW).update(
        prelabel=None,
        slots_taken=1,
        submitted_count=1,
        is_open=not full,
        status=ItemStatus.ANNOTATED if full else ItemStatus.IN_ANNOTATION,
    )
    if full:
        for item in Item.objects.filter(pk__in=ids).select_related("project"):
            reviews.item_route(item=item)
    return len(rows)
