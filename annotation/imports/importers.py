"""Reading and validating JSONL, CSV, CoNLL/BIO and Label Studio JSON import files (no Django).

Span projects read three more shapes (annotation/imports/span_formats.py turns each into the records JSONL
would give): JSONL with character offsets, CoNLL/BIO (a token and its tag a line, sentences apart by a blank
line) and Label Studio's JSON export.

An import is two streaming passes:

1. `scan` parses and validates every row, keeping only compact per-row facts (a 16-byte content digest,
   a 16-byte external-id digest, the line number) and the errors, so memory grows by ~40 bytes a row
   whatever the size of the texts. It also spills each valid row, parsed, to a temporary file in
   marshalled chunks, so that the second pass neither reads nor parses the source again;
2. `plan` finds exact duplicates (within the file and against the project's existing items) and
   repeated external ids with numpy over those digests;
3. `read_spill` streams the parsed rows back, chunk by chunk, for the writer to skip or insert.

Every error names the line and the field it is about; `RowError.describe(file_name)` spells it out
as "data.jsonl line 17, field 'text': missing".
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import marshal
import math
from array import array
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from annotation.tasktypes import InvalidValue, task_kind
from annotation.text import content_hash

JSONL = "jsonl"


CSV = "csv"


CONLL = "conll"


LABEL_STUDIO = "labelstudio"


FORMATS = (JSONL, CSV, CONLL, LABEL_STUDIO)


FORMAT_NAMES = {JSONL: "JSONL", CSV: "CSV", CONLL: "CoNLL / BIO", LABEL_STUDIO: "Label Studio JSON export"}


EXTENSIONS = {
    ".jsonl": JSONL, ".ndjson": JSONL, ".csv": CSV, ".conll": CONLL, ".bio": CONLL, ".iob": CONLL,
    ".json": LABEL_STUDIO,
}


ALL_OTHER_FIELDS = "*"


# Source fields looked for, in order, when the mapping does not name one.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "prompt"),
    "response": ("response",),
    "external_id": ("id", "external_id"),
    "group_key": ("group_key", "group"),
    "prelabel": ("label", "labels", "spans", "entities", "prelabel"),
}


MAPPING_KEYS = (*DEFAULT_FIELDS, "metadata")




MAX_STORED_ERRORS = 100


# A partial import keeps its errors on the job for the owner to fix the rejected rows: more of them.
MAX_STORED_ERRORS_PARTIAL = 2000


MAX_DUPLICATE_EXAMPLES = 10


MAX_KEY_CHARS = 255  # Item.external_id and Item.group_key are CharField(255)


MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSONL line, or one CSV physical line; longer ones are an error

# The csv module refuses a field over 128 KiB with its own message; a field is bounded by the line limit instead,
# as in JSONL (a long article or a chat transcript is a real text).
csv.field_size_limit(MAX_LINE_BYTES)


DIGEST_BYTES = 16


NO_DIGEST = bytes(DIGEST_BYTES)


PROGRESS_EVERY_ROWS = 5000


SPILL_CHUNK_ROWS = 2000


SPILL_LENGTH_BYTES = 8


MEMBERSHIP_CHUNK = 100_000


# Error messages (tests import them).
EMPTY_FILE = "the file has no rows"


NOT_UTF8 = "not valid UTF-8 (save the file as UTF-8)"


LINE_TOO_LONG = f"the line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB"


NOT_AN_OBJECT = "each line must be one JSON object"


MISSING = "missing"


EMPTY = "empty"


NO_SUCH_COLUMN = "no such column in the header"


DUPLICATE_COLUMN = "the header names this column twice"


EMPTY_COLUMN_NAME = "the header has an empty column name"


TOO_LONG = f"longer than {MAX_KEY_CHARS} characters"


DUPLICATE_EXTERNAL_ID = "the same id is used on line {line}"


EXISTING_EXTERNAL_ID = "an item with this id already exists in the project"


CONFLICTING_DUPLICATE = (
    "the same text is on line {line} with a different label or none: neither line is imported; keep one of them, "
    "with the right label (an exact duplicate is otherwise skipped, and its label would be lost without a word)"
)


ONE_COLUMN_HEADER = (
    "the header was read as one column ({header!r}): columns must be separated by commas, and this file looks "
    "separated by {separator}; save it as comma-separated CSV"
)


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


INVALID_JSON = "invalid JSON: {reason}"


INVALID_JSON_AT = "invalid JSON: {reason} column {column}"  # reason ends "at": "Unterminated string starting at"


NUL_CHARACTER = "contains a NUL character (\\u0000), which the database cannot store"


NOT_A_NUMBER = "{constant} is not valid JSON"


NESTED_TOO_DEEP = "invalid JSON: nested too deeply"


NOT_FINITE = "{number} is too large for a JSON number"


RAGGED_ROW = "expected {expected} columns as in the header, found {found}"


BAD_CSV = "unreadable CSV: {reason}"


WRONG_TYPE = "must be {expected}, not {found}"


MORE_ERRORS = "{count} more errors not shown"


class MappingError(ValueError):
    """The mapping itself is malformed (not a row problem): the request is refused before any reading."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RowError:
    line: int | None
    field: str | None
    message: str

    def describe(self, file_name: str) -> str:
        where = file_name if self.line is None else f"{file_name} line {self.line}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"

    def as_json(self, file_name: str) -> dict[str, Any]:
        """The stored form: structured for the API, with a sentence ready to show."""
        return {"line": self.line, "field": self.field, "message": self.describe(file_name)}


