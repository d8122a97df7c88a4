"""Snapshots: splits assigned once, canonical JSONL hashed while streamed, immutable rows, downloads, compare."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from annotation.datasets import services as snapshots
from annotation.models import (
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    ReviewReason,
    Snapshot,
    SnapshotItem,
    TaskType,
)
from annotation.projects.services import project_create
from annotation.review import services as reviews
from core.errors import ServiceError
from tests.fixtures.people import add_items

LABELS = ["positive", "negative", "neutral"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test writes its snapshot files under its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def approve(items: list[Item], labels: list[str] | None = None, *, source: str = DecisionSource.IMPORT) -> None:
    """Give items a final value the way an import with labels does: one decision each, status approved."""
    for n, item in enumerate(items):
        label = (labels or LABELS)[n % len(labels or LABELS)]
        Decision.objects.create(item=item, value={"label": label}, source=source)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.APPROVED)


@pytest.fixture
def corpus(project) -> list[Item]:
    """The project's five items plus 55 more, all approved with labels cycling through the three."""
    add_items(project, [f"a longer sentence number {i} about the weather and the food" for i in range(55)])
    items = list(Item.objects.filter(project=project).order_by("pk"))
    approve(items)
    return items


def file_bytes(snapshot: Snapshot) -> bytes:
    return (Path(settings.MEDIA_ROOT) / snapshot.file_path).read_bytes()


def test_snapshot_freezes_every_approved_item_with_a_split(project, owner, corpus):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=3)
    assert snap.item_count == len(corpus) == SnapshotItem.objects.filter(snapshot=snap).count()
    assert not Item.objects.filter(project=project, split_row__isnull=True).exists()
    assert sum(snap.manifest["splits"].values()) == len(corpus)
    assert snap.manifest["labels"] == {"negative": 20, "neutral": 20, "positive": 20}
    assert snap.manifest["sources"] == {"import": 60}
    assert snap.manifest["split_assignment"]["assigned_now"] == 60
    decided = dict(Decision.objects.filter(item__project=project).values_list("pk", "created_at"))
    for row in SnapshotItem.objects.filter(snapshot=snap).select_related("item__split_row"):
        assert row.split == row.item.split_row.split
        assert row.provenance["source"] == "import"
        assert row.provenance["decided_at"] == decided[row.provenance["decision_id"]].isoformat()


