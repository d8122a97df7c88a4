"""Task types: what a value is for each kind of task, and every rule that depends on it (no Django).

Values are small JSON objects so that one column holds every task type: single-label {"label": "spam"},
multi-label {"labels": ["a", "b"]}, instruction {"response": "..."}. A project's task type picks one
`TaskKind` (`project.task_kind`); code asks the kind what to do instead of branching on the type, so a
new task type is one subclass registered in `KINDS` plus its `TaskType` choice.
"""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Protocol

MAX_RESPONSE_CHARS = 20_000

MULTI_LABEL_SEPARATOR = "|"  # CSV cells (and JSON strings) list several pre-labels as "a|b"

# The recipe's tasks (training/spec.py names them; annotation does not import training).
TRAIN_CLASSIFICATION = "classification"
TRAIN_CAUSAL_LM = "causal_lm"
TRAIN_SPANS = "spans"

MAX_SPANS = 1000  # per item: a bound on what one value may carry

UNKNOWN_TASK_TYPE = "Unknown task type {task_type!r}."
NOT_AN_OBJECT = "A value must be a JSON object."
SINGLE_LABEL_SHAPE = 'Single-label values need {"label": <name>}.'
UNKNOWN_LABEL = "Unknown label {label!r}; this project has {labels}."
MULTI_LABEL_SHAPE = 'Multi-label values need {"labels": [<name>, ...]}.'
UNKNOWN_LABELS = "Unknown labels {unknown}; this project has {labels}."
RESPONSE_SHAPE = 'Instruction values need a non-empty {"response": <text>}.'
RESPONSE_TOO_LONG = f"A response is limited to {MAX_RESPONSE_CHARS} characters."
SPANS_SHAPE = 'Span values need {"spans": [{"start": <int>, "end": <int>, "label": <name>}, ...]}.'
SPANS_NOT_JSON = "The spans field is not valid JSON: {error}."
SPAN_SHAPE = 'Span {n} needs integer "start" and "end" and a "label" name.'
SPAN_OUT_OF_TEXT = "Span {n} ({start}-{end}) is outside the text, which has {length} characters."
SPAN_EMPTY = "Span {n} ({start}-{end}) is empty: its end must be after its start."
SPAN_UNKNOWN_LABEL = "Span {n} has unknown label {label!r}; this project has {labels}."
SPAN_TEXT_MISMATCH = "Span {n} ({start}-{end}) says its text is {said!r} but the item's text there is {found!r}."
SPANS_OVERLAP = "Spans {a} and {b} overlap; this project does not allow overlapping spans."
TOO_MANY_SPANS = f"An item holds at most {MAX_SPANS} spans."


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
    needs_text: ClassVar[bool] = False  # values point into the item's text (spans): normalise needs it
    min_labels: ClassVar[int] = 2  # a project of this kind defines at least this many labels (when has_labels)

    def value_from_form(self, data: FormData) -> dict[str, Any]:
        """The value a submitted annotate, fix or correction form describes, not yet validated."""
        return {self.value_field: data.get(self.value_field, "")}

    def value_from_cell(self, raw: Any) -> dict[str, Any]:
        """The value an imported pre-label cell describes, not yet validated."""
        return {self.value_field: raw}

    def normalise(
        self, raw: Any, label_names: Collection[str], *, text: str = "", allow_overlap: bool = False
    ) -> dict[str, Any]:
        """The canonical value for `raw`, or InvalidValue naming the field at fault.

        `text` is the item's text and `allow_overlap` the project's span setting: only kinds whose values
        point into the text (spans) read them.
        """
        if not isinstance(raw, dict):
            raise InvalidValue(NOT_AN_OBJECT, field="value")
        if self.needs_text:
            return self._normalise_in_text(raw, label_names, text=text, allow_overlap=allow_overlap)
        return self._normalise(raw, label_names)

    def _normalise(self, raw: dict[str, Any], label_names: Collection[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _normalise_in_text(
        self, raw: dict[str, Any], label_names: Collection[str], *, text: str, allow_overlap: bool
    ) -> dict[str, Any]:
        raise NotImplementedError

    def stratum(self, value: dict[str, Any]) -> tuple[str, ...]:
        """The label names a snapshot stratifies this value's item by (none where the kind has no labels)."""
        return ()

    def stratum_key(self, value: dict[str, Any]) -> str:
        """The stratum a snapshot's split keeps in proportion: by default the value itself."""
        return self.key(value)

    def key(self, value: dict[str, Any]) -> str:
        """A hashable, comparable form of a value: two annotators agree when their keys are equal."""
        raise NotImplementedError

    def display(self, value: dict[str, Any], text: str | None = None) -> str:
        """The value as text for pages and exports; `text` (the item's) lets spans quote what they cover."""
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

    def stratum(self, value: dict[str, Any]) -> tuple[str, ...]:
        return tuple(self.chosen_labels(value) or ())


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

    def display(self, value: dict[str, Any], text: str | None = None) -> str:
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

    def display(self, value: dict[str, Any], text: str | None = None) -> str:
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

    def display(self, value: dict[str, Any], text: str | None = None) -> str:
        return str(value.get("response", ""))


def word_tokens(text: str) -> list[tuple[int, int]]:
    """The text's words as (start, end) code-point offsets: runs of letters, marks and digits; any other
    non-space character is a token of its own. static/js/spans.js splits the same way, so a span made by
    word selection in the browser and token-level agreement here see the same tokens."""
    tokens: list[tuple[int, int]] = []
    start = -1
    for i, ch in enumerate(text):
        wordy = unicodedata.category(ch)[0] in "LMN"
        if wordy:
            if start < 0:
                start = i
            continue
        if start >= 0:
            tokens.append((start, i))
            start = -1
        if not ch.isspace():
            tokens.append((i, i + 1))
    if start >= 0:
        tokens.append((start, len(text)))
    return tokens


def span_segments(text: str, spans: Sequence[dict[str, Any]] = ()) -> list[tuple[int, int, bool, str]]:
    """The text cut at every word and span boundary, as (start, end, selectable, piece): the unit the span
    editor selects by. Offsets are computed here, in code points, so the browser never counts characters
    (JavaScript counts UTF-16 units: an emoji is two of them)."""
    cuts = {0, len(text)}
    words = word_tokens(text)
    for start, end in words:
        cuts.update((start, end))
    for span in spans:
        if isinstance(span, dict) and all(isinstance(span.get(k), int) for k in ("start", "end")):
            cuts.update(min(max(span[k], 0), len(text)) for k in ("start", "end"))
    ordered = sorted(cuts)
    return [
        (start, end, not text[start:end].isspace(), text[start:end])
        for start, end in itertools.pairwise(ordered)
    ]


class Spans(TaskKind):
    """Labelled spans of the item's text: {"spans": [{"start": 0, "end": 5, "label": "PER"}, ...]}.

    Offsets are Python string indices, i.e. Unicode code points, end exclusive, against the exact item
    text (never a normalised copy). A span may carry "text" (as imports and exports do): it must then be
    the text at its offsets, which catches offsets counted in another unit (UTF-16, bytes).
    """

    name = "spans"
    value_field = "spans"
    has_labels = True
    needs_text = True
    min_labels = 1
    # Token classification: runs train through training/ml/spans.py (training/runs/span_training.py).
    training_task = TRAIN_SPANS

    def value_from_form(self, data: FormData) -> dict[str, Any]:
        """The page posts its spans as one JSON field; text that is not JSON is refused by `normalise`."""
        raw = data.get("spans", "") or "[]"
        try:
            return {"spans": json.loads(raw) if isinstance(raw, str) else raw}
        except json.JSONDecodeError:
            return {"spans": raw}

    def value_from_cell(self, raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                return {"spans": raw}
        if isinstance(raw, dict) and "spans" in raw:
            return raw
        if isinstance(raw, list) and all(isinstance(s, list) and len(s) == 3 for s in raw):
            raw = [{"start": s[0], "end": s[1], "label": s[2]} for s in raw]  # doccano's [start, end, label]
        return {"spans": raw}

    def _normalise_in_text(
        self, raw: dict[str, Any], label_names: Collection[str], *, text: str, allow_overlap: bool
    ) -> dict[str, Any]:
        spans = raw.get("spans")
        if isinstance(spans, str):
            try:
                json.loads(spans)
            except json.JSONDecodeError as exc:
                raise InvalidValue(SPANS_NOT_JSON.format(error=exc.msg), field="spans") from None
        if not isinstance(spans, list):
            raise InvalidValue(SPANS_SHAPE, field="spans")
        if len(spans) > MAX_SPANS:
            raise InvalidValue(TOO_MANY_SPANS, field="spans")
        clean: set[tuple[int, int, str]] = set()
        for n, span in enumerate(spans, start=1):
            if not isinstance(span, dict):
                raise InvalidValue(SPAN_SHAPE.format(n=n), field="spans")
            start, end, label = span.get("start"), span.get("end"), span.get("label")
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not isinstance(
                label, str
            ):
                raise InvalidValue(SPAN_SHAPE.format(n=n), field="spans")
            assert isinstance(start, int) and isinstance(end, int)
            if start < 0 or end > len(text):
                raise InvalidValue(
                    SPAN_OUT_OF_TEXT.format(n=n, start=start, end=end, length=len(text)), field="spans"
                )
            if end <= start:
                raise InvalidValue(SPAN_EMPTY.format(n=n, start=start, end=end), field="spans")
            if label not in label_names:
                raise InvalidValue(
                    SPAN_UNKNOWN_LABEL.format(n=n, label=label, labels=sorted(label_names)), field="spans"
                )
            said = span.get("text")
            if said is not None and said != text[start:end]:
                raise InvalidValue(
                    SPAN_TEXT_MISMATCH.format(n=n, start=start, end=end, said=said, found=text[start:end]),
                    field="spans",
                )
            clean.add((start, end, label))
        ordered = sorted(clean)
        if not allow_overlap:
            for a, b in itertools.pairwise(ordered):
                if b[0] < a[1]:
                    first = f"{a[0]}-{a[1]} {a[2]}"
                    second = f"{b[0]}-{b[1]} {b[2]}"
                    raise InvalidValue(SPANS_OVERLAP.format(a=first, b=second), field="spans")
        return {"spans": [{"start": s, "end": e, "label": lab} for s, e, lab in ordered]}

    def key(self, value: dict[str, Any]) -> str:
        spans = sorted((s["start"], s["end"], s["label"]) for s in value.get("spans", []))
        return json.dumps(spans, ensure_ascii=False, separators=(",", ":"))

    def display(self, value: dict[str, Any], text: str | None = None) -> str:
        """`Ada Lovelace (PER)` when the item's text is given (offsets where they do not fit it), else `PER 0-12`."""
        spans = value.get("spans", [])
        if not spans:
            return "(no spans)"

        def one(s: dict[str, Any]) -> str:
            start, end = s["start"], s["end"]
            if text is not None and 0 <= start < end <= len(text):
                return f"{text[start:end]} ({s['label']})"
            return f"{s['label']} {start}-{end}"

        return ", ".join(one(s) for s in spans)

    def stratum(self, value: dict[str, Any]) -> tuple[str, ...]:
        return tuple(sorted({s["label"] for s in value.get("spans", [])}))

    def stratum_key(self, value: dict[str, Any]) -> str:
        """Spans are stratified by the set of labels an item has: its offsets make every value unique."""
        return "|".join(self.stratum(value))


def span_sides(text: str, values: Sequence[Any]) -> list[list[tuple[int, int, bool, str, bool]]]:
    """For a side-by-side review: per value, the text's pieces (as `span_segments`, cut at every value's span
    boundaries so all sides line up) each with a fifth field, True where the values disagree on the piece's
    labels (a token-level diff)."""
    spans_of = [
        [s for s in (v.get("spans") if isinstance(v, dict) else None) or [] if isinstance(s, dict)] for v in values
    ]
    segments = span_segments(text, [s for spans in spans_of for s in spans])

    def labels(spans: list[dict[str, Any]], start: int, end: int) -> frozenset[str]:
        return frozenset(s["label"] for s in spans if s["start"] < end and start < s["end"])

    differs = [
        word and len({labels(spans, start, end) for spans in spans_of}) > 1 for start, end, word, _ in segments
    ]
    return [[(*segment, diff) for segment, diff in zip(segments, differs, strict=True)] for _ in spans_of]


def spans_overlap(value: Any) -> bool:
    """Whether a stored value holds two spans that overlap (the rule `normalise` applies when overlaps are off).

    Identical spans count once, as `normalise` de-duplicates them; a value of another shape has no overlap."""
    spans = value.get("spans") if isinstance(value, dict) else None
    if not isinstance(spans, list):
        return False
    ranges = sorted(
        {
            (s["start"], s["end"], s.get("label"))
            for s in spans
            if isinstance(s, dict) and isinstance(s.get("start"), int) and isinstance(s.get("end"), int)
        },
        key=lambda s: (s[0], s[1], str(s[2])),
    )
    return any(b[0] < a[1] for a, b in itertools.pairwise(ranges))


def span_key_parse(key: str) -> list[tuple[int, int, str]]:
    """The spans a `Spans.key` describes (agreement reads keys, not values)."""
    return [(int(start), int(end), str(label)) for start, end, label in json.loads(key or "[]")]


KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (SingleLabel(), MultiLabel(), Instruction(), Spans())}


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


def value_display(value: dict[str, Any] | None, text: str | None = None) -> str:
    """A value as text for pages and exports; "" for none. Given the item's text, spans quote what they cover."""
    kind = kind_of_value(value) if value else None
    return kind.display(value, text) if kind and value else ""