class _RowInvalid(Exception):
    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def detect_format(file_name: str) -> str | None:
    """The format its extension names, or None when it names none we read."""
    lowered = file_name.lower()
    return next((fmt for ext, fmt in EXTENSIONS.items() if lowered.endswith(ext)), None)


@dataclass(frozen=True)
class Mapping:
    """Which source field feeds which item field. None: look for the defaults; "": do not use one.

    `metadata` is a list of source fields, or ALL_OTHER_FIELDS for every field the mapping does not use.
    """

    text: str | None = None
    response: str | None = None
    external_id: str | None = None
    group_key: str | None = None
    prelabel: str | None = None
    metadata: tuple[str, ...] | str = ALL_OTHER_FIELDS

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Mapping:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise MappingError('The mapping must be an object such as {"text": "prompt"}.', field="mapping")
        unknown = sorted(set(raw) - set(MAPPING_KEYS))
        if unknown:
            raise MappingError(f"Unknown mapping keys {unknown}; use {list(MAPPING_KEYS)}.", field="mapping")
        values: dict[str, Any] = {}
        for key in DEFAULT_FIELDS:
            value = raw.get(key)
            if value is not None and not isinstance(value, str):
                raise MappingError(f"mapping.{key} must be a field name.", field=key)
            values[key] = value.strip() if isinstance(value, str) else None
        if values["text"] == "":
            raise MappingError("mapping.text cannot be switched off: every item needs a text.", field="text")
        metadata = raw.get("metadata", ALL_OTHER_FIELDS)
        if metadata is None:
            metadata = ALL_OTHER_FIELDS
        if metadata != ALL_OTHER_FIELDS:
            if not isinstance(metadata, list | tuple) or not all(isinstance(m, str) and m for m in metadata):
                raise MappingError(
                    f'mapping.metadata must be a list of field names or "{ALL_OTHER_FIELDS}".', field="metadata"
                )
            metadata = tuple(metadata)
        return cls(metadata=metadata, **values)

    def resolve(
        self, columns: Collection[str], *, task_type: str, label_names: Sequence[str], allow_overlap: bool = False
    ) -> Schema:
        """Fix every field from the first row's keys (JSONL) or the header (CSV), once for the file."""
        chosen: dict[str, str | None] = {}
        for key, defaults in DEFAULT_FIELDS.items():
            given = getattr(self, key)
            if given is not None:
                chosen[key] = given or None
            else:
                found = next((name for name in defaults if name in columns), None)
                chosen[key] = found if found is not None or key != "text" else defaults[0]
        return Schema(
            text=chosen["text"] or DEFAULT_FIELDS["text"][0],
            response=chosen["response"],
            external_id=chosen["external_id"],
            group_key=chosen["group_key"],
            prelabel=chosen["prelabel"],
            metadata=None if self.metadata == ALL_OTHER_FIELDS else tuple(self.metadata),
            task_type=task_type,
            label_names=tuple(label_names),
            allow_overlap=allow_overlap,
        )


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    response: str
    external_id: str
    group_key: str
    metadata: dict[str, Any]
    prelabel: dict[str, Any] | None


