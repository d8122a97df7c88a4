"""Snapshots: freeze the approved items' final values into a content-hashed, immutable dataset.

`snapshot_create` runs in three streaming passes, so memory stays bounded by one batch of rows
(plus the split assignment's per-item keys and text fingerprints when new items need a split):
1. splits: items without a split get one from the pure `splits.assign_codes` (existing splits, group
   keys and near-duplicates respected) and it is stored as a new ItemSplit row (`ON CONFLICT DO
   NOTHING`), so a split once set never changes (a database trigger refuses updates too). On
   PostgreSQL outside a transaction the store runs on a second connection during pass 2, which reads
   the splits from the assignment in memory (9 bytes an item); should a concurrent snapshot have
   stored some of them first, pass 2 runs again with the splits as stored;
2. the canonical JSONL is written to a temporary file while sha256 hashes it and the manifest counts;
   the same pass makes each SnapshotItem row, from the same values, in COPY format; the JSONL is then
   named by its hash (content-addressed);
3. the Snapshot row and its SnapshotItem rows are created in one transaction, so the rows are exactly
   what was hashed: nothing is ever updated afterwards. The rows wait in a file beside the JSONL
   (`_RowsFile`), or, on PostgreSQL outside a transaction, stream during pass 2 into a COPY on a
   second connection whose transaction adds the Snapshot row at the end (`_RowsCopy`).

The canonical line of an item is `canonical_line(canonical_row(...))`: JSON with sorted keys and no
spaces, UTF-8, one line per item in item id order. `snapshot_rows_hash` rebuilds the hash from the
SnapshotItem rows alone (with the items' text), which is how immutability is checked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import queue
import sys
import threading
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, connections, transaction
from django.db.models import CharField, F, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from annotation.datasets import splits
from annotation.models import Item, ItemSplit, NoiseScan, Project, ScanStatus, Snapshot, SnapshotItem, Split
from annotation.quality import agreement
from annotation.quality.selectors import agreement_rows
from annotation.review.selectors import latest_decisions
from annotation.tasktypes import task_kind, value_key
from annotation.webhooks import events as webhook_events
from core.errors import ServiceError

FORMAT = "labelloop-snapshot/1"


SNAPSHOT_DIR = "snapshots"


READ_CHUNK = 5000


INSERT_BATCH = 5000


COPY_BLOCK = 1 << 20  # bytes of snapshot rows per COPY write


ROW_COLUMNS = "snapshot_id, item_id, value, split, guideline_version, provenance"


SPLIT_INSERT_ROWS = 50_000  # rows per executemany on SQLite


TEXTS_PER_QUERY = 900  # ids per `IN (...)`: under SQLite's 999-parameter limit of older builds


VALUE_KEYS = ("label", "labels", "response", "spans")


DEFAULT_RATIOS = (0.8, 0.1, 0.1)


# Class-balance reports a snapshot can carry (splits.class_balance); the splits themselves never change.
BALANCE_MODES = (
    ("downsample", "Downsample every class to the smallest"),
    ("oversample", "Oversample every class to the largest"),
    ("class_weights", "Balanced class weights"),
)


NAME_REQUIRED = "Give the snapshot a name."


NOTHING_APPROVED = "No approved item has a final value yet: review or approve some items first."


BAD_RATIOS = "Split ratios must be three non-negative numbers (train, validation, test) that add up to 1."


UNKNOWN_SPLIT = "Unknown split {split!r}; use one of train, validation, test."


UNKNOWN_BALANCE = "Unknown class-balance mode {mode!r}; use one of {modes}."


BALANCE_NOT_FOR_SPANS = "Class balancing reweighs whole items by their label; span projects label tokens: leave it off."
BALANCE_NEEDS_LABELS = "Class balancing needs class labels; instruction data has none."


SMALL_TEST = (
    "The test split would be too small to measure anything: {shortfall}. The minimum is {minimum} test items "
    "per label (setting LABELLOOP_MIN_TEST_PER_LABEL). Label more items, give the test split a larger share, "
    "or allow a small test split for this snapshot (its manifest and its runs' pages will then say so)."
)


SMALL_TEST_WARNING = (
    "Small test split, allowed by the owner: {shortfall} (minimum {minimum} per label). Test figures from this "
    "snapshot cannot tell models apart reliably."
)


ALL_ITEMS = "all items"  # how data without labels is named in the small-test messages


def min_test_per_label() -> int:
    return int(getattr(settings, "LABELLOOP_MIN_TEST_PER_LABEL", 0))


def _shortfall_text(short: list[tuple[str, int, int]]) -> str:
    return "; ".join(f"“{label or ALL_ITEMS}” has {test} of its {total} items in test" for label, test, total in short)


def canonical_row(
    *,
    task_type: str,
    item_id: int,
    external_id: str,
    text: str,
    value: dict[str, Any],
    split: str,
    guideline_version: int | None,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """One snapshot row: the item, its final value's own keys (label / labels / response), split, provenance."""
    return {
        "id": item_id,
        "external_id": external_id,
        task_kind(task_type).text_field: text,
        **value,
        "split": split,
        "guideline_version": guideline_version,
        "provenance": provenance,
    }


