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


def marked_html(text: str, spans: Any, colors: dict[str, str]) -> SafeString:
    """The text with its spans marked in their label's colour and each span's label after it, drawn here as
    static/js/spans.js draws a read-only copy, for pages that show spans without the editor (a run's outputs,
    the model's spans on the rating page)."""
    spans = [s for s in spans or [] if isinstance(s, dict) and isinstance(s.get("start"), int)
             and isinstance(s.get("end"), int)]
    parts = []
    for start, end, word, piece in span_segments(text, spans):
        over = [s for s in spans if s["start"] <= start and end <= s["end"]]
        if not over:
            parts.append(f'<span class="{"seg" if word else "gap"}">{escape(piece)}</span>')
            continue
        css = "seg marked nested" if len(over) > 1 else "seg marked"
        color = escape(colors.get(str(over[0].get("label")), "#4f6bed"))
        labels = [escape(str(s.get("label"))) for s in over]
        tags = [escape(str(s.get("label"))) for s in over if s["end"] == end]
        tag = f' data-tag="{" · ".join(tags)}"' if tags else ""
        title = ", ".join(labels)
        parts.append(f'<span class="{css}" style="--c: {color}" title="{title}"{tag}>{escape(piece)}</span>')
    return mark_safe("".join(parts))  # noqa: S308 (every piece of text and every label is escaped above)


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