# What pass 1 spills for pass 2: (row index, text, response, external id, metadata, group key, pre-label).
SpilledRow = tuple[int, str, str, str, dict[str, Any], str, dict[str, Any] | None]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


@dataclass(frozen=True)
class Schema:
    """A mapping resolved against one file: concrete source fields, or None where unused."""

    text: str
    response: str | None
    external_id: str | None
    group_key: str | None
    prelabel: str | None
    metadata: tuple[str, ...] | None  # None: all other fields
    task_type: str
    label_names: tuple[str, ...]
    allow_overlap: bool = False  # span projects: overlapping pre-labelled spans are allowed
    used: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        used = {self.text, self.response, self.external_id, self.group_key, self.prelabel} - {None}
        object.__setattr__(self, "used", frozenset(used))

    def as_mapping(self) -> dict[str, Any]:
        """What was actually used, stored on the job so the owner sees how the file was read."""
        return {
            "text": self.text,
            "response": self.response or "",
            "external_id": self.external_id or "",
            "group_key": self.group_key or "",
            "prelabel": self.prelabel or "",
            "metadata": ALL_OTHER_FIELDS if self.metadata is None else list(self.metadata),
        }

    def columns_required(self) -> tuple[str, ...]:
        """Source fields a CSV header must have: every one the mapping uses."""
        return tuple(f for f in (self.text, self.response, self.external_id, self.group_key, self.prelabel) if f)

    def build(self, record: dict[str, Any]) -> Row:
        """The row an item is made from, or _RowInvalid listing every field at fault."""
        problems: list[tuple[str | None, str]] = []
        text = record.get(self.text)
        if text is None:
            problems.append((self.text, MISSING))
        elif not isinstance(text, str):
            problems.append((self.text, WRONG_TYPE.format(expected="a string", found=_json_type(text))))
        elif not text.strip():
            problems.append((self.text, EMPTY))
        response = self._optional_text(record, self.response, problems)
        external_id = self._key(record, self.external_id, problems)
        group_key = self._key(record, self.group_key, problems)
        prelabel = self._prelabel(record, problems)
        if problems:
            raise _RowInvalid(problems)
        assert isinstance(text, str)  # no problems: the text is a non-empty string
        if self.metadata is None:
            used = self.used
            metadata = {k: v for k, v in record.items() if k not in used}
        else:
            metadata = {k: record[k] for k in self.metadata if k in record}
        return Row(text, response, external_id, group_key, metadata, prelabel)

    @staticmethod
    def _optional_text(record: dict[str, Any], name: str | None, problems: list) -> str:
        if name is None:
            return ""
        value = record.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append((name, WRONG_TYPE.format(expected="a string", found=_json_type(value))))
            return ""
        return value

    @staticmethod
    def _key(record: dict[str, Any], name: str | None, problems: list) -> str:
        """External ids and group keys: strings, or integers as ids often are."""
        if name is None:
            return ""
        value = record.get(name)
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            problems.append((name, WRONG_TYPE.format(expected="a string or an integer", found=_json_type(value))))
            return ""
        value = value.strip()
        if len(value) > MAX_KEY_CHARS:
            problems.append((name, TOO_LONG))
            return ""
        return value

    def _prelabel(self, record: dict[str, Any], problems: list) -> dict[str, Any] | None:
        if self.prelabel is None:
            return None
        raw = record.get(self.prelabel)
        if raw is None or raw == "" or raw == []:
            return None
        kind = task_kind(self.task_type)
        text = record.get(self.text)
        try:
            value = kind.value_from_cell(raw)
            return kind.normalise(
                value, self.label_names, text=text if isinstance(text, str) else "", allow_overlap=self.allow_overlap
            )
        except InvalidValue as exc:
            problems.append((self.prelabel, str(exc)))
            return None


