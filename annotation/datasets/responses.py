"""HTTP responses that a page and an API of datasets both send: the snapshot JSONL download."""

from __future__ import annotations

from django.http import StreamingHttpResponse

from annotation.datasets import services as snapshots
from annotation.models import Snapshot


def snapshot_stream(*, snapshot: Snapshot, split: str = "") -> StreamingHttpResponse:
    """The JSONL as a download, streamed line by line from its content-addressed file."""
    lines = snapshots.snapshot_lines(snapshot=snapshot, split=split)
    name = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}{'-' + split if split else ''}.jsonl"
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    if not split:
        response["X-Content-SHA256"] = snapshot.content_hash  # the whole file is what the hash covers
    return response
