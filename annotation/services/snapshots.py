"""Snapshots: freeze the approved items' final values into a content-hashed, immutable dataset.

`snapshot_create` runs in three streaming passes, so memory stays bounded by one batch of rows
(plus the split assignment's per-item keys and text fingerprints when new items need a split):
1. splits: items without a split get one from the pure `splits.assign` (existing splits, group keys
   and near-duplicates respected) and it is stored as a new ItemSplit row (`ON CONFLICT DO NOTHING`),
   so a split once set never changes (a database trigger refuses updates too);
2. the canonical JSONL is written to a temporary file while sha256 hashes it and the manifest counts;
   the same pass writes each SnapshotItem row, from the same values, to a rows file in COPY format;
   the JSONL is then named by its hash (content-addressed);
3. the Snapshot row and its SnapshotItem rows (COPYed from the rows file) are created in one
   transaction, so the rows are exactly what was hashed: nothing is ever updated afterwards.

The canonical line of an item is `canonical_line(canonical_row(...))`: JSON with sorted keys and no
spaces, UTF-8, one line per item in item id order. `snapshot_rows_hash` rebuilds the hash from the
SnapshotItem rows alone (with the items' text), which is how immutability is checked.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from .. import agreement, splits
from ..models import (
    Item,
    ItemSplit,
    NoiseScan,
    Project,
    ScanStatus,
    Snapshot,
    SnapshotItem,
    Split,
    TaskType,
)
from ..selectors_review import annotation_rows, latest_decisions
from ..values import value_key
from . import ServiceError

FORMAT = "labelloop-snapshot/1"
SNAPSHOT_DIR = "snapshots"
READ_CHUNK = 5000
INSERT_BATCH = 5000
COPY_BLOCK = 1 << 20  # bytes of the rows file per COPY write
SPLIT_INSERT_ROWS = 50_000  # rows per executemany on SQLite
TEXTS_PER_QUERY = 900  # ids per `IN (...)`: under SQLite's 999-parameter limit of older builds
VALUE_KEYS = ("label", "labels", "response")
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
BALANCE_NEEDS_LABELS = "Class balancing needs class labels; instruction data has none."


def text_key(task_type: str) -> str:
    return "prompt" if task_type == TaskType.INSTRUCTION else "text"


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
        text_key(task_type): text,
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
    return values  # type: ignore[return-value]


def _group_expression(group_field: str):
    """Items share a split when they share this: the item's group key, or a metadata field."""
    return KeyTextTransform(group_field, "item__metadata") if group_field else F("item__group_key")


def splits_assign_missing(
    *, project: Project, seed: int, ratios: Sequence[float] = DEFAULT_RATIOS, group_field: str = ""
) -> dict[str, Any]:
    """Give every approved item without a split one, keeping every split already assigned.

    Returns how many items got a split now. Memory: the per-item keys, labels and groups that
    `splits.assign` needs for stratification, and fingerprints of the texts instead of the texts
    (a text is fetched again only to verify a near-duplicate candidate pair); released once it answers.
    """
    ratios = _check_ratios(ratios)
    finals = latest_decisions(project=project)
    if not finals.filter(item__split_row__isnull=True).exists():
        return {"assigned_now": 0}
    keys: list[int] = []
    labels: list[str] = []
    groups: list[str | None] = []
    existing: dict[int, str] = {}
    single = project.task_type == TaskType.SINGLE_LABEL
    classify = project.task_type != TaskType.INSTRUCTION
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
            labels.append(sys.intern(label if single else value_key(label)) if classify else "")
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
    assignment = splits.assign(keys, labels, groups, texts, seed, ratios=ratios, existing=existing)
    for column in (keys, labels, groups):
        column.clear()
    del texts
    new = ((key, split) for key, split in assignment.items() if key not in existing)
    return {"assigned_now": _store_splits(project=project, new=new)}


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


def _final_rows(*, project: Project) -> Iterator[tuple[dict[str, Any], str]]:
    """(canonical row, its snapshot-row line) of every approved item that has a split, in item id order.

    The snapshot-row line is the SnapshotItem row in PostgreSQL's COPY text format, less the snapshot
    id (not known until the file is hashed): made here from the very values of the canonical row, so
    the stored rows are what was hashed without reading the JSONL back. The value arrives as JSON text
    and classification values repeat, so it is decoded once per distinct value.
    """
    rows = (
        latest_decisions(project=project)
        .filter(item__split_row__isnull=False)
        .order_by("item_id")
        .values_list(
            "item_id",
            "item__external_id",
            "item__text",
            Cast("value", output_field=TextField()),
            "item__split_row__split",
            "guideline_version__version",
            "id",
            "source",
            "reviewer__username",
            # As text, parsed by datetime.fromisoformat: Django's loader for PostgreSQL timestamps is
            # pure Python and cost more than the rest of the row's decoding together.
            Cast("created_at", output_field=TextField()),
        )
    )
    task_type = project.task_type
    decode = functools.lru_cache(maxsize=1024)(json.loads)
    quoted = functools.lru_cache(maxsize=1024)(json.dumps)  # sources and reviewer names: a few of each
    for item_id, external_id, text, value, split, version, decision_id, source, who, at in rows.iterator(
        chunk_size=READ_CHUNK
    ):
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
    what `datetime.isoformat()` gives for the aware UTC datetime Django would have loaded."""
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
    return tuple(row.get("labels", ()))


def _write_jsonl(
    *, project: Project, directory: Path, keep_train_labels: bool = False
) -> tuple[Path, Path, str, dict[str, Any], list[str]]:
    """Stream the rows to a temporary file while hashing; return (file, rows file, sha256, counts, train value keys).

    The rows file holds the SnapshotItem rows made from the same values (see `_final_rows`), for
    `_insert_rows`. The train value keys (in row order) are collected only when asked, for a
    class-balance report.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    tmp, rows_tmp = directory / f".tmp-{name}.jsonl", directory / f".tmp-{name}.rows"
    digest = hashlib.sha256()
    # One count per (split, guideline version, source, labels) while streaming; the manifest's
    # per-field counts are summed from it afterwards.
    combos: Counter[tuple[str, int | None, str, tuple[str, ...]]] = Counter()
    train_labels: list[str] = []
    try:
        with tmp.open("wb") as out, rows_tmp.open("wb") as rows_out:
            for row, copy_line in _final_rows(project=project):
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
        rows_tmp.unlink(missing_ok=True)
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
    return tmp, rows_tmp, digest.hexdigest(), counts, train_labels