# One encoder for every line: json.dumps with options builds a new JSONEncoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_line(row: dict[str, Any]) -> bytes:
    """JSON with sorted keys and no spaces, UTF-8, newline-terminated: what the content hash covers."""
    return _CANONICAL.encode(row).encode("utf-8") + b"\n"


def value_of(row: dict[str, Any]) -> dict[str, Any]:
    """The final value inside a canonical row (the inverse of `canonical_row`'s `**value`)."""
    return {key: row[key] for key in VALUE_KEYS if key in row}


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise ServiceError(BAD_RATIOS, field="ratios") from None
    if len(values) != 3 or any(r < 0 for r in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ServiceError(BAD_RATIOS, field="ratios")
    return values


def _group_expression(group_field: str):
    """Items share a split when they share this: the item's group key, or a metadata field."""
    return KeyTextTransform(group_field, "item__metadata") if group_field else F("item__group_key")


@dataclass(frozen=True)
class Assigned:
    """Every approved item's split once `splits_assign_missing` ran, in item id order: 9 bytes an item.

    The JSONL pass reads the splits from here instead of joining ItemSplit, so it need not wait for
    the new ones to be stored (see `_store_in_background`).
    """

    ids: array  # array("q"): item ids, ascending
    codes: bytes  # each item's split as its index in splits.SPLITS
    new: int  # how many of them had no split before
    labels_by_split: dict[str, dict[str, int]]  # {split: {label: items}}, for the small-test check


def splits_assign_missing(
    *, project: Project, seed: int, ratios: Sequence[float] = DEFAULT_RATIOS, group_field: str = ""
) -> tuple[Assigned | None, Iterator[tuple[int, str]]]:
    """Give every approved item without a split one, keeping every split already assigned.

    Returns the splits of all approved items (None when none lacked a split) and the new (item id,
    split) rows, for `_store_splits`: nothing is stored here. Memory: the per-item keys, labels and
    groups that `splits.assign_codes` needs for stratification, and fingerprints of the texts instead
    of the texts (a text is fetched again only to verify a near-duplicate candidate pair); released
    once it answers, but for the ids and splits.
    """
    ratios = _check_ratios(ratios)
    finals = latest_decisions(project=project)
    if not finals.filter(item__split_row__isnull=True).exists():
        return None, iter(())
    keys: list[int] = []
    labels: list[str] = []
    groups: list[str | None] = []
    existing: dict[int, str] = {}
    kind = project.task_kind
    single = kind.single_class
    classify = kind.has_labels
    names_of: dict[str, tuple[str, ...]] = {}  # stratification key → its label names (multi-label: several)
    rows = (
        finals.annotate(
            group=_group_expression(group_field),
            # The database pulls the label out of the JSON: no per-row decoding for single-label data.
            label=KeyTextTransform("label", "value") if single else F("value"),
        )
        .order_by("item_id")
        .values_list("item_id", "label", "item__split_row__split", "group", "item__text")
    )

    def text_chunks() -> Iterator[list[str]]:
        """Texts a chunk at a time, fingerprinted and dropped: a million texts never sit in memory at once."""
        texts: list[str] = []
        for item_id, label, split, group, text in rows.iterator(chunk_size=READ_CHUNK):
            keys.append(item_id)
            key = (label if single else kind.stratum_key(label)) if classify else ""
            if key not in names_of:
                names_of[key] = (label,) if single else kind.stratum(label) if classify else ("",)
            labels.append(sys.intern(key))
            groups.append(group or None)
            texts.append(text)
            if split:
                existing[item_id] = split
            if len(texts) == READ_CHUNK:
                yield texts
                texts = []
        if texts:
            yield texts

    def texts_of(indices: Sequence[int]) -> list[str]:
        """Texts again, for near-duplicate candidate pairs (few of them): by their items' ids, one query."""
        ids = [keys[i] for i in indices]
        found: dict[int, str] = {}
        for start in range(0, len(ids), TEXTS_PER_QUERY):
            found.update(Item.objects.filter(pk__in=ids[start : start + TEXTS_PER_QUERY]).values_list("pk", "text"))
        return [found[pk] for pk in ids]

    texts = splits.fingerprints_of(text_chunks(), texts_of, expected=finals.count())
    codes = splits.assign_codes(keys, labels, groups, texts, seed, ratios=ratios, existing=existing)
    del texts
    by_split: dict[str, Counter[str]] = {split: Counter() for split in splits.SPLITS}
    for (key, code), n in Counter(zip(labels, codes.tolist(), strict=True)).items():
        for name in names_of[key]:
            by_split[splits.SPLITS[code]][name] += n
    labels.clear()
    groups.clear()
    assigned = Assigned(
        ids=array("q", keys),
        codes=codes.tobytes(),
        new=len(keys) - len(existing),
        labels_by_split={split: dict(counts) for split, counts in by_split.items()},
    )
    keys.clear()

    def new_rows() -> Iterator[tuple[int, str]]:
        for item_id, code in zip(assigned.ids, assigned.codes, strict=True):
            if item_id not in existing:
                yield item_id, splits.SPLITS[code]

    return assigned, new_rows()


def _second_connection_allowed() -> bool:
    """Whether a snapshot may write on second connections while this one reads: PostgreSQL, outside a
    transaction. Inside one, a second connection would not see the caller's uncommitted rows, and what
    it wrote would commit apart from them; SQLite allows one writer at a time and works in this process
    anyway."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _in_thread(name: str, work: Callable[[], Any]) -> Future[Any]:
    """Run `work` in a new thread, on that thread's own database connection (closed at the end)."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)
        finally:
            connections.close_all()  # this thread's connections only

    threading.Thread(target=run, name=name).start()
    return future


def _store_in_background(*, project: Project, new: Iterable[tuple[int, str]], background: bool) -> Future[int]:
    """`_store_splits(new)` on a second connection while the caller writes the JSONL, or at once here."""
    if background:
        return _in_thread("labelloop-split-store", lambda: _store_splits(project=project, new=new))
    future: Future[int] = Future()
    future.set_result(_store_splits(project=project, new=new))
    return future


def _store_splits(*, project: Project, new: Iterable[tuple[int, str]]) -> int:
    """Insert the new (item id, split) rows; an item that got a split meanwhile (a concurrent snapshot) keeps it.

    Returns how many items got their split from this call. PostgreSQL: COPY into a temporary table,
    then one INSERT ... ON CONFLICT DO NOTHING; SQLite: the same INSERT, executemany in batches.
    """
    table = ItemSplit._meta.db_table
    stored = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # One snapshot at a time assigns splits in a project; a concurrent one finds them set.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if connection.vendor == "postgresql":
            cursor.execute("CREATE TEMPORARY TABLE labelloop_new_split (item_id bigint, split text) ON COMMIT DROP")
            with cursor.connection.cursor().copy("COPY labelloop_new_split (item_id, split) FROM STDIN") as copy:
                for row in new:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} (item_id, split) SELECT item_id, split FROM labelloop_new_split "  # noqa: S608 - model name
                "ON CONFLICT (item_id) DO NOTHING"
            )
            stored = cursor.rowcount
            cursor.execute("DROP TABLE labelloop_new_split")  # now, not at commit: the caller's transaction may go on
            return stored
        sql = f"INSERT INTO {table} (item_id, split) VALUES (%s, %s) ON CONFLICT (item_id) DO NOTHING"  # noqa: S608
        rows = iter(new)
        while batch := list(itertools.islice(rows, SPLIT_INSERT_ROWS)):
            cursor.executemany(sql, batch)
            stored += cursor.rowcount
    return stored


