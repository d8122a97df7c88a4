"""HTTP responses that a page and an API of datasets both send: the snapshot JSONL download, and for span
snapshots the same rows as CoNLL, Label Studio JSON or BIO tags aligned to the base model's tokenizer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

from annotation.datasets import services as snapshots
from annotation.imports.span_formats import to_conll, to_label_studio
from annotation.models import Snapshot
from annotation.tasktypes import task_kind
from core.errors import ServiceError
from training.ml.token_labels import bio_rows, load_fast_tokenizer
from training.runs.selectors import model_registry

SPAN_FORMATS = ("conll", "labelstudio", "bio")
FORMATS = ("jsonl", *SPAN_FORMATS)
UNKNOWN_EXPORT_FORMAT = "Unknown export format {fmt!r}; use one of {formats}."
SPAN_FORMAT_ONLY = "The {fmt} export is for span projects; this snapshot holds {task_type} values."
BIO_BASE_MODEL = "minilm"  # the span recipe's base model: its tokenizer is what the tags align to


def _rows(snapshot: Snapshot, split: str) -> Iterator[dict[str, Any]]:
    for line in snapshots.snapshot_lines(snapshot=snapshot, split=split):
        yield json.loads(line)


def snapshot_export(*, snapshot: Snapshot, split: str = "", fmt: str = "") -> HttpResponse | StreamingHttpResponse:
    """The snapshot in `fmt`: the canonical JSONL (default), or for span projects CoNLL (word tokens and BIO
    tags), Label Studio's JSON (UTF-16 offsets) or JSONL of the base model's tokens with BIO tags."""
    fmt = fmt or "jsonl"
    if fmt not in FORMATS:
        raise ServiceError(UNKNOWN_EXPORT_FORMAT.format(fmt=fmt, formats=list(FORMATS)), field="export")
    if fmt == "jsonl":
        return snapshot_stream(snapshot=snapshot, split=split)
    task_type = snapshot.manifest.get("task_type", snapshot.project.task_type)
    if not task_kind(task_type).needs_text:
        raise ServiceError(SPAN_FORMAT_ONLY.format(fmt=fmt, task_type=task_type), field="export")
    stem = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}{'-' + split if split else ''}"
    response: HttpResponse | StreamingHttpResponse
    if fmt == "conll":
        lines = to_conll((row["text"], row.get("spans", [])) for row in _rows(snapshot, split))
        response = StreamingHttpResponse(lines, content_type="text/plain; charset=utf-8")
        name = f"{stem}.conll"
    elif fmt == "labelstudio":
        body = json.dumps(to_label_studio(_rows(snapshot, split)), ensure_ascii=False, indent=1)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        name = f"{stem}.labelstudio.json"
    else:
        tokenizer = load_fast_tokenizer(model_registry().resolve(BIO_BASE_MODEL))
        lines = (
            json.dumps(row, ensure_ascii=False) + "\n" for row in bio_rows(_rows(snapshot, split), tokenizer)
        )
        response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
        name = f"{stem}.bio.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def snapshot_stream(*, snapshot: Snapshot, split: str = "") -> StreamingHttpResponse:
    """The JSONL as a download, streamed line by line from its content-addressed file."""
    lines = snapshots.snapshot_lines(snapshot=snapshot, split=split)
    name = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}{'-' + split if split else ''}.jsonl"
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    if not split:
        response["X-Content-SHA256"] = snapshot.content_hash  # the whole file is what the hash covers
    return response