def _agreement_figures(*, project: Project) -> dict[str, Any]:
    """The headline agreement figures; they need the annotations only, not the final values."""
    rows = [row[:3] for row in annotation_rows(project=project)]
    if not rows:
        return {}
    return agreement.agreement_summary(rows)["overall"]


def _noise_figures(*, project: Project) -> dict[str, Any]:
    scan = NoiseScan.objects.filter(project=project, status=ScanStatus.SUCCEEDED).order_by("-finished_at").first()
    if scan is None:
        return {}
    return {"scan_id": scan.pk, "finished_at": scan.finished_at.isoformat(), **scan.summary}


def _insert_rows(*, rows_path: Path, snapshot: Snapshot) -> None:
    """SnapshotItem rows from the rows file `_write_jsonl` wrote beside the hashed JSONL: COPY on
    PostgreSQL (the file's blocks as they are, each line prefixed with the snapshot id), executemany
    elsewhere. Plain SQL rather than bulk_create: a model instance per row cost more than the rest of a
    million-row snapshot together. Runs inside the caller's transaction.
    """
    table = SnapshotItem._meta.db_table
    columns = "snapshot_id, item_id, value, split, guideline_version, provenance"
    prefix = f"{snapshot.pk}\t".encode()
    with connection.cursor() as cursor, rows_path.open("rb") as lines:
        if connection.vendor == "postgresql":
            with cursor.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                while block := lines.read(COPY_BLOCK):
                    block += lines.readline()  # whole lines only
                    copy.write(prefix + block[:-1].replace(b"\n", b"\n" + prefix) + b"\n")
            return
        sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608 - names from the model
        batch: list[tuple[Any, ...]] = []
        for line in lines:
            batch.append((snapshot.pk, *_copy_fields(line)))
            if len(batch) >= INSERT_BATCH:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def snapshot_create(
    *,
    project: Project,
    user: AbstractBaseUser,
    name: str,
    seed: int = 0,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    group_field: str = "",
    balance_mode: str = "",
) -> Snapshot:
    """Assign missing splits, write and hash the JSONL, then create the immutable snapshot and its rows."""
    name, group_field = name.strip(), group_field.strip()
    if not name:
        raise ServiceError(NAME_REQUIRED, field="name")
    ratios = _check_ratios(ratios)
    if balance_mode and balance_mode not in dict(BALANCE_MODES):
        modes = [mode for mode, _ in BALANCE_MODES]
        raise ServiceError(UNKNOWN_BALANCE.format(mode=balance_mode, modes=modes), field="balance_mode")
    if balance_mode and project.task_type == TaskType.INSTRUCTION:
        raise ServiceError(BALANCE_NEEDS_LABELS, field="balance_mode")
    if not latest_decisions(project=project).exists():
        raise ServiceError(NOTHING_APPROVED)
    split_report = splits_assign_missing(project=project, seed=seed, ratios=ratios, group_field=group_field)

    directory = Path(settings.MEDIA_ROOT) / SNAPSHOT_DIR / f"project-{project.pk}"
    tmp, rows_path, content_hash, counts, train_labels = _write_jsonl(
        project=project, directory=directory, keep_train_labels=bool(balance_mode)
    )
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
        if balance_mode:
            # The report, not the row list: a training run recomputes `keep` from the train rows, which
            # are in item id order in the file, with the same mode and seed.
            balance = splits.class_balance(train_labels, balance_mode, seed)
            manifest["class_balance"] = {k: v for k, v in balance.items() if k != "keep"}

        with transaction.atomic():
            snapshot = Snapshot.objects.create(
                project=project,
                name=name[:200],
                content_hash=content_hash,
                item_count=counts["item_count"],
                seed=seed,
                manifest=manifest,
                file_path=str(final_path.relative_to(settings.MEDIA_ROOT)),
                created_by=user,
            )
            _insert_rows(rows_path=rows_path, snapshot=snapshot)
    finally:
        rows_path.unlink(missing_ok=True)
    return snapshot


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
        "added": 0, "removed": 0, "relabelled": 0, "unchanged": 0,
        "examples": {"added": [], "removed": [], "relabelled": []},
    }

    def note(kind: str, entry: dict[str, Any]) -> None:
        report[kind] += 1
        if len(report["examples"][kind]) < examples:
            report["examples"][kind].append(entry)

    old_rows, new_rows = stream(old), stream(new)
    a, b = next(old_rows, None), next(new_rows, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            note("removed", {"item_id": a[0], "old": a[1]})
            a = next(old_rows, None)
        elif a is None or b[0] < a[0]:
            note("added", {"item_id": b[0], "new": b[1]})
            b = next(new_rows, None)
        else:
            if a[1] != b[1]:
                note("relabelled", {"item_id": a[0], "old": a[1], "new": b[1]})
            else:
                report["unchanged"] += 1
            a, b = next(old_rows, None), next(new_rows, None)
    return report

