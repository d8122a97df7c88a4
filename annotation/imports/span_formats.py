"""The span file formats users bring and take away (no Django): CoNLL/BIO and Label Studio's JSON export.

Reading, each format becomes the records a JSONL import would give ({"text": ..., "spans": [...]}), so the
import's checks (offsets against the exact text, labels, overlap) and its modes apply unchanged. Writing,
a snapshot's rows become the same formats. Offsets here are Python string indices (code points);
Label Studio counts in JavaScript's UTF-16 units, which both directions convert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from annotation.imports.importers import (
    INVALID_JSON,
    NOT_UTF8,
    Record,
    RowError,
    _Reader,
    invalid_json,
)
from annotation.tasktypes import word_tokens

OUTSIDE = "O"
DOCSTART = "-DOCSTART-"

BAD_TAG = "tag {tag!r} is not O, B-<label>, I-<label>, E-<label> or S-<label>"
NO_TAG = "a CoNLL line needs a token and its tag, apart by a space or a tab"
NOT_A_TASK_LIST = "a Label Studio export is a JSON array of tasks, each an object with \"data\""
TASK_NOT_OBJECT = "task {n} is not an object"
TASK_NO_TEXT = "task {n} has no text in \"data\" (looked for {keys})"
TEXT_KEYS = ("text", "content", "sentence")
MAX_LABEL_STUDIO_BYTES = 256 * 1024 * 1024  # the export is parsed whole: bounded so memory stays bounded
TOO_LARGE = "a Label Studio export over {mib} MiB is too large to read whole; split it into several files"


# --- CoNLL / BIO -------------------------------------------------------------------------------


def spans_from_tags(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """The text (tokens joined by one space) and its spans from BIO/BIOES tags.

    An I- tag that does not continue a span of its label starts one (as conlleval reads it); ValueError
    names a tag that is none of these.
    """
    text_parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    at = 0
    for token in tokens:
        offsets.append((at, at + len(token)))
        text_parts.append(token)
        at += len(token) + 1
    spans: list[dict[str, Any]] = []
    open_span: dict[str, Any] | None = None
    for (start, end), tag in zip(offsets, tags, strict=True):
        if tag == OUTSIDE:
            open_span = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I", "E", "S") or not label:
            raise ValueError(BAD_TAG.format(tag=tag))
        if prefix in ("I", "E") and open_span is not None and open_span["label"] == label:
            open_span["end"] = end
        else:
            open_span = {"start": start, "end": end, "label": label}
            spans.append(open_span)
        if prefix in ("E", "S"):
            open_span = None
    return " ".join(text_parts), spans


def tags_for(text: str, spans: Sequence[Mapping[str, Any]], tokens: Sequence[tuple[int, int]]) -> list[str]:
    """BIO tags of `tokens` (code-point offsets into `text`): a token is inside the first span (by start,
    longest first) that overlaps it; B- where that span starts at or before the token, I- after its first."""
    ordered = sorted(spans, key=lambda s: (s["start"], -s["end"]))
    tags: list[str] = []
    previous: Mapping[str, Any] | None = None
    for start, end in tokens:
        span = next((s for s in ordered if s["start"] < end and start < s["end"]), None)
        if span is None:
            tags.append(OUTSIDE)
            previous = None
            continue
        tags.append(("I-" if span is previous else "B-") + span["label"])
        previous = span
    return tags


def to_conll(rows: Iterable[tuple[str, Sequence[dict[str, Any]]]]) -> Iterator[str]:
    """CoNLL lines ("token TAG"), a blank line after each text; tokens are the words of the text."""
    for text, spans in rows:
        tokens = word_tokens(text)
        for (start, end), tag in zip(tokens, tags_for(text, spans, tokens), strict=True):
            yield f"{text[start:end]} {tag}\n"
        yield "\n"


class ConllReader(_Reader):
    """Sentences of "token ... tag" lines (the tag is the last column), a blank line between them."""

    def __iter__(self) -> Iterator[Record]:
        tokens: list[str] = []
        tags: list[str] = []
        first = 0
        problems: list[RowError] = []
        for raw in self.lines:
            line = self.lines.line
            problems.extend(self._line_problems())
            stripped = raw.strip()
            if not stripped or stripped.startswith(DOCSTART):
                if tokens or problems:
                    yield self._record(first, tokens, tags, problems)
                tokens, tags, problems = [], [], []
                continue
            if not tokens and not problems:
                first = line
            parts = stripped.split()
            if len(parts) < 2:
                problems.append(RowError(line, "tag", NO_TAG))
                continue
            tokens.append(parts[0])
            tags.append(parts[-1])
        if tokens or problems:
            yield self._record(first, tokens, tags, problems)

    def _record(self, line: int, tokens: list[str], tags: list[str], problems: list[RowError]) -> Record:
        if problems:
            return line, None, problems
        try:
            text, spans = spans_from_tags(tokens, tags)
        except ValueError as exc:
            return line, None, [RowError(line, "tag", str(exc))]
        if self.columns is None:
            self.columns = frozenset(("text", "spans"))
            self.column_order = ("text", "spans")
        return line, {"text": text, "spans": spans}, []


# --- Label Studio ------------------------------------------------------------------------------


def utf16_to_code_points(text: str) -> dict[int, int]:
    """UTF-16 unit index → code-point index for every boundary of `text` (JavaScript → Python offsets)."""
    out = {0: 0}
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        out[units] = i + 1
    return out


def code_points_to_utf16(text: str) -> list[int]:
    """Code-point index → UTF-16 unit index, for every index 0..len(text) (Python → JavaScript offsets)."""
    out = [0]
    for ch in text:
        out.append(out[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return out


def _studio_spans(text: str, result: list[Any]) -> list[dict[str, Any]]:
    """Spans from a Label Studio result list; offsets read as code points when the quoted text matches there,
    else as UTF-16 units (what Label Studio's browser counts) when it matches there, else as given (the
    import's check then names the mismatch)."""
    to_points = utf16_to_code_points(text)
    spans: list[dict[str, Any]] = []
    for entry in result:
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, dict) or "start" not in value or "end" not in value:
            continue  # choices, ratings and other controls: not spans
        start, end, quoted = value.get("start"), value.get("end"), value.get("text")
        labels = value.get("labels") or value.get("hypertextlabels") or []
        offsets = isinstance(start, int) and isinstance(end, int) and isinstance(quoted, str)
        if offsets and text[start:end] != quoted and start in to_points and end in to_points:
            points = (to_points[start], to_points[end])
            if text[points[0] : points[1]] == quoted:
                start, end = points
        for label in labels if isinstance(labels, list) else [labels]:
            span: dict[str, Any] = {"start": start, "end": end, "label": label}
            if isinstance(quoted, str):
                span["text"] = quoted
            spans.append(span)
    return spans