def _split_walk(assigned: Assigned) -> Callable[[int], str | None]:
    """split_of(item_id) for ascending item ids: a merge walk along the assignment, no lookup table.
    None for an item the assignment does not hold (approved after it was made)."""
    pairs = zip(assigned.ids, assigned.codes, strict=True)
    at, code = -1, 0

    def split_of(item_id: int) -> str | None:
        nonlocal at, code
        while at < item_id:
            at, code = next(pairs, (sys.maxsize, 0))
        return splits.SPLITS[code] if at == item_id else None

    return split_of


def _final_rows(*, project: Project, assigned: Assigned | None = None) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(canonical row, its snapshot-row line) of every approved item that has a split, in item id order.

    The splits come from `assigned` when given (the items it holds), else from ItemSplit. The
    snapshot-row line is the SnapshotItem row in PostgreSQL's COPY text format, less the snapshot id
    (not known until the file is hashed): made here from the very values of the canonical row, so the
    stored rows are what was hashed without reading the JSONL back. The value arrives as JSON text and
    classification values repeat, so it is decoded once per distinct value.
    """
    decisions = latest_decisions(project=project)
    split_field: str | Value
    if assigned is None:
        decisions, split_field = decisions.filter(item__split_row__isnull=False), "item__split_row__split"
    else:
        split_field = Value("", output_field=CharField())
    split_of = _split_walk(assigned) if assigned is not None else None
    rows = decisions.order_by("item_id").values_list(
        "item_id",
        "item__external_id",
        "item__text",
        Cast("value", output_field=TextField()),
        split_field,
        "guideline_version__version",
        "id",
        "source",
        "reviewer__username",
        # As text, parsed by datetime.fromisoformat: Django's loader for PostgreSQL timestamps is
        # pure Python and cost more than the rest of the row's decoding together.
        Cast("created_at", output_field=TextField()),
    )
    task_type = project.task_type
    decode = functools.lru_cache(maxsize=1024)(json.loads)
    quoted = functools.lru_cache(maxsize=1024)(json.dumps)  # sources and reviewer names: a few of each
    for item_id, external_id, text, value, split, version, decision_id, source, who, at in rows.iterator(
        chunk_size=READ_CHUNK
    ):
        if split_of is not None and (split := split_of(item_id)) is None:
            continue
        decided_at = _iso_utc(at)
        row = canonical_row(
            task_type=task_type,
            item_id=item_id,
            external_id=external_id,
            text=text,
            value=decode(value),
            split=split,
            guideline_version=version,
            provenance={"decision_id": decision_id, "source": source, "decided_by": who, "decided_at": decided_at},
        )
        provenance = (
            f'{{"decision_id": {decision_id}, "source": {quoted(source)}, "decided_by": {quoted(who)}, '
            f'"decided_at": "{decided_at}"}}'
        )
        yield row, _copy_line(item_id, value, split, version, provenance)


def _iso_utc(text: str) -> str:
    """A stored timestamp as text (PostgreSQL: with its offset; SQLite: naive UTC) in ISO 8601, in UTC:
    what `datetime.isoformat()` gives for the aware UTC datetime Django would have loaded.

    The common forms, "YYYY-MM-DD HH:MM:SS[.ffffff]" followed by "+00" (PostgreSQL in UTC) or nothing
    (SQLite), are rewritten as text: three times faster than parsing, which a million rows notice.
    """
    seconds, _, fraction = (text[:-3] if text.endswith("+00") else text).partition(".")
    if (
        len(seconds) == 19
        and seconds[4] == "-"
        and seconds[10] == " "
        and seconds[13] == ":"
        and (not fraction or (len(fraction) <= 6 and fraction.isdigit()))
    ):
        if fraction.strip("0"):  # PostgreSQL drops trailing zeros; isoformat() writes six digits
            return f"{seconds[:10]}T{seconds[11:]}.{fraction.ljust(6, '0')}+00:00"
        return f"{seconds[:10]}T{seconds[11:]}+00:00"
    return _iso_utc_parsed(text)


def _iso_utc_parsed(text: str) -> str:
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


def _copy_line(item_id: int, value: str, split: str, version: int | None, provenance: str) -> bytes:
    """A SnapshotItem row (less its snapshot id) in COPY text format. JSON text holds no raw tab, newline
    or carriage return (they are escaped inside strings), so doubling its backslashes is all it needs."""
    version_text = "\\N" if version is None else version
    value, provenance = value.replace("\\", "\\\\"), provenance.replace("\\", "\\\\")
    return f"{item_id}\t{value}\t{split}\t{version_text}\t{provenance}\n".encode()


def _copy_fields(line: bytes) -> tuple[int, str, str, int | None, str]:
    """The inverse of `_copy_line`."""
    item_id, value, split, version, provenance = line.decode("utf-8").rstrip("\n").split("\t")
    return (
        int(item_id),
        value.replace("\\\\", "\\"),
        split,
        None if version == "\\N" else int(version),
        provenance.replace("\\\\", "\\"),
    )


def _label_names(row: dict[str, Any]) -> tuple[str, ...]:
    if "label" in row:
        return (row["label"],)
    if "spans" in row:  # a span row counts once per label it marks
        return tuple(sorted({span["label"] for span in row["spans"]}))
    return tuple(row.get("labels", ()))


def _write_jsonl(
    *,
    project: Project,
    directory: Path,
    rows_out: BinaryIO,
    keep_train_labels: bool = False,
    assigned: Assigned | None = None,
) -> tuple[Path, str, dict[str, Any], list[str]]:
    """Stream the rows to a temporary file while hashing; return (file, sha256, counts, train value keys).

    The SnapshotItem rows made from the same values (see `_final_rows`) go to `rows_out` (a `_RowsFile`
    or a `_RowsCopy`). The train value keys (in row order) are collected only when asked, for a
    class-balance report.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".tmp-{uuid.uuid4().hex}.jsonl"
    digest = hashlib.sha256()
    # One count per (split, guideline version, source, labels) while streaming; the manifest's
    # per-field counts are summed from it afterwards.
    combos: Counter[tuple[str, int | None, str, tuple[str, ...]]] = Counter()
    train_labels: list[str] = []
    try:
        with tmp.open("wb") as out:
            for row, copy_line in _final_rows(project=project, assigned=assigned):
                line = canonical_line(row)
                digest.update(line)
                out.write(line)
                rows_out.write(copy_line)
                split = row["split"]
                combos[split, row["guideline_version"], row["provenance"]["source"], _label_names(row)] += 1
                if keep_train_labels and split == Split.TRAIN:
                    train_labels.append(sys.intern(value_key(value_of(row))))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    splits_count: Counter[str] = Counter()
    labels_count: Counter[str] = Counter()
    by_split: dict[str, Counter[str]] = {s: Counter() for s in Split.values}
    versions: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for (split, version, source, labels), k in combos.items():
        splits_count[split] += k
        versions[str(version)] += k
        sources[source] += k
        for label in labels:
            labels_count[label] += k
            by_split[split][label] += k
    n = combos.total()
    counts = {
        "item_count": n,
        "splits": {s: splits_count.get(s, 0) for s in Split.values},
        "split_shares": {s: round(splits_count.get(s, 0) / n, 6) if n else 0.0 for s in Split.values},
        "labels": dict(sorted(labels_count.items())),
        "labels_by_split": {s: dict(sorted(c.items())) for s, c in by_split.items()},
        "guideline_versions": dict(sorted(versions.items())),
        "sources": dict(sorted(sources.items())),
        "bytes": tmp.stat().st_size,
    }
    return tmp, digest.hexdigest(), counts, train_labels


