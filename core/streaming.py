"""Streamed responses: JSON Lines exports that never hold the whole dataset in memory."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework import renderers

JSONL_MEDIA_TYPE = "application/jsonl"


class JsonLinesRenderer(renderers.BaseRenderer):
    """Lets a client ask for `application/jsonl`; an error on that route still comes back as one JSON line."""

    media_type = JSONL_MEDIA_TYPE
    format = "jsonl"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return (json.dumps(data, ensure_ascii=False) + "\n").encode() if data is not None else b""


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def jsonl_response(rows: Iterable[dict[str, Any]], filename: str) -> StreamingHttpResponse:
    """A download of one JSON object a line, streamed as the rows are read."""
    response = StreamingHttpResponse(jsonl_lines(rows), content_type=f"{JSONL_MEDIA_TYPE}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