class _Lines:
    """The physical lines of a binary stream, decoded, with the bytes and lines consumed so far."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.bytes_read = 0
        self.line = 0
        self.problems: list[tuple[int, str]] = []  # (line, message) found while reading, drained by readers

    def __iter__(self) -> Iterator[str]:
        readline = self.stream.readline
        while raw := readline(MAX_LINE_BYTES + 1):
            self.line += 1
            self.bytes_read += len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                self.problems.append((self.line, LINE_TOO_LONG))
                while (rest := readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    self.bytes_read += len(rest)
                self.bytes_read += len(rest)
                yield "\n"
                continue
            if self.line == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.problems.append((self.line, NOT_UTF8))
                text = raw.decode("utf-8", "replace")
            if "\x00" in text:
                self.problems.append((self.line, NUL_CHARACTER))
                text = text.replace("\x00", "")
            yield text


Record = tuple[int, dict[str, Any] | None, list[RowError]]


class _Reader:
    """Yields (line, record or None, errors) for each non-blank row; `columns` is known after the first."""

    columns: Collection[str] | None = None
    column_order: tuple[str, ...] = ()

    def __init__(self, stream: BinaryIO) -> None:
        self.lines = _Lines(stream)

    def __iter__(self) -> Iterator[Record]:
        raise NotImplementedError

    @property
    def bytes_read(self) -> int:
        return self.lines.bytes_read

    def _line_problems(self) -> list[RowError]:
        if not self.lines.problems:
            return []
        found = [RowError(line, None, message) for line, message in self.lines.problems]
        self.lines.problems.clear()
        return found


def invalid_json(exc: json.JSONDecodeError) -> str:
    """The decoder's reason with the column it names: its message alone reads cut off ("... starting at")."""
    reason = exc.msg if exc.msg.endswith(" at") else f"{exc.msg} at"
    return INVALID_JSON_AT.format(reason=reason, column=exc.colno)


def _reject_constant(constant: str) -> None:
    """NaN and Infinity are Python's extension to JSON; PostgreSQL's jsonb refuses them."""
    raise ValueError(NOT_A_NUMBER.format(constant=constant))


def _finite_float(raw: str) -> float:
    """1e999 parses to infinity, which PostgreSQL's jsonb refuses like NaN."""
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(NOT_FINITE.format(number=raw))
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class _JsonlReader(_Reader):
    def __iter__(self) -> Iterator[Record]:
        # one decoder, not one a line
        loads = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode
        for text in self.lines:
            line = self.lines.line
            problems = self._line_problems()
            if problems:
                yield line, None, problems
                continue
            if not text.strip():
                continue
            try:
                record = loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                yield line, None, [RowError(line, None, invalid_json(exc))]
                continue
            except ValueError as exc:
                yield line, None, [RowError(line, None, INVALID_JSON.format(reason=exc))]
                continue
            except RecursionError:  # arrays or objects nested about a thousand deep
                yield line, None, [RowError(line, None, NESTED_TOO_DEEP)]
                continue
            if not isinstance(record, dict):
                yield line, None, [RowError(line, None, NOT_AN_OBJECT)]
                continue
            if "\\u0000" in text and _has_nul(record):
                yield line, None, [RowError(line, None, NUL_CHARACTER)]
                continue
            if self.columns is None:
                self.columns = frozenset(record)
                self.column_order = tuple(record)
            yield line, record, []


