"""Migration 0004 moves item splits from a column of annotation_item to annotation_itemsplit, both ways."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from annotation.models import ItemSplit
from tests.fixtures.people import add_items

BEFORE = ("annotation", "0003_next_round_settings")
AFTER = ("annotation", "0004_item_split_table")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def migrate_to_latest() -> None:
    """Back to every app's newest migration: later tests share this database and need all of its tables."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def column_splits(ids: list[int]) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, split FROM annotation_item")
        return {pk: split for pk, split in cursor.fetchall() if pk in ids}


@pytest.fixture(autouse=True)
def latest_schema_after():
    yield
    migrate_to_latest()


@pytest.mark.django_db(transaction=True)
def test_splits_survive_the_move_to_their_own_table_and_back(project):
    items = add_items(project, ["one more text", "and another one"])
    ids = sorted(item.pk for item in project.items.all())
    ItemSplit.objects.create(item_id=ids[0], split="test")
    ItemSplit.objects.create(item_id=ids[1], split="train")
    try:
        migrate(BEFORE)
        assert column_splits(ids) == {ids[0]: "test", ids[1]: "train", **{pk: "" for pk in ids[2:]}}
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE annotation_item SET split = 'train' WHERE id = %s", [ids[0]])
        with connection.cursor() as cursor:  # an item without a split may get one in 0003's schema
            cursor.execute("UPDATE annotation_item SET split = 'validation' WHERE id = %s", [items[0].pk])
    finally:
        migrate(AFTER)
    assert dict(ItemSplit.objects.values_list("item_id", "split")) == {
        ids[0]: "test", ids[1]: "train", items[0].pk: "validation"
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemSplit.objects.filter(item_id=ids[0]).update(split="train")
    # The items table lost the old split trigger with the column: updates still work. Only a column 0004 has
    # is written: later migrations add item columns (0008: extra_slots) this schema does not have yet.
    items[1].save(update_fields=["text"])
