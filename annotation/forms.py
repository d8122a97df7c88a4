"""Browser forms: parse and shape what a person typed; the services decide whether it is allowed."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.http import QueryDict

from .models import GoalMetric, QueueOrder, Role, TaskType
from .services import ServiceError
from .services.projects import LEASE_MAX_SECONDS, LEASE_MIN_SECONDS

# Keys the annotate page keeps for its own commands: a label cannot take them as a hotkey.
RESERVED_HOTKEYS = frozenset("sSuUgG?")
HOTKEY_RESERVED = "S, U, G and ? are the annotate page's own keys; pick another hotkey."
LABEL_LISTED_TWICE = "Label {name!r} is listed twice."
PREVIEW_STALE = "The text changed after the preview: check the new diff, then publish."


def parse_label_names(raw: str) -> list[str]:
    """One label per line; a single line may list them separated by commas instead."""
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def body_digest(body: str) -> str:
    """Identifies the exact guideline text a preview showed, so publish can refuse text nobody previewed."""
    return hashlib.sha256(body.strip().encode("utf-8")).hexdigest()[:32]


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal next to the field it names, or above the form when the form has no such field."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    task_type = forms.ChoiceField(choices=TaskType.choices, initial=TaskType.SINGLE_LABEL, label="Task type")
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "positive\nnegative\nneutral"}),
        help_text="One per line, or comma-separated on one line. Leave empty for instruction → response.",
    )
    overlap = forms.IntegerField(
        min_value=1, max_value=20, initial=2, help_text="How many annotators label each item, blind to each other."
    )
    lease_seconds = forms.IntegerField(
        min_value=LEASE_MIN_SECONDS,
        max_value=LEASE_MAX_SECONDS,
        initial=900,
        label="Lease (seconds)",
        help_text="How long a claimed item stays reserved for its annotator.",
    )
    goal_metric = forms.ChoiceField(
        choices=[("", "Default for the task"), *GoalMetric.choices], required=False, label="Goal metric"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        help_text="Markdown. Published as version 1; annotators acknowledge it before their first item.",
    )

    def clean_labels(self) -> list[str]:
        names = parse_label_names(self.cleaned_data["labels"])
        seen: set[str] = set()
        for name in names:
            if name.casefold() in seen:
                raise forms.ValidationError(LABEL_LISTED_TWICE.format(name=name))
            seen.add(name.casefold())
        return names


class ProjectSettingsForm(forms.Form):
    overlap = forms.IntegerField(min_value=1, max_value=20, help_text="Annotators per item.")
    lease_seconds = forms.IntegerField(
        min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, label="Lease (seconds)"
    )


NO_CRITERIA = "Name at least one criterion to rate responses on."
DUPLICATE_CRITERIA = "Each criterion once."
LONG_CRITERION = "Keep each criterion under 60 characters."


class NextRoundSettingsForm(forms.Form):
    """How a model's outputs feed the next round (training/rounds.py); the plan page starts from these."""

    queue_order = forms.ChoiceField(choices=QueueOrder.choices, label="Queue order")
    random_share = forms.FloatField(
        min_value=0.0, max_value=1.0, label="Random share", help_text="0.2 puts a random item in every 5th slot."
    )
    disagreement_confidence = forms.FloatField(
        min_value=0.5,
        max_value=1.0,
        label="Disagreement confidence",
        help_text="A model this sure against a final label sends the item back to review.",
    )
    show_prelabels = forms.BooleanField(
        required=False,
        label="Show annotators pre-labels",
        help_text="Off by default: a suggestion biases blind labelling.",
    )
    show_model_confidence = forms.BooleanField(
        required=False,
        label="Show raters the model's confidence",
        help_text="Off by default: raters judge the output, not how sure the model was.",
    )
    rating_criteria = forms.CharField(
        required=False,
        label="Rating criteria",
        help_text="Generated responses are rated 1-5 on each; one per line or comma-separated.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_rating_criteria(self) -> list[str]:
        raw = self.cleaned_data["rating_criteria"]
        names = [name.strip() for line in raw.splitlines() for name in line.split(",") if name.strip()]
        if not names:
            raise forms.ValidationError(NO_CRITERIA)
        if len(set(names)) != len(names):
            raise forms.ValidationError(DUPLICATE_CRITERIA)
        if any(len(name) > 60 for name in names):
            raise forms.ValidationError(LONG_CRITERION)
        return names


class LabelForm(forms.Form):
    name = forms.CharField(max_length=100)
    color = forms.RegexField(
        regex=r"^#[0-9a-fA-F]{6}$",
        required=False,
        widget=forms.TextInput(attrs={"type": "color"}),
        error_messages={"invalid": "Use a hex colour such as #1f77b4."},
    )
    hotkey = forms.CharField(max_length=1, required=False, strip=True)

    def clean_hotkey(self) -> str:
        key = self.cleaned_data["hotkey"]
        if key in RESERVED_HOTKEYS:
            raise forms.ValidationError(HOTKEY_RESERVED)
        return key


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)


class GuidelinePublishForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 18, "class": "mono"}), strip=False, label="Guidelines")
    change_note = forms.CharField(
        max_length=300, required=False, label="What changed", help_text="Shown in the history and to annotators."
    )
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)


def annotation_value_from(data: QueryDict, task_type: str) -> dict[str, Any]:
    """The value a submitted annotate form describes, in the shape `annotation.values` validates."""
    if task_type == TaskType.MULTI_LABEL:
        return {"labels": data.getlist("labels")}
    if task_type == TaskType.INSTRUCTION:
        return {"response": data.get("response", "")}
    return {"label": data.get("label", "")}