def _chosen_result(task: dict[str, Any]) -> list[Any] | None:
    """The task's latest kept annotation's result, else its first prediction's; None when it has neither."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if annotations:
        return annotations[-1].get("result") or []
    predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    return (predictions[0].get("result") or []) if predictions else None


class LabelStudioReader(_Reader):
    """Label Studio's JSON export (a JSON array of tasks). A task's `data` text becomes the item text, its
    other `data` fields metadata, its id the external id, and its latest annotation (or its first prediction)
    the spans. Errors name the task's number (1-based) where other formats name a line."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self._stream = stream
        self._read = 0

    @property
    def bytes_read(self) -> int:
        return self._read

    def __iter__(self) -> Iterator[Record]:
        raw = self._stream.read(MAX_LABEL_STUDIO_BYTES + 1)
        self._read = len(raw)
        if len(raw) > MAX_LABEL_STUDIO_BYTES:
            yield 1, None, [RowError(None, None, TOO_LARGE.format(mib=MAX_LABEL_STUDIO_BYTES // (1024 * 1024)))]
            return
        try:
            tasks = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield 1, None, [RowError(1, None, NOT_UTF8)]
            return
        except json.JSONDecodeError as exc:
            yield 1, None, [RowError(exc.lineno, None, invalid_json(exc))]
            return
        except ValueError as exc:
            yield 1, None, [RowError(1, None, INVALID_JSON.format(reason=exc))]
            return
        if isinstance(tasks, dict):
            tasks = [tasks]
        if not isinstance(tasks, list):
            yield 1, None, [RowError(1, None, NOT_A_TASK_LIST)]
            return
        for n, task in enumerate(tasks, start=1):
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                yield n, None, [RowError(n, None, TASK_NOT_OBJECT.format(n=n))]
                continue
            data = task["data"]
            key = next((k for k in TEXT_KEYS if isinstance(data.get(k), str)), None)
            if key is None:
                yield n, None, [RowError(n, "data", TASK_NO_TEXT.format(n=n, keys=list(TEXT_KEYS)))]
                continue
            text = data[key]
            record: dict[str, Any] = {k: v for k, v in data.items() if k != key}
            record["text"] = text
            if task.get("id") is not None:
                record["id"] = str(task["id"])
            result = _chosen_result(task)
            if result is not None:
                record["spans"] = _studio_spans(text, result)
            if self.columns is None:
                self.columns = frozenset(("text", "id", "spans"))
                self.column_order = ("text", "id", "spans")
            yield n, record, []


def to_label_studio(rows: Iterable[dict[str, Any]], *, from_name: str = "label", to_name: str = "text") -> list:
    """Label Studio tasks from snapshot rows ({"id", "external_id", "text", "spans", ...}): one annotation each,
    offsets in UTF-16 units as Label Studio's browser counts them, each span's text quoted."""
    tasks = []
    for row in rows:
        text = row["text"]
        units = code_points_to_utf16(text)
        result = [
            {
                "id": f"{row['id']}-{n}",
                "from_name": from_name,
                "to_name": to_name,
                "type": "labels",
                "value": {
                    "start": units[s["start"]],
                    "end": units[s["end"]],
                    "text": text[s["start"] : s["end"]],
                    "labels": [s["label"]],
                },
            }
            for n, s in enumerate(row.get("spans", []))
        ]
        data = {"text": text, "labelloop_id": row["id"], "split": row.get("split", "")}
        if row.get("external_id"):
            data["external_id"] = row["external_id"]
        tasks.append({"data": data, "annotations": [{"result": result, "was_cancelled": False}]})
    return tasks

