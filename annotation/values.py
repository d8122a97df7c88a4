"""What a label value looks like for each task type, and its validation (no Django).

Values are small JSON objects so that one column holds every task type:
single-label {"label": "spam"}, multi-label {"labels": ["a", "b"]}, instruction {"response": "..."}.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
INSTRUCTION = "instruction"

MAX_RESPONSE_CHARS = 20_000


class InvalidValue(ValueError):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def normalise_value(task_type: str, raw: Any, label_names: Collection[str]) -> dict[str, Any]:
    """Return the canonical value for `raw`, or raise InvalidValue naming the field at fault."""
    if not isinstance(raw, dict):
        raise InvalidValue("A value must be a JSON object.", field="value")
    if task_type == SINGLE_LABEL:
        label = raw.get("label")
        if not isinstance(label, str) or not label:
            raise InvalidValue('Single-label values need {"label": <name>}.', field="label")
        if label not in label_names:
            raise InvalidValue(f"Unknown label {label!r}; this project has {sorted(label_names)}.", field="label")
        return {"label": label}
    if task_type == MULTI_LABEL:
        labels = raw.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidValue('Multi-label values need {"labels": [<name>, ...]}.', field="labels")
        unknown = sorted(set(labels) - set(label_names))
        if unknown:
            raise InvalidValue(f"Unknown labels {unknown}; this project has {sorted(label_names)}.", field="labels")
        order = {name: i for i, name in enumerate(label_names)}
        return {"labels": sorted(set(labels), key=lambda n: order.get(n, 0))}
    if task_type == INSTRUCTION:
        response = raw.get("response")
        if not isinstance(response, str) or not response.strip():
            raise InvalidValue('Instruction values need a non-empty {"response": <text>}.', field="response")
        if len(response) > MAX_RESPONSE_CHARS:
            raise InvalidValue(f"A response is limited to {MAX_RESPONSE_CHARS} characters.", field="response")
        return {"response": response.strip()}
    raise InvalidValue(f"Unknown task type {task_type!r}.", field="task_type")


def value_key(value: dict[str, Any]) -> str:
    """A hashable, comparable form of a value: two annotators agree when their keys are equal."""
    if "label" in value:
        return str(value["label"])
    if "labels" in value:
        return "|".join(sorted(value["labels"]))
    return " ".join(str(value.get("response", "")).split())


def value_display(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    if "label" in value:
        return str(value["label"])
    if "labels" in value:
        return ", ".join(value["labels"]) or "(none)"
    return str(value.get("response", ""))
