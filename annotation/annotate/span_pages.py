"""What the span pages (annotate, review, rating) show of a text and its spans: shared by their views."""

from __future__ import annotations

import json
from typing import Any

from annotation.models import Label
from annotation.tasktypes import span_segments


def span_editor_context(*, text: str, value: Any, labels: list[Label]) -> dict[str, Any]:
    """What the span editor (`_span_editor.html`, static/js/spans.js) shows: the text cut into selectable
    pieces with their code-point offsets, the spans so far and the labels' colours and keys."""
    spans = value.get("spans") if isinstance(value, dict) else None
    spans = [s for s in spans if isinstance(s, dict)] if isinstance(spans, list) else []
    return {
        "segments": span_segments(text, spans),
        "spans_json": json.dumps(spans, ensure_ascii=False),
        "label_colors_json": json.dumps({label.name: label.color for label in labels}, ensure_ascii=False),
    }
