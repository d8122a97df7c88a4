"""Writes of ratings: a rating of one output, a blind comparison and its preferences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from annotation.models import Item, Label, Project
from annotation.projects.services import guideline_current
from annotation.tasktypes import MAX_RESPONSE_CHARS, InvalidValue, LabelKind
from core.errors import ServiceError
from training.models import Comparison, ModelOutput, Preference, Rating, RunStatus, TrainingRun, Verdict
from training.ratings.selectors import NOT_IN_COMPARISON, RUN_NOT_FOUND, SECONDS_MAX, _ordered_outputs

SCORE_MIN, SCORE_MAX = 1, 5


NOTE_MAX = 2000






CHOICE_FIRST, CHOICE_SECOND, CHOICE_TIE = "1", "2", "tie"


CHOICES = (CHOICE_FIRST, CHOICE_SECOND, CHOICE_TIE)








VERDICT_REQUIRED = "Say whether the model's output is correct or wrong."


VERDICT_NOT_FOR_GENERATION = "Generated responses are rated per criterion, not correct / wrong."


WRONG_NEEDS_LABEL = "A wrong output needs the right label."


WRONG_NEEDS_LABELS = "A wrong output needs the right label set."


CORRECT_TAKES_NO_CORRECTION = "A correct output needs no correction."


WRONG_NEEDS_SPANS = (
    'A wrong output needs the right spans: {"spans": [{"start", "end", "label"}, ...]}, an empty list when the '
    "text has none."
)


UNKNOWN_LABEL = "Unknown label {label!r}; this project has {labels}."


SAME_AS_MODEL = "The right value must differ from the model's: otherwise mark it correct."


SCORES_NOT_FOR_CLASSIFICATION = "Classification and span outputs are rated correct / wrong, not with scores."


UNKNOWN_CRITERION = "{name!r} is not one of this project's criteria ({criteria})."


SCORE_MISSING = "Rate {name!r} from 1 to 5."


SCORE_RANGE = "A score is a whole number from 1 to 5."


RESPONSE_TOO_LONG = f"A corrected response is limited to {MAX_RESPONSE_CHARS} characters."


NOTE_TOO_LONG = f"A note is limited to {NOTE_MAX} characters."


NOT_GENERATION = (
    "Blind A/B compares generated responses, so it needs an instruction project: "
    "rate each classification run's outputs one by one instead."
)


SAME_RUN = "Pick two different runs."


RUN_NOT_SUCCEEDED = "Only runs that succeeded can be compared."


UNKNOWN_CHOICE = "Choose 1, 2 or tie."




def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and SCORE_MIN <= value <= SCORE_MAX:
        return value
    return None


def _wrong(verdict: str, correction: Mapping[str, Any] | None) -> bool:
    """Whether a label or span verdict is "wrong" (and needs its correction checked); "correct" takes none."""
    if verdict not in Verdict.values:
        raise ServiceError(VERDICT_REQUIRED, field="verdict")
    if verdict == Verdict.CORRECT and correction:
        raise ServiceError(CORRECT_TAKES_NO_CORRECTION, field="correction")
    return verdict == Verdict.WRONG


def _classification_correction(
    project: Project, output: ModelOutput, verdict: str, correction: Mapping[str, Any] | None, labels: list[str]
) -> dict[str, Any] | None:
    if not _wrong(verdict, correction):
        return None
    kind = project.task_kind
    assert isinstance(kind, LabelKind)  # rating_submit sends generative kinds to _generation_rating
    field = kind.value_field
    chosen = kind.chosen_labels(correction or {})
    if chosen is None:
        raise ServiceError(WRONG_NEEDS_LABELS if kind.multiple else WRONG_NEEDS_LABEL, field=field)
    unknown = [name for name in chosen if name not in labels]
    if unknown:
        raise ServiceError(UNKNOWN_LABEL.format(label=unknown[0], labels=", ".join(labels)), field=field)
    value = kind.labelled(chosen, labels)
    if set(chosen) == set(kind.chosen_labels(output.value) or []):
        raise ServiceError(SAME_AS_MODEL, field=field)
    return value


def _span_correction(
    project: Project, output: ModelOutput, verdict: str, correction: Mapping[str, Any] | None, labels: list[str]
) -> dict[str, Any] | None:
    """The right spans of a wrong span output, validated exactly as an annotation of the item is (offsets in
    code points against the exact text, quoted text matching, known labels, the project's overlap rule)."""
    if not _wrong(verdict, correction):
        return None
    if not correction or "spans" not in correction:
        raise ServiceError(WRONG_NEEDS_SPANS, field="spans")
    try:
        value = project.value_normalise(dict(correction), labels, text=output.item.text)
    except InvalidValue as exc:
        raise ServiceError(str(exc), field=exc.field) from None
    kind = project.task_kind
    if isinstance(output.value, dict) and kind.key(value) == kind.key(output.value):
        raise ServiceError(SAME_AS_MODEL, field="spans")
    return value


def _generation_rating(
    project: Project, output: ModelOutput, scores: Mapping[str, Any], correction: Mapping[str, Any] | None
) -> tuple[dict[str, int], dict[str, Any] | None]:
    criteria = [str(name) for name in (project.rating_criteria or [])]
    for name in scores:
        if name not in criteria:
            raise ServiceError(UNKNOWN_CRITERION.format(name=name, criteria=", ".join(criteria)), field="scores")
    clean: dict[str, int] = {}
    for name in criteria:
        if name not in scores or scores[name] in (None, ""):
            raise ServiceError(SCORE_MISSING.format(name=name), field=f"scores.{name}")
        score = _score(scores[name])
        if score is None:
            raise ServiceError(SCORE_RANGE, field=f"scores.{name}")
        clean[name] = score
    response = (correction or {}).get("response")
    if response is None or (isinstance(response, str) and not response.strip()):
        return clean, None
    if not isinstance(response, str):
        raise ServiceError("A corrected response is text.", field="response")
    if len(response) > MAX_RESPONSE_CHARS:
        raise ServiceError(RESPONSE_TOO_LONG, field="response")
    response = response.strip()
    if response == str(output.value.get("response", "")).strip():
        return clean, None  # the response left as the model wrote it corrects nothing
    return clean, {"response": response}


def rating_submit(
    *,
    rater: User,
    output: ModelOutput,
    project: Project,
    verdict: str = "",
    correction: Mapping[str, Any] | None = None,
    scores: Mapping[str, Any] | None = None,
    note: str = "",
    seconds_spent: float = 0.0,
    labels: list[str] | None = None,
) -> Rating:
    """Validate a rating against the project's task, labels and criteria, then append it.

    Classification: `verdict` correct | wrong, and for wrong `correction` {"label"} / {"labels"} naming the
    right value; spans likewise, with `correction` {"spans": [...]} validated as an annotation of the item is.
    Instruction: `scores` {criterion: 1-5} for every project criterion, and optionally `correction` {"response"}.
    Any invalid field raises ServiceError naming it, and nothing is written. `labels` saves a query when the
    caller holds the project's label names already.
    """
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ServiceError(NOTE_TOO_LONG, field="note")
    if project.task_kind.generative:
        if verdict:
            raise ServiceError(VERDICT_NOT_FOR_GENERATION, field="verdict")
        clean_scores, clean_correction = _generation_rating(project, output, scores or {}, correction)
        verdict_value = ""
    else:
        if scores:
            raise ServiceError(SCORES_NOT_FOR_CLASSIFICATION, field="scores")
        if labels is None:
            labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
        check = _span_correction if project.task_kind.needs_text else _classification_correction
        clean_correction = check(project, output, verdict, correction, labels)
        clean_scores, verdict_value = {}, verdict
    return Rating.objects.create(
        project=project,
        output=output,
        item_id=output.item_id,
        run_id=output.run_id,
        rater=rater,
        verdict=verdict_value,
        scores=clean_scores,
        correction=clean_correction,
        note=note,
        guideline_version=guideline_current(project=project),
        seconds_spent=min(max(float(seconds_spent or 0.0), 0.0), SECONDS_MAX),
    )


def comparison_create(
    *, project: Project, user: User, run_a: TrainingRun, run_b: TrainingRun
) -> Comparison:
    """A comparison of two succeeded runs of an instruction project; the same pair again returns the first one."""
    if not project.task_kind.generative:
        raise ServiceError(NOT_GENERATION, field="project")
    for field, run in (("run_a", run_a), ("run_b", run_b)):
        if run.project_id != project.pk:
            raise ServiceError(RUN_NOT_FOUND, field=field)
        if run.status != RunStatus.SUCCEEDED:
            raise ServiceError(RUN_NOT_SUCCEEDED, field=field)
    if run_a.pk == run_b.pk:
        raise ServiceError(SAME_RUN, field="run_b")
    with transaction.atomic():
        existing = Comparison.objects.filter(
            Q(run_a=run_a, run_b=run_b) | Q(run_a=run_b, run_b=run_a), project=project
        ).first()
        if existing is not None:
            return existing
        return Comparison.objects.create(project=project, run_a=run_a, run_b=run_b, created_by=user)


def preference_submit(*, comparison: Comparison, rater: User, item_id: int, choice: str) -> Preference:
    """Store a choice by side ("1", "2" or "tie"); the side is mapped back to a run by the same keyed hash."""
    if choice not in CHOICES:
        raise ServiceError(UNKNOWN_CHOICE, field="choice")
    if not Item.objects.filter(pk=item_id, project_id=comparison.project_id).exists():
        raise ServiceError(NOT_IN_COMPARISON, field="item")
    first, second = _ordered_outputs(comparison, item_id, rater.pk)
    chosen, rejected = {CHOICE_FIRST: (first, second), CHOICE_SECOND: (second, first)}.get(choice, (None, None))
    return Preference.objects.create(
        comparison=comparison,
        item_id=item_id,
        rater=rater,
        first=first,
        chosen=chosen,
        rejected=rejected,
        tie=choice == CHOICE_TIE,
        guideline_version=guideline_current(project=comparison.project),
    )