class _CsvReader(_Reader):
    """CSV with a header row; quoted fields may span lines, and errors name the line a record starts on."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self.header_errors: list[RowError] = []
        self.header_line = 1

    def __iter__(self) -> Iterator[Record]:
        reader = csv.reader(self.lines, strict=True)
        header: list[str] | None = None
        while True:
            start = self.lines.line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, [*self._line_problems(), RowError(start, None, BAD_CSV.format(reason=exc))]
                continue
            problems = self._line_problems()
            if header is None:
                if problems:
                    self.header_errors.extend(problems)
                    return
                if not cells:
                    continue
                header = [c.strip() for c in cells]
                self.header_line = start
                self._check_header(header, start)
                if self.header_errors:
                    return
                self.columns = frozenset(header)
                self.column_order = tuple(header)
                continue
            if problems:
                yield start, None, problems
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip() and len(header) > 1):
                continue  # a blank line
            if len(cells) != len(header):
                message = RAGGED_ROW.format(expected=len(header), found=len(cells))
                yield start, None, [RowError(start, None, message)]
                continue
            yield start, dict(zip(header, cells, strict=True)), []

    def _check_header(self, header: list[str], line: int) -> None:
        if len(header) == 1:
            separator = next((name for sep, name in SEPARATORS.items() if sep in header[0]), None)
            if separator is not None:
                self.header_errors.append(
                    RowError(line, None, ONE_COLUMN_HEADER.format(header=header[0], separator=separator))
                )
                return
        seen: set[str] = set()
        for name in header:
            if not name:
                self.header_errors.append(RowError(line, None, EMPTY_COLUMN_NAME))
            elif name in seen:
                self.header_errors.append(RowError(line, name, DUPLICATE_COLUMN))
            seen.add(name)


def _reader(stream: BinaryIO, file_format: str) -> _Reader:
    from annotation.imports import span_formats

    if file_format == JSONL:
        return _JsonlReader(stream)
    if file_format == CSV:
        return _CsvReader(stream)
    if file_format == CONLL:
        return span_formats.ConllReader(stream)
    if file_format == LABEL_STUDIO:
        return span_formats.LabelStudioReader(stream)
    raise ValueError(f"unknown format {file_format!r}")


@dataclass
class Scan:
    """What pass 1 learnt: per-row digests (compact), the resolved schema, the errors (capped)."""

    schema: Schema | None = None
    rows: int = 0
    bytes_read: int = 0
    content: bytearray = field(default_factory=bytearray)  # DIGEST_BYTES per row
    ids: bytearray = field(default_factory=bytearray)  # DIGEST_BYTES per row, NO_DIGEST when the row has none
    labels: bytearray = field(default_factory=bytearray)  # DIGEST_BYTES per row of its label, NO_DIGEST for none
    lines: array = field(default_factory=lambda: array("I"))
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    max_errors: int = MAX_STORED_ERRORS
    # An error about the file rather than one row (its header, a mapped column it lacks, no rows at all):
    # nothing of it can be imported, whatever the mode.
    fatal: bool = False
    columns: tuple[str, ...] = ()  # the header (CSV) or the first object's keys (JSONL), in order

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)

    def add_fatal(self, error: RowError) -> None:
        self.fatal = True
        self.add_error(error)

    def error_summary(self) -> list[RowError]:
        """The stored errors in line order, plus one line saying how many were left out."""
        shown = sorted(self.errors, key=lambda e: (e.line or 0, e.field or ""))[: self.max_errors]
        hidden = self.error_count - len(shown)
        if hidden > 0:
            shown.append(RowError(None, None, MORE_ERRORS.format(count=hidden)))
        return shown


def id_digest(external_id: str) -> bytes:
    return hashlib.blake2b(external_id.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def label_digest(value: dict[str, Any]) -> bytes:
    """A row's label (its normalised value), compared between exact duplicates."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def scan(
    stream: BinaryIO,
    *,
    file_format: str,
    mapping: Mapping,
    task_type: str,
    label_names: Sequence[str],
    spill: BinaryIO | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    partial: bool = False,
    allow_overlap: bool = False,
) -> Scan:
    """Pass 1: read every row once, validate it, keep its digests; `on_progress(bytes, rows)` now and then.

    With `spill`, every valid row goes there as (row index, text, response, external id, metadata,
    group key, pre-label) until the first error (after which nothing will be written anyway), or, when
    `partial`, every valid row whatever errors other rows have (a rejected row's digest is NO_DIGEST).
    """
    result = Scan(max_errors=MAX_STORED_ERRORS_PARTIAL if partial else MAX_STORED_ERRORS)
    reader = _reader(stream, file_format)
    content, ids, labels, lines = result.content, result.ids, result.labels, result.lines
    chunk: list[SpilledRow] = []
    for line, record, problems in reader:
        if record is not None and result.schema is None:
            result.schema, missing = _schema_for(reader, mapping, task_type, label_names, allow_overlap)
            result.columns = reader.column_order
            for error in missing:
                result.add_fatal(error)
            if missing:
                break  # the CSV header lacks a mapped column: every row would repeat that error
        result.rows += 1
        lines.append(line)
        row: Row | None = None
        if record is not None and result.schema is not None:  # set above from the first record
            try:
                row = result.schema.build(record)
            except _RowInvalid as exc:
                problems = [RowError(line, name, message) for name, message in exc.problems]
        for problem in problems:
            result.add_error(problem)
        if row is None:
            content += NO_DIGEST
            ids += NO_DIGEST
            labels += NO_DIGEST
        else:
            content += bytes.fromhex(content_hash(row.text, row.response))
            ids += id_digest(row.external_id) if row.external_id else NO_DIGEST
            labels += label_digest(row.prelabel) if row.prelabel is not None else NO_DIGEST
            if spill is not None and (partial or not result.error_count):
                chunk.append(
                    (
                        result.rows - 1,
                        row.text,
                        row.response,
                        row.external_id,
                        row.metadata,
                        row.group_key,
                        row.prelabel,
                    )
                )
                if len(chunk) >= SPILL_CHUNK_ROWS:
                    _spill_chunk(spill, chunk)
                    chunk = []
        if on_progress is not None and result.rows % PROGRESS_EVERY_ROWS == 0:
            on_progress(reader.bytes_read, result.rows)
    if spill is not None and chunk and (partial or not result.error_count):
        _spill_chunk(spill, chunk)
    result.bytes_read = reader.bytes_read
    if isinstance(reader, _CsvReader):
        for error in reader.header_errors:
            result.add_fatal(error)
        if result.schema is None and reader.columns is not None:  # a header and no rows
            result.schema, missing = _schema_for(reader, mapping, task_type, label_names, allow_overlap)
            result.columns = reader.column_order
            for error in missing:
                result.add_fatal(error)
    if result.rows == 0 and not result.error_count:
        result.add_fatal(RowError(None, None, EMPTY_FILE))
    if on_progress is not None:
        on_progress(result.bytes_read, result.rows)
    return result