def _agreement_figures(*, project: Project) -> dict[str, Any]:
    """The headline agreement figures; they need the annotations only, not the final values."""
    rows = [row[:3] for row in agreement_rows(project=project)]
    if not rows:
        return {}
    return agreement.agreement_summary(rows)["overall"]


def _noise_figures(*, project: Project) -> dict[str, Any]:
    scan = NoiseScan.objects.filter(project=project, status=ScanStatus.SUCCEEDED).order_by("-finished_at").first()
    if scan is None:
        return {}
    finished_at = scan.finished_at.isoformat() if scan.finished_at else None
    return {"scan_id": scan.pk, "finished_at": finished_at, **scan.summary}


def _copy_rows(cursor: Any, lines: BinaryIO, snapshot_id: int) -> None:
    """COPY SnapshotItem rows from snapshot-row lines (see `_final_rows`) on PostgreSQL: a block of lines
    at a time as they are, each line prefixed with the snapshot id."""
    table = SnapshotItem._meta.db_table
    prefix = f"{snapshot_id}\t".encode()
    with cursor.connection.cursor().copy(f"COPY {table} ({ROW_COLUMNS}) FROM STDIN") as copy:
        while block := lines.read(COPY_BLOCK):
            block += lines.readline()  # whole lines only
            copy.write(prefix + block[:-1].replace(b"\n", b"\n" + prefix) + b"\n")