def test_decision_times_print_as_django_loads_them(project, owner, corpus):
    """Provenance times are read as text and parsed: they must equal the datetime Django loads, whole
    seconds (no fraction printed) included."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    moment = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)  # later than the import's decision
    with mock.patch("django.utils.timezone.now", return_value=moment):  # auto_now_add reads the clock
        Decision.objects.create(item=corpus[1], value={"label": "neutral"}, source=DecisionSource.IMPORT)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    latest = Decision.objects.filter(item=corpus[1]).latest("pk")
    row = SnapshotItem.objects.get(snapshot=snap, item=corpus[1])
    assert row.provenance["decision_id"] == latest.pk
    assert row.provenance["decided_at"] == latest.created_at.isoformat() == moment.isoformat()
    assert "." not in row.provenance["decided_at"]


def test_the_hash_is_the_sha256_of_the_file_and_rebuilds_from_the_rows(project, owner, corpus):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert hashlib.sha256(file_bytes(snap)).hexdigest() == snap.content_hash
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash
    assert Path(snap.file_path).name == f"{snap.content_hash}.jsonl"


def test_jsonl_is_canonical_one_sorted_row_per_item(project, owner, corpus):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    lines = file_bytes(snap).decode("utf-8").splitlines()
    assert len(lines) == len(corpus)
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == sorted(i.pk for i in corpus)
    for line, row in zip(lines, rows, strict=True):
        assert line == json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert set(row) == {"id", "external_id", "text", "label", "split", "guideline_version", "provenance"}


def test_pandas_reads_the_download_whole_and_per_split(project, owner, corpus, client):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    client.force_login(owner)
    url = reverse("snapshot-download", args=[project.pk, snap.pk])
    whole = b"".join(client.get(url).streaming_content)
    assert hashlib.sha256(whole).hexdigest() == snap.content_hash
    frame = pd.read_json(io.BytesIO(whole), lines=True)
    assert len(frame) == len(corpus) and set(frame["label"]) == set(LABELS)
    for split, count in snap.manifest["splits"].items():
        part = b"".join(client.get(url, {"split": split}).streaming_content)
        if count:
            frame = pd.read_json(io.BytesIO(part), lines=True)
            assert len(frame) == count and set(frame["split"]) == {split}
        else:
            assert part == b""
    response = client.get(url, {"split": "holdout"})
    assert response.status_code == 400 and b"holdout" in response.content


def test_splits_never_change_in_later_snapshots(project, owner, corpus):
    first = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=1)
    before = dict(Item.objects.filter(project=project).values_list("pk", "split_row__split"))
    fresh = add_items(project, [f"new text {i} arriving after the first snapshot" for i in range(10)])
    approve(fresh)
    second = snapshots.snapshot_create(project=project, user=owner, name="v2", seed=99)
    after = dict(Item.objects.filter(project=project).values_list("pk", "split_row__split"))
    assert all(after[pk] == split for pk, split in before.items())
    assert second.item_count == first.item_count + 10
    assert second.manifest["split_assignment"]["assigned_now"] == 10
    old_rows = dict(SnapshotItem.objects.filter(snapshot=first).values_list("item_id", "split"))
    new_rows = dict(SnapshotItem.objects.filter(snapshot=second).values_list("item_id", "split"))
    assert all(new_rows[pk] == split for pk, split in old_rows.items())


def test_the_database_refuses_to_change_an_assigned_split(project, owner, corpus):
    snapshots.snapshot_create(project=project, user=owner, name="v1")
    row = ItemSplit.objects.get(item=corpus[0])
    other = "test" if row.split != "test" else "train"
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemSplit.objects.filter(pk=row.pk).update(split=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemSplit.objects.create(item=corpus[0], split=other)  # one split per item
    corpus[0].save()  # the item itself still saves: its split is not one of its columns


def test_snapshots_and_their_rows_cannot_be_updated(project, owner, corpus):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Snapshot.objects.filter(pk=snap.pk).update(name="renamed")
    with pytest.raises(IntegrityError), transaction.atomic():
        SnapshotItem.objects.filter(snapshot=snap).update(split="test")
    snap.refresh_from_db()
    assert snap.name == "v1"
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash


def test_an_edited_item_text_shows_up_as_a_hash_mismatch(project, owner, corpus):
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    Item.objects.filter(pk=corpus[0].pk).update(text="tampered")
    assert snapshots.snapshot_rows_hash(snapshot=snap) != snap.content_hash


def test_same_data_gives_the_same_hash(project, owner, corpus):
    a = snapshots.snapshot_create(project=project, user=owner, name="a", seed=1)
    b = snapshots.snapshot_create(project=project, user=owner, name="b", seed=2)  # splits already fixed
    assert a.content_hash == b.content_hash and a.file_path == b.file_path


def test_only_approved_items_with_a_final_value_enter(project, owner, reviewer, corpus):
    in_review = corpus[1]
    Item.objects.filter(pk=in_review.pk).update(status=ItemStatus.IN_REVIEW)
    reviews.review_task_open(item=in_review, reasons=[ReviewReason.NOISE])
    unlabelled = add_items(project, ["never labelled at all"])[0]
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    ids = set(SnapshotItem.objects.filter(snapshot=snap).values_list("item_id", flat=True))
    assert in_review.pk not in ids and unlabelled.pk not in ids
    assert snap.item_count == len(corpus) - 1


def test_the_latest_decision_is_the_value_in_the_snapshot(project, owner, reviewer, corpus):
    item = corpus[0]
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE])
    task.item.project = project
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "neutral"})
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    row = SnapshotItem.objects.get(snapshot=snap, item=item)
    assert row.value == {"label": "neutral"}
    assert row.provenance["source"] == "reviewer" and row.provenance["decided_by"] == reviewer.username
    assert row.guideline_version == 1


def test_compare_reports_added_removed_and_relabelled(project, owner, reviewer, corpus):
    old = snapshots.snapshot_create(project=project, user=owner, name="old")
    relabel, drop = corpus[0], corpus[1]
    for item, reason in ((relabel, ReviewReason.NOISE), (drop, ReviewReason.AUDIT)):
        Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
        reviews.review_task_open(item=item, reasons=[reason])
    task = reviews.review_task_open(item=relabel, reasons=[ReviewReason.NOISE])
    task.item.project = project
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    new_item = add_items(project, ["a brand new approved text"])
    approve(new_item, ["neutral"])
    new = snapshots.snapshot_create(project=project, user=owner, name="new")
    diff = snapshots.snapshot_compare(old=old, new=new)
    assert (diff["added"], diff["removed"], diff["relabelled"]) == (1, 1, 1)
    assert diff["unchanged"] == len(corpus) - 2
    assert diff["examples"]["relabelled"] == [
        {"item_id": relabel.pk, "old": {"label": "positive"}, "new": {"label": "negative"}}
    ]
    assert diff["examples"]["removed"][0]["item_id"] == drop.pk
    assert diff["examples"]["added"][0]["item_id"] == new_item[0].pk


def test_nothing_approved_is_refused_and_writes_nothing(project, owner):
    with pytest.raises(ServiceError) as exc:
        snapshots.snapshot_create(project=project, user=owner, name="empty")
    assert exc.value.message == snapshots.NOTHING_APPROVED
    assert not Snapshot.objects.exists()
    assert not (Path(settings.MEDIA_ROOT) / snapshots.SNAPSHOT_DIR / f"project-{project.pk}").exists()


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.5, 0.5, 0.5), (1.2, -0.1, -0.1), ("a", 0, 1)])
def test_bad_ratios_name_the_field(project, owner, corpus, ratios):
    with pytest.raises(ServiceError) as exc:
        snapshots.snapshot_create(project=project, user=owner, name="v1", ratios=ratios)
    assert exc.value.field == "ratios" and exc.value.message == snapshots.BAD_RATIOS
    assert not ItemSplit.objects.filter(item__project=project).exists()


def test_a_name_is_required(project, owner, corpus):
    with pytest.raises(ServiceError) as exc:
        snapshots.snapshot_create(project=project, user=owner, name="  ")
    assert exc.value.field == "name"


def test_instruction_rows_carry_prompt_and_response(owner, db):
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    items = add_items(project, ["Say hello politely.", "Summarise: the cat sat."])
    for item, text in zip(items, ["Hello, nice to meet you.", "A cat sat."], strict=True):
        Decision.objects.create(item=item, value={"response": text}, source=DecisionSource.IMPORT)
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    frame = pd.read_json(io.BytesIO(file_bytes(snap)), lines=True)
    assert list(frame["prompt"]) == ["Say hello politely.", "Summarise: the cat sat."]
    assert list(frame["response"]) == ["Hello, nice to meet you.", "A cat sat."]
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash


def test_rows_keep_backslashes_tabs_newlines_and_non_ascii_exactly(owner, db):
    """The SnapshotItem rows travel in COPY text format: escapes in values and names must survive it."""
    from tests.fixtures.people import make_user

    project = project_create(owner=owner, name="Escapes", task_type=TaskType.INSTRUCTION)
    prompts = ["Path?\tC:\\new\\table", 'Quote "this"\nthen \\N stop', "Ünïcode ✓ 日本語 \\\\ \r\n end"]
    responses = ["C:\\\\new\\table\t\\N", '{"json": "inside"}\n\\', "naïve — \u2028 line sep \x7f"]
    items = add_items(project, prompts)
    who = make_user("rëviewer\\tab")
    for item, response in zip(items, responses, strict=True):
        Decision.objects.create(item=item, value={"response": response}, source=DecisionSource.REVIEWER, reviewer=who)
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    rows = {r.item_id: r for r in SnapshotItem.objects.filter(snapshot=snap)}
    for item, response in zip(items, responses, strict=True):
        row = rows[item.pk]
        assert row.value == {"response": response} and row.guideline_version is None
        assert row.provenance["decided_by"] == "rëviewer\\tab" and row.provenance["source"] == "reviewer"
    lines = [json.loads(line) for line in file_bytes(snap).splitlines()]
    assert [(line["prompt"], line["response"]) for line in lines] == list(zip(prompts, responses, strict=True))
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash


def test_owner_creates_a_snapshot_from_the_page(project, owner, corpus, client):
    client.force_login(owner)
    form = {"name": "from the page", "seed": 5, "train": 70, "validation": 15, "test": 15}
    approved = Item.objects.filter(project=project, status="approved").count()
    confirm = client.post(reverse("snapshot-list", args=[project.pk]), form)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and not Snapshot.objects.exists()  # nothing is frozen before the owner confirms
    assert f"freezes the final labels of <strong>{approved}</strong> approved item" in page
    assert f"gives <strong>{approved}</strong> item" in page and "a split for good (70 % train" in page
    response = client.post(reverse("snapshot-list", args=[project.pk]), {**form, "confirm": "1"})
    snap = Snapshot.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("snapshot-detail", args=[project.pk, snap.pk])
    assert snap.manifest["split_params"]["ratios"] == [0.7, 0.15, 0.15]
    page = client.get(response["Location"]).content.decode()
    assert snap.content_hash in page


def test_the_page_shows_a_service_error_next_to_the_form(project, owner, client):
    client.force_login(owner)
    form = {"name": "v1", "seed": 0, "train": 80, "validation": 10, "test": 10}
    response = client.post(reverse("snapshot-list", args=[project.pk]), form)
    assert response.status_code == 400
    assert snapshots.NOTHING_APPROVED in response.content.decode()


def test_compare_page_and_api_agree(project, owner, corpus, client):
    old = snapshots.snapshot_create(project=project, user=owner, name="old")
    approve(add_items(project, ["one more approved text for the compare page"]))
    new = snapshots.snapshot_create(project=project, user=owner, name="new")
    client.force_login(owner)
    page = client.get(reverse("snapshot-compare", args=[project.pk]), {"old": old.pk, "new": new.pk})
    assert page.status_code == 200 and 'id="diff-added">1<' in page.content.decode()
    api = client.get(reverse("api-snapshot-compare", args=[project.pk]), {"old": old.pk, "new": new.pk}).json()
    assert api["added"] == 1 and api["removed"] == 0
    missing = client.get(reverse("api-snapshot-compare", args=[project.pk]), {"old": old.pk})
    assert missing.status_code == 400 and missing.json()["field"] == "new"


def test_items_sharing_a_group_key_share_a_split(project, owner, corpus):
    groups = {}
    for n, item in enumerate(corpus):
        groups[item.pk] = f"conversation-{n % 6}"
    for pk, key in groups.items():
        Item.objects.filter(pk=pk).update(group_key=key)
    snapshots.snapshot_create(project=project, user=owner, name="v1", seed=4)
    split_of_group: dict[str, set[str]] = {}
    for pk, split in Item.objects.filter(project=project).values_list("pk", "split_row__split"):
        split_of_group.setdefault(groups[pk], set()).add(split)
    assert all(len(splits) == 1 for splits in split_of_group.values())


def test_a_metadata_field_can_be_the_group(project, owner, corpus):
    for n, item in enumerate(corpus):
        Item.objects.filter(pk=item.pk).update(metadata={"speaker": f"s{n % 5}"})
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=2, group_field="speaker")
    assert snap.manifest["split_params"]["group_field"] == "speaker"
    by_speaker: dict[str, set[str]] = {}
    for metadata, split in Item.objects.filter(project=project).values_list("metadata", "split_row__split"):
        by_speaker.setdefault(metadata["speaker"], set()).add(split)
    assert all(len(splits) == 1 for splits in by_speaker.values())


def test_near_duplicate_texts_share_a_split(project, owner, corpus):
    twins = add_items(
        project,
        [
            "The delivery was late and the soup arrived cold, very disappointing evening.",
            "The delivery was late and the soup arrived cold, very disappointing evening!!",
        ],
    )
    approve(twins, ["negative", "negative"])
    snapshots.snapshot_create(project=project, user=owner, name="v1", seed=8)
    assert len({ItemSplit.objects.get(item=t).split for t in twins}) == 1


def test_splits_follow_the_ratios_per_label(project, owner):
    add_items(project, [f"distinct sentence {i} with its own words {i * 7919}" for i in range(300)])
    approve(list(Item.objects.filter(project=project).order_by("pk")))
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=5)
    train = snap.manifest["labels_by_split"]["train"]
    for label in LABELS:
        assert abs(train[label] - 0.8 * snap.manifest["labels"][label]) <= 2
    assert sum(snap.manifest["split_shares"].values()) == pytest.approx(1.0)
    assert snap.manifest["split_shares"]["train"] == pytest.approx(0.8, abs=0.01)


def test_a_class_balance_report_rides_in_the_manifest(project, owner):
    add_items(project, [f"unbalanced sentence {i} about {i * 31}" for i in range(40)])
    items = list(Item.objects.filter(project=project).order_by("pk"))
    approve(items, ["positive"] * 3 + ["negative"])
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", balance_mode="class_weights")
    balance = snap.manifest["class_balance"]
    assert balance["mode"] == "class_weights" and "keep" not in balance
    assert balance["class_weights"]["negative"] > balance["class_weights"]["positive"]
    assert balance["report"]["before"] == snap.manifest["labels_by_split"]["train"]
    with pytest.raises(ServiceError) as exc:
        snapshots.snapshot_create(project=project, user=owner, name="v2", balance_mode="magic")
    assert exc.value.field == "balance_mode"


def test_a_split_set_concurrently_wins_over_the_new_assignment(project, owner, corpus, monkeypatch):
    """Between reading and writing splits another snapshot may set one: `ON CONFLICT DO NOTHING` keeps it,
    and the file and rows carry the split as stored, not the one assigned in memory."""
    from annotation.datasets import splits

    real_assign = splits.assign_codes
    racer = corpus[0]

    def assign_while_another_snapshot_writes(keys, *args, **kwargs):
        codes = real_assign(keys, *args, **kwargs)
        assigned = splits.SPLITS[codes[list(keys).index(racer.pk)]]
        other = "test" if assigned != "test" else "validation"
        ItemSplit.objects.create(item=racer, split=other)
        return codes

    monkeypatch.setattr(splits, "assign_codes", assign_while_another_snapshot_writes)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    stored = ItemSplit.objects.get(item=racer).split
    assert SnapshotItem.objects.get(snapshot=snap, item=racer).split == stored
    rows = {row["id"]: row for row in map(json.loads, snapshots.snapshot_lines(snapshot=snap))}
    assert rows[racer.pk]["split"] == stored
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash
    assert snap.manifest["split_assignment"]["assigned_now"] == len(corpus) - 1
    assert snap.manifest["splits"] == dict(Counter(row["split"] for row in rows.values()))


def test_the_item_history_page_shows_the_split_once_assigned(project, owner, reviewer, corpus, client):
    url = reverse("item-history", args=[project.pk, corpus[0].pk])
    client.force_login(reviewer)
    before = client.get(url)
    assert before.status_code == 200 and b"split:" not in before.content
    snapshots.snapshot_create(project=project, user=owner, name="v1")
    split = ItemSplit.objects.get(item=corpus[0]).split
    assert f"split: {split}".encode() in client.get(url).content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("race", [False, True], ids=["alone", "racing"])
def test_outside_a_transaction_postgresql_stores_splits_on_a_second_connection(
    project, owner, corpus, monkeypatch, race
):
    """Not in a transaction (a request, a job), PostgreSQL stores the new splits on a second connection
    while the JSONL is written from the splits in memory; SQLite stores them first, on its own. Either
    way the rows, the file and ItemSplit agree, also when another snapshot stored a split meanwhile."""
    import threading

    from django.db import connection

    from annotation.datasets import splits

    real_store, real_assign, real_copy = snapshots._store_splits, splits.assign_codes, snapshots._copy_rows
    threads: list[str] = []
    copied_in: list[str] = []

    def store(**kwargs):
        threads.append(threading.current_thread().name)
        return real_store(**kwargs)

    def copy_rows(*args):
        copied_in.append(threading.current_thread().name)
        return real_copy(*args)

    def assign(keys, *args, **kwargs):
        codes = real_assign(keys, *args, **kwargs)
        if race:
            assigned = splits.SPLITS[codes[list(keys).index(corpus[0].pk)]]
            ItemSplit.objects.create(item=corpus[0], split="test" if assigned != "test" else "validation")
        return codes

    monkeypatch.setattr(snapshots, "_store_splits", store)
    monkeypatch.setattr(snapshots, "_copy_rows", copy_rows)
    monkeypatch.setattr(splits, "assign_codes", assign)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", seed=5)
    here = threading.current_thread().name
    if connection.vendor == "postgresql":
        assert threads == ["labelloop-split-store"]
        # Racing, the rows streamed from the splits in memory are rolled back and the file written again.
        assert copied_in == ["labelloop-snapshot-rows"] + [here] * race
    else:
        assert threads == [here] and copied_in == []
    stored = dict(ItemSplit.objects.filter(item__project=project).values_list("item_id", "split"))
    assert len(stored) == len(corpus)
    rows = {row["id"]: row["split"] for row in map(json.loads, snapshots.snapshot_lines(snapshot=snap))}
    assert rows == stored
    assert dict(SnapshotItem.objects.filter(snapshot=snap).values_list("item_id", "split")) == stored
    assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash
    assert snap.manifest["split_assignment"]["assigned_now"] == len(corpus) - race
    assert list(Path(settings.MEDIA_ROOT).rglob(".tmp-*")) == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_split_store_leaves_no_snapshot_and_no_file(project, owner, corpus, monkeypatch):
    def store(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(snapshots, "_store_splits", store)
    with pytest.raises(RuntimeError, match="went away"):
        snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert not Snapshot.objects.exists()
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_row_insert_leaves_no_snapshot_and_says_why(project, owner, corpus, monkeypatch):
    """A snapshot row the database refuses (here: a malformed line) fails the snapshot with the database's
    own error, whether the rows were streamed to a second connection or kept in a file."""
    from django.db import connection

    real_line = snapshots._copy_line
    broken = corpus[7].pk

    def copy_line(item_id, *args):
        line = real_line(item_id, *args)
        return line.replace(b"\t", b"|", 1) if item_id == broken else line

    monkeypatch.setattr(snapshots, "_copy_line", copy_line)
    with pytest.raises(Exception) as failure:
        snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert not isinstance(failure.value, BrokenPipeError)
    if connection.vendor == "postgresql":
        assert str(broken) in str(failure.value)  # COPY names the line it refused
    assert not Snapshot.objects.exists() and not SnapshotItem.objects.exists()
    assert list(Path(settings.MEDIA_ROOT).rglob(".tmp-*")) == []
    monkeypatch.setattr(snapshots, "_copy_line", real_line)
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert snap.item_count == len(corpus) == snap.rows.count()


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_writing_rolls_the_streamed_rows_back(project, owner, corpus, monkeypatch):
    import threading

    real_canonical = snapshots.canonical_line
    written: list[bytes] = []

    def canonical_line(row):
        if len(written) == 30:
            raise OSError("No space left on device")
        written.append(real_canonical(row))
        return written[-1]

    monkeypatch.setattr(snapshots, "canonical_line", canonical_line)
    with pytest.raises(OSError, match="No space left"):
        snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert not Snapshot.objects.exists() and not SnapshotItem.objects.exists()
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
    assert not [t for t in threading.enumerate() if t.name.startswith("labelloop-")]
    # The splits were stored all the same: the next snapshot keeps them.
    assert ItemSplit.objects.filter(item__project=project).count() == len(corpus)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22 00:10:00+00",
        "2026-11-22 00:10:00.5+00",
        "2026-11-22 00:10:00.12+00",
        "2026-11-22 00:10:00.123456+00",
        "2026-11-22 00:10:00.000001+00",
        "2026-11-22 00:10:00",
        "2026-11-22 00:10:00.120000",
        "2026-11-22 00:10:00.000000",
        "2026-11-22 05:40:00+05:30",
        "2026-11-22 00:10:00.5-05",
        "2026-11-22 00:10:00-05",
        "2026-11-22T00:10:00+00:00",
        "0999-01-01 00:00:00+00",
    ],
)
def test_timestamps_as_text_become_what_isoformat_gives(text):
    """The text fast path of `_iso_utc` agrees with parsing (and with Django's aware UTC datetimes)."""
    assert snapshots._iso_utc(text) == snapshots._iso_utc_parsed(text)


@pytest.mark.django_db(transaction=True)
def test_two_snapshots_made_at_once_agree_on_every_split(project, owner, corpus):
    """Two owners snapshot the same project at the same moment: both succeed, neither blocks the other
    for good, and an item has the same split in both (whichever stored it first), in rows and files."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has one writer at a time")
    start = threading.Barrier(2)
    made: dict[str, Snapshot] = {}
    failed: list[BaseException] = []

    def snapshot(name: str, seed: int) -> None:
        try:
            start.wait()
            made[name] = snapshots.snapshot_create(project=project, user=owner, name=name, seed=seed)
        except BaseException as exc:
            failed.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=snapshot, args=(f"v{seed}", seed)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failed and len(made) == 2
    stored = dict(ItemSplit.objects.filter(item__project=project).values_list("item_id", "split"))
    assert len(stored) == len(corpus)
    assert sum(snap.manifest["split_assignment"]["assigned_now"] for snap in made.values()) == len(corpus)
    for snap in made.values():
        assert dict(snap.rows.values_list("item_id", "split")) == stored
        lines = {row["id"]: row["split"] for row in map(json.loads, snapshots.snapshot_lines(snapshot=snap))}
        assert lines == stored
        assert snapshots.snapshot_rows_hash(snapshot=snap) == snap.content_hash
    assert made["v1"].content_hash == made["v2"].content_hash  # same items, same splits: same bytes


# --- A minimum test size per label --------------------------------------------------------------------


def test_a_tiny_snapshot_is_refused_naming_the_labels_and_counts_and_stores_no_split(project, owner, settings):
    """Nine items at 80/10/10 used to get 0 test items, silently."""
    settings.LABELLOOP_MIN_TEST_PER_LABEL = 2
    add_items(project, [f"a sentence number {i} about the weather" for i in range(4)])
    approve(list(Item.objects.filter(project=project).order_by("pk")))
    with pytest.raises(ServiceError) as exc:
        snapshots.snapshot_create(project=project, user=owner, name="tiny")
    assert exc.value.field == "allow_small_test"
    for label in LABELS:
        assert f"“{label}” has " in exc.value.message
    assert "of its 3 items in test" in exc.value.message and "LABELLOOP_MIN_TEST_PER_LABEL" in exc.value.message
    assert not Snapshot.objects.exists()
    assert not ItemSplit.objects.filter(item__project=project).exists(), "a refusal changes nothing"


def test_an_allowed_small_test_split_is_recorded_and_shown_on_the_snapshot_and_run_pages(
    project, owner, settings, client
):
    from tests.fixtures.rounds import run_row

    settings.LABELLOOP_MIN_TEST_PER_LABEL = 2
    add_items(project, [f"a sentence number {i} about the weather" for i in range(4)])
    approve(list(Item.objects.filter(project=project).order_by("pk")))
    snap = snapshots.snapshot_create(project=project, user=owner, name="tiny", allow_small_test=True)
    assert snap.manifest["small_test"]["minimum"] == 2
    small = {row["label"]: row for row in snap.manifest["small_test"]["labels"]}
    assert set(small) == set(LABELS) and all(row["total"] == 3 for row in small.values())
    assert sum(row["test"] for row in small.values()) == snap.manifest["splits"]["test"]
    assert "Small test split" in snap.manifest["warnings"][0]
    client.force_login(owner)
    page = client.get(reverse("snapshot-detail", args=[project.pk, snap.pk])).content.decode()
    assert 'id="snapshot-warning"' in page and "Small test split" in page
    run = run_row(project, owner, snapshot=snap)
    page = client.get(reverse("run-detail", args=[project.pk, run.pk])).content.decode()
    assert 'id="run-snapshot-warning"' in page and "cannot tell models apart" in page


def test_the_check_counts_splits_assigned_earlier_and_instruction_data_as_a_whole(owner, db, settings):
    settings.LABELLOOP_MIN_TEST_PER_LABEL = 1
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    items = add_items(project, [f"Say hello number {i}." for i in range(3)])
    for item in items:
        Decision.objects.create(item=item, value={"response": "Hello."}, source=DecisionSource.IMPORT)
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    ItemSplit.objects.bulk_create([ItemSplit(item=item, split="train") for item in items])  # nothing new to assign
    with pytest.raises(ServiceError, match="“all items” has 0 of its 3 items in test"):
        snapshots.snapshot_create(project=project, user=owner, name="v1")
    assert snapshots.snapshot_create(project=project, user=owner, name="v1", allow_small_test=True).manifest["warnings"]


def test_a_large_enough_test_split_passes_without_a_warning(project, owner, corpus, settings):
    settings.LABELLOOP_MIN_TEST_PER_LABEL = 2
    snap = snapshots.snapshot_create(project=project, user=owner, name="v1", ratios=(0.6, 0.1, 0.3))
    assert "warnings" not in snap.manifest and "small_test" not in snap.manifest


def test_the_form_and_the_api_refuse_then_allow_a_small_test_split(project, owner, settings, client):
    settings.LABELLOOP_MIN_TEST_PER_LABEL = 2
    approve(list(Item.objects.filter(project=project).order_by("pk")))
    client.force_login(owner)
    form = {"name": "v1", "seed": 0, "train": 80, "validation": 10, "test": 10}
    refused = client.post(reverse("snapshot-list", args=[project.pk]), {**form, "confirm": "1"})
    assert refused.status_code == 400 and "Allow a small test split" in refused.content.decode()
    assert "LABELLOOP_MIN_TEST_PER_LABEL" in refused.content.decode()
    api = reverse("api-snapshot-list", args=[project.pk])
    response = client.post(api, {"name": "v1"}, content_type="application/json")
    assert response.status_code == 400 and "allow_small_test" in json.dumps(response.json())
    assert not Snapshot.objects.exists()
    made = client.post(api, {"name": "v1", "allow_small_test": True}, content_type="application/json")
    assert made.status_code == 201 and made.json()["manifest"]["warnings"]
    allowed = client.post(
        reverse("snapshot-list", args=[project.pk]), {**form, "allow_small_test": "on", "confirm": "1"}
    )
    assert allowed.status_code == 302
