"""The annotate page's posted values, shaped into an annotation value for the task type."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from annotation.models import TaskType


def annotation_value_from(data: QueryDict, task_type: str) -> dict[str, Any]:
    """The value a submitted annotate form describes, in the shape `annotation.values` validates."""
    if task_type == TaskType.MULTI_LABEL:
        return {"labels": data.getlist("labels")}
    if task_type == TaskType.INSTRUCTION:
        return {"response": data.get("response", "")}
    return {"label": data.get("label", "")}
