"""Each task kind's operations, and a scan that keeps task-type branches inside annotation/tasktypes.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.http import QueryDict

from annotation.models import Project, TaskType
from annotation.tasktypes import (
    KINDS,
    MAX_RESPONSE_CHARS,
    MULTI_LABEL_SHAPE,
    NOT_AN_OBJECT,
    RESPONSE_SHAPE,
    RESPONSE_TOO_LONG,
    SINGLE_LABEL_SHAPE,
    UNKNOWN_LABEL,
    UNKNOWN_LABELS,
    UNKNOWN_TASK_TYPE,
    Instruction,
    InvalidValue,
    LabelKind,
    MultiLabel,
    SingleLabel,
    kind_of_value,
    task_kind,
    value_display,
    value_key,
)
from training.spec import TASK_CAUSAL_LM, TASK_CLASSIFICATION

ROOT = Path(__file__).resolve().parents[2]

LABELS = ["ham", "spam", "eggs"]
SORTED = sorted(LABELS)

SINGLE, MULTI, INSTRUCTION = task_kind("single_label"), task_kind("multi_label"), task_kind("instruction")


def test_every_task_type_has_one_kind_and_the_project_finds_it() -> None:
    assert set(KINDS) == set(TaskType.values)
    for task_type in TaskType.values:
        assert Project(task_type=task_type).task_kind is KINDS[task_type]
    assert isinstance(SINGLE, SingleLabel) and isinstance(MULTI, MultiLabel) and isinstance(INSTRUCTION, Instruction)


def test_an_unknown_task_type_is_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        task_kind("relations")
    assert str(caught.value) == UNKNOWN_TASK_TYPE.format(task_type="relations") and caught.value.field == "task_type"


def test_training_tasks_are_the_recipes_own_names() -> None:
    assert SINGLE.training_task == TASK_CLASSIFICATION
    assert INSTRUCTION.training_task == TASK_CAUSAL_LM
    assert MULTI.training_task is None  # the recipe predicts one label per item


@pytest.mark.parametrize(
    ("kind", "flags"),
    [
        (SINGLE, {"has_labels": True, "single_class": True, "multiple": False, "generative": False}),
        (MULTI, {"has_labels": True, "single_class": False, "multiple": True, "generative": False}),
        (INSTRUCTION, {"has_labels": False, "single_class": False, "multiple": False, "generative": True}),
    ],
)
def test_capabilities(kind: Any, flags: dict[str, bool]) -> None:
    assert {name: getattr(kind, name) for name in flags} == flags
    assert isinstance(kind, LabelKind) == kind.has_labels


def test_goal_metric_and_text_field() -> None:
    assert (SINGLE.default_goal_metric, MULTI.default_goal_metric, INSTRUCTION.default_goal_metric) == (
        None,
        None,
        "rouge_l",
    )
    assert (SINGLE.text_field, MULTI.text_field, INSTRUCTION.text_field) == ("text", "text", "prompt")


def test_value_from_form() -> None:
    post = QueryDict("label=spam&labels=ham&labels=eggs&response=hello")
    assert SINGLE.value_from_form(post) == {"label": "spam"}
    assert MULTI.value_from_form(post) == {"labels": ["ham", "eggs"]}
    assert INSTRUCTION.value_from_form(post) == {"response": "hello"}
    empty = QueryDict("")
    assert SINGLE.value_from_form(empty) == {"label": ""}
    assert MULTI.value_from_form(empty) == {"labels": []}
    assert INSTRUCTION.value_from_form(empty) == {"response": ""}


def test_value_from_cell() -> None:
    assert SINGLE.value_from_cell("spam") == {"label": "spam"}
    assert MULTI.value_from_cell(" ham | eggs ") == {"labels": ["ham", "eggs"]}
    assert MULTI.value_from_cell(["ham"]) == {"labels": ["ham"]}
    assert INSTRUCTION.value_from_cell("hi") == {"response": "hi"}


def test_normalise_accepts_and_canonicalises() -> None:
    assert SINGLE.normalise({"label": "spam", "extra": 1}, LABELS) == {"label": "spam"}
    assert MULTI.normalise({"labels": ["eggs", "ham", "eggs"]}, LABELS) == {"labels": ["ham", "eggs"]}
    assert MULTI.normalise({"labels": []}, LABELS) == {"labels": []}
    assert INSTRUCTION.normalise({"response": "  an answer \n"}, []) == {"response": "an answer"}


@pytest.mark.parametrize(
    ("kind", "raw", "field", "message"),
    [
        (SINGLE, ["spam"], "value", NOT_AN_OBJECT),
        (SINGLE, {"label": ""}, "label", SINGLE_LABEL_SHAPE),
        (SINGLE, {"labels": ["spam"]}, "label", SINGLE_LABEL_SHAPE),
        (SINGLE, {"label": "bacon"}, "label", UNKNOWN_LABEL.format(label="bacon", labels=sorted(LABELS))),
        (MULTI, "ham", "value", NOT_AN_OBJECT),
        (MULTI, {"labels": "ham"}, "labels", MULTI_LABEL_SHAPE),
        (MULTI, {"labels": ["ham", 3]}, "labels", MULTI_LABEL_SHAPE),
        (MULTI, {"labels": ["x", "ham", "a"]}, "labels", UNKNOWN_LABELS.format(unknown=["a", "x"], labels=SORTED)),
        (INSTRUCTION, None, "value", NOT_AN_OBJECT),
        (INSTRUCTION, {"response": "   "}, "response", RESPONSE_SHAPE),
        (INSTRUCTION, {"response": 5}, "response", RESPONSE_SHAPE),
        (INSTRUCTION, {"response": "x" * (MAX_RESPONSE_CHARS + 1)}, "response", RESPONSE_TOO_LONG),
    ],
)
def test_normalise_refuses_naming_the_field(kind: Any, raw: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        kind.normalise(raw, LABELS)
    assert str(caught.value) == message and caught.value.field == field


def test_unknown_label_messages_read_as_before() -> None:
    assert UNKNOWN_LABEL.format(label="bacon", labels=sorted(LABELS)) == (
        "Unknown label 'bacon'; this project has ['eggs', 'ham', 'spam']."
    )
    assert UNKNOWN_LABELS.format(unknown=["a"], labels=["ham"]) == "Unknown labels ['a']; this project has ['ham']."


def test_keys_decide_agreement() -> None:
    assert SINGLE.key({"label": "spam"}) == "spam"
    assert MULTI.key({"labels": ["spam", "ham"]}) == MULTI.key({"labels": ["ham", "spam"]}) == "ham|spam"
    assert INSTRUCTION.key({"response": " two  words\n"}) == INSTRUCTION.key({"response": "two words"})


def test_display() -> None:
    assert SINGLE.display({"label": "spam"}) == "spam"
    assert MULTI.display({"labels": ["ham", "eggs"]}) == "ham, eggs"
    assert MULTI.display({"labels": []}) == "(none)"
    assert INSTRUCTION.display({"response": "hi"}) == "hi"


def test_values_seen_without_their_project_are_read_from_their_shape() -> None:
    assert kind_of_value({"label": "a"}) is SINGLE
    assert kind_of_value({"labels": []}) is MULTI
    assert kind_of_value({"response": "r"}) is INSTRUCTION
    assert kind_of_value({}) is None
    assert value_key({"labels": ["b", "a"]}) == "a|b" and value_key({}) == ""
    assert value_display({"label": "a"}) == "a" and value_display(None) == "" and value_display({}) == ""
    assert value_display({"labels": []}) == "(none)"


def test_label_kinds_choose_labels() -> None:
    assert SINGLE.chosen_labels({"label": "spam"}) == ["spam"]
    assert SINGLE.chosen_labels({"label": ""}) is None and SINGLE.chosen_labels({}) is None
    assert MULTI.chosen_labels({"labels": ["eggs", "ham"]}) == ["eggs", "ham"]
    assert MULTI.chosen_labels({"labels": "ham"}) is None and MULTI.chosen_labels(None) is None
    assert SINGLE.labelled(["spam"], LABELS) == {"label": "spam"}
    assert MULTI.labelled(["eggs", "ham"], LABELS) == {"labels": ["ham", "eggs"]}


# Where code may still name a TaskType member or compare a task type outside annotation/tasktypes.py, and why.
ALLOWED = {
    "annotation/models/projects.py": "defines TaskType and the project's default",
    "annotation/projects/services.py": "project_create's default task type, not a branch",
    "annotation/projects/forms.py": "the create form's initial choice, not a branch",
    "annotation/projects/apis.py": "the create serializer's default, not a branch",
    "annotation/management/commands/load_demo.py": "the demo data picks its projects' task types",
    "training/ml/modeling.py": "peft's own TaskType (SEQ_CLS / CAUSAL_LM), not the project's",
    "training/ml/spans.py": "peft's own TaskType (TOKEN_CLS), not the project's",
}

BRANCH = re.compile(
    r"TaskType\.[A-Z]"  # naming a member of the project's TaskType
    r"|task_type\s*(==|!=)|(==|!=)\s*\S*task_type\b"  # comparing a task type
    r"|\bis_classification\b|\bis_instruction\b|\bis_multi\b"  # the flags the kinds replaced
)
TEMPLATE_BRANCH = re.compile(r"task_type\s*(==|!=)|\bis_instruction\b|\bis_multi\b")


def _sources(pattern: str, *folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob(pattern)) if "migrations" not in p.parts]


def test_no_task_type_branches_outside_the_kinds() -> None:
    stray = []
    for path in _sources("*.py", "annotation", "training", "core", "config"):
        name = path.relative_to(ROOT).as_posix()
        if name == "annotation/tasktypes.py" or name in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if BRANCH.search(line):
                stray.append(f"{name}:{number}: {line.strip()}")
    for path in _sources("*.html", "templates"):
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if TEMPLATE_BRANCH.search(line):
                stray.append(f"{name}:{number}: {line.strip()}")
    assert stray == [], "ask project.task_kind instead:\n" + "\n".join(stray)


def test_the_allow_list_has_no_stale_entries() -> None:
    for name in ALLOWED:
        assert BRANCH.search((ROOT / name).read_text()), f"{name} no longer needs its allow-list entry"