def _schema_for(
    reader: _Reader, mapping: Mapping, task_type: str, label_names: Sequence[str], allow_overlap: bool = False
) -> tuple[Schema, list[RowError]]:
    """The schema for this file, and for CSV the mapped columns its header lacks."""
    columns = reader.columns or frozenset()
    schema = mapping.resolve(columns, task_type=task_type, label_names=label_names, allow_overlap=allow_overlap)
    missing: list[RowError] = []
    if isinstance(reader, _CsvReader):
        line = reader.header_line
        missing = [RowError(line, n, NO_SUCH_COLUMN) for n in schema.columns_required() if n not in columns]
    return schema, missing


@dataclass
class Plan:
    """Which rows pass 2 skips (exact duplicates) and what to tell the owner about them."""

    skip: np.ndarray  # bool per row: an exact duplicate
    duplicates: int
    # (line, line of the first copy in the file or None, content digest) for the first few duplicates
    examples: list[tuple[int, int | None, bytes]]
    rejects: np.ndarray | None = None  # bool per row: a row with an error (a partial import leaves it out)
    rejected: int = 0


def digests(buffer: bytes | bytearray) -> np.ndarray:
    """View a run of 16-byte digests, without copying, as a numpy array that sorts and compares them.

    S16 is exact here: every value has the same length, so the trailing-NUL stripping of bytes dtypes
    can neither merge two values nor change their order.
    """
    return np.frombuffer(buffer, dtype=f"S{DIGEST_BYTES}")