class _RowsFile:
    """Snapshot rows kept in a file beside the JSONL, inserted with the Snapshot row once it is hashed.

    Plain SQL rather than bulk_create: a model instance per row cost more than the rest of a
    million-row snapshot together. COPY on PostgreSQL, executemany elsewhere.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f".tmp-{uuid.uuid4().hex}.rows"
        self.out: BinaryIO = self.path.open("wb")

    def create(self, **fields: Any) -> Snapshot:
        self.out.close()
        try:
            with transaction.atomic():
                snapshot = Snapshot.objects.create(**fields)
                with connection.cursor() as cursor, self.path.open("rb") as lines:
                    if connection.vendor == "postgresql":
                        _copy_rows(cursor, lines, snapshot.pk)
                    else:
                        _insert_lines(cursor, lines, snapshot.pk)
        finally:
            self.path.unlink(missing_ok=True)
        return snapshot

    def discard(self) -> BaseException | None:
        self.out.close()
        self.path.unlink(missing_ok=True)
        return None


def _insert_lines(cursor: Any, lines: BinaryIO, snapshot_id: int) -> None:
    sql = f"INSERT INTO {SnapshotItem._meta.db_table} ({ROW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for line in lines:
        batch.append((snapshot_id, *_copy_fields(line)))
        if len(batch) >= INSERT_BATCH:
            cursor.executemany(sql, batch)
            batch.clear()
    if batch:
        cursor.executemany(sql, batch)


class _RowsCopy:
    """Snapshot rows COPYed on a second connection while the JSONL pass makes them (PostgreSQL).

    The rows travel through a pipe into a COPY that a thread runs in its own transaction, with the
    snapshot id drawn from the id sequence beforehand; the rows' reference to their item is checked as
    they arrive, the one to the Snapshot row (which needs the hash) when `create` adds that row and the
    transaction commits. So the database inserts and checks the rows while this process hashes, instead
    of after. `discard` rolls all of it back. If the COPY fails, its end of the pipe closes: the
    writer gets a BrokenPipeError and `discard` returns the COPY's own error.
    """

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self.out: BinaryIO = os.fdopen(write_end, "wb", buffering=COPY_BLOCK)
        self._lines: BinaryIO = os.fdopen(read_end, "rb", buffering=COPY_BLOCK)
        self._fields: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._done = _in_thread("labelloop-snapshot-rows", self._run)

    def _run(self) -> Snapshot:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
                    "AND confrelid = %s::regclass",
                    [SnapshotItem._meta.db_table, Item._meta.db_table],
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f"SET CONSTRAINTS {connection.ops.quote_name(name)} IMMEDIATE")
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [Snapshot._meta.db_table])
                snapshot_id = cursor.fetchone()[0]
                _copy_rows(cursor, self._lines, snapshot_id)
                fields = self._fields.get()
                if fields is None:
                    raise _Discarded
                return Snapshot.objects.create(pk=snapshot_id, **fields)
        finally:
            self._lines.close()

    def create(self, **fields: Any) -> Snapshot:
        with contextlib.suppress(BrokenPipeError):  # the COPY stopped early: its own error is raised below
            self.out.close()  # end of the rows: the COPY completes
        self._fields.put(fields)
        return self._done.result()

    def discard(self) -> BaseException | None:
        with contextlib.suppress(BrokenPipeError):  # the COPY already stopped
            self.out.close()
        self._fields.put(None)
        wait([self._done])
        error = self._done.exception()
        return None if isinstance(error, _Discarded) else error


class _Discarded(Exception):
    """Rolls back the rows of a snapshot that is not made after all."""


def snapshot_create(
    *,
    project: Project,
    user: User,
    name: str,
    seed: int = 0,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    group_field: str = "",
    balance_mode: str = "",
    allow_small_test: bool = False,
) -> Snapshot:
    """Assign missing splits, write and hash the JSONL, then create the immutable snapshot and its rows.

    A test split with fewer than `LABELLOOP_MIN_TEST_PER_LABEL` items of some label is refused (SMALL_TEST,
    checked on the assignment before any split is stored, so a refusal changes nothing) unless
    `allow_small_test`: then the manifest carries the warning (`warnings`, `small_test`).
    """
    name, group_field = name.strip(), group_field.strip()
    if not name:
        raise ServiceError(NAME_REQUIRED, field="name")
    ratios = _check_ratios(ratios)
    if balance_mode and balance_mode not in dict(BALANCE_MODES):
        modes = [mode for mode, _ in BALANCE_MODES]
        raise ServiceError(UNKNOWN_BALANCE.format(mode=balance_mode, modes=modes), field="balance_mode")
    if balance_mode and not project.task_kind.has_labels:
        raise ServiceError(BALANCE_NEEDS_LABELS, field="balance_mode")
    if balance_mode and project.task_kind.needs_text:
        raise ServiceError(BALANCE_NOT_FOR_SPANS, field="balance_mode")
    if not latest_decisions(project=project).exists():
        raise ServiceError(NOTHING_APPROVED)
    assigned, new = splits_assign_missing(project=project, seed=seed, ratios=ratios, group_field=group_field)
    if assigned is not None:
        _small_test_check(assigned.labels_by_split, allow=allow_small_test)
    background = _second_connection_allowed()
    directory = Path(settings.MEDIA_ROOT) / SNAPSHOT_DIR / f"project-{project.pk}"
    write = functools.partial(_write_jsonl, project=project, directory=directory, keep_train_labels=bool(balance_mode))
    rows: _RowsFile | _RowsCopy = _RowsCopy() if background else _RowsFile(directory)
    tmp: Path | None = None
    try:
        stored = _store_in_background(project=project, new=new, background=background)
        try:
            tmp, content_hash, counts, train_labels = write(rows_out=rows.out, assigned=assigned)
        finally:
            wait([stored])  # the store would go on past a failed write otherwise
        split_report = {"assigned_now": stored.result()}  # raises the store's failure
        if assigned is not None and split_report["assigned_now"] != assigned.new:
            # A concurrent snapshot stored some of these items' splits first, and they keep theirs: write
            # the file again with the splits as stored.
            tmp.unlink()
            tmp = None
            rows.discard()
            rows = _RowsFile(directory)
            tmp, content_hash, counts, train_labels = write(rows_out=rows.out)
        small_test = _small_test_check(_labels_by_split(counts), allow=allow_small_test)  # as written
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        failure = rows.discard()
        if isinstance(exc, BrokenPipeError) and failure is not None:
            raise failure from exc  # the COPY's own error says what went wrong
        raise

    final_path = directory / f"{content_hash}.jsonl"
    os.replace(tmp, final_path)  # same bytes whenever the name is the same: content-addressed
    try:
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "task_type": project.task_type,
            "content_hash": content_hash,
            **counts,
            "split_params": {"seed": seed, "ratios": list(ratios), "group_field": group_field},
            "split_assignment": split_report,
            "agreement": _agreement_figures(project=project),
            "noise": _noise_figures(project=project),
        }
        if small_test:
            minimum = min_test_per_label()
            manifest["small_test"] = {
                "minimum": minimum,
                "labels": [{"label": label, "test": test, "total": total} for label, test, total in small_test],
            }
            manifest["warnings"] = [SMALL_TEST_WARNING.format(shortfall=_shortfall_text(small_test), minimum=minimum)]
        if balance_mode:
            # The report, not the row list: a training run recomputes `keep` from the train rows, which
            # are in item id order in the file, with the same mode and seed.
            balance = splits.class_balance(train_labels, balance_mode, seed)
            manifest["class_balance"] = {k: v for k, v in balance.items() if k != "keep"}
    except BaseException:
        rows.discard()
        raise
    snapshot = rows.create(
        project=project,
        name=name[:200],
        content_hash=content_hash,
        item_count=counts["item_count"],
        seed=seed,
        manifest=manifest,
        file_path=str(final_path.relative_to(settings.MEDIA_ROOT)),
        created_by=user,
    )
    webhook_events.snapshot_created(snapshot=snapshot)
    return snapshot


def _labels_by_split(counts: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per split and label counts of a written snapshot; data without labels counts all its items under ""."""
    if counts["labels"]:
        return counts["labels_by_split"]
    return {split: {"": n} for split, n in counts["splits"].items() if n}


