"""What the span pages (annotate, review) show of a text and its spans: shared by their views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotation.models import Label
from annotation.tasktypes import span_segments


def pieces_html(segments: Sequence[tuple[Any, ...]]) -> SafeString:
    """The text's pieces as `<span data-s data-e>` elements (words `.seg`, spaces `.gap`, pieces the answers
    disagree on `.disagree`), built here in one pass: a template loop over every word of a long text is the
    slow part of the annotate request (bench/span_loop.py)."""
    parts = []
    for segment in segments:
        start, end, word, piece = segment[:4]
        disagree = len(segment) > 4 and segment[4]
        css = ("seg disagree" if disagree else "seg") if word else "gap"
        parts.append(f'<span class="{css}" data-s="{start}" data-e="{end}">{escape(piece)}</span>')
    return mark_safe("".join(parts))  # noqa: S308 (every piece of text is escaped above)


def span_editor_context(*, text: str, value: Any, labels: list[Label]) -> dict[str, Any]:
    """What the span editor (`_span_text.html`, `_span_controls.html`, static/js/spans.js) shows: the text cut
    into selectable pieces with their code-point offsets, the spans so far and the labels' colours and keys."""
    spans = value.get("spans") if isinstance(value, dict) else None
    spans = [s for s in spans if isinstance(s, dict)] if isinstance(spans, list) else []
    return {
        "pieces": pieces_html(span_segments(text, spans)),
        "spans_json": json.dumps(spans, ensure_ascii=False),
        "label_colors_json": json.dumps({label.name: label.color for label in labels}, ensure_ascii=False),
    }