def _repeats(buffer: bytearray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Among `rows` (ascending), those whose digest an earlier one already had, and that earlier row.

    One stable sort of the digests as (hi, lo) integer pairs: a few integer arrays of len(rows), where
    np.unique on byte strings needs several times the memory.
    """
    if rows.size < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    pairs = np.frombuffer(buffer, dtype=np.uint64).reshape(-1, 2)
    hi, lo = pairs[rows, 0], pairs[rows, 1]
    order = np.lexsort((lo, hi))  # stable: equal digests keep their file order
    hi, lo, rows = hi[order], lo[order], rows[order]
    del order
    repeat = np.zeros(rows.size, dtype=bool)
    np.logical_and(hi[1:] == hi[:-1], lo[1:] == lo[:-1], out=repeat[1:])
    del hi, lo
    starts = np.flatnonzero(~repeat)
    positions = np.flatnonzero(repeat)
    firsts = rows[starts[np.searchsorted(starts, positions, side="right") - 1]]
    order = np.argsort(rows[positions], kind="stable")
    return rows[positions][order], firsts[order]


def _members(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which `values` occur in `reference` (both S16): sort the reference once, then binary-search chunks."""
    found = np.zeros(values.size, dtype=bool)
    if reference.size == 0 or values.size == 0:
        return found
    reference = np.sort(reference)
    last = reference.size - 1
    for start in range(0, values.size, MEMBERSHIP_CHUNK):
        chunk = values[start : start + MEMBERSHIP_CHUNK]
        positions = np.minimum(np.searchsorted(reference, chunk), last)
        found[start : start + chunk.size] = reference[positions] == chunk
    return found


def plan(result: Scan, *, existing_content: np.ndarray, existing_ids: np.ndarray) -> Plan:
    """Mark exact duplicates (kept: the first copy in the file) and add errors for repeated external ids.

    Duplicates are skipped, not errors; an id used twice among the rows that stay, or already used in
    the project, is an error because the item it names would be ambiguous.
    """
    n = result.rows
    if n == 0:
        return Plan(skip=np.zeros(0, dtype=bool), duplicates=0, examples=[])
    cap = result.max_errors
    content = digests(result.content)
    lines = np.frombuffer(result.lines, dtype=np.uint32)
    valid = content != NO_DIGEST

    repeated, first_copies = _repeats(result.content, np.flatnonzero(valid))
    in_project = _members(content, existing_content) & valid
    # A later copy of a new text whose label the first copy lacks or contradicts would lose that label as a
    # duplicate: an error instead, and since which label is right is for the owner to say, every copy of that text
    # is rejected. (A later copy without a label loses nothing: a plain duplicate. A text already in the project is
    # skipped as ever: an import never relabels an item.)
    conflicting = np.zeros(content.size, dtype=bool)
    if len(result.labels) == len(result.content) and repeated.size:
        row_labels = digests(result.labels)
        later, first = row_labels[repeated], row_labels[first_copies]
        clash = (later != NO_DIGEST) & (later != first) & ~in_project[repeated]
        label_field = result.schema.prelabel if result.schema else None
        for i, first in list(zip(repeated[clash], first_copies[clash], strict=True))[:cap]:
            result.add_error(RowError(int(lines[i]), label_field, CONFLICTING_DUPLICATE.format(line=int(lines[first]))))
        result.error_count += max(int(clash.sum()) - cap, 0)
        if clash.any():
            conflicting = _members(content, content[repeated[clash]]) & valid & ~in_project
    skip = in_project.copy()
    skip[repeated] = True
    skip &= ~conflicting  # rejected below instead

    examples: list[tuple[int, int | None, bytes]] = []
    for i in np.flatnonzero(skip)[:MAX_DUPLICATE_EXAMPLES]:
        first_line = None if in_project[i] else int(lines[first_copies[np.searchsorted(repeated, i)]])
        examples.append((int(lines[i]), first_line, content[i].ljust(DIGEST_BYTES, b"\0")))

    ids = digests(result.ids)
    with_id = np.flatnonzero((ids != NO_DIGEST) & ~skip & ~conflicting)
    field = result.schema.external_id if result.schema else None
    again, first_uses = _repeats(result.ids, with_id)
    shown = again[:cap], first_uses[:cap]
    for i, first in zip(*shown, strict=True):
        result.add_error(RowError(int(lines[i]), field, DUPLICATE_EXTERNAL_ID.format(line=int(lines[first]))))
    result.error_count += again.size - shown[0].size
    taken = with_id[_members(ids[with_id], existing_ids)]
    for i in taken[:cap]:
        result.add_error(RowError(int(lines[i]), field, EXISTING_EXTERNAL_ID))
    result.error_count += max(taken.size - cap, 0)
    duplicates = int(skip.sum())
    rejected = ~valid
    rejected[again] = True
    rejected[taken] = True
    rejected[conflicting] = True
    return Plan(skip=skip, duplicates=duplicates, examples=examples, rejects=rejected, rejected=int(rejected.sum()))


def _spill_chunk(spill: BinaryIO, chunk: list[SpilledRow]) -> None:
    data = marshal.dumps(chunk)
    spill.write(len(data).to_bytes(SPILL_LENGTH_BYTES, "little"))
    spill.write(data)


def read_spill(spill: BinaryIO) -> Iterator[list[SpilledRow]]:
    """The chunks `scan` spilled, in file order.

    marshal is the fastest exact round trip of JSON values, and it only ever reads a file this process
    wrote a moment ago. Each chunk is length-prefixed and loaded from bytes: `marshal.load` on a file
    would make one read call per value.
    """
    spill.seek(0)
    while header := spill.read(SPILL_LENGTH_BYTES):
        yield marshal.loads(spill.read(int.from_bytes(header, "little")))  # noqa: S302 - our own file