def _small_test_check(by_split: dict[str, dict[str, int]], *, allow: bool) -> list[tuple[str, int, int]]:
    """The labels short of test items; raises SMALL_TEST unless the owner allows a small test split."""
    minimum = min_test_per_label()
    short = splits.small_test_labels(by_split, minimum) if minimum > 0 else []
    if short and not allow:
        raise ServiceError(
            SMALL_TEST.format(shortfall=_shortfall_text(short), minimum=minimum), field="allow_small_test"
        )
    return short


def snapshot_file(snapshot: Snapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / snapshot.file_path


def snapshot_lines(*, snapshot: Snapshot, split: str = "") -> Iterator[bytes]:
    """The snapshot's JSONL, whole or one split, streamed from its content-addressed file."""
    if split and split not in Split.values:
        raise ServiceError(UNKNOWN_SPLIT.format(split=split), field="split")
    return _read_lines(snapshot_file(snapshot), split)


def _read_lines(path: Path, split: str) -> Iterator[bytes]:
    with path.open("rb") as lines:
        for line in lines:
            if not split or json.loads(line)["split"] == split:
                yield line


def snapshot_rows_hash(*, snapshot: Snapshot) -> str:
    """sha256 rebuilt from the SnapshotItem rows and their items' text: equals `content_hash` while immutable."""
    task_type = snapshot.manifest.get("task_type", snapshot.project.task_type)
    digest = hashlib.sha256()
    rows = (
        SnapshotItem.objects.filter(snapshot=snapshot)
        .order_by("item_id")
        .values_list("item_id", "item__external_id", "item__text", "value", "split", "guideline_version", "provenance")
    )
    for item_id, external_id, text, value, split, version, provenance in rows.iterator(chunk_size=READ_CHUNK):
        digest.update(
            canonical_line(
                canonical_row(
                    task_type=task_type,
                    item_id=item_id,
                    external_id=external_id,
                    text=text,
                    value=value,
                    split=split,
                    guideline_version=version,
                    provenance=provenance,
                )
            )
        )
    return digest.hexdigest()


def snapshot_compare(*, old: Snapshot, new: Snapshot, examples: int = 100) -> dict[str, Any]:
    """Items added, removed and relabelled from `old` to `new`: a merge of two id-ordered streams."""

    def stream(snapshot: Snapshot) -> Iterator[tuple[int, dict[str, Any]]]:
        rows = SnapshotItem.objects.filter(snapshot=snapshot).order_by("item_id").values_list("item_id", "value")
        return rows.iterator(chunk_size=READ_CHUNK)

    report: dict[str, Any] = {
        "added": 0,
        "removed": 0,
        "relabelled": 0,
        "unchanged": 0,
        "examples": {"added": [], "removed": [], "relabelled": []},
    }

    def note(kind: str, entry: dict[str, Any]) -> None:
        report[kind] += 1
        if len(report["examples"][kind]) < examples:
            report["examples"][kind].append(entry)

    old_rows, new_rows = stream(old), stream(new)
    a, b = next(old_rows, None), next(new_rows, None)
    while a is not None or b is not None:
        if a is not None and (b is None or a[0] < b[0]):
            note("removed", {"item_id": a[0], "old": a[1]})
            a = next(old_rows, None)
        elif b is not None and (a is None or b[0] < a[0]):
            note("added", {"item_id": b[0], "new": b[1]})
            b = next(new_rows, None)
        else:
            assert a is not None and b is not None  # the same item id on both sides
            if a[1] != b[1]:
                note("relabelled", {"item_id": a[0], "old": a[1], "new": b[1]})
            else:
                report["unchanged"] += 1
            a, b = next(old_rows, None), next(new_rows, None)
    return report
