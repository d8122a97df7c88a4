"""Task types: what a value is for each kind of task, and every rule that depends on it (no Django).

Values are small JSON objects so that one column holds every task type: single-label {"label": "spam"},
multi-label {"labels": ["a", "b"]}, instruction {"response": "..."}. A project's task type picks one
`TaskKind` (`project.task_kind`); code asks the kind what to do instead of branching on the type, so a
new task type is one subclass registered in `KINDS` plus its `TaskType` choice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Protocol

MAX_RESPONSE_CHARS = 20_000

MULTI_LABEL_SEPARATOR = "|"  # CSV cells (and JSON strings) list several pre-labels as "a|b"

# The recipe's tasks (training/spec.py names them; annotation does not import training).
TRAIN_CLASSIFICATION = "classification"
TRAIN_CAUSAL_LM = "causal_lm"

UNKNOWN_TASK_TYPE = "Unknown task type {task_type!r}."
NOT_AN_OBJECT = "A value must be a JSON object."
SINGLE_LABEL_SHAPE = 'Single-label values need {"label": <name>}.'
UNKNOWN_LABEL = "Unknown label {label!r}; this project has {labels}."
MULTI_LABEL_SHAPE = 'Multi-label values need {"labels": [<name>, ...]}.'
UNKNOWN_LABELS = "Unknown labels {unknown}; this project has {labels}."
RESPONSE_SHAPE = 'Instruction values need a non-empty {"response": <text>}.'
RESPONSE_TOO_LONG = f"A response is limited to {MAX_RESPONSE_CHARS} characters."


class InvalidValue(ValueError):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class FormData(Protocol):
    """What a posted form offers (Django's QueryDict), so this module stays free of Django."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


class TaskKind:
    """One task type's rules. Subclasses set the class attributes and implement the value operations."""

    name: ClassVar[str]  # the TaskType value stored on the project
    value_field: ClassVar[str]  # the value's one key; forms post it under the same name
    has_labels: ClassVar[bool] = False  # the project defines labels (label pages, per-label figures, balancing)
    single_class: ClassVar[bool] = False  # one class per item: noise scans and the model-disagreement check
    multiple: ClassVar[bool] = False  # several labels per item: checkboxes instead of radios
    generative: ClassVar[bool] = False  # free text: rated per criterion, compared blind A/B, examples from ratings
    training_task: ClassVar[str | None] = None  # the recipe's task; None where the recipe has none
    default_goal_metric: ClassVar[str | None] = None  # None: the project's own default
    text_field: ClassVar[str] = "text"  # the item text's key in snapshot rows

    def value_from_form(self, data: FormData) -> dict[str, Any]:
        """The value a submitted annotate, fix or correction form describes, not yet validated."""
        return {self.value_field: data.get(self.value_field, "")}

    def value_from_cell(self, raw: Any) -> dict[str, Any]:
        """The value an imported pre-label cell describes, not yet validated."""
        return {self.value_field: raw}

    def normalise(self, raw: Any, label_names: Collection[str]) -> dict[str, Any]:
        """The canonical value for `raw`, or InvalidValue naming the field at fault."""
        if not isinstance(raw, dict):
            raise InvalidValue(NOT_AN_OBJECT, field="value")
        return self._normalise(raw, label_names)

    def _normalise(self, raw: dict[str, Any], label_names: Collection[str]) -> dict[str, Any]:
        raise NotImplementedError

    def key(self, value: dict[str, Any]) -> str:
        """A hashable, comparable form of a value: two annotators agree when their keys are equal."""
        raise NotImplementedError

    def display(self, value: dict[str, Any]) -> str:
        raise NotImplementedError


class LabelKind(TaskKind):
    """Classification: values name labels the project defines."""

    has_labels = True

    def chosen_labels(self, value: Any) -> list[str] | None:
        """The label names a value chooses, or None when it is not shaped as this kind's value."""
        raise NotImplementedError

    def labelled(self, names: Sequence[str], order: Sequence[str]) -> dict[str, Any]:
        """The value choosing `names`, in the project's label `order`."""
        raise NotImplementedError


class SingleLabel(LabelKind):
    name = "single_label"
    value_field = "label"
    single_class = True
    training_task = TRAIN_CLASSIFICATION

    def _normalise(self, raw: dict[str, Any], label_names: Collection[str]) -> dict[str, Any]:
        label = raw.get("label")
        if not isinstance(label, str) or not label:
            raise InvalidValue(SINGLE_LABEL_SHAPE, field="label")
        if label not in label_names:
            raise InvalidValue(UNKNOWN_LABEL.format(label=label, labels=sorted(label_names)), field="label")
        return {"label": label}

    def key(self, value: dict[str, Any]) -> str:
        return str(value["label"])

    def display(self, value: dict[str, Any]) -> str:
        return str(value["label"])

    def chosen_labels(self, value: Any) -> list[str] | None:
        label = value.get("label") if isinstance(value, dict) else None
        return [label] if isinstance(label, str) and label else None

    def labelled(self, names: Sequence[str], order: Sequence[str]) -> dict[str, Any]:
        return {"label": names[0]}


class MultiLabel(LabelKind):
    name = "multi_label"
    value_field = "labels"
    multiple = True

    def value_from_form(self, data: FormData) -> dict[str, Any]:
        return {"labels": data.getlist("labels")}

    def value_from_cell(self, raw: Any) -> dict[str, Any]:
        labels = [part.strip() for part in raw.split(MULTI_LABEL_SEPARATOR)] if isinstance(raw, str) else raw
        return {"labels": labels}

    def _normalise(self, raw: dict[str, Any], label_names: Collection[str]) -> dict[str, Any]:
        labels = raw.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidValue(MULTI_LABEL_SHAPE, field="labels")
        unknown = sorted(set(labels) - set(label_names))
        if unknown:
            raise InvalidValue(UNKNOWN_LABELS.format(unknown=unknown, labels=sorted(label_names)), field="labels")
        order = {name: i for i, name in enumerate(label_names)}
        return {"labels": sorted(set(labels), key=lambda n: order.get(n, 0))}

    def key(self, value: dict[str, Any]) -> str:
        return "|".join(sorted(value["labels"]))

    def display(self, value: dict[str, Any]) -> str:
        return ", ".join(value["labels"]) or "(none)"

    def chosen_labels(self, value: Any) -> list[str] | None:
        labels = value.get("labels") if isinstance(value, dict) else None
        if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
            return None
        return labels

    def labelled(self, names: Sequence[str], order: Sequence[str]) -> dict[str, Any]:
        chosen = set(names)
        return {"labels": [name for name in order if name in chosen]}


class Instruction(TaskKind):
    name = "instruction"
    value_field = "response"
    generative = True
    training_task = TRAIN_CAUSAL_LM
    default_goal_metric = "rouge_l"
    text_field = "prompt"

    def _normalise(self, raw: dict[str, Any], label_names: Collection[str]) -> dict[str, Any]:
        response = raw.get("response")
        if not isinstance(response, str) or not response.strip():
            raise InvalidValue(RESPONSE_SHAPE, field="response")
        if len(response) > MAX_RESPONSE_CHARS:
            raise InvalidValue(RESPONSE_TOO_LONG, field="response")
        return {"response": response.strip()}

    def key(self, value: dict[str, Any]) -> str:
        return " ".join(str(value.get("response", "")).split())

    def display(self, value: dict[str, Any]) -> str:
        return str(value.get("response", ""))


KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (SingleLabel(), MultiLabel(), Instruction())}


def task_kind(task_type: str) -> TaskKind:
    """The kind for a TaskType value, or InvalidValue for a type this installation does not know."""
    try:
        return KINDS[task_type]
    except KeyError:
        raise InvalidValue(UNKNOWN_TASK_TYPE.format(task_type=task_type), field="task_type") from None


def kind_of_value(value: dict[str, Any]) -> TaskKind | None:
    """The kind whose value `value` is, read from its shape (for values seen without their project)."""
    return next((kind for kind in KINDS.values() if kind.value_field in value), None)


def value_key(value: dict[str, Any]) -> str:
    """A hashable, comparable form of any value; "" for a value of no known shape."""
    kind = kind_of_value(value)
    return kind.key(value) if kind else ""


def value_display(value: dict[str, Any] | None) -> str:
    """A value as text for pages and exports; "" for none."""
    kind = kind_of_value(value) if value else None
    return kind.display(value) if kind and value else ""
