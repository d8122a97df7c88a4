"""Reads of items as data: the filtered items list and the streamed all-items export, with split and final value.

Blind promise: both are for owners and reviewers only (the APIs check the role). An owner also annotates, so
an item the caller could still annotate shows no final value to them, in the list and in the export alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Case, Exists, F, JSONField, OuterRef, Q, QuerySet, Subquery, Value, When

from annotation.models import Decision, Item, ItemStatus, Project
from annotation.permissions import ANNOTATE
from annotation.review.selectors import still_annotatable

# Rows fetched per round trip while streaming the export: memory stays flat whatever the project's size.
EXPORT_CHUNK_SIZE = 2000


def _with_final_value(items: QuerySet[Item], *, viewer: User, role: str) -> tuple[QuerySet[Item], Q]:
    """Items annotated with `split` and `final_value` (the latest decision of an approved item), and the
    condition under which an item shows a final value to this viewer."""
    latest = Decision.objects.filter(item=OuterRef("pk")).order_by("-created_at", "-id").values("value")[:1]
    shown: Q = Q(status=ItemStatus.APPROVED) & Q(Exists(Decision.objects.filter(item=OuterRef("pk"))))
    if role in ANNOTATE:
        shown &= ~still_annotatable(user=viewer)
    items = items.annotate(
        split=F("split_row__split"),
        final_value=Case(When(shown, then=Subquery(latest)), default=Value(None), output_field=JSONField()),
    )
    return items, shown


def item_list(
    *,
    project: Project,
    viewer: User,
    role: str,
    status: str | None = None,
    split: str | None = None,
    has_final_value: bool | None = None,
    external_id: str | None = None,
    group_key: str | None = None,
    q: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Item]:
    """The project's items in id order, each with its split and final value; every filter is optional."""
    items, shown = _with_final_value(Item.objects.filter(project=project), viewer=viewer, role=role)
    conditions = {
        "status": status,
        "split_row__split": split,
        "external_id": external_id,
        "group_key": group_key,
        "text__icontains": q,
        "created_at__gte": created_after,
        "created_at__lt": created_before,
    }
    items = items.filter(**{lookup: value for lookup, value in conditions.items() if value is not None})
    if has_final_value is not None:
        items = items.filter(shown) if has_final_value else items.exclude(shown)
    return items.order_by("pk")


def item_get(*, project: Project, viewer: User, role: str, item_id: int) -> Item | None:
    return item_list(project=project, viewer=viewer, role=role).filter(pk=item_id).first()


def items_export_rows(*, project: Project, viewer: User, role: str) -> Iterator[dict[str, Any]]:
    """Every item of the project, one dict per JSONL line, read in chunks (constant memory)."""
    fields = (
        "pk", "external_id", "text", "response", "metadata", "group_key", "status", "split", "final_value",
        "created_at",
    )
    rows = item_list(project=project, viewer=viewer, role=role).values_list(*fields)
    for pk, external_id, text, response, metadata, group_key, status, split, final, created_at in rows.iterator(
        chunk_size=EXPORT_CHUNK_SIZE
    ):
        yield {
            "item_id": pk,
            "external_id": external_id,
            "text": text,
            "response": response,
            "metadata": metadata,
            "group_key": group_key,
            "status": status,
            "split": split,
            "final_value": final,
            "created_at": created_at.isoformat(),
        }
