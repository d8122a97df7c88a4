"""The snapshot download, shared by the page and the API: the JSONL streamed from its content-addressed file."""

from __future__ import annotations

from django.http import StreamingHttpResponse

from annotation.datasets import services as snapshots
from annotation.models import Snapshot
from core.streaming import JSONL_MEDIA_TYPE


def snapshot_stream(*, snapshot: Snapshot, split: str = "") -> StreamingHttpResponse:
    """The JSONL as a download, streamed line by line; raises ServiceError for an unknown split."""
    lines = snapshots.snapshot_lines(snapshot=snapshot, split=split)
    name = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}{'-' + split if split else ''}.jsonl"
    response = StreamingHttpResponse(lines, content_type=f"{JSONL_MEDIA_TYPE}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    if not split:
        response["X-Content-SHA256"] = snapshot.content_hash  # the whole file is what the hash covers
    return response
